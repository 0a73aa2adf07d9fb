"""What stats.py does with the groups' voicemail: mail each new message to messages_to, delete old handled ones,
forget who handled the messages gone.

The groups whose lines.ini sets messages_to or keep_handled_days are read at OVH: their
line's settings (which boxes), then each box's list once per run and task (inbox for the
alerts, old for the deletions), and a message's details only when it is new to this file's
records, or about to be deleted. Any other group with records of who handled its messages
has only the boxes those records name listed (old), so that the records of messages gone
are forgotten. Nothing of a message goes to the mails or the activity log but its day, time
and duration: never the caller's number.

data/voicemail/<group>.announced.json keeps the messages already announced (or there before
the first run, which announces nothing), by message key, with the day they were left: kept
while the message waits in inbox, and a week after. A mail that sendmail refused is not
recorded: the next run sends it again.
"""

from datetime import timedelta

from .clock import format_day_time, format_duration, format_short_day_time, parse_ovh_datetime
from .files import data_folder, group_lock, locked_file, read_record, write_record
from .lines import LINE_KINDS
from .log import log
from .ovhapi import as_failure, unless_gone
from .traces import log_activity, send_mail
from .voicemail import HANDLED, TO_HANDLE, boxes_of, box_path, message_key, read_handled, write_handled


ANNOUNCED_KEEP = timedelta(days=7)  # How long an announced message no longer waiting stays in the records.


class NotAnnounced(Exception):
    """sendmail did not take an alert: the message is announced again at the next run."""


def voicemail_tasks(client, settings, group, moment):
    """Announce the group's new messages, delete the handled ones kept long enough, forget who handled the messages
    no longer handled at OVH; raise the first failure."""
    failures = []
    if group.messages_to or group.keep_handled_days:
        boxes = current_boxes(client, group, moment)
        if group.messages_to:
            failures += announce_new(client, settings, group, boxes, moment)
    if group.keep_handled_days:
        failures += delete_handled(client, settings, group, boxes, moment)
    else:
        failures += forget_gone(client, settings, group, moment)
    if failures:
        raise failures[0]


def current_boxes(client, group, moment):
    """The boxes OVH's settings (and lines.ini) send the group's unanswered calls to now."""
    line = LINE_KINDS[group.kind](client, group, moment)
    return boxes_of(group, line.snapshot(with_calls=False) if group.kind == "queue" else line.snapshot())


# --- Alerts ---


def announced_path(settings, group):
    """The file of the group's messages already announced."""
    return settings.data_dir / "voicemail" / f"{group.slug}.announced.json"


def read_announced(settings, group, moment):
    """(since when messages are announced, {message key: day left}); the first run starts now with none."""
    path = announced_path(settings, group)
    records = read_record(path)
    if not records:  # None yet, or unreadable (logged).
        return moment, {}
    try:
        since = parse_ovh_datetime(records["since"], settings.timezone)
        messages = {k: v for k, v in records["messages"].items() if isinstance(v, str)}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        log.error("cannot read %s: %s; announcing from now on", path, error)
        return moment, {}
    return since or moment, messages


def announce_new(client, settings, group, boxes, moment):
    """Mail messages_to once per message left in the group's boxes since the first run; return the failures."""
    lock = settings.data_dir / "locks" / f"{group.slug}.announce.lock"
    with locked_file(lock, blocking=False) as held:
        if held is None:  # Another run is announcing: it sends them.
            return []
        since, known = read_announced(settings, group, moment)
        before = dict(known)
        waiting, failures = set(), []
        for box in boxes:
            directories = f"{box_path(group, box)}/directories"
            try:
                ids = client.get(directories, dir=TO_HANDLE)
            except Exception as error:
                failures.append(error)
                waiting |= {key for key in known if key.startswith(f"{box}:")}
                continue
            for message_id in ids:
                key = message_key(box, message_id)
                waiting.add(key)
                if key in known:
                    continue
                try:
                    message = unless_gone(client.get, f"{directories}/{message_id}")
                except Exception as error:
                    failures.append(error)
                    continue
                if message is None:
                    continue
                received = parse_ovh_datetime(message.get("creationDatetime"), settings.timezone) or moment
                if received >= since and message.get("dir") == TO_HANDLE:
                    if not announce(settings, group, received, int(message.get("duration") or 0)):
                        failures.append(NotAnnounced(mail_failure(settings, group)))
                        continue
                known[key] = received.isoformat(timespec="seconds")
        kept = {
            key: day for key, day in known.items()
            if key in waiting or (parse_ovh_datetime(day, settings.timezone) or moment) > moment - ANNOUNCED_KEEP
        }  # fmt: skip
        if kept != before or not announced_path(settings, group).exists():
            records = {"since": since.isoformat(timespec="seconds"), "messages": kept}
            write_record(settings, data_folder(settings, "voicemail") / announced_path(settings, group).name, records)
    return failures


def announce(settings, group, received, duration):
    """Mail one new message to the group's messages_to, and log it; return whether sendmail took the mail."""
    subject = f"{group.name} : nouveau message sur le répondeur"
    link = f"{settings.site_url}/{group.slug}" if settings.site_url else ""
    where = f"sur la page du groupe : {link}" if link else "sur la page du groupe"
    body = (
        f"Un message attend sur la messagerie de {group.name}.\n\n"
        f"Laissé le {format_day_time(received)}, durée {format_duration(duration)}.\n\n"
        f"Pour l'écouter et rappeler la personne, avec le code d'accès du groupe, {where}\n"
    )
    if not send_mail(settings, group.messages_to, subject, body):
        return False
    log_activity(settings, group, "message-announced", "", "stats.py",
                 f"message du {format_short_day_time(received)} ({format_duration(duration)}) annoncé "
                 f"à {', '.join(group.messages_to)}")  # fmt: skip
    return True


def mail_failure(settings, group):
    """The French sentence stats.py prints when sendmail refuses an alert."""
    command = " ".join(settings.sendmail)
    return (
        f"l'alerte d'un nouveau message à {', '.join(group.messages_to)} n'est pas partie (commande « {command} », "
        "clé sendmail de lines.ini) ; elle repartira au prochain passage de stats.py : vérifiez l'envoi de courriels "
        "du serveur"
    )


# --- Handled messages: forgotten once gone, deleted once kept long enough ---


def forget_gone(client, settings, group, moment):
    """Forget who handled the messages no longer in OVH's old folder (deleted, or to handle again); return failures.

    Only the boxes the group's records name are read, one request each, and none without records: a group whose
    volunteers never pressed « Traité » costs nothing. A box OVH no longer knows has no message left: its records
    go; so do those of a box the key may not read that the group no longer uses (a new key has no right on it),
    while a refusal on one of its current boxes is a key to make again, reported. The group's lock is taken only
    to write, not while OVH answers; a record « Traité » wrote meanwhile is kept.
    """
    records = read_handled(settings, group)
    failures, gone, used = [], set(), None
    for box in sorted({key.partition(":")[0] for key in records}):
        try:
            ids = unless_gone(lambda box=box: client.get(f"{box_path(group, box)}/directories", dir=HANDLED))
        except Exception as error:
            refused = as_failure(error).reason == "not_granted"
            if refused and used is None:
                used = current_boxes(client, group, moment)  # Read once, and only on a refusal.
            if not refused or box in used:
                failures.append(error)
                continue
            ids = None
        handled = {message_key(box, i) for i in ids or ()}
        gone |= {key for key in records if key.startswith(f"{box}:") and key not in handled}
    if gone:
        with group_lock(settings, group, blocking=False) as held:
            now = read_handled(settings, group) if held is not None else {}
            kept = {key: record for key, record in now.items() if key not in gone or record != records[key]}
            if kept != now:
                write_handled(settings, group, kept)
    return failures


def delete_handled(client, settings, group, boxes, moment):
    """Delete at OVH the group's messages handled keep_handled_days ago or more, and their records; return failures.

    Handled: in OVH's old folder. When: the page's « Traité », or else the first run that saw it
    there (a message handled elsewhere). Under the group's lock, skipped when an action holds it.
    """
    with group_lock(settings, group, blocking=False) as held:
        if held is None:
            return []
        records = read_handled(settings, group)
        before = {key: dict(record) for key, record in records.items()}
        failures, deleted = [], []
        for box in boxes:
            directories = f"{box_path(group, box)}/directories"
            try:
                ids = {message_key(box, i): i for i in client.get(directories, dir=HANDLED)}
            except Exception as error:
                failures.append(error)
                continue
            for key in [k for k in records if k.startswith(f"{box}:") and k not in ids]:
                del records[key]  # Deleted, or to handle again: no longer handled.
            for key, message_id in ids.items():
                record = records.setdefault(key, {})
                if not record.get("at") and not record.get("seen"):
                    record["seen"] = moment.isoformat(timespec="seconds")
                handled = parse_ovh_datetime(record.get("at") or record.get("seen"), settings.timezone)
                if handled is None or moment - handled < timedelta(days=group.keep_handled_days):
                    continue
                path = f"{directories}/{message_id}"
                try:
                    message = unless_gone(client.get, path)
                    if message is not None and message.get("dir") != HANDLED:
                        continue  # Put back to handle meanwhile.
                    if message is not None:
                        client.delete(path)
                except Exception as error:
                    failures.append(error)
                    continue
                del records[key]
                if message is not None:
                    deleted.append(message)
        if records != before:
            write_handled(settings, group, records)
    for message in deleted:
        received = parse_ovh_datetime(message.get("creationDatetime"), settings.timezone)
        when = format_short_day_time(received) if received else "?"
        log_activity(settings, group, "message-deleted", "", "stats.py",
                     f"message du {when} ({format_duration(int(message.get('duration') or 0))}) supprimé chez OVH, "
                     f"traité depuis {group.keep_handled_days} jours ou plus")  # fmt: skip
    return failures
