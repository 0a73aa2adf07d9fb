"""The queues' statistics: the records stats.py appends, and the figures per day they add up to."""

import fcntl
import json
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from .clock import parse_ovh_datetime
from .log import log

#
# stats.py (cron, every 5 minutes) appends one record per queue group and run to
# data/stats/<group>/<YYYY-MM-DD>.jsonl: {"time", "statistics": OVH's
# liveStatistics, "calls": OVH's liveCalls}. OVH's counters only grow, from
# lastReset on; a day's figures are what they grew by, record after record.

STATS_DAYS = 30  # The statistics page shows this many days, today included.
COUNTERS = {  # OVH's liveStatistics counters, and the figure each one gives.
    "callsTotal": "calls",
    "callsAnswered": "answered",
    "callsLost": "lost",
    "totalWaitingDuration": "waiting_seconds",
    "totalCallDuration": "talk_seconds",
}


def record_path(settings, group, day):
    """The file of a group's records of one day (a date or a datetime)."""
    return settings.data_dir / "stats" / group.slug / f"{day:%Y-%m-%d}.jsonl"


def append_record(path, record):
    """Append one JSON line, locked so that two runs at once never mix their lines.

    A line left unfinished by a run killed while writing is ended first, so
    that it does not spoil the new one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    with open(path, "ab+") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        end = file.seek(0, os.SEEK_END)
        if end:
            file.seek(end - 1)
            if file.read(1) != b"\n":
                line = b"\n" + line
        file.write(line)


@dataclass(frozen=True)
class Record:
    """One run of stats.py for a queue: when, OVH's counters and their lastReset, who was answering a call."""

    time: datetime
    counters: dict  # By figure name: {"calls": …, "answered": …, …}.
    last_reset: datetime
    answering: tuple  # The agents' numbers of the calls answered at that time.


def read_day(path, zone):
    """The records of one file, in time order; a line that cannot be read (a run killed while writing, another
    encoding) is skipped."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    records = []
    for number, line in enumerate(lines, 1):
        try:
            data = json.loads(line.decode("utf-8"))
            statistics = data["statistics"]
            records.append(
                Record(
                    time=datetime.fromisoformat(data["time"]).astimezone(zone),
                    counters={figure: int(statistics[counter]) for counter, figure in COUNTERS.items()},
                    last_reset=parse_ovh_datetime(statistics["lastReset"], zone),
                    answering=tuple(
                        call["agent"] for call in data["calls"] if call.get("state") == "Answered" and call.get("agent")
                    ),
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            log.warning("%s, line %d skipped: %r", path, number, error)
    return sorted(records, key=lambda record: record.time)


def read_records(settings, group, first_day, last_day):
    """A group's records from first_day to last_day, after the last one before first_day, which they start from."""
    folder = settings.data_dir / "stats" / group.slug
    days = []
    for path in folder.glob("*.jsonl"):
        try:
            days.append(date.fromisoformat(path.stem))
        except ValueError:
            continue  # Not one of ours.
    days = sorted(day for day in days if day <= last_day)
    records = [
        r for day in days if day >= first_day for r in read_day(record_path(settings, group, day), settings.timezone)
    ]
    for day in reversed([day for day in days if day < first_day]):
        earlier = read_day(record_path(settings, group, day), settings.timezone)
        if earlier:
            return earlier[-1:] + records
    return records


@dataclass
class DayFigures:
    """A queue's figures for one day; with no record that day (records == 0), they are unknown, not zero."""

    day: date
    records: int = 0
    calls: int = 0
    answered: int = 0
    lost: int = 0
    waiting_seconds: int = 0
    talk_seconds: int = 0
    agents: list = field(default_factory=list)  # The numbers seen answering a call that day, first seen first.


def counted(before, after):
    """What OVH counted from record `before` (None: there is none) to record `after`, by figure name.

    The counters restarted from zero when lastReset changed or a counter went
    down: the new values are then all that was counted since. The very first
    record counts its values only if OVH reset the counters that same day.
    """
    if before is None:
        same_day = after.last_reset is not None and after.last_reset.date() == after.time.date()
        return after.counters if same_day else dict.fromkeys(after.counters, 0)
    if after.last_reset != before.last_reset or any(after.counters[n] < before.counters[n] for n in after.counters):
        return after.counters
    return {name: after.counters[name] - before.counters[name] for name in after.counters}


def daily_figures(records, first_day, last_day):
    """The figures of each day from first_day to last_day, from a group's records in time order.

    A record adds what OVH counted since the record before it to its own day.
    After a gap (runs that failed, a day without records), all that was counted
    during the gap goes to the day of the record that ends it. Who answered
    comes from the calls in progress during a run: a short call can be missed.
    """
    figures = {}
    day = first_day
    while day <= last_day:
        figures[day] = DayFigures(day)
        day += timedelta(days=1)
    before = None
    for record in records:
        figure = figures.get(record.time.date())
        if figure is not None:
            figure.records += 1
            for name, grown in counted(before, record).items():
                setattr(figure, name, getattr(figure, name) + grown)
            figure.agents += [number for number in dict.fromkeys(record.answering) if number not in figure.agents]
        before = record
    return list(figures.values())
