#!/usr/bin/env python3
"""cimade-ovh: let the volunteers of La Cimade send a help line's calls to their phone.

A volunteer opens /lyon, types the number where they will answer and presses
one button: the group's OVH line now rings them. "Terminer" ends it. The groups
are described in lines.ini, one section each.

This file is the script Apache runs, as FastCGI (through flup), or as plain CGI
when no FastCGI server started it: the WSGI application's routing and its
request handlers. What they call lives in the package cimade_ovh, one module
per concern. The handlers of group pages import what only they use (lines,
ends, forms, figures, group_page, stats_page, voicemail, voicemail_page) when
they run: a CGI process for / starts without them. From a shell:

    python3 index.py --demo            the page on a simulated OVH account
    python3 index.py --serve [--port]  the page on the OVH account of ovh.conf
    python3 index.py --check           check lines.ini, ovh.conf and each group on OVH
    python3 index.py --check --snapshot copie.json   … and copy each group's line (read only)
    python3 index.py --demo --state copie.json       the page on that copy, simulated
    python3 index.py --set-code lyon   ask for, then store, the access code of a group
    python3 index.py --unlock lyon     forget a group's wrong codes: nobody waits any more
"""

import os
import sys
import time
from datetime import timedelta
from pathlib import Path

from cimade_ovh import access, clock, config, ovhapi, pages
from cimade_ovh.access import (
    Visit,
    WrongCodes,
    access_cookie_value,
    check_code,
    coded_groups_path,
    read_access_codes,
    read_coded_groups,
    same_text,
    secret_key,
    write_coded_groups,
)
from cimade_ovh.actions import MESSAGE_ACTIONS
from cimade_ovh.clock import format_day_time
from cimade_ovh.config import DEFAULT_CONTACT, ConfigError, Group, load_settings
from cimade_ovh.files import Reloaded, group_lock
from cimade_ovh.log import CLIENT, log, log_to_stderr
from cimade_ovh.ovhapi import DEADLINE, LazyClient, as_failure, parallel
from cimade_ovh.pages import favicon, message_box, render_access
from cimade_ovh.servers import is_fastcgi, run_cgi, run_fastcgi, serve
from cimade_ovh.sharing import EXPIRY_NOTICE, SHARE_SECONDS, KeyExpiry, SharedRead, open_client
from cimade_ovh.traces import (
    keep_last_good,
    log_activity,
    log_begun,
    notify_it,
    notify_it_once,
    recent_actions,
    report_failure,
    report_success,
)
from cimade_ovh.web import COMMON_HEADERS, STATUS_TEXTS, Request, Response, method_not_allowed

# --- The application: its state between requests ------------------------------------


class App:
    """The WSGI application: reads lines.ini, routes each request to a page or an action.

    A persistent process (FastCGI) keeps lines.ini, the OVH client, the access codes and the
    secret key until their file changes, and shares its reads of OVH (see SharedRead).
    """

    def __init__(self, lines_ini=None, ovh_conf=None, share_seconds=SHARE_SECONDS):
        self.lines_ini = Path(lines_ini or config.LINES_INI)
        self.ovh_conf = ovh_conf
        self.reads = SharedRead(share_seconds)
        self.expiry = KeyExpiry()
        self._settings = Reloaded(self.load_settings)
        self._client = Reloaded(self.open_client)
        self._codes = Reloaded(read_access_codes)
        self._key = Reloaded(lambda path, settings: secret_key(settings))

    def __call__(self, environ, start_response):
        request = Request(environ)
        CLIENT.set(request.client)
        try:
            response = self.route(request)
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.path)
            text = f"Une erreur inattendue s'est produite. Réessayez ; si cela dure, prévenez {self.contact()}."
            response = Response.page(pages.render_message("Erreur", text, request.base), 500)
        headers = [("Content-Type", response.content_type), ("Content-Length", str(len(response.body)))]
        headers += COMMON_HEADERS + response.headers
        if request.https:
            headers.append(("Strict-Transport-Security", "max-age=31536000"))
        start_response(f"{response.status} {STATUS_TEXTS[response.status]}", headers)
        return [b"" if request.method == "HEAD" else response.body]

    def contact(self):
        """Whom a page of errors names: the contact of the last lines.ini read, DEFAULT_CONTACT before any."""
        settings = self._settings.value
        return settings.contact if settings else DEFAULT_CONTACT

    def settings(self):
        """lines.ini, read again whenever the file changes; if it is broken, this process's last good one."""
        return self._settings.get(self.lines_ini)

    def load_settings(self, path):
        """Read lines.ini afresh; when it is broken, keep the last good one (say so to IT) if there is one."""
        last_good = self._settings.value
        try:
            settings = load_settings(path)
        except ConfigError as error:
            if last_good is None:
                raise
            keep_last_good(last_good, error)
            return last_good
        for section, error in settings.broken.items():
            log.error("configuration error, group [%s] not served: %s", section, error)
        self.reads.forget()
        return settings

    def client(self, settings):
        """The ovh client for ovh.conf, made again whenever the file changes."""
        return self._client.get(Path(self.ovh_conf or settings.ovh_conf), settings)

    def open_client(self, path, settings):
        """A new ovh client; with another ovh.conf, forget what the former one showed."""
        client = open_client(settings, path)
        if self._client.made:
            self.reads.forget()
            self.expiry.forget()
        return client

    def access_codes(self, settings):
        """The groups' hashed access codes, read again whenever access-codes.ini changes.

        A group that had a code and has none now (the file lost, moved, cut) is closed: its
        code is None. Only --remove-code opens it. Groups with a code are remembered in data_dir, and marked
        access_code = yes in lines.ini by --set-code: losing data_dir too leaves them closed.
        """
        codes = dict(self._codes.get(settings.access_codes))
        known = read_coded_groups(settings)
        if not set(codes) <= known:
            try:
                write_coded_groups(settings, known | set(codes))
            except OSError as error:
                log.error("cannot remember the groups with a code in %s: %s", coded_groups_path(settings), error)
        marked = {group.slug for group in settings.groups.values() if group.access_code}
        return {slug: None for slug in known | marked if slug in settings.groups} | codes

    def key(self, settings):
        """The secret key of data_dir, read again when the file changes (deleting it logs everyone out)."""
        return self._key.get(settings.data_dir / "secret.key", settings)

    def line(self, settings, group, moment):
        """The group's line on OVH, with what this process remembers of it (at first, what the latest read saw)."""
        from cimade_ovh.lines import LINE_KINDS

        client = LazyClient(lambda: self.client(settings))
        return LINE_KINDS[group.kind](client, group, moment, self.reads.memory(settings, group))

    # --- Routing ------------------------------------------------------------------

    def route(self, request):
        """Dispatch a request by method and path; group pages and actions go through the access checks."""
        refused = request.read_body()
        if refused == 413:
            return self.message(request, "Demande trop grande", "Cette demande est trop grande.", 413)
        if refused:
            text = "Cette demande est incomplète. Revenez à la page du groupe et réessayez."
            return self.message(request, "Demande incomplète", text, 400)
        if request.method not in ("GET", "HEAD", "POST"):
            return method_not_allowed(request, "GET, HEAD, POST")
        if request.path == "/favicon.ico":
            return Response(200, favicon(), "image/x-icon")
        try:
            settings = self.settings()
            codes = self.access_codes(settings)
        except ConfigError as error:
            log.error("configuration error: %s", error)
            text = f"La configuration de la page contient une erreur. Prévenez {self.contact()}."
            return self.message(request, "Erreur de configuration", text, 500)
        except OSError as error:
            return self.data_folder_error(request, settings, error)
        parts = [p for p in request.path.split("/") if p]
        if not parts:
            return Response.page(pages.render_index(settings, request.base))
        slug = parts[0].lower()
        group = settings.groups.get(slug)
        if group is None and slug in settings.broken and len(parts) <= 2:
            try:
                return self.broken_group(request, settings, slug, settings.broken[slug], codes)
            except OSError as error:
                return self.data_folder_error(request, settings, error)
        listening = len(parts) == 4 and parts[1::2] == ["messages", "audio"] and slug in codes  # A group with a code.
        action = "audio" if listening else "/".join(parts[1:])  # With a slash, no action of the group's: a 404.
        if group is None or not listening and action not in ("",) + actions_of(group, codes):
            return self.not_found(request)
        try:
            return self.group_route(request, settings, group, action, codes, parts[2] if listening else "")
        except OSError as error:
            return self.data_folder_error(request, settings, error)

    def group_route(self, request, settings, group, action, codes, message=""):
        """Dispatch a group's page, statistics, actions and messages' audio, behind its code and the form token."""
        if group.slug in codes and codes[group.slug] is None:
            return self.closed(request, settings, group)
        visit = Visit(request, settings, group, self.key(settings), codes.get(group.slug))
        if not visit.allowed() and action != "access":
            return self.access_page(visit)
        if not action:
            return self.group_page(visit)
        if action == "stats":
            return visit.respond(self.stats_page(request, settings, group))
        if action == "audio":  # /<group>/messages/<box:id>/audio, « Écouter »: None when not one of the group's.
            from cimade_ovh.voicemail_page import listen
            return visit.respond(listen(visit, message, self.line) or self.not_found(request))
        if request.method != "POST":
            return Response.redirect(f"{request.base}/{group.slug}")
        if request.from_elsewhere():
            origin, site = request.environ.get("HTTP_ORIGIN"), request.environ.get("HTTP_SEC_FETCH_SITE")
            log.warning("form from another site on %s from %s: Origin %s, Sec-Fetch-Site %s", request.path,
                        request.client, origin, site)  # fmt: skip
            text = "Cette demande ne vient pas de la page du groupe : rien n'a été fait."
            return self.message(request, "Demande refusée", text, 403)
        form = request.form()
        if not visit.token_matches(form):
            log.warning("form token missing or wrong on %s from %s", request.path, request.client)
            return self.expired(visit, form)
        return self.enter(visit, form) if action == "access" else self.act(visit, action, form)

    # --- Pages that only say something -------------------------------------------------

    def message(self, request, title, text, status):
        """A page with a single message."""
        return Response.page(pages.render_message(title, text, request.base), status)

    def not_found(self, request):
        """The French 404 page, with a link to the list of groups."""
        text = "Cette page n'existe pas. Vérifiez l'adresse, ou choisissez votre groupe dans la liste."
        return self.message(request, "Page introuvable", text, 404)

    def data_folder_error(self, request, settings, error):
        """The page that says the data folder cannot be used."""
        log.error("cannot use the data folder %s: %s", settings.data_dir, error)
        text = f"La page ne peut pas écrire dans son dossier de données. Prévenez {settings.contact}."
        return self.message(request, "Erreur de configuration", text, 500)

    def broken_group(self, request, settings, slug, error, codes):
        """The page of a group whose section of lines.ini is wrong: say so; which key, only to those it lets in."""
        text = (
            f"La configuration de ce groupe contient une erreur : la page ne peut pas le servir. "
            f"Prévenez {settings.contact}."
        )
        if self.lets_in(request, settings, slug, codes):
            where = error.replace(str(settings.path), settings.path.name, 1)
            text += f" Pour l'informatique : {where}"
        return self.message(request, "Erreur de configuration", text, 500)

    def lets_in(self, request, settings, slug, codes):
        """True when a broken group has no access code, or the browser holds a valid access cookie for its code.

        The group cannot be loaded, so no code form: a group whose code is lost lets nobody in.
        """
        stored = codes.get(slug)
        if stored is None:
            return slug not in read_coded_groups(settings)
        stand_in = Group(slug=slug, name="", kind="", billing_account="", number="")  # All a Visit needs: the slug.
        return Visit(request, settings, stand_in, self.key(settings), stored).allowed()

    def closed(self, request, settings, group):
        """The page of a group whose access code has vanished: closed, rather than open to all; IT is told."""
        log.error("%s: the group %s had an access code, %s has none", request.path, group.slug, settings.access_codes)
        notify_it_once(
            settings, f"{group.slug}-code-lost", timedelta(hours=1), f"{group.name} : code d'accès introuvable",
            f"{settings.access_codes} ne donne plus de code au groupe {group.slug}, qui en avait un : sa page est "
            f"fermée. Redonner un code (index.py --set-code {group.slug}) ou le retirer (--remove-code) la rouvre.",
        )  # fmt: skip
        text = f"La page de ce groupe est fermée : son code d'accès est introuvable. Prévenez {settings.contact}."
        return self.message(request, "Page fermée", text, 503)

    # --- The group's page ---------------------------------------------------------------

    def group_page(self, visit, typed=None, errors=None, status=200, messages=()):
        """Read the line's state from OVH and show it with the last actions and the forms."""
        from cimade_ovh.ends import todays_ends
        from cimade_ovh.forms import retyped
        from cimade_ovh.group_page import GroupView, read_flash, render_group
        from cimade_ovh.lines import named_mistake
        from cimade_ovh.queues import CONDITIONS_OFF_STEP
        from cimade_ovh.voicemail_page import page_read, voicemail_view

        request, settings, group = visit.request, visit.settings, visit.group
        moment = clock.now(settings.timezone)
        messages = list(messages)
        flash = read_flash(visit.read_cookie("flash"))
        typed = typed or retyped(flash, visit.read_cookie("retry"))  # A failed « start », to press again.
        state = failure = voicemail = None
        try:
            line, coded = self.line(settings, group, moment), visit.stored_code is not None
            read = page_read(line, group, coded)
            snap, expiration = parallel(
                lambda: self.reads.get(settings, group, lambda: named_mistake(line.client, group, read)),
                lambda: self.expiry.get(settings, line.client, self.ovh_conf or settings.ovh_conf),
            )
            state, voicemail = line.state(snap), voicemail_view(settings, group, snap, coded)
            ends = todays_ends(settings, group, moment)
            for volunteer in state.volunteers:
                planned = ends.get(volunteer.number, volunteer.until)
                # A queue's line closes at its period's end, even if an end stored for a failed action is later.
                volunteer.until = planned if volunteer.until is None else min(planned, volunteer.until)
                volunteer.mark = visit.mark(volunteer.number)
        except Exception as error:
            failure = as_failure(error)
            log.error("reading %s failed: %s", group.slug, failure)
            notify_it_once(
                settings, f"{group.slug}-{failure.reason}", timedelta(hours=1),
                f"{group.name} : impossible de lire l'état chez OVH ({failure.reason})", failure.detail,
            )  # fmt: skip
        else:
            messages.extend(self.expiration_warnings(settings, expiration, moment))
            if state.conditions_off:
                notify_it_once(
                    settings, f"{group.slug}-conditions-off", timedelta(days=1),
                    f"{group.name} : plages horaires désactivées chez OVH", CONDITIONS_OFF_STEP,
                )  # fmt: skip
        view = GroupView(
            settings, group, request.base, moment, state, failure, messages, visit.token(),
            typed or {}, errors or {}, recent_actions(settings, group), voicemail, None if errors else flash,
        )  # fmt: skip
        response = Response.page(render_group(view), status)
        for told in ("flash", "retry") if flash else ():
            response.headers.append(("Set-Cookie", visit.cookie(told, "", max_age=0)))
        return visit.respond(response)

    def expiration_warnings(self, settings, expiration, moment):
        """Warn on the page when the OVH key expires within 2 days; mail IT within EXPIRY_NOTICE (7 days)."""
        if expiration is None or expiration - moment > EXPIRY_NOTICE:
            return []
        when = format_day_time(expiration.astimezone(settings.timezone))
        notify_it_once(
            settings, "credential-expiration", timedelta(days=1),
            "La clé OVH expire bientôt",
            f"La clé d'accès à OVH de cimade-ovh expire le {when}. Créez-en une avec create_consumer_key.py.",
        )  # fmt: skip
        if expiration - moment > timedelta(days=2):
            return []
        text = f"La clé d'accès à OVH de cette page expire le {when}. Prévenez {settings.contact}."
        return [message_box("warning", text)]

    def stats_page(self, request, settings, group):
        """The statistics page of a queue group, read from the records alone: it makes no OVH request."""
        from cimade_ovh.figures import STATS_DAYS, daily_figures, read_records
        from cimade_ovh.stats_page import render_stats

        if request.method == "POST":
            return method_not_allowed(request, "GET, HEAD")
        last_day = clock.now(settings.timezone).date()
        first_day = last_day - timedelta(days=STATS_DAYS - 1)
        figures = daily_figures(read_records(settings, group, first_day, last_day), first_day, last_day)
        return Response.page(render_stats(group, request.base, figures))

    # --- The access code ------------------------------------------------------------------

    def access_page(self, visit, error="", status=403, messages=()):
        """Ask for the group's access code."""
        body = render_access(visit.settings, visit.group, visit.request.base, visit.token(), list(messages), error)
        return visit.respond(Response.page(body, status))

    def expired(self, visit, form):
        """A form without a valid token: do nothing, and show the page again with what was typed."""
        from cimade_ovh.forms import typed_in

        text = (
            "La page avait expiré, ou votre navigateur refuse les cookies de ce site : rien n'a été fait. "
            "Vérifiez ci-dessous, puis recommencez."
        )
        messages = [message_box("warning", text)]
        if not visit.allowed():
            return self.access_page(visit, status=403, messages=messages)
        return self.group_page(visit, typed_in(form), status=403, messages=messages)

    def enter(self, visit, form):
        """Check a group's access code; let the browser in for access_hours, or slow and lock out guessing."""
        request, settings, group = visit.request, visit.settings, visit.group
        moment = time.time()
        wrong = WrongCodes(settings, group, request.client)
        wait = wrong.claim(moment)
        if wait:
            minutes = -(-wait // 60)
            where = "pour ce groupe" if wrong.whole_group else "depuis cet appareil"
            error = f"Trop de codes erronés {where}. Réessayez dans {minutes} minute{'s' if minutes > 1 else ''}."
            response = self.access_page(visit, error, status=429)
            response.headers.append(("Retry-After", str(wait)))
            return response
        if not check_code(form.get("code", "").strip(), visit.stored_code):  # Pasted codes often carry spaces.
            log_activity(settings, group, "access", "", request.client, "code erroné")
            time.sleep(access.WRONG_CODE_DELAY)
            return self.access_page(visit, "Ce code n'est pas le bon. Vérifiez-le auprès de la coordination.")
        wrong.clear(moment)
        log_activity(settings, group, "access", "", request.client, "ok")
        lifetime = settings.access_hours * 3600
        value = access_cookie_value(visit.key, group, visit.stored_code, int(moment) + lifetime)
        response = Response.redirect(visit.group_url)
        response.headers.append(("Set-Cookie", visit.cookie("access", value, max_age=lifetime)))
        return visit.respond(response)

    # --- Actions ------------------------------------------------------------------------

    def act(self, visit, action, form):
        """A volunteer's action (permanence, voicemail message): read the form, perform under the lock, report."""
        from cimade_ovh.forms import read_action_form, retry_cookie, typed_in
        from cimade_ovh.state import Refusal

        request, settings, group = visit.request, visit.settings, visit.group
        moment = clock.now(settings.timezone)
        asked, errors = read_action_form(action, form, settings, group, moment)
        if errors and action in MESSAGE_ACTIONS:
            return self.group_page(visit, status=400, messages=[message_box("error", f"Prénom : {errors['name']}")])
        if errors:
            return self.group_page(visit, typed_in(form), errors, status=400)
        if action == "remove" and not asked.mark or action in MESSAGE_ACTIONS and not asked.message:
            text = "Cette demande est incomplète. Revenez à la page du groupe et réessayez."
            return self.message(request, "Demande incomplète", text, 400)
        with group_lock(settings, group) as lock:
            if lock is None:
                text = "Quelqu'un d'autre modifie cette permanence en ce moment : rien n'a été fait. Réessayez."
                messages = [message_box("warning", text)]
                return self.group_page(visit, typed_in(form), status=503, messages=messages)
            log_begun(settings, group, action, asked.number, request.client)
            retry = ""
            try:
                done, number, notes, detail = self.perform(visit, action, asked, moment)
            except Refusal as refusal:
                return self.group_page(visit, typed_in(form), {"number": str(refusal)}, status=409)
            except Exception as error:
                flash, mail = report_failure(settings, group, request.client, action, asked.number, error)
                retry = retry_cookie(typed_in(form)) if action == "start" else ""
            else:
                flash, mail = report_success(
                    settings, group, request.client, done, number, asked.end, notes, detail
                )
        notify_it(settings, *mail)  # Once the lock is released: sendmail may take seconds.
        response = Response.redirect(visit.group_url)
        response.headers.append(("Set-Cookie", visit.cookie("flash", flash, max_age=60)))
        if retry:
            response.headers.append(("Set-Cookie", visit.cookie("retry", retry, max_age=60)))
        return visit.respond(response)

    def perform(self, visit, action, asked, moment):
        """Do an action under the group's lock; return what was done (see report_success), the number, the notes
        (actions.Note) the volunteer is told besides, and the detail of a message's action (report_success).

        Notes: planned ends of volunteers on duty afterwards that could not be stored (nothing would end them),
        a first name typed that was dropped (an agent of IT's, whose description the page never changes).

        The planned ends are stored first: a write that OVH applies but never confirms still ends on time.
        """
        from cimade_ovh.actions import ENDS_NOT_KEPT, NAME_NOT_KEPT
        from cimade_ovh.ends import load_ends, store_after_action, write_ends
        from cimade_ovh.lines import named_mistake
        from cimade_ovh.state import Refusal
        from cimade_ovh.voicemail import mark_message

        settings, group = visit.settings, visit.group
        if action in MESSAGE_ACTIONS:  # No number: the detail names the message by its day, time and duration.
            done, number, detail = mark_message(self.line(settings, group, moment), self.reads, settings, action,
                                                asked, moment)  # fmt: skip
            return done, number, (), detail
        deadline = DEADLINE.set(time.monotonic() + ovhapi.ACTION_SECONDS)
        day, stored, readable = load_ends(settings, group)
        before = stored if day == moment.date() else {}
        ends = {**before, asked.number: asked.end} if action == "start" else before
        try:
            written = write_ends(settings, group, moment, ends)
            line = self.line(settings, group, moment)
            with self.reads.changing(settings, group):
                if action == "start":
                    outcome = named_mistake(line.client, group, line.start, asked.number, asked.name, ends)
                elif action == "remove":
                    outcome = named_mistake(
                        line.client, group, line.remove, lambda n: same_text(asked.mark, visit.mark(n)), ends
                    )
                else:
                    outcome = named_mistake(line.client, group, line.finish)
            if visit.stored_code is None:  # With a code, the page shows messages too: the next page reads them.
                self.reads.publish(settings, group, outcome.snap)
        except Refusal:
            write_ends(settings, group, moment, before)  # Refused: the number typed has no end to keep.
            raise
        finally:
            DEADLINE.reset(deadline)
        ends_lost = store_after_action(settings, group, moment, ends, outcome.state, asked.number, written, readable)
        done = outcome.word(end_changed=before.get(outcome.number) != asked.end)
        shown = [v.name for v in outcome.state.volunteers if v.number == outcome.number]
        name_dropped = group.kind == "queue" and bool(asked.name) and asked.name not in shown
        return done, outcome.number, [ENDS_NOT_KEPT] * ends_lost + [NAME_NOT_KEPT] * name_dropped, ""


def actions_of(group, codes):
    """What may follow a group's address: "remove" (a team), "stats" (a queue), "access" and messages' (a code)."""
    return (
        ("start", "finish")
        + (("remove",) if group.max_volunteers > 1 else ())
        + (("stats",) if group.kind == "queue" else ())
        + (("access",) + MESSAGE_ACTIONS if group.slug in codes else ())
    )


# --- Servers and command line ----------------------------------------------------------

application = App()


def main(argv=None):
    """The command line for IT: --demo, --serve, --check, --set-code, --remove-code or --unlock."""
    from cimade_ovh.commands import check, demo, parse_arguments, set_code, unlock  # Here: not for a CGI request.
    from cimade_ovh.rights import become_web_user

    args = parse_arguments(argv)
    if args.demo:
        return demo(App, args.host, args.port, args.state)
    elif args.serve:
        try:
            user = become_web_user(application.settings())
        except ConfigError as error:
            print(f"ERREUR : {error}")
            return 1
        if user:
            print(f"cimade-ovh : lancé par root, la page tourne en tant que {user}, comme sous Apache.", flush=True)
        return serve(application, args.host, args.port)
    elif args.set_code or args.remove_code:
        return set_code(application, args.set_code or args.remove_code, remove=bool(args.remove_code))
    elif args.unlock:
        return unlock(application, args.unlock)
    else:
        return check(application, args.snapshot)


if __name__ == "__main__":
    os.umask(0o027)  # What the page writes (volunteers' numbers) is never readable by other local users.
    log_to_stderr()
    if is_fastcgi():
        run_fastcgi(application)
    elif "GATEWAY_INTERFACE" in os.environ:
        run_cgi(application)
    else:
        sys.exit(main())
