"""A group's voicemail: the boxes that take its unanswered calls, their messages, who called back, and the audio.

Which boxes: those OVH's settings send the group's calls to (a redirect's SIP line: its no-reply,
busy or backup forward of nature voicemail, to the forward's box or the line's own; a queue: the
time conditions' out-of-hours or slot destinations of type voicemail, and the queue's
actionOnClosure / actionOnOverflow = voicemail, the box in their Param), and those lines.ini
names (voicemail = 0033…). They are read only for groups with an access code, with the line, in
the same wave once known: the line's snapshot names them again, and a change is read at once.

OVH's folders are the messages' state: inbox is to handle, old is handled. Who handled a message
and when is not OVH's: data/voicemail/<group>.json keeps it by message key ("box:id"), never
with the caller's number; what the page writes anywhere else of a message is its day, time and
duration.
"""

import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from .clock import format_duration, format_short_day_time, parse_ovh_datetime
from .config import script_command
from .files import data_folder, read_record, write_record
from .log import log
from .ovhapi import ACTION_SECONDS, DEADLINE, OvhFailure, as_failure, explain_for_it, parallel, unless_gone
from .phones import format_phone

TO_HANDLE, HANDLED = "inbox", "old"  # OVH's folders: new messages, and those seen.
FORWARDS = ("forwardNoReply", "forwardBusy", "forwardBackup")  # A SIP line's forwards that may go to a box.
SLOTS = ("unavailable", "slot1", "slot2", "slot3")  # The time conditions' destinations.
AUDIO_FORMAT, AUDIO_TYPE = "wav", "audio/wav"  # What Safari, Chromium and Firefox all play.
AUDIO_WAIT_SECONDS = 6  # How long « Écouter » waits for OVH to make the file.
AUDIO_POLL_SECONDS = 0.5  # How often it asks OVH meanwhile (OVH's manager: every second).
AUDIO_MAX_BYTES = 32 * 1024 * 1024  # A message of OVH's is minutes long at most: more is not one.


@dataclass
class Message:
    """A voicemail message as the page shows it."""

    key: str  # "box:id": how the page's forms and routes name it.
    box: str
    caller: str
    received: datetime  # In the groups' time zone.
    duration: int  # Seconds.
    handled: bool  # In OVH's "old" folder.
    by: str = ""  # The first name given with « Traité », if any.
    at: datetime = None  # When « Traité » was pressed on the page, if it was.


def message_key(box, message_id):
    """The page's name of a message: its box and OVH's id."""
    return f"{box}:{message_id}"


def parse_key(key):
    """(box, id) of a message key, or None when it is not one."""
    box, _, number = key.partition(":")
    if not (box.startswith("00") and box[2:].isdigit() and 8 <= len(box) <= 17 and number.isdigit()):
        return None
    if len(number) > 18:
        return None
    return box, int(number)


# --- Which boxes ---


def boxes_of(group, snap):
    """The boxes where the group's unanswered calls go, as the line's OVH settings say, then those of lines.ini."""
    found = []
    if group.kind == "redirect":
        for forward in FORWARDS:
            if snap.options.get(forward) and snap.options.get(f"{forward}Nature") == "voicemail":
                found.append(snap.options.get(f"{forward}Number") or snap.sip_line)
    else:
        for slot in SLOTS:
            if snap.settings.get(f"{slot}Type") == "voicemail" and snap.settings.get(f"{slot}Number"):
                found.append(snap.settings[f"{slot}Number"])
        for action in ("actionOnClosure", "actionOnOverflow"):
            if snap.actions.get(action) == "voicemail" and snap.actions.get(f"{action}Param"):
                found.append(snap.actions[f"{action}Param"])
    return list(dict.fromkeys(found + list(group.voicemail)))


def resolve_boxes(client, settings, moment):
    """The boxes of each group whose line `client` can read now; the others are left out."""
    from .lines import LINE_KINDS

    found = {}
    for group in settings.groups.values():
        try:
            found[group.slug] = boxes_of(group, LINE_KINDS[group.kind](client, group, moment).snapshot())
        except Exception:  # No key yet, no right, no line: the key's rules cover every box of the account.
            continue
    return found


def box_problems(client, group, boxes):
    """For --check: why the page could not read each of the group's boxes, in French, with the next step."""
    import ovh.exceptions

    try:
        known = set(client.get(f"/telephony/{group.billing_account}/voicemail"))
    except Exception:  # A key without this right: reading each box says more.
        known = None
    problems = []
    for box in boxes:
        absent = (
            f"le répondeur {format_phone(box)} n'est pas dans le compte {group.billing_account} : corrigez la clé "
            "voicemail du groupe dans lines.ini, ou les renvois vers la messagerie chez OVH"
        )
        if known is not None and box not in known:
            problems.append(absent)
            continue
        try:
            client.get(f"{box_path(group, box)}/directories", dir=TO_HANDLE)
        except ovh.exceptions.NotGrantedCall:
            problems.append(f"la clé OVH ne peut pas lire le répondeur {format_phone(box)} : créez-en une nouvelle : "
                            + script_command("create_consumer_key.py"))  # fmt: skip
        except ovh.exceptions.ResourceNotFoundError:
            problems.append(absent)
        except Exception as error:
            problems.append(f"répondeur {format_phone(box)} : {explain_for_it(error)}")
    return problems


# --- Reading ---


def box_path(group, box):
    """The OVH path of a box."""
    return f"/telephony/{group.billing_account}/voicemail/{box}"


def read_box(client, group, box):
    """The messages of a box, to handle and handled (OVH's objects, each with its box), and what its settings lose.

    The settings are read with the lists, in the same wave (see box_losses).
    """
    directories = f"{box_path(group, box)}/directories"
    to_handle, handled, losses = parallel(
        *[lambda f=f: client.get(directories, dir=f) for f in (TO_HANDLE, HANDLED)],
        lambda: box_losses(client, group, box),
    )
    found = parallel(*[lambda i=i: unless_gone(client.get, f"{directories}/{i}") for i in to_handle + handled])
    return [dict(message, box=box) for message in found if message is not None], losses


def read_voicemail(client, group, boxes):
    """The group's voicemail as the page keeps it: {"boxes", "messages", "failures", "losses"}.

    A box OVH does not answer for is named in failures (reason, detail), and the others are read.
    losses: {box: [what its settings lose]} (see box_losses).
    """

    def one(box):
        try:
            messages, losses = read_box(client, group, box)
            return messages, None, losses
        except Exception as error:
            failure = as_failure(error)
            log.error("reading the voicemail %s of %s failed: %s", box, group.slug, failure)
            return [], {"box": box, "reason": failure.reason, "detail": failure.detail}, []

    results = parallel(*[lambda b=b: one(b) for b in boxes])
    return {
        "boxes": list(boxes),
        "messages": [message for messages, _, _ in results for message in messages],
        "failures": [failure for _, failure, _ in results if failure],
        "losses": {box: losses for box, (_, _, losses) in zip(boxes, results, strict=True) if losses},
    }


def read_with_voicemail(line, group, memory):
    """The line's snapshot with the group's voicemail, read in the same wave once the boxes are remembered.

    The first time, the boxes come from the line's settings, read first. Later the remembered
    boxes are read alongside the line, whose settings confirm them; if they changed, the
    boxes are read again.
    """
    remembered = memory.get("boxes")
    if remembered is None:
        snap = line.snapshot()
        boxes = boxes_of(group, snap)
        voicemail = read_voicemail(line.client, group, boxes)
    else:
        snap, voicemail = parallel(line.snapshot, lambda: read_voicemail(line.client, group, remembered))
        boxes = boxes_of(group, snap)
        if boxes != remembered:
            voicemail = read_voicemail(line.client, group, boxes)
    memory["boxes"] = boxes
    return replace(snap, voicemail=dict(voicemail, problems=page_problems(group, snap, voicemail)))


# --- Settings that lose callers ---

NO_RECORDING, MAILED_AWAY = "doNotRecord", "mailedAway"  # What a box's settings may lose (box_losses).


def box_losses(client, group, box):
    """What a box's OVH settings lose of callers' messages: NO_RECORDING, MAILED_AWAY; [] when unreadable.

    doNotRecord: callers cannot leave a message. redirectionEmails without keepMessage: OVH mails
    each message and deletes it, so that it never reaches the list. A key without the right to read
    the settings (made before this check) loses nothing of the messages: --check says what is missing.
    """
    try:
        settings = client.get(f"{box_path(group, box)}/settings")
    except Exception as error:
        failure = as_failure(error)
        if failure.reason != "not_granted":  # A key made before: --check names the right it lacks.
            log.warning("cannot read the settings of the voicemail %s of %s: %s", box, group.slug, failure)
        return []
    losses = [NO_RECORDING] if settings.get("doNotRecord") else []
    if settings.get("redirectionEmails") and not settings.get("keepMessage"):
        losses.append(MAILED_AWAY)
    return losses


def long_ringing_agents(group, snap):
    """The queue's agents whose ring time exceeds the group's ring_timeout: (number, seconds); none for a redirect."""
    if group.kind != "queue":
        return []
    attached = set(snap.attached)
    return [
        (agent.get("number") or "", agent["timeout"])
        for agent in snap.agents
        if agent.get("agentId") in attached and (agent.get("timeout") or 0) > group.ring_timeout
    ]


def page_problems(group, snap, voicemail):
    """The settings that lose callers, in a few French words each, for the page of those with the group's code."""
    from .phones import mask_phone

    problems = [
        f"le {mask_phone(number)} sonne {seconds} s, plus que les {group.ring_timeout} s prévues : sa propre "
        "messagerie peut prendre l'appel"
        for number, seconds in long_ringing_agents(group, snap)
    ]
    for box, losses in voicemail.get("losses", {}).items():
        if NO_RECORDING in losses:
            problems.append(f"le répondeur {format_phone(box)} ne prend pas de message")
        if MAILED_AWAY in losses:
            problems.append(f"le répondeur {format_phone(box)} envoie les messages par courriel puis les efface : "
                            "ils ne peuvent pas s'afficher ici")  # fmt: skip
    return problems


def check_losses(client, group, moment):
    """For --check: the settings that lose callers, each in French with its fix in IT's words."""
    from .lines import LINE_KINDS

    line = LINE_KINDS[group.kind](client, group, moment)
    snap = line.snapshot(with_calls=False) if group.kind == "queue" else line.snapshot()
    boxes = boxes_of(group, snap)
    losses = parallel(*[lambda b=b: box_losses(client, group, b) for b in boxes])
    problems = [
        f"l'agent {format_phone(number)} sonne {seconds} s, plus que ring_timeout ({group.ring_timeout} s) : sa "
        "propre messagerie peut prendre l'appel avant que la file passe au suivant ; dans le manager d'OVH (file "
        f"d'appels, agents), mettez sa durée de sonnerie à {group.ring_timeout} s ou moins (10 s ou moins conseillé), "
        "ou retirez-le de la file"
        for number, seconds in long_ringing_agents(group, snap)
    ]
    for box, box_loss in zip(boxes, losses, strict=True):
        if NO_RECORDING in box_loss:
            problems.append(
                f"le répondeur {format_phone(box)} ne prend aucun message (doNotRecord) : les appelants ne peuvent "
                f"rien laisser ; dans le manager d'OVH, réglages de la messagerie de la ligne {format_phone(box)}, "
                "autorisez le dépôt de messages"
            )
        if MAILED_AWAY in box_loss:
            problems.append(
                f"le répondeur {format_phone(box)} envoie chaque message par courriel puis l'efface "
                "(redirectionEmails sans keepMessage) : la page ne peut jamais le montrer ; dans le manager d'OVH, "
                "réglages de la messagerie, cochez la conservation des messages après l'envoi, ou retirez les adresses"
            )
    if group.kind == "queue":
        problems += queue_sounds(client, group, snap)
    return problems


def queue_sounds(client, group, snap):
    """For --check: a queue without a welcome sound, or with nothing set when it is full or closed."""
    service = client.get(f"/telephony/{group.billing_account}/easyHunting/{group.number}")
    problems = []
    if not service.get("toneOnOpening"):
        problems.append(
            "la file n'a pas de message d'accueil (toneOnOpening) : sans lui, les appelants ne comprennent pas où "
            "ils arrivent ; dans le manager d'OVH (file d'appels, musiques et messages), enregistrez un message "
            "d'accueil"
        )
    if not snap.actions.get("actionOnOverflow"):
        problems.append(
            "rien n'est prévu quand la file est pleine (actionOnOverflow) : l'appel s'arrête sans un mot ; dans le "
            "manager d'OVH (file d'appels), choisissez un message de débordement ou la messagerie"
        )
    if not snap.actions.get("actionOnClosure") and not snap.settings.get("unavailableType"):
        problems.append(
            "rien n'est prévu quand la file est fermée (actionOnClosure, ni destination hors plages horaires) : "
            "l'appel s'arrête sans un mot ; dans le manager d'OVH, choisissez un message de fermeture ou la messagerie"
        )
    return problems


def messages_of(voicemail, handled, zone):
    """The Messages of a read voicemail, newest first, with who handled them (`handled`: the group's records)."""
    found = []
    for raw in voicemail.get("messages", []):
        key = message_key(raw["box"], raw["id"])
        record = handled.get(key, {}) if raw.get("dir") == HANDLED else {}
        found.append(
            Message(
                key=key,
                box=raw["box"],
                caller=raw.get("caller") or "",
                received=parse_ovh_datetime(raw.get("creationDatetime"), zone),
                duration=int(raw.get("duration") or 0),
                handled=raw.get("dir") == HANDLED,
                by=record.get("by", ""),
                at=parse_ovh_datetime(record.get("at"), zone),
            )
        )
    return sorted(found, key=lambda m: (m.received is not None, m.received), reverse=True)


# --- Who handled what ---


def handled_path(settings, group):
    """The file of who handled the group's messages, and when."""
    return settings.data_dir / "voicemail" / f"{group.slug}.json"


def read_handled(settings, group):
    """The group's records of handled messages, by message key: {"by", "at"}; {} when there are none or unreadable."""
    records = read_record(handled_path(settings, group))
    return {k: v for k, v in records.items() if isinstance(v, dict)}


def write_handled(settings, group, records):
    """Write the group's records of handled messages, whole or not at all, owned like data/."""
    write_record(settings, data_folder(settings, "voicemail") / handled_path(settings, group).name, records)


# --- Moving ---


def move(client, group, key, folder):
    """Put a message in `folder` (HANDLED or TO_HANDLE); return (the message read back, whether it moved).

    None instead of the message when it is no longer at OVH (deleted meanwhile).
    """
    box, message_id = parse_key(key)
    path = f"{box_path(group, box)}/directories/{message_id}"
    current = unless_gone(client.get, path)
    if current is None or current["dir"] == folder:
        return current, False
    client.post(f"{path}/move", dir=folder)
    after = client.get(path)
    if after["dir"] != folder:
        raise OvhFailure("mismatch", f"{path}: moved to {folder}, reads {after['dir']}")
    return after, True


def mark_message(line, reads, settings, action, asked, moment):
    """« Traité » (with the first name given) or « À traiter » on a message, under the group's lock.

    Return the word done, no number (a message has none) and what the log says of the message.
    OVH's folder is the state; who handled it and when go to data/voicemail/ once OVH moved it.
    A message that another volunteer moved already is left as it is, with its record (or this
    one's, when a try that failed after OVH's move left none).
    """
    group = line.group
    deadline = DEADLINE.set(time.monotonic() + ACTION_SECONDS)
    try:
        box, _ = parse_key(asked.message)
        if box not in (line.memory.get("boxes") or boxes_of(group, line.snapshot())):
            return "message-gone", "", ""  # Not one of this group's boxes.
        with reads.changing(settings, group):
            message, moved = move(line.client, group, asked.message, HANDLED if action == "handled" else TO_HANDLE)
    finally:
        DEADLINE.reset(deadline)
    if message is None:
        return "message-gone", "", ""
    records = read_handled(settings, group)
    before = dict(records)
    if action == "handled" and (moved or asked.message not in records):  # Moved by a try that failed after.
        records[asked.message] = {"by": asked.name, "at": moment.isoformat(timespec="seconds")}
    elif action == "unhandled":
        records.pop(asked.message, None)
    if records != before:
        write_handled(settings, group, records)
    detail = describe_message(parse_ovh_datetime(message.get("creationDatetime"), settings.timezone),
                              int(message.get("duration") or 0))  # fmt: skip
    by = records.get(asked.message, {}).get("by") if action == "handled" else ""
    detail += f", par {by}" if by else ""
    return (action if moved else f"already-{action}"), "", detail


def describe_message(received, duration):
    """What the activity log, the last actions and IT's mail say of a message: its day, time and duration only."""
    when = format_short_day_time(received) if received else "?"
    return f"message du {when} ({format_duration(duration)})"


# --- Listening ---


class AudioNotReady(Exception):
    """OVH did not make the message's file in time, or could not make it."""


def audio_url(client, group, key, wait=None):
    """Ask OVH for the message's file, wait until it is ready; return (its URL, when it expires), for the page only."""
    box, message_id = parse_key(key)
    path = f"{box_path(group, box)}/directories/{message_id}/download"
    wait = AUDIO_WAIT_SECONDS if wait is None else wait
    give_up = time.monotonic() + wait
    while True:
        file = client.get(path, format=AUDIO_FORMAT)
        if file.get("status") == "done" and file.get("url"):
            return file["url"], parse_ovh_datetime(file.get("urlExpirationDatetime"), timezone.utc)
        if file.get("status") == "error":
            raise AudioNotReady(f"{path}: OVH answers status error")
        if time.monotonic() + AUDIO_POLL_SECONDS > give_up:
            raise AudioNotReady(f"{path}: still {file.get('status')} after {wait} s")
        time.sleep(AUDIO_POLL_SECONDS)


def fetch_audio(client, url):
    """The bytes of an audio file at OVH's URL, or None when the URL answers no file (expired, not ready)."""
    import requests

    try:
        response = client._session.get(url, timeout=(3.05, 8), stream=True)
    except requests.Timeout as error:
        raise OvhFailure("timeout", f"audio file: {type(error).__name__}") from None  # Its URL stays out of logs.
    except requests.RequestException as error:
        raise OvhFailure("unreachable", f"audio file: {type(error).__name__}") from None
    with response:
        if response.status_code != 200:
            return None
        data = response.raw.read(AUDIO_MAX_BYTES + 1, decode_content=True)
    if len(data) > AUDIO_MAX_BYTES:
        raise OvhFailure("server", f"audio file: more than {AUDIO_MAX_BYTES} bytes")
    return data
