"""lines.ini: the global settings and one section per group, checked; every mistake named by file, section and key."""

import configparser
import os
import re
import shlex
from collections import namedtuple
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import ROOT
from .clock import END_OF_DAY, PERIOD_FROM, parse_end
from .files import os_error_text, replace_keeping

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
    "ends_at", "access_code", "voicemail", "keep_handled_days", "messages_to",
)  # fmt: skip


class ConfigError(Exception):
    """A mistake in lines.ini or ovh.conf; the message names the file, section and key."""

    def __init__(self, message, unreadable=False):
        super().__init__(message)
        self.unreadable = unreadable  # The file is there, but its rights keep this process from reading it.


GROUP_FIELDS = (
    "slug name kind billing_account number ring_timeout max_volunteers agent_description contact ends_at access_code "
    "voicemail keep_handled_days messages_to"
)


GROUP_DEFAULTS = (DEFAULT_RING_TIMEOUT, 1, "", "", END_OF_DAY, False, (), 0, ())  # Those of ring_timeout and after.


class Group(namedtuple("Group", GROUP_FIELDS, defaults=GROUP_DEFAULTS)):
    """A local group and its help line, as described by one section of lines.ini.

    ends_at is the planned end a volunteer's form proposes, a time of day in seconds. access_code is written by
    --set-code: without its code, the page stays closed, whatever data/ holds. voicemail: the voicemail boxes
    (SIP lines, 0033…) the page reads besides those OVH's settings name. keep_handled_days: stats.py deletes at
    OVH the messages handled this many days ago (0: never). messages_to: the addresses stats.py mails once per new
    voicemail message.
    """

    __slots__ = ()


SETTINGS_FIELDS = (
    "path ovh_conf data_dir activity_log notify sendmail contact timezone groups access_codes access_hours broken "
    "web_user site_url"
)


class Settings(namedtuple("Settings", SETTINGS_FIELDS, defaults=(None, 12, {}, "", ""))):
    """Everything lines.ini says: the global settings and the groups by slug.

    Paths are Path, notify and sendmail tuples, timezone a ZoneInfo, access_hours an int; broken gives,
    by section name, why that group cannot be served; site_url is the site's public address (https://…), for
    the links in mails, "" when not set.
    """

    __slots__ = ()


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

    groups, broken, sections = {}, {}, {}
    for section in parser.sections():
        if section == SETTINGS_SECTION:
            continue
        try:
            group = load_group(parser, path, section, value, default_end)
            if group.slug in groups:
                raise ConfigError(f"{path}, section [{section}] : le groupe « {group.slug} » est déjà défini")
        except ConfigError as error:
            broken[section.lower()] = str(error)  # By the address its page would have.
        else:
            groups[group.slug], sections[group.slug] = group, section
    for slug, error in shared_numbers(path, data_dir, groups, sections).items():
        del groups[slug]
        broken[slug] = error

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


def shared_numbers(path, data_dir, groups, sections):
    """The groups to break because another section has their number: {slug: why}, naming both sections.

    The one group of a number that served already (its traces in data_dir) keeps working: a section added
    for the same number, above or below it, breaks only itself. When none or several served, there is no
    telling which one was there first: none of them is served.
    """
    by_number = {}
    for group in groups.values():
        by_number.setdefault(group.number, []).append(group)
    errors = {}
    for number, twins in by_number.items():
        if len(twins) < 2:
            continue
        served = [group for group in twins if has_served(data_dir, group.slug)]
        for group in twins:
            where = f"{path}, section [{sections[group.slug]}], clé « number » : {number}"
            if len(served) == 1 and group is not served[0]:
                errors[group.slug] = (
                    f"{where} est déjà le numéro du groupe [{served[0].slug}], qui a servi ; deux groupes sur un "
                    f"même numéro se remplaceraient leurs bénévoles : donnez son propre numéro à [{group.slug}]"
                )
            elif len(served) != 1:
                others = ", ".join(f"[{other.slug}]" for other in twins if other is not group)
                why = "plusieurs ont déjà servi" if served else "aucun n'a encore servi"
                errors[group.slug] = (
                    f"{where} est aussi le numéro du groupe {others} ; deux groupes sur un même numéro se "
                    f"remplaceraient leurs bénévoles, et rien ne dit lequel était là le premier ({why}) : aucun "
                    "n'est servi ; gardez une seule section pour ce numéro"
                )
    return errors


def has_served(data_dir, slug):
    """Whether the page or stats.py left traces of the group in data_dir: an action's stamp, planned ends, records."""
    traces = (data_dir / "last-action" / slug, data_dir / "ends" / f"{slug}.json", data_dir / "stats" / slug)
    return any(trace.exists() for trace in traces)


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
    access_code = value(section, "access_code", "no")
    if access_code not in ("yes", "no"):
        raise ConfigError(f"{where}, clé « access_code » : « {access_code} » : yes ou no (écrit par --set-code)")
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
        access_code=access_code == "yes",
        voicemail=boxes,
        keep_handled_days=int(keep_handled_days or 0),
        messages_to=messages_to,
    )


def mark_access_code(path, slug, has_code):
    """Write access_code = yes in a group's section of lines.ini (or take it out), changing no other line.

    lines.ini is the one file without which there is no page: a group marked there stays closed
    when its code is lost, even with a wiped data folder. The file keeps its owner and mode.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines(keepends=True)
    headers = [i for i, line in enumerate(lines) if re.fullmatch(r"\s*\[[^\]]+\]\s*", line)]
    start = next(i for i in headers if lines[i].strip()[1:-1].strip().lower() == slug)
    end = next((i for i in headers if i > start), len(lines))
    kept = [line for line in lines[start + 1 : end] if not re.match(r"\s*access_code\s*[=:]", line)]
    header = lines[start] if lines[start].endswith("\n") else lines[start] + "\n"
    marked = ["access_code = yes\n"] if has_code else []
    replace_keeping(Path(path), "".join(lines[:start] + [header] + marked + kept + lines[end:]), 0o644)


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
    """The command that runs one of the project's scripts from any folder, for the messages that suggest one.

    Debian's own python3, as the README's commands: root's `python3` may be another one (pyenv), which cannot
    load .venv3's packages; the script finds .venv3 itself.
    """
    return " ".join(["/usr/bin/python3", shlex.quote(str(ROOT / script)), *args])
