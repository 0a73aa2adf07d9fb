"""Time: the current moment, planned ends ("HH:MM:SS"), and days and hours written the French way."""

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


END_OF_DAY = "23:59:59"  # The end of a permanence nobody chose: the end of the day.
MIN_AHEAD = timedelta(minutes=15)  # A planned end comes at least that long after now.


def parse_end(text):
    """An hour as typed or configured (« 18:00 », « 18h », « 18 h 30 ») as "HH:MM:SS"; else ValueError.

    23:59, 24:00 and 00:00 (midnight in a phone's time picker) mean the end of the day (23:59:59).
    """
    found = re.fullmatch(r"\s*(\d{1,2})\s*(?:[:hH.]\s*(\d{2})?(?::[0-5]\d)?)?\s*", text or "")
    if not found:
        raise ValueError(text)
    hour, minute = int(found[1]), int(found[2] or 0)
    if (hour, minute) in ((23, 59), (24, 0), (0, 0)):
        return END_OF_DAY
    if hour > 23 or minute > 59:
        raise ValueError(text)
    return f"{hour:02}:{minute:02}:00"


def format_end(end):
    """A planned end the French way: « 18 h », « 18 h 30 », « minuit »."""
    if end == END_OF_DAY:
        return "minuit"
    hour, minute = int(end[:2]), int(end[3:5])
    return f"{hour} h" + (f" {minute:02}" if minute else "")


def end_moment(day, end):
    """The moment a planned end ("HH:MM:SS") falls on `day` (an aware datetime); END_OF_DAY is the next midnight."""
    if end == END_OF_DAY:
        return datetime.combine(day.date() + timedelta(days=1), datetime.min.time(), day.tzinfo)
    return day.replace(hour=int(end[:2]), minute=int(end[3:5]), second=0, microsecond=0)


def parse_ovh_datetime(text, zone):
    """Read an OVH date (ISO 8601 with offset) into `zone`, or None."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(zone) if moment.tzinfo else moment.replace(tzinfo=zone)


PERIOD_FROM = "02:00:00"  # The page opens a queue's period from this hour: its planned ends come later.


def default_end(group, moment):
    """The end the form proposes: the group's ends_at, or the end of the day once that is less than 15 minutes ahead."""
    return group.ends_at if end_moment(moment, group.ends_at) - moment >= MIN_AHEAD else END_OF_DAY


def chosen_end(text, group, moment):
    """The planned end a volunteer chose, "HH:MM:SS" (the group's when the form has none); else ValueError in French."""
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
