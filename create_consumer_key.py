#!/usr/bin/env python3
"""Create the OVH consumer key of cimade-ovh, with only the rights the groups of lines.ini need.

    python3 create_consumer_key.py            ask OVH for a key, wait for its validation, write it in ovh.conf
    python3 create_consumer_key.py --check    tell whether the key in use covers every group of lines.ini

The application key and secret come from ovh.conf (create the application on
https://eu.api.ovh.com/createApp/). When ovh.conf does not exist yet, it is
made from ovh-example.conf with --application-key, and the secret read from
the OVH_APPLICATION_SECRET environment variable or asked for (never on the
command line, where other users of the server could read it).
"""

import configparser
import getpass
import os
import re
import sys
import time
from pathlib import Path

from cimade_ovh import ROOT, clock  # The package sets up the virtualenv.
from cimade_ovh.cli import french_parser, number_argument
from cimade_ovh.config import ConfigError, load_settings, read_ini, script_command
from cimade_ovh.files import os_error_text, replace_keeping
from cimade_ovh.lines import line_mistake
from cimade_ovh.ovhapi import (
    CURRENT_CREDENTIAL,
    PLACEHOLDERS,
    connect_ovh,
    explain_for_it,
    misplaced,
    ovh_conf_section,
    parallel,
    read_ovh_conf,
)
from cimade_ovh.rights import share_with_web_server
from cimade_ovh.rules import check_coverage, required_rules, resolve_sip_lines
from cimade_ovh.voicemail import resolve_boxes

EXAMPLE_CONF = ROOT / "ovh-example.conf"


# --- Rules ----------------------------------------------------------------------


def same_rules(a, b):
    """Whether two lists of rules are the same set."""
    return {(r["method"], r["path"]) for r in a} == {(r["method"], r["path"]) for r in b}


# --- ovh.conf -------------------------------------------------------------------


SECTION_LINE = re.compile(r"\s*\[(?P<name>[^\]]+)\]\s*$")


def set_conf_values(text, section, values):
    """Set `key = value` lines in one section of an ini text, keeping every other line and comment."""
    lines = text.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if (m := SECTION_LINE.match(line)) and m["name"].strip() == section), None
    )
    if start is None:
        if lines and lines[-1].strip():
            lines.append("")
        lines.append(f"[{section}]")
        start = len(lines) - 1
    end = next((i for i in range(start + 1, len(lines)) if SECTION_LINE.match(lines[i])), len(lines))
    for key, value in values.items():
        pattern = re.compile(rf"\s*{re.escape(key)}\s*[=:]")
        found = next((i for i in range(start + 1, end) if pattern.match(lines[i])), None)
        if found is not None:
            lines[found] = f"{key} = {value}"
        else:
            # After the section's last setting: a comment further down belongs to what follows.
            settings = [i for i in range(start + 1, end) if lines[i].strip() and lines[i].lstrip()[0] not in "#;"]
            last = max([start] + settings)
            lines.insert(last + 1, f"{key} = {value}")
            end += 1
    return "\n".join(lines) + "\n"


def write_private(path, text):
    """Write a file atomically, owner-only when created; an existing file keeps its mode, owner and group.

    An existing file loses any right for "others": ovh.conf is often
    root:www-data 0640, so that the web server reads it; forcing 0600 there
    would lock the page out.
    """
    replace_keeping(Path(path), text, 0o600, kept=0o770)


# --- Creating a key -------------------------------------------------------------


class Failure(Exception):
    """Something that stops the script; the message is in French, for IT."""


def application_keys(args, conf_path):
    """(endpoint, application key, application secret, consumer key in use or "") from ovh.conf and options."""
    if conf_path.exists():
        keys = read_ovh_conf(conf_path, required=())
        endpoint, section = ovh_conf_section(read_ini(conf_path))
    else:
        endpoint, section, keys = "ovh-eu", "ovh-eu", {}
    endpoint = args.endpoint or endpoint
    application_key = args.application_key or keys.get("application_key", "")
    secret = keys.get("application_secret", "")
    if secret in PLACEHOLDERS:
        secret = os.environ.get("OVH_APPLICATION_SECRET", "").strip()
    if secret in PLACEHOLDERS and application_key not in PLACEHOLDERS and sys.stdin.isatty():
        secret = getpass.getpass("Application secret (ne s'affiche pas) : ").strip()
    if application_key in PLACEHOLDERS and conf_path.exists():
        wrong_place = misplaced(read_ini(conf_path), endpoint, section, "application_key")
        if wrong_place:
            raise Failure(f"{conf_path}, section [{section}] : l'application OVH n'y est pas{wrong_place}.")
    if application_key in PLACEHOLDERS:
        raise Failure(
            f"{conf_path} ne contient pas encore l'application OVH dans la section [{section}], celle de "
            f"endpoint = {endpoint}. Créez-la sur https://eu.api.ovh.com/createApp/ puis mettez application_key "
            "et application_secret dans cette section (ou donnez --application-key, et le secret dans la variable "
            "d'environnement OVH_APPLICATION_SECRET)."
        )
    if secret in PLACEHOLDERS:
        raise Failure(
            f"Il manque le secret de l'application {application_key} : mettez application_secret dans {conf_path}, "
            "ou le secret dans la variable d'environnement OVH_APPLICATION_SECRET, ou relancez ce script dans un "
            "terminal, qui le demande."
        )
    consumer_key = keys.get("consumer_key", "")
    return endpoint, application_key, secret, "" if consumer_key in PLACEHOLDERS else consumer_key


def current_key(endpoint, application_key, secret, consumer_key):
    """A client on the key in use, with its credential, or (None, None) when there is none that works."""
    if not consumer_key:
        return None, None
    client = connect_ovh(endpoint, application_key, secret, consumer_key)
    try:
        return client, client.get(CURRENT_CREDENTIAL)
    except Exception:
        return client, None


def wait_for_validation(client, args):
    """Wait until the person validated the key; return its credential."""
    import ovh.exceptions

    def credential():
        try:
            return client.get(CURRENT_CREDENTIAL)
        except (ovh.exceptions.InvalidCredential, ovh.exceptions.NotCredential):
            return None  # Still pending (or refused).

    if sys.stdin.isatty() and not args.yes:
        while True:
            answer = input("Une fois la clé validée sur cette page, appuyez sur Entrée (q pour abandonner) : ")
            if answer.strip().lower() == "q":
                raise Failure("Abandon : ovh.conf n'a pas changé.")
            found = credential()
            if found and found.get("status") == "validated":
                return found
            print("OVH ne considère pas encore la clé comme validée.")
    deadline = time.monotonic() + args.timeout
    print(f"En attente de la validation (au plus {args.timeout} secondes)…", flush=True)
    while time.monotonic() < deadline:
        found = credential()
        if found and found.get("status") == "validated":
            return found
        time.sleep(args.poll)
    raise Failure(f"La clé n'a pas été validée dans les {args.timeout} secondes : ovh.conf n'a pas changé.")


def create_key(args):
    """Ask OVH for a key, wait for its validation, check it and write it in ovh.conf."""
    settings = load_settings(args.lines_ini)
    if settings.broken:
        raise Failure(
            f"{settings.path} : erreur dans les groupes {', '.join(settings.broken)} ; la clé ne les couvrirait pas. "
            f"Corrigez-les (voir {script_command('index.py', '--check')}), puis relancez."
        )
    conf_path = Path(args.ovh_conf or settings.ovh_conf)
    endpoint, application_key, secret, old_key = application_keys(args, conf_path)
    old_client, old_credential = current_key(endpoint, application_key, secret, old_key)
    if old_credential and print_mistakes(old_client, settings):
        raise Failure(f"Corrigez {settings.path}, puis relancez : ovh.conf n'a pas changé.")
    sip_lines = resolve_sip_lines(old_client, settings) if old_credential else {}
    boxes = resolve_boxes(old_client, settings, clock.now(settings.timezone)) if old_credential else {}
    rules = required_rules(settings, sip_lines, boxes)

    client = connect_ovh(endpoint, application_key, secret, "")  # "": never a key from ~/.ovh.conf.
    request = client.request_consumerkey(rules)

    print(f"Groupes de {settings.path} : {', '.join(settings.groups) or 'aucun'}.")
    print("Droits demandés à OVH :")
    for item in rules:
        print(f"    {item['method']:6} {item['path']}")
    unresolved = [g.slug for g in settings.groups.values() if g.kind == "redirect" and g.slug not in sip_lines]
    if unresolved:
        print(
            f"Ligne SIP inconnue pour {', '.join(unresolved)} (pas encore de clé qui puisse la lire) : la clé couvre "
            "les lignes du compte de facturation. Relancez ce script une fois la clé créée pour la restreindre."
        )
    print()
    print("Ouvrez cette adresse dans un navigateur :")
    print(f"    {request['validationUrl']}")
    print("Connectez-vous avec le compte OVH de La Cimade (celui qui porte les lignes), puis choisissez la durée")
    print("de validité : « Unlimited » (illimitée) ou une date. Passé cette date, la clé ne servira plus à rien :")
    print("la page ne pourra plus agir sur les lignes tant qu'une nouvelle clé n'aura pas été créée.")
    print(flush=True)

    credential = wait_for_validation(client, args)
    if not same_rules(credential.get("rules") or [], rules):
        raise Failure("La clé validée n'a pas les droits demandés : ovh.conf n'a pas changé. Relancez le script.")

    created = not conf_path.exists()
    text = EXAMPLE_CONF.read_text(encoding="utf-8") if created else conf_path.read_text(encoding="utf-8")
    if created or args.endpoint:
        text = set_conf_values(text, "default", {"endpoint": endpoint})
    section, written = conf_section(text)
    values = {"application_key": application_key, "application_secret": secret, "consumer_key": request["consumerKey"]}
    values = {key: value for key, value in values.items() if written.get(key, "").strip() != value}
    try:
        write_private(conf_path, set_conf_values(text, section, values))
    except OSError as error:  # Not run as root, or a wrong --ovh-conf.
        raise Failure(
            f"{conf_path} : écriture impossible ({os_error_text(error)}) ; relancez en root, ou choisissez un "
            "autre --ovh-conf. ovh.conf n'a pas changé."
        ) from None
    if created:
        share_with_web_server(conf_path, settings)

    expiration = credential.get("expiration")
    print(f"Clé validée (n° {credential.get('credentialId')}, " + (
        f"expire le {expiration})." if expiration else "sans date d'expiration)."))  # fmt: skip
    print(f"{'Créé' if created else 'Mis à jour'} : {conf_path}")
    if old_credential and old_credential.get("credentialId") != credential.get("credentialId"):
        print(
            f"L'ancienne clé (n° {old_credential.get('credentialId')}) reste valable : révoquez-la dans l'espace "
            f"client OVH (ou DELETE /me/api/credential/{old_credential.get('credentialId')} avec une clé qui en a "
            "le droit ; celle-ci ne l'a pas, exprès)."
        )
    if expiration:
        print("Avant cette date, relancez ce script pour créer la clé suivante.")
    if print_mistakes(connect_ovh(endpoint, application_key, secret, request["consumerKey"]), settings):
        print(f"Corrigez {settings.path}, puis relancez ce script : la clé doit couvrir les groupes tels qu'ils sont.")
        return 1
    return 0


def print_mistakes(client, settings):
    """Say what lines.ini gets wrong about each group, as far as the key of `client` can tell; True if anything."""
    mistakes = parallel(*[lambda g=g: line_mistake(client, g) for g in settings.groups.values()])
    for group, mistake in zip(settings.groups.values(), mistakes, strict=True):
        if mistake:
            print(f"ERREUR [{group.slug}] {mistake.detail}")
    return any(mistakes)


def conf_section(text):
    """The section of an ovh.conf text where read_ovh_conf looks for the keys, and its values."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    _, section = ovh_conf_section(parser)
    return section, dict(parser[section]) if parser.has_section(section) else {}


def check(args):
    """--check: whether the key of ovh.conf covers every group; the exit status."""
    settings = load_settings(args.lines_ini)
    for section, error in settings.broken.items():
        print(f"ERREUR [{section.lower()}] {error}")
    conf = read_ovh_conf(Path(args.ovh_conf or settings.ovh_conf))
    client = connect_ovh(**conf)
    boxes = resolve_boxes(client, settings, clock.now(settings.timezone))
    return 0 if check_coverage(client, settings, boxes=boxes) and not settings.broken else 1


def main(argv=None):
    parser = french_parser(description="Créer la clé OVH de cimade-ovh, avec les seuls droits nécessaires.")
    parser.add_argument(
        "--lines-ini",
        type=Path,
        metavar="FICHIER",
        help="le fichier des groupes (par défaut : lines.ini à côté de ce script)",
    )
    parser.add_argument(
        "--ovh-conf", type=Path, metavar="FICHIER", help="le fichier des clés (par défaut : celui que nomme lines.ini)"
    )
    parser.add_argument("--check", action="store_true", help="dire si la clé en place couvre tous les groupes")
    parser.add_argument(
        "--yes", action="store_true", help="ne pas attendre Entrée : interroger OVH jusqu'à la validation"
    )
    parser.add_argument(
        "--timeout",
        type=number_argument(1, 86400, "un nombre entier de secondes de 1 à 86400 (un jour)"),
        default=900,
        metavar="SECONDES",
        help="attente maximale de la validation, en secondes (900)",
    )
    parser.add_argument(
        "--poll",
        type=number_argument(0.1, 300, "un nombre de secondes de 0,1 à 300", kind=float),
        default=3,
        metavar="SECONDES",
        help="intervalle entre deux interrogations, en secondes (3)",
    )
    parser.add_argument(
        "--endpoint",
        metavar="ADRESSE",
        help="ovh-eu (par défaut) ou l'adresse d'un simulateur, pour un nouveau ovh.conf",
    )
    parser.add_argument(
        "--application-key",
        metavar="CLÉ",
        help="la clé d'application (le secret : variable OVH_APPLICATION_SECRET)",
    )
    args = parser.parse_args(argv)
    import ovh.exceptions

    try:
        return check(args) if args.check else create_key(args)
    except (Failure, ConfigError) as error:
        print(f"ERREUR : {error}")
        return 1
    except ovh.exceptions.APIError as error:  # Network failures and an unknown endpoint included.
        print(f"ERREUR : {explain_for_it(error)}" + ("" if args.check else " ovh.conf n'a pas changé."))
        return 1
    except (KeyboardInterrupt, EOFError):  # Ctrl-C, or Ctrl-D at a question.
        print("\nAbandon : ovh.conf n'a pas changé.")
        return 1


if __name__ == "__main__":
    os.umask(0o077)  # ovh.conf holds the secrets: nobody else reads what this script writes.
    sys.exit(main())
