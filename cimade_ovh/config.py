"""lines.ini: the global settings and one section per group, checked; every mistake named by file, section and key."""

import configparser
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import ROOT
from .clock import END_OF_DAY, PERIOD_FROM, parse_end
from .files import os_error_text

LINES_INI = Path(os.environ.get("LINES_INI") or ROOT / "lines.ini")
SETTINGS_SECTION = "settings"
KINDS = ("queue", "redirect")
RESERVED_SLUGS = {SETTINGS_SECTION, "index.py", "favicon.ico"}
DEFAULT_CONTACT = "l'informatique de la Cimade"  # Whom pages name without a contact in lines.ini, or before it is read.
DEFAULT_RING_TIMEOUT = 10
MAX_TEAM = 20  # The most volunteers a queue group may set in max_volunteers.
MAX_KEEP_DAYS = 3660  # Ten years: the most keep_handled_days may say.
MAIL_ADDRESS = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>.]+")
SETTINGS_KEYS = (
    "ovh_conf", "data_dir", "activity_log", "notify", "sendmail", "contact", "timezone", "access_codes",
    "access_hours", "web_user", "ends_at", "site_url",
)  # fmt: skip
GROUP_KEYS = (
    "name", "kind", "billing_account", "number", "ring_timeout", "max_volunteers", "agent_description", "contact",
    "ends_at", "voicemail", "keep_handled_days", "messages_to",
)  # fmt: skip


class ConfigError(Exception):
    """A mistake in lines.ini or ovh.conf; the message names the file, section and key."""

    def __init__(self, message, unreadable=False):
        super().__init__(message)
        self.unreadable = unreadable  # The file is there, but its rights keep this process from reading it.


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
    ends_at: int = END_OF_DAY  # The planned end a volunteer's form proposes, a time of day in seconds.
    voicemail: tuple = ()  # Voicemail boxes (SIP lines, 0033…) the page reads besides those OVH's settings name.
    keep_handled_days: int = 0  # stats.py deletes at OVH the messages handled this many days ago; 0: never.
    messages_to: tuple = ()  # Addresses stats.py mails once per new voicemail message.


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
    site_url: str = ""  # The site's public address (https://…), for the links in mails; "" when not set.


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
    for key in parser[section]:
        if key not in known and key not in parser.defaults():
            import difflib

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

    site_url = value(SETTINGS_SECTION, "site_url", "")
    if site_url and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", site_url):
        raise ConfigError(
            f"{path}, section [{SETTINGS_SECTION}], clé « site_url » : « {site_url} » n'est pas l'adresse du site "
            "(par exemple https://permanences.example.org)"
        )
    default_end = parse_ends_at(value(SETTINGS_SECTION, "ends_at", ""), f"{path}, section [{SETTINGS_SECTION}]")

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
        site_url=site_url.rstrip("/"),
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
        raise ConfigError(f"{where}, clé « number » : « {number} » n'est pas un numéro OVH (forme 0033…, sans espaces)")
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
    boxes = tuple(box.strip() for box in value(section, "voicemail", "").split(",") if box.strip())
    wrong = [box for box in boxes if not re.fullmatch(r"00\d{6,15}", box)]
    if wrong:
        raise ConfigError(
            f"{where}, clé « voicemail » : « {wrong[0]} » n'est pas un numéro de ligne OVH "
            "(forme 0033…, sans espaces ; plusieurs répondeurs séparés par des virgules)"
        )
    keep_handled_days = value(section, "keep_handled_days", "")
    if keep_handled_days and (not keep_handled_days.isdigit() or not 1 <= int(keep_handled_days) <= MAX_KEEP_DAYS):
        raise ConfigError(
            f"{where}, clé « keep_handled_days » : « {keep_handled_days} » n'est pas un nombre de jours "
            f"(1 à {MAX_KEEP_DAYS}) ; sans cette clé, les messages traités restent chez OVH"
        )
    messages_to = tuple(a.strip() for a in value(section, "messages_to", "").split(",") if a.strip())
    wrong = [address for address in messages_to if not MAIL_ADDRESS.fullmatch(address)]
    if wrong:
        raise ConfigError(
            f"{where}, clé « messages_to » : « {wrong[0]} » n'est pas une adresse électronique "
            "(plusieurs adresses séparées par des virgules)"
        )
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
        ends_at=parse_ends_at(value(section, "ends_at", ""), where, default_end),
        voicemail=boxes,
        keep_handled_days=int(keep_handled_days or 0),
        messages_to=messages_to,
    )


def parse_ends_at(text, where, default=END_OF_DAY):
    """The planned end `ends_at` of lines.ini as a time of day (`default` if empty); else ConfigError naming `where`."""
    if not text:
        return default
    try:
        end = parse_end(text)
    except ValueError:
        raise ConfigError(f"{where}, clé « ends_at » : « {text} » n'est pas une heure (par exemple 18:00)") from None
    if end <= PERIOD_FROM:
        raise ConfigError(f"{where}, clé « ends_at » : « {text} » : la page n'ouvre la ligne qu'à partir de 2 h")
    return end


def script_command(script, *args):
    """The command that runs one of the project's scripts from any folder, for the messages that suggest one."""
    return " ".join(["python3", shlex.quote(str(ROOT / script)), *args])
