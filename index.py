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
    python3 index.py --check --snapshot copie.json   … and copy each group's line (read only)
    python3 index.py --demo --state copie.json       the page on that copy, simulated
    python3 index.py --set-code lyon   ask for, then store, the access code of a group
    python3 index.py --unlock lyon     forget a group's wrong codes: nobody waits any more
"""

import base64
import configparser
import contextlib
import contextvars
import errno
import fcntl
import hashlib
import hmac
import html
import io
import ipaddress
import json
import logging
import os
import re
import secrets
import shlex
import socket
import struct
import sys
import threading
import time
import unicodedata
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
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
DEFAULT_CONTACT = "l'informatique de la Cimade"  # Whom pages name without a contact in lines.ini, or before it is read.
DEFAULT_RING_TIMEOUT = 10
MAX_TEAM = 20  # The most volunteers a queue group may set in max_volunteers.
SETTINGS_KEYS = (
    "ovh_conf", "data_dir", "activity_log", "notify", "sendmail", "contact", "timezone", "access_codes",
    "access_hours", "web_user", "ends_at",
)  # fmt: skip
GROUP_KEYS = (
    "name", "kind", "billing_account", "number", "ring_timeout", "max_volunteers", "agent_description", "contact",
    "ends_at",
)  # fmt: skip


class ConfigError(Exception):
    """A mistake in lines.ini or ovh.conf; the message names the file, section and key."""

    def __init__(self, message, unreadable=False):
        super().__init__(message)
        self.unreadable = unreadable  # The file is there, but its rights keep this process from reading it.


OS_ERRORS = {
    errno.ENOENT: "le fichier ou son dossier n'existe pas",
    errno.EACCES: "droits insuffisants",
    errno.EPERM: "opération interdite",
    errno.EISDIR: "c'est un dossier, pas un fichier",
    errno.ENOTDIR: "un élément du chemin n'est pas un dossier",
    errno.ENOSPC: "disque plein",
    errno.EROFS: "disque en lecture seule",
    errno.EADDRINUSE: "adresse déjà prise par un autre programme",
    errno.EADDRNOTAVAIL: "cette adresse n'est pas l'une de ce serveur",
    socket.EAI_NONAME: "nom ou adresse inconnus",  # getaddrinfo's errors, negative, never clash with errno's.
}


def os_error_text(error):
    """Why a system call failed, in French for the common causes (else the system's words)."""
    return OS_ERRORS.get(error.errno) or error.strerror or str(error)


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
    ends_at: str = "23:59:59"  # The planned end a volunteer's form proposes, HH:MM:SS.


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
    access_codes: Path = None
    access_hours: int = 12
    broken: dict = field(default_factory=dict)  # By section name: why that group cannot be served.
    web_user: str = ""


def read_ini(path):
    """Parse an ini file; raise ConfigError saying in French where it is wrong."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as file:
            parser.read_file(file)
    except PermissionError as error:
        raise ConfigError(f"{path} : illisible ({os_error_text(error)})", unreadable=True) from None
    except OSError as error:
        raise ConfigError(f"{path} : lecture impossible ({os_error_text(error)})") from None
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


def unknown_keys(parser, path, section, known):
    """Raise ConfigError for a key of `section` that the page does not know, suggesting the nearest known one."""
    import difflib

    for key in parser[section]:
        if key not in known and key not in parser.defaults():
            near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f" : vouliez-vous dire « {near[0]} » ?" if near else f" (clés connues : {', '.join(known)})"
            raise ConfigError(f"{path}, section [{section}] : clé inconnue « {key} »{hint}")


def load_settings(path=None):
    """Read and check lines.ini; raise ConfigError naming the file, section and key at fault.

    A mistake in a group's section breaks only that group: it goes to `broken`, with its message.
    """
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
    unknown_keys(parser, path, SETTINGS_SECTION, SETTINGS_KEYS)
    zone_name = value(SETTINGS_SECTION, "timezone", "Europe/Paris")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{path}, section [{SETTINGS_SECTION}], clé « timezone » : fuseau horaire inconnu « {zone_name} »"
        ) from None
    data_dir = resolve(value(SETTINGS_SECTION, "data_dir", "data"))
    access_hours = value(SETTINGS_SECTION, "access_hours", "12")
    if not access_hours.isdigit() or not 1 <= int(access_hours) <= 24 * 31:
        raise ConfigError(
            f"{path}, section [{SETTINGS_SECTION}], clé « access_hours » : "
            f"« {access_hours} » n'est pas un nombre d'heures (1 à {24 * 31})"
        )

    default_end = parse_ends_at(value(SETTINGS_SECTION, "ends_at", END_OF_DAY), f"{path}, section [{SETTINGS_SECTION}]")

    groups, broken = {}, {}
    for section in parser.sections():
        if section == SETTINGS_SECTION:
            continue
        try:
            group = load_group(parser, path, section, value, default_end)
            twin = next((g for g in groups.values() if g.number == group.number), None)
            if group.slug in groups:
                raise ConfigError(f"{path}, section [{section}] : le groupe « {group.slug} » est déjà défini")
            if twin:
                raise ConfigError(
                    f"{path}, section [{section}], clé « number » : {group.number} est déjà le numéro du groupe "
                    f"[{twin.slug}] ; deux groupes sur un même numéro se remplaceraient leurs bénévoles"
                )
        except ConfigError as error:
            broken[section.lower()] = str(error)  # By the address its page would have.
        else:
            groups[group.slug] = group

    return Settings(
        path=path,
        ovh_conf=resolve(value(SETTINGS_SECTION, "ovh_conf", "ovh.conf")),
        data_dir=data_dir,
        activity_log=resolve(value(SETTINGS_SECTION, "activity_log", str(data_dir / "activity.log"))),
        notify=tuple(a.strip() for a in value(SETTINGS_SECTION, "notify", "").split(",") if a.strip()),
        sendmail=tuple(shlex.split(value(SETTINGS_SECTION, "sendmail", "/usr/sbin/sendmail -t -oi"))),
        contact=value(SETTINGS_SECTION, "contact", DEFAULT_CONTACT),
        timezone=zone,
        groups=groups,
        access_codes=resolve(value(SETTINGS_SECTION, "access_codes", "access-codes.ini")),
        access_hours=int(access_hours),
        broken=broken,
        web_user=value(SETTINGS_SECTION, "web_user", ""),
    )


def load_group(parser, path, section, value, default_end):
    """Read and check one group's section of lines.ini; raise ConfigError naming the key at fault.

    `default_end` is the planned end of [settings], for a group without its own ends_at.
    """
    slug = section.lower()
    where = f"{path}, section [{section}]"
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", slug) or slug in RESERVED_SLUGS:
        raise ConfigError(f"{where} : ce nom ne peut pas servir d'adresse (lettres, chiffres, - et _)")
    unknown_keys(parser, path, section, GROUP_KEYS)
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
    return Group(
        slug=slug,
        name=name,
        kind=kind,
        billing_account=value(section, "billing_account"),
        number=number,
        ring_timeout=int(ring_timeout),
        max_volunteers=int(max_volunteers),
        agent_description=value(section, "agent_description", f"Bénévole {name} (cimade-ovh)"),
        contact=value(section, "contact", ""),
        ends_at=parse_ends_at(value(section, "ends_at", default_end), where),
    )


def parse_ends_at(text, where):
    """The planned end `ends_at` of lines.ini as "HH:MM:SS"; else ConfigError naming `where`."""
    try:
        end = parse_end(text)
    except ValueError:
        raise ConfigError(f"{where}, clé « ends_at » : « {text} » n'est pas une heure (par exemple 18:00)") from None
    if end <= PERIOD_FROM:
        raise ConfigError(f"{where}, clé « ends_at » : « {text} » : la page n'ouvre la ligne qu'à partir de 2 h")
    return end


# --- Phone numbers ------------------------------------------------------------


class PhoneError(ValueError):
    """A number a volunteer typed that we cannot use; the message says why, in French."""


# The overseas departments share the French numbering plan but not its country code: the national number
# 0692 12 34 56 is +262 692 12 34 56 (00262692123456), never +33. Sources: ARCEP, "La numérotation outre-mer"
# (codes 262, 590, 594, 596) and its press release of 24 July 2006 on Mayotte (+262 269…, mobiles 0639);
# Wikipedia, "Numéro de téléphone en France" (the prefixes); libphonenumber's metadata for RE, YT, GP, GF and
# MQ (ITU E.164 codes, and the newer 0263, 0691, 0697 blocks). Saint-Pierre-et-Miquelon does not follow
# this rule (05 08 41 23 45 is +508 41 23 45): refused. Wallis-et-Futuna, New Caledonia and French Polynesia
# (+681, +687, +689) are outside the French plan: refused like every foreign number.
OVERSEAS_CODES = {
    "0262": "262", "0263": "262", "0692": "262", "0693": "262",  # La Réunion.
    "0269": "262", "0639": "262",  # Mayotte.
    "0590": "590", "0690": "590", "0691": "590",  # Guadeloupe, Saint-Martin, Saint-Barthélemy.
    "0594": "594", "0694": "594",  # Guyane.
    "0596": "596", "0696": "596", "0697": "596",  # Martinique.
}  # fmt: skip
# Inside Mayotte's 0639, ARCEP reserves 06 39 98 xx xx for fiction: it rings no one, and this project's demo
# and test numbers write it +33 6 39 98, as FICTIONAL_PREFIXES does.
FICTION_BLOCK = "063998"
FRENCH_CODES = "|".join(["33", *sorted(set(OVERSEAS_CODES.values()))])  # 33|262|590|594|596, for regexes.


def country_code(national):
    """The country code of a national number 0…: 33, or an overseas department's (0692… → 262)."""
    if national.startswith(FICTION_BLOCK):
        return "33"
    return OVERSEAS_CODES.get(national[:4], "33")


def normalize_phone(text):
    """Turn what a person typed or pasted into OVH's form 0033… (00262…, 00590… overseas), or raise PhoneError."""
    text = unicodedata.normalize("NFKC", text or "")
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Cc") and not c.isspace())
    text = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)  # ٠٦… (Arabic keypads) → 06…
    text = re.sub(r"[.\-/_]", "", text)
    if not text:
        raise PhoneError("Indiquez le numéro de téléphone sur lequel vous allez répondre.")
    text = re.sub(rf"^((?:\+|00)(?:{FRENCH_CODES}))\(0\)", r"\1", text)
    text = text.replace("(", "").replace(")", "")
    wrong = sorted(set(re.sub(r"[\d+]", "", text)))
    if wrong or "+" in text[1:]:
        shown = " ".join(f"« {c} »" for c in wrong) or "« + »"
        raise PhoneError(f"Le numéro ne doit contenir que des chiffres ; il contient {shown}.")
    international = re.match(rf"(?:\+|00)({FRENCH_CODES})", text)
    if international:
        typed_code = international[1]
        national = "0" + text[international.end() :]
        if national.startswith("00"):
            national = national[1:]
    elif text.startswith(("+", "00")):
        raise PhoneError("Seuls les numéros français sont acceptés (06…, 07…, 01… ou +33…).")
    else:
        typed_code, national = None, text
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
    if national.startswith("0508"):
        raise PhoneError(
            "Les numéros de Saint-Pierre-et-Miquelon (05 08…) ne sont pas acceptés : "
            "donnez un numéro de métropole ou d'un département d'outre-mer."
        )
    if typed_code not in (None, "33", OVERSEAS_CODES.get(national[:4])):  # +262, then a mainland number.
        raise PhoneError("Seuls les numéros français sont acceptés (06…, 07…, 01… ou +33…).")
    return "00" + country_code(national) + national[1:]


def national_phone(number):
    """The national form 0… of an OVH number of the French plan (0033…, 00262…), or "" for any other."""
    found = re.fullmatch(rf"00({FRENCH_CODES})(\d{{9}})", number or "")
    if found and country_code("0" + found[2]) == found[1]:
        return "0" + found[2]
    return ""


def format_phone(number):
    """Show an OVH number the French way: 0033612345678 → 06 12 34 56 78, 00262692123456 → 06 92 12 34 56."""
    national = national_phone(number)
    if national:
        return " ".join(national[i : i + 2] for i in range(0, 10, 2))
    return number or ""


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


def mask_phone(number):
    """A number shown to everyone: only its first and last pairs, 0033612345678 → 06 •• •• •• 78."""
    shown = format_phone(number).split(" ")
    if len(shown) == 5:
        return " ".join([shown[0], "••", "••", "••", shown[-1]])
    return "•" * max(0, len(number) - 2) + number[-2:]


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


def format_short_day(day):
    """A day the short French way: « jeu. 26/11 »."""
    return f"{FRENCH_WEEKDAYS[day.weekday()][:3]}. {day:%d/%m}"


def format_short_day_time(moment):
    """A moment in few words: « jeu. 26/11 16:28 »."""
    return f"{format_short_day(moment)} {moment:%H:%M}"


def format_day_time(moment):
    """A moment the French way: « jeudi 26 novembre 2026 à 16:28 »."""
    return (
        f"{FRENCH_WEEKDAYS[moment.weekday()]} {moment.day} {FRENCH_MONTHS[moment.month - 1]} "
        f"{moment.year} à {moment:%H:%M}"
    )


END_OF_DAY = "23:59:59"  # The end of a permanence nobody chose: the end of the day.
MIN_AHEAD = timedelta(minutes=15)  # A planned end comes at least that long after now.


def parse_end(text):
    """An hour as typed or configured (« 18:00 », « 18h », « 18 h 30 ») as "HH:MM:SS"; else ValueError.

    23:59, 24:00 and 00:00 (midnight in a phone's time picker) mean the end of the day (23:59:59).
    """
    found = re.fullmatch(r"\s*(\d{1,2})\s*(?:[:hH.]\s*(\d{2})?(?::[0-5]\d)?)?\s*", text or "")
    if not found:
        raise ValueError(text)
    hour, minute = int(found[1]), int(found[2] or 0)
    if (hour, minute) in ((23, 59), (24, 0), (0, 0)):
        return END_OF_DAY
    if hour > 23 or minute > 59:
        raise ValueError(text)
    return f"{hour:02}:{minute:02}:00"


def format_end(end):
    """A planned end the French way: « 18 h », « 18 h 30 », « minuit »."""
    if end == END_OF_DAY:
        return "minuit"
    hour, minute = int(end[:2]), int(end[3:5])
    return f"{hour} h" + (f" {minute:02}" if minute else "")


def end_moment(day, end):
    """The moment a planned end ("HH:MM:SS") falls on `day` (an aware datetime); END_OF_DAY is the next midnight."""
    if end == END_OF_DAY:
        return datetime.combine(day.date() + timedelta(days=1), datetime.min.time(), day.tzinfo)
    return day.replace(hour=int(end[:2]), minute=int(end[3:5]), second=0, microsecond=0)


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
OVH_CONNECTIONS = 32  # Connections kept open to OVH: more than the requests a page makes at once.
# An action's OVH requests end within this: with the lock's 10 s and the mail's 5 s, a reply before 30 s,
# well before Apache gives up (FcgidIOTimeout 40 s).
ACTION_SECONDS = 15
DEADLINE = contextvars.ContextVar("deadline", default=None)  # The time.monotonic() by which OVH requests must end.


class OvhFailure(Exception):
    """OVH could not do what we asked; `reason` picks the French explanation, `detail` is for IT."""

    action = None  # The action OVH failed in, when the line knew it better than the button pressed ("add").

    def __init__(self, reason, detail, explanation=None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.explanation = explanation


RETRY_LATER = "Réessayez dans quelques minutes ; si cela dure, prévenez $contact."
RESUME = "Appuyez de nouveau sur « Ajouter mon numéro » pour reprendre la permanence ; si cela dure, prévenez $contact."
OVH_FAILURES = {
    "config": ("Le fichier de configuration OVH (ovh.conf) est absent, incomplet ou erroné.", "Prévenez $contact."),
    "unreadable": (
        "Le fichier de configuration OVH (ovh.conf) est illisible par la page (droits du fichier).",
        "Prévenez $contact.",
    ),
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
    "signature": (
        "OVH refuse la signature des demandes de la page : sa configuration (ovh.conf) est erronée.",
        "Prévenez $contact : la clé « application_secret » de ovh.conf ne correspond pas à « application_key ».",
    ),
    "unexpected": (
        "La ligne de ce groupe n'est pas configurée chez OVH comme la page l'attend.",
        "Prévenez $contact.",
    ),
    "deadline": (
        "OVH répond trop lentement : la page s'est arrêtée avant d'avoir tout fait.",
        "Appuyez de nouveau sur le bouton pour finir ; si cela dure, prévenez $contact.",
    ),
    "mismatch": (
        "OVH a répondu, mais l'état relu ne correspond pas à ce qui a été demandé.",
        "Vérifiez l'état ci-dessous et réessayez ; si cela dure, prévenez $contact.",
    ),
    "internal": ("Une erreur inattendue s'est produite dans la page.", "Réessayez ; si cela dure, prévenez $contact."),
}
NOT_A_REDIRECT = "Le numéro public de ce groupe ne renvoie pas vers une ligne SIP."
QUEUE_COUNT = "La ligne de ce groupe devrait avoir exactement une file d'appels ; OVH en montre {count}."
EXPLANATIONS = (NOT_A_REDIRECT, QUEUE_COUNT)  # The page's own explanations of a failure, besides OVH_FAILURES'.


def connect_ovh(endpoint, application_key, application_secret, consumer_key, timeout=None):
    """Return an ovh.Client; `endpoint` is an OVH name (ovh-eu) or a URL, such as the simulator's."""
    import ovh
    import requests.adapters

    if endpoint.startswith(("http://", "https://")):
        # The ovh client only knows named endpoints: register the URL as a name of its own.
        ovh.client.ENDPOINTS.setdefault(endpoint, endpoint.rstrip("/"))
    client = ovh.Client(
        endpoint=endpoint,
        application_key=application_key,
        application_secret=application_secret,
        consumer_key=consumer_key,
        timeout=timeout or OVH_TIMEOUT,
    )
    # requests keeps 10 connections per host, fewer than a page's parallel requests: each one
    # more would be opened anew, and a new HTTPS connection to OVH costs two more round trips.
    adapter = deadline_adapter(requests.adapters.HTTPAdapter)(pool_maxsize=OVH_CONNECTIONS)
    for scheme in ("https://", "http://"):
        client._session.mount(scheme, adapter)
    return client


def deadline_adapter(base):
    """A requests adapter class whose requests end by the DEADLINE of the action, if one is set."""
    import requests

    class DeadlineAdapter(base):
        def send(self, request, timeout=None, **kwargs):
            deadline = DEADLINE.get()
            if deadline is None:
                return super().send(request, timeout=timeout, **kwargs)
            left = deadline - time.monotonic()
            if left <= 0:
                raise OvhFailure("deadline", f"{request.method} {request.url} not sent: the action's time is up")
            connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
            try:
                return super().send(request, timeout=(min(connect, left), min(read, left)), **kwargs)
            except requests.Timeout as error:
                if read < left:  # Not cut short by the deadline: OVH's own slowness.
                    raise
                raise OvhFailure("deadline", f"{request.method} {request.url}: {error!r}") from None

    return DeadlineAdapter


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


def ovh_cause(error):
    """Why a request of the ovh client failed, in one word that the page and the command line each phrase."""
    import ovh.exceptions as oe
    import requests

    if isinstance(error, oe.HTTPError):
        return "timeout" if isinstance(wrapped(error), requests.Timeout) else "unreachable"
    if isinstance(error, oe.BadParametersError) and "Invalid signature" in str(error):
        return "signature"
    kinds = [
        (oe.InvalidRegion, "region"),
        (oe.InvalidKey, "key"),
        ((oe.InvalidCredential, oe.NotCredential), "credential"),
        (oe.Forbidden, "forbidden"),
        (oe.NotGrantedCall, "not_granted"),
        (oe.ResourceNotFoundError, "not_found"),
        ((oe.BadParametersError, oe.ResourceConflictError, oe.ResourceExpiredError), "refused"),
        (oe.APIError, "server"),
    ]
    return next((cause for classes, cause in kinds if isinstance(error, classes)), "other")


def wrapped(error):
    """What an exception of the ovh client wraps (requests' exception, the unknown endpoint), else the error itself."""
    return error.args[1] if len(error.args) > 1 else error


# The causes the page explains with another's words: OVH_FAILURES has no sentence of their own.
PAGE_REASONS = {"region": "config", "key": "credential", "forbidden": "credential", "other": "server"}


def ovh_failure(error):
    """Translate an exception of the ovh client into an OvhFailure."""
    cause = ovh_cause(error)
    if cause in ("timeout", "unreachable"):
        return OvhFailure(cause, repr(wrapped(error)))
    return OvhFailure(PAGE_REASONS.get(cause, cause), f"{type(error).__name__}: {error}")


def parallel(*calls):
    """Run independent OVH calls at once and return their results in order."""
    if len(calls) <= 1:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(contextvars.copy_context().run, call) for call in calls]  # With the DEADLINE.
        return [future.result() for future in futures]


def get_all(client, path):
    """GET a collection of ids, then every item of it in parallel; an item deleted in between is left out."""
    items = parallel(*[lambda i=i: unless_gone(client.get, f"{path}/{i}") for i in client.get(path)])
    return [item for item in items if item is not None]


def unless_gone(call, *args):
    """call(*args), or None when OVH answers 404: an id remembered from an earlier request may be out of date."""
    import ovh.exceptions

    try:
        return call(*args)
    except ovh.exceptions.ResourceNotFoundError:
        return None


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
    until: str = ""  # The planned end of their permanence today, HH:MM:SS ("" when unknown).
    mark: str = ""  # Queue: the page's keyed fingerprint of the number, that the volunteer's "Retirer" button sends.


@dataclass
class LineState:
    """What the page shows of a line, read from OVH."""

    running: bool  # A permanence started by the page is on.
    volunteers: list  # The Volunteers the permanence sends calls to.
    rings_now: list  # The numbers a call would ring right now.
    sip_line: str = ""  # Redirect: where calls go without a permanence.
    calls: list = field(default_factory=list)
    open_without_volunteer: bool = False  # Queue: the period is open but nobody is available.
    strategy: str = ""  # Queue: how several numbers ring (OVH's strategy: ringAll, sequentiallyByAgentOrder…).
    elsewhere: str = None  # Queue closed now: "voicemail", a number, or "" (the closing message); None when open.
    conditions_off: bool = False  # Queue: IT left the time conditions disabled; periods then change nothing.
    until: str = ""  # Queue: the planned end today's period carries (HH:MM:SS).
    interrupted: bool = False  # Queue: a change closed the period and did not reopen it; the volunteers wait for it.
    leftover: bool = False  # Something of the page's is left at OVH (a forward, a period, an available agent).

    @property
    def numbers(self):
        """The volunteers' numbers."""
        return [v.number for v in self.volunteers]


@dataclass
class Outcome:
    """What an action did: "start", "change", "add", "resume", "on-duty", "remove", "gone", "finish", "nothing".

    "nothing": « Terminer » with nothing to end; "on-duty": the number was on duty already (`changed` says
    what OVH changed for it: "name", "ends" for the period's end); "resume": it was waiting for an
    interrupted permanence, which reopened.
    """

    action: str
    number: str
    state: LineState
    snap: object  # The snapshot `state` comes from: read before, with what the action wrote read back.
    changed: tuple = ()


class Refusal(Exception):
    """An action the page will not do as asked; the message tells the volunteer why, in French."""


OWN_LINE = "Ce numéro est celui d'une ligne de la Cimade : tapez celui du téléphone où vous allez répondre."


@dataclass
class RedirectSnapshot:
    """The raw OVH objects of a redirect that the page works with."""

    sip_line: str
    options: dict


class RedirectLine:
    """A public number that goes to a SIP line, whose unconditional forward we set."""

    def __init__(self, client, group, moment, memory=None):
        self.client = client
        self.group = group
        self.redirect_path = f"/telephony/{group.billing_account}/redirect/{group.number}"
        self.memory = {} if memory is None else memory  # What a persistent process remembers of the group.
        self._sip_line = None

    def sip_line(self):
        """The SIP line the public number goes to, read once per request and remembered for the next ones."""
        if self._sip_line is None:
            redirect = self.client.get(self.redirect_path)
            if redirect.get("featureType") != "redirect" or not redirect.get("destination"):
                raise OvhFailure(
                    "unexpected",
                    f"{self.redirect_path}: featureType={redirect.get('featureType')!r} "
                    f"destination={redirect.get('destination')!r}",
                    NOT_A_REDIRECT,
                )
            self._sip_line = self.memory["sip_line"] = redirect["destination"]
        return self._sip_line

    def options_path(self, sip_line=None):
        """The OVH path of the SIP line's options."""
        return f"/telephony/{self.group.billing_account}/line/{sip_line or self.sip_line()}/options"

    def snapshot(self):
        """Read the SIP line's options; with a SIP line remembered, at once, while the redirect confirms it."""
        remembered = self.memory.get("sip_line")
        if self._sip_line is None and remembered:
            sip_line, options = parallel(
                self.sip_line, lambda: unless_gone(self.client.get, self.options_path(remembered))
            )
            if sip_line == remembered and options is not None:
                return RedirectSnapshot(sip_line, options)
        return RedirectSnapshot(self.sip_line(), self.client.get(self.options_path()))

    def state(self, snap):
        """What the snapshot means for callers."""
        options = snap.options
        forward = options.get("forwardUnconditionalNumber") if options.get("forwardUnconditional") else None
        return LineState(
            running=bool(forward),
            volunteers=[Volunteer(forward)] if forward else [],
            rings_now=[forward] if forward else [snap.sip_line],
            sip_line=snap.sip_line,
            leftover=bool(forward),
        )

    def read_state(self):
        """Read whether the SIP line forwards, and where."""
        return self.state(self.snapshot())

    def read_back(self, snap):
        """The snapshot after a write of the forward: the SIP line's options read again."""
        return RedirectSnapshot(snap.sip_line, self.client.get(self.options_path(snap.sip_line)))

    def start(self, number, name="", ends=None):
        """Forward the SIP line to `number` (no name, no timer: stats.py ends it); return the Outcome."""
        snap = self.snapshot()
        if number == snap.sip_line:  # Forwarded to itself, the line would loop.
            raise Refusal(OWN_LINE)
        before = self.state(snap)
        if before.numbers == [number]:
            return Outcome("on-duty", number, before, snap)
        self.client.put(
            self.options_path(snap.sip_line),
            forwardUnconditional=True,
            forwardUnconditionalNumber=number,
            forwardUnconditionalNature="number",
        )
        after = self.read_back(snap)
        state = self.state(after)
        verify(state.numbers == [number], f"forward should go to {number}, reads {state.numbers}")
        return Outcome("change" if before.running else "start", number, state, after)

    def finish(self, snap=None):
        """Clear the SIP line's forward; return the Outcome ("finish", or "nothing" when it was off).

        `snap`: the snapshot just read, if any.
        """
        snap = snap or self.snapshot()
        before = self.state(snap)
        self.client.put(self.options_path(snap.sip_line), forwardUnconditional=False)
        after = self.read_back(snap)
        state = self.state(after)
        verify(not state.running, f"forward should be off, reads {state.numbers}")
        return Outcome("finish" if before.running else "nothing", "", state, after)


PERIOD_FROM, PERIOD_POLICY = "02:00:00", "available"


def is_page_period(condition):
    """True for a time condition the page opened: available, from exactly 02:00:00 to a time ending in :59 seconds.

    Its end is one second before the planned end (18:00 → 17:59:59), the end of the day being 23:59:59.
    """
    return (
        (condition["timeFrom"], condition["policy"]) == (PERIOD_FROM, PERIOD_POLICY)
        and condition["timeTo"].endswith(":59")
        and condition["timeTo"] > PERIOD_FROM
    )


def period_to(end):
    """The timeTo of the page's period for a planned end: one second before (the end of the day stays 23:59:59)."""
    if end == END_OF_DAY:
        return END_OF_DAY
    moment = datetime.strptime(end, "%H:%M:%S") - timedelta(seconds=1)
    return f"{moment:%H:%M:%S}"


def period_end(period):
    """The planned end a period of the page carries: its timeTo plus one second (23:59:59 stays the end of day)."""
    if period["timeTo"] == END_OF_DAY:
        return END_OF_DAY
    moment = datetime.strptime(period["timeTo"], "%H:%M:%S") + timedelta(seconds=1)
    return f"{moment:%H:%M:%S}"


NAME_SEPARATOR = " – "  # Between the group's agent description and a volunteer's first name.


@dataclass
class QueueSnapshot:
    """The raw OVH objects of an easyHunting service that the page works with."""

    queue_id: int
    agents: list
    attached: list  # The queue's agent ids, in the order OVH lists them: their order in the queue.
    conditions: list
    calls: list
    settings: dict  # The time-condition settings: enable, out-of-hours and slot destinations.
    strategy: str


class QueueLine:
    """An easyHunting queue: the volunteers are its available agents, during a period opened for the day."""

    def __init__(self, client, group, moment, memory=None):
        self.client = client
        self.group = group
        self.moment = moment
        self.today = OVH_WEEKDAYS[moment.weekday()]
        service = f"/telephony/{group.billing_account}/easyHunting/{group.number}"
        self.hunting = f"{service}/hunting"
        self.settings_path = f"{service}/timeConditions"
        self.conditions_path = f"{service}/timeConditions/conditions"
        self.memory = {} if memory is None else memory  # What a persistent process remembers of the group.

    def queue_id(self):
        """The id of the service's only queue, remembered for the next requests."""
        ids = self.client.get(f"{self.hunting}/queue")
        if len(ids) != 1:
            raise OvhFailure(
                "unexpected",
                f"{self.hunting}/queue lists {ids}",
                QUEUE_COUNT.format(count=len(ids)),
            )
        self.memory["queue_id"] = ids[0]
        return ids[0]

    def queue_lists(self, queue_id, with_calls=True):
        """The agents attached to a queue, its live calls (none read without `with_calls`) and strategy, in parallel."""
        queue = f"{self.hunting}/queue/{queue_id}"
        return parallel(
            lambda: self.client.get(f"{queue}/agent"),
            lambda: get_all(self.client, f"{queue}/liveCalls") if with_calls else [],
            lambda: self.client.get(queue)["strategy"],
        )

    def read_queue(self, with_calls=True):
        """The queue's id, the agents attached to it, its live calls and its strategy.

        The queue's lists wait for its id only the first time: later they start with the id
        remembered, while the list of queues, read alongside, confirms it; they are read again
        if it changed.
        """
        remembered = self.memory.get("queue_id")
        queue_id, lists = parallel(
            self.queue_id, lambda: unless_gone(self.queue_lists, remembered, with_calls) if remembered else None
        )
        if queue_id != remembered or lists is None:
            lists = self.queue_lists(queue_id, with_calls)
        return queue_id, *lists

    def snapshot(self, with_calls=True):
        """Read agents, queue members, strategy, time conditions and their settings, live calls, in parallel.

        Nothing waits for the queue id. Actions read the live calls too: they neither use nor verify
        them, but the page that follows an action shows them without asking OVH again.
        """
        (queue_id, attached, calls, strategy), agents, conditions, settings = parallel(
            lambda: self.read_queue(with_calls),
            lambda: get_all(self.client, f"{self.hunting}/agent"),
            lambda: get_all(self.client, self.conditions_path),
            lambda: self.client.get(self.settings_path),
        )
        return QueueSnapshot(queue_id, agents, attached, conditions, calls, settings, strategy)

    def page_periods(self, snap):
        """The time conditions the page opened (see is_page_period), on any weekday."""
        return [c for c in snap.conditions if is_page_period(c)]

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
        agents = {a["agentId"]: a for a in snap.agents}
        volunteers = [
            Volunteer(
                number=a["number"],
                name=self.first_name(a),
                agent_id=a["agentId"],
                call=next((c for c in calls if not c.waiting and c.agent == a["number"]), None),
            )
            for a in (agents[i] for i in snap.attached if i in agents)  # In the queue's order.
            if a["status"] == "available"
        ]
        elsewhere = self.elsewhere(snap)
        period = self.todays_period(snap)
        running = period is not None and f"{self.moment:%H:%M:%S}" <= period["timeTo"]  # Ended: not running.
        until = period_end(period) if period else ""
        for volunteer in volunteers:
            volunteer.until = until
        return LineState(
            running=running,
            volunteers=volunteers,
            rings_now=[v.number for v in volunteers] if elsewhere is None else [],
            calls=calls,
            open_without_volunteer=running and not volunteers,
            strategy=snap.strategy,
            elsewhere=elsewhere,
            conditions_off=not snap.settings.get("enable"),
            until=until,
            interrupted=bool(self.interrupted(snap)),
            leftover=bool(self.page_periods(snap) or self.page_agents(snap)),
        )

    def elsewhere(self, snap):
        """Where a call goes now instead of the queue, as OVH's guide on time conditions says; None: to the queue.

        Only while the time conditions are enabled: then a call reaches the queue in a condition
        of policy "available" open now; in one of policy slot1-3, it goes to that slot's
        destination; outside every condition, to the out-of-hours one ("unavailable"). A
        destination is "voicemail", a number, or "" when none is set (the closing message).
        """
        if not snap.settings.get("enable"):
            return None
        clock = f"{self.moment:%H:%M:%S}"
        policies = {
            c["policy"] for c in snap.conditions if c["weekDay"] == self.today and c["timeFrom"] <= clock <= c["timeTo"]
        }
        if "available" in policies:
            return None
        slot = min(policies, default="unavailable")
        kind = snap.settings.get(f"{slot}Type")
        if kind == "number":
            return snap.settings.get(f"{slot}Number") or ""
        return kind or ""

    def read_state(self):
        """Read the queue's state from OVH."""
        return self.state(self.snapshot())

    def outcome(self, action, number, snap):
        """The Outcome of an action whose snapshot afterwards is `snap`."""
        return Outcome(action, number, self.state(snap), snap)

    def read_back(self, snap, agent_ids, attached=False, conditions=(), created=()):
        """The snapshot after our writes: `snap` with the agents and time conditions written read again.

        The rest is as `snap` read it just before, under the group's lock. The list of time
        conditions is read again, to see those deleted or added: one not in `snap` nor `created`
        (as OVH answered their creation) is read too. `attached`: the queue's members changed.
        """
        agents, members, listed, written = parallel(
            lambda: parallel(*[lambda i=i: self.client.get(f"{self.hunting}/agent/{i}") for i in agent_ids]),
            lambda: self.client.get(f"{self.hunting}/queue/{snap.queue_id}/agent") if attached else snap.attached,
            lambda: self.client.get(self.conditions_path),
            lambda: parallel(*[lambda i=i: self.client.get(f"{self.conditions_path}/{i}") for i in conditions]),
        )
        known = {c["conditionId"]: c for c in snap.conditions + list(created) + written}
        unknown = [i for i in listed if i not in known]
        new = parallel(*[lambda i=i: self.client.get(f"{self.conditions_path}/{i}") for i in unknown])
        known.update((c["conditionId"], c) for c in new)
        by_id = {a["agentId"]: a for a in snap.agents + agents}
        return replace(snap, agents=list(by_id.values()), attached=members, conditions=[known[i] for i in listed])

    def start(self, number, name="", ends=None):
        """Answer on `number`: start, change the number or the planned end, or join the volunteers; return the Outcome.

        With one volunteer at a time, a new number replaces the one on duty.
        With several, it joins them, up to the group's max_volunteers.
        `ends` gives the volunteers' planned ends today ({number: "HH:MM:SS"}, `number`'s
        included): today's period closes at the latest of those on duty.
        """
        ends = ends or {}
        snap = self.snapshot()
        before = self.state(snap)
        on_duty = before.numbers if before.running else self.interrupted(snap)
        current = next((v.name for v in before.volunteers if v.number == number), "")
        name = name or current  # No name typed: a volunteer on duty, or waiting for the line to reopen, keeps theirs.
        if number in on_duty and before.running and (self.group.max_volunteers > 1 or on_duty == [number]):
            same_end = self.todays_period(snap)["timeTo"] == period_to(self.until(snap, on_duty, ends))
            if same_end and name == current:
                return Outcome("on-duty", number, before, snap)
            changing = "-".join((["name"] if name != current else []) + ([] if same_end else ["ends"]))
            outcome = self.staffed(changing, snap, on_duty, ends, number, name)
            # The name as read back: an agent of IT's keeps its description.
            renamed = next(v.name for v in outcome.state.volunteers if v.number == number) != current
            outcome.action = "on-duty"
            outcome.changed = tuple(what for what, did in (("name", renamed), ("ends", not same_end)) if did)
            return outcome
        if self.group.max_volunteers == 1 or not on_duty:
            return self.staffed("change" if on_duty else "start", snap, [number], ends, number, name)
        if number in on_duty:  # Interrupted, and one of its volunteers presses again: the period reopens.
            return self.staffed("resume", snap, on_duty, ends, number, name)
        if len(on_duty) >= self.group.max_volunteers:
            raise Refusal(
                f"La permanence compte déjà {len(on_duty)} bénévoles, le maximum pour ce groupe. "
                "Pour répondre à la place de quelqu'un, retirez d'abord son numéro."
            )
        return self.staffed("add", snap, on_duty + [number], ends, number, name)

    def staffed(self, action, snap, numbers, ends, newcomer, name):
        """The Outcome of `action`, done by staff(); a failure on the way names the action, for the activity log."""
        try:
            return self.outcome(action, newcomer, self.staff(snap, numbers, ends, newcomer, name))
        except Exception as error:
            failure = as_failure(error)
            failure.action = action
            raise failure from error

    def until(self, snap, numbers, ends):
        """The planned end of `numbers`' permanence: the latest of theirs (today's period's for one not in `ends`)."""
        period = self.todays_period(snap)
        current = period_end(period) if period else END_OF_DAY
        return max(ends.get(n, current) for n in numbers)

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
        """The page's own agents that are available and in the queue."""
        return [
            a
            for a in snap.agents
            if a["status"] == "available" and a["agentId"] in snap.attached and self.is_page_agent(a)
        ]

    def is_page_agent(self, agent):
        """True for an agent the page created, known by its description; IT's agents are never renamed or reused."""
        return (agent.get("description") or "").startswith(self.group.agent_description)

    def remove(self, is_leaving, ends=None, snap=None):
        """Stop sending calls to the volunteer whose number `is_leaving` is true for; the last one leaving finishes.

        The others' agents were set before the period opened and stay as they
        are, so the period stays open: only the leaving agent is logged out,
        then the period's end moves to the latest of the others' (`ends`, as in
        start); when that end has passed, the permanence finishes. An
        interrupted permanence stays closed, waiting for its volunteers left.
        A page left open may show a number no longer on duty: then nothing is done.
        `snap`: the snapshot just read, if any.
        """
        snap = snap or self.snapshot()
        before = self.state(snap)
        leaving = next((v for v in before.volunteers if is_leaving(v.number)), None)
        if leaving is None or not (before.running or before.interrupted):
            return Outcome("gone", "", before, snap)
        staying = [n for n in before.numbers if n != leaving.number]
        if not staying:
            return self.finish(snap)
        period = self.todays_period(snap) if before.running else None
        until = self.until(snap, staying, ends or {})
        if period and period_to(until) < f"{self.moment:%H:%M:%S}":
            return self.finish(snap)
        agent = next(a for a in snap.agents if a["agentId"] == leaving.agent_id)
        self.set_status(agent, "loggedOut")
        moved = period is not None and period["timeTo"] != period_to(until)
        if moved:
            self.client.put(f"{self.conditions_path}/{period['conditionId']}", timeTo=period_to(until))
        after = self.read_back(snap, [leaving.agent_id], conditions=[period["conditionId"]] if moved else [])
        state = self.state(after)
        verify(
            state.running == before.running
            and sorted(state.numbers) == sorted(staying)
            and state.until == (until if period else ""),
            f"expected {staying} on duty until {until}, reads {state}",
        )
        return Outcome("remove", leaving.number, state, after)

    def staff(self, snap, numbers, ends, newcomer=None, name=""):
        """Make `numbers` the available agents, today's period open until their latest end; return the snapshot after.

        OVH forwards to an external number reliably only if the agent is set
        before the period opens: a change of the numbers during a permanence
        closes the period, switches the agents, then reopens it. A new end alone
        moves the period's end (after the agents are set, as an opening).
        """
        until = self.until(snap, numbers, ends)
        period = self.todays_period(snap)
        available = [a for a in snap.agents if a["status"] == "available" and a["agentId"] in snap.attached]
        changing = period is not None and sorted(a["number"] for a in available) != sorted(numbers)
        if changing:
            self.client.delete(f"{self.conditions_path}/{period['conditionId']}")
        others = [a for a in snap.agents if a["status"] == "available" and a["number"] not in numbers]
        old_periods = [p for p in self.page_periods(snap) if p["weekDay"] != self.today]
        logouts = [lambda a=a: self.set_status(a, "loggedOut") for a in others]
        parallel(*logouts, lambda: self.remove_periods(old_periods))
        agents = {}
        for agent in snap.agents:
            agents.setdefault(agent["number"], agent)
        spares = [
            a
            for a in snap.agents
            if a["status"] != "available" and self.is_page_agent(a) and a["number"] not in numbers
        ]
        chosen = {n: agents.get(n) or (spares.pop() if spares else None) for n in numbers}
        written = parallel(
            *[lambda n=n: self.make_available(snap, chosen[n], n, name if n == newcomer else None) for n in numbers]
        )
        written = [a["agentId"] for a in others] + [i for i in written if i is not None]
        conditions, created = [], []
        if changing or period is None:
            created = [c for c in [self.open_period(until)] if c is not None]
        elif period["timeTo"] != period_to(until):
            self.client.put(f"{self.conditions_path}/{period['conditionId']}", timeTo=period_to(until))
            conditions = [period["conditionId"]]
        attached = any(i not in snap.attached for i in written)
        after = self.read_back(snap, written, attached, conditions, created)
        state = self.state(after)
        verify(
            state.running and sorted(state.numbers) == sorted(numbers) and state.until == until,
            f"expected {numbers} on duty until {until}, reads {state}",
        )
        return after

    def make_available(self, snap, agent, number, name):
        """Make `number` an available agent of the queue, with the group's settings; `name` None keeps its name.

        Return the agent's id if anything of it was written, else None.

        `agent` is the number's own agent, or a spare agent of the page given the number (so that
        agents do not pile up, one per number ever used), or None for a new agent.
        The description (and first name) is only written on the page's own agents, never on IT's.
        """
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
            wanted = dict(settings, status="available", number=number)
            if self.is_page_agent(agent) and (name is not None or agent["number"] != number):
                wanted["description"] = self.description(name or "")
            if not any(agent.get(key) != value for key, value in wanted.items()):
                return None if agent["agentId"] in snap.attached else self.attach(snap, agent)
            self.client.put(f"{self.hunting}/agent/{agent['agentId']}", **wanted)
        return self.attach(snap, agent)

    def attach(self, snap, agent):
        """Put an agent in the queue, unless it is there; return its id."""
        if agent["agentId"] not in snap.attached:
            self.client.post(f"{self.hunting}/agent/{agent['agentId']}/queue", queueId=snap.queue_id, position=1)
        return agent["agentId"]

    def finish(self, snap=None):
        """Log the agents out, then close every period the page opened; return the Outcome.

        Agents go first: if OVH fails halfway, the period is open with nobody
        available, which the page shows, rather than volunteers left available.
        `snap`: the snapshot just read, if any.
        """
        snap = snap or self.snapshot()
        before = self.state(snap)
        available = [a for a in snap.agents if a["status"] == "available"]
        parallel(*[lambda a=a: self.set_status(a, "loggedOut") for a in available])
        self.remove_periods(self.page_periods(snap))
        after = self.read_back(snap, [a["agentId"] for a in available])
        state = self.state(after)
        verify(not state.running and not state.volunteers, f"expected nobody on duty, reads {state}")
        return Outcome("finish" if before.running or before.volunteers else "nothing", "", state, after)

    def set_status(self, agent, status):
        """Set an agent's status (available or loggedOut)."""
        self.client.put(f"{self.hunting}/agent/{agent['agentId']}", status=status)

    def remove_periods(self, periods):
        """Delete time conditions the page opened."""
        parallel(*[lambda p=p: self.client.delete(f"{self.conditions_path}/{p['conditionId']}") for p in periods])

    def open_period(self, until):
        """Open today's period until the planned end `until`; return it as OVH made it (None: it was there)."""
        import ovh.exceptions

        period = {"weekDay": self.today, "timeFrom": PERIOD_FROM, "timeTo": period_to(until), "policy": PERIOD_POLICY}
        try:
            return self.client.post(self.conditions_path, **period)
        except ovh.exceptions.BadParametersError:
            conditions = get_all(self.client, self.conditions_path)
            if not any(all(c[key] == value for key, value in period.items()) for c in conditions):
                raise
            return None


LINE_KINDS = {"redirect": RedirectLine, "queue": QueueLine}
SNAPSHOT_KINDS = {"redirect": RedirectSnapshot, "queue": QueueSnapshot}


def verify(condition, detail):
    """Raise a mismatch failure when the state read back is not what was asked."""
    if not condition:
        raise OvhFailure("mismatch", detail)


CONDITIONS_OFF_STEP = (
    "Les plages horaires de la file d'appels sont désactivées chez OVH : la page ne peut ni ouvrir ni fermer "
    "la ligne. Dans l'espace client OVH, Télécom > Téléphonie > le numéro du groupe > Configuration > "
    "Plages horaires et fermetures : choisir « Activées » (« Activer l'utilisation des plages horaires » : Oui), "
    "puis Valider. La page n'y touche jamais elle-même."
)


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


HANDOVER_ACTIONS = {
    "start": "début", "change": "changement de numéro", "add": "numéro ajouté", "resume": "permanence reprise",
    "ends": "fin prévue changée",
    "name": "prénom changé", "name-ends": "prénom et fin prévue changés",
    "remove": "numéro retiré", "finish": "fin", "auto-finish": "fin automatique",
}  # fmt: skip


def recent_actions(settings, group, count=5):
    """The group's last actions in the activity log, newest first, as (time, action, number, succeeded, detail).

    A result is "ok", or "ok, " and a detail such as the planned end; anything else is a failure.
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
        if len(fields) != 6 or fields[1] != group.slug or fields[2] not in HANDOVER_ACTIONS:
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
    if not settings.notify or not settings.sendmail:
        return
    import email.message  # Here, not for every request: a CGI process starts faster.
    import subprocess

    message = email.message.EmailMessage()
    message["To"] = ", ".join(settings.notify)
    message["Subject"] = f"[cimade-ovh] {subject}"
    message.set_content(body)
    try:
        subprocess.run(settings.sendmail, input=message.as_bytes(), capture_output=True, timeout=5, check=True)
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


def ends_path(settings, group):
    """The file of the planned ends of a group's volunteers: {"day": "YYYY-MM-DD", "ends": {number: "HH:MM:SS"}}."""
    return settings.data_dir / "ends" / f"{group.slug}.json"


def read_ends(settings, group):
    """The planned ends stored for a group, as (day, {number: "HH:MM:SS"}); (None, {}) when none or unreadable."""
    path = ends_path(settings, group)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        day = date.fromisoformat(data["day"])
        ends = {n: parse_end(e) for n, e in data["ends"].items() if re.fullmatch(r"00\d{6,15}", n)}
    except FileNotFoundError:
        return None, {}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        log.error("cannot read the planned ends %s: %s", path, error)
        return None, {}
    return day, ends


def todays_ends(settings, group, moment):
    """The planned ends stored for the group's volunteers of today."""
    day, ends = read_ends(settings, group)
    return ends if day == moment.date() else {}


def write_ends(settings, group, moment, ends):
    """Store today's planned ends of the group's volunteers (under the group's lock), whole or not at all."""
    path = ends_path(settings, group)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, json.dumps({"day": moment.date().isoformat(), "ends": ends}), 0o640)
    except OSError as error:
        log.error("cannot write the planned ends %s: %s (%s)", path, error, ends)


def keep_last_good(settings, error):
    """Say in the error log, and once by mail to IT, that lines.ini is broken and the page keeps its last good one."""
    log.error("configuration error: %s; the page keeps serving the configuration it read before", error)
    digest = hashlib.sha256(str(error).encode("utf-8")).hexdigest()[:16]
    notify_it_once(
        settings, f"lines-ini-{digest}", timedelta(days=7), "Erreur dans lines.ini",
        f"{error}\n\nLa page garde la configuration lue avant cette modification, jusqu'à ce que l'erreur soit "
        f"corrigée (ou jusqu'au prochain redémarrage d'Apache, qui mettrait toutes les pages en erreur).\n"
        f"Vérifiez avec : {script_command('index.py', '--check')}",
    )  # fmt: skip


def describe_failure(failure, contact):
    """The French sentences that explain a failure to a volunteer."""
    explanation, advice = OVH_FAILURES[failure.reason]
    return failure.explanation or explanation, Template(advice).safe_substitute(contact=contact)


def is_explanation(text):
    """True for one of the page's own EXPLANATIONS ({count} being a number): a flash cookie's text must be one."""
    return any(re.fullmatch(re.escape(known).replace(r"\{count\}", r"\d{1,3}"), text) for known in EXPLANATIONS)


def as_failure(error):
    """Turn whatever went wrong while talking to OVH into an OvhFailure; a bug of the page's is "internal"."""
    if isinstance(error, OvhFailure):
        return error
    if isinstance(error, ConfigError):
        return OvhFailure("unreadable" if error.unreadable else "config", str(error))
    if type(error).__module__.startswith(("ovh", "requests")):
        return ovh_failure(error)
    import traceback

    return OvhFailure("internal", "".join(traceback.format_exception(error)))


# --- Access: codes, signed cookies, form tokens, locks ----------------------------

CODE_MIN_LENGTH = 6
SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # About 50 ms and 16 MB a try: slow for guessing, quick for a person.
WRONG_CODE_DELAY = 1.0  # Seconds every wrong code waits before its answer.
MAX_WRONG_CODES = 5  # Wrong codes allowed per group and address (IPv6: per /56) within LOCKOUT…
LOCKOUT = timedelta(minutes=15)  # …after which that address waits this long.
# A slower limit for the group, from all addresses: one address alone (20 an hour at most) never reaches it,
# and the whole internet cannot try more than 30 codes an hour (720 a day) on a group.
MAX_GROUP_WRONG_CODES = 30
GROUP_LOCKOUT = timedelta(hours=1)
LOCK_TIMEOUT = 10  # Seconds an action waits for another one on the same group, before its ACTION_SECONDS.


def hash_code(code):
    """A salted scrypt hash of an access code, as stored in access-codes.ini."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(code.encode("utf-8"), salt=salt, **SCRYPT)
    encode = base64.b64encode
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${encode(salt).decode()}${encode(digest).decode()}"


def check_code(code, stored):
    """True when `code` matches a hash made by hash_code."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        salt, digest = base64.b64decode(salt), base64.b64decode(digest)
        if scheme != "scrypt":
            return False
        tried = hashlib.scrypt(code.encode("utf-8"), salt=salt, n=int(n), r=int(r), p=int(p))
    except ValueError:
        return False
    return hmac.compare_digest(tried, digest)


def read_access_codes(path):
    """The hashed access codes by group slug, from access-codes.ini (none when the file is absent)."""
    if not path.exists():
        return {}
    parser = read_ini(path)
    codes = {}
    for section in parser.sections():
        stored = parser.get(section, "code", fallback="").strip()
        if stored:
            if not stored.startswith("scrypt$"):
                raise ConfigError(f"{path}, section [{section}], clé « code » : pas une empreinte faite par --set-code")
            codes[section.lower()] = stored
    return codes


def write_access_code(path, slug, stored, share=None):
    """Set (or with None remove) a group's hashed code in access-codes.ini, keeping the file's owner and mode.

    A new file is first given to `share` (a function of its path), before the page can see it.
    """
    parser = read_ini(path) if path.exists() else configparser.ConfigParser(interpolation=None)
    if stored is None:
        parser.remove_section(slug)
    else:
        if not parser.has_section(slug):
            parser.add_section(slug)
        parser[slug]["code"] = stored
    text = io.StringIO()
    text.write("# Codes d'accès des groupes (empreintes), écrits par : python3 index.py --set-code <groupe>\n\n")
    parser.write(text)
    if path.exists():  # Keep the owner, group and mode IT gave the file.
        info = path.stat()
        replace_file(path, text.getvalue(), info.st_mode & 0o777, keep_owner(info))
    else:
        replace_file(path, text.getvalue(), 0o640, share)


def coded_groups_path(settings):
    """The file that remembers which groups have a code: losing access-codes.ini must not open their pages."""
    return settings.data_dir / "access-codes.groups"


def read_coded_groups(settings):
    """The slugs of the groups known to have an access code."""
    try:
        return set(coded_groups_path(settings).read_text(encoding="utf-8").split())
    except FileNotFoundError:
        return set()


def write_coded_groups(settings, slugs):
    """Remember the groups that have an access code, in a file owned like the data folder (the page may add to it)."""
    path = coded_groups_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{slug}\n" for slug in sorted(slugs))
    replace_file(path, text, 0o640, lambda draft: own_like_data(settings, draft, 0o640))


SECRET_KEY_BYTES = 32  # A shorter key (an empty file, say) is replaced.


def secret_key(settings):
    """The key that signs cookies and form tokens: made on first use, or when too short; readable only by its owner."""
    path = settings.data_dir / "secret.key"
    with contextlib.suppress(FileNotFoundError):
        key = path.read_bytes()
        if len(key) >= SECRET_KEY_BYTES:
            return key
        with locked_file(settings.data_dir / "locks" / "secret.key.lock") as held:  # One process replaces it.
            if held is not None and len(path.read_bytes()) < SECRET_KEY_BYTES:
                log.error("%s holds %d bytes, fewer than %d: replaced by a new key, everyone must enter again",
                          path, len(key), SECRET_KEY_BYTES)  # fmt: skip
                path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # When two processes race, the first key wins for both.
        replace_file(path, secrets.token_bytes(SECRET_KEY_BYTES), 0o600, link=True)
    key = path.read_bytes()
    if len(key) < SECRET_KEY_BYTES:  # Another process holds the lock to replace it: never sign with it.
        raise OSError(f"{path} : clé trop courte ({len(key)} octets)")
    return key


def sign(key, text):
    """A short HMAC of `text`, safe in a cookie or a form."""
    digest = hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


def access_cookie_value(key, group, stored, expires):
    """The signed cookie that lets a browser in a group until `expires` (a Unix time), while the code stays."""
    return f"{expires}.{sign(key, f'access:{group.slug}:{expires}:{stored}')}"


def has_access(key, group, stored, value, clock):
    """True when `value` is a valid, unexpired access cookie for the group's current code."""
    expires, _, _ = value.partition(".")
    if not re.fullmatch(r"[0-9]{1,12}", expires) or int(expires) < clock:
        return False
    return same_text(value, access_cookie_value(key, group, stored, int(expires)))


def same_text(given, expected):
    """Compare a secret in constant time; any text may be given (compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def form_token(key, csrf_cookie, access_cookie=""):
    """The token every form carries: tied to the browser's csrf cookie and, on a group with a code, its access cookie.

    A sibling subdomain can set a csrf cookie of its choice and read its token on the code page,
    but it can neither read nor set the access cookie: that token is worthless behind the code.
    """
    return sign(key, f"csrf:{csrf_cookie}:{access_cookie}")


def group_lock(settings, group, blocking=True):
    """The lock that lets one action at a time change a group's line, in every process."""
    return locked_file(settings.data_dir / "locks" / f"{group.slug}.lock", blocking)


@contextlib.contextmanager
def locked_file(path, blocking=True):
    """Hold an exclusive lock on `path` (made if needed), across processes; yield the open file or None.

    What is written to the file is on disk before the lock is released. A file removed
    while waiting for its lock (an old count cleaned up) is opened again.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + LOCK_TIMEOUT
    opener = lambda name, flags: os.open(name, os.O_RDWR | os.O_CREAT, 0o640)  # noqa: E731 (r+ without appending)
    while True:
        with open(path, "r+", encoding="utf-8", opener=opener) as file:
            while True:
                try:
                    fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not blocking or time.monotonic() > deadline:
                        yield None
                        return
                    time.sleep(0.05)
            try:
                if os.stat(file.fileno()).st_ino != os.stat(path).st_ino:
                    continue  # Removed, or replaced, while we waited.
            except FileNotFoundError:
                continue
            try:
                yield file
            finally:
                file.flush()
                os.fsync(file.fileno())
                fcntl.flock(file, fcntl.LOCK_UN)
            return


def replace_file(path, data, mode, own=None, link=False):
    """Put `data` (text or bytes) in `path` whole or not at all: readers see the old file or the new one, never half.

    The draft, beside `path`, gets `mode` whatever the umask and `own` (a function of its path, to
    give it an owner); it is on disk before it takes the place of `path`. With link=True it never
    replaces a file already there: FileExistsError.
    """
    draft = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        with open(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as file:
            os.fchmod(file.fileno(), mode)
            if own:
                own(draft)
            file.write(data.encode("utf-8") if isinstance(data, str) else data)
            file.flush()
            os.fsync(file.fileno())
        (os.link if link else os.replace)(draft, path)
    finally:
        draft.unlink(missing_ok=True)


def keep_owner(info):
    """An `own` for replace_file: the owner and group of `info` (a stat result), where we may give them."""

    def own(draft):
        with contextlib.suppress(PermissionError):
            os.chown(draft, info.st_uid, info.st_gid)

    return own


class WrongCodes:
    """Wrong access codes of a group, per client address and for the whole group, in files shared by every process."""

    def __init__(self, settings, group, client):
        self.folder = settings.data_dir / "attempts"
        who = hashlib.sha256(client_network(client).encode("utf-8")).hexdigest()[:16]
        self.path = self.folder / f"{group.slug}.{who}"
        self.group_path = self.folder / group.slug
        self.whole_group = False  # Whether the group's limit, not the address's, was reached.

    def claim(self, clock):
        """Count one more try before checking it; return 0, or the seconds to wait (see whole_group).

        Counting first, under the locks, means that tries sent all at once are counted all the
        same; a right code then takes its try back.
        """
        self.sweep(clock)
        with locked_file(self.path) as mine, locked_file(self.group_path) as everyone:
            if mine is None or everyone is None:
                return int(LOCK_TIMEOUT)
            own, wait = self.count(mine, clock, MAX_WRONG_CODES, LOCKOUT)
            if wait:
                return wait
            group, wait = self.count(everyone, clock, MAX_GROUP_WRONG_CODES, GROUP_LOCKOUT)
            if wait:
                self.whole_group = True
                return wait
            write_times(mine, own + [clock])
            write_times(everyone, group + [clock])
        return 0

    def clear(self, clock):
        """After a right code: forget the address's wrong codes, and take its try back from the group's count."""
        with locked_file(self.path) as mine, locked_file(self.group_path) as everyone:
            if mine is not None:
                write_times(mine, [])
            if everyone is not None:
                group, _ = self.count(everyone, clock, MAX_GROUP_WRONG_CODES, GROUP_LOCKOUT)
                if group is not None:
                    write_times(everyone, [t for t in group if t != clock])

    def count(self, file, clock, limit, window):
        """The times of the tries a file counts within `window`, and the seconds to wait (0: one more is allowed).

        An unreadable count is locked until its last change is older than `window`: never opened.
        """
        file.seek(0)
        try:
            times = json.loads(file.read() or "[]")
            if not isinstance(times, list):
                raise ValueError("not a list")
        except ValueError as error:
            wait = int(os.stat(file.fileno()).st_mtime + window.total_seconds() - clock) + 1
            log.error("%s unreadable (%s): locked for %s s", file.name, error, max(wait, 0))
            return ([], 0) if wait <= 0 else (None, wait)
        recent = [t for t in times if isinstance(t, (int, float)) and clock - t < window.total_seconds()]
        if len(recent) >= limit:
            return recent, max(1, int(recent[-limit] + window.total_seconds() - clock) + 1)
        return recent, 0

    def sweep(self, clock):
        """Remove the counts nobody added to for longer than the longest window (checked again under their lock)."""
        stale = GROUP_LOCKOUT.total_seconds()
        with contextlib.suppress(FileNotFoundError):
            for path in self.folder.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if clock - path.stat().st_mtime > stale:
                        with locked_file(path, blocking=False) as held:
                            if held is not None and clock - os.stat(held.fileno()).st_mtime > stale:
                                path.unlink()


def write_times(file, times):
    """Replace the times a count file holds (under its lock)."""
    file.seek(0)
    file.truncate()
    file.write(json.dumps(times))


def client_network(address):
    """Whom wrong codes are counted for: an IPv4 address, or an IPv6 address's /56.

    A subscriber gets a /56 or a /60 from French providers: counted by /64, one home could use 16 to 256
    networks, and so reach the group's own limit alone.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/56", strict=False)) if ip.version == 6 else str(ip)


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
ul.team{list-style:none;padding-left:0}
ul.team li{margin:.5rem 0;display:flex;align-items:center;justify-content:space-between;gap:.5rem}
ul{padding-left:1.25rem}
li{margin:.25rem 0}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:1rem;white-space:nowrap}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{padding:.3rem .5rem;border-bottom:1px solid #ccc;text-align:right;vertical-align:top}
.left{text-align:left}
tbody th{font-weight:400}
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
$handover
<h2>Répondre aux appels</h2>
<form method="post" action="$start_url">
$csrf
$fields
$start_note
<button type="submit">$start_label</button>
</form>
$finish
<footer>
$contact
$stats_link
<p><a href="$home_url">Tous les groupes</a></p>
</footer>"""
)

ACCESS_BODY = Template(
    """<h1>Permanence téléphonique<br>$name</h1>
$messages
<p>Cette page est réservée aux bénévoles du groupe. Entrez le code d'accès que la coordination vous a donné.</p>
<form method="post" action="$access_url">
$csrf
$field
<button type="submit">Entrer</button>
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

FINISH_FORM = Template(
    """<h2>Terminer</h2>
<form method="post" action="$finish_url">
$csrf
$finish_warning
<button type="submit" class="finish">$finish_label</button>
</form>"""
)

FLASH_TEXTS = {
    "start": "C'est fait : les appels arrivent maintenant sur le $number.",
    "change": "C'est fait : le numéro a changé, les appels arrivent maintenant sur le $number.",
    "finish": "La permanence est terminée : les appels n'arrivent plus sur le numéro du bénévole.",
    "nothing": "Il n'y avait pas de permanence en cours ; rien n'a changé.",
    "same": "Le $number reçoit déjà les appels ; rien n'a changé.",
    "add": "C'est fait : le $number reçoit aussi les appels.",
    "resume": "C'est fait : la permanence reprend, les appels arrivent de nouveau sur les numéros ci-dessous.",
    "remove": "C'est fait : le $number ne reçoit plus les appels.",
    "gone": "Ce numéro ne recevait déjà plus les appels ; rien n'a changé.",
    "ends": "C'est fait : la fin prévue du $number a changé (voir ci-dessous).",
    "name": "C'est fait : le prénom du $number a changé (voir ci-dessous).",
    "name-ends": "C'est fait : le prénom et la fin prévue du $number ont changé (voir ci-dessous).",
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


def render_state(group, state, failure, contact, base, csrf):
    """The "En ce moment" part of a group page: permanence, where a call would ring, calls."""
    if failure:
        explanation, advice = describe_failure(failure, contact)
        return (
            '<div class="box error"><p><strong>Impossible de lire l\'état de la ligne chez OVH.</strong></p>'
            f"<p>{escape(explanation)} {escape(advice)}</p></div>"
        )
    if (state.running or state.interrupted) and state.volunteers and group.max_volunteers > 1:
        lines = [render_team(group, state, base, csrf)]
    elif state.running and state.volunteers:
        lines = [f'<p class="on">Permanence en cours sur le {phone_list(state.numbers)}</p>']
        if state.volunteers[0].until:
            lines.append(f"<p>Fin prévue à {escape(format_end(state.volunteers[0].until))}.</p>")
    elif state.open_without_volunteer:
        lines = ['<p class="off">La permanence est ouverte, mais aucun numéro ne reçoit les appels.</p>']
    else:
        lines = ['<p class="off">Pas de permanence en cours.</p>']
    if state.conditions_off:
        lines.append(message_box("warning", escape(CONDITIONS_OFF_NOTICE)))
    if group.kind == "redirect" and not state.running:
        sip_line = escape(format_phone(state.sip_line))
        lines.append(f'<p>Les appels arrivent sur la ligne SIP du groupe <span class="tel">({sip_line}).</span></p>')
    else:
        lines.append(f"<p>Si quelqu'un appelle maintenant, {what_a_call_does(state)}</p>")
    if group.kind == "queue":
        lines.append(render_calls(state.calls))
    return "\n".join(lines)


CONDITIONS_OFF_NOTICE = (
    "Les plages horaires de cette ligne sont désactivées chez OVH : la page ne peut ni ouvrir ni fermer "
    "la ligne. Les numéros des bénévoles sonnent à toute heure tant qu'ils reçoivent les appels de la file "
    "(jusqu'à « Terminer »). L'informatique a été prévenue par courriel."
)
CLOSED_LINE = {
    "voicemail": "l'appel va sur la messagerie de la ligne.",
    "": "l'appelant entend le message de fermeture de la ligne ; ça ne sonne chez personne.",
}


def what_a_call_does(state):
    """The end of « Si quelqu'un appelle maintenant, … », as OVH decides: who rings and how, or where the call goes."""
    numbers = state.rings_now
    if state.elsewhere is not None:
        return CLOSED_LINE.get(state.elsewhere) or f"l'appel est renvoyé vers le {phone_list([state.elsewhere])}"
    if not numbers:
        return "ça ne sonne chez personne."
    if len(numbers) == 1:
        return f"ça sonne sur le {phone_list(numbers)}"
    if state.strategy == "ringAll":
        return f"ça sonne ensemble sur le {phone_list(numbers)}"
    if state.strategy == "sequentiallyByAgentOrder":
        turns = [f"sur le {phone_span(mask_phone(n))}" for n in numbers]
        return f"ça sonne d'abord {turns[0]}, puis " + ", puis ".join(turns[1:]) + "."
    return f"ça sonne tour à tour, dans l'ordre que choisit OVH, sur le {phone_list(numbers)}"


def render_team(group, state, base, csrf):
    """The volunteers answering together: name, masked number, their call, and a button to remove each."""
    count = len(state.volunteers)
    items = []
    for volunteer in state.volunteers:
        who = phone_span(mask_phone(volunteer.number))
        if volunteer.name:
            who = f"{escape(volunteer.name)}, {who}"
        call = volunteer.call
        since = call and (call.answered or call.begin)
        doing = (f"en appel depuis {since:%H:%M}" if since else "en appel") if call else "libre"
        if volunteer.until:
            doing += f", jusqu'à {format_end(volunteer.until)}"
        label = escape(f"Retirer le {mask_phone(volunteer.number)}")
        items.append(
            f"<li><span>{who} : {doing}</span>\n"
            f'<form method="post" action="{escape(base)}/{escape(group.slug)}/remove" class="inline">{csrf}'
            f'<input type="hidden" name="volunteer" value="{escape(volunteer.mark)}">'
            f'<button type="submit" class="remove" aria-label="{label}">Retirer</button></form></li>'
        )
    heading = f"{count} bénévole{'s' if count > 1 else ''} sur {group.max_volunteers} au plus"
    team = '<ul class="team">\n' + "\n".join(items) + "\n</ul>"
    if state.interrupted:
        return f'<p class="off">Permanence interrompue : {heading}.</p>\n{team}\n<p>{escape(INTERRUPTED)}</p>'
    return f'<p class="on">Permanence en cours : {heading}.</p>\n{team}'


INTERRUPTED = (
    "OVH a échoué pendant un changement : la ligne est fermée, les appels n'arrivent pas sur ces numéros "
    "pour l'instant. Pour reprendre la permanence, retapez votre numéro ci-dessous et appuyez de nouveau "
    "sur « Ajouter mon numéro » ; ou retirez un numéro, ou terminez la permanence."
)


def phone_span(shown):
    """A number as shown (whole or masked), kept on one line."""
    return f'<span class="tel">{escape(shown)}</span>'


def phone_list(numbers):
    """Masked numbers separated by commas and ending with a full stop, each kept on one line."""
    last = len(numbers) - 1
    return " ".join(phone_span(mask_phone(n) + ("." if i == last else ",")) for i, n in enumerate(numbers))


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
            items.append(f"<li>Appel en cours depuis {answered} avec le {phone_span(mask_phone(call.agent))}</li>")
    return "<p>Appels :</p>\n<ul>\n" + "\n".join(items) + "\n</ul>"


def render_handover(actions):
    """The group's last actions, so that a volunteer sees who had the line before them."""
    if not actions:
        return ""
    items = []
    for moment, action, number, succeeded, detail in actions:
        what = HANDOVER_ACTIONS[action] + ("" if succeeded else " (échec)")
        on = f", {phone_span(mask_phone(number))}" if number else ""
        more = f", {escape(detail)}" if detail else ""
        items.append(f"<li>{escape(format_short_day_time(moment))} : {escape(what)}{on}{more}</li>")
    return "<h2>Dernières actions</h2>\n<ul>\n" + "\n".join(items) + "\n</ul>"


def csrf_field(token):
    """The hidden field that proves a form came from this site."""
    return f'<input type="hidden" name="csrf" value="{escape(token)}">'


def render_access(settings, group, base, token, messages, error=""):
    """The page that asks for a group's access code."""
    errors = {"code": error} if error else {}
    body = ACCESS_BODY.substitute(
        name=escape(group.name),
        messages="\n".join(messages),
        access_url=escape(f"{base}/{group.slug}/access"),
        csrf=csrf_field(token),
        field=input_field("code", "Code d'accès", "password", "current-password", {}, errors),
        contact=f"<p>Contact du groupe : {escape(group.contact)}</p>" if group.contact else "",
        home_url=escape(f"{base}/"),
    )
    return render_page(f"Permanence {group.name}", body)


def render_group(settings, group, base, moment, state, failure, messages, token, typed=None, errors=None, actions=()):
    """A group's page: its state, the last actions, the form to start, change or join, the form to finish."""
    typed, errors = typed or {}, errors or {}
    url = f"{base}/{group.slug}"
    team = group.max_volunteers > 1
    on_duty = state.numbers if state and (state.running or state.interrupted) else []
    fields = []
    if team:
        fields.append(input_field("name", "Votre prénom (facultatif)", "text", "given-name", typed, errors))
    fields.append(input_field("number", "Votre numéro de téléphone", "tel", "tel", typed, errors))
    proposed = {"ends": default_end(group, moment)[:5], **typed}
    fields.append(input_field("ends", "Jusqu'à quelle heure ?", "time", "off", proposed, errors))
    if on_duty:
        kept_name = " (prénom laissé vide : celui que vous aviez donné reste)" if team else ""
        fields.append(
            "<p>Prolonger / avancer la fin : déjà de permanence, retapez votre numéro "
            f"avec la nouvelle heure{kept_name}.</p>"
        )
    start_label = "Ajouter mon numéro" if team and on_duty else "Répondre sur ce numéro"
    if team and len(on_duty) >= group.max_volunteers:
        only_them = ""  # Interrupted: those on duty resume it with « Ajouter mon numéro », as the state above says.
        if state.running:
            start_label = "Changer mon heure de fin"  # Only those on duty can use it.
            only_them = (
                "Le bouton ci-dessous sert seulement aux bénévoles de permanence, pour changer leur heure de fin "
                "ou leur prénom. "
            )
        start_note = (
            f"<p>La permanence est complète ({len(on_duty)} bénévoles). {only_them}"
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
        state=render_state(group, state, failure, settings.contact, base, csrf_field(token)),
        handover=render_handover(actions),
        csrf=csrf_field(token),
        start_url=escape(f"{url}/start"),
        fields="\n".join(fields),
        start_note=start_note,
        start_label=start_label,
        finish=FINISH_FORM.substitute(
            finish_url=escape(f"{url}/finish"),
            csrf=csrf_field(token),
            finish_warning=finish_warning,
            finish_label="Terminer la permanence pour tout le monde" if team else "Terminer la permanence",
        )
        if state is None or state.running or state.leftover
        else "",
        contact=contact,
        stats_link=(
            f'<p><a href="{escape(url)}/stats">Statistiques des {STATS_DAYS} derniers jours</a></p>'
            if group.kind == "queue"
            else ""
        ),
        home_url=escape(f"{base}/"),
    )
    return render_page(f"Permanence {group.name}", body)


ONE_NUMBER_ONLY = {
    "redirect": "Cette ligne renvoie les appels vers un seul numéro à la fois : "
    "le vôtre remplacera celui de la permanence en cours.",
    "queue": "Ce groupe reçoit les appels sur un seul numéro à la fois : "
    "le vôtre remplacera celui de la permanence en cours.",
}


def default_end(group, moment):
    """The end the form proposes: the group's ends_at, or the end of the day once that is less than 15 minutes ahead."""
    return group.ends_at if end_moment(moment, group.ends_at) - moment >= MIN_AHEAD else END_OF_DAY


def chosen_end(text, group, moment):
    """The planned end a volunteer chose, "HH:MM:SS" (the group's when the form has none); else ValueError in French."""
    if text is None:
        return default_end(group, moment)
    if not text.strip():  # The volunteer emptied the field: ask, rather than guess the end of the day.
        raise ValueError("Indiquez l'heure de fin, par exemple 18:00.")
    try:
        end = parse_end(text)
    except ValueError:
        raise ValueError("Heure illisible : écrivez-la par exemple 18:00.") from None
    if end <= PERIOD_FROM:
        raise ValueError("La page n'ouvre la ligne qu'à partir de 2 h : choisissez une fin après 2 h.")
    ahead = end_moment(moment, end) - moment
    if ahead <= timedelta(0):
        raise ValueError(f"{format_end(end)} est déjà passé : choisissez une heure plus tard aujourd'hui.")
    if ahead < MIN_AHEAD and end != END_OF_DAY:  # Late in the evening, the end of the day is still fine.
        soonest = moment + MIN_AHEAD
        raise ValueError(f"Choisissez une fin au moins 15 minutes après maintenant (après {soonest:%H:%M}).")
    return end


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


# --- Statistics: the queues' records and what they add up to ------------------
#
# stats.py (cron, every 5 minutes) appends one record per queue group and run to
# data/stats/<group>/<YYYY-MM-DD>.jsonl: {"time", "statistics": OVH's
# liveStatistics, "calls": OVH's liveCalls}. OVH's counters only grow, from
# lastReset on; a day's figures are what they grew by, record after record.

STATS_DAYS = 30  # The statistics page shows this many days, today included.
COUNTERS = {  # OVH's liveStatistics counters, and the figure each one gives.
    "callsTotal": "calls",
    "callsAnswered": "answered",
    "callsLost": "lost",
    "totalWaitingDuration": "waiting_seconds",
    "totalCallDuration": "talk_seconds",
}


def record_path(settings, group, day):
    """The file of a group's records of one day (a date or a datetime)."""
    return settings.data_dir / "stats" / group.slug / f"{day:%Y-%m-%d}.jsonl"


def append_record(path, record):
    """Append one JSON line, locked so that two runs at once never mix their lines.

    A line left unfinished by a run killed while writing is ended first, so
    that it does not spoil the new one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    with open(path, "ab+") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        end = file.seek(0, os.SEEK_END)
        if end:
            file.seek(end - 1)
            if file.read(1) != b"\n":
                line = b"\n" + line
        file.write(line)


@dataclass(frozen=True)
class Record:
    """One run of stats.py for a queue: when, OVH's counters and their lastReset, who was answering a call."""

    time: datetime
    counters: dict  # By figure name: {"calls": …, "answered": …, …}.
    last_reset: datetime
    answering: tuple  # The agents' numbers of the calls answered at that time.


def read_day(path, zone):
    """The records of one file, in time order; a line that cannot be read (a run killed while writing) is skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    records = []
    for number, line in enumerate(lines, 1):
        try:
            data = json.loads(line)
            statistics = data["statistics"]
            records.append(
                Record(
                    time=datetime.fromisoformat(data["time"]).astimezone(zone),
                    counters={figure: int(statistics[counter]) for counter, figure in COUNTERS.items()},
                    last_reset=parse_ovh_datetime(statistics["lastReset"], zone),
                    answering=tuple(
                        call["agent"] for call in data["calls"] if call.get("state") == "Answered" and call.get("agent")
                    ),
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            log.warning("%s, line %d skipped: %r", path, number, error)
    return sorted(records, key=lambda record: record.time)


def read_records(settings, group, first_day, last_day):
    """A group's records from first_day to last_day, after the last one before first_day, which they start from."""
    folder = settings.data_dir / "stats" / group.slug
    days = []
    for path in folder.glob("*.jsonl"):
        try:
            days.append(date.fromisoformat(path.stem))
        except ValueError:
            continue  # Not one of ours.
    days = sorted(day for day in days if day <= last_day)
    records = [
        r for day in days if day >= first_day for r in read_day(record_path(settings, group, day), settings.timezone)
    ]
    for day in reversed([day for day in days if day < first_day]):
        earlier = read_day(record_path(settings, group, day), settings.timezone)
        if earlier:
            return earlier[-1:] + records
    return records


@dataclass
class DayFigures:
    """A queue's figures for one day; with no record that day (records == 0), they are unknown, not zero."""

    day: date
    records: int = 0
    calls: int = 0
    answered: int = 0
    lost: int = 0
    waiting_seconds: int = 0
    talk_seconds: int = 0
    agents: list = field(default_factory=list)  # The numbers seen answering a call that day, first seen first.


def counted(before, after):
    """What OVH counted from record `before` (None: there is none) to record `after`, by figure name.

    The counters restarted from zero when lastReset changed or a counter went
    down: the new values are then all that was counted since. The very first
    record counts its values only if OVH reset the counters that same day.
    """
    if before is None:
        same_day = after.last_reset is not None and after.last_reset.date() == after.time.date()
        return after.counters if same_day else dict.fromkeys(after.counters, 0)
    if after.last_reset != before.last_reset or any(after.counters[n] < before.counters[n] for n in after.counters):
        return after.counters
    return {name: after.counters[name] - before.counters[name] for name in after.counters}


def daily_figures(records, first_day, last_day):
    """The figures of each day from first_day to last_day, from a group's records in time order.

    A record adds what OVH counted since the record before it to its own day.
    After a gap (runs that failed, a day without records), all that was counted
    during the gap goes to the day of the record that ends it. Who answered
    comes from the calls in progress during a run: a short call can be missed.
    """
    figures = {}
    day = first_day
    while day <= last_day:
        figures[day] = DayFigures(day)
        day += timedelta(days=1)
    before = None
    for record in records:
        figure = figures.get(record.time.date())
        if figure is not None:
            figure.records += 1
            for name, grown in counted(before, record).items():
                setattr(figure, name, getattr(figure, name) + grown)
            figure.agents += [number for number in dict.fromkeys(record.answering) if number not in figure.agents]
        before = record
    return list(figures.values())


def format_duration(seconds):
    """A duration the French way, to the minute past one minute: « 45 s », « 8 min », « 2 h 05 »."""
    if seconds < 60:
        return f"{seconds} s"
    minutes = (seconds + 30) // 60
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d}"


STATS_BODY = Template(
    """<h1>Statistiques<br>$name</h1>
<p class="muted">Les $days derniers jours, du $first au $last.</p>
$content
<footer>
<p><a href="$group_url">Retour à la permanence</a></p>
<p><a href="$home_url">Tous les groupes</a></p>
</footer>"""
)

CHART_WIDTH, CHART_HEIGHT = 330, 200  # The chart's own units: about CSS pixels on a 360 px wide phone.
CHART_LEFT, CHART_RIGHT, CHART_TOP, CHART_BOTTOM = 30, 16, 30, 22  # Room for the scale, the legend, the days.
ANSWERED_COLOUR, LOST_COLOUR = "#0b4fb3", "#c25e00"  # Blue and orange: told apart by colour-blind people too.
UNKNOWN_COLOUR, LINE_COLOUR, TEXT_COLOUR = "#e4e4e4", "#cccccc", "#4a4a4a"


def stats_page(request, settings, group):
    """The statistics page of a queue group, read from the records alone: it makes no OVH request."""
    if request.method == "POST":
        return method_not_allowed(request, "GET, HEAD")
    last_day = now(settings.timezone).date()
    first_day = last_day - timedelta(days=STATS_DAYS - 1)
    figures = daily_figures(read_records(settings, group, first_day, last_day), first_day, last_day)
    return Response.page(render_stats(group, request.base, figures))


def render_stats(group, base, figures):
    """A queue group's statistics: a summary, a bar chart of answered and lost calls per day, the same in a table."""
    known = [f for f in figures if f.records]
    if known:
        missing = len(figures) - len(known)
        summary = (
            f"<p>En tout : {plural(sum(f.calls for f in known), 'appel')}, "
            f"dont {plural(sum(f.answered for f in known), 'répondu')} "
            f"et {plural(sum(f.lost for f in known), 'perdu')}."
            + (f" {plural(missing, 'jour')} sans relevé." if missing else "")
            + "</p>"
        )
        note = (
            '<p class="muted">Les chiffres viennent des compteurs de la file d\'appels chez OVH, relevés '
            "régulièrement. « Qui a répondu » ne connaît que les appels en cours lors d'un relevé.</p>"
        )
        content = "\n".join([summary, render_chart(figures), render_stats_table(figures), note])
    else:
        text = "Pas encore de statistiques pour ce groupe : aucun relevé ces derniers jours."
        content = message_box("warning", escape(text))
    body = STATS_BODY.substitute(
        name=escape(group.name),
        days=len(figures),
        first=escape(format_short_day(figures[0].day)),
        last=escape(format_short_day(figures[-1].day)),
        content=content,
        group_url=escape(f"{base}/{group.slug}"),
        home_url=escape(f"{base}/"),
    )
    return render_page(f"Statistiques {group.name}", body)


def plural(count, word):
    """« 0 appel », « 1 appel », « 3 appels »."""
    return f"{count} {word}{'s' if count > 1 else ''}"


def scale_step(highest):
    """The step of the chart's scale: 1, 2 or 5 times a power of ten, for at most 4 steps up to `highest`."""
    power = 1
    while True:
        for step in (power, 2 * power, 5 * power):
            if step * 4 >= highest:
                return step
        power *= 10


def render_chart(figures):
    """Answered and lost calls per day as stacked bars, in inline SVG (no script, no style attribute)."""
    plot_width = CHART_WIDTH - CHART_LEFT - CHART_RIGHT
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    bottom = CHART_TOP + plot_height
    highest = max(f.answered + f.lost for f in figures)
    step = scale_step(highest)
    top = step * max(1, -(-highest // step))  # The scale's top: `highest` rounded up to a step.
    slot = plot_width / len(figures)
    first, last = format_short_day(figures[0].day), format_short_day(figures[-1].day)
    parts = [
        f'<svg role="img" aria-labelledby="chart-title" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" width="100%" '
        f'font-family="system-ui, sans-serif" font-size="12" fill="{TEXT_COLOUR}">',
        f'<title id="chart-title">Appels répondus et perdus par jour, du {escape(first)} au {escape(last)} '
        "(les chiffres sont dans le tableau qui suit)</title>",
    ]
    for x, colour, label in (
        (CHART_LEFT, ANSWERED_COLOUR, "répondus"),
        (CHART_LEFT + 85, LOST_COLOUR, "perdus"),
        (CHART_LEFT + 155, UNKNOWN_COLOUR, "pas de relevé"),
    ):
        parts.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="15">{label}</text>')
    for value in range(0, top + 1, step):
        y = bottom - value * plot_height / top
        parts.append(
            f'<line x1="{CHART_LEFT}" x2="{CHART_WIDTH - CHART_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{LINE_COLOUR}" stroke-width="1"/>'
        )
        parts.append(f'<text x="{CHART_LEFT - 5}" y="{y + 4:.1f}" text-anchor="end">{value}</text>')
    for i, figure in enumerate(figures):
        x = CHART_LEFT + i * slot + slot * 0.15
        width = slot * 0.7
        day = escape(format_short_day(figure.day))
        if not figure.records:
            parts.append(
                f'<rect x="{x:.1f}" y="{CHART_TOP}" width="{width:.1f}" height="{plot_height}" '
                f'fill="{UNKNOWN_COLOUR}"><title>{day} : pas de relevé</title></rect>'
            )
        y = bottom
        for count, colour, word in ((figure.answered, ANSWERED_COLOUR, "répondu"), (figure.lost, LOST_COLOUR, "perdu")):
            if count:
                height = count * plot_height / top
                y -= height
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" fill="{colour}">'
                    f"<title>{day} : {plural(count, word)}</title></rect>"
                )
        if (len(figures) - 1 - i) % 7 == 0:
            parts.append(
                f'<text x="{x + width / 2:.1f}" y="{CHART_HEIGHT - 6}" text-anchor="middle">{figure.day:%d/%m}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts)


def render_stats_table(figures):
    """The chart's figures, and more, as a table that screen readers can read."""
    rows = []
    for figure in figures:
        day = f'<th scope="row" class="left">{escape(format_short_day(figure.day))}</th>'
        if not figure.records:
            rows.append(f'<tr>{day}<td colspan="6" class="left muted">pas de relevé</td></tr>')
            continue
        agents = "<br>".join(phone_span(mask_phone(a)) for a in figure.agents)
        rows.append(
            f"<tr>{day}<td>{figure.answered}</td><td>{figure.lost}</td><td>{figure.calls}</td>"
            f"<td>{format_duration(figure.waiting_seconds)}</td><td>{format_duration(figure.talk_seconds)}</td>"
            f'<td class="left">{agents}</td></tr>'
        )
    return (
        '<div class="scroll" role="region" aria-labelledby="table-caption" tabindex="0">\n<table>\n'
        '<caption id="table-caption">Appels par jour</caption>\n'
        '<thead><tr><th scope="col" class="left">Jour</th><th scope="col">Répondus</th><th scope="col">Perdus</th>'
        '<th scope="col">Appels</th><th scope="col">Attente</th><th scope="col">Conversation</th>'
        '<th scope="col" class="left">Qui a répondu</th></tr></thead>\n'
        "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n</div>"
    )


# --- WSGI application ---------------------------------------------------------

MAX_BODY = 4096  # Bytes: our forms are tiny.
MAX_DRAIN = 1 << 20  # Bytes of a larger body still read (and thrown away), so that the 413 page reaches the browser.
CREDENTIAL_CACHE_SECONDS = 3600
CLOCK_SECONDS = 300  # How long the processes trust OVH's clock offset that one of them asked OVH for.
SHARE_SECONDS = 1.5  # How long the pages of a group may reuse one OVH read, if no action came since.
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
COMMON_HEADERS = [
    ("Cache-Control", "no-cache, no-store, must-revalidate"),
    ("Pragma", "no-cache"),
    ("Expires", "0"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),  # Not no-referrer: browsers would then send our own forms with Origin: null.
    (
        "Content-Security-Policy",
        f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'",
    ),
]
STATUS_TEXTS = {
    200: "OK", 303: "See Other", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large", 429: "Too Many Requests",
    500: "Internal Server Error", 503: "Service Unavailable",
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


def method_not_allowed(request, allow):
    """The French 405 page, with the methods the address answers."""
    text = "Cette adresse ne répond pas à cette méthode."
    response = Response.page(render_message("Méthode non permise", text, request.base), 405)
    response.headers.append(("Allow", allow))
    return response


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
        self.https = environ.get("wsgi.url_scheme") == "https" or environ.get("HTTPS", "").lower() in ("on", "1")
        self.body = b""

    def origin(self):
        """This page's origin, as a browser writes it in an Origin header: https://host, without a default port."""
        scheme = "https" if self.https else "http"
        environ = self.environ
        host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
        return f"{scheme}://{host.lower().removesuffix(':443' if self.https else ':80')}"

    def from_elsewhere(self):
        """True when the browser says the request comes from another site: by Sec-Fetch-Site, or else by Origin.

        A sibling subdomain is "same-site", not "same-origin": refused too. Browsers without
        Sec-Fetch-Site (older Safari) send Origin; a web page can set neither.
        """
        site = self.environ.get("HTTP_SEC_FETCH_SITE")
        if site is not None:
            return site != "same-origin"
        origin = self.environ.get("HTTP_ORIGIN")
        return origin is not None and origin != self.origin()

    def cookie(self, name):
        """The value of a cookie, or ""."""
        for part in self.environ.get("HTTP_COOKIE", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return unquote(value)
        return ""

    def read_body(self):
        """Read the whole body before any answer (under CGI, Apache drops an answer sent before it).

        Return None, or the status of a body refused: 413 when larger than MAX_BODY (read all
        the same, up to MAX_DRAIN), 400 when shorter than announced.
        """
        length = self.environ.get("CONTENT_LENGTH", "").strip()
        if not (length.isascii() and length.isdigit()):
            length = "0"  # Absent, empty, negative or not a number: no body.
        length = int(length) if len(length.lstrip("0")) <= 9 else MAX_DRAIN + 1
        if length > MAX_DRAIN:
            return 413
        try:
            body = self.environ["wsgi.input"].read(length) if length > 0 else b""
        except OSError as error:  # The client went away, or sent less than it said and waits (--serve's timeout).
            log.warning("cannot read the body of %s %s from %s: %s", self.method, self.path, self.client, error)
            return 400
        if len(body) < length:
            return 400
        if length > MAX_BODY:
            return 413
        self.body = body
        return None

    def form(self):
        """The fields of the posted form, first value of each."""
        fields = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {key: values[0] for key, values in fields.items()}


class SharedRead:
    """One OVH read of a group's line, for the pages that arrive while it runs or soon after."""

    def __init__(self, stamp):
        self.stamp = stamp  # The group's stamp when the read began.
        self.started = time.monotonic()
        self.result = Future()

    def run(self, read):
        """Do the read; the pages waiting for it get its result or its exception."""
        try:
            self.result.set_result(read())
        except BaseException as error:
            self.result.set_exception(error)

    def reusable(self, stamp, seconds):
        """Whether a page may use this read: no action since it began, and it still runs or succeeded lately."""
        if stamp is None or stamp != self.stamp:
            return False
        if not self.result.done():
            return True
        return self.result.exception() is None and time.monotonic() - self.started <= seconds


def stamp_path(settings, group):
    """The file whose content an action on the group changes, seen by every process of the page."""
    return settings.data_dir / "last-action" / group.slug


def read_stamp(settings, group):
    """The group's stamp: "" before any action, None when it cannot be read (then no read is shared)."""
    try:
        return stamp_path(settings, group).read_text(encoding="ascii")
    except FileNotFoundError:
        return ""
    except OSError as error:
        log.error("cannot read %s: %s", stamp_path(settings, group), error)
        return None


def change_stamp(settings, group):
    """Give the group a new stamp, so that no process reuses a read that began before."""
    path = stamp_path(settings, group)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, os.urandom(8).hex(), 0o640)
    except OSError as error:
        log.error("cannot write %s: %s; other processes may show the state before the action", path, error)


# What the page's processes (FastCGI or CGI) share through data/shared/: each group's latest read
# (<group>.json, and <group>.lock, held by the process reading OVH for the others), OVH's clock
# offset (clock.json) and when the key expires (credential.json).


def own_like_data(settings, target, mode):
    """Give a file or folder made in data/ a fixed mode, whatever the umask, and data/'s owner when root made it."""
    os.chmod(target, mode)
    if os.geteuid() == 0:
        info = settings.data_dir.stat()
        os.chown(target, info.st_uid, info.st_gid)


def shared_folder(settings):
    """data/shared/, made if needed."""
    folder = settings.data_dir / "shared"
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        own_like_data(settings, folder, 0o750)
    return folder


def read_shared(settings, name):
    """A record of data/shared/, or {} when there is none (or it cannot be read)."""
    path = settings.data_dir / "shared" / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        log.error("cannot read %s: %s", path, error)
        return {}


def write_shared(settings, name, record):
    """Write a record of data/shared/ for every process of the page, whole or not at all."""
    try:
        folder = shared_folder(settings)
        replace_file(folder / name, json.dumps(record), 0o640, lambda draft: own_like_data(settings, draft, 0o640))
    except OSError as error:
        log.error("cannot write %s in %s: %s", name, settings.data_dir / "shared", error)


@contextmanager
def read_lock(settings, group):
    """Let one process at a time read the group from OVH for the others; after LOCK_TIMEOUT, go on without."""
    try:
        path = shared_folder(settings) / f"{group.slug}.lock"
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o640)
            own_like_data(settings, descriptor, 0o640)
        except FileExistsError:
            descriptor = os.open(path, os.O_RDWR)
    except OSError as error:
        log.error("cannot open the lock of %s's shared read: %s", group.slug, error)
        yield
        return
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while time.monotonic() < deadline:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.005)  # Waiting pages take the read as soon as it is written.
        yield
    finally:
        os.close(descriptor)  # Releases the lock.


class LazyClient:
    """The ovh client, made on first use: a CGI page that shows a shared read never imports it."""

    def __init__(self, make):
        self._make = make

    def __getattr__(self, name):
        return getattr(self._make(), name)


class App:
    """The WSGI application: reads lines.ini, routes each request to a page or an action."""

    def __init__(self, lines_ini=None, ovh_conf=None, share_seconds=SHARE_SECONDS):
        self.lines_ini = Path(lines_ini or LINES_INI)
        self.ovh_conf = ovh_conf
        self.share_seconds = share_seconds
        self._settings = (None, None)
        self._client = (None, None)
        self._credential = (0.0, None)  # When the expiration was read (time.time()), and it.
        self._codes = (None, {})
        self._key = (None, None)
        self._memories = {}  # By group: what its line remembers between requests (queue id, SIP line).
        self._reads = {}  # By group: its latest SharedRead.
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            response = self.route(request)
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.path)
            text = f"Une erreur inattendue s'est produite. Réessayez ; si cela dure, prévenez {self.contact()}."
            response = Response.page(render_message("Erreur", text, request.base), 500)
        headers = [("Content-Type", response.content_type), ("Content-Length", str(len(response.body)))]
        headers += COMMON_HEADERS + response.headers
        if request.https:
            headers.append(("Strict-Transport-Security", "max-age=31536000"))
        start_response(f"{response.status} {STATUS_TEXTS[response.status]}", headers)
        return [b"" if request.method == "HEAD" else response.body]

    # Configuration and OVH client, kept between requests in a persistent process.

    def contact(self):
        """Whom a page of errors names: the contact of the last lines.ini read, DEFAULT_CONTACT before any."""
        settings = self._settings[1]
        return settings.contact if settings else DEFAULT_CONTACT

    def settings(self):
        """lines.ini, read again whenever the file changes; if it is broken, this process's last good one."""
        mtime = self.lines_ini.stat().st_mtime if self.lines_ini.exists() else None
        with self._lock:
            if self._settings[0] != mtime or self._settings[1] is None:
                last_good = self._settings[1]
                try:
                    settings = load_settings(self.lines_ini)
                except ConfigError as error:
                    if last_good is None:
                        raise
                    self._settings = (mtime, last_good)
                    keep_last_good(last_good, error)
                    return last_good
                for section, error in settings.broken.items():
                    log.error("configuration error, group [%s] not served: %s", section, error)
                self._settings = (mtime, settings)
                self._memories, self._reads = {}, {}
            return self._settings[1]

    def client(self, settings):
        """The ovh client for ovh.conf, made again whenever the file changes."""
        path = Path(self.ovh_conf or settings.ovh_conf)
        try:
            info = path.stat()
            key = (path, info.st_mtime_ns, info.st_ctime_ns)  # ctime: new rights are seen at once.
        except OSError as error:
            raise ConfigError(f"{path} : lecture impossible ({os_error_text(error)})") from None
        with self._lock:
            if self._client[0] != key:
                conf = read_ovh_conf(path)
                client = connect_ovh(**conf)
                self.learn_clock(settings, client, conf["endpoint"])
                if self._client[0] is not None:  # Another ovh.conf: forget what the former one showed.
                    self._memories, self._reads = {}, {}
                    self._credential = (0.0, None)
                self._client = (key, client)
            return self._client[1]

    def learn_clock(self, settings, client, endpoint):
        """Learn OVH's clock once, before requests run in parallel: from data/shared/ if a process asked lately."""
        known = read_shared(settings, "clock.json")
        if known.get("endpoint") == endpoint and 0 <= time.time() - known.get("asked", 0) <= CLOCK_SECONDS:
            client._time_delta = known["offset"]  # What the ovh client would have asked OVH for.
            return
        write_shared(settings, "clock.json", {"endpoint": endpoint, "asked": time.time(), "offset": client.time_delta})

    def access_codes(self, settings):
        """The groups' hashed access codes, read again whenever access-codes.ini changes.

        A group that had a code and has none now (the file lost, moved, cut) is closed: its
        code is None. Only --remove-code opens it. Groups with a code are remembered in data_dir.
        """
        path = settings.access_codes
        key = (path, path.stat().st_mtime_ns if path.exists() else None)
        with self._lock:
            if self._codes[0] != key:
                self._codes = (key, read_access_codes(path))
            codes = dict(self._codes[1])
        known = read_coded_groups(settings)
        if not set(codes) <= known:
            try:
                write_coded_groups(settings, known | set(codes))
            except OSError as error:
                log.error("cannot remember the groups with a code in %s: %s", coded_groups_path(settings), error)
        return {slug: None for slug in known if slug in settings.groups} | codes

    def key(self, settings):
        """The secret key of data_dir, read again when the file changes (deleting it logs everyone out)."""
        path = settings.data_dir / "secret.key"
        with self._lock:
            try:
                info = path.stat()
                identity = (path, info.st_ino, info.st_mtime_ns)
            except FileNotFoundError:
                identity = None
            if identity is None or self._key[0] != identity:
                key = secret_key(settings)
                info = path.stat()
                self._key = ((path, info.st_ino, info.st_mtime_ns), key)
            return self._key[1]

    def line(self, settings, group, moment):
        """The group's line on OVH, with what this process remembers of it (at first, what the latest read saw)."""
        client = LazyClient(lambda: self.client(settings))
        with self._lock:
            memory = self._memories.setdefault(group.slug, {})
            if not memory:
                latest = read_shared(settings, f"{group.slug}.json").get("snapshot", {})
                memory.update((key, latest[key]) for key in ("queue_id", "sip_line") if latest.get(key))
        return LINE_KINDS[group.kind](client, group, moment, memory)

    def shared_read(self, settings, group, read):
        """read() the group's line, or share a read of it that began after the group's last action.

        Pages of a group arriving together wait for one OVH read, and reuse it for share_seconds.
        An action, in this process or another, changes the group's stamp: reads older than it are not shared.
        """
        stamp = read_stamp(settings, group)
        with self._lock:
            shared = self._reads.get(group.slug)
            mine = shared is None or not shared.reusable(stamp, self.share_seconds)
            if mine:
                shared = self._reads[group.slug] = SharedRead(stamp)
        if mine:
            shared.run(lambda: self.read_across(settings, group, stamp, read))
        return shared.result.result()

    def read_across(self, settings, group, stamp, read):
        """read(), or the read another process made since the group's last action (data/shared/<group>.json).

        One process at a time reads: the others wait for it, then take its result; a failure
        only for those who waited for it, as within a process.
        """
        if stamp is None or self.share_seconds <= 0:
            return read()
        arrived = time.time()
        with read_lock(settings, group):
            latest = read_shared(settings, f"{group.slug}.json")
            if latest.get("stamp") == stamp and latest.get("kind") == group.kind:
                if "snapshot" in latest and 0 <= time.time() - latest["began"] <= self.share_seconds:
                    return SNAPSHOT_KINDS[group.kind](**latest["snapshot"])
                if "failure" in latest and latest["ended"] >= arrived:
                    raise OvhFailure(**latest["failure"])
            began = time.time()
            try:
                snap = read()
            except Exception as error:
                failure = as_failure(error)
                record = {"reason": failure.reason, "detail": failure.detail, "explanation": failure.explanation}
                self.share_across(settings, group, stamp, began, failure=record)
                raise
            self.share_across(settings, group, stamp, began, snapshot=asdict(snap))
            return snap

    def share_across(self, settings, group, stamp, began, **result):
        """Write the group's latest read (its snapshot, or its failure) for the other processes."""
        record = {"stamp": stamp, "kind": group.kind, "began": began, "ended": time.time(), **result}
        write_shared(settings, f"{group.slug}.json", record)

    def share(self, settings, group, snap):
        """After an action: the pages that follow show the snapshot it read back, in every process."""
        stamp, began = read_stamp(settings, group), time.time()
        shared = SharedRead(stamp)
        shared.result.set_result(snap)
        with self._lock:
            self._reads[group.slug] = shared
        if stamp is not None and self.share_seconds > 0:
            self.share_across(settings, group, stamp, began, snapshot=asdict(snap))

    @contextmanager
    def changing(self, settings, group):
        """Around an action: afterwards, no process reuses a read of the group that began before its end."""
        try:
            yield
        finally:
            with self._lock:
                self._reads.pop(group.slug, None)
            change_stamp(settings, group)

    def credential_expiration(self, settings, client):
        """When the consumer key expires (None: never), read from OVH at most once an hour by all the processes."""
        fetched, expiration = self._credential
        if 0 <= time.time() - fetched <= CREDENTIAL_CACHE_SECONDS:
            return expiration
        path = Path(self.ovh_conf or settings.ovh_conf)
        try:
            key = hashlib.sha256(path.read_bytes()).hexdigest()[:16]  # A new key is a new ovh.conf.
        except OSError:
            key = None
        known = read_shared(settings, "credential.json")
        if key and known.get("key") == key and 0 <= time.time() - known.get("asked", 0) <= CREDENTIAL_CACHE_SECONDS:
            expiration = parse_ovh_datetime(known["expiration"], ZoneInfo("UTC"))
            self._credential = (known["asked"], expiration)
            return expiration
        try:
            credential = client.get(CURRENT_CREDENTIAL)
        except Exception as error:
            log.warning("cannot read the current credential: %s", error)
            return None
        expiration = parse_ovh_datetime(credential.get("expiration"), ZoneInfo("UTC"))
        self._credential = (time.time(), expiration)
        record = {"key": key, "asked": time.time(), "expiration": credential.get("expiration")}
        write_shared(settings, "credential.json", record)
        return expiration

    # Routing.

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
            return Response.page(render_index(settings, request.base))
        slug = parts[0].lower()
        group = settings.groups.get(slug)
        if group is None and slug in settings.broken and len(parts) <= 2:
            try:
                return self.broken_group(request, settings, slug, settings.broken[slug], codes)
            except OSError as error:
                return self.data_folder_error(request, settings, error)
        if group is None or len(parts) > 2 or (len(parts) == 2 and parts[1] not in actions_of(group, codes)):
            return self.not_found(request)
        try:
            return self.group_route(request, settings, group, parts[1] if len(parts) == 2 else "", codes)
        except OSError as error:
            return self.data_folder_error(request, settings, error)

    def data_folder_error(self, request, settings, error):
        """The page that says the data folder cannot be used."""
        log.error("cannot use the data folder %s: %s", settings.data_dir, error)
        text = f"La page ne peut pas écrire dans son dossier de données. Prévenez {settings.contact}."
        return self.message(request, "Erreur de configuration", text, 500)

    def group_route(self, request, settings, group, action, codes):
        """Dispatch a group's page, statistics and actions, behind its access code and the form token."""
        if group.slug in codes and codes[group.slug] is None:
            return self.closed(request, settings, group)
        visit = Visit(request, settings, group, self.key(settings), codes.get(group.slug))
        if not visit.allowed() and action != "access":
            return self.access_page(visit)
        if not action:
            return self.group_page(visit)
        if action == "stats":
            return visit.respond(stats_page(request, settings, group))
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

    def message(self, request, title, text, status):
        """A page with a single message."""
        return Response.page(render_message(title, text, request.base), status)

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

    def not_found(self, request):
        """The French 404 page, with a link to the list of groups."""
        text = "Cette page n'existe pas. Vérifiez l'adresse, ou choisissez votre groupe dans la liste."
        return self.message(request, "Page introuvable", text, 404)

    # Pages and actions.

    def group_page(self, visit, typed=None, errors=None, status=200, messages=()):
        """Read the line's state from OVH and show it with the last actions and the forms."""
        request, settings, group = visit.request, visit.settings, visit.group
        moment = now(settings.timezone)
        messages = list(messages)
        flash = read_flash(visit.read_cookie("flash"))
        state = failure = None
        try:
            line = self.line(settings, group, moment)
            snap, expiration = parallel(
                lambda: self.shared_read(settings, group, line.snapshot),
                lambda: self.credential_expiration(settings, line.client),
            )
            state = line.state(snap)
            ends = todays_ends(settings, group, moment)
            for volunteer in state.volunteers:
                planned = ends.get(volunteer.number, volunteer.until)
                # A queue's line closes at its period's end, even if an end stored for a failed action is later.
                volunteer.until = min(planned, volunteer.until) if volunteer.until else planned
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
        body = render_group(
            settings, group, request.base, moment, state, failure, messages, visit.token(),
            typed, errors, recent_actions(settings, group),
        )  # fmt: skip
        response = Response.page(body, status)
        if flash:
            response.headers.append(("Set-Cookie", visit.cookie("flash", "", max_age=0)))
        return visit.respond(response)

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
        messages = [message_box("warning", escape(text))]
        if not visit.allowed():
            return self.access_page(visit, status=403, messages=messages)
        return self.group_page(visit, typed_in(form), status=403, messages=messages)

    def enter(self, visit, form):
        """Check a group's access code; let the browser in for access_hours, or slow and lock out guessing."""
        request, settings, group = visit.request, visit.settings, visit.group
        clock = time.time()
        wrong = WrongCodes(settings, group, request.client)
        wait = wrong.claim(clock)
        if wait:
            minutes = -(-wait // 60)
            plural = "s" if minutes > 1 else ""
            where = "pour ce groupe" if wrong.whole_group else "depuis cet appareil"
            error = f"Trop de codes erronés {where}. Réessayez dans {minutes} minute{plural}."
            response = self.access_page(visit, error, status=429)
            response.headers.append(("Retry-After", str(wait)))
            return response
        if not check_code(form.get("code", "").strip(), visit.stored_code):  # Pasted codes often carry spaces.
            log_activity(settings, group, "access", "", request.client, "code erroné")
            time.sleep(WRONG_CODE_DELAY)
            return self.access_page(visit, "Ce code n'est pas le bon. Vérifiez-le auprès de la coordination.")
        wrong.clear(clock)
        log_activity(settings, group, "access", "", request.client, "ok")
        lifetime = settings.access_hours * 3600
        value = access_cookie_value(visit.key, group, visit.stored_code, int(clock) + lifetime)
        response = Response.redirect(visit.group_url)
        response.headers.append(("Set-Cookie", visit.cookie("access", value, max_age=lifetime)))
        return visit.respond(response)

    def act(self, visit, action, form):
        """Start, change, join, remove or finish a permanence, one action per group at a time; then redirect."""
        request, settings, group = visit.request, visit.settings, visit.group
        number = name = end = ""
        typed = typed_in(form)
        moment = now(settings.timezone)
        if action == "start":
            errors = {}
            try:
                end = chosen_end(form.get("ends"), group, moment)
            except ValueError as error:
                errors["ends"] = str(error)
            try:
                number = normalize_phone(typed["number"])
            except PhoneError as error:
                errors["number"] = str(error)
            if number in {g.number for g in settings.groups.values()}:
                errors["number"] = OWN_LINE
            try:
                name = clean_first_name(typed["name"])
            except FirstNameError as error:
                errors["name"] = str(error)
            if errors:
                return self.group_page(visit, typed, errors, status=400)
        elif action == "remove":
            mark = form.get("volunteer", "")
            if not mark:
                text = "Cette demande est incomplète. Revenez à la page du groupe et réessayez."
                return self.message(request, "Demande incomplète", text, 400)
        with group_lock(settings, group) as lock:
            if lock is None:
                text = "Quelqu'un d'autre modifie cette permanence en ce moment : rien n'a été fait. Réessayez."
                return self.group_page(visit, typed, status=503, messages=[message_box("warning", escape(text))])
            deadline = DEADLINE.set(time.monotonic() + ACTION_SECONDS)
            try:
                line = self.line(settings, group, moment)
                before = todays_ends(settings, group, moment)
                ends = {**before, number: end} if action == "start" else before
                write_ends(settings, group, moment, ends)  # First: a write OVH applies but never confirms still ends.
                with self.changing(settings, group):
                    if action == "start":
                        outcome = line.start(number, name, ends)
                    elif action == "remove":
                        outcome = line.remove(lambda n: same_text(mark, visit.mark(n)), ends)
                    else:
                        outcome = line.finish()
                self.share(settings, group, outcome.snap)
            except Refusal as refusal:
                write_ends(settings, group, moment, before)  # Refused: the number typed has no end to keep.
                return self.group_page(visit, typed, {"number": str(refusal)}, status=409)
            except Exception as error:
                failure = as_failure(error)
                attempted = failure.action or action
                log.error("%s on %s failed: %s", attempted, group.slug, failure)
                result = f"erreur {failure.reason}: {failure.detail}"
                log_activity(settings, group, attempted, number, request.client, result)
                explanation, _ = describe_failure(failure, settings.contact)
                mail = (
                    f"{group.name} : échec ({attempted}, {format_phone(number) or 'sans numéro'})",
                    f"{explanation}\n\nDétail : {failure.detail}\nAdresse du bénévole : {request.client}",
                )
                flash = f"error-{failure.reason}:{number}:{failure.explanation or ''}"
            else:
                done, number = outcome.action, outcome.number
                if done == "on-duty":  # Say what changed: the name, the planned end, both or nothing.
                    stored = before.get(number) != end  # A retry after a failure has it stored already.
                    changed = [c for c in ("name", "ends") if c in outcome.changed or c == "ends" and stored]
                    done = "-".join(changed) or "same"
                default = outcome.state.until or END_OF_DAY
                write_ends(settings, group, moment, {n: ends.get(n, default) for n in outcome.state.numbers})
                planned = f"jusqu'à {format_end(end)}" if end else ""
                log_activity(settings, group, done, number, request.client, f"ok, {planned}" if planned else "ok")
                subject = f"{group.name} : {ACTION_SUBJECTS[done]} {format_phone(number)}".strip()
                body = f"Fin prévue : {format_end(end)}" if end else ""
                mail = (f"{subject}, {planned}" if planned else subject, body)
                flash = f"{done}:{number}"
            finally:
                DEADLINE.reset(deadline)
        notify_it(settings, *mail)  # Once the lock is released: sendmail may take seconds.
        response = Response.redirect(visit.group_url)
        response.headers.append(("Set-Cookie", visit.cookie("flash", flash, max_age=60)))
        return visit.respond(response)


class Visit:
    """A request to a group's page or action, with what access and forms need: the key, the code, the cookies."""

    def __init__(self, request, settings, group, key, stored_code):
        self.request = request
        self.settings = settings
        self.group = group
        self.key = key
        self.stored_code = stored_code
        self.group_url = f"{request.base}/{group.slug}"
        self.new_cookies = []
        self.csrf = self.read_cookie("csrf")
        if not re.fullmatch(r"[A-Za-z0-9_-]{24}", self.csrf):
            self.csrf = secrets.token_urlsafe(18)
            self.new_cookies.append(self.cookie("csrf", self.csrf, path=f"{request.base}/"))

    def cookie_name(self, name):
        """A cookie's name; under HTTPS, with the __Host- prefix (no other host can set it), and the group's slug.

        A __Host- cookie has the path /: the group's slug, but in csrf (one for the site), keeps groups apart.
        """
        if not self.request.https:
            return name
        return "__Host-csrf" if name == "csrf" else f"__Host-{name}-{self.group.slug}"

    def read_cookie(self, name):
        """The value of one of our cookies, or ""."""
        return self.request.cookie(self.cookie_name(name))

    def cookie(self, name, value, path=None, max_age=None):
        """A Set-Cookie value: HttpOnly, SameSite=Lax, the group's path by default; __Host- and Secure in HTTPS.

        Lax, not Strict: a link to the page opened from a messaging app (another site) keeps the
        volunteer in. Cross-site forms are refused all the same (from_elsewhere, form_token).
        """
        path = "/" if self.request.https else path or self.group_url
        attributes = [f"{self.cookie_name(name)}={quote(value)}", f"Path={path}"]
        if max_age is not None:
            attributes.append(f"Max-Age={max_age}")
        attributes += ["HttpOnly", "SameSite=Lax"] + (["Secure"] if self.request.https else [])
        return "; ".join(attributes)

    def token(self):
        """The form token for this browser: bound to its access cookie too, once it is let in a group with a code."""
        access = self.read_cookie("access") if self.stored_code and self.allowed() else ""
        return form_token(self.key, self.csrf, access)

    def token_matches(self, form):
        """True when a posted form carries the token of the browser's csrf cookie."""
        return not self.new_cookies and same_text(form.get("csrf", ""), self.token())

    def allowed(self):
        """True when the group has no access code, or the browser holds a valid access cookie."""
        if self.stored_code is None:
            return True
        return has_access(self.key, self.group, self.stored_code, self.read_cookie("access"), int(time.time()))

    def mark(self, number):
        """The fingerprint of a volunteer's number that their "Retirer" button sends: only the page can make it."""
        return sign(self.key, f"volunteer:{self.group.slug}:{number}")

    def respond(self, response):
        """Add the cookies this visit made (a new csrf cookie) to a response."""
        response.headers += [("Set-Cookie", cookie) for cookie in self.new_cookies]
        return response


def typed_in(form):
    """What a volunteer typed in the form, to show it again: number, name, and the end if the form had one."""
    typed = {"number": form.get("number", ""), "name": form.get("name", "")}
    if "ends" in form:
        typed["ends"] = form["ends"]
    return typed


def actions_of(group, codes):
    """What may follow a group's address: "remove" (several volunteers), "stats" (a queue), "access" (a code)."""
    return (
        ("start", "finish")
        + (("remove",) if group.max_volunteers > 1 else ())
        + (("stats",) if group.kind == "queue" else ())
        + (("access",) if group.slug in codes else ())
    )


ACTION_SUBJECTS = {
    "start": "permanence commencée sur le",
    "change": "permanence passée sur le",
    "finish": "permanence terminée",
    "nothing": "« Terminer » sans permanence en cours",
    "same": "numéro déjà en permanence :",
    "add": "numéro ajouté à la permanence :",
    "resume": "permanence reprise par le",
    "remove": "numéro retiré de la permanence :",
    "gone": "« Retirer » un numéro qui ne répondait plus",
    "ends": "fin prévue changée pour le",
    "name": "prénom changé pour le",
    "name-ends": "prénom et fin prévue changés pour le",
}


def read_flash(value):
    """Parse a flash cookie into (code, number, explanation), or None when it is not one of ours.

    The cookie is the browser's to change: its explanation is kept only if it is one of the page's own.
    """
    code, _, rest = value.partition(":")
    number, _, explanation = rest.partition(":")
    known = code in FLASH_TEXTS or code.removeprefix("error-") in OVH_FAILURES
    if not known or not re.fullmatch(r"(00\d{6,15})?", number) or (explanation and not is_explanation(explanation)):
        return None
    return code, number, explanation


def flash_message(flash, contact, state_shown, interrupted=False):
    """The box that tells the volunteer how their action went; after a failure, the state shown is what OVH has.

    `interrupted`: the state shown is a permanence a failed change left closed; pressing again resumes it.
    """
    code, number, explanation = flash
    if code in FLASH_TEXTS:
        # Whole for the volunteer who just set their number; masked when someone removed another's.
        phone = phone_span(mask_phone(number) if code == "remove" else format_phone(number))
        return message_box("ok", Template(escape(FLASH_TEXTS[code])).substitute(number=phone))
    failure = OvhFailure(code.removeprefix("error-"), "", explanation)
    explanation, advice = describe_failure(failure, contact)
    if interrupted and OVH_FAILURES[failure.reason][1] == RETRY_LATER:
        advice = Template(RESUME).safe_substitute(contact=contact)
    shown = " L'état ci-dessous est celui qu'OVH a maintenant." if state_shown else ""
    text = f"{escape(explanation)}{escape(shown)} {escape(advice)}"
    return message_box("error", f"<strong>La demande n'a pas abouti, ou en partie seulement.</strong> {text}")


# --- OVH key rules: what the consumer key must allow -------------------------

CURRENT_CREDENTIAL = "/auth/currentCredential"


def rule(method, path):
    """One OVH access rule."""
    return {"method": method, "path": path}


def group_rules(group, sip_line=None):
    """The access rules one group of lines.ini needs: what index.py (page and --check) and stats.py call.

    Ids that OVH makes (agents, time conditions, calls) or may remake (the
    queue) are covered by a trailing `*`, one method at a time, inside the
    group's own service. A redirect group's SIP line is named exactly when
    known (`sip_line`); otherwise its billing account's lines are covered by
    `line/*` for GET and PUT (the key cannot read where the number goes
    before it exists: run the script again with the new key to narrow it).
    """
    account = f"/telephony/{group.billing_account}"
    if group.kind == "redirect":
        rules = [rule("GET", f"{account}/redirect/{group.number}")]
        if sip_line:
            line = f"{account}/line/{sip_line}"
            return rules + [rule("GET", line), rule("GET", f"{line}/options"), rule("PUT", f"{line}/options")]
        return rules + [rule("GET", f"{account}/line/*"), rule("PUT", f"{account}/line/*")]
    service = f"{account}/easyHunting/{group.number}"
    hunting, conditions = f"{service}/hunting", f"{service}/timeConditions/conditions"
    return [
        rule("GET", service),  # index.py --check
        rule("GET", f"{hunting}/queue"),  # The queue's id.
        rule("GET", f"{hunting}/queue/*"),  # Its agents, liveCalls, liveCalls/{id}, liveStatistics (stats.py).
        rule("GET", f"{hunting}/agent"),
        rule("GET", f"{hunting}/agent/*"),
        rule("POST", f"{hunting}/agent"),  # A new volunteer.
        rule("POST", f"{hunting}/agent/*"),  # agent/{id}/queue: attach them to the queue (the only POST there).
        rule("PUT", f"{hunting}/agent/*"),  # Status, ring time, description; a spare agent's new number.
        rule("GET", f"{service}/timeConditions"),  # Their settings: enabled, where calls go outside.
        rule("GET", conditions),
        rule("GET", f"{conditions}/*"),
        rule("POST", conditions),  # Open today's period.
        rule("PUT", f"{conditions}/*"),  # Move its end (the volunteers' planned end).
        rule("DELETE", f"{conditions}/*"),  # Close it.
    ]


def required_rules(settings, sip_lines=None):
    """The access rules cimade-ovh needs for every group of `settings`, without duplicates.

    `sip_lines` maps a redirect group's slug to its SIP line, when known (see resolve_sip_lines).
    """
    sip_lines = sip_lines or {}
    rules = [rule("GET", CURRENT_CREDENTIAL)]  # The page reads the key's expiration.
    for group in settings.groups.values():
        rules += group_rules(group, sip_lines.get(group.slug))
    unique = []
    for item in rules:
        if item not in unique:
            unique.append(item)
    return unique


def resolve_sip_lines(client, settings):
    """The SIP line of each redirect group that `client` can read; the others are left out."""
    sip_lines = {}
    for group in settings.groups.values():
        if group.kind != "redirect":
            continue
        try:
            redirect = client.get(f"/telephony/{group.billing_account}/redirect/{group.number}")
        except Exception:  # No key yet, no right, unknown number: fall back to line/*.
            continue
        if redirect.get("featureType") == "redirect" and redirect.get("destination"):
            sip_lines[group.slug] = redirect["destination"]
    return sip_lines


def rule_matches(pattern, path):
    """Whether a granted rule's path covers `path`, as OVH does: `*` matches any rest.

    `path` may itself end with `*` (a required rule): it is then covered only
    by a pattern that covers everything it could match.
    """
    regex = "".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", pattern))
    return re.fullmatch(regex, path) is not None


def missing_rules(granted, required):
    """The required rules that no granted rule covers."""
    return [
        need
        for need in required
        if not any(g.get("method") == need["method"] and rule_matches(g.get("path", ""), need["path"]) for g in granted)
    ]


def check_coverage(client, settings, verbose=True):
    """Print, in French, whether the key of `client` covers every group; return True when it does.

    With verbose=False (index.py --check), only the problems are printed.
    """
    import ovh.exceptions

    try:
        credential = client.get(CURRENT_CREDENTIAL)
    except ovh.exceptions.NotGrantedCall:
        print("ERREUR : la clé OVH ne peut pas lire ses propres droits (GET /auth/currentCredential) ; "
              f"créez-en une nouvelle : {script_command('create_consumer_key.py')}")  # fmt: skip
        return False
    except Exception as error:
        print(f"ERREUR : impossible de lire les droits de la clé OVH. {explain_for_it(error)}")
        return False
    granted = credential.get("rules") or []
    sip_lines = resolve_sip_lines(client, settings)
    uncovered = []
    for group in settings.groups.values():
        missing = missing_rules(granted, group_rules(group, sip_lines.get(group.slug)))
        if missing:
            uncovered.append(group.slug)
            print(f"ERREUR [{group.slug}] la clé OVH ne couvre pas ce groupe ; il lui manque :")
            for need in missing:
                print(f"    {need['method']:6} {need['path']}")
        elif verbose:
            print(f"ok     [{group.slug}] la clé OVH couvre ce groupe")
    broad = [g for g in granted if g.get("path") in ("/", "/*")]
    if broad:
        print("Attention : la clé OVH a des droits sur tout le compte (" + ", ".join(
            f"{g['method']} {g['path']}" for g in broad) + ") ; créez-en une plus restreinte.")  # fmt: skip
    if uncovered:
        print(
            f"La clé OVH ne couvre pas : {', '.join(uncovered)}. L'informatique doit créer une nouvelle clé : "
            + script_command("create_consumer_key.py")
        )
        return False
    return True


# --- Servers and command line -------------------------------------------------

application = App()


def is_fastcgi():
    """True when a FastCGI server started us: our standard input is then a listening socket."""
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


SERVE_TIMEOUT = 10  # Seconds --serve waits for a client's next bytes.


def serve(app, host, port):
    """Serve the page on http://host:port/ until interrupted; return the exit status."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Handler(WSGIRequestHandler):
        timeout = SERVE_TIMEOUT  # A client that sends less than it announced does not keep a thread forever.

    try:
        server = make_server(host, port, app, server_class=ThreadingWSGIServer, handler_class=Handler)
    except OSError as error:
        taken = error.errno == errno.EADDRINUSE
        fix = "choisissez un autre --port" if taken else "vérifiez --host (par exemple 127.0.0.1)"
        print(f"ERREUR : impossible d'écouter sur {host}:{port} ({os_error_text(error)}) ; {fix}.")
        return 1
    with server:
        print(f"cimade-ovh : ouvrez http://{host}:{server.server_port}/ (Ctrl-C pour arrêter)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


def demo(host, port, state=None):
    """Serve the page on the simulated account of tests/fake_ovh.py (or the copy `state`), with simulated statistics."""
    import signal
    import tempfile

    sys.path.insert(0, str(HERE / "tests"))
    from fake_ovh import FakeOVH

    account = None
    if state:
        try:
            account = json.loads(Path(state).read_text(encoding="utf-8"))
            problem = snapshot_problem(account)
        except OSError as error:
            problem = os_error_text(error)
        except ValueError:
            problem = "ce n'est pas du JSON en UTF-8"
        if problem:
            print(f"ERREUR : {state} : ce n'est pas une copie lisible du compte ({problem}) ; "
                  "refaites-la avec index.py --check --snapshot FICHIER.")  # fmt: skip
            return 1
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(0))  # Stop as Ctrl-C does: the folder is removed.
    fake = FakeOVH(account).start()
    try:
        with tempfile.TemporaryDirectory(prefix="cimade-ovh-demo-") as folder:
            lines_ini = write_demo_folder(Path(folder), fake)
            print(f"Démo : compte OVH simulé sur {fake.url} (rien n'est envoyé à OVH)", flush=True)
            print(f"Démo : journal et statistiques simulées dans {folder}", flush=True)
            return serve(App(lines_ini=lines_ini), host, port)
    finally:
        fake.stop()


SNAPSHOT_SERVICES = {  # What the simulator reads of each service in a copy of the account.
    "line": ("line", "options"),
    "redirect": ("destination",),
    "easyHunting": (
        "service", "hunting", "queues", "agents", "agentQueues", "timeConditions", "conditions", "liveCalls",
    ),
}  # fmt: skip


def snapshot_problem(state):
    """What keeps `state` from being a copy of the account as --check --snapshot writes it, in French; else None."""

    def lacks(value, keys, where):
        if not isinstance(value, dict):
            return f"{where} n'est pas un objet JSON"
        missing = [key for key in keys if key not in value]
        return f"{where} n'a pas de « {missing[0]} »" if missing else None

    problem = lacks(state, ("lastIds", "billingAccounts"), "le fichier") or lacks(
        state["billingAccounts"], (), "« billingAccounts »"
    )
    if problem:
        return problem
    for name, account in state["billingAccounts"].items():
        problem = lacks(account, ("info", *SNAPSHOT_SERVICES), f"le compte {name}")
        if problem:
            return problem
        for kind, keys in SNAPSHOT_SERVICES.items():
            services = account[kind]
            problem = lacks(services, (), f"« {kind} » du compte {name}") or next(
                filter(None, (lacks(s, keys, f"le service {n} du compte {name}") for n, s in services.items())), None
            )
            if problem:
                return problem
    return None


def write_demo_folder(folder, fake):
    """Copy lines.ini into `folder` with an ovh.conf on the simulator and a data folder there; return the copy.

    The queue groups get a month of simulated records: the checkout's data/
    keeps only real ones.
    """
    from fake_ovh import statistics_history

    parser = read_ini(LINES_INI)
    parser[SETTINGS_SECTION].update(ovh_conf="ovh.conf", data_dir="data", activity_log="data/activity.log")
    lines_ini = folder / "lines.ini"
    with open(lines_ini, "w", encoding="utf-8") as file:
        parser.write(file)
    fake.write_ovh_conf(folder / "ovh.conf")
    settings = load_settings(lines_ini)
    for group in settings.groups.values():
        if group.kind == "queue":
            for record in statistics_history(now(settings.timezone)):
                append_record(record_path(settings, group, datetime.fromisoformat(record["time"])), record)
    return lines_ini


def script_command(script, *args):
    """The command that runs one of the project's scripts from any folder, for the messages that suggest one."""
    return " ".join(["python3", shlex.quote(str(HERE / script)), *args])


# What IT reads on the command line for each cause of ovh_cause; a cause not named here is OVH's own error.
IT_EXPLANATIONS = {
    "region": "endpoint = {inner} dans ovh.conf n'est pas un nom connu du client ovh : mettez ovh-eu (OVH Europe), "
    "ou l'adresse http://… d'un simulateur, puis relancez.",
    "timeout": "OVH n'a pas répondu à temps ({inner_kind}) : réessayez dans quelques minutes.",
    "unreachable": "Impossible de joindre OVH depuis ce serveur ({inner_kind}) : vérifiez sa connexion à Internet et "
    "l'endpoint de ovh.conf (pour le simulateur : qu'il tourne), puis relancez.",
    "key": "OVH ne connaît pas l'application_key de ovh.conf : recopiez celle de l'application "
    "(voir « Créer les clés OVH » dans le README), puis relancez.",
    "signature": "OVH refuse la signature des demandes : l'application_secret de ovh.conf est faux ; recopiez celui "
    "de l'application, puis relancez.",
    "credential": "La clé d'accès (consumer_key de ovh.conf) n'est plus valable (expirée, révoquée ou jamais "
    "validée) : {new_key}",
    "not_granted": "La clé d'accès n'a pas le droit de faire cette demande ({error}) : {new_key}",
    "not_found": "OVH ne connaît pas la ligne de ce groupe ({error}) : vérifiez billing_account et number dans "
    "lines.ini.",
    # Not OVH's answer: a file that cannot be written, or a bug.
    "other": "{kind}: {error} ; vérifiez les droits des fichiers : {check}",
}
OVH_OWN_ERROR = "OVH a rencontré une erreur de son côté ({kind}: {error}) : réessayez dans quelques minutes."


def explain_for_it(error):
    """One French sentence for IT on the command line: why OVH did not do what was asked, and what to do next."""
    if isinstance(error, ConfigError):
        return f"{error} (voir « Créer les clés OVH » dans le README)."
    if isinstance(error, OvhFailure):
        explanation, _ = describe_failure(error, "l'informatique")
        return f"{explanation} ({error.detail.strip().splitlines()[-1]})"
    if isinstance(error, OSError) and error.filename:  # A file of the page that cannot be read or written.
        check = script_command("index.py", "--check")
        return f"{error.filename} : {os_error_text(error)} ; vérifiez ce chemin et les droits des fichiers : {check}"
    return IT_EXPLANATIONS.get(ovh_cause(error), OVH_OWN_ERROR).format(
        error=error, kind=type(error).__name__, inner=wrapped(error), inner_kind=type(wrapped(error)).__name__,
        new_key=f"créez-en une : {script_command('create_consumer_key.py')}",
        check=script_command("index.py", "--check"),
    )


KIND_WORDS = {"queue": ("easyHunting", "une file d'appels"), "redirect": ("redirect", "une redirection")}


def kind_hint(client, group):
    """When OVH knows the group's number as the other kind of line, the sentence that says so; else None."""
    import ovh.exceptions

    other = "redirect" if group.kind == "queue" else "queue"
    service, words = KIND_WORDS[other]
    try:
        client.get(f"/telephony/{group.billing_account}/{service}/{group.number}")
    except ovh.exceptions.NotGrantedCall:
        return (
            f"OVH ne connaît pas {KIND_WORDS[group.kind][1]} à ce numéro dans {group.billing_account}, et la clé "
            f"ne peut pas voir si c'est {words} : si oui, kind = {other} ? Sinon, vérifiez billing_account et number."
        )
    except Exception:
        return None
    return f"ce numéro est {words} chez OVH : kind = {other} ?"


def check_group(client, group, moment):
    """Check that OVH has the line a group needs: (a French description of it, the list of problems found)."""
    import ovh.exceptions

    try:
        if group.kind == "redirect":
            line = RedirectLine(client, group, moment)
            client.get(f"/telephony/{group.billing_account}/line/{line.sip_line()}")
            line.read_state()
            return f"renvoi vers la ligne SIP {format_phone(line.sip_line())}", []
        client.get(f"/telephony/{group.billing_account}/easyHunting/{group.number}")
        line = QueueLine(client, group, moment)
        problems = [CONDITIONS_OFF_STEP] if line.read_state().conditions_off else []
        return f"file d'appels n° {line.queue_id()}", problems
    except ovh.exceptions.ResourceNotFoundError as error:
        return "", [kind_hint(client, group) or explain_for_it(error)]
    except Exception as error:
        return "", [explain_for_it(error)]


def web_user(settings):
    """The web server's user (a pwd entry, or None): web_user of lines.ini, else data_dir's owner, else www-data."""
    import pwd

    names = [settings.web_user] if settings.web_user else []
    with contextlib.suppress(OSError, KeyError):
        owner = settings.data_dir.stat().st_uid
        if owner != 0:
            names.append(pwd.getpwuid(owner).pw_name)
    for name in names + ["www-data"]:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    return None


def permitted(user, path, bits):
    """Whether `user` may read (4), write (2) or enter (1) `path`, by the modes of the file and its folders."""
    if user.pw_uid == 0:
        return True
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))

    def allows(info, wanted):
        shift = {"u": 6, "g": 3, "o": 0}[whose(user, groups, info)]
        return (info.st_mode >> shift) & wanted == wanted

    try:
        return all(allows(folder.stat(), 1) for folder in path.parents) and allows(path.stat(), bits)
    except OSError:  # Not even this command may look: the web server surely cannot either.
        return False


def whose(user, groups, info):
    """Which of a file's modes (chmod's u, g or o) applies to `user`, a member of `groups`."""
    if info.st_uid == user.pw_uid:
        return "u"
    return "g" if info.st_gid in groups else "o"


def closed_folder(user, path):
    """The first existing folder on the way to `path` that `user` may not enter, or None."""
    return next((f for f in reversed(path.parents) if f.is_dir() and not permitted(user, f, 1)), None)


def entry_fix(user, folder):
    """The command that lets `user` enter `folder`, and no more."""
    try:
        return f"chmod {whose(user, set(os.getgrouplist(user.pw_name, user.pw_gid)), folder.stat())}+x {folder}"
    except OSError:
        return f"chmod o+x {folder}"


def web_user_problems(settings):
    """What the web server's user cannot read or write among the page's files, in French, with the fix."""
    user = web_user(settings)
    if user is None:
        return []
    name, group = user.pw_name, group_name(user.pw_gid)
    data = settings.data_dir
    files = [path for path in (settings.path, Path(settings.ovh_conf), settings.access_codes) if path.exists()]
    closed = sorted({folder for folder in (closed_folder(user, path) for path in [*files, data]) if folder})
    problems = [
        f"le serveur web ({name}) ne peut pas entrer dans le dossier {folder} : {entry_fix(user, folder)}"
        for folder in closed
    ]
    for path in files:
        if not closed_folder(user, path) and not permitted(user, path, 4):
            problems.append(
                f"le serveur web ({name}) ne peut pas lire {path} : chown root:{group} {path} && chmod 640 {path}"
            )
    if closed_folder(user, data):
        return problems
    if not data.is_dir():
        return problems + [f"le dossier {data} n'existe pas : install -d -o {name} -g {group} -m 750 {data}"]
    paths = [data, *sorted(data.rglob("*"))]
    stuck = [p for p in paths if not permitted(user, p, 7 if p.is_dir() else 6)]
    if stuck:
        problems.append(
            f"le serveur web ({name}) ne peut pas écrire dans {data} ({stuck[0]}"
            + (f" et {len(stuck) - 1} autre(s)" if len(stuck) > 1 else "")
            + f") : chown -R {name}:{group} {data}"
        )
    return problems


def share_with_web_server(path, settings):
    """Give a file that a command run as root has just created to the web server's group, mode 640."""
    user = web_user(settings)
    if os.geteuid() == 0 and user is not None and user.pw_uid != 0:
        os.chown(path, 0, user.pw_gid)
        os.chmod(path, 0o640)


def become_web_user(settings):
    """When started as root, go on as the web server's user, so that what we write in data_dir stays the page's.

    Return that user's name, or None when nothing changed.
    """
    user = web_user(settings)
    if os.geteuid() != 0 or user is None or user.pw_uid == 0:
        return None
    os.setgroups(os.getgrouplist(user.pw_name, user.pw_gid))
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    return user.pw_name


def group_name(gid):
    """The name of a group id (the id itself when it has none)."""
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


FICTIONAL_PREFIXES = ("003319900", "003326191", "003335301", "003346571", "003353649", "003363998")  # ARCEP's.


class Fictional:
    """Replaces phone numbers by fictional ones (06 39 98 1x xx), always the same for the same number.

    The groups' public numbers and numbers already fictional are kept.
    """

    def __init__(self, kept):
        self.kept = set(kept)
        self.given = {}

    def __call__(self, value):
        """`value` with every phone number in it (in any dict or list) made fictional."""
        if isinstance(value, dict):
            return {self(k): None if "assword" in k else self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, str) or not re.fullmatch(r"00\d{6,15}", value) or value in self.kept:
            return value
        if value.startswith(FICTIONAL_PREFIXES):
            return value
        return self.given.setdefault(value, f"0033639981{len(self.given):03}")


def snapshot_group(client, group):
    """What OVH has of a group's line, as the simulator's state of its service(s): {kind: {name: seed}}."""
    account = f"/telephony/{group.billing_account}"
    if group.kind == "redirect":
        redirect = client.get(f"{account}/redirect/{group.number}")
        sip_line = redirect["destination"]
        line, options = parallel(
            lambda: client.get(f"{account}/line/{sip_line}"), lambda: client.get(f"{account}/line/{sip_line}/options")
        )
        return {"redirect": {group.number: redirect}, "line": {sip_line: {"line": line, "options": options}}}
    service = f"{account}/easyHunting/{group.number}"
    hunting = f"{service}/hunting"
    seed, queue_ids, agents, conditions, settings = parallel(
        lambda: client.get(service),
        lambda: client.get(f"{hunting}/queue"),
        lambda: get_all(client, f"{hunting}/agent"),
        lambda: get_all(client, f"{service}/timeConditions/conditions"),
        lambda: client.get(f"{service}/timeConditions"),
    )
    queues = parallel(
        *[
            lambda q=q: {
                **client.get(f"{hunting}/queue/{q}"),
                "statistics": client.get(f"{hunting}/queue/{q}/liveStatistics"),
            }
            for q in queue_ids
        ]
    )
    links = parallel(*[lambda a=a: get_all(client, f"{hunting}/agent/{a['agentId']}/queue") for a in agents])
    return {
        "easyHunting": {
            group.number: {
                "service": seed,
                "hunting": {"name": seed.get("description") or group.name},
                "queues": queues,
                "agents": [{**a, "description": anonymous_description(group, a)} for a in agents],
                "agentQueues": [
                    {"agentId": a["agentId"], "queueId": link["queueId"], "position": link["position"]}
                    for a, found in zip(agents, links, strict=True)
                    for link in found
                ],
                "timeConditions": settings,
                "conditions": conditions,
                "liveCalls": [],
            }
        }
    }


def anonymous_description(group, agent):
    """An agent's description without a person's name: the page's own, else a neutral one."""
    if (agent.get("description") or "").startswith(group.agent_description):
        return group.agent_description
    return f"Agent {agent['agentId']}"


def line_summary(state):
    """What a group's page says of its line, numbers and live calls aside: to compare OVH with the copy."""
    return {
        "en cours": state.running, "bénévoles": len(state.volunteers), "sonnent": len(state.rings_now),
        "stratégie": state.strategy,
        "ailleurs": state.elsewhere if state.elsewhere in (None, "voicemail", "") else "un numéro",
        "plages désactivées": state.conditions_off, "fin": state.until,
    }  # fmt: skip


def replay_departures(client, settings, state):
    """The groups whose line the simulator, given the copy `state`, does not read as OVH does: [(slug, detail)]."""
    sys.path.insert(0, str(HERE / "tests"))
    from fake_ovh import DEMO_APPLICATION_KEY, DEMO_APPLICATION_SECRET, DEMO_CONSUMER_KEY, FakeOVH

    fake = FakeOVH(state).start()
    try:
        copy = connect_ovh(fake.url, DEMO_APPLICATION_KEY, DEMO_APPLICATION_SECRET, DEMO_CONSUMER_KEY)
        moment, departures = now(settings.timezone), []
        for group in settings.groups.values():
            try:
                real, copied = (line_summary(LINE_KINDS[group.kind](c, group, moment).read_state())
                                for c in (client, copy))  # fmt: skip
            except Exception as error:  # OVH failing now, or a copy the simulator cannot read.
                departures.append((group.slug, f"relecture impossible : {explain_for_it(error)}"))
                continue
            differing = [f"{key} {real[key]} chez OVH, {copied[key]} dans la copie" for key in real
                         if real[key] != copied[key]]  # fmt: skip
            if differing:
                departures.append((group.slug, " ; ".join(differing)))
        return departures
    finally:
        fake.stop()


def write_snapshot(client, settings, path):
    """Write what OVH has of every group's line (read only) to `path` in the simulator's state format; return 0 or 1."""
    fictional = Fictional(g.number for g in settings.groups.values())
    accounts = {}
    for group in settings.groups.values():
        account = accounts.setdefault(
            group.billing_account,
            {"info": {"billingAccount": group.billing_account, "description": group.billing_account,
                      "status": "enabled"}, "line": {}, "redirect": {}, "easyHunting": {}},
        )  # fmt: skip
        try:
            for kind, services in snapshot_group(client, group).items():
                account[kind].update(fictional(services))
        except Exception as error:
            print(f"ERREUR [{group.slug}] copie impossible : {explain_for_it(error)}")
            return 1
    ids = {"agentId": 0, "queueId": 0, "conditionId": 0}
    for account in accounts.values():
        for service in account["easyHunting"].values():
            for kind, items in (("agentId", "agents"), ("queueId", "queues"), ("conditionId", "conditions")):
                ids[kind] = max([ids[kind], *(item[kind] for item in service[items])])
    state = {
        "lastIds": {"applicationId": 2001, "credentialId": 3001, "liveCallId": 7000, **ids},
        "billingAccounts": accounts,
    }
    try:
        Path(path).write_text(json.dumps(state, indent=1, ensure_ascii=False), encoding="utf-8")
    except OSError as error:
        print(f"ERREUR : {path} : écriture impossible ({os_error_text(error)}) ; choisissez un autre fichier.")
        return 1
    departures = replay_departures(client, settings, state)
    for slug, detail in departures:
        print(f"ERREUR [{slug}] le simulateur ne lit pas la copie comme OVH lit la ligne : {detail}")
    if departures:
        return 1
    print(f"Copie du compte (lecture seule, numéros rendus fictifs) dans {path} : "
          f"python3 index.py --demo --state {shlex.quote(str(path))} sert la page dessus.")  # fmt: skip
    return 0


def check(app, snapshot=None):
    """Check lines.ini, the web server's rights and each group on OVH, copied to `snapshot`; print what is wrong.

    Return the exit status.
    """
    import ovh.exceptions

    try:
        settings = load_settings(app.lines_ini)
    except ConfigError as error:
        print(f"ERREUR : {error}")
        return 1
    print(f"{settings.path} : {len(settings.groups)} groupe(s)" + (
        f", {len(settings.broken)} en erreur." if settings.broken else "."))  # fmt: skip
    problems = 0
    for section, error in settings.broken.items():
        print(f"ERREUR [{section.lower()}] {error}")
        problems += 1
    for problem in web_user_problems(settings):
        print(f"ERREUR : {problem}")
        problems += 1
    credential = None
    try:
        client = app.client(settings)
        credential = client.get(CURRENT_CREDENTIAL)
    except ovh.exceptions.NotGrantedCall:
        pass  # An old key that cannot describe itself: check_coverage says what to do.
    except Exception as error:
        print(f"ERREUR : {explain_for_it(error)}")
        return 1
    moment = now(settings.timezone)
    for group in settings.groups.values():
        described, group_problems = check_group(client, group, moment)
        for problem in group_problems:
            print(f"ERREUR [{group.slug}] {format_phone(group.number)} : {problem}")
        if not group_problems:
            print(f"ok     [{group.slug}] {format_phone(group.number)} : {described}")
        problems += len(group_problems)
    if not check_coverage(client, settings, verbose=False):
        problems += 1
    if credential is not None:
        expiration = parse_ovh_datetime(credential.get("expiration"), ZoneInfo("UTC"))
        print("Clé OVH : " + (f"expire le {format_day_time(expiration)}" if expiration else "sans date d'expiration"))
    if snapshot:
        problems += write_snapshot(client, settings, snapshot)
    return 1 if problems else 0


def command_group(app, slug):
    """The settings and the group `slug` a command works on; (settings or None, None) once it said what is wrong."""
    try:
        settings = load_settings(app.lines_ini)
    except ConfigError as error:
        print(f"ERREUR : {error}")
        return None, None
    group = settings.groups.get(slug.lower())
    if group is None and slug.lower() in settings.broken:
        print(f"ERREUR : {settings.broken[slug.lower()]} ; corrigez le groupe dans lines.ini, puis relancez.")
    elif group is None:
        known = ", ".join(settings.groups) or "aucun"
        in_error = f" ; en erreur, à corriger : {', '.join(settings.broken)}" if settings.broken else ""
        print(
            f"ERREUR : {settings.path} ne définit pas le groupe « {slug} » (groupes : {known}{in_error}) : "
            "relancez avec l'un d'eux."
        )
    return settings, group


def set_code(app, slug, remove=False):
    """Set (asking for it) or remove a group's access code in access-codes.ini; return the exit status."""
    import getpass

    settings, group = command_group(app, slug)
    if group is None:
        return 1
    try:
        if remove:
            write_access_code(settings.access_codes, group.slug, None)
            write_coded_groups(settings, read_coded_groups(settings) - {group.slug})
            print(f"{group.name} : plus de code d'accès ({settings.access_codes}).")
            return 0
        if sys.stdin.isatty():
            try:
                code = getpass.getpass(f"Nouveau code d'accès de {group.name} : ")
                again = getpass.getpass("Le même code, encore : ")
            except (KeyboardInterrupt, EOFError):
                print("\nInterrompu : rien n'a changé.")
                return 1
            if again != code:
                print("ERREUR : les deux codes diffèrent ; rien n'a changé.")
                return 1
        else:
            code = sys.stdin.readline()
        code = code.strip()  # As the page reads a code typed or pasted.
        if len(code) < CODE_MIN_LENGTH:
            print(f"ERREUR : le code doit avoir au moins {CODE_MIN_LENGTH} caractères ; rien n'a changé.")
            return 1
        def share(draft):  # A new access-codes.ini: the web server's, before the page can see it.
            share_with_web_server(draft, settings)

        write_access_code(settings.access_codes, group.slug, hash_code(code), share)
        write_coded_groups(settings, read_coded_groups(settings) | {group.slug})
    except OSError as error:
        where = error.filename or settings.access_codes
        print(f"ERREUR : {where} : écriture impossible ({os_error_text(error)}) ; relancez la commande en root.")
        return 1
    except ConfigError as error:
        print(f"ERREUR : {error}")
        return 1
    print(f"{group.name} : code d'accès enregistré dans {settings.access_codes}.")
    print("Les bénévoles déjà entrés avec l'ancien code devront saisir le nouveau.")
    return 0


def unlock(app, slug):
    """Forget a group's wrong codes, from every address and for the group: nobody waits; return the exit status."""
    settings, group = command_group(app, slug)
    if group is None:
        return 1
    folder = settings.data_dir / "attempts"
    try:
        counts = [p for p in folder.glob(f"{group.slug}*") if p.name.partition(".")[0] == group.slug]
        for path in counts:
            path.unlink(missing_ok=True)
    except OSError as error:
        print(f"ERREUR : {folder} : effacement impossible ({os_error_text(error)}) ; relancez la commande en root.")
        return 1
    print(f"{group.name} : les codes erronés sont oubliés ; chacun peut de nouveau entrer le code.")
    return 0


# argparse's own words (the messages it looks up through gettext), in French.
ARGPARSE_FRENCH = {
    "usage: ": "utilisation : ",
    "show this help message and exit": "afficher cette aide",
    "argument %(argument_name)s: %(message)s": "%(argument_name)s : %(message)s",
    "invalid choice: %(value)r (choose from %(choices)s)": "« %(value)s » n'est pas une commande connue",
    "expected one argument": "il manque sa valeur",
    "not allowed with argument %s": "ne va pas avec %s",
    "ignored explicit argument %r": "ne prend pas de valeur (%r)",
    "ambiguous option: %(option)s could match %(matches)s": "%(option)s peut être %(matches)s",
    "one of the arguments %s is required": "il manque ce qu'il faut faire, l'une des options %s",
    "unrecognized arguments: %s": "option inconnue : %s",
}


def french_parser(**kwargs):
    """An argparse parser in French: its help, and each usage mistake as one sentence with the next step."""
    import argparse

    @contextmanager
    def in_french():
        english = argparse._  # gettext's: argparse looks its messages up through it.
        argparse._ = lambda message: ARGPARSE_FRENCH.get(message, message)
        try:
            yield
        finally:
            argparse._ = english

    class FrenchParser(argparse.ArgumentParser):
        def __init__(self, *args, **kwargs):
            with in_french():
                super().__init__(*args, **kwargs)

        def parse_args(self, args=None, namespace=None):
            with in_french():
                return super().parse_args(args, namespace)

        def error(self, message):
            """One sentence, with where the help is; exit status 2, as argparse's."""
            self.exit(2, f"{self.prog} : {message} ; voir {self.prog} --help.\n")

    return FrenchParser(**kwargs)


def number_argument(low, high, what, kind=int):
    """An argparse type: a number from `low` to `high` (whole unless `kind` is float); else « … n'est pas `what` »."""

    def convert(text):
        import argparse

        try:
            value = kind(text.replace(",", ".")) if kind is float else int(text) if text.isdigit() else None
        except ValueError:
            value = None
        if value is None or not low <= value <= high:  # NaN too: it compares false.
            raise argparse.ArgumentTypeError(f"« {text} » n'est pas {what}")
        return value

    return convert


def main(argv=None):
    """The command line for IT: --demo, --serve, --check, --set-code, --remove-code or --unlock."""
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
        return demo(args.host, args.port, args.state)
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
    logging.basicConfig(level=logging.INFO, format="cimade-ovh: %(levelname)s: %(message)s")
    if is_fastcgi():
        run_fastcgi(application)
    elif "GATEWAY_INTERFACE" in os.environ:
        run_cgi(application)
    else:
        sys.exit(main())
