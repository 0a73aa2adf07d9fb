"""lines.ini, and index.py run the ways IT runs it: --check, --demo, plain CGI."""

import grp
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
import apache
from apache import APACHE_ENV, free_port
from webpage import PARIS, text, write_lines_ini

from cimade_ovh.clock import format_day_time
from cimade_ovh.config import ConfigError, load_settings
from cimade_ovh.rules import mistake_rules, required_rules
from cimade_ovh.simulator import DEMO_APPLICATION_SECRET, DEMO_CONSUMER_KEY, LILLE_NUMBER

ROOT = Path(__file__).resolve().parent.parent
GOOD = """
[settings]
contact = IT

[lyon]
name = Lyon
kind = queue
billing_account = ab12345-ovh-1
number = 0033465710000
"""


def write(tmp_path, text):
    path = tmp_path / "lines.ini"
    path.write_text(text, encoding="utf-8")
    return path


# --- lines.ini ----------------------------------------------------------------


def test_the_example_lines_ini_holds_the_demo_groups():
    settings = load_settings(ROOT / "lines.ini")
    assert {slug: group.kind for slug, group in settings.groups.items()} == {"lyon": "queue", "lille": "redirect"}
    assert settings.groups["lyon"].ring_timeout == 10
    assert settings.groups["lyon"].max_volunteers == 2, "the demo lets a person try two volunteers"
    assert settings.groups["lille"].max_volunteers == 1
    assert settings.ovh_conf == ROOT / "ovh.conf"
    assert settings.activity_log == ROOT / "data" / "activity.log"
    assert str(settings.timezone) == "Europe/Paris"


def test_relative_paths_are_resolved_from_the_file_not_the_current_directory(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    path = write(tmp_path / "conf", GOOD.replace("contact = IT", "ovh_conf = keys/ovh.conf\ndata_dir = ../var"))
    monkeypatch.chdir("/")
    settings = load_settings(path)
    assert settings.ovh_conf == tmp_path / "conf" / "keys" / "ovh.conf"
    assert settings.data_dir == tmp_path / "var"
    assert settings.activity_log == tmp_path / "var" / "activity.log"


def test_defaults(tmp_path):
    settings = load_settings(write(tmp_path, GOOD))
    assert settings.notify == ()
    assert settings.sendmail == ("/usr/sbin/sendmail", "-t", "-oi")
    assert settings.groups["lyon"].contact == ""
    assert settings.groups["lyon"].ring_timeout == 10
    assert settings.groups["lyon"].max_volunteers == 1
    assert settings.groups["lyon"].agent_description == "Bénévole Lyon (cimade-ovh)"


def mistake(path):
    """The message of the mistake in lines.ini: the whole file's, or else its one broken group's."""
    try:
        settings = load_settings(path)
    except ConfigError as error:
        return str(error)
    [message] = settings.broken.values()
    return message


@pytest.mark.parametrize(
    "change, message",
    [
        (("name = Lyon\n", ""), r"section \[lyon\] : la clé « name » manque"),
        (("kind = queue", "kind = queu"), r"section \[lyon\], clé « kind » : « queu » inconnu"),
        (("number = 0033465710000", "number = 04 65 71 00 00"), r"section \[lyon\], clé « number »"),
        (("kind = queue", "kind = queue\nring_timeout = dix"), r"section \[lyon\], clé « ring_timeout »"),
        (("kind = queue", "kind = queue\nmax_volunteers = 0"), r"\[lyon\], clé « max_volunteers » : « 0 » n'est pas"),
        (("kind = queue", "kind = queue\nmax_volunteers = deux"), r"\[lyon\], clé « max_volunteers » : « deux »"),
        (
            ("kind = queue", "kind = redirect\nmax_volunteers = 2"),
            r"\[lyon\], clé « max_volunteers » : un renvoi \(kind = redirect\) ne sonne que sur un numéro",
        ),
        (("contact = IT", "timezone = Europe/Lyon"), r"section \[settings\], clé « timezone »"),
        (("[settings]", "[global]"), r"la section \[settings\] manque"),
        (("[lyon]", "[lyon/centre]"), r"section \[lyon/centre\] : ce nom ne peut pas servir d'adresse"),
    ],
)
def test_mistakes_name_the_file_section_and_key(tmp_path, change, message):
    path = write(tmp_path, GOOD.replace(*change))
    found = mistake(path)
    assert re.search(message, found) and str(path) in found


@pytest.mark.parametrize(
    "change, message",
    [
        (("number =", "numbre ="), r"section \[lyon\] : clé inconnue « numbre » : vouliez-vous dire « number » \?"),
        (
            ("kind = queue", "kind = queue\nring_timout = 15"),
            r"clé inconnue « ring_timout » : vouliez-vous dire « ring_timeout »",
        ),
        (
            ("kind = queue", "kind = queue\nmax_volunteer = 2"),
            r"« max_volunteer » : vouliez-vous dire « max_volunteers »",
        ),
        (("kind = queue", "kind = queue\ncolour = red"), r"clé inconnue « colour » \(clés connues : name, kind,"),
        (
            ("contact = IT", "contact = IT\ntimezon = UTC"),
            r"\[settings\] : clé inconnue « timezon » : vouliez-vous dire « timezone »",
        ),
    ],
)
def test_misspelt_keys_are_named_with_a_suggestion(tmp_path, change, message):
    assert re.search(message, mistake(write(tmp_path, GOOD.replace(*change))))


def test_a_broken_section_breaks_only_its_own_group(tmp_path):
    path = write(
        tmp_path, GOOD + GOOD.split("contact = IT")[1].replace("[lyon]", "[lille]").replace("number =", "numbre =")
    )
    settings = load_settings(path)
    assert list(settings.groups) == ["lyon"]
    assert list(settings.broken) == ["lille"]


def test_two_new_groups_on_one_number_are_both_refused(tmp_path):
    path = write(tmp_path, GOOD + GOOD.split("contact = IT")[1].replace("[lyon]", "[lyon2]"))
    settings = load_settings(path)
    assert list(settings.groups) == [], "no way to tell which one was there first: neither is served"
    also = "clé « number » : 0033465710000 est aussi le numéro du groupe"
    assert f"[lyon2], {also} [lyon]" in settings.broken["lyon2"]
    assert f"[lyon], {also} [lyon2]" in settings.broken["lyon"]


def test_a_new_section_above_a_group_on_the_same_number_breaks_only_itself(site, ovh_client):
    site.act("/lyon/start", {"number": "06 39 98 00 01"})
    before = site.lines_ini.read_text(encoding="utf-8")
    above = "[lyon-nord]\nname = Lyon Nord\nkind = queue\nbilling_account = ab12345-ovh-1\nnumber = 0033465710000\n\n"
    site.lines_ini.write_text(before.replace("[lyon]", above + "[lyon]"), encoding="utf-8")
    os.utime(site.lines_ini, (1, 1))
    page = site.get("/lyon")
    assert page.status_code == 200
    assert "Lyon Nord" not in page.text and "Permanence en cours" in text(page)
    broken = site.get("/lyon-nord")
    assert broken.status_code == 500
    assert "0033465710000 est déjà le numéro du groupe [lyon], qui a servi" in text(broken)
    result = run_index("--check", env={"LINES_INI": str(site.lines_ini)})
    assert "ok     [lyon] 04 65 71 00 00" in result.stdout
    assert "ERREUR [lyon-nord]" in result.stdout and "donnez son propre numéro à [lyon-nord]" in result.stdout


def test_duplicate_slugs_are_refused_whatever_their_case(tmp_path):
    path = write(tmp_path, GOOD + GOOD.split("[settings]\ncontact = IT")[1].replace("[lyon]", "[Lyon]"))
    assert re.search(r"section \[Lyon\] : le groupe « lyon » est déjà défini", mistake(path))


def test_duplicate_keys_are_refused(tmp_path):
    path = write(tmp_path, GOOD.replace("kind = queue", "kind = queue\nkind = redirect"))
    with pytest.raises(ConfigError, match=r"section \[lyon\], clé « kind » \(ligne 8\) : clé déjà donnée"):
        load_settings(path)


def test_a_broken_lines_ini_gives_a_french_error_page(site):
    site.lines_ini.write_text("[lyon]\nname = Lyon\n", encoding="utf-8")
    response = site.get("/lyon")
    assert response.status_code == 500
    assert "La configuration de la page contient une erreur" in response.text


def test_a_mistake_in_a_new_section_leaves_the_other_groups_serving(site):
    assert site.get("/lyon").status_code == 200
    with open(site.lines_ini, "a", encoding="utf-8") as file:
        file.write(
            "\n[grenoble]\nname = Grenoble\nkind = queue\nbilling_account = ab12345-ovh-1\nnumbre = 0033465719999\n"
        )
    broken = site.get("/grenoble")
    assert broken.status_code == 500
    assert "La configuration de ce groupe contient une erreur" in text(broken)
    assert "lines.ini, section [grenoble] : clé inconnue « numbre » : vouliez-vous dire « number » ?" in text(broken)
    assert str(site.folder) not in broken.text, "the page names the file, not where it lies"
    assert site.get("/lyon").status_code == 200 and site.get("/lille").status_code == 200
    index_page = site.get("/")
    assert index_page.status_code == 200 and 'href="/lyon"' in index_page.text and "/grenoble" not in index_page.text


def test_a_broken_settings_section_keeps_the_last_good_configuration(site, caplog):
    assert site.get("/lille").status_code == 200
    good = site.lines_ini.read_text(encoding="utf-8")
    site.lines_ini.write_text(good.replace("timezone = Europe/Paris", "timezone = Europe/Lyon"), encoding="utf-8")
    for _ in range(2):
        assert site.get("/lille").status_code == 200
        assert site.get("/").status_code == 200
    assert "clé « timezone » : fuseau horaire inconnu « Europe/Lyon »" in caplog.text
    assert "keeps serving the configuration it read before" in caplog.text
    [mail] = [m for m in site.mails() if "lines.ini" in m["Subject"]]
    assert "Europe/Lyon" in mail.get_content() and "--check" in mail.get_content()
    site.lines_ini.write_text("[lille\n", encoding="utf-8")  # Not even an ini file.
    assert site.get("/lille").status_code == 200
    assert len([m for m in site.mails() if "lines.ini" in m["Subject"]]) == 2


def test_a_group_added_to_lines_ini_appears_without_restart(site):
    assert "/lyon2" not in site.get("/").text
    text = site.lines_ini.read_text(encoding="utf-8")
    site.lines_ini.write_text(
        text + "\n[lyon2]\nname = Lyon 2\nkind = queue\nbilling_account = x\nnumber = 0033465710002\n"
    )
    os.utime(site.lines_ini, (1, 1))
    assert 'href="/lyon2"' in site.get("/").text


# --- Command line ---------------------------------------------------------------


def run_index(*args, env=None, cwd="/", **kwargs):
    return subprocess.run(
        [sys.executable, str(ROOT / "index.py"), *args],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,
    )


def test_check_reports_each_group(fake_ovh, tmp_path):
    lines_ini = write_lines_ini(tmp_path, fake_ovh)
    result = run_index("--check", env={"LINES_INI": str(lines_ini)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok     [lyon] 04 65 71 00 00 : file d'appels n° 5001" in result.stdout
    assert "ok     [lille] 03 53 01 00 00 : renvoi vers la ligne SIP 03 53 01 00 01" in result.stdout
    assert "Clé OVH : sans date d'expiration" in result.stdout


def test_check_shows_the_key_s_expiry_in_paris_time_and_warns_when_it_is_close(fake_ovh, tmp_path):
    lines_ini = write_lines_ini(tmp_path, fake_ovh)
    expiration = (datetime.now(PARIS) + timedelta(days=3)).replace(hour=0, minute=30, second=0, microsecond=0)
    key = fake_ovh.create_credential(required_rules(load_settings(lines_ini)), expiration=expiration)
    conf = tmp_path / "ovh.conf"
    conf.write_text(conf.read_text(encoding="utf-8").replace(DEMO_CONSUMER_KEY, key), encoding="utf-8")
    result = run_index("--check", env={"LINES_INI": str(lines_ini)})
    assert f"Clé OVH : expire le {format_day_time(expiration)}" in result.stdout, result.stdout  # 00:30 in Paris.
    assert "Attention : la clé OVH expire dans moins de 7 jours ; créez-en une : /usr/bin/python3 " in result.stdout
    assert result.returncode == 0


def test_check_names_a_group_ovh_does_not_know(fake_ovh, tmp_path):
    lines_ini = write_lines_ini(tmp_path, fake_ovh)
    with open(lines_ini, "a", encoding="utf-8") as file:
        file.write("\n[grenoble]\nname = Grenoble\nkind = redirect\nbilling_account = ab12345-ovh-1\n")
        file.write("number = 0033465719999\n")
    result = run_index("--check", env={"LINES_INI": str(lines_ini)})
    assert result.returncode == 1
    assert "ERREUR [grenoble] 04 65 71 99 99 : OVH ne connaît pas le numéro 04 65 71 99 99 dans le compte de " \
        "facturation ab12345-ovh-1 : vérifiez number (et billing_account) dans lines.ini" in result.stdout  # fmt: skip


def test_check_names_a_wrong_kind(fake_ovh, tmp_path):
    groups = {"lyon": {"kind": "redirect", "max_volunteers": "1"}, "lille": {"kind": "queue"}}
    result = run_index("--check", env={"LINES_INI": str(write_lines_ini(tmp_path, fake_ovh, groups))})
    assert result.returncode == 1
    assert "ERREUR [lyon] 04 65 71 00 00 : ce numéro est une file d'appels chez OVH : kind = queue ?" in result.stdout
    assert "ERREUR [lille] 03 53 01 00 00 : ce numéro est une redirection chez OVH : kind = redirect ?" in result.stdout


def test_check_with_a_narrow_key_of_an_earlier_version_says_a_wrong_kind_may_be_the_cause(fake_ovh, tmp_path):
    lines_ini = write_lines_ini(tmp_path, fake_ovh, {"lille": {"kind": "queue"}})
    settings = load_settings(lines_ini)
    key = fake_ovh.create_credential([r for r in required_rules(settings) if r not in mistake_rules(settings)])
    conf = tmp_path / "ovh.conf"
    conf.write_text(conf.read_text(encoding="utf-8").replace(DEMO_CONSUMER_KEY, key), encoding="utf-8")
    result = run_index("--check", env={"LINES_INI": str(lines_ini)})
    assert result.returncode == 1
    assert "ERREUR [lille] 03 53 01 00 00 : OVH ne connaît pas une file d'appels à ce numéro" in result.stdout
    assert "si oui, kind = redirect ?" in result.stdout


def test_check_says_when_the_compiled_code_is_missing_or_stale(fake_ovh, tmp_path):
    """The web server cannot write __pycache__ in a checkout root owns: without compileall, CGI starts slower."""
    copy = tmp_path / "site"
    shutil.copytree(ROOT / "cimade_ovh", copy / "cimade_ovh", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "index.py", copy)
    (copy / ".venv3").symlink_to(sys.prefix)  # The virtualenv running the tests: the site's .venv3.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(copy / "cimade_ovh")], check=True)

    def check():  # As root runs it, without writing bytecode itself.
        return subprocess.run(
            [sys.executable, str(copy / "index.py"), "--check"], capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "LINES_INI": str(write_lines_ini(tmp_path, fake_ovh))},
        )  # fmt: skip

    compiled = check()
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    assert "compil" not in compiled.stdout
    later = (copy / "cimade_ovh" / "config.py").stat().st_mtime + 10
    os.utime(copy / "cimade_ovh" / "config.py", (later, later))  # Changed since it was compiled.
    (copy / "cimade_ovh" / "__pycache__" / f"pages.{sys.implementation.cache_tag}.pyc").unlink()
    stale = check()
    assert stale.returncode == 0, stale.stdout  # The page works, only slower.
    assert (
        "Attention : le code compilé de cimade_ovh manque ou n'est plus à jour (config.py, pages.py) : la page marche, "
        "mais chaque page servie en CGI le recompile et s'affiche plus lentement ; "
        f"en root : {sys.executable} -m compileall -q {copy / 'cimade_ovh'}\n"
    ) in stale.stdout
    assert "ok     [lyon]" in stale.stdout


def test_check_reports_a_broken_lines_ini(tmp_path):
    result = run_index("--check", env={"LINES_INI": str(write(tmp_path, "[lyon]\n"))})
    assert result.returncode == 1
    assert "la section [settings] manque" in result.stdout


def run_script(script, *args, lines_ini):
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args], env={**os.environ, "LINES_INI": str(lines_ini)},
        cwd="/", capture_output=True, text=True, timeout=60,
    )  # fmt: skip


USAGE_MISTAKES = {
    "index.py": "index.py : il manque ce qu'il faut faire, l'une des options --demo --serve --check --set-code "
    "--remove-code --unlock ; voir index.py --help.",
    "index.py --demo --port abc": "index.py : --port : « abc » n'est pas un numéro de port (0 à 65535) ; "
    "voir index.py --help.",
    "index.py --check --bogus": "index.py : option inconnue : --bogus ; voir index.py --help.",
    "index.py --chek": "index.py : option inconnue : --chek (vouliez-vous dire --check ?) ; voir index.py --help.",
    "index.py --unlok lyon": "index.py : option inconnue : --unlok (vouliez-vous dire --unlock ?) ; "
    "voir index.py --help.",
    "stats.py --dyas 3": "stats.py : option inconnue : --dyas ; voir stats.py --help.",
    "index.py --demo --check": "index.py : --check : ne va pas avec --demo ; voir index.py --help.",
    "create_consumer_key.py --timeout x": "create_consumer_key.py : --timeout : « x » n'est pas un nombre "
    "entier de secondes de 1 à 86400 (un jour) ; voir create_consumer_key.py --help.",
    "create_consumer_key.py --poll -1": "create_consumer_key.py : --poll : « -1 » n'est pas un nombre de secondes "
    "de 0,1 à 300 ; voir create_consumer_key.py --help.",
    "stats.py foo": "stats.py : COMMANDE : « foo » n'est pas une commande connue ; voir stats.py --help.",
    "stats.py report --days 800000": "stats.py report : --days : « 800000 » n'est pas un nombre de jours de 1 à "
    "3660 (dix ans) ; voir stats.py report --help.",
}


@pytest.mark.parametrize("mistake", USAGE_MISTAKES)
def test_a_usage_mistake_is_one_french_sentence_with_where_the_help_is(fake_ovh, tmp_path, mistake):
    result = run_script(*mistake.split(), lines_ini=write_lines_ini(tmp_path, fake_ovh))
    assert (result.returncode, result.stdout, result.stderr) == (2, "", USAGE_MISTAKES[mistake] + "\n")


def test_a_port_already_taken_is_one_french_sentence(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_index("--demo", "--port", str(port))
    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout.endswith(
        f"ERREUR : impossible d'écouter sur 127.0.0.1:{port} (adresse déjà prise par un autre programme) ; "
        "choisissez un autre --port.\n"
    )


@pytest.mark.parametrize(
    "host, cause",
    [("256.1.1.1", "nom ou adresse inconnus"), ("192.0.2.1", "cette adresse n'est pas l'une de ce serveur")],
)
def test_a_wrong_host_is_one_french_sentence_that_points_at_it(host, cause):
    result = run_index("--demo", "--host", host, "--port", "0")
    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout.endswith(
        f"ERREUR : impossible d'écouter sur {host}:0 ({cause}) ; vérifiez --host (par exemple 127.0.0.1).\n"
    )


@pytest.mark.parametrize("command", ["index.py", "create_consumer_key.py", "stats.py", "stats.py report"])
def test_help_is_in_french(fake_ovh, tmp_path, command):
    result = run_script(*command.split(), "--help", lines_ini=write_lines_ini(tmp_path, fake_ovh))
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith(f"utilisation : {command} [-h]")
    assert "  -h, --help " in result.stdout and "afficher cette aide" in result.stdout
    english = ["usage", "show this help", "positional", "HOST", "GROUP ", "DAYS", "TIMEOUT", "_KEY", "LINES_INI"]
    assert [word for word in english if word in result.stdout] == []


def test_files_that_cannot_be_read_are_explained_in_french(fake_ovh, tmp_path):
    gone = "lecture impossible (le fichier ou son dossier n'existe pas)"
    missing = run_index("--check", env={"LINES_INI": str(tmp_path / "lines.ini")})
    assert missing.stdout == f"ERREUR : {tmp_path / 'lines.ini'} : {gone}\n"
    folder = run_index("--check", env={"LINES_INI": str(tmp_path)})
    assert folder.stdout == f"ERREUR : {tmp_path} : lecture impossible (c'est un dossier, pas un fichier)\n"
    lines_ini = write_lines_ini(tmp_path, fake_ovh)
    (tmp_path / "ovh.conf").unlink()
    no_conf = run_index("--check", env={"LINES_INI": str(lines_ini)})
    assert f"ERREUR : {tmp_path / 'ovh.conf'} : {gone} (voir « Créer les clés OVH » dans le README)." in no_conf.stdout
    state = run_index("--demo", "--state", str(tmp_path / "copie.json"))
    assert state.stdout == (
        f"ERREUR : {tmp_path / 'copie.json'} : ce n'est pas une copie lisible du compte (le fichier ou son dossier "
        "n'existe pas) ; refaites-la avec index.py --check --snapshot FICHIER.\n"
    )
    for result in (missing, folder, no_conf, state):
        assert result.returncode == 1 and "Errno" not in result.stdout and result.stderr == ""


@pytest.mark.parametrize("command", ["--set-code", "--unlock"])
def test_an_unknown_group_is_named_with_the_groups_lines_ini_defines(fake_ovh, tmp_path, command):
    lines_ini = write_lines_ini(tmp_path, fake_ovh)
    with open(lines_ini, "a", encoding="utf-8") as file:
        file.write("\n[Grenoble]\nname = Grenoble\nkind = queue\nbilling_account = ab12345-ovh-1\n")
    unknown = run_index(command, "paris", env={"LINES_INI": str(lines_ini)}, input="un code assez long\n")
    assert (unknown.returncode, unknown.stderr) == (1, "")
    assert unknown.stdout == (
        f"ERREUR : {lines_ini} ne définit pas le groupe « paris » (groupes : lyon, lille ; en erreur, à corriger : "
        "grenoble) : relancez avec l'un d'eux.\n"
    )
    broken = run_index(command, "grenoble", env={"LINES_INI": str(lines_ini)}, input="un code assez long\n")
    assert (broken.returncode, broken.stderr) == (1, "")
    assert broken.stdout == (
        f"ERREUR : {lines_ini}, section [Grenoble] : la clé « number » manque ou est vide ; corrigez le groupe dans "
        "lines.ini, puis relancez.\n"
    )


def test_demo_serves_both_groups_on_the_simulated_account(tmp_path):
    started = time.time()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "index.py"), "--demo", "--port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = None
        said = []
        for _ in range(5):
            said.append(process.stdout.readline())
            url = re.search(r"http://127\.0\.0\.1:\d+/(?= )", said[-1])
            if url:
                break
        assert "Démo : messages sur répondeur, 2 pour Lille et 3 pour Lyon : en bas des pages /lille et /lyon, " \
               "code d'accès « demo-cimade »\n" in said  # fmt: skip
        assert url, "the demo did not print its address"
        http = requests.Session()
        assert "Lyon" in http.get(url[0]).text
        for slug in ("lyon", "lille"):  # The demo's code, as its console says.
            token = re.search(r'name="csrf" value="([^"]+)"', http.get(url[0] + slug).text)[1]
            http.post(url[0] + slug + "/access", data={"code": "demo-cimade", "csrf": token})
        assert "2 messages à traiter sur la messagerie." in text(http.get(url[0] + "lille"))
        assert "3 messages à traiter sur la messagerie." in text(http.get(url[0] + "lyon"))

        def post(path, data):  # With the form token of the group's page, bound to its code.
            token = re.search(r'name="csrf" value="([^"]+)"', http.get(url[0] + path.split("/")[0]).text)[1]
            return http.post(url[0] + path, data={**data, "csrf": token})

        page = text(post("lille/start", {"number": "06 39 98 00 01"}))
        assert "C'est fait : les appels arrivent maintenant sur le 06 39 98 00 01." in page
        page = text(post("lyon/start", {"number": "06 39 98 00 02"}))
        assert "Permanence en cours : 1 bénévole sur 2 au plus. 06 •• •• •• 02 : libre" in page
        page = text(post("lyon/start", {"number": "06 39 98 00 03", "name": "Inès"}))
        assert "C'est fait : le 06 39 98 00 03 reçoit aussi les appels." in page
        team = "2 bénévoles sur 2 au plus. 06 •• •• •• 02 : libre, jusqu'à minuit Retirer Inès, 06 •• •• •• 03 : libre"
        assert team in page
        stats_page = http.get(url[0] + "lyon/stats")
        assert stats_page.status_code == 200 and "<svg" in stats_page.text
        assert re.search(
            r"En tout : \d+ appels, dont \d+ répondus et \d+ perdus?\. 1 jour sans relevé\.", text(stats_page)
        )
    finally:
        process.terminate()
        process.wait(10)
    written = [p for p in (ROOT / "data").rglob("*") if p.stat().st_mtime >= started]
    assert written == [], "the demo must keep its log and statistics out of the checkout's data folder"


# --- Plain CGI -----------------------------------------------------------------


def cgi(lines_ini, method, path, body="", extra_path=(), cookie=""):
    env = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "/index.py",
        "PATH_INFO": path,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "192.0.2.7",
        "LINES_INI": str(lines_ini),
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body.encode())),
        "PYTHONPATH": os.pathsep.join(extra_path),
        "HTTP_COOKIE": cookie,
    }
    result = run_index(env=env, input=body)
    headers, _, page = result.stdout.partition("\n\n")
    return headers, page, result


def test_cgi_serves_the_index_without_importing_the_ovh_client(fake_ovh, tmp_path):
    poison = tmp_path / "poison"
    (poison / "ovh").mkdir(parents=True)
    (poison / "ovh" / "__init__.py").write_text("raise ImportError('the index page must not import ovh')\n")
    headers, page, result = cgi(write_lines_ini(tmp_path, fake_ovh), "GET", "/", extra_path=[str(poison)])
    assert headers.startswith("Status: 200 OK"), result.stdout + result.stderr
    assert 'href="/lyon"' in page


def test_cgi_index_imports_only_what_a_page_needs(fake_ovh, tmp_path):
    """A CGI process starts for every request: what only the command line or an OVH read needs waits for them."""
    env = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "GET", "PATH_INFO": "/", "SERVER_NAME": "localhost",
           "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "LINES_INI": str(write_lines_ini(tmp_path, fake_ovh)),
           "PYTHONPROFILEIMPORTTIME": "1"}  # fmt: skip
    result = run_index(env=env)
    assert result.stdout.startswith("Status: 200 OK"), result.stdout + result.stderr
    imported = {
        line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")
    }
    assert "cimade_ovh.config" in imported
    unneeded = {"cimade_ovh.commands", "cimade_ovh.cli", "cimade_ovh.simulator", "cimade_ovh.snapshot", "argparse",
                "concurrent.futures", "difflib", "secrets"}  # fmt: skip
    assert imported & unneeded == set()


def test_cgi_runs_an_action(fake_ovh, tmp_path):
    lines_ini = write_lines_ini(tmp_path, fake_ovh)
    headers, page, _ = cgi(lines_ini, "GET", "/lille")
    cookie = re.search(r"Set-Cookie: (csrf=[^;]+)", headers)[1]
    token = re.search(r'name="csrf" value="([^"]+)"', page)[1]
    headers, _, result = cgi(lines_ini, "POST", "/lille/start", f"number=06+39+98+00+01&csrf={token}", cookie=cookie)
    assert headers.startswith("Status: 303"), result.stdout + result.stderr
    assert "Location: /lille" in headers
    assert fake_ovh.who_rings(LILLE_NUMBER) == ["0033639980001"]
    assert "\tlille\tstart\t0033639980001\t192.0.2.7\tok" in (tmp_path / "data" / "activity.log").read_text()


def test_the_page_s_lines_in_apache_s_error_log_carry_their_time_and_client(fake_ovh, tmp_path):
    lines_ini = write_lines_ini(tmp_path, fake_ovh)
    (tmp_path / "ovh.conf").unlink()  # The page logs why it cannot read the line.
    headers, _, result = cgi(lines_ini, "GET", "/lille")
    assert headers.startswith("Status: 200 OK"), result.stdout + result.stderr
    logged = [line for line in result.stderr.splitlines() if "reading lille failed" in line]
    assert logged and re.match(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} cimade-ovh: ERROR: \[client 192\.0\.2\.7\] ", logged[0]
    )


# --- OVH failures on the command line -------------------------------------------

BROKEN_OVH = {
    "unreachable": (
        ("endpoint = {url}", "endpoint = http://127.0.0.1:{closed}/1.0"),
        "Impossible de joindre OVH depuis ce serveur",
    ),
    "unknown endpoint": (
        ("endpoint = {url}", "endpoint = ovh-euu"),
        "endpoint = ovh-euu dans ovh.conf n'est pas un nom connu",
    ),
    "wrong secret": ((DEMO_APPLICATION_SECRET, "x" * 32), "l'application_secret de ovh.conf est faux"),
    "revoked key": ((DEMO_CONSUMER_KEY, "y" * 32), "La clé d'accès (consumer_key de ovh.conf) n'est plus valable"),
}
TOOLS = {
    "index.py --check": ["index.py", "--check"],
    "stats.py": ["stats.py"],
    "create_consumer_key.py --check": ["create_consumer_key.py", "--check", "--lines-ini", "{lines_ini}"],
}


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("cause", BROKEN_OVH)
def test_command_line_tools_name_the_ovh_failure(fake_ovh, tmp_path, tool, cause):
    lines_ini = write_lines_ini(tmp_path, fake_ovh)
    conf = tmp_path / "ovh.conf"
    (old, new), sentence = BROKEN_OVH[cause]
    values = {"url": fake_ovh.url, "closed": free_port()}
    conf.write_text(
        conf.read_text(encoding="utf-8").replace(old.format(**values), new.format(**values)), encoding="utf-8"
    )
    command = [part.format(lines_ini=lines_ini) for part in TOOLS[tool]]
    result = subprocess.run(
        [sys.executable, str(ROOT / command[0]), *command[1:]], env={**os.environ, "LINES_INI": str(lines_ini)},
        cwd="/", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert sentence in output and "Traceback" not in output
    assert "Il faut créer une nouvelle clé" not in output and "sans date d'expiration" not in output
    assert len(output.splitlines()) <= 4, output


# --- Run by root ------------------------------------------------------------------

# What root runs, as the README says: the system's python3 (the tests' own may be unreadable by www-data).
SYSTEM_PYTHON = shutil.which("python3", path=APACHE_ENV["PATH"])
AS_ROOT = pytest.mark.skipif(os.geteuid() != 0 or not SYSTEM_PYTHON, reason="needs root and the system's python3")


@pytest.fixture
def installed(fake_ovh):
    """A folder installed as the README says: root owns it, www-data reads ovh.conf and owns data/."""
    try:
        web = pwd.getpwnam("www-data")
    except KeyError:
        pytest.skip("no user www-data")
    folder = Path(tempfile.mkdtemp(prefix="cimade-ovh-installed-"))
    folder.chmod(0o755)
    lines_ini = write_lines_ini(folder, fake_ovh, web_user="www-data")
    os.chown(folder / "ovh.conf", 0, web.pw_gid)
    (folder / "ovh.conf").chmod(0o640)
    os.chown(folder / "data", web.pw_uid, web.pw_gid)
    (folder / "data").chmod(0o750)
    yield lines_ini
    shutil.rmtree(folder, ignore_errors=True)


def test_an_ovh_conf_every_local_user_can_read_is_named_with_its_fix(fake_ovh, tmp_path):
    lines_ini = write_lines_ini(tmp_path, fake_ovh)
    conf = tmp_path / "ovh.conf"
    conf.chmod(0o644)
    warning = f"Attention : {conf} est lisible par tous les utilisateurs de ce serveur (rw-r--r--) : chmod o-rwx {conf}"
    check = run_index("--check", env={"LINES_INI": str(lines_ini)})
    assert warning in check.stdout.splitlines(), check.stdout
    stats = run_script("stats.py", lines_ini=lines_ini)
    assert f"stats.py : {warning}" in stats.stderr.splitlines(), stats.stderr
    conf.chmod(0o640)
    assert "lisible par tous" not in run_index("--check", env={"LINES_INI": str(lines_ini)}).stdout


@AS_ROOT
def test_check_says_no_group_is_ok_while_the_web_server_cannot_read_ovh_conf(installed):
    conf = installed.parent / "ovh.conf"
    conf.chmod(0o600)
    check = run_index("--check", env={"LINES_INI": str(installed)})
    assert check.returncode == 1
    assert "ok     [" not in check.stdout, check.stdout
    assert "ERREUR [lille] 03 53 01 00 00 : la page ne peut pas lire " in check.stdout


@AS_ROOT
def test_set_code_as_root_leaves_access_codes_readable_by_the_web_server(installed):
    result = run_index("--set-code", "lille", env={"LINES_INI": str(installed)}, input="un code assez long\n")
    assert result.returncode == 0, result.stdout
    info = (installed.parent / "access-codes.ini").stat()
    assert (info.st_uid, grp.getgrgid(info.st_gid).gr_name, stat.S_IMODE(info.st_mode)) == (0, "www-data", 0o640)
    check = run_index("--check", env={"LINES_INI": str(installed)})
    assert "ne peut pas" not in check.stdout, check.stdout


@AS_ROOT
def test_serve_run_by_root_goes_on_as_the_web_server(installed):
    process = subprocess.Popen(
        [SYSTEM_PYTHON, str(ROOT / "index.py"), "--serve", "--port", "0"],
        env={**os.environ, "LINES_INI": str(installed)}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        said = process.stdout.readline() + process.stdout.readline()
        assert "la page tourne en tant que www-data" in said
        url = re.search(r"http://127\.0\.0\.1:\d+/", said)[0]
        assert requests.get(url + "lille", timeout=30).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
    data = installed.parent / "data"
    made = [data / "secret.key", *data.rglob("*")]
    assert {pwd.getpwuid(path.stat().st_uid).pw_name for path in made} == {"www-data"}
    assert not any(path.stat().st_mode & 0o007 for path in made), "other local users read nothing"
    check = run_index("--check", env={"LINES_INI": str(installed)})
    assert "ne peut pas" not in check.stdout, check.stdout


@AS_ROOT
def test_stats_run_by_root_writes_as_the_web_server_whatever_the_umask(installed):
    result = subprocess.run(
        ["sh", "-c", 'umask 000 && exec "$0" "$1"', SYSTEM_PYTHON, str(ROOT / "stats.py")],
        env={**os.environ, "LINES_INI": str(installed)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    made = list((installed.parent / "data").rglob("*"))
    assert any(path.suffix == ".jsonl" for path in made)
    assert {pwd.getpwuid(path.stat().st_uid).pw_name for path in made} == {"www-data"}
    assert not any(path.stat().st_mode & 0o007 for path in made), "other local users read nothing"


ENGLISH = re.compile(r"\b(cannot|error|not served|denied|failed|group|write|read)\b", re.IGNORECASE)


@AS_ROOT
def test_stats_py_names_a_data_folder_it_cannot_write_once_with_its_fix_and_only_in_french(installed):
    data = installed.parent / "data"
    os.chown(data, 0, 0)  # As a root-only copy or restore leaves it.
    with open(installed, "a", encoding="utf-8") as file:
        file.write("\n[grenoble]\nname = Grenoble\nkind = queue\nbilling_account = ab12345-ovh-1\n")
        file.write("numbre = 0033465719999\n")
    ends = data / "ends"
    ends.mkdir()
    today = datetime.now(PARIS).date().isoformat()
    (ends / "lille.json").write_text(f'{{"day": "{today}", "ends": {{"0033639980001": "02:01:00"}}}}', encoding="utf-8")
    result = subprocess.run(
        [SYSTEM_PYTHON, str(ROOT / "stats.py")], env={**os.environ, "LINES_INI": str(installed)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert all(line.startswith("stats.py : ") for line in lines), lines
    assert [line for line in lines if ENGLISH.search(line.split(" : ", 1)[1].split("« ")[0])] == [], "French only"
    about_data = [line for line in lines if str(data) in line]
    assert about_data == [
        f"stats.py : le serveur web (www-data) ne peut pas écrire dans {data} ({data}) : "
        f"chown -R www-data:www-data {data} ; rien n'est relevé ni terminé tant que ce n'est pas corrigé."
    ]
    assert any("section [grenoble] : clé inconnue « numbre »" in line for line in lines)


@pytest.mark.parametrize("script", [["create_consumer_key.py", "--check"], ["stats.py", "report", "--days", "1"]])
def test_scripts_find_the_virtualenv_with_the_systems_python3(fake_ovh, tmp_path, script):
    if not SYSTEM_PYTHON:
        pytest.skip("no python3 on the system's PATH")
    lines_ini = write_lines_ini(tmp_path, fake_ovh)
    result = subprocess.run(
        [SYSTEM_PYTHON, str(ROOT / script[0]), *script[1:]], env={**os.environ, "LINES_INI": str(lines_ini)},
        cwd="/", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "ModuleNotFoundError" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stdout + result.stderr


@AS_ROOT
def test_check_names_files_in_data_the_web_server_cannot_use(installed):
    secret = installed.parent / "data" / "secret.key"
    secret.write_bytes(b"made by root")  # As an "index.py --serve" run by root once did.
    secret.chmod(0o600)
    check = run_index("--check", env={"LINES_INI": str(installed)})
    assert check.returncode == 1
    data = installed.parent / "data"
    assert (
        f"ERREUR : le serveur web (www-data) ne peut pas écrire dans {data} ({secret}) : "
        f"chown -R www-data:www-data {data}" in check.stdout
    )


@AS_ROOT
def test_check_names_a_folder_the_web_server_cannot_enter_and_its_fix(installed):
    folder = installed.parent
    web = pwd.getpwnam("www-data")
    os.chown(installed, 0, web.pw_gid)
    installed.chmod(0o640)
    folder.chmod(0o700)  # As a clone by root with umask 077 leaves it.
    check = run_index("--check", env={"LINES_INI": str(installed)})
    assert check.returncode == 1
    entry = f"ERREUR : le serveur web (www-data) ne peut pas entrer dans le dossier {folder} : chmod o+x {folder}\n"
    assert entry in check.stdout
    assert "chown" not in check.stdout, "the files' rights are already right"
    subprocess.run(["chmod", "o+x", str(folder)], check=True)  # The fix, as printed.
    assert "ne peut pas" not in run_index("--check", env={"LINES_INI": str(installed)}).stdout


@pytest.fixture
def pyenv_site(installed):
    """The page installed with a .venv3 made by root's own python3, in a folder www-data cannot enter (a pyenv).

    That python3 is the system's, copied into the closed folder with a link to its library, as pyenv installs one.
    """
    site = installed.parent
    for name in ("index.py", "stats.py", "requirements.txt"):
        shutil.copy2(ROOT / name, site / name)
    shutil.copytree(ROOT / "cimade_ovh", site / "cimade_ovh", ignore=shutil.ignore_patterns("__pycache__"))
    library = subprocess.run([SYSTEM_PYTHON, "-c", "import os; print(os.path.dirname(os.__file__))"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    pyenv = site / "pyenv"
    (pyenv / "bin").mkdir(parents=True)
    (pyenv / "lib").mkdir()
    pyenv.chmod(0o700)
    shutil.copy2(os.path.realpath(SYSTEM_PYTHON), pyenv / "bin" / "python3")
    (pyenv / "lib" / Path(library).name).symlink_to(library)
    subprocess.run([pyenv / "bin" / "python3", "-m", "venv", "--without-pip", site / ".venv3"], check=True)
    [packages] = (site / ".venv3" / "lib").glob("python3*/site-packages")
    packages.rmdir()
    [built] = apache.site_virtualenv().glob("lib/python3*/site-packages")  # ovh and flup, for this version.
    packages.symlink_to(built)
    return site


def run_check(site):
    """index.py --check as IT runs it: the site's .venv3/bin/python, from the site's folder."""
    return subprocess.run(
        [site / ".venv3" / "bin" / "python", "index.py", "--check"], cwd=site, capture_output=True, text=True,
        env={**os.environ, "LINES_INI": str(site / "lines.ini")}, timeout=60,
    )  # fmt: skip


@AS_ROOT
def test_check_says_when_the_web_server_cannot_run_the_virtualenvs_python(pyenv_site):
    """A .venv3 made by root's pyenv: root runs it (the FastCGI page even works), cron cannot."""
    check = run_check(pyenv_site)
    assert check.returncode == 1
    assert (
        f"ERREUR : le serveur web (www-data) ne peut pas lancer {pyenv_site}/.venv3/bin/python (droits insuffisants), "
        f"que cron lance pour stats.py : recréez .venv3 avec le python3 de Debian, en root : cd {pyenv_site} && rm -rf "
        ".venv3 && /usr/bin/python3 -m venv .venv3 && .venv3/bin/pip install -r requirements.txt\n"
    ) in check.stdout, check.stdout
    shutil.rmtree(pyenv_site / ".venv3")
    (pyenv_site / ".venv3").symlink_to(apache.site_virtualenv())  # Built by the system's python3, as the README says.
    check = run_check(pyenv_site)
    assert "ne peut pas lancer" not in check.stdout and check.returncode == 0, check.stdout


@AS_ROOT
def test_stats_run_by_root_with_its_own_python_says_so_after_switching_user(pyenv_site):
    """Switched to www-data, that python3 can import nothing more: one sentence, not a ModuleNotFoundError."""
    stats = subprocess.run(
        [pyenv_site / ".venv3" / "bin" / "python", pyenv_site / "stats.py"],
        env={**os.environ, "LINES_INI": str(pyenv_site / "lines.ini")}, cwd="/", capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert stats.returncode == 1 and "Traceback" not in stats.stderr, stats.stderr
    assert stats.stderr.startswith("ERREUR : www-data, l'utilisateur du serveur web, ne peut pas lire le Python qui "
                                   f"lance cette commande ({pyenv_site}/pyenv/lib/python3"), stats.stderr  # fmt: skip
    assert stats.stderr.endswith(f"cd {pyenv_site} && rm -rf .venv3 && /usr/bin/python3 -m venv .venv3 && "
                                 ".venv3/bin/pip install -r requirements.txt\n"), stats.stderr  # fmt: skip
    assert len(stats.stderr.splitlines()) == 1


def test_check_says_a_new_group_needs_a_new_key(fake_ovh, tmp_path):
    fake_ovh.add_queue("0033465719000")
    lines_ini = write_lines_ini(tmp_path, fake_ovh)
    key = fake_ovh.create_credential(required_rules(load_settings(lines_ini)))
    conf = tmp_path / "ovh.conf"
    conf.write_text(conf.read_text(encoding="utf-8").replace(DEMO_CONSUMER_KEY, key), encoding="utf-8")
    with open(lines_ini, "a", encoding="utf-8") as file:
        file.write(
            "\n[grenoble]\nname = Grenoble\nkind = queue\nbilling_account = ab12345-ovh-1\nnumber = 0033465719000\n"
        )
    result = run_index("--check", env={"LINES_INI": str(lines_ini)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "ok     [lyon]" in result.stdout and "ok     [lille]" in result.stdout
    assert "ERREUR [grenoble] 04 65 71 90 00 : La clé d'accès n'a pas le droit de faire cette demande" in result.stdout
    assert f"créez-en une : /usr/bin/python3 {ROOT / 'create_consumer_key.py'}" in result.stdout
