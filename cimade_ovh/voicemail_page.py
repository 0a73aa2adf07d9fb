"""The voicemail on a group's page: how the page reads it, what it shows, and « Écouter ».

« Écouter » asks OVH for the message's file, waits until it is ready, and answers the browser
with it itself: OVH's URL never reaches the browser (it is kept in data/voicemail/ for the
next ranges, AUDIO_URL_KEPT at most), and the audio is never written to disk.
Browsers on phones ask for audio in ranges: one range is answered with 206, one out of the file with 416.
"""

from datetime import datetime, timedelta, timezone

from . import clock
from .config import script_command
from .files import data_folder, read_record, write_record
from .group_page import VoicemailView
from .log import log
from .ovhapi import OvhFailure, as_failure, describe_failure
from .pages import render_message
from .voicemail import (
    AUDIO_TYPE,
    AudioNotReady,
    audio_url,
    boxes_of,
    fetch_audio,
    messages_of,
    parse_key,
    read_handled,
    read_with_voicemail,
)
from .web import Response, method_not_allowed


def page_read(line, group, coded):
    """How the group's page reads its line: with the voicemail when the page has a code (messages are behind it)."""
    return (lambda: read_with_voicemail(line, group, line.memory)) if coded else line.snapshot


def voicemail_view(settings, group, snap, coded):
    """What the page shows of the group's voicemail: its messages only behind the group's access code."""
    if not coded:
        return VoicemailView(coded=False, set_code=script_command("index.py", "--set-code", group.slug))
    messages = messages_of(snap.voicemail, read_handled(settings, group), settings.timezone)
    failures = [(f["box"], OvhFailure(f["reason"], f["detail"])) for f in snap.voicemail.get("failures", [])]
    return VoicemailView(coded=True, messages=messages, failures=failures, boxes=snap.voicemail.get("boxes", []),
                         problems=snap.voicemail.get("problems", []))


def listen(visit, key, line_of):
    """The response to « Écouter » for the message `key`; None when the group has no such message (a 404).

    `line_of(settings, group, moment)` gives the group's line.
    """
    request, settings, group = visit.request, visit.settings, visit.group
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed(request, "GET, HEAD")
    contact = settings.contact
    if parse_key(key) is None:
        return None
    try:
        line = line_of(settings, group, clock.now(settings.timezone))
        if parse_key(key)[0] not in (line.memory.get("boxes") or boxes_of(group, line.snapshot())):
            return None
        data = audio_bytes(line.client, settings, group, key)
    except AudioNotReady as error:
        log.warning("audio of %s on %s not ready: %s", key, group.slug, error)
        text = ("OVH n'a pas encore préparé l'enregistrement de ce message. Réessayez dans une minute ; "
                f"si cela dure, prévenez {contact}.")  # fmt: skip
        return message(request, "Message pas encore prêt", text, 503)
    except Exception as error:
        failure = as_failure(error)
        log.error("audio of %s on %s failed: %s", key, group.slug, failure)
        if failure.reason == "not_found":
            text = "Ce message n'est plus sur le répondeur (effacé entre-temps). Rechargez la page du groupe."
            return message(request, "Message introuvable", text, 404)
        explanation, advice = describe_failure(failure, contact)
        return message(request, "Écoute impossible", f"{explanation} {advice}", 502)
    if data is None:
        text = f"OVH ne donne pas l'enregistrement de ce message. Réessayez ; si cela dure, prévenez {contact}."
        return message(request, "Écoute impossible", text, 502)
    return audio_response(data, request.environ.get("HTTP_RANGE", ""))


def message(request, title, text, status):
    """A page with a single message."""
    return Response.page(render_message(title, text, request.base), status)


def audio_bytes(client, settings, group, key):
    """The audio of a message, at the URL OVH gave lately (audio_urls_path) or at a new one; None if none.

    The URL is kept for every process of the page, AUDIO_URL_KEPT at most: under CGI, each range a phone asks for
    is a process of its own, and asking OVH for the file again for each would cost a request or more each time.
    Two processes that remember a URL at once may keep only one: the other is asked again, no more.
    """
    path = audio_urls_path(settings, group)
    stored = read_record(path)
    urls = {k: v for k, v in stored.items() if valid_url(v)}
    if key in urls:
        data = fetch_audio(client, urls[key]["url"])
        if data is not None:
            return data
    url, expires = audio_url(client, group, key)
    data = fetch_audio(client, url)
    if data is not None and expires is not None:
        kept_until = min(expires, datetime.now(timezone.utc) + AUDIO_URL_KEPT)
        urls[key] = {"url": url, "expires": kept_until.isoformat()}
    else:
        urls.pop(key, None)
    if urls != stored:
        try:
            write_record(settings, data_folder(settings, "voicemail") / path.name, urls)
        except OSError as error:  # The audio plays all the same; the next range asks OVH again.
            log.error("cannot keep the audio URLs in %s: %s", path, error)
    return data


AUDIO_URL_KEPT = timedelta(minutes=10)  # Enough for one listening's ranges; a message deleted meanwhile soon stops.


def audio_urls_path(settings, group):
    """The file of the audio URLs OVH gave lately for the group's messages, by message key, with their expiry."""
    return settings.data_dir / "voicemail" / f"{group.slug}.audio.json"


def valid_url(remembered):
    """True for a remembered {"url", "expires"} that has not expired (with a minute to spare)."""
    if not isinstance(remembered, dict) or not isinstance(remembered.get("url"), str):
        return False
    expires = clock.parse_ovh_datetime(remembered.get("expires"), timezone.utc)
    return expires is not None and expires - timedelta(minutes=1) > datetime.now(timezone.utc)


def audio_response(data, range_header):
    """The audio whole (200), the one range asked (206), or 416 for a range out of the file."""
    size = len(data)
    wanted = byte_range(range_header, size)
    headers = [("Accept-Ranges", "bytes")]
    if wanted == "unsatisfiable":
        return Response(416, b"", AUDIO_TYPE, headers + [("Content-Range", f"bytes */{size}")])
    if wanted is None:
        return Response(200, data, AUDIO_TYPE, headers)
    first, last = wanted
    headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
    return Response(206, data[first : last + 1], AUDIO_TYPE, headers)


def byte_range(header, size):
    """The (first, last) bytes a Range header asks of `size` bytes; None for the whole file; "unsatisfiable" when out.

    Only one range is answered, as browsers ask for media.
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[len("bytes=") :].strip().partition("-")
    try:
        if not first:  # The last N bytes.
            count = int(last)
            return (max(0, size - count), size - 1) if count > 0 and size else "unsatisfiable"
        start, end = int(first), int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return "unsatisfiable"
    return start, min(end, size - 1)
