"""What a volunteer's action form asks for: read, checked field by field, and typed back when it is wrong."""

from dataclasses import dataclass

from .actions import FLASHED, MESSAGE_ACTIONS
from .clock import chosen_end
from .phones import FirstNameError, PhoneError, clean_first_name, normalize_phone
from .state import OWN_LINE
from .voicemail import parse_key


@dataclass
class Asked:
    """What a volunteer's form asks for: their number, first name and planned end ("start"), or whom to remove."""

    number: str = ""
    name: str = ""
    end: int = None  # "start": the planned end, a time of day in seconds.
    mark: str = ""  # "remove": the keyed mark of the volunteer's number.
    message: str = ""  # "handled", "unhandled": the message's key ("box:id"); "" when the form's is not one.


def read_action_form(action, form, settings, group, moment):
    """What the form of `action` asks for, and the mistakes found in it by field, in French."""
    if action == "remove":
        return Asked(mark=form.get("volunteer", "")), {}
    if action in MESSAGE_ACTIONS:
        key = form.get("message", "")
        asked, errors = Asked(message=key if parse_key(key) else ""), {}
        try:
            asked.name = clean_first_name(form.get("name", ""))
        except FirstNameError as error:
            errors["name"] = str(error)
        return asked, errors
    if action != "start":
        return Asked(), {}
    asked, errors, typed = Asked(), {}, typed_in(form)
    try:
        asked.end = chosen_end(form.get("ends"), group, moment)
    except ValueError as error:
        errors["ends"] = str(error)
    try:
        asked.number = normalize_phone(typed["number"])
    except PhoneError as error:
        errors["number"] = str(error)
    if asked.number in {g.number for g in settings.groups.values()}:
        errors["number"] = OWN_LINE
    try:
        asked.name = clean_first_name(typed["name"])
    except FirstNameError as error:
        errors["name"] = str(error)
    return asked, errors


def typed_in(form):
    """What a volunteer typed in the form, to show it again: number, name, and the end if the form had one."""
    typed = {"number": form.get("number", ""), "name": form.get("name", "")}
    if "ends" in form:
        typed["ends"] = form["ends"]
    return typed


def retry_cookie(typed):
    """The cookie's value that keeps what a failed « start » had typed (number, end, first name) for its page."""
    from urllib.parse import urlencode

    return urlencode(typed)


def retyped(flash, value):
    """What a failed « start » had typed, from its retry_cookie, to show again: pressing the button again retries it.

    {} unless the flash tells a failure; the browser may change the cookie: only the form's fields are kept, short.
    """
    from urllib.parse import parse_qsl

    if not flash or flash[0] in FLASHED or not value:
        return {}
    try:
        fields = parse_qsl(value, max_num_fields=3)
    except ValueError:  # More fields than the form has: not ours.
        return {}
    return {name: text for name, text in fields if name in ("number", "ends", "name") and len(text) <= 100}
