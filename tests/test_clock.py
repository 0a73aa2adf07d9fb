"""Times of day, planned ends and the page's periods: pure functions, no simulator, no HTTP."""

import json
from datetime import date, datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from cimade_ovh.clock import (
    END_OF_DAY,
    PERIOD_FROM,
    chosen_end,
    default_end,
    end_moment,
    format_end,
    format_field_end,
    format_hms,
    parse_end,
    parse_hms,
    time_of_day,
)
from cimade_ovh.ends import read_ends, write_ends
from cimade_ovh.queues import is_page_period, period_end, period_to

PARIS = ZoneInfo("Europe/Paris")
THURSDAY = datetime(2026, 11, 26, 16, 28, tzinfo=PARIS)


def hours(hour, minute=0, second=0):
    return hour * 3600 + minute * 60 + second


def at(hour, minute):
    return THURSDAY.replace(hour=hour, minute=minute)


@pytest.mark.parametrize(
    "typed, end",
    [
        ("18:00", hours(18)), ("18h", hours(18)), ("18 h 30", hours(18, 30)), ("18H30", hours(18, 30)),
        ("9.15", hours(9, 15)), (" 7 ", hours(7)), ("18:00:30", hours(18)), ("17h05", hours(17, 5)),
        ("18:", hours(18)), ("00:01", hours(0, 1)),
    ],
)  # fmt: skip
def test_parse_end_reads_an_hour_as_typed_or_configured(typed, end):
    assert parse_end(typed) == end


@pytest.mark.parametrize("typed", ["00:00", "0h", "24:00", "24 h", "23:59", "23h59", "23:59:59", "24:00:00"])
def test_midnight_24_00_and_23_59_are_the_end_of_the_day(typed):
    assert parse_end(typed) == END_OF_DAY == hours(24)
    assert parse_end(format_field_end(END_OF_DAY)) == END_OF_DAY, "the form's 23:59 reads back as the end of the day"


@pytest.mark.parametrize("typed", [None, "", " ", "tard", "25:00", "24:30", "18:60", "18:5", "1800", "-1", "18:00:60"])
def test_parse_end_refuses_what_is_not_an_hour(typed):
    with pytest.raises(ValueError):
        parse_end(typed)


@pytest.mark.parametrize(
    "end, french, field",
    [
        (hours(18), "18 h", "18:00"), (hours(18, 30), "18 h 30", "18:30"), (hours(9, 5), "9 h 05", "09:05"),
        (hours(0), "0 h", "00:00"), (END_OF_DAY, "minuit", "23:59"),
    ],
)  # fmt: skip
def test_format_end_the_french_way_and_as_the_form_s_time_field_holds_it(end, french, field):
    assert (format_end(end), format_field_end(end)) == (french, field)


@pytest.mark.parametrize(
    "text, seconds", [("00:00:00", 0), ("02:00:00", PERIOD_FROM), ("17:59:59", hours(17, 59, 59)), ("23:59:59", 86399)]
)
def test_ovh_s_hh_mm_ss_both_ways(text, seconds):
    assert (parse_hms(text), format_hms(seconds)) == (seconds, text)


@pytest.mark.parametrize("text", ["24:00:00", "9:00:00", "09:00", "16h00", "12:60:00", "12:00:60", ""])
def test_parse_hms_refuses_what_ovh_does_not_write(text):
    with pytest.raises(ValueError):
        parse_hms(text)


def test_the_end_of_the_day_is_written_24_00_00_and_a_moment_reads_as_its_whole_seconds():
    assert format_hms(END_OF_DAY) == "24:00:00"
    assert time_of_day(THURSDAY.replace(second=7, microsecond=999999)) == hours(16, 28, 7)
    assert time_of_day(THURSDAY.replace(hour=0, minute=0)) == 0


def test_end_moment_falls_on_the_day_and_the_end_of_the_day_is_the_next_midnight():
    assert end_moment(THURSDAY, hours(18)) == datetime(2026, 11, 26, 18, 0, tzinfo=PARIS)
    assert end_moment(THURSDAY, hours(9, 30)) == datetime(2026, 11, 26, 9, 30, tzinfo=PARIS), "earlier the same day"
    assert end_moment(THURSDAY, 0) == datetime(2026, 11, 26, tzinfo=PARIS)
    assert end_moment(THURSDAY, END_OF_DAY) == datetime(2026, 11, 27, tzinfo=PARIS)
    assert end_moment(at(23, 59).replace(second=59), END_OF_DAY) == datetime(2026, 11, 27, tzinfo=PARIS)
    clocks_back = datetime(2026, 10, 25, 12, 0, tzinfo=PARIS)  # Summer time ends that night at 03:00.
    assert end_moment(clocks_back, hours(18)) == datetime(2026, 10, 25, 18, 0, tzinfo=PARIS), "the hour on the clock"


@pytest.mark.parametrize(
    "end, time_to",
    [(hours(18), "17:59:59"), (hours(20, 30), "20:29:59"), (hours(2, 1), "02:00:59"), (END_OF_DAY, "23:59:59")],
)
def test_a_period_ends_one_second_before_the_planned_end_and_gives_it_back(end, time_to):
    assert period_to(end) == time_to
    assert period_end({"timeTo": time_to}) == end
    assert is_page_period({"weekDay": "thursday", "timeFrom": "02:00:00", "timeTo": time_to, "policy": "available"})


@pytest.mark.parametrize(
    "time_from, time_to, policy",
    [
        ("02:00:00", "18:00:00", "available"),  # IT's: to the minute.
        ("09:00:00", "17:59:59", "available"),  # Not from 02:00:00.
        ("02:00:00", "17:59:59", "slot1"),  # Not calls to the queue.
        ("02:00:00", "01:59:59", "available"),  # Not after 02:00.
        ("02:00:01", "17:59:59", "available"),
    ],
)
def test_a_time_condition_of_another_shape_is_not_the_page_s(time_from, time_to, policy):
    assert not is_page_period({"weekDay": "thursday", "timeFrom": time_from, "timeTo": time_to, "policy": policy})


def test_default_end_is_the_group_s_until_15_minutes_before_it_then_the_end_of_the_day():
    group = SimpleNamespace(ends_at=hours(18))
    assert default_end(group, at(17, 44)) == hours(18)
    assert default_end(group, at(17, 45)) == hours(18), "15 minutes ahead exactly"
    assert default_end(group, at(17, 46)) == END_OF_DAY
    assert default_end(group, at(19, 0)) == END_OF_DAY
    assert default_end(SimpleNamespace(ends_at=END_OF_DAY), at(23, 50)) == END_OF_DAY


def test_chosen_end_takes_the_group_s_when_the_form_has_none_and_a_later_hour_of_today():
    group = SimpleNamespace(ends_at=hours(18))
    assert chosen_end(None, group, THURSDAY) == hours(18)
    assert chosen_end("20:30", group, THURSDAY) == hours(20, 30)
    assert chosen_end("16:43", group, THURSDAY) == hours(16, 43), "15 minutes ahead exactly"
    assert chosen_end("02:01", group, at(1, 0)) == hours(2, 1)
    assert chosen_end("23:59", group, at(23, 50)) == END_OF_DAY, "late in the evening, the end of the day is fine"
    assert chosen_end("00:00", group, at(23, 58)) == END_OF_DAY


@pytest.mark.parametrize(
    "typed, moment, message",
    [
        ("", THURSDAY, "Indiquez l'heure de fin, par exemple 18:00."),
        ("  ", THURSDAY, "Indiquez l'heure de fin, par exemple 18:00."),
        ("tard", THURSDAY, "Heure illisible : écrivez-la par exemple 18:00."),
        ("02:00", at(1, 0), "La page n'ouvre la ligne qu'à partir de 2 h : choisissez une fin après 2 h."),
        ("01:30", at(1, 0), "La page n'ouvre la ligne qu'à partir de 2 h : choisissez une fin après 2 h."),
        ("16:00", THURSDAY, "16 h est déjà passé : choisissez une heure plus tard aujourd'hui."),
        ("16:28", THURSDAY, "16 h 28 est déjà passé : choisissez une heure plus tard aujourd'hui."),
        ("16:40", THURSDAY, "Choisissez une fin au moins 15 minutes après maintenant (après 16:43)."),
    ],
)
def test_chosen_end_refuses_in_french(typed, moment, message):
    with pytest.raises(ValueError) as refusal:
        chosen_end(typed, SimpleNamespace(ends_at=hours(18)), moment)
    assert str(refusal.value) == message


def test_planned_ends_are_stored_hh_mm_ss_and_files_written_before_still_read(tmp_path):
    settings, group = SimpleNamespace(data_dir=tmp_path), SimpleNamespace(slug="lyon")
    ends = {"0033639980001": hours(18, 30), "0033639980002": END_OF_DAY}
    write_ends(settings, group, THURSDAY, ends)
    stored = json.loads((tmp_path / "ends" / "lyon.json").read_text())
    assert stored == {"day": "2026-11-26", "ends": {"0033639980001": "18:30:00", "0033639980002": "24:00:00"}}
    assert read_ends(settings, group) == (date(2026, 11, 26), ends)
    before = {"day": "2026-11-26", "ends": {"0033639980001": "18:30:00", "0033639980002": "23:59:59"}}
    (tmp_path / "ends" / "lyon.json").write_text(json.dumps(before))
    assert read_ends(settings, group) == (date(2026, 11, 26), ends), "23:59:59 was the end of the day"
