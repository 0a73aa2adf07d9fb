"""cimade_ovh.figures on its own: what OVH counted between records, day by day. Pure: no simulator, no HTTP."""

import json
import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cimade_ovh.figures import COUNTERS, Record, counted, daily_figures, read_day

PARIS = ZoneInfo("Europe/Paris")
MONDAY = date(2026, 11, 23)
RESET = datetime(2026, 11, 1, 0, 0, tzinfo=PARIS)  # OVH's lastReset, well before the records.
FIGURES = list(COUNTERS.values())  # calls, answered, lost, waiting_seconds, talk_seconds


def at(day, hour, minute=0):
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS)


def record(moment, calls=0, answered=0, lost=0, waiting=0, talk=0, reset=RESET, answering=()):
    """A record as read_day returns it."""
    counters = dict(zip(FIGURES, (calls, answered, lost, waiting, talk), strict=True))
    return Record(time=moment, counters=counters, last_reset=reset, answering=tuple(answering))


def figures_of(result, day):
    [figure] = [f for f in result if f.day == day]
    return figure


# --- counted -------------------------------------------------------------------


def test_counters_that_grew_count_what_they_grew_by():
    before = record(at(MONDAY, 9), calls=10, answered=8, lost=2, waiting=300, talk=1800)
    after = record(at(MONDAY, 10), calls=13, answered=10, lost=3, waiting=360, talk=2400)
    assert counted(before, after) == {"calls": 3, "answered": 2, "lost": 1, "waiting_seconds": 60, "talk_seconds": 600}


def test_the_first_record_counts_nothing_when_the_counters_began_another_day():
    assert counted(None, record(at(MONDAY, 9), calls=10, answered=8)) == dict.fromkeys(FIGURES, 0)


def test_the_first_record_counts_nothing_without_a_last_reset():
    assert counted(None, record(at(MONDAY, 9), calls=10, reset=None)) == dict.fromkeys(FIGURES, 0)


def test_the_first_record_counts_all_when_the_counters_began_that_same_day():
    after = record(at(MONDAY, 9), calls=4, answered=3, lost=1, reset=at(MONDAY, 2))
    assert counted(None, after) == after.counters


def test_a_new_last_reset_means_the_new_values_are_all_that_was_counted():
    before = record(at(MONDAY, 9), calls=10, answered=8, lost=2)
    after = record(at(MONDAY, 10), calls=12, answered=9, lost=3, reset=at(MONDAY, 9, 30))
    assert counted(before, after) == after.counters  # Not 2 calls: the counters restarted from zero at 9:30.


def test_a_counter_going_down_means_a_reset_even_with_the_same_last_reset():
    before = record(at(MONDAY, 9), calls=10, answered=8, lost=2, waiting=300)
    after = record(at(MONDAY, 10), calls=11, answered=9, lost=2, waiting=20)
    assert counted(before, after) == after.counters


def test_unchanged_counters_count_zero():
    same = record(at(MONDAY, 9), calls=10, answered=8, lost=2)
    assert counted(same, record(at(MONDAY, 10), calls=10, answered=8, lost=2)) == dict.fromkeys(FIGURES, 0)


# --- daily_figures ---------------------------------------------------------------


def test_every_day_of_the_range_has_its_figures_and_a_day_without_records_is_unknown():
    result = daily_figures([], MONDAY, MONDAY + timedelta(days=2))
    assert [f.day for f in result] == [MONDAY, MONDAY + timedelta(days=1), MONDAY + timedelta(days=2)]
    assert all(f.records == 0 and f.calls == 0 and f.agents == [] for f in result)


def test_a_day_adds_up_what_each_record_counted_since_the_one_before():
    records = [
        record(at(MONDAY, 9), calls=10, answered=8, lost=2),  # The first: a starting point only.
        record(at(MONDAY, 12), calls=14, answered=11, lost=3, waiting=100, talk=900),
        record(at(MONDAY, 18), calls=15, answered=12, lost=3, waiting=130, talk=1500),
    ]
    [monday] = daily_figures(records, MONDAY, MONDAY)
    assert (monday.records, monday.calls, monday.answered, monday.lost) == (3, 5, 4, 1)
    assert (monday.waiting_seconds, monday.talk_seconds) == (130, 1500)


def test_a_reset_during_the_day_adds_the_new_values():
    records = [
        record(at(MONDAY, 9), calls=10, answered=8, lost=2),
        record(at(MONDAY, 10), calls=12, answered=10, lost=2),
        record(at(MONDAY, 11), calls=3, answered=2, lost=1, reset=at(MONDAY, 10, 30)),
        record(at(MONDAY, 12), calls=5, answered=4, lost=1, reset=at(MONDAY, 10, 30)),
    ]
    [monday] = daily_figures(records, MONDAY, MONDAY)
    assert (monday.calls, monday.answered, monday.lost) == (2 + 3 + 2, 2 + 2 + 2, 0 + 1 + 0)


def test_a_gap_across_days_goes_to_the_day_of_the_record_that_ends_it():
    tuesday, wednesday = MONDAY + timedelta(days=1), MONDAY + timedelta(days=2)
    records = [
        record(at(MONDAY, 9), calls=10),
        record(at(MONDAY, 18), calls=12),
        record(at(wednesday, 9), calls=20),  # Nothing recorded on Tuesday: a server down.
    ]
    result = daily_figures(records, MONDAY, wednesday)
    assert figures_of(result, MONDAY).calls == 2
    assert figures_of(result, tuesday).records == 0 and figures_of(result, tuesday).calls == 0
    assert figures_of(result, wednesday).calls == 8
    assert figures_of(result, wednesday).records == 1


def test_a_record_before_the_range_is_where_its_first_day_starts_from():
    sunday = MONDAY - timedelta(days=1)
    records = [record(at(sunday, 23), calls=10), record(at(MONDAY, 9), calls=13)]
    [monday] = daily_figures(records, MONDAY, MONDAY)
    assert (monday.records, monday.calls) == (1, 3)


def test_records_after_the_range_are_left_out():
    records = [record(at(MONDAY, 9), calls=10), record(at(MONDAY + timedelta(days=1), 9), calls=15)]
    assert [(f.day, f.records, f.calls) for f in daily_figures(records, MONDAY, MONDAY)] == [(MONDAY, 1, 0)]


def test_agents_are_listed_once_first_seen_first():
    records = [
        record(at(MONDAY, 9), answering=["0033639980012"]),
        record(at(MONDAY, 10), answering=["0033639980011", "0033639980012", "0033639980011"]),
        record(at(MONDAY, 11), answering=[]),
        record(at(MONDAY, 12), answering=["0033639980013", "0033639980011"]),
        record(at(MONDAY + timedelta(days=1), 9), answering=["0033639980013"]),
    ]
    monday, tuesday = daily_figures(records, MONDAY, MONDAY + timedelta(days=1))
    assert monday.agents == ["0033639980012", "0033639980011", "0033639980013"]
    assert tuesday.agents == ["0033639980013"]


# --- read_day --------------------------------------------------------------------


def line(moment, calls, last_reset="2026-11-01T00:00:00+01:00", calls_in_progress=()):
    statistics = {
        "callsTotal": calls,
        "callsAnswered": calls - 1,
        "callsLost": 1,
        "totalWaitingDuration": 60,
        "totalCallDuration": 600,
        "lastReset": last_reset,
    }
    return json.dumps({"time": moment, "statistics": statistics, "calls": list(calls_in_progress)}) + "\n"


def test_read_day_reads_records_in_time_order_in_the_groups_zone(tmp_path):
    path = tmp_path / "2026-11-23.jsonl"
    answered = {"state": "Answered", "agent": "0033639980011"}
    waiting = {"state": "Waiting", "agent": ""}
    path.write_text(
        line("2026-11-23T10:00:00+01:00", 12, calls_in_progress=[answered, waiting])
        + line("2026-11-23T08:00:00Z", 10),  # Written out of order, in UTC: 9:00 in Paris.
        encoding="utf-8",
    )
    first, second = read_day(path, PARIS)
    assert first.time == at(MONDAY, 9) and first.time.utcoffset() == timedelta(hours=1)
    assert first.counters == {"calls": 10, "answered": 9, "lost": 1, "waiting_seconds": 60, "talk_seconds": 600}
    assert first.last_reset == RESET
    assert first.answering == ()
    assert second.time == at(MONDAY, 10) and second.counters["calls"] == 12
    assert second.answering == ("0033639980011",), "only answered calls, with an agent"


@pytest.mark.parametrize(
    "broken",
    [
        '{"time": "2026-11-23T09:30:00+01:00", "statis',  # A run killed while writing.
        '{"time": "2026-11-23T09:30:00+01:00", "calls": []}',  # No statistics.
        '{"time": "not a time", "statistics": {}, "calls": []}',
        '["not", "a", "record"]',
        "",
    ],
)
def test_read_day_skips_a_line_it_cannot_read_and_keeps_the_others(tmp_path, caplog, broken):
    path = tmp_path / "2026-11-23.jsonl"
    path.write_text(
        line("2026-11-23T09:00:00+01:00", 10) + broken + "\n" + line("2026-11-23T10:00:00+01:00", 12),
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING, logger="cimade-ovh"):
        records = read_day(path, PARIS)
    assert [r.counters["calls"] for r in records] == [10, 12]
    assert f"{path}, line 2 skipped" in caplog.text


def test_read_day_of_a_day_without_a_file_is_empty(tmp_path):
    assert read_day(tmp_path / "2026-11-24.jsonl", PARIS) == []
