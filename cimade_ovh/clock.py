"""Time: the current moment, times of day (seconds since midnight), planned ends, days and hours the French way."""

import re
from datetime import datetime, timedelta

OVH_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
FRENCH_WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
FRENCH_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


def now(zone):
    """The current time in `zone`; tests replace it to play other days."""
    return datetime.now(zone)


def format_short_day(day):
    """A day the short French way: « jeu. 26/11 »."""
    return f"{FRENCH_WEEKDAYS[day.weekday()][:3]}. {day:%d/%m}"


def format_short_day_time(moment):
    """A moment in few words: « jeu. 26/11 16:28 »."""
    return f"{format_short_day(moment)} {moment:%H:%M}"


def format_day_time(moment):
    """A moment the French way: « jeudi 26 novembre 2026 à 16:28 »."""
    return (
        f"{FRENCH_WEEKDAYS[moment.weekday()]} {moment.day} {FRENCH_MONTHS[moment.month - 1]} "
        f"{moment.year} à {moment:%H:%M}"
    )


HOUR = 3600  # A time of day is a number of seconds since midnight.
END_OF_DAY = 24 * HOUR  # The end of a permanence nobody chose: the next midnight, 24:00.
MIN_AHEAD = timedelta(minutes=15)  # A planned end comes at least that long after now.


def time_of_day(moment):
    """The time of day of a moment, in whole seconds since midnight."""
    return moment.hour * HOUR + moment.minute * 60 + moment.second


def parse_hms(text):
    """A time of day as OVH writes it, "HH:MM:SS", in seconds; else ValueError."""
    found = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d):([0-5]\d)", text)
    if not found:
        raise ValueError(text)
    return int(found[1]) * HOUR + int(found[2]) * 60 + int(found[3])


def format_hms(seconds):
    """A time of day in seconds, "HH:MM:SS" as OVH writes it; the end of the day, which OVH never holds, is 24:00:00."""
    return f"{seconds // HOUR:02}:{seconds // 60 % 60:02}:{seconds % 60:02}"


def parse_end(text):
    """An hour as typed or configured (« 18:00 », « 18h », « 18 h 30 ») as a time of day; else ValueError.

    23:59, 24:00 and 00:00 (midnight in a phone's time picker) mean the end of the day (END_OF_DAY).
    """
    found = re.fullmatch(r"\s*(\d{1,2})\s*(?:[:hH.]\s*(\d{2})?(?::[0-5]\d)?)?\s*", text or "")
    if not found:
        raise ValueError(text)
    hour, minute = int(found[1]), int(found[2] or 0)
    if (hour, minute) in ((23, 59), (24, 0), (0, 0)):
        return END_OF_DAY
    if hour > 23 or minute > 59:
        raise ValueError(text)
    return hour * HOUR + minute * 60


def format_end(end):
    """A planned end the French way: « 18 h », « 18 h 30 », « minuit »."""
    if end == END_OF_DAY:
        return "minuit"
    hour, minute = end // HOUR, end // 60 % 60
    return f"{hour} h" + (f" {minute:02}" if minute else "")


def format_field_end(end):
    """A planned end as the form's time field holds it, "HH:MM": the end of the day is 23:59, the latest it takes."""
    return "23:59" if end == END_OF_DAY else format_hms(end)[:5]


def end_moment(day, end):
    """The moment a planned end falls on `day` (an aware datetime): END_OF_DAY is the next midnight."""
    return datetime.combine(day.date(), datetime.min.time(), day.tzinfo) + timedelta(seconds=end)


def parse_ovh_datetime(text, zone):
    """Read an OVH date (ISO 8601 with offset) into `zone`, or None."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(zone) if moment.tzinfo else moment.replace(tzinfo=zone)


PERIOD_FROM = 2 * HOUR  # The page opens a queue's period from this hour: its planned ends come later.


def default_end(group, moment):
    """The end the form proposes: the group's ends_at, or the end of the day once that is less than 15 minutes ahead."""
    return group.ends_at if end_moment(moment, group.ends_at) - moment >= MIN_AHEAD else END_OF_DAY


def chosen_end(text, group, moment):
    """The planned end a volunteer chose (the group's when the form has none); else ValueError in French."""
    if text is None:
        return default_end(group, moment)
    if not text.strip():  # The volunteer emptied the field: ask, rather than guess the end of the day.
        raise ValueError("Indiquez l'heure de fin, par exemple 18:00.")
    try:
        end = parse_end(text)
    except ValueError:
        raise ValueError("Heure illisible : écrivez-la par exemple 18:00.") from None
    if end <= PERIOD_FROM:
        raise ValueError("La page n'ouvre la ligne qu'à partir de 2 h : choisissez une fin après 2 h.")
    ahead = end_moment(moment, end) - moment
    if ahead <= timedelta(0):
        raise ValueError(f"{format_end(end)} est déjà passé : choisissez une heure plus tard aujourd'hui.")
    if ahead < MIN_AHEAD and end != END_OF_DAY:  # Late in the evening, the end of the day is still fine.
        soonest = moment + MIN_AHEAD
        raise ValueError(f"Choisissez une fin au moins 15 minutes après maintenant (après {soonest:%H:%M}).")
    return end


def format_duration(seconds):
    """A duration the French way, to the minute past one minute: « 45 s », « 8 min », « 2 h 05 »."""
    if seconds < 60:
        return f"{seconds} s"
    minutes = (seconds + 30) // 60
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d}"
