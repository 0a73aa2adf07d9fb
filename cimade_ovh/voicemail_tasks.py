"""What stats.py does with the groups' voicemail: delete old handled messages.

Only the groups whose lines.ini sets keep_handled_days are read at OVH: their line's settings
(which boxes), then each box's list of handled messages once per run, and a message's details
only when it is about to be deleted. Nothing of a message goes to the activity log but its day,
time and duration: never the caller's number.
"""

from datetime import timedelta

from .clock import format_duration, format_short_day_time, parse_ovh_datetime
from .files import group_lock
from .lines import LINE_KINDS
from .ovhapi import unless_gone
from .traces import log_activity
from .voicemail import HANDLED, boxes_of, box_path, message_key, read_handled, write_handled


def voicemail_tasks(client, settings, group, moment):
    """Delete the group's handled messages kept long enough; raise the first failure."""
    if not group.keep_handled_days:
        return
    line = LINE_KINDS[group.kind](client, group, moment)
    snap = line.snapshot(with_calls=False) if group.kind == "queue" else line.snapshot()
    boxes = boxes_of(group, snap)
    failures = delete_handled(client, settings, group, boxes, moment)
    if failures:
        raise failures[0]


# --- Deleting handled messages ---


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
