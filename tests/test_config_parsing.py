"""cimade_ovh.config on its own: small lines.ini texts, each mistake named by file, section and key.

Pure: no simulator, no HTTP. The whole-file checks as IT meets them (--check, the error page) are in test_config.py.
"""

import errno
import re
import shutil
from pathlib import Path

import pytest

from cimade_ovh import ROOT
from cimade_ovh.config import ConfigError, load_settings, mark_access_code, parse_ends_at, read_ini

SETTINGS = "[settings]\ncontact = IT\n"


def section(slug, **keys):
    """A group's section; keys given None are left out."""
    values = {"name": slug.capitalize(), "kind": "queue", "billing_account": "ab12345-ovh-1", "number": None}
    values.update(keys)
    return f"\n[{slug}]\n" + "".join(f"{key} = {value}\n" for key, value in values.items() if value is not None)


LYON = section("lyon", number="0033465710000")
LILLE = section("lille", kind="redirect", number="0033353010000")


def write(tmp_path, text):
    path = tmp_path / "lines.ini"
    path.write_text(text, encoding="utf-8")
    return path


def broken_message(tmp_path, text):
    """The message of the one broken group of a lines.ini whose settings are good."""
    settings = load_settings(write(tmp_path, text))
    [message] = settings.broken.values()
    return message


# --- read_ini --------------------------------------------------------------------


def test_read_ini_reads_sections_and_keys_as_written(tmp_path):
    parser = read_ini(write(tmp_path, SETTINGS + "notify = a@example.org ; b\n" + LYON))
    assert parser.sections() == ["settings", "lyon"]
    assert parser["settings"]["notify"] == "a@example.org ; b", "no inline comments, no interpolation"
    assert parser["lyon"]["number"] == "0033465710000"


def test_read_ini_keeps_percent_signs_as_they_are(tmp_path):
    parser = read_ini(write(tmp_path, SETTINGS + "sendmail = /usr/bin/mail -s 100%\n"))
    assert parser["settings"]["sendmail"] == "/usr/bin/mail -s 100%"


@pytest.mark.parametrize(
    "text, where, why",
    [
        (
            SETTINGS + LYON + "kind = redirect\n",
            ", section [lyon], clé « kind » (ligne 9)",
            "clé déjà donnée dans cette section",
        ),
        (SETTINGS + LYON + LYON, ", section [lyon] (ligne 10)", "section déjà définie"),
        ("contact = IT\n" + SETTINGS, ", ligne 1", "une clé avant la première [section]"),
        (SETTINGS + "[lyon]\nname = Lyon\nkind queue\n", ", ligne 5", "ligne illisible (attendu : clé = valeur)"),
    ],
)
def test_read_ini_says_where_a_file_cannot_be_parsed(tmp_path, text, where, why):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        read_ini(path)
    assert str(raised.value) == f"{path}{where} : {why}"
    assert not raised.value.unreadable


def test_read_ini_asks_for_utf8(tmp_path):
    path = tmp_path / "lines.ini"
    path.write_bytes((SETTINGS + "[lyon]\nname = Orléans\n").encode("latin-1"))
    with pytest.raises(ConfigError, match=re.escape(f"{path} : le fichier doit être enregistré en UTF-8")):
        read_ini(path)


@pytest.mark.parametrize(
    "name, why",
    [("missing.ini", "le fichier ou son dossier n'existe pas"), (".", "c'est un dossier, pas un fichier")],
)
def test_read_ini_says_why_a_file_cannot_be_opened(tmp_path, name, why):
    path = tmp_path / name
    with pytest.raises(ConfigError) as raised:
        read_ini(path)
    assert str(raised.value) == f"{path} : lecture impossible ({why})"
    assert not raised.value.unreadable


def test_read_ini_tells_a_file_it_may_not_read(tmp_path, mocker):
    """The file is there, but its rights keep this process out (root reads anything: the refusal is simulated)."""
    path = write(tmp_path, SETTINGS)
    mocker.patch("cimade_ovh.config.open", create=True, side_effect=PermissionError(errno.EACCES, "Permission denied"))
    with pytest.raises(ConfigError) as raised:
        read_ini(path)
    assert str(raised.value) == f"{path} : illisible (droits insuffisants)"
    assert raised.value.unreadable


# --- load_settings: the [settings] section ------------------------------------------


def test_settings_values_are_parsed(tmp_path):
    text = (
        "[settings]\nnotify = a@example.org, , b@example.org ,\nsendmail = /usr/bin/msmtp -t --account='la cimade'\n"
        "contact = IT (it@example.org)\ntimezone = America/Cayenne\naccess_hours = 744\nweb_user = apache\n"
        "data_dir = var\n" + LYON
    )
    settings = load_settings(write(tmp_path, text))
    assert settings.path == tmp_path / "lines.ini"
    assert settings.notify == ("a@example.org", "b@example.org")
    assert settings.sendmail == ("/usr/bin/msmtp", "-t", "--account=la cimade")
    assert settings.contact == "IT (it@example.org)"
    assert str(settings.timezone) == "America/Cayenne"
    assert settings.access_hours == 744
    assert settings.web_user == "apache"
    assert settings.data_dir == tmp_path / "var"
    assert settings.activity_log == tmp_path / "var" / "activity.log", "the log follows data_dir by default"
    assert settings.access_codes == tmp_path / "access-codes.ini"
    assert list(settings.groups) == ["lyon"] and settings.broken == {}


def test_settings_left_empty_take_their_defaults(tmp_path):
    settings = load_settings(write(tmp_path, "[settings]\ncontact =\ntimezone =\naccess_hours =\n"))
    assert settings.contact == "l'informatique de la Cimade"
    assert str(settings.timezone) == "Europe/Paris"
    assert settings.access_hours == 12
    assert settings.groups == {} and settings.broken == {}


@pytest.mark.parametrize(
    "line, key, gist",
    [
        ("timezone = Europe/Lyon", "timezone", "fuseau horaire inconnu « Europe/Lyon »"),
        ("access_hours = 0", "access_hours", "« 0 » n'est pas un nombre d'heures (1 à 744)"),
        ("access_hours = 745", "access_hours", "« 745 » n'est pas un nombre d'heures (1 à 744)"),
        ("access_hours = douze", "access_hours", "« douze » n'est pas un nombre d'heures (1 à 744)"),
        ("ends_at = midi", "ends_at", "« midi » n'est pas une heure (par exemple 18:00)"),
        ("ends_at = 01:30", "ends_at", "« 01:30 » : la page n'ouvre la ligne qu'à partir de 2 h"),
    ],
)
def test_a_wrong_setting_is_named_by_file_section_and_key(tmp_path, line, key, gist):
    path = write(tmp_path, f"[settings]\n{line}\n" + LYON)
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert str(raised.value) == f"{path}, section [settings], clé « {key} » : {gist}"


def test_an_unknown_setting_is_named_with_the_nearest_known_one(tmp_path):
    path = write(tmp_path, "[settings]\nacess_hours = 12\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert str(raised.value) == (
        f"{path}, section [settings] : clé inconnue « acess_hours » : vouliez-vous dire « access_hours » ?"
    )


def test_a_file_without_settings_is_refused_whole(tmp_path):
    path = write(tmp_path, LYON)
    with pytest.raises(ConfigError, match=re.escape(f"{path} : la section [settings] manque")):
        load_settings(path)


# --- load_settings and load_group: the groups ---------------------------------------


def test_groups_are_read_with_their_defaults(tmp_path):
    lille = section("Lille", kind="redirect", number="0033353010000")
    settings = load_settings(write(tmp_path, SETTINGS + LYON + lille))
    lyon, lille = settings.groups["lyon"], settings.groups["lille"]
    assert (lyon.slug, lyon.name, lyon.kind, lyon.billing_account, lyon.number) == (
        "lyon", "Lyon", "queue", "ab12345-ovh-1", "0033465710000",
    )  # fmt: skip
    assert (lyon.ring_timeout, lyon.max_volunteers, lyon.contact) == (10, 1, "")
    assert lyon.agent_description == "Bénévole Lyon (cimade-ovh)"
    assert lille.slug == "lille", "the address is the section's name in lower case"
    assert lille.kind == "redirect"


def test_a_group_key_given_in_default_applies_to_every_group(tmp_path):
    settings = load_settings(write(tmp_path, "[DEFAULT]\nring_timeout = 15\n" + SETTINGS + LYON + LILLE))
    assert settings.groups["lyon"].ring_timeout == settings.groups["lille"].ring_timeout == 15


def test_a_groups_ends_at_is_its_own_or_else_the_settings_one(tmp_path):
    lille = section("lille", kind="redirect", number="0033353010000", ends_at="18h30")
    text = "[settings]\nends_at = 17:00\n" + LYON + lille
    settings = load_settings(write(tmp_path, text))
    assert settings.groups["lyon"].ends_at == parse_ends_at("17:00", "settings")
    assert settings.groups["lille"].ends_at == parse_ends_at("18:30", "lille")
    assert settings.groups["lyon"].ends_at != settings.groups["lille"].ends_at


@pytest.mark.parametrize(
    "keys, key, gist",
    [
        ({"name": None}, "name", "la clé « name » manque ou est vide"),
        ({"name": ""}, "name", "la clé « name » manque ou est vide"),
        ({"billing_account": None}, "billing_account", "la clé « billing_account » manque ou est vide"),
        ({"kind": "file"}, "kind", "« file » inconnu (attendu : queue ou redirect)"),
        ({"number": "04 65 71 00 00"}, "number", "« 04 65 71 00 00 » n'est pas un numéro OVH (forme 0033…, sans"),
        ({"number": "+33465710000"}, "number", "n'est pas un numéro OVH"),
        ({"ring_timeout": "0"}, "ring_timeout", "« 0 » n'est pas une durée en secondes"),
        ({"ring_timeout": "121"}, "ring_timeout", "« 121 » n'est pas une durée en secondes"),
        ({"ring_timeout": "10 s"}, "ring_timeout", "« 10 s » n'est pas une durée en secondes"),
        ({"max_volunteers": "21"}, "max_volunteers", "« 21 » n'est pas un nombre de 1 à 20"),
        ({"max_volunteers": "-1"}, "max_volunteers", "« -1 » n'est pas un nombre de 1 à 20"),
        ({"kind": "redirect", "max_volunteers": "2"}, "max_volunteers", "un renvoi (kind = redirect) ne sonne que"),
        ({"ends_at": "25:00"}, "ends_at", "« 25:00 » n'est pas une heure (par exemple 18:00)"),
        ({"ends_at": "01:59"}, "ends_at", "« 01:59 » : la page n'ouvre la ligne qu'à partir de 2 h"),
        ({"ends_at": "02:00"}, "ends_at", "« 02:00 » : la page n'ouvre la ligne qu'à partir de 2 h"),
    ],
)
def test_a_wrong_group_key_is_named_by_file_section_and_key(tmp_path, keys, key, gist):
    message = broken_message(tmp_path, SETTINGS + section("nantes", **{"number": "0033465719500", **keys}))
    path = tmp_path / "lines.ini"
    assert message.startswith(f"{path}, section [nantes]"), message
    assert f"clé « {key} »" in message and gist in message, message


def test_ends_at_just_after_2_is_accepted(tmp_path):
    settings = load_settings(write(tmp_path, SETTINGS + section("nantes", number="0033465719500", ends_at="02:15")))
    assert list(settings.groups) == ["nantes"] and settings.broken == {}


@pytest.mark.parametrize(
    "name", ["lyon centre", "lyon/centre", "-lyon", "index.py", "favicon.ico", "Settings", "lyoné"]
)
def test_a_section_name_that_cannot_be_an_address_is_refused(tmp_path, name):
    message = broken_message(tmp_path, SETTINGS + section(name, number="0033465719500"))
    assert message == (
        f"{tmp_path / 'lines.ini'}, section [{name}] : ce nom ne peut pas servir d'adresse (lettres, chiffres, - et _)"
    )


def test_an_unknown_group_key_is_named_with_the_nearest_known_one(tmp_path):
    message = broken_message(tmp_path, SETTINGS + section("nantes", number="0033465719500", max_volunters="2"))
    assert message.endswith(
        "section [nantes] : clé inconnue « max_volunters » : vouliez-vous dire « max_volunteers » ?"
    )


def test_a_broken_group_goes_to_broken_and_the_others_load(tmp_path):
    text = SETTINGS + LYON + section("Nantes", number="0033465719500", kind="queu") + LILLE
    settings = load_settings(write(tmp_path, text))
    assert list(settings.groups) == ["lyon", "lille"]
    assert list(settings.broken) == ["nantes"], "broken groups are keyed by the address their page would have"
    assert "section [Nantes], clé « kind » : « queu » inconnu" in settings.broken["nantes"]


def test_the_second_group_on_a_number_is_broken_and_the_first_kept(tmp_path):
    settings = load_settings(write(tmp_path, SETTINGS + LYON + section("lyon2", number="0033465710000")))
    assert list(settings.groups) == ["lyon"]
    assert settings.broken["lyon2"] == (
        f"{tmp_path / 'lines.ini'}, section [lyon2], clé « number » : 0033465710000 est déjà le numéro du groupe "
        "[lyon] ; deux groupes sur un même numéro se remplaceraient leurs bénévoles"
    )


def test_two_sections_for_one_address_break_the_second(tmp_path):
    settings = load_settings(write(tmp_path, SETTINGS + LYON + section("LYON", number="0033465719500")))
    assert list(settings.groups) == ["lyon"]
    assert settings.broken["lyon"].endswith("section [LYON] : le groupe « lyon » est déjà défini")


def test_a_path_given_relative_is_read_from_where_it_points(tmp_path, monkeypatch):
    write(tmp_path, SETTINGS + LYON)
    monkeypatch.chdir(tmp_path)
    assert load_settings(Path("lines.ini")).path == tmp_path / "lines.ini"


def test_marking_a_group_in_lines_ini_changes_no_other_line(tmp_path):
    path = tmp_path / "lines.ini"
    shutil.copy(ROOT / "lines.ini", path)
    original = path.read_text(encoding="utf-8")
    mark_access_code(path, "lille", True)
    marked = path.read_text(encoding="utf-8")
    assert marked == original.replace("[lille]\n", "[lille]\naccess_code = yes\n")
    assert load_settings(path).groups["lille"].access_code and not load_settings(path).groups["lyon"].access_code
    mark_access_code(path, "lille", False)
    assert path.read_text(encoding="utf-8") == original
