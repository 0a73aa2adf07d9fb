"""The volunteers' planned ends of today, stored in data/ends/<group>.json.

The file holds {"day": "YYYY-MM-DD", "ends": {number: "HH:MM:SS"}}, the end of the day written 24:00:00.
It is read with parse_end, which takes 24:00:00 as well as the 23:59:59 that earlier versions wrote for
the end of the day (and those versions read 24:00:00 as the end of the day too): a file written before
an upgrade, or after one that is then rolled back, keeps its ends.
"""

import json
import re
from datetime import date

from .clock import END_OF_DAY, format_hms, parse_end
from .files import replace_file
from .log import log


def ends_path(settings, group):
    """The file of the planned ends of a group's volunteers."""
    return settings.data_dir / "ends" / f"{group.slug}.json"


def read_ends(settings, group):
    """The planned ends stored for a group, as (day, {number: time of day}); (None, {}) when none or unreadable."""
    day, ends, _ = load_ends(settings, group)
    return day, ends


def load_ends(settings, group):
    """read_ends(), and whether the ends stored are all there: False when the file is there but unreadable."""
    path = ends_path(settings, group)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        day = date.fromisoformat(data["day"])
        ends = {n: parse_end(e) for n, e in data["ends"].items() if re.fullmatch(r"00\d{6,15}", n)}
    except FileNotFoundError:
        return None, {}, True
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        log.error("cannot read the planned ends %s: %s", path, error)
        return None, {}, False
    return day, ends, True


def todays_ends(settings, group, moment):
    """The planned ends stored for the group's volunteers of today."""
    day, ends = read_ends(settings, group)
    return ends if day == moment.date() else {}


def write_ends(settings, group, moment, ends):
    """Store today's planned ends of the group's volunteers (under the group's lock), whole or not at all.

    Return False when they could not be stored (logged): the caller says so.
    """
    path, stored = ends_path(settings, group), {n: format_hms(e) for n, e in ends.items()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, json.dumps({"day": moment.date().isoformat(), "ends": stored}), 0o640)
    except OSError as error:
        log.error("cannot write the planned ends %s: %s (%s)", path, error, stored)
        return False
    return True


def store_after_action(settings, group, moment, ends, state, number, stored, readable):
    """Store the planned ends of those on duty after an action on `number`; return True when one may be lost.

    Those without an end of their own get the period's, or the end of the day. An end may be lost when a
    write failed (`stored`: the write before the action went through) or, for the others on duty, when
    their ends were in a file that could not be read (`readable`).
    """
    default = END_OF_DAY if state.until is None else state.until
    stored = write_ends(settings, group, moment, {n: ends.get(n, default) for n in state.numbers}) and stored
    others = [n for n in state.numbers if n != number]
    return bool(state.numbers) and not (stored and (readable or not others))
