"""What IT runs from a shell with index.py: its options, --demo, --check, --set-code, --remove-code, --unlock."""

import json
import shlex
import sys
from datetime import datetime
from pathlib import Path

from . import ROOT, clock
from .access import (
    CODE_MIN_LENGTH,
    hash_code,
    read_access_codes,
    read_coded_groups,
    write_access_code,
    write_coded_groups,
)
from .cli import french_parser, number_argument
from .clock import format_day_time, parse_ovh_datetime
from .config import LINES_INI, SETTINGS_SECTION, ConfigError, load_settings, mark_access_code, read_ini, script_command
from .figures import append_record, record_path
from .files import os_error_text
from .lines import KIND_WORDS, named_mistake
from .ovhapi import CURRENT_CREDENTIAL, LINE_MISTAKES, OvhFailure, explain_for_it
from .phones import format_phone
from .queues import CONDITIONS_OFF_STEP, QueueLine
from .redirect import RedirectLine
from .rights import (
    VENV_COMMAND,
    exposed_secrets,
    page_can_read,
    share_with_web_server,
    web_user,
    web_user_problems,
)
from .rules import check_coverage
from .servers import serve
from .sharing import EXPIRY_NOTICE
from .snapshot import copied_accounts, snapshot_problem, write_snapshot
from .voicemail import box_problems, check_losses, resolve_boxes


def parse_arguments(argv=None):
    """index.py's options from the command line; a mistake is one French sentence (french_parser)."""
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
    return args


def demo(make_app, host, port, state=None):
    """Serve the page (make_app(lines_ini=…)) on the simulated account (or the copy `state`), with simulated figures."""
    import signal
    import tempfile

    from .simulator import FakeOVH, leave_demo_messages

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
            lines_ini = write_demo_folder(Path(folder), fake, account)
            print(f"Démo : compte OVH simulé sur {fake.url} (rien n'est envoyé à OVH)", flush=True)
            print(f"Démo : journal et statistiques simulées dans {folder}", flush=True)
            if account is None:
                left = leave_demo_messages(fake)
                give_demo_codes(load_settings(lines_ini))
                print(demo_messages_line(left), flush=True)
            return serve(make_app(lines_ini=lines_ini), host, port)
    finally:
        fake.stop()


DEMO_CODE = "demo-cimade"  # The demo's access code of Lille and Lyon: messages show only behind a code.


def give_demo_codes(settings):
    """Give the demo's Lille and Lyon their access code, in the demo's own folder."""
    slugs = {slug for slug in ("lille", "lyon") if slug in settings.groups}
    for slug in slugs:
        write_access_code(settings.access_codes, slug, hash_code(DEMO_CODE))
    write_coded_groups(settings, read_coded_groups(settings) | slugs)


def demo_messages_line(left):
    """The demo's console line that says where its voicemail messages are, and how to see them."""
    from .simulator import LILLE_NUMBER, LYON_NUMBER

    counts = " et ".join(f"{left.get(number, 0)} pour {name}" for name, number in (("Lille", LILLE_NUMBER),
                                                                                    ("Lyon", LYON_NUMBER)))  # fmt: skip
    return (f"Démo : messages sur répondeur, {counts} : en bas des pages /lille et /lyon, "
            f"code d'accès « {DEMO_CODE} »")  # fmt: skip


def write_demo_folder(folder, fake, copy=None):
    """Copy lines.ini into `folder` with an ovh.conf on the simulator and a data folder there; return the copy.

    On a `copy` of the account, each group takes the fictional billing account of its number there.
    The queue groups get a month of simulated records: the checkout's data/
    keeps only real ones.
    """
    from .simulator import statistics_history

    parser = read_ini(LINES_INI)
    parser[SETTINGS_SECTION].update(ovh_conf="ovh.conf", data_dir="data", activity_log="data/activity.log")
    accounts = copied_accounts(copy) if copy else {}
    for section in parser.sections():
        number = parser.get(section, "number", fallback="").strip()
        if number in accounts:
            parser[section]["billing_account"] = accounts[number]
    lines_ini = folder / "lines.ini"
    with open(lines_ini, "w", encoding="utf-8") as file:
        parser.write(file)
    fake.write_ovh_conf(folder / "ovh.conf")
    settings = load_settings(lines_ini)
    for group in settings.groups.values():
        if group.kind == "queue":
            for record in statistics_history(clock.now(settings.timezone)):
                append_record(record_path(settings, group, datetime.fromisoformat(record["time"])), record)
    return lines_ini


def kind_hint(client, group):
    """When OVH knows the group's number as the other kind of line, the sentence that says so; else None.

    For a key without the rules of line_mistake (made by an earlier version): it tries the other kind's path.
    """
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


def describe_line(client, group, moment):
    """Read the line a group needs at OVH; a French description of it, and the problems found."""
    if group.kind == "redirect":
        line = RedirectLine(client, group, moment)
        client.get(f"/telephony/{group.billing_account}/line/{line.sip_line()}")
        line.read_state()
        return f"renvoi vers la ligne SIP {format_phone(line.sip_line())}", []
    client.get(f"/telephony/{group.billing_account}/easyHunting/{group.number}")
    line = QueueLine(client, group, moment)
    problems = [CONDITIONS_OFF_STEP] if line.read_state().conditions_off else []
    return f"file d'appels n° {line.queue_id()}", problems


def check_group(client, group, moment):
    """Check that OVH has the line a group needs: (a French description of it, the problems found, mistaken).

    `mistaken` is True when lines.ini is wrong about the group (kind, billing account, number):
    that is named first, before the key's rights, which follow from lines.ini.
    """
    import ovh.exceptions

    try:
        return (*named_mistake(client, group, describe_line, client, group, moment), False)
    except OvhFailure as failure:
        return "", [explain_for_it(failure)], failure.reason in LINE_MISTAKES
    except ovh.exceptions.ResourceNotFoundError as error:
        return "", [kind_hint(client, group) or explain_for_it(error)], False
    except Exception as error:
        return "", [explain_for_it(error)], False


PACKAGE = Path(__file__).resolve().parent


def stale_bytecode(package=PACKAGE):
    """The modules of the package whose compiled bytecode, for this python3, is missing or older than their source.

    Python saves the bytecode of the modules it imports in __pycache__, but the web server cannot
    write there in a checkout that root owns: without `python3 -m compileall` (README, "Installer"),
    every CGI process compiles the package again, and starts several times slower.
    """
    return [source for source in sorted(package.rglob("*.py")) if not fresh_bytecode(source)]


def fresh_bytecode(source):
    """Whether Python runs the bytecode saved for `source` as it is, without compiling the source again."""
    import importlib.util

    try:
        with open(importlib.util.cache_from_source(source), "rb") as file:
            header = file.read(16)
        info = source.stat()
    except OSError:
        return False
    if len(header) < 16 or header[:4] != importlib.util.MAGIC_NUMBER:
        return False  # Compiled by another version of Python.
    if int.from_bytes(header[4:8], "little") & 1:  # Keyed by the source's hash (SOURCE_DATE_EPOCH builds).
        return header[8:16] == importlib.util.source_hash(source.read_bytes())
    mtime, size = int.from_bytes(header[8:12], "little"), int.from_bytes(header[12:16], "little")
    return (mtime, size) == (int(info.st_mtime) & 0xFFFFFFFF, info.st_size & 0xFFFFFFFF)


def bytecode_warning(package=PACKAGE):
    """The warning --check prints when the package's bytecode is missing or stale, with the command that fixes it."""
    stale = stale_bytecode(package)
    if not stale:
        return None
    names = ", ".join(str(source.relative_to(package)) for source in stale[:3])
    more = f" et {len(stale) - 3} autre(s)" if len(stale) > 3 else ""
    command = f"{shlex.quote(sys.executable)} -m compileall -q {shlex.quote(str(package))}"
    return (
        f"Attention : le code compilé de {package.name} manque ou n'est plus à jour ({names}{more}) : la page "
        f"marche, mais chaque page servie en CGI le recompile et s'affiche plus lentement ; en root : {command}"
    )


def virtualenv_problem(settings, venv=ROOT / ".venv3"):
    """Why the web server's user cannot run .venv3's python with the page's packages, as cron does; None when it can.

    Run by root, the python of .venv3 is started as the web server's user: one made by a python3
    in a folder that user cannot enter (a pyenv in /root) works for root only.
    """
    import os
    import subprocess

    user = web_user(settings) if os.geteuid() == 0 else None
    as_user, who = {}, "cette commande"
    if user is not None and user.pw_uid != 0:
        groups = os.getgrouplist(user.pw_name, user.pw_gid)
        as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": groups}
        who = f"le serveur web ({user.pw_name})"
    python = venv / "bin" / "python"
    try:
        ran = subprocess.run(
            [str(python), "-c", "import ovh, flup"], env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, cwd="/",
            capture_output=True, text=True, timeout=60, **as_user,
        )  # fmt: skip
    except OSError as error:
        why = os_error_text(error)
    except subprocess.TimeoutExpired:
        why = "pas de réponse en 60 s"
    else:
        if ran.returncode == 0:
            return None
        lines = ran.stderr.strip().splitlines()
        why = lines[-1] if lines else f"code de sortie {ran.returncode}"
    return (
        f"{who} ne peut pas lancer {python} ({why}), que cron lance pour stats.py : recréez .venv3 avec le python3 "
        f"de Debian, en root : cd {venv.parent} && rm -rf .venv3 && {VENV_COMMAND}"
    )


def code_marks(settings):
    """(the groups closed because their code is lost, the groups with a code that lines.ini does not mark).

    A group had a code when lines.ini (access_code = yes) or data/access-codes.groups says so.
    """
    marked = {group.slug for group in settings.groups.values() if group.access_code}
    coded = set(read_access_codes(settings.access_codes)) & set(settings.groups)
    return (marked | read_coded_groups(settings)) & set(settings.groups) - coded, coded - marked


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
    venv_problem = virtualenv_problem(settings)
    if venv_problem:
        print(f"ERREUR : {venv_problem}")
        problems += 1
    for exposed in exposed_secrets(settings):
        print(f"Attention : {exposed}")
    page_blind = not page_can_read(settings, app.ovh_conf or settings.ovh_conf)
    try:
        closed, unmarked = code_marks(settings)
    except (ConfigError, OSError) as error:
        print(f"ERREUR : {error}")
        problems += 1
        closed, unmarked = set(), set()
    for slug in sorted(unmarked):  # Coded before lines.ini was marked, or the mark lost with a copy put in place.
        print(f"Attention [{slug}] : ce groupe a un code d'accès que {settings.path} ne marque pas : perdre "
              "access-codes.ini et data/ ouvrirait sa page à tous ; ajoutez la ligne « access_code = yes » "
              "à sa section")  # fmt: skip
    warning = bytecode_warning()
    if warning:
        print(warning)
    credential = None
    try:
        client = app.client(settings)
        credential = client.get(CURRENT_CREDENTIAL)
    except ovh.exceptions.NotGrantedCall:
        pass  # An old key that cannot describe itself: check_coverage says what to do.
    except Exception as error:
        print(f"ERREUR : {explain_for_it(error)}")
        return 1
    moment = clock.now(settings.timezone)
    mistaken = set()  # Groups whose lines.ini is wrong: fixed first, then the key (check_coverage) is seen to.
    boxes = resolve_boxes(client, settings, moment)
    for group in settings.groups.values():
        described, group_problems, wrong = check_group(client, group, moment)
        if wrong:
            mistaken.add(group.slug)
        if not group_problems and group.slug in boxes:
            described += boxes_words(boxes[group.slug])
            group_problems += box_problems(client, group, boxes[group.slug])
        if group.slug in closed:
            set_again = script_command("index.py", "--set-code", group.slug)
            group_problems.append(
                f"le groupe avait un code d'accès et {settings.access_codes} n'en a plus : sa page est fermée ; "
                f"remettez ce fichier (sauvegarde) ou redonnez un code : {set_again}"
            )
        if page_blind:  # Root reads the line, the page cannot: nothing works for the volunteers.
            group_problems.append(f"la page ne peut pas lire {app.ovh_conf or settings.ovh_conf} (voir plus haut)")
        for problem in group_problems:
            print(f"ERREUR [{group.slug}] {format_phone(group.number)} : {problem}")
        if not group_problems:
            print(f"ok     [{group.slug}] {format_phone(group.number)} : {described}")
            for loss in losses_or_nothing(client, group, moment):
                print(f"Attention [{group.slug}] {format_phone(group.number)} : {loss}")
        problems += len(group_problems)
    if not check_coverage(client, settings, verbose=False, skipped=mistaken, boxes=boxes):
        problems += 1
    if credential is not None:
        print_expiration(credential, settings.timezone, moment)
    if snapshot:
        problems += write_snapshot(client, settings, snapshot)
    return 1 if problems else 0


def losses_or_nothing(client, group, moment):
    """The group's settings that lose callers (voicemail.check_losses); none when OVH does not answer: said above."""
    try:
        return check_losses(client, group, moment)
    except Exception:
        return []


def boxes_words(boxes):
    """The end of a group's --check line that names its voicemail boxes."""
    if not boxes:
        return " ; aucun répondeur (les appels sans réponse n'y laissent pas de message)"
    return f" ; répondeur{'s' if len(boxes) > 1 else ''} : " + ", ".join(format_phone(box) for box in boxes)


def print_expiration(credential, zone, moment):
    """Say when the key expires, in the groups' time zone, and warn when it is close, as the page mails IT."""
    expiration = parse_ovh_datetime(credential.get("expiration"), zone)
    print("Clé OVH : " + (f"expire le {format_day_time(expiration)}" if expiration else "sans date d'expiration"))
    if expiration and expiration - moment <= EXPIRY_NOTICE:
        days = EXPIRY_NOTICE.days
        print(f"Attention : la clé OVH expire dans moins de {days} jours ; créez-en une : "
              + script_command("create_consumer_key.py"))  # fmt: skip


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
            mark_access_code(settings.path, group.slug, False)
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

        had_one = group.slug in read_access_codes(settings.access_codes)
        write_access_code(settings.access_codes, group.slug, hash_code(code), share)
        write_coded_groups(settings, read_coded_groups(settings) | {group.slug})
        mark_access_code(settings.path, group.slug, True)
    except OSError as error:
        where = error.filename or settings.access_codes
        print(f"ERREUR : {where} : écriture impossible ({os_error_text(error)}) ; relancez la commande en root.")
        return 1
    except ConfigError as error:
        print(f"ERREUR : {error}")
        return 1
    print(f"{group.name} : code d'accès enregistré dans {settings.access_codes}.")
    if had_one:
        print("Les bénévoles déjà entrés avec l'ancien code devront saisir le nouveau.")
    else:
        print("Donnez ce code aux bénévoles du groupe : la page le leur demande avant de s'afficher.")
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
