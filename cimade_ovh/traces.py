"""Traces of what the page did: the activity log, the last actions shown on a group's page, mail to IT."""

import os
import time
from datetime import timedelta

from . import clock
from .actions import ACTIONS, ENDS_NOT_KEPT, HANDED_OVER
from .clock import format_end, parse_ovh_datetime
from .config import script_command
from .log import log
from .ovhapi import as_failure, describe_failure
from .phones import format_phone


def log_activity(settings, group, action, number, client, result):
    """Append one line to the activity log: time, group, action, number, client address, result."""
    fields = [
        clock.now(settings.timezone).isoformat(timespec="seconds"),
        group.slug,
        action,
        number or "-",
        client,
        result,
    ]
    line = "\t".join(" ".join(str(f or "-").split()) for f in fields)
    try:
        settings.activity_log.parent.mkdir(parents=True, exist_ok=True)
        with open(settings.activity_log, "a", encoding="utf-8") as file:
            file.write(line + "\n")
    except OSError as error:
        log.error("cannot write the activity log %s: %s; line was: %s", settings.activity_log, error, line)


BEGUN = "en cours"  # The result of an action's first line, written before OVH is: its end follows on another line.


def log_begun(settings, group, action, number, client):
    """Log that an action begins, before it writes to OVH: a process killed midway still leaves its trace."""
    log_activity(settings, group, action, number, client, BEGUN)


def report_success(settings, group, client, done, number, end, notes=(), detail=""):
    """Log a done action and phrase it: (the flash cookie's value, the mail to IT's subject and body).

    `notes` (actions.Note): what the volunteer and IT are told besides, e.g. planned ends that could not be
    stored in data/ends (the volunteer is asked to end by hand) or a first name that could not be kept.
    `detail`: what the action was about when it has no number (a voicemail message: its day, time and duration).
    """
    planned = f"jusqu'à {format_end(end)}" if end is not None else detail
    details = ["ok", *filter(None, [planned]), *(note.logged for note in notes)]
    log_activity(settings, group, done, number, client, ", ".join(details))
    subject = f"{group.name} : {ACTIONS[done].subject} {format_phone(number)}".strip()
    body = f"Fin prévue : {format_end(end)}" if end is not None else detail
    if ENDS_NOT_KEPT in notes:
        body += (
            f"\n\nATTENTION : fin prévue non enregistrée dans {settings.data_dir / 'ends'} (dossier remplacé, "
            f"fichier abîmé ou droits) : rien ne terminera la permanence à l'heure prévue. Vérifiez : "
            f"{script_command('index.py', '--check')}"
        )
    flash = ":".join([done, number, "+".join(note.code for note in notes)]) if notes else f"{done}:{number}"
    return flash, (f"{subject}, {planned}" if planned else subject, body.strip())


def report_failure(settings, group, client, action, number, error):
    """Log a failed action and phrase it: (the flash cookie's value, the mail to IT's subject and body).

    The flash names no number: what a failed « start » had typed goes back to its form another way (retry_cookie).
    """
    failure = as_failure(error)
    attempted = failure.action or action
    log.error("%s on %s failed: %s", attempted, group.slug, failure)
    log_activity(settings, group, attempted, number, client, f"erreur {failure.reason}: {failure.detail}")
    explanation, _ = describe_failure(failure, settings.contact)
    mail = (
        f"{group.name} : échec ({attempted}, {format_phone(number) or 'sans numéro'})",
        f"{explanation}\n\nDétail : {failure.detail}\nAdresse du bénévole : {client}",
    )
    return f"error-{failure.reason}::{failure.explanation or ''}", mail


def recent_actions(settings, group, count=5):
    """The group's last actions in the activity log, newest first, as (time, action, number, succeeded, detail).

    A result is "ok", or "ok, " and a detail such as the planned end; BEGUN is an action's start, not shown
    (its end has a line of its own); anything else is a failure.
    """
    try:
        with open(settings.activity_log, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - 65536))
            tail = file.read().decode("utf-8", "replace").splitlines()[1 if size > 65536 else 0 :]
    except OSError:
        return []
    found = []
    for line in reversed(tail):
        fields = line.split("\t")
        if len(fields) != 6 or fields[1] != group.slug or fields[2] not in HANDED_OVER or fields[5] == BEGUN:
            continue
        moment = parse_ovh_datetime(fields[0], settings.timezone)
        if moment:
            succeeded = fields[5] == "ok" or fields[5].startswith("ok, ")
            found.append((moment, fields[2], fields[3].strip("-"), succeeded, fields[5][4:] if succeeded else ""))
        if len(found) == count:
            break
    return found


def notify_it(settings, subject, body):
    """Mail IT through the configured sendmail command; a failure is logged, never raised."""
    send_mail(settings, settings.notify, subject, body)


def send_mail(settings, addresses, subject, body):
    """Mail `addresses` through the configured sendmail command; return whether it took the mail (failures logged)."""
    if not addresses or not settings.sendmail:
        return False
    import email.message  # Here, not for every request: a CGI process starts faster.
    import subprocess

    message = email.message.EmailMessage()
    message["To"] = ", ".join(addresses)
    message["Subject"] = f"[cimade-ovh] {subject}"
    message.set_content(body)
    try:
        subprocess.run(settings.sendmail, input=message.as_bytes(), capture_output=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        log.error("cannot mail %s with %s: %s", addresses, settings.sendmail, error)
        return False
    return True


def notify_it_once(settings, key, every, subject, body):
    """Mail IT about `key` at most once per `every` (a timedelta), across processes."""
    stamp = settings.data_dir / "notified" / key
    try:
        if time.time() - stamp.stat().st_mtime < every.total_seconds():
            return
    except FileNotFoundError:
        pass
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
    except OSError as error:
        log.error("cannot write %s: %s", stamp, error)
    notify_it(settings, subject, body)


def keep_last_good(settings, error):
    """Say in the error log, and once by mail to IT, that lines.ini is broken and the page keeps its last good one."""
    import hashlib

    log.error("configuration error: %s; the page keeps serving the configuration it read before", error)
    digest = hashlib.sha256(str(error).encode("utf-8")).hexdigest()[:16]
    notify_it_once(
        settings, f"lines-ini-{digest}", timedelta(days=7), "Erreur dans lines.ini",
        f"{error}\n\nLa page garde la configuration lue avant cette modification, jusqu'à ce que l'erreur soit "
        f"corrigée (ou jusqu'au prochain redémarrage d'Apache, qui mettrait toutes les pages en erreur).\n"
        f"Vérifiez avec : {script_command('index.py', '--check')}",
    )  # fmt: skip
