#!/usr/bin/env python3
"""Record the statistics of every queue group in lines.ini, or report them per day; cron runs it every 5 minutes.

    stats.py                                  record (what cron runs)
    stats.py report [--group G] [--days N]    print the figures per day and group

Recording, for each queue group at once: the queue's counters (liveStatistics)
and its calls (liveCalls) are appended as one JSON line to
data/stats/<group>/<YYYY-MM-DD>.jsonl (dates in the groups' time zone). It also
removes the periods the page opened on an earlier day that nobody finished, so
that a forgotten permanence never reopens the line a week later, and logs out
the volunteers of such a permanence. For every group, it ends what volunteers
planned to end by now (the page's "Heure de fin"): a redirect's
forward, or a queue volunteer whose end comes before the others' (OVH closes a
queue's period itself at the latest end), and logs it as an automatic end. A
redirect forwarding with no planned end stored for today (its file lost or
unreadable) is given the end of the day, and so ends at midnight. It prints
nothing when all is well; otherwise, in French, one line per failing group, one
for what fails for all of them (OVH unreachable, the key), one for a data
folder it cannot use (with its fix), and exits with status 1.

The report reads those files only (no OVH request); the package computes the
figures, the same ones as the statistics page. Works from any current directory.
"""

import contextlib
import logging
import os
import sys
from datetime import datetime, timedelta

from cimade_ovh import clock  # The package sets up the virtualenv.
from cimade_ovh.cli import french_parser, number_argument
from cimade_ovh.clock import END_OF_DAY, end_moment, format_duration, format_end, format_short_day, time_of_day
from cimade_ovh.config import ConfigError, load_settings, script_command
from cimade_ovh.ends import ends_path, load_ends, read_ends, write_ends
from cimade_ovh.figures import append_record, daily_figures, read_records, record_path
from cimade_ovh.files import group_lock
from cimade_ovh.lines import LINE_KINDS, named_mistake
from cimade_ovh.ovhapi import explain_for_it, ovh_cause, parallel
from cimade_ovh.phones import format_phone
from cimade_ovh.queues import QueueLine
from cimade_ovh.redirect import RedirectLine
from cimade_ovh.rights import become_web_user, exposed_secrets, web_user_problems
from cimade_ovh.sharing import change_stamp, open_client
from cimade_ovh.traces import log_activity, log_begun, notify_it
from cimade_ovh.voicemail_tasks import NotAnnounced, voicemail_tasks


def collect(client, settings, group, moment):
    """Record one group's counters and calls, and remove its periods left from an earlier day."""
    line = QueueLine(client, group, moment)
    snap = line.snapshot()
    statistics = client.get(f"{line.hunting}/queue/{snap.queue_id}/liveStatistics")
    append_record(
        record_path(settings, group, moment),
        {
            "time": moment.isoformat(timespec="seconds"),
            "statistics": statistics,
            "calls": [kept(c) for c in snap.calls],
        },
    )
    if any(p["weekDay"] != line.today for p in line.page_periods(snap)):
        tidy(settings, group, line)


def tidy(settings, group, line):
    """Remove the page's periods of earlier days, and log out the volunteers of such a forgotten permanence.

    It changes the line as an action does: under the group's lock (skipped when an action holds
    it: the next run will do it), reading the line afresh, and telling the page's processes.
    """
    with group_lock(settings, group, blocking=False) as held:
        if held is None:
            return
        snap = line.snapshot(with_calls=False, whole=True)
        stale = [p for p in line.page_periods(snap) if p["weekDay"] != line.today]
        forgotten = [] if line.todays_period(snap) else line.page_agents(snap)
        try:
            parallel(*[lambda a=a: line.set_status(a, "loggedOut") for a in forgotten])
            line.remove_periods(stale)
        finally:
            change_stamp(settings, group)
    for period in stale:
        log_activity(settings, group, "housekeeping", "", "stats.py", f"période du {period['weekDay']} supprimée")
    for agent in forgotten:
        log_activity(settings, group, "housekeeping", agent["number"], "stats.py", "agent déconnecté")


def end_planned(client, settings, group, moment):
    """End the permanences of volunteers whose planned end has come; no OVH request while none has.

    The last volunteers of a permanence leaving finish it; one leaving before the others is removed.
    Like an action: under the group's lock (skipped when an action holds it: the next run will do it).
    """
    if not due_ends(settings, group, moment)[1]:
        return
    with group_lock(settings, group, blocking=False) as held:
        if held is None:
            return
        ends, due = due_ends(settings, group, moment)  # Read again under the lock: an action may have changed them.
        line = LINE_KINDS[group.kind](client, group, moment)
        try:
            # Whole, as for an action; the calls are of no use here.
            snap = line.snapshot(with_calls=False, whole=True) if group.kind == "queue" else line.snapshot()
            state = line.state(snap)
            leaving = [v for v in state.volunteers if v.number in due]
            for volunteer in leaving:  # Before OVH is written: a run killed midway leaves its trace.
                log_begun(settings, group, "auto-finish", volunteer.number, "stats.py")
            if leaving and len(leaving) == len(state.volunteers):
                line.finish(snap)
            else:
                for volunteer in leaving:  # Each one from the line as the one before left it: no read again.
                    outcome = line.remove(lambda number, mine=volunteer.number: number == mine, ends, snap)
                    snap = outcome.snap
            write_ends(settings, group, moment, {n: e for n, e in ends.items() if n not in due})
        finally:
            change_stamp(settings, group)
    applied = format_end(time_of_day(moment))
    for volunteer in leaving:
        planned = format_end(due[volunteer.number])
        detail = f"fin prévue à {planned}, appliquée à {applied}"
        log_activity(settings, group, "auto-finish", volunteer.number, "stats.py", f"ok, {detail}")
        subject = f"{group.name} : fin automatique sur le {format_phone(volunteer.number)}"
        notify_it(settings, subject, detail.capitalize())


def due_ends(settings, group, moment):
    """The group's stored planned ends, and those of them that have come: ({number: end}, {number: end})."""
    day, ends = read_ends(settings, group)
    midnight = datetime.combine(day, datetime.min.time(), settings.timezone) if day else None
    return ends, {n: e for n, e in ends.items() if end_moment(midnight, e) <= moment}


def end_of_day_for_unknown_ends(line, settings, group, moment):
    """Give a forward with no planned end stored today the end of the day, so that end_planned ends it at midnight.

    The page stores every end it sets; one lost (data/ends unwritable, a corrupt file) would let the
    forward ring for ever. OVH is read only when no end is stored for today, through the group's `line`
    (a RedirectLine that knows its SIP line already: one request, the line's options).
    """
    day, ends, _ = load_ends(settings, group)
    if day == moment.date() and ends:
        return
    with group_lock(settings, group, blocking=False) as held:
        if held is None:
            return
        day, ends, _ = load_ends(settings, group)  # Again under the lock: an action may have stored them.
        state = line.read_state()
        if not state.running or day == moment.date() and ends:
            return
        if not write_ends(settings, group, moment, {n: END_OF_DAY for n in state.numbers}):
            raise OSError(f"{ends_path(settings, group)} : fin prévue impossible à enregistrer, le renvoi sonnera")
    for number in state.numbers:
        log_activity(settings, group, "housekeeping", number, "stats.py", "fin prévue inconnue : minuit")


def run_group(client, settings, group, moment):
    """What cron does for one group: record a queue's statistics (and tidy it), end what was planned to end,
    then announce the new voicemail messages, delete the handled ones kept long enough and forget who handled the
    messages gone (voicemail_tasks).

    A redirect group's line is read too (one request), so that a mistake of lines.ini is said the day it is made;
    a redirect whose planned end is unknown gets the end of the day (after the ends due, which it would replace).
    """
    if group.kind == "queue":
        read = failure_of(named_mistake, client, group, collect, client, settings, group, moment)
    else:
        line = RedirectLine(client, group, moment)  # Its SIP line, read here, serves the end of the day below.
        read = failure_of(named_mistake, client, group, line.sip_line)
    ended = failure_of(named_mistake, client, group, end_planned, client, settings, group, moment)
    if group.kind == "redirect" and not ended and not read:
        ended = failure_of(named_mistake, client, group, end_of_day_for_unknown_ends, line, settings, group, moment)
    return ended or read or failure_of(voicemail_tasks, client, settings, group, moment)


CALL_KEYS = ("id", "state", "agent", "begin", "answered", "end")  # Never the caller's number or name.


def kept(call):
    """What a record keeps of a live call: who answered and when, nothing about the caller."""
    return {key: call.get(key) for key in CALL_KEYS}


# Causes of failure that are OVH's or the key's, not a group's: said once, whatever the number of groups.
ACCOUNT_WIDE = {"unreachable", "timeout", "credential", "key", "signature", "region"}


class Incidents(logging.Handler):
    """The package's log lines (in English, for Apache's error log), kept for stats.py to say in French once."""

    def __init__(self):
        super().__init__()
        self.mails, self.skipped, self.files = [], [], []

    def emit(self, record):
        if record.msg.startswith("cannot mail"):
            self.mails.append(record)
        elif record.msg.endswith("skipped: %r"):
            self.skipped.append(record)
        else:  # A file of data/ that cannot be read or written, or that the page did not write.
            self.files.append(record)


def collect_all(settings, incidents):
    """Do every group's housekeeping and record every queue group, concurrently; return the exit status."""
    for section, error in settings.broken.items():
        print(f"stats.py : [{section.lower()}] {error}", file=sys.stderr)
    for exposed in exposed_secrets(settings):
        print(f"stats.py : Attention : {exposed}", file=sys.stderr)
    try:
        client = open_client(settings, settings.ovh_conf)
    except Exception as error:
        print(f"stats.py : {explain_for_it(error)}", file=sys.stderr)
        return 1
    moment = clock.now(settings.timezone)
    groups = list(settings.groups.values())
    outcomes = parallel(*[lambda g=g: run_group(client, settings, g, moment) for g in groups])
    once, files = [], [failure for failure in outcomes if isinstance(failure, OSError)]
    for group, failure in zip(groups, outcomes, strict=True):
        if failure is None or failure in files:
            continue
        if ovh_cause(failure) in ACCOUNT_WIDE:
            once.append(explain_for_it(failure))
        else:
            explained = str(failure) if isinstance(failure, NotAnnounced) else explain_for_it(failure)
            print(f"stats.py : [{group.slug}] {explained}", file=sys.stderr)
    for sentence in dict.fromkeys(once):
        print(f"stats.py : {sentence}", file=sys.stderr)
    if files or incidents.files:
        for problem in data_problems(settings, files):
            print(f"stats.py : {problem}", file=sys.stderr)
    to_it = [record for record in incidents.mails if record.args[0] is settings.notify]  # Alerts: said above.
    if to_it:
        print("stats.py : le courriel à l'informatique n'a pas pu partir : vérifiez notify et sendmail dans "
              f"{settings.path}.", file=sys.stderr)  # fmt: skip
    return 1 if any(outcomes) or settings.broken or incidents.files or to_it else 0


def data_problems(settings, failures):
    """What keeps the web server's user from using data/, each with its fix; else what went wrong with a file there."""
    problems = web_user_problems(settings)
    if problems:
        return [f"{problem} ; rien n'est relevé ni terminé tant que ce n'est pas corrigé." for problem in problems]
    if failures:
        return [explain_for_it(failures[0])]
    return [
        f"des fichiers de {settings.data_dir} ne peuvent pas être lus ou écrits, ou n'ont pas la forme attendue : "
        f"vérifiez avec {script_command('index.py', '--check')}."
    ]


def failure_of(function, *args):
    """Run `function`; return None, or the exception it raised."""
    try:
        function(*args)
    except Exception as error:
        return error
    return None


REPORT_COLUMNS = ("jour", "groupe", "appels", "répondus", "perdus", "attente", "conversation", "qui a répondu")
LEFT_ALIGNED = {0, 1, 7}  # The other columns are figures, aligned on the right.


def report(settings, slug, days):
    """Print the figures of the last `days` days (today included) per day and queue group; return the exit status."""
    queues = {g.slug: g for g in settings.groups.values() if g.kind == "queue"}
    if slug is not None and slug.lower() not in queues:
        known = ", ".join(queues) or "aucun"
        print(
            f"stats.py : pas de file d'appels « {slug} » dans {settings.path} (groupes de type queue : {known})",
            file=sys.stderr,
        )
        return 1
    groups = [queues[slug.lower()]] if slug is not None else list(queues.values())
    last_day = clock.now(settings.timezone).date()
    first_day = last_day - timedelta(days=days - 1)
    rows = []
    for group in groups:
        records = read_records(settings, group, first_day, last_day)
        for figure in daily_figures(records, first_day, last_day):
            day = f"{format_short_day(figure.day)}/{figure.day:%Y}"
            if not figure.records:
                rows.append((day, group.slug, "pas de relevé"))
                continue
            rows.append(
                (
                    day,
                    group.slug,
                    str(figure.calls),
                    str(figure.answered),
                    str(figure.lost),
                    format_duration(figure.waiting_seconds),
                    format_duration(figure.talk_seconds),
                    ", ".join(format_phone(number) for number in figure.agents) or "-",
                )
            )
    print(format_table([REPORT_COLUMNS, *rows]))
    return 0


def format_table(rows):
    """Align rows of text in columns; a short row (a day without records) ends with a note that fits no column."""
    aligned = [row if len(row) == len(REPORT_COLUMNS) else row[:-1] for row in rows]
    widths = [max(len(row[i]) for row in aligned if i < len(row)) for i in range(len(REPORT_COLUMNS))]
    lines = []
    for row, cells in zip(rows, aligned, strict=True):
        text = [cell.ljust(widths[i]) if i in LEFT_ALIGNED else cell.rjust(widths[i]) for i, cell in enumerate(cells)]
        lines.append("  ".join(text + list(row[len(cells) :])).rstrip())
    return "\n".join(lines)


MAX_DAYS = 3660  # Ten years: the report prints a line per day and group.


def main(argv=()):
    """Record (no argument: what cron runs) or report; return the exit status."""
    parser = french_parser(prog="stats.py", description="Statistiques des files d'appels de lines.ini.")
    commands = parser.add_subparsers(dest="command", title="commandes", metavar="COMMANDE")
    report_parser = commands.add_parser("report", help="afficher les chiffres par jour et par groupe")
    report_parser.add_argument("--group", metavar="GROUPE", help="un seul groupe (le nom de sa section dans lines.ini)")
    days = number_argument(1, MAX_DAYS, f"un nombre de jours de 1 à {MAX_DAYS} (dix ans)")
    report_parser.add_argument(
        "--days", type=days, default=7, metavar="JOURS", help="nombre de jours, aujourd'hui compris (7)"
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"stats.py : {error}", file=sys.stderr)
        return 1
    incidents, log = Incidents(), logging.getLogger("cimade-ovh")
    log.addHandler(incidents)  # Instead of Python's own output, in English.
    try:
        if args.command != "report":
            return collect_all(settings, incidents)
        status = report(settings, args.group, args.days)
        for record in incidents.skipped:
            path, number, _ = record.args
            print(f"stats.py : {path}, ligne {number} illisible : sautée.", file=sys.stderr)
        return status
    finally:
        log.removeHandler(incidents)


if __name__ == "__main__":
    os.umask(0o027)  # The records hold volunteers' numbers: never readable by other local users.
    with contextlib.suppress(ConfigError):  # main() says what is wrong with lines.ini.
        become_web_user(load_settings())  # Run by root: what it writes stays the page's.
    sys.exit(main(sys.argv[1:]))
