#!/usr/bin/env python3
"""cimade-ovh: let the volunteers of La Cimade send a help line's calls to their phone.

A volunteer opens /lyon, types the number where they will answer and presses
one button: the group's OVH line now rings them. "Terminer" ends it. The groups
are described in lines.ini, one section each.

Under Apache this file runs as FastCGI (through flup), or as plain CGI when no
FastCGI server started it. From a shell:

    python3 index.py --demo            the page on a simulated OVH account
    python3 index.py --serve [--port]  the page on the OVH account of ovh.conf
    python3 index.py --check           check lines.ini, ovh.conf and each group on OVH
"""

import base64
import configparser
import email.message
import hashlib
import html
import logging
import os
import re
import shlex
import struct
import subprocess
import sys
import threading
import time
import traceback
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from string import Template
from urllib.parse import parse_qs, quote, unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HERE = Path(__file__).resolve().parent


# --- Virtualenv ---------------------------------------------------------------


def use_virtualenv(venv=HERE / ".venv3"):
    """Make the packages of .venv3 importable, so Apache needs no wrapper script."""
    if sys.prefix != sys.base_prefix:
        return  # Already running inside a virtualenv.
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_packages = venv / "lib" / version / "site-packages"
    if site_packages.is_dir():
        import site

        site.addsitedir(str(site_packages))


use_virtualenv()

log = logging.getLogger("cimade-ovh")


# --- Configuration (lines.ini) ------------------------------------------------

LINES_INI = Path(os.environ.get("LINES_INI") or HERE / "lines.ini")
SETTINGS_SECTION = "settings"
KINDS = ("queue", "redirect")
RESERVED_SLUGS = {SETTINGS_SECTION, "index.py", "favicon.ico"}
DEFAULT_RING_TIMEOUT = 10
MAX_TEAM = 20  # The most volunteers a queue group may set in max_volunteers.


class ConfigError(Exception):
    """A mistake in lines.ini or ovh.conf; the message names the file, section and key."""


@dataclass(frozen=True)
class Group:
    """A local group and its help line, as described by one section of lines.ini."""

    slug: str
    name: str
    kind: str
    billing_account: str
    number: str
    ring_timeout: int = DEFAULT_RING_TIMEOUT
    max_volunteers: int = 1
    agent_description: str = ""
    contact: str = ""


@dataclass(frozen=True)
class Settings:
    """Everything lines.ini says: the global settings and the groups by slug."""

    path: Path
    ovh_conf: Path
    data_dir: Path
    activity_log: Path
    notify: tuple
    sendmail: tuple
    contact: str
    timezone: ZoneInfo
    groups: dict


def read_ini(path):
    """Parse an ini file; raise ConfigError saying in French where it is wrong."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as file:
            parser.read_file(file)
    except OSError as error:
        raise ConfigError(f"{path} : lecture impossible ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} : le fichier doit être enregistré en UTF-8") from None
    except configparser.DuplicateOptionError as error:
        where = f"{path}, section [{error.section}], clé « {error.option} »"
        raise ConfigError(f"{where} (ligne {error.lineno}) : clé déjà donnée dans cette section") from None
    except configparser.DuplicateSectionError as error:
        raise ConfigError(f"{path}, section [{error.section}] (ligne {error.lineno}) : section déjà définie") from None
    except configparser.MissingSectionHeaderError as error:
        raise ConfigError(f"{path}, ligne {error.lineno} : une clé avant la première [section]") from None
    except configparser.ParsingError as error:
        lines = ", ".join(str(number) for number, _ in error.errors)
        raise ConfigError(f"{path}, ligne {lines} : ligne illisible (attendu : clé = valeur)") from None
    return parser


def load_settings(path=None):
    """Read and check lines.ini; raise ConfigError naming the file, section and key at fault."""
    path = Path(path or LINES_INI).resolve()
    parser = read_ini(path)

    def value(section, key, default=None):
        text = parser.get(section, key, fallback="").strip()
        if text:
            return text
        if default is None:
            raise ConfigError(f"{path}, section [{section}] : la clé « {key} » manque ou est vide")
        return default

    def resolve(text):
        return (path.parent / text).resolve()

    if not parser.has_section(SETTINGS_SECTION):
        raise ConfigError(f"{path} : la section [{SETTINGS_SECTION}] manque")
    zone_name = value(SETTINGS_SECTION, "timezone", "Europe/Paris")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{path}, section [{SETTINGS_SECTION}], clé « timezone » : fuseau horaire inconnu « {zone_name} »"
        ) from None
    data_dir = resolve(value(SETTINGS_SECTION, "data_dir", "data"))

    groups = {}
    for section in parser.sections():
        if section == SETTINGS_SECTION:
            continue
        slug = section.lower()
        where = f"{path}, section [{section}]"
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", slug) or slug in RESERVED_SLUGS:
            raise ConfigError(f"{where} : ce nom ne peut pas servir d'adresse (lettres, chiffres, - et _)")
        if slug in groups:
            raise ConfigError(f"{where} : le groupe « {slug} » est déjà défini plus haut")
        kind = value(section, "kind")
        if kind not in KINDS:
            raise ConfigError(f"{where}, clé « kind » : « {kind} » inconnu (attendu : queue ou redirect)")
        number = value(section, "number")
        if not re.fullmatch(r"00\d{6,15}", number):
            raise ConfigError(
                f"{where}, clé « number » : « {number} » n'est pas un numéro OVH (forme 0033…, sans espaces)"
            )
        ring_timeout = value(section, "ring_timeout", str(DEFAULT_RING_TIMEOUT))
        if not ring_timeout.isdigit() or not 1 <= int(ring_timeout) <= 120:
            raise ConfigError(f"{where}, clé « ring_timeout » : « {ring_timeout} » n'est pas une durée en secondes")
        max_volunteers = value(section, "max_volunteers", "1")
        if not max_volunteers.isdigit() or not 1 <= int(max_volunteers) <= MAX_TEAM:
            raise ConfigError(
                f"{where}, clé « max_volunteers » : « {max_volunteers} » n'est pas un nombre de 1 à {MAX_TEAM}"
            )
        if kind == "redirect" and int(max_volunteers) > 1:
            raise ConfigError(
                f"{where}, clé « max_volunteers » : un renvoi (kind = redirect) ne sonne que sur un numéro ; "
                "pour plusieurs bénévoles, il faut une file d'appels (kind = queue)"
            )
        name = value(section, "name")
        groups[slug] = Group(
            slug=slug,
            name=name,
            kind=kind,
            billing_account=value(section, "billing_account"),
            number=number,
            ring_timeout=int(ring_timeout),
            max_volunteers=int(max_volunteers),
            agent_description=value(section, "agent_description", f"Bénévole {name} (cimade-ovh)"),
            contact=value(section, "contact", ""),
        )

    return Settings(
        path=path,
        ovh_conf=resolve(value(SETTINGS_SECTION, "ovh_conf", "ovh.conf")),
        data_dir=data_dir,
        activity_log=resolve(value(SETTINGS_SECTION, "activity_log", str(data_dir / "activity.log"))),
        notify=tuple(a.strip() for a in value(SETTINGS_SECTION, "notify", "").split(",") if a.strip()),
        sendmail=tuple(shlex.split(value(SETTINGS_SECTION, "sendmail", "/usr/sbin/sendmail -t -oi"))),
        contact=value(SETTINGS_SECTION, "contact", "l'informatique de la Cimade"),
        timezone=zone,
        groups=groups,
    )


# --- Phone numbers ------------------------------------------------------------


class PhoneError(ValueError):
    """A number a volunteer typed that we cannot use; the message says why, in French."""


def normalize_phone(text):
    """Turn what a person typed or pasted into OVH's form 0033…, or raise PhoneError."""
    text = unicodedata.normalize("NFKC", text or "")
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Cc") and not c.isspace())
    text = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)  # ٠٦… (Arabic keypads) → 06…
    text = re.sub(r"[.\-/_]", "", text)
    if not text:
        raise PhoneError("Indiquez le numéro de téléphone sur lequel vous allez répondre.")
    if re.match(r"(\+|00)33\(0\)", text):
        text = text.replace("(0)", "", 1)
    text = text.replace("(", "").replace(")", "")
    wrong = sorted(set(re.sub(r"[\d+]", "", text)))
    if wrong or "+" in text[1:]:
        shown = " ".join(f"« {c} »" for c in wrong) or "« + »"
        raise PhoneError(f"Le numéro ne doit contenir que des chiffres ; il contient {shown}.")
    if text.startswith(("+33", "0033")):
        national = "0" + text[3 if text.startswith("+") else 4 :]
        if national.startswith("00"):
            national = national[1:]
    elif text.startswith(("+", "00")):
        raise PhoneError("Seuls les numéros français sont acceptés (06…, 07…, 01… ou +33…).")
    else:
        national = text
    if not national.startswith("0") and len(national) == 9:
        raise PhoneError("Le numéro doit commencer par 0 (par exemple 06 12 34 56 78) ou par +33.")
    if len(national) < 10:
        raise PhoneError(
            f"Le numéro est trop court : {len(national)} chiffres au lieu de 10. "
            "Les numéros courts ne peuvent pas recevoir les appels."
        )
    if len(national) > 10:
        raise PhoneError(f"Le numéro est trop long : {len(national)} chiffres au lieu de 10.")
    if not national.startswith("0"):
        raise PhoneError("Le numéro doit commencer par 0 (par exemple 06 12 34 56 78) ou par +33.")
    if national.startswith("08"):
        raise PhoneError(
            "Les numéros spéciaux en 08 ne peuvent pas recevoir les appels : donnez un numéro en 06, 07, 01…"
        )
    if national[1] not in "12345679":
        raise PhoneError("Ce numéro n'existe pas en France : il doit commencer par 01 à 07 ou 09.")
    return "0033" + national[1:]


def format_phone(number):
    """Show an OVH number the French way: 0033612345678 → 06 12 34 56 78."""
    number = number or ""
    if number.startswith("0033") and len(number) == 13:
        national = "0" + number[4:]
        return " ".join(national[i : i + 2] for i in range(0, 10, 2))
    return number


MAX_FIRST_NAME = 30


class FirstNameError(ValueError):
    """A first name a volunteer typed that we cannot show; the message says why, in French."""


def clean_first_name(text):
    """Tidy an optional first name (spaces, invisible characters); raise FirstNameError if it is not a name."""
    text = unicodedata.normalize("NFKC", text or "")
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Cc"))
    name = " ".join(text.split())
    if len(name) > MAX_FIRST_NAME:
        raise FirstNameError(f"Le prénom est trop long : {MAX_FIRST_NAME} caractères au plus.")
    if any(not (c.isalpha() or unicodedata.category(c).startswith("M") or c in " '’-.") for c in name):
        raise FirstNameError("Le prénom ne peut contenir que des lettres, des espaces, des apostrophes et des tirets.")
    return name


# --- Time ---------------------------------------------------------------------

OVH_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
FRENCH_WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
FRENCH_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


def now(zone):
    """The current time in `zone`; tests replace it to play other days."""
    return datetime.now(zone)


def format_day_time(moment):
    """A moment the French way: « jeudi 26 novembre 2026 à 16:28 »."""
    return (
        f"{FRENCH_WEEKDAYS[moment.weekday()]} {moment.day} {FRENCH_MONTHS[moment.month - 1]} "
        f"{moment.year} à {moment:%H:%M}"
    )


def parse_ovh_datetime(text, zone):
    """Read an OVH date (ISO 8601 with offset) into `zone`, or None."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(zone) if moment.tzinfo else moment.replace(tzinfo=zone)


# --- OVH ----------------------------------------------------------------------

OVH_TIMEOUT = (3.05, 8)  # Seconds to connect, then to wait for each answer: what a person will wait.


class OvhFailure(Exception):
    """OVH could not do what we asked; `reason` picks the French explanation, `detail` is for IT."""

    def __init__(self, reason, detail, explanation=None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.explanation = explanation


RETRY_LATER = "Réessayez dans quelques minutes ; si cela dure, prévenez $contact."
OVH_FAILURES = {
    "config": ("Le fichier de configuration OVH (ovh.conf) est absent ou incomplet.", "Prévenez $contact."),
    "unreachable": ("Impossible de joindre OVH.", RETRY_LATER),
    "timeout": ("OVH a mis trop de temps à répondre.", RETRY_LATER),
    "server": ("OVH a rencontré une erreur de son côté.", RETRY_LATER),
    "credential": (
        "La clé d'accès à OVH n'est plus valable (expirée ou révoquée).",
        "Prévenez $contact : il faut créer une nouvelle clé avec create_consumer_key.py.",
    ),
    "not_granted": (
        "La clé d'accès à OVH n'a pas les droits nécessaires pour ce groupe.",
        "Prévenez $contact : après l'ajout d'un groupe, il faut créer une nouvelle clé avec create_consumer_key.py.",
    ),
    "not_found": (
        "OVH ne connaît pas la ligne de ce groupe.",
        "Prévenez $contact : la configuration du groupe dans lines.ini est sans doute erronée.",
    ),
    "refused": ("OVH a refusé la demande.", "Réessayez ; si cela dure, prévenez $contact."),
    "unexpected": (
        "La ligne de ce groupe n'est pas configurée chez OVH comme la page l'attend.",
        "Prévenez $contact.",
    ),
    "mismatch": (
        "OVH a répondu, mais l'état relu ne correspond pas à ce qui a été demandé.",
        "Vérifiez l'état ci-dessous et réessayez ; si cela dure, prévenez $contact.",
    ),
}


def connect_ovh(endpoint, application_key, application_secret, consumer_key, timeout=None):
    """Return an ovh.Client; `endpoint` is an OVH name (ovh-eu) or a URL, such as the simulator's."""
    import ovh

    if endpoint.startswith(("http://", "https://")):
        # The ovh client only knows named endpoints: register the URL as a name of its own.
        ovh.client.ENDPOINTS.setdefault(endpoint, endpoint.rstrip("/"))
    return ovh.Client(
        endpoint=endpoint,
        application_key=application_key,
        application_secret=application_secret,
        consumer_key=consumer_key,
        timeout=timeout or OVH_TIMEOUT,
    )


OVH_KEYS = ("application_key", "application_secret", "consumer_key")


def ovh_conf_section(parser):
    """The endpoint an ovh.conf names, and the section that holds its keys: the endpoint's own, or [default]."""
    endpoint = parser.get("default", "endpoint", fallback="ovh-eu").strip()
    return endpoint, endpoint if parser.has_section(endpoint) else "default"


def read_ovh_conf(path, required=OVH_KEYS):
    """Read ovh.conf into connect_ovh's arguments; the `required` keys must be there."""
    parser = read_ini(path)
    endpoint, section = ovh_conf_section(parser)
    conf = {"endpoint": endpoint}
    for key in OVH_KEYS:
        conf[key] = parser.get(section, key, fallback="").strip()
        if key in required and not conf[key]:
            raise ConfigError(f"{path}, section [{section}] : la clé « {key} » manque ou est vide")
    return conf


def ovh_failure(error):
    """Translate an exception of the ovh client into an OvhFailure."""
    import ovh.exceptions as oe
    import requests

    if isinstance(error, OvhFailure):
        return error
    if isinstance(error, oe.HTTPError):
        cause = error.args[1] if len(error.args) > 1 else None
        reason = "timeout" if isinstance(cause, requests.Timeout) else "unreachable"
        return OvhFailure(reason, repr(cause or error))
    kinds = [
        ((oe.InvalidKey, oe.InvalidCredential, oe.NotCredential, oe.Forbidden), "credential"),
        ((oe.NotGrantedCall,), "not_granted"),
        ((oe.ResourceNotFoundError,), "not_found"),
        ((oe.BadParametersError, oe.ResourceConflictError, oe.ResourceExpiredError), "refused"),
        ((oe.InvalidResponse,), "server"),
    ]
    for classes, reason in kinds:
        if isinstance(error, classes):
            return OvhFailure(reason, f"{type(error).__name__}: {error}")
    return OvhFailure("server", f"{type(error).__name__}: {error}")


def parallel(*calls):
    """Run independent OVH calls at once and return their results in order."""
    if len(calls) <= 1:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]


def get_all(client, path):
    """GET a collection of ids, then every item of it in parallel."""
    return parallel(*[lambda i=i: client.get(f"{path}/{i}") for i in client.get(path)])


# --- Lines: what a call to the group's number does ------------------------------


@dataclass
class Call:
    """A call in a queue: waiting, or answered by a volunteer."""

    waiting: bool
    begin: datetime
    answered: datetime = None
    agent: str = ""


@dataclass
class Volunteer:
    """A number the permanence sends calls to, with what the page knows of it."""

    number: str
    name: str = ""  # The first name the volunteer typed, if any.
    agent_id: int = None  # Queue: the OVH agent that rings this number.
    call: Call = None  # Queue: the call this volunteer is on, if any.


@dataclass
class LineState:
    """What the page shows of a line, read from OVH."""

    running: bool  # A permanence started by the page is on.
    volunteers: list  # The Volunteers the permanence sends calls to.
    rings_now: list  # The numbers a call would ring right now.
    sip_line: str = ""  # Redirect: where calls go without a permanence.
    calls: list = field(default_factory=list)
    open_without_volunteer: bool = False  # Queue: the period is open but nobody is available.

    @property
    def numbers(self):
        """The volunteers' numbers."""
        return [v.number for v in self.volunteers]


@dataclass
class Outcome:
    """What an action did ("start", "change", "add", "same", "remove", "gone", "finish", "nothing"), to which number."""

    action: str
    number: str
    state: LineState


class Refusal(Exception):
    """An action the page will not do as asked; the message tells the volunteer why, in French."""


class RedirectLine:
    """A public number that goes to a SIP line, whose unconditional forward we set."""

    def __init__(self, client, group, moment):
        self.client = client
        self.group = group
        self.redirect_path = f"/telephony/{group.billing_account}/redirect/{group.number}"
        self._sip_line = None

    def sip_line(self):
        """The SIP line the public number goes to."""
        if self._sip_line is None:
            redirect = self.client.get(self.redirect_path)
            if redirect.get("featureType") != "redirect" or not redirect.get("destination"):
                raise OvhFailure(
                    "unexpected",
                    f"{self.redirect_path}: featureType={redirect.get('featureType')!r} "
                    f"destination={redirect.get('destination')!r}",
                    "Le numéro public de ce groupe ne renvoie pas vers une ligne SIP.",
                )
            self._sip_line = redirect["destination"]
        return self._sip_line

    def options_path(self):
        """The OVH path of the SIP line's options."""
        return f"/telephony/{self.group.billing_account}/line/{self.sip_line()}/options"

    def read_state(self):
        """Read whether the SIP line forwards, and where."""
        options = self.client.get(self.options_path())
        forward = options.get("forwardUnconditionalNumber") if options.get("forwardUnconditional") else None
        return LineState(
            running=bool(forward),
            volunteers=[Volunteer(forward)] if forward else [],
            rings_now=[forward] if forward else [self.sip_line()],
            sip_line=self.sip_line(),
        )

    def start(self, number, name=""):
        """Forward the SIP line to `number` (a forward has no name); return the Outcome."""
        before = self.read_state()
        if before.numbers == [number]:
            return Outcome("same", number, before)
        self.client.put(
            self.options_path(),
            forwardUnconditional=True,
            forwardUnconditionalNumber=number,
            forwardUnconditionalNature="number",
        )
        state = self.read_state()
        verify(state.numbers == [number], f"forward should go to {number}, reads {state.numbers}")
        return Outcome("change" if before.running else "start", number, state)

    def finish(self):
        """Clear the SIP line's forward; return the Outcome ("finish", or "nothing" when it was off)."""
        before = self.read_state()
        self.client.put(self.options_path(), forwardUnconditional=False)
        state = self.read_state()
        verify(not state.running, f"forward should be off, reads {state.numbers}")
        return Outcome("finish" if before.running else "nothing", "", state)


PERIOD_FROM, PERIOD_TO, PERIOD_POLICY = "02:00:00", "23:59:59", "available"
NAME_SEPARATOR = " – "  # Between the group's agent description and a volunteer's first name.


@dataclass
class QueueSnapshot:
    """The raw OVH objects of an easyHunting service that the page works with."""

    queue_id: int
    agents: list
    attached: set
    conditions: list
    calls: list


class QueueLine:
    """An easyHunting queue: the volunteers are its available agents, during a period opened for the day."""

    def __init__(self, client, group, moment):
        self.client = client
        self.group = group
        self.moment = moment
        self.today = OVH_WEEKDAYS[moment.weekday()]
        service = f"/telephony/{group.billing_account}/easyHunting/{group.number}"
        self.hunting = f"{service}/hunting"
        self.conditions_path = f"{service}/timeConditions/conditions"

    def queue_id(self):
        """The id of the service's only queue."""
        ids = self.client.get(f"{self.hunting}/queue")
        if len(ids) != 1:
            raise OvhFailure(
                "unexpected",
                f"{self.hunting}/queue lists {ids}",
                f"La ligne de ce groupe devrait avoir exactement une file d'appels ; OVH en montre {len(ids)}.",
            )
        return ids[0]

    def snapshot(self):
        """Read agents, queue members, time conditions and live calls, in parallel."""
        queue_id = self.queue_id()
        queue = f"{self.hunting}/queue/{queue_id}"
        agents, attached, conditions, calls = parallel(
            lambda: get_all(self.client, f"{self.hunting}/agent"),
            lambda: set(self.client.get(f"{queue}/agent")),
            lambda: get_all(self.client, self.conditions_path),
            lambda: get_all(self.client, f"{queue}/liveCalls"),
        )
        return QueueSnapshot(queue_id, agents, attached, conditions, calls)

    def page_periods(self, snap):
        """The time conditions the page opened (02:00–23:59:59, available), on any weekday."""
        return [
            c
            for c in snap.conditions
            if (c["timeFrom"], c["timeTo"], c["policy"]) == (PERIOD_FROM, PERIOD_TO, PERIOD_POLICY)
        ]

    def todays_period(self, snap):
        """The period the page opened for today, if any."""
        return next((c for c in self.page_periods(snap) if c["weekDay"] == self.today), None)

    def description(self, name):
        """The agent description on OVH: the group's, then the volunteer's first name if given."""
        return f"{self.group.agent_description}{NAME_SEPARATOR}{name}" if name else self.group.agent_description

    def first_name(self, agent):
        """The first name a volunteer gave, read back from their agent's description."""
        prefix = self.group.agent_description + NAME_SEPARATOR
        description = agent.get("description") or ""
        return description[len(prefix) :] if description.startswith(prefix) else ""

    def state(self, snap):
        """What the snapshot means for callers, now."""
        zone = self.moment.tzinfo
        calls = sorted(
            (
                Call(
                    waiting=c.get("state") != "Answered",
                    begin=parse_ovh_datetime(c.get("begin"), zone),
                    answered=parse_ovh_datetime(c.get("answered"), zone),
                    agent=c.get("agent") or "",
                )
                for c in snap.calls
            ),
            key=lambda call: call.begin or self.moment,
        )
        volunteers = [
            Volunteer(
                number=a["number"],
                name=self.first_name(a),
                agent_id=a["agentId"],
                call=next((c for c in calls if not c.waiting and c.agent == a["number"]), None),
            )
            for a in snap.agents
            if a["status"] == "available" and a["agentId"] in snap.attached
        ]
        clock = f"{self.moment:%H:%M:%S}"
        open_now = any(
            c["weekDay"] == self.today and c["policy"] == "available" and c["timeFrom"] <= clock <= c["timeTo"]
            for c in snap.conditions
        )
        running = self.todays_period(snap) is not None
        return LineState(
            running=running,
            volunteers=volunteers,
            rings_now=[v.number for v in volunteers] if open_now else [],
            calls=calls,
            open_without_volunteer=running and not volunteers,
        )

    def read_state(self):
        """Read the queue's state from OVH."""
        return self.state(self.snapshot())

    def start(self, number, name=""):
        """Answer on `number`: start, change the number, or join the volunteers; return the Outcome.

        With one volunteer at a time, a new number replaces the one on duty.
        With several, it joins them, up to the group's max_volunteers.
        """
        snap = self.snapshot()
        before = self.state(snap)
        on_duty = before.numbers if before.running else self.interrupted(snap)
        if number in on_duty and before.running:
            if name in ("", next(v.name for v in before.volunteers if v.number == number)):
                return Outcome("same", number, before)
            return Outcome("same", number, self.staff(snap, on_duty, number, name))
        if self.group.max_volunteers == 1 or not on_duty:
            return Outcome("change" if on_duty else "start", number, self.staff(snap, [number], number, name))
        wanted = on_duty if number in on_duty else on_duty + [number]
        if len(wanted) > self.group.max_volunteers:
            raise Refusal(
                f"La permanence compte déjà {len(on_duty)} bénévoles, le maximum pour ce groupe. "
                "Pour répondre à la place de quelqu'un, retirez d'abord son numéro."
            )
        return Outcome("add", number, self.staff(snap, wanted, number, name))

    def interrupted(self, snap):
        """The volunteers of a permanence whose period an interrupted change closed and did not reopen.

        They are the page's agents (by their description) still available and
        in the queue while no period of the page is open on any day; a period
        left from an earlier day means a forgotten permanence, not one to resume.
        """
        if self.group.max_volunteers == 1 or self.page_periods(snap):
            return []
        return [a["number"] for a in self.page_agents(snap)]

    def page_agents(self, snap):
        """The agents the page made available (known by their description) that are in the queue."""
        return [
            a
            for a in snap.agents
            if a["status"] == "available"
            and a["agentId"] in snap.attached
            and (a.get("description") or "").startswith(self.group.agent_description)
        ]

    def remove(self, agent_id):
        """Stop sending calls to one volunteer; the last one leaving finishes the permanence.

        The others' agents were set before the period opened and stay as they
        are, so the period stays open: only the leaving agent is logged out.
        """
        snap = self.snapshot()
        before = self.state(snap)
        leaving = next((v for v in before.volunteers if v.agent_id == agent_id), None)
        if leaving is None or not before.running:
            return Outcome("gone", "", before)
        if len(before.volunteers) == 1:
            return self.finish()
        agent = next(a for a in snap.agents if a["agentId"] == agent_id)
        self.set_status(agent, "loggedOut")
        state = self.read_state()
        staying = [n for n in before.numbers if n != leaving.number]
        verify(state.running and sorted(state.numbers) == sorted(staying), f"expected {staying} on duty, reads {state}")
        return Outcome("remove", leaving.number, state)

    def staff(self, snap, numbers, newcomer=None, name=""):
        """Make `numbers` the available agents and today's period open; return the state read back.

        OVH forwards to an external number reliably only if the agent is set
        before the period opens: a change of the numbers during a permanence
        closes the period, switches the agents, then reopens it.
        """
        period = self.todays_period(snap)
        available = [a for a in snap.agents if a["status"] == "available" and a["agentId"] in snap.attached]
        changing = period is not None and sorted(a["number"] for a in available) != sorted(numbers)
        if changing:
            self.client.delete(f"{self.conditions_path}/{period['conditionId']}")
        others = [a for a in snap.agents if a["status"] == "available" and a["number"] not in numbers]
        parallel(*[lambda a=a: self.set_status(a, "loggedOut") for a in others])
        agents = {a["number"]: a for a in snap.agents}
        parallel(
            *[lambda n=n: self.make_available(snap, agents.get(n), n, name if n == newcomer else None) for n in numbers]
        )
        self.remove_periods([p for p in self.page_periods(snap) if p["weekDay"] != self.today])
        if changing or period is None:
            self.open_period()
        state = self.read_state()
        verify(state.running and sorted(state.numbers) == sorted(numbers), f"expected {numbers} on duty, reads {state}")
        return state

    def make_available(self, snap, agent, number, name):
        """Make `number` an available agent of the queue, with the group's settings; `name` None keeps its name."""
        settings = {"timeout": self.group.ring_timeout, "simultaneousLines": 1, "wrapUpTime": 0}
        if agent is None:
            agent = self.client.post(
                f"{self.hunting}/agent",
                number=number,
                status="available",
                description=self.description(name),
                **settings,
            )
        else:
            wanted = dict(settings, status="available")
            if name is not None:
                wanted["description"] = self.description(name)
            if any(agent.get(key) != value for key, value in wanted.items()):
                self.client.put(f"{self.hunting}/agent/{agent['agentId']}", **wanted)
        if agent["agentId"] not in snap.attached:
            self.client.post(f"{self.hunting}/agent/{agent['agentId']}/queue", queueId=snap.queue_id, position=1)

    def finish(self):
        """Log the agents out, then close every period the page opened; return the Outcome.

        Agents go first: if OVH fails halfway, the period is open with nobody
        available, which the page shows, rather than volunteers left available.
        """
        snap = self.snapshot()
        before = self.state(snap)
        available = [a for a in snap.agents if a["status"] == "available"]
        parallel(*[lambda a=a: self.set_status(a, "loggedOut") for a in available])
        self.remove_periods(self.page_periods(snap))
        state = self.read_state()
        verify(not state.running and not state.volunteers, f"expected nobody on duty, reads {state}")
        return Outcome("finish" if before.running or before.volunteers else "nothing", "", state)

    def set_status(self, agent, status):
        """Set an agent's status (available or loggedOut)."""
        self.client.put(f"{self.hunting}/agent/{agent['agentId']}", status=status)

    def remove_periods(self, periods):
        """Delete time conditions the page opened."""
        parallel(*[lambda p=p: self.client.delete(f"{self.conditions_path}/{p['conditionId']}") for p in periods])

    def open_period(self):
        """Open today's period; an identical period that already exists is fine."""
        import ovh.exceptions

        try:
            self.client.post(
                self.conditions_path, weekDay=self.today, timeFrom=PERIOD_FROM, timeTo=PERIOD_TO, policy=PERIOD_POLICY
            )
        except ovh.exceptions.BadParametersError:
            if self.todays_period(self.snapshot()) is None:
                raise


LINE_KINDS = {"redirect": RedirectLine, "queue": QueueLine}


def verify(condition, detail):
    """Raise a mismatch failure when the state read back is not what was asked."""
    if not condition:
        raise OvhFailure("mismatch", detail)


# --- Traces: activity log and mail to IT ----------------------------------------


def log_activity(settings, group, action, number, client, result):
    """Append one line to the activity log: time, group, action, number, client address, result."""
    fields = [now(settings.timezone).isoformat(timespec="seconds"), group.slug, action, number or "-", client, result]
    line = "\t".join(" ".join(str(f or "-").split()) for f in fields)
    try:
        settings.activity_log.parent.mkdir(parents=True, exist_ok=True)
        with open(settings.activity_log, "a", encoding="utf-8") as file:
            file.write(line + "\n")
    except OSError as error:
        log.error("cannot write the activity log %s: %s; line was: %s", settings.activity_log, error, line)


def notify_it(settings, subject, body):
    """Mail IT through the configured sendmail command; a failure is logged, never raised."""
    if not settings.notify or not settings.sendmail:
        return
    message = email.message.EmailMessage()
    message["To"] = ", ".join(settings.notify)
    message["Subject"] = f"[cimade-ovh] {subject}"
    message.set_content(body)
    try:
        subprocess.run(settings.sendmail, input=message.as_bytes(), capture_output=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        log.error("cannot mail %s with %s: %s", settings.notify, settings.sendmail, error)


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


def describe_failure(failure, contact):
    """The French sentences that explain a failure to a volunteer."""
    explanation, advice = OVH_FAILURES[failure.reason]
    return failure.explanation or explanation, Template(advice).safe_substitute(contact=contact)


def as_failure(error):
    """Turn whatever went wrong while talking to OVH into an OvhFailure."""
    if isinstance(error, OvhFailure):
        return error
    if isinstance(error, ConfigError):
        return OvhFailure("config", str(error))
    if type(error).__module__.startswith(("ovh", "requests")):
        return ovh_failure(error)
    return OvhFailure("unexpected", "".join(traceback.format_exception(error)))


# --- Pages --------------------------------------------------------------------

STYLE = """
body{margin:0;font:1.125rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;background:#fff}
main{max-width:36rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;line-height:1.25;margin:.5rem 0}
h2{font-size:1.2rem;margin:1.75rem 0 .5rem}
p{margin:.5rem 0}
a{color:#0b4fb3;display:inline-block;padding:.625rem 0}
.muted{color:#4a4a4a}
.box{border:2px solid;border-radius:.5rem;padding:.5rem 1rem;margin:1rem 0}
.ok{background:#e9f6ec;border-color:#1e6b34}
.error{background:#fdecea;border-color:#a4161a}
.warning{background:#fff6db;border-color:#7a5a00}
.on{font-weight:600;color:#1e6b34}
.off{font-weight:600}
.tel{white-space:nowrap}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input{box-sizing:border-box;width:100%;font-size:1.25rem;padding:.6rem;border:2px solid #4a4a4a;border-radius:.4rem}
input[aria-invalid=true]{border-color:#a4161a}
.field-error{color:#a4161a;font-weight:600}
button{width:100%;min-height:3rem;margin-top:.75rem;padding:.6rem 1rem;border:0;border-radius:.4rem;
font:inherit;font-weight:600;color:#fff;background:#a4161a;cursor:pointer}
button.finish{background:#2b2b2b}
form.inline{display:inline}
button.remove{width:auto;min-height:2.75rem;margin:0 0 0 .5rem;padding:.25rem .9rem;color:#1b1b1b;background:#e8e8e8;
border:2px solid #4a4a4a}
ul.team li{margin:.5rem 0}
ul{padding-left:1.25rem}
li{margin:.25rem 0}
footer{margin-top:2rem;font-size:1rem}
""".strip()

PAGE = Template(
    """<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>$style</style>
</head>
<body>
<main>
$body
</main>
</body>
</html>
"""
)

INDEX_BODY = Template(
    """<h1>Permanences téléphoniques de la Cimade</h1>
<p>Choisissez votre groupe :</p>
<ul>
$groups
</ul>"""
)

GROUP_BODY = Template(
    """<h1>Permanence téléphonique<br>$name</h1>
<p class="muted">Numéro du groupe : <span class="tel">$public_number</span><br>$time</p>
$messages
<h2>En ce moment</h2>
$state
<h2>Répondre aux appels</h2>
<form method="post" action="$start_url">
$fields
$start_note
<button type="submit">$start_label</button>
</form>
<h2>Terminer</h2>
<form method="post" action="$finish_url">
$finish_warning
<button type="submit" class="finish">$finish_label</button>
</form>
<footer>
$contact
<p><a href="$home_url">Tous les groupes</a></p>
</footer>"""
)

MESSAGE_BODY = Template(
    """<h1>$title</h1>
<div class="box $kind"><p>$message</p></div>
<p><a href="$home_url">Retour à la liste des groupes</a></p>"""
)

FLASH_TEXTS = {
    "start": "C'est fait : les appels arrivent maintenant sur le $number.",
    "change": "C'est fait : le numéro a changé, les appels arrivent maintenant sur le $number.",
    "finish": "La permanence est terminée : les appels n'arrivent plus sur le numéro du bénévole.",
    "nothing": "Il n'y avait pas de permanence en cours ; rien n'a changé.",
    "same": "Le $number reçoit déjà les appels ; rien n'a changé.",
    "add": "C'est fait : le $number reçoit aussi les appels.",
    "remove": "C'est fait : le $number ne reçoit plus les appels ; les autres bénévoles continuent.",
    "gone": "Ce numéro ne recevait déjà plus les appels ; rien n'a changé.",
}


def escape(text):
    """Escape text for HTML."""
    return html.escape(str(text), quote=True)


def render_page(title, body):
    """The whole HTML document around a body."""
    return PAGE.substitute(title=escape(title), style=STYLE, body=body)


def render_index(settings, base):
    """The list of groups."""
    groups = "\n".join(
        f'<li><a href="{escape(base)}/{escape(g.slug)}">{escape(g.name)}</a> '
        f'<span class="muted tel">({escape(format_phone(g.number))})</span></li>'
        for g in sorted(settings.groups.values(), key=lambda g: g.name.lower())
    )
    return render_page("Permanences téléphoniques de la Cimade", INDEX_BODY.substitute(groups=groups))


def render_message(title, message, base, kind="error"):
    """A page that only says something, such as an error or a page not found."""
    body = MESSAGE_BODY.substitute(title=escape(title), kind=kind, message=escape(message), home_url=f"{base}/")
    return render_page(title, body)


def render_state(group, state, failure, contact, base):
    """The "En ce moment" part of a group page: permanence, where a call would ring, calls."""
    if failure:
        explanation, advice = describe_failure(failure, contact)
        return (
            '<div class="box error"><p><strong>Impossible de lire l\'état de la ligne chez OVH.</strong></p>'
            f"<p>{escape(explanation)} {escape(advice)}</p></div>"
        )
    if state.running and state.volunteers and group.max_volunteers > 1:
        lines = [render_team(group, state, base)]
    elif state.running and state.volunteers:
        lines = [f'<p class="on">Permanence en cours sur le {phone_list(state.numbers)}</p>']
    elif state.open_without_volunteer:
        lines = ['<p class="off">La permanence est ouverte, mais aucun numéro ne reçoit les appels.</p>']
    else:
        lines = ['<p class="off">Pas de permanence en cours.</p>']
    if group.kind == "redirect" and not state.running:
        sip_line = escape(format_phone(state.sip_line))
        lines.append(f'<p>Les appels arrivent sur la ligne SIP du groupe <span class="tel">({sip_line}).</span></p>')
    elif state.rings_now:
        lines.append(f"<p>Si quelqu'un appelle maintenant, ça sonne sur le {phone_list(state.rings_now)}</p>")
    else:
        lines.append("<p>Si quelqu'un appelle maintenant, ça ne sonne chez personne.</p>")
    if group.kind == "queue":
        lines.append(render_calls(state.calls))
    return "\n".join(lines)


def render_team(group, state, base):
    """The volunteers answering together: name, number, their call, and a button to remove each."""
    count = len(state.volunteers)
    items = []
    for volunteer in state.volunteers:
        who = phone_span(volunteer.number)
        if volunteer.name:
            who = f"{escape(volunteer.name)}, {who}"
        call = volunteer.call
        doing = f"en appel depuis {call.answered or call.begin:%H:%M}" if call else "libre"
        label = escape(f"Retirer le {format_phone(volunteer.number)}")
        items.append(
            f"<li>{who} : {doing}\n"
            f'<form method="post" action="{escape(base)}/{escape(group.slug)}/remove" class="inline">'
            f'<input type="hidden" name="agent" value="{escape(volunteer.agent_id)}">'
            f'<button type="submit" class="remove" aria-label="{label}">Retirer</button></form></li>'
        )
    heading = f"{count} bénévole{'s' if count > 1 else ''} sur {group.max_volunteers} au plus"
    return f'<p class="on">Permanence en cours : {heading}.</p>\n<ul class="team">\n' + "\n".join(items) + "\n</ul>"


def phone_span(number):
    """A number the French way, kept on one line."""
    return f'<span class="tel">{escape(format_phone(number))}</span>'


def phone_list(numbers):
    """Numbers separated by commas and ending with a full stop, each kept on one line."""
    last = len(numbers) - 1
    return " ".join(
        f'<span class="tel">{escape(format_phone(n))}{"." if i == last else ","}</span>' for i, n in enumerate(numbers)
    )


def render_calls(calls):
    """The calls in progress and waiting in a queue."""
    if not calls:
        return "<p>Aucun appel en cours ni en attente.</p>"
    items = []
    for call in calls:
        since = f"{call.begin:%H:%M}" if call.begin else "?"
        if call.waiting:
            items.append(f"<li>Appel en attente depuis {since}</li>")
        else:
            answered = f"{call.answered:%H:%M}" if call.answered else since
            items.append(f"<li>Appel en cours depuis {answered} avec le {escape(format_phone(call.agent))}</li>")
    return "<p>Appels :</p>\n<ul>\n" + "\n".join(items) + "\n</ul>"


def render_group(settings, group, base, moment, state, failure, messages, typed=None, errors=None):
    """A group's page: its state, the form to start, change or join, the form to finish."""
    typed, errors = typed or {}, errors or {}
    url = f"{base}/{group.slug}"
    team = group.max_volunteers > 1
    on_duty = state.numbers if state and state.running else []
    fields = []
    if team:
        fields.append(input_field("name", "Votre prénom (facultatif)", "text", "given-name", typed, errors))
    fields.append(input_field("number", "Votre numéro de téléphone", "tel", "tel", typed, errors))
    if team and len(on_duty) >= group.max_volunteers:
        start_note = (
            f"<p>La permanence est complète ({len(on_duty)} bénévoles). "
            "Pour répondre à la place de quelqu'un, retirez d'abord son numéro.</p>"
        )
    elif on_duty and not team:
        start_note = f"<p>{escape(ONE_NUMBER_ONLY[group.kind])}</p>"
    else:
        start_note = ""
    contact = f"<p>Contact du groupe : {escape(group.contact)}</p>" if group.contact else ""
    finish_warning = (
        "<p>Les appels déjà en attente dans la file peuvent encore arriver sur votre numéro après la fin.</p>"
        if group.kind == "queue"
        else ""
    )
    body = GROUP_BODY.substitute(
        name=escape(group.name),
        public_number=escape(format_phone(group.number)),
        time=escape(format_day_time(moment)),
        messages="\n".join(messages),
        state=render_state(group, state, failure, settings.contact, base),
        start_url=escape(f"{url}/start"),
        fields="\n".join(fields),
        start_note=start_note,
        start_label="Ajouter mon numéro" if team and on_duty else "Répondre sur ce numéro",
        finish_url=escape(f"{url}/finish"),
        finish_warning=finish_warning,
        finish_label="Terminer la permanence pour tout le monde" if team else "Terminer la permanence",
        contact=contact,
        home_url=escape(f"{base}/"),
    )
    return render_page(f"Permanence {group.name}", body)


ONE_NUMBER_ONLY = {
    "redirect": "Cette ligne renvoie les appels vers un seul numéro à la fois : "
    "le vôtre remplacera celui de la permanence en cours.",
    "queue": "Ce groupe reçoit les appels sur un seul numéro à la fois : "
    "le vôtre remplacera celui de la permanence en cours.",
}


def input_field(name, label, kind, autocomplete, typed, errors):
    """A labelled text input, keeping what was typed, with its error if any."""
    error = errors.get(name)
    attributes = f'type="{kind}" autocomplete="{autocomplete}"' + (' inputmode="tel"' if kind == "tel" else "")
    if error:
        attributes += f' aria-invalid="true" aria-describedby="{name}-error"'
    html_text = (
        f'<label for="{name}">{escape(label)}</label>\n'
        f'<input id="{name}" name="{name}" {attributes} value="{escape(typed.get(name, ""))}">'
    )
    if error:
        html_text += f'\n<p id="{name}-error" class="field-error">{escape(error)}</p>'
    return html_text


def message_box(kind, text):
    """A coloured box with one message."""
    return f'<div class="box {kind}"><p>{text}</p></div>'


def favicon():
    """A 16×16 icon (a red disc), drawn as a Windows icon file."""
    size = 16
    pixels = b"".join(
        (b"\x1a\x16\xa4\xff" if (x - 7.5) ** 2 + (y - 7.5) ** 2 <= 56 else b"\x00\x00\x00\x00")
        for y in range(size)
        for x in range(size)
    )
    bitmap = struct.pack("<IiiHHIIiiII", 40, size, size * 2, 1, 32, 0, 0, 0, 0, 0, 0)
    bitmap += pixels + b"\x00" * (4 * size)  # The colour pixels, then the (unused) transparency mask.
    header = struct.pack("<HHHBBBBHHII", 0, 1, 1, size, size, 0, 0, 1, 32, len(bitmap), 22)
    return header + bitmap


# --- WSGI application ---------------------------------------------------------

MAX_BODY = 4096  # Bytes: our forms are tiny.
CREDENTIAL_CACHE_SECONDS = 3600
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
COMMON_HEADERS = [
    ("Cache-Control", "no-cache, no-store, must-revalidate"),
    ("Pragma", "no-cache"),
    ("Expires", "0"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'",
    ),
]
STATUS_TEXTS = {
    200: "OK", 303: "See Other", 400: "Bad Request", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large", 500: "Internal Server Error",
}  # fmt: skip


@dataclass
class Response:
    """What the application answers: a status, headers and a body."""

    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list = field(default_factory=list)

    @classmethod
    def page(cls, html_text, status=200):
        """An HTML page."""
        return cls(status, html_text.encode("utf-8"))

    @classmethod
    def redirect(cls, location):
        """A 303 redirect, so that a refresh after a POST never repeats it."""
        return cls(303, headers=[("Location", location)])


class Request:
    """The parts of a WSGI request the page uses."""

    def __init__(self, environ):
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        raw_path = environ.get("PATH_INFO", "")
        self.path = raw_path.encode("latin-1", "replace").decode("utf-8", "replace")
        script = environ.get("SCRIPT_NAME", "")
        base = script[: -len("/index.py")] if script.endswith("/index.py") else script.rstrip("/")
        self.base = quote(base.encode("latin-1", "replace"), safe="/")  # For links, Location and cookie paths.
        self.client = environ.get("REMOTE_ADDR", "")

    def cookie(self, name):
        """The value of a cookie, or ""."""
        for part in self.environ.get("HTTP_COOKIE", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return unquote(value)
        return ""

    def form(self):
        """The fields of a posted form, first value of each; None when the body is too large."""
        length = self.environ.get("CONTENT_LENGTH", "").strip()
        if not (length.isascii() and length.isdigit()):
            length = "0"  # Absent, empty, negative or not a number: no body.
        if len(length.lstrip("0")) > 9 or int(length) > MAX_BODY:
            return None
        length = int(length)
        body = self.environ["wsgi.input"].read(length) if length > 0 else b""
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return {key: values[0] for key, values in fields.items()}


class App:
    """The WSGI application: reads lines.ini, routes each request to a page or an action."""

    def __init__(self, lines_ini=None, ovh_conf=None):
        self.lines_ini = Path(lines_ini or LINES_INI)
        self.ovh_conf = ovh_conf
        self._settings = (None, None)
        self._client = (None, None)
        self._credential = (0.0, None)
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            response = self.route(request)
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.path)
            text = "Une erreur inattendue s'est produite. Réessayez ; si cela dure, prévenez l'informatique."
            response = Response.page(render_message("Erreur", text, request.base), 500)
        headers = [("Content-Type", response.content_type), ("Content-Length", str(len(response.body)))]
        headers += COMMON_HEADERS + response.headers
        start_response(f"{response.status} {STATUS_TEXTS[response.status]}", headers)
        return [b"" if request.method == "HEAD" else response.body]

    # Configuration and OVH client, kept between requests in a persistent process.

    def settings(self):
        """lines.ini, read again whenever the file changes."""
        mtime = self.lines_ini.stat().st_mtime if self.lines_ini.exists() else None
        with self._lock:
            if self._settings[0] != mtime or self._settings[1] is None:
                settings = load_settings(self.lines_ini)
                self._settings = (mtime, settings)
            return self._settings[1]

    def client(self, settings):
        """The ovh client for ovh.conf, made again whenever the file changes."""
        path = Path(self.ovh_conf or settings.ovh_conf)
        try:
            key = (path, path.stat().st_mtime)
        except OSError as error:
            raise ConfigError(f"{path} : lecture impossible ({error.strerror})") from None
        with self._lock:
            if self._client[0] != key:
                client = connect_ovh(**read_ovh_conf(path))
                _ = client.time_delta  # Learn OVH's clock once, before requests run in parallel.
                self._client = (key, client)
            return self._client[1]

    def credential_expiration(self, client):
        """When the consumer key expires (None: never), read from OVH at most once an hour."""
        fetched, expiration = self._credential
        if time.monotonic() - fetched > CREDENTIAL_CACHE_SECONDS or not fetched:
            try:
                credential = client.get("/auth/currentCredential")
            except Exception as error:
                log.warning("cannot read the current credential: %s", error)
                return None
            expiration = parse_ovh_datetime(credential.get("expiration"), ZoneInfo("UTC"))
            self._credential = (time.monotonic(), expiration)
        return expiration

    # Routing.

    def route(self, request):
        """Dispatch a request by method and path."""
        if request.method not in ("GET", "HEAD", "POST"):
            response = self.message(request, "Méthode non permise", "Cette adresse ne répond pas à cette méthode.", 405)
            response.headers.append(("Allow", "GET, HEAD, POST"))
            return response
        if request.path == "/favicon.ico":
            return Response(200, favicon(), "image/x-icon")
        try:
            settings = self.settings()
        except ConfigError as error:
            log.error("configuration error: %s", error)
            text = "La configuration de la page contient une erreur. Prévenez l'informatique de la Cimade."
            return self.message(request, "Erreur de configuration", text, 500)
        parts = [p for p in request.path.split("/") if p]
        if not parts:
            return Response.page(render_index(settings, request.base))
        group = settings.groups.get(parts[0].lower())
        if group is None or len(parts) > 2 or (len(parts) == 2 and parts[1] not in actions_of(group)):
            return self.not_found(request)
        if len(parts) == 1:
            return self.group_page(request, settings, group)
        if request.method != "POST":
            return Response.redirect(f"{request.base}/{group.slug}")
        return self.act(request, settings, group, parts[1])

    def message(self, request, title, text, status):
        """A page with a single message."""
        return Response.page(render_message(title, text, request.base), status)

    def not_found(self, request):
        """The French 404 page, with a link to the list of groups."""
        text = "Cette page n'existe pas. Vérifiez l'adresse, ou choisissez votre groupe dans la liste."
        return self.message(request, "Page introuvable", text, 404)

    # Pages and actions.

    def group_page(self, request, settings, group, typed=None, errors=None, status=200):
        """Read the line's state from OVH and show it with the forms."""
        moment = now(settings.timezone)
        messages = []
        flash = read_flash(request.cookie("flash"))
        if flash and not errors:
            messages.append(flash_message(flash, settings.contact))
        state = failure = None
        try:
            client = self.client(settings)
            line = LINE_KINDS[group.kind](client, group, moment)
            state, expiration = parallel(line.read_state, lambda: self.credential_expiration(client))
        except Exception as error:
            failure = as_failure(error)
            log.error("reading %s failed: %s", group.slug, failure)
            notify_it_once(
                settings, f"{group.slug}-{failure.reason}", timedelta(hours=1),
                f"{group.name} : impossible de lire l'état chez OVH ({failure.reason})", failure.detail,
            )  # fmt: skip
        else:
            messages.extend(self.expiration_warnings(settings, expiration, moment))
        body = render_group(settings, group, request.base, moment, state, failure, messages, typed, errors)
        response = Response.page(body, status)
        if flash:
            response.headers.append(("Set-Cookie", flash_cookie("", request.base, group, max_age=0)))
        return response

    def expiration_warnings(self, settings, expiration, moment):
        """Warn on the page when the OVH key expires within 2 days; mail IT within 7."""
        if expiration is None or expiration - moment > timedelta(days=7):
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
        return [message_box("warning", escape(text))]

    def act(self, request, settings, group, action):
        """Start, change, join, remove or finish a permanence, then redirect to the group page."""
        form = request.form()
        if form is None:
            return self.message(request, "Demande trop grande", "Cette demande est trop grande.", 413)
        number = name = agent_id = ""
        if action == "start":
            typed = {"number": form.get("number", ""), "name": form.get("name", "")}
            errors = {}
            try:
                number = normalize_phone(typed["number"])
            except PhoneError as error:
                errors["number"] = str(error)
            try:
                name = clean_first_name(typed["name"])
            except FirstNameError as error:
                errors["name"] = str(error)
            if errors:
                return self.group_page(request, settings, group, typed, errors, status=400)
        elif action == "remove":
            agent_id = form.get("agent", "")
            if not re.fullmatch(r"[0-9]{1,18}", agent_id):
                text = "Cette demande est incomplète. Revenez à la page du groupe et réessayez."
                return self.message(request, "Demande incomplète", text, 400)
        moment = now(settings.timezone)
        try:
            line = LINE_KINDS[group.kind](self.client(settings), group, moment)
            if action == "start":
                outcome = line.start(number, name)
            elif action == "remove":
                outcome = line.remove(int(agent_id))
            else:
                outcome = line.finish()
        except Refusal as refusal:
            return self.group_page(request, settings, group, typed, {"number": str(refusal)}, status=409)
        except Exception as error:
            failure = as_failure(error)
            log.error("%s on %s failed: %s", action, group.slug, failure)
            log_activity(settings, group, action, number, request.client, f"erreur {failure.reason}: {failure.detail}")
            explanation, _ = describe_failure(failure, settings.contact)
            notify_it(
                settings, f"{group.name} : échec ({action}, {format_phone(number) or 'sans numéro'})",
                f"{explanation}\n\nDétail : {failure.detail}\nAdresse du bénévole : {request.client}",
            )  # fmt: skip
            flash = f"error-{failure.reason}:{number}"
        else:
            done, number = outcome.action, outcome.number
            log_activity(settings, group, done, number, request.client, "ok")
            notify_it(settings, f"{group.name} : {ACTION_SUBJECTS[done]} {format_phone(number)}".strip(), "")
            flash = f"{done}:{number}"
        response = Response.redirect(f"{request.base}/{group.slug}")
        response.headers.append(("Set-Cookie", flash_cookie(flash, request.base, group)))
        return response


def actions_of(group):
    """The actions a group's page offers: removing one number only when several volunteers answer together."""
    return ("start", "remove", "finish") if group.max_volunteers > 1 else ("start", "finish")


ACTION_SUBJECTS = {
    "start": "permanence commencée sur le",
    "change": "permanence passée sur le",
    "finish": "permanence terminée",
    "nothing": "« Terminer » sans permanence en cours",
    "same": "numéro déjà en permanence :",
    "add": "numéro ajouté à la permanence :",
    "remove": "numéro retiré de la permanence :",
    "gone": "« Retirer » un numéro qui ne répondait plus",
}


def flash_cookie(value, base, group, max_age=60):
    """The cookie that carries an action's outcome across the redirect."""
    return f"flash={quote(value)}; Path={base}/{group.slug}; Max-Age={max_age}; HttpOnly; SameSite=Strict"


def read_flash(value):
    """Parse a flash cookie into (code, number), or None when it is not one of ours."""
    code, _, number = value.partition(":")
    known = code in FLASH_TEXTS or code.removeprefix("error-") in OVH_FAILURES
    if not known or not re.fullmatch(r"(00\d{6,15})?", number):
        return None
    return code, number


def flash_message(flash, contact):
    """The box that tells the volunteer how their action went."""
    code, number = flash
    if code in FLASH_TEXTS:
        phone = f'<span class="tel">{escape(format_phone(number))}</span>'
        return message_box("ok", Template(escape(FLASH_TEXTS[code])).substitute(number=phone))
    explanation, advice = describe_failure(OvhFailure(code.removeprefix("error-"), ""), contact)
    return message_box("error", f"<strong>La demande n'a pas abouti.</strong> {escape(explanation)} {escape(advice)}")


# --- Servers and command line -------------------------------------------------

application = App()


def is_fastcgi():
    """True when a FastCGI server started us: our standard input is then a listening socket."""
    import errno
    import socket

    try:
        sock = socket.socket(fileno=os.dup(0))
    except OSError:
        return False
    try:
        sock.getpeername()
    except OSError as error:
        return error.errno == errno.ENOTCONN
    finally:
        sock.close()
    return False


def run_fastcgi(app):
    """Serve requests from Apache's mod_fcgid in this persistent process."""
    from flup.server.fcgi import WSGIServer

    WSGIServer(app).run()


def run_cgi(app):
    """Serve the one request of a plain CGI process."""
    from wsgiref.handlers import CGIHandler

    CGIHandler().run(app)


def serve(app, host, port):
    """Serve the page on http://host:port/ until interrupted."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIServer, make_server

    class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    with make_server(host, port, app, server_class=ThreadingWSGIServer) as server:
        print(f"cimade-ovh : ouvrez http://{host}:{server.server_port}/ (Ctrl-C pour arrêter)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


def demo(host, port):
    """Serve the page on the simulated OVH account of tests/fake_ovh.py."""
    import tempfile

    sys.path.insert(0, str(HERE / "tests"))
    from fake_ovh import FakeOVH

    fake = FakeOVH().start()
    ovh_conf = Path(tempfile.mkdtemp(prefix="cimade-ovh-demo-")) / "ovh.conf"
    fake.write_ovh_conf(ovh_conf)
    print(f"Démo : compte OVH simulé sur {fake.url} (rien n'est envoyé à OVH)", flush=True)
    try:
        serve(App(ovh_conf=ovh_conf), host, port)
    finally:
        fake.stop()


def check_group(client, group, moment):
    """Check that OVH has the line a group needs; return a French description of it."""
    if group.kind == "redirect":
        line = RedirectLine(client, group, moment)
        client.get(f"/telephony/{group.billing_account}/line/{line.sip_line()}")
        line.read_state()
        return f"renvoi vers la ligne SIP {format_phone(line.sip_line())}"
    client.get(f"/telephony/{group.billing_account}/easyHunting/{group.number}")
    line = QueueLine(client, group, moment)
    line.read_state()
    return f"file d'appels n° {line.queue_id()}"


def check(app):
    """Check lines.ini, ovh.conf and each group on OVH; print what is wrong; return the exit status."""
    try:
        settings = load_settings(app.lines_ini)
    except ConfigError as error:
        print(f"ERREUR : {error}")
        return 1
    print(f"{settings.path} : {len(settings.groups)} groupe(s).")
    try:
        client = app.client(settings)
    except ConfigError as error:
        print(f"ERREUR : {error}")
        return 1
    moment = now(settings.timezone)
    problems = 0
    for group in settings.groups.values():
        try:
            described = check_group(client, group, moment)
        except Exception as error:
            failure = as_failure(error)
            explanation, _ = describe_failure(failure, settings.contact)
            print(f"ERREUR [{group.slug}] {format_phone(group.number)} : {explanation}\n    {failure.detail}")
            problems += 1
        else:
            print(f"ok     [{group.slug}] {format_phone(group.number)} : {described}")
    from create_consumer_key import check_coverage

    if not check_coverage(client, settings, verbose=False):
        problems += 1
    expiration = app.credential_expiration(client)
    print("Clé OVH : " + (f"expire le {format_day_time(expiration)}" if expiration else "sans date d'expiration"))
    return 1 if problems else 0


def main(argv=None):
    """The command line for IT: --demo, --serve or --check."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--demo", action="store_true", help="la page sur un compte OVH simulé")
    action.add_argument("--serve", action="store_true", help="la page sur le compte OVH de ovh.conf")
    action.add_argument("--check", action="store_true", help="vérifier lines.ini, ovh.conf et chaque groupe chez OVH")
    parser.add_argument("--host", default="127.0.0.1", help="adresse d'écoute (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port d'écoute (8080)")
    args = parser.parse_args(argv)
    if args.demo:
        demo(args.host, args.port)
    elif args.serve:
        serve(application, args.host, args.port)
    else:
        return check(application)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="cimade-ovh: %(levelname)s: %(message)s")
    if is_fastcgi():
        run_fastcgi(application)
    elif "GATEWAY_INTERFACE" in os.environ:
        run_cgi(application)
    else:
        sys.exit(main())
