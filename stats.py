#!/usr/bin/env python3
"""Record the statistics of every queue group in lines.ini; cron runs it every 5 minutes.

For each queue group, at once: the queue's counters (liveStatistics) and its
calls (liveCalls) are appended as one JSON line to
data/stats/<group>/<YYYY-MM-DD>.jsonl (dates in the groups' time zone). It also
removes the periods the page opened on an earlier day that nobody finished, so
that a forgotten permanence never reopens the line a week later, and logs out
the volunteers of such a permanence.

Prints nothing when all is well; one line per failing group otherwise, and
exits with status 1. Works from any current directory.
"""

import fcntl
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import index  # noqa: E402  (index.py sets up the virtualenv)


def record_path(settings, group, moment):
    """The daily file of a group's records."""
    return settings.data_dir / "stats" / group.slug / f"{moment:%Y-%m-%d}.jsonl"


def append_record(path, record):
    """Append one JSON line, locked so that two runs at once never mix their lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        file.write(line)


def collect(client, settings, group, moment):
    """Record one group's counters and calls, and remove its periods left from an earlier day."""
    line = index.QueueLine(client, group, moment)
    snap = line.snapshot()
    statistics = client.get(f"{line.hunting}/queue/{snap.queue_id}/liveStatistics")
    append_record(
        record_path(settings, group, moment),
        {"time": moment.isoformat(timespec="seconds"), "statistics": statistics, "calls": snap.calls},
    )
    stale = [p for p in line.page_periods(snap) if p["weekDay"] != line.today]
    if not stale:
        return
    forgotten = [] if line.todays_period(snap) else line.page_agents(snap)
    index.parallel(*[lambda a=a: line.set_status(a, "loggedOut") for a in forgotten])
    line.remove_periods(stale)
    for period in stale:
        index.log_activity(settings, group, "housekeeping", "", "stats.py", f"période du {period['weekDay']} supprimée")
    for agent in forgotten:
        index.log_activity(settings, group, "housekeeping", agent["number"], "stats.py", "agent déconnecté")


def main():
    """Collect every queue group concurrently; return the exit status."""
    try:
        settings = index.application.settings()
        client = index.application.client(settings)
    except index.ConfigError as error:
        print(f"stats.py : {error}", file=sys.stderr)
        return 1
    moment = index.now(settings.timezone)
    groups = [g for g in settings.groups.values() if g.kind == "queue"]
    outcomes = index.parallel(*[lambda g=g: failure_of(collect, client, settings, g, moment) for g in groups])
    for group, failure in zip(groups, outcomes, strict=True):
        if failure:
            explanation, _ = index.describe_failure(failure, settings.contact)
            print(f"stats.py : [{group.slug}] {explanation} ({failure.detail.splitlines()[-1]})", file=sys.stderr)
    return 1 if any(outcomes) else 0


def failure_of(function, *args):
    """Run `function`; return None, or the OvhFailure it raised."""
    try:
        function(*args)
    except Exception as error:
        return index.as_failure(error)
    return None


if __name__ == "__main__":
    sys.exit(main())
