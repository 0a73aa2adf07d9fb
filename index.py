#!/usr/bin/env python3
"""cimade-ovh: let the volunteers of La Cimade send a help line's calls to their phone.

A volunteer opens /lyon, types the number where they will answer and presses
one button: the group's OVH line now rings them. "Terminer" ends it. The groups
are described in lines.ini, one section each.

This file is the script Apache runs, as FastCGI (through flup), or as plain CGI
when no FastCGI server started it: the WSGI application's routing and its
request handlers. What they call lives in the package cimade_ovh, one module
per concern. From a shell:

    python3 index.py --demo            the page on a simulated OVH account
    python3 index.py --serve [--port]  the page on the OVH account of ovh.conf
    python3 index.py --check           check lines.ini, ovh.conf and each group on OVH
    python3 index.py --check --snapshot copie.json   … and copy each group's line (read only)
    python3 index.py --demo --state copie.json       the page on that copy, simulated
    python3 index.py --set-code lyon   ask for, then store, the access code of a group
    python3 index.py --unlock lyon     forget a group's wrong codes: nobody waits any more
"""

import logging
import os
import sys
import time
from datetime import datetime, timedelta, timezone
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
from cimade_ovh.clock import END_OF_DAY, format_day_time, format_duration, format_short_day_time, parse_ovh_datetime
from cimade_ovh.config import DEFAULT_CONTACT, ConfigError, Group, load_settings, script_command
from cimade_ovh.ends import todays_ends, write_ends
from cimade_ovh.figures import STATS_DAYS, daily_figures, read_records
from cimade_ovh.files import Reloaded, group_lock
from cimade_ovh.forms import MESSAGE_ACTIONS, read_action_form, typed_in
from cimade_ovh.lines import LINE_KINDS
from cimade_ovh.ovhapi import DEADLINE, LazyClient, OvhFailure, as_failure, parallel
from cimade_ovh.pages import (
    GroupView,
    VoicemailView,
    favicon,
    flash_message,
    message_box,
    read_flash,
    render_access,
    render_group,
)
from cimade_ovh.queues import CONDITIONS_OFF_STEP
from cimade_ovh.rights import become_web_user
from cimade_ovh.servers import is_fastcgi, log_to_stderr, run_cgi, run_fastcgi, serve
from cimade_ovh.sharing import EXPIRY_NOTICE, SHARE_SECONDS, KeyExpiry, SharedRead, open_client
from cimade_ovh.state import Refusal
from cimade_ovh.stats_page import render_stats
from cimade_ovh.traces import (
    keep_last_good,
    log_activity,
    notify_it,
    notify_it_once,
    recent_actions,
    report_failure,
    report_success,
)
from cimade_ovh.voicemail import (
    AUDIO_TYPE,
    HANDLED,
    TO_HANDLE,
    AudioNotReady,
    audio_url,
    boxes_of,
    byte_range,
    fetch_audio,
    messages_of,
    move,
    parse_key,
    read_handled,
    read_with_voicemail,
    write_handled,
)
from cimade_ovh.web import (
    CLIENT,
    COMMON_HEADERS,
    STATUS_TEXTS,
    Request,
    Response,
    method_not_allowed,
)

log = logging.getLogger("cimade-ovh")


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
        self.audio_urls = {}  # By (group, message key): the audio's URL OVH gave lately, and when it expires.

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
        code is None. Only --remove-code opens it. Groups with a code are remembered in data_dir.
        """
        codes = dict(self._codes.get(settings.access_codes))
        known = read_coded_groups(settings)
        if not set(codes) <= known:
            try:
                write_coded_groups(settings, known | set(codes))
            except OSError as error:
                log.error("cannot remember the groups with a code in %s: %s", coded_groups_path(settings), error)
        return {slug: None for slug in known if slug in settings.groups} | codes

    def key(self, settings):
        """The secret key of data_dir, read again when the file changes (deleting it logs everyone out)."""
        return self._key.get(settings.data_dir / "secret.key", settings)

    def line(self, settings, group, moment):
        """The group's line on OVH, with what this process remembers of it (at first, what the latest read saw)."""
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
        listening = group is not None and group.slug in codes and is_audio_path(parts)
        if group is None or len(parts) > 2 and not listening or len(parts) == 2 and parts[1] not in actions_of(
            group, codes
        ):
            return self.not_found(request)
        action = "audio" if listening else parts[1] if len(parts) == 2 else ""
        try:
            return self.group_route(request, settings, group, action, codes, parts[2] if listening else "")
        except OSError as error:
            return self.data_folder_error(request, settings, error)

    def group_route(self, request, settings, group, action, codes, message=""):
        """Dispatch a group's page, statistics, actions and audio, behind its access code and the form token."""
        if group.slug in codes and codes[group.slug] is None:
            return self.closed(request, settings, group)
        visit = Visit(request, settings, group, self.key(settings), codes.get(group.slug))
        if not visit.allowed() and action != "access":
            return self.access_page(visit)
        if not action:
            return self.group_page(visit)
        if action == "stats":
            return visit.respond(self.stats_page(request, settings, group))
        if action == "audio":
            return visit.respond(self.audio(visit, message))
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
        request, settings, group = visit.request, visit.settings, visit.group
        moment = clock.now(settings.timezone)
        messages = list(messages)
        flash = read_flash(visit.read_cookie("flash"))
        state = failure = voicemail = None
        try:
            line = self.line(settings, group, moment)
            read = line.snapshot
            if visit.stored_code is not None:  # Messages are only for those who typed the group's code.
                read = lambda: read_with_voicemail(line, group, line.memory)  # noqa: E731
            snap, expiration = parallel(
                lambda: self.reads.get(settings, group, read),
                lambda: self.expiry.get(settings, line.client, self.ovh_conf or settings.ovh_conf),
            )
            state = line.state(snap)
            voicemail = self.voicemail_view(visit, snap)
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
        if flash and not errors:
            interrupted = state is not None and state.interrupted
            messages.insert(0, flash_message(flash, settings.contact, failure is None, interrupted))
        view = GroupView(
            settings, group, request.base, moment, state, failure, messages, visit.token(),
            typed or {}, errors or {}, recent_actions(settings, group), voicemail,
        )  # fmt: skip
        response = Response.page(render_group(view), status)
        if flash:
            response.headers.append(("Set-Cookie", visit.cookie("flash", "", max_age=0)))
        return visit.respond(response)

    def voicemail_view(self, visit, snap):
        """What the page shows of the group's voicemail: its messages only behind the group's access code."""
        settings, group = visit.settings, visit.group
        if visit.stored_code is None:
            return VoicemailView(coded=False, set_code=script_command("index.py", "--set-code", group.slug))
        messages = messages_of(snap.voicemail, read_handled(settings, group), settings.timezone)
        failures = [(f["box"], OvhFailure(f["reason"], f["detail"])) for f in snap.voicemail.get("failures", [])]
        return VoicemailView(coded=True, messages=messages, failures=failures, boxes=snap.voicemail.get("boxes", []),
                             problems=snap.voicemail.get("problems", []))

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
        """Start, change, join, remove or finish a permanence: read the form, perform under the lock, report."""
        request, settings, group = visit.request, visit.settings, visit.group
        moment = clock.now(settings.timezone)
        asked, errors = read_action_form(action, form, settings, group, moment)
        if errors and action in MESSAGE_ACTIONS:
            return self.group_page(visit, status=400, messages=[message_box("error", f"Prénom : {errors['name']}")])
        if errors:
            return self.group_page(visit, typed_in(form), errors, status=400)
        if action == "remove" and not asked.mark or action in MESSAGE_ACTIONS and not parse_key(asked.message):
            text = "Cette demande est incomplète. Revenez à la page du groupe et réessayez."
            return self.message(request, "Demande incomplète", text, 400)
        with group_lock(settings, group) as lock:
            if lock is None:
                text = "Quelqu'un d'autre modifie cette permanence en ce moment : rien n'a été fait. Réessayez."
                messages = [message_box("warning", text)]
                return self.group_page(visit, typed_in(form), status=503, messages=messages)
            detail = ""
            try:
                if action in MESSAGE_ACTIONS:
                    done, detail = self.handle_message(visit, action, asked, moment)
                    number = ""
                else:
                    done, number = self.perform(visit, action, asked, moment)
            except Refusal as refusal:
                return self.group_page(visit, typed_in(form), {"number": str(refusal)}, status=409)
            except Exception as error:
                flash, mail = report_failure(settings, group, request.client, action, asked.number, error)
            else:
                flash, mail = report_success(settings, group, request.client, done, number, asked.end, detail)
        notify_it(settings, *mail)  # Once the lock is released: sendmail may take seconds.
        response = Response.redirect(visit.group_url)
        response.headers.append(("Set-Cookie", visit.cookie("flash", flash, max_age=60)))
        return visit.respond(response)

    def audio(self, visit, key):
        """A message's audio, asked of OVH and streamed by the page (OVH's URL never reaches the browser).

        Browsers on phones ask for ranges: one range is answered with 206, one out of the file with 416.
        """
        request, settings, group = visit.request, visit.settings, visit.group
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed(request, "GET, HEAD")
        contact = settings.contact
        if parse_key(key) is None:
            return self.not_found(request)
        try:
            line = self.line(settings, group, clock.now(settings.timezone))
            if parse_key(key)[0] not in (line.memory.get("boxes") or boxes_of(group, line.snapshot())):
                return self.not_found(request)
            data = self.audio_bytes(line.client, group, key)
        except AudioNotReady as error:
            log.warning("audio of %s on %s not ready: %s", key, group.slug, error)
            text = ("OVH n'a pas encore préparé l'enregistrement de ce message. Réessayez dans une minute ; "
                    f"si cela dure, prévenez {contact}.")  # fmt: skip
            return self.message(request, "Message pas encore prêt", text, 503)
        except Exception as error:
            failure = as_failure(error)
            log.error("audio of %s on %s failed: %s", key, group.slug, failure)
            if failure.reason == "not_found":
                text = "Ce message n'est plus sur le répondeur (effacé entre-temps). Rechargez la page du groupe."
                return self.message(request, "Message introuvable", text, 404)
            explanation, advice = ovhapi.describe_failure(failure, contact)
            return self.message(request, "Écoute impossible", f"{explanation} {advice}", 502)
        if data is None:
            text = f"OVH ne donne pas l'enregistrement de ce message. Réessayez ; si cela dure, prévenez {contact}."
            return self.message(request, "Écoute impossible", text, 502)
        size = len(data)
        wanted = byte_range(request.environ.get("HTTP_RANGE", ""), size)
        headers = [("Accept-Ranges", "bytes")]
        if wanted == "unsatisfiable":
            return Response(416, b"", AUDIO_TYPE, headers + [("Content-Range", f"bytes */{size}")])
        if wanted is None:
            return Response(200, data, AUDIO_TYPE, headers)
        first, last = wanted
        headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
        return Response(206, data[first : last + 1], AUDIO_TYPE, headers)

    def audio_bytes(self, client, group, key):
        """The audio of a message, at the URL OVH gave lately (kept in this process) or at a new one; None if none."""
        remembered = self.audio_urls.get((group.slug, key))
        now = datetime.now(timezone.utc)
        if remembered and (remembered[1] is None or remembered[1] > now):
            data = fetch_audio(client, remembered[0])
            if data is not None:
                return data
        url, expires = audio_url(client, group, key)
        self.audio_urls[group.slug, key] = (url, expires)
        data = fetch_audio(client, url)
        if data is None:
            self.audio_urls.pop((group.slug, key), None)
        return data

    def handle_message(self, visit, action, asked, moment):
        """Mark a voicemail message handled (« Traité », with the first name given) or to handle, under the lock.

        Return the word done and what the log says of the message. OVH's folder is the state; who
        handled it and when go to data/voicemail/ once OVH moved it. A message that another
        volunteer moved already is left as it is, with its record (or this one's, when a try
        that failed after OVH's move left none).
        """
        settings, group = visit.settings, visit.group
        deadline = DEADLINE.set(time.monotonic() + ovhapi.ACTION_SECONDS)
        try:
            line = self.line(settings, group, moment)
            box, _ = parse_key(asked.message)
            if box not in (line.memory.get("boxes") or boxes_of(group, line.snapshot())):
                return "message-gone", ""  # Not one of this group's boxes.
            folder = HANDLED if action == "handled" else TO_HANDLE
            with self.reads.changing(settings, group):
                message, moved = move(line.client, group, asked.message, folder)
        finally:
            DEADLINE.reset(deadline)
        if message is None:
            return "message-gone", ""
        records = read_handled(settings, group)
        before = dict(records)
        if action == "handled" and (moved or asked.message not in records):  # Moved by a try that failed after.
            records[asked.message] = {"by": asked.name, "at": moment.isoformat(timespec="seconds")}
        elif action == "unhandled":
            records.pop(asked.message, None)
        if records != before:
            write_handled(settings, group, records)
        received = parse_ovh_datetime(message.get("creationDatetime"), settings.timezone)
        detail = describe_message({"received": received, "duration": int(message.get("duration") or 0)})
        by = records.get(asked.message, {}).get("by") if action == "handled" else ""
        detail += f", par {by}" if by else ""
        return (action if moved else f"already-{action}"), detail

    def perform(self, visit, action, asked, moment):
        """Do an action on the group's line, under its lock; return what was done (see report_success) and the number.

        The planned ends are stored first: a write that OVH applies but never confirms still ends on time.
        """
        settings, group = visit.settings, visit.group
        deadline = DEADLINE.set(time.monotonic() + ovhapi.ACTION_SECONDS)
        before = todays_ends(settings, group, moment)
        ends = {**before, asked.number: asked.end} if action == "start" else before
        try:
            write_ends(settings, group, moment, ends)
            line = self.line(settings, group, moment)
            with self.reads.changing(settings, group):
                if action == "start":
                    outcome = line.start(asked.number, asked.name, ends)
                elif action == "remove":
                    outcome = line.remove(lambda n: same_text(asked.mark, visit.mark(n)), ends)
                else:
                    outcome = line.finish()
            if visit.stored_code is None:  # With a code, the page shows messages too: the next page reads them.
                self.reads.publish(settings, group, outcome.snap)
        except Refusal:
            write_ends(settings, group, moment, before)  # Refused: the number typed has no end to keep.
            raise
        finally:
            DEADLINE.reset(deadline)
        default = END_OF_DAY if outcome.state.until is None else outcome.state.until
        write_ends(settings, group, moment, {n: ends.get(n, default) for n in outcome.state.numbers})
        done = outcome.action
        if done == "on-duty":  # Say what changed: the name, the planned end, both or nothing.
            stored = before.get(outcome.number) != asked.end  # A retry after a failure has it stored already.
            changed = [c for c in ("name", "ends") if c in outcome.changed or c == "ends" and stored]
            done = "-".join(changed) or "same"
        return done, outcome.number


def is_audio_path(parts):
    """Whether a path's parts are those of a message's audio: /<group>/messages/<box:id>/audio."""
    return len(parts) == 4 and parts[1] == "messages" and parts[3] == "audio"


def describe_message(message):
    """What the activity log, the last actions and IT's mail say of a message: its day, time and duration only."""
    when = format_short_day_time(message["received"]) if message["received"] else "?"
    return f"message du {when} ({format_duration(message['duration'])})"


def actions_of(group, codes):
    """What may follow a group's address: "remove" (several volunteers), "stats" (a queue), "access" and the
    voicemail's actions (a code)."""
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
    from cimade_ovh.cli import french_parser, number_argument  # Here: a CGI request does not need them.
    from cimade_ovh.commands import check, demo, set_code, unlock

    parser = french_parser(description="cimade-ovh : la page qui envoie les appels d'une permanence au bénévole.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--demo", action="store_true", help="la page sur un compte OVH simulé")
    action.add_argument("--serve", action="store_true", help="la page sur le compte OVH de ovh.conf")
    action.add_argument("--check", action="store_true", help="vérifier lines.ini, ovh.conf et chaque groupe chez OVH")
    action.add_argument("--set-code", metavar="GROUPE", help="demander puis enregistrer le code d'accès d'un groupe")
    action.add_argument("--remove-code", metavar="GROUPE", help="retirer le code d'accès d'un groupe")
    action.add_argument("--unlock", metavar="GROUPE", help="lever le blocage après des codes erronés, sans attendre")
    parser.add_argument("--snapshot", metavar="FICHIER", help="avec --check : copier les lignes des groupes")
    parser.add_argument("--state", metavar="FICHIER", help="avec --demo : servir la page sur cette copie du compte")
    parser.add_argument("--host", default="127.0.0.1", metavar="ADRESSE", help="adresse d'écoute (127.0.0.1)")
    port = number_argument(0, 65535, "un numéro de port (0 à 65535)")
    parser.add_argument("--port", type=port, default=8080, help="port d'écoute (8080)")
    args = parser.parse_args(argv)
    if args.snapshot and not args.check or args.state and not args.demo:
        parser.error("--snapshot va avec --check, et --state avec --demo")
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
