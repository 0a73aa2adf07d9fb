"""create_consumer_key.py on the OVH simulator: least-privilege keys, their validation, ovh.conf and --check."""

import grp
import os
import pwd
import re
import stat
import subprocess
import sys
from datetime import timedelta

import ovh.exceptions
import pytest
from webpage import ROOT, THURSDAY_AFTERNOON, text

import create_consumer_key as ck
import index
from cimade_ovh.commands import check
from cimade_ovh.config import load_settings
from cimade_ovh.ovhapi import connect_ovh, read_ovh_conf
from cimade_ovh.phones import format_phone
from cimade_ovh.rules import missing_rules, mistake_rules, required_rules, rule, rule_matches
from cimade_ovh.simulator import (
    DEMO_APPLICATION_KEY,
    DEMO_APPLICATION_SECRET,
    DEMO_BILLING_ACCOUNT,
    DEMO_CONSUMER_KEY,
    LILLE_NUMBER,
    LILLE_SIP_LINE,
    LYON_NUMBER,
    LYON_VOICEMAIL,
    OTHER_BILLING_ACCOUNT,
    validate_remotely,
)

SCRIPT = ROOT / "create_consumer_key.py"
EASY_HUNTING = f"/telephony/{DEMO_BILLING_ACCOUNT}/easyHunting/{LYON_NUMBER}"
AGENTS = f"{EASY_HUNTING}/hunting/agent"
OTHER_REDIRECT_NUMBER = "0033465719900"
OTHER_SIP_LINE = "0033465719901"


def run_script(*args, validate=None, env=None, timeout=20):
    """Run the script with no terminal; call validate(validation URL) once it prints it; return (status, output)."""
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--poll", "0.1", "--timeout", str(timeout), *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("OVH_")}, **(env or {})},
    )
    output = []
    try:
        for line in process.stdout:
            output.append(line)
            if validate and line.strip().startswith("http") and "credentialToken=" in line:
                validate(line.strip())
        status = process.wait(timeout=timeout + 10)
    finally:
        if process.poll() is None:
            process.kill()
    return status, "".join(output)


def pending_key(fake):
    """The consumer key of the last credential request."""
    return [c for c in fake.snapshot()["credentials"] if c["status"] == "pendingValidation"][-1]["consumerKey"]


def conf_keys(path):
    keys = read_ovh_conf(path, required=())
    return keys.pop("endpoint"), keys


def settings_of(site):
    return load_settings(site.lines_ini)


@pytest.fixture
def narrow(site):
    """The site after create_consumer_key.py replaced the demo key (rights on /*) by a least-privilege one."""
    conf = site.folder / "ovh.conf"
    conf.write_text("# Kept: a comment of IT.\n" + conf.read_text(encoding="utf-8") + "# Kept too.\n", encoding="utf-8")
    conf.chmod(0o644)
    status, output = run_script("--lines-ini", site.lines_ini, validate=validate_remotely)
    assert status == 0, output
    _, keys = conf_keys(conf)
    site.key = keys["consumer_key"]
    site.output = output
    site.client = connect_ovh(site.fake.url, DEMO_APPLICATION_KEY, DEMO_APPLICATION_SECRET, site.key)
    return site


# --- Rules ----------------------------------------------------------------------


def test_rules_for_the_demo_groups_are_narrow():
    settings = load_settings(ROOT / "lines.ini")
    rules = required_rules(settings, {"lille": LILLE_SIP_LINE})
    paths = {r["path"] for r in rules}
    assert not paths & {"/", "/*", "/telephony/*"}
    assert [r["method"] for r in rules if r["path"] == "/telephony"] == ["GET"], "the billing accounts' names only"
    assert all(p in ("/auth/currentCredential", "/telephony") or p.startswith(f"/telephony/{DEMO_BILLING_ACCOUNT}/")
               for p in paths)  # fmt: skip
    lists = [r for r in rules if r["path"].count("/") == 3]
    # The voicemail boxes' list (which boxes the account has), then the lists that name a mistake of lines.ini.
    lists_read = ("voicemail", "easyHunting", "redirect")
    assert lists == [rule("GET", f"/telephony/{DEMO_BILLING_ACCOUNT}/{s}") for s in lists_read]
    assert {"method": "GET", "path": "/auth/currentCredential"} in rules
    lille = f"/telephony/{DEMO_BILLING_ACCOUNT}/line/{LILLE_SIP_LINE}"
    assert {"method": "PUT", "path": f"{lille}/options"} in rules
    assert not [r for r in rules if r["method"] == "PUT" and r["path"] == lille]
    assert not [r for r in rules if r["method"] == "DELETE" and "/hunting/" in r["path"]]
    assert len(rules) == len({(r["method"], r["path"]) for r in rules})
    # Without a key to read where Lille's number goes, its billing account's lines are covered.
    fallback = required_rules(settings)
    assert {"method": "PUT", "path": f"/telephony/{DEMO_BILLING_ACCOUNT}/line/*"} in fallback


def test_rules_allow_what_stats_py_will_read():
    settings = load_settings(ROOT / "lines.ini")
    granted = required_rules(settings)
    queue = f"{EASY_HUNTING}/hunting/queue/5001"
    wanted = [rule("GET", f"{queue}/liveStatistics"), rule("GET", f"{queue}/liveCalls"),
              rule("GET", f"{queue}/liveCalls/7001")]  # fmt: skip
    assert missing_rules(granted, wanted) == []
    assert missing_rules(granted, [rule("PUT", f"{queue}/liveStatistics")]) != []


def test_stats_calls_succeed_on_the_simulator_with_exactly_those_rules(fake_ovh):
    settings = load_settings(ROOT / "lines.ini")
    key = fake_ovh.create_credential(required_rules(settings))
    client = connect_ovh(fake_ovh.url, DEMO_APPLICATION_KEY, DEMO_APPLICATION_SECRET, key)
    fake_ovh.add_live_call(LYON_NUMBER)
    (queue_id,) = client.get(f"{EASY_HUNTING}/hunting/queue")
    queue = f"{EASY_HUNTING}/hunting/queue/{queue_id}"
    assert "callsTotal" in client.get(f"{queue}/liveStatistics")
    calls = client.get(f"{queue}/liveCalls")
    assert calls and client.get(f"{queue}/liveCalls/{calls[0]}")


def test_a_star_covers_any_rest_but_not_more():
    assert rule_matches("/telephony/*", "/telephony/ab/line/1/options")
    assert rule_matches("/a/agent/*", "/a/agent/*")
    assert rule_matches("/*", "/a/agent/*")
    assert not rule_matches("/a/agent/*", "/a/agent")
    assert not rule_matches("/a/agent/5", "/a/agent/*")
    assert not rule_matches("/a/agent", "/a/agentX")


def test_setting_values_keeps_comments_and_other_sections():
    text = (
        "# top\n[default]\nendpoint = ovh-eu\n\n# app\n[ovh-eu]\napplication_key = a # x\nconsumer_key = old\n\n# end\n"
    )
    result = ck.set_conf_values(text, "ovh-eu", {"consumer_key": "new", "application_secret": "s"})
    assert result == (
        "# top\n[default]\nendpoint = ovh-eu\n\n# app\n[ovh-eu]\napplication_key = a # x\nconsumer_key = new\n"
        "application_secret = s\n\n# end\n"
    )
    assert ck.set_conf_values("[default]\n", "other", {"k": "v"}) == "[default]\n\n[other]\nk = v\n"


# --- Creating a key -------------------------------------------------------------


def test_the_key_is_validated_checked_and_written(narrow):
    conf = narrow.folder / "ovh.conf"
    content = conf.read_text(encoding="utf-8")
    assert content.startswith("# Kept: a comment of IT.\n") and content.endswith("# Kept too.\n")
    endpoint, keys = conf_keys(conf)
    assert endpoint == narrow.fake.url
    assert keys["application_key"] == DEMO_APPLICATION_KEY and keys["application_secret"] == DEMO_APPLICATION_SECRET
    assert keys["consumer_key"] not in ("", DEMO_CONSUMER_KEY)
    assert stat.S_IMODE(conf.stat().st_mode) == 0o640  # The group keeps reading it; others lose it.
    credential = next(c for c in narrow.fake.snapshot()["credentials"] if c["consumerKey"] == narrow.key)
    assert credential["status"] == "validated" and credential["expiration"] is None
    boxes = {"lille": [LILLE_SIP_LINE], "lyon": [LYON_VOICEMAIL]}
    assert credential["rules"] == required_rules(settings_of(narrow), {"lille": LILLE_SIP_LINE}, boxes)
    output = narrow.output
    assert DEMO_APPLICATION_SECRET not in output
    assert "credentialToken=" in output and "Unlimited" in output and "compte OVH de La Cimade" in output
    assert f"PUT    /telephony/{DEMO_BILLING_ACCOUNT}/line/{LILLE_SIP_LINE}/options" in output
    assert "L'ancienne clé (n° 3001) reste valable" in output


def test_every_page_view_and_action_works_with_exactly_the_generated_rules(narrow, ovh_client):
    site = narrow
    first = len(site.fake.requests)  # Before: the script's polls, refused while the key was pending.
    # Lille: view, start, change, finish.
    assert "Les appels arrivent sur la ligne SIP du groupe" in text(site.get("/lille"))
    assert "C'est fait" in text(site.act("/lille/start", {"number": "0639980001"}))
    assert "le numéro a changé" in text(site.act("/lille/start", {"number": "0639980002"}))
    assert "La permanence est terminée" in text(site.act("/lille/finish"))
    # Lyon: a period left from yesterday, an available agent to log out, a new agent, an existing one.
    agent = next(a for a in (ovh_client.get(f"{AGENTS}/{i}") for i in ovh_client.get(AGENTS))
                 if a["number"] == "0033639980012")  # fmt: skip
    ovh_client.put(f"{AGENTS}/{agent['agentId']}", status="available")
    site.moment = THURSDAY_AFTERNOON - timedelta(days=1)
    assert "C'est fait" in text(site.act("/lyon/start", {"number": "0639980001"}))
    site.moment = THURSDAY_AFTERNOON
    assert "Pas de permanence en cours" in text(site.get("/lyon"))
    assert "C'est fait" in text(site.act("/lyon/start", {"number": "0639980001"}))
    assert "le numéro a changé" in text(site.act("/lyon/start", {"number": "06 39 98 00 11"}))
    assert "le numéro a changé" in text(site.act("/lyon/start", {"number": "0639980003"}))
    assert "la fin prévue" in text(site.act("/lyon/start", {"number": "0639980003", "ends": "20:00"}))
    assert "La permanence est terminée" in text(site.act("/lyon/finish"))
    assert "Il n'y avait pas de permanence" in text(site.act("/lyon/finish"))
    refused = [r for r in site.fake.requests[first:] if r.get("status") != 200]
    assert refused == []
    assert [line[5].split(",")[0] for line in site.activity()] == ["ok"] * 10
    writes = {
        (r["method"], re.sub(r"/\d+(?=/|$)", "/{id}", r["path"].replace(EASY_HUNTING, ""))) for r in site.writes()
    }
    assert writes >= {
        ("POST", "/hunting/agent"), ("POST", "/hunting/agent/{id}/queue"), ("PUT", "/hunting/agent/{id}"),
        ("POST", "/timeConditions/conditions"), ("DELETE", "/timeConditions/conditions/{id}"),
        ("PUT", "/timeConditions/conditions/{id}"),
    }  # fmt: skip


def test_the_voicemail_works_with_exactly_the_generated_rules(narrow):
    from test_security import CODE, set_code
    from test_voicemail import audio_path, enter

    site = narrow
    assert set_code(site.lines_ini, "lille", CODE).returncode == 0
    enter(site, "lille")
    first = len(site.fake.requests)
    message = site.fake.unanswered_call(LILLE_NUMBER, "0033639989901", 12)
    key = f"{LILLE_SIP_LINE}:{message}"
    assert "1 message à traiter sur la messagerie." in text(site.get("/lille"))
    assert site.get(audio_path(key)).status_code == 200
    assert "rappelé par Awa" in text(site.act("/lille/handled", {"message": key, "name": "Awa"}))
    assert "C'est noté : le message est de nouveau à traiter." in text(site.act("/lille/unhandled", {"message": key}))
    assert [r for r in site.fake.requests[first:] if r.get("status") not in (200, None)] == []
    voicemail = f"/telephony/{DEMO_BILLING_ACCOUNT}/voicemail"
    granted = [r for r in required_rules(settings_of(site), {"lille": LILLE_SIP_LINE},
                                         {"lille": [LILLE_SIP_LINE], "lyon": [LYON_VOICEMAIL]})
               if r["path"].startswith(voicemail)]  # fmt: skip
    assert granted == [
        {"method": "GET", "path": voicemail},
        {"method": "GET", "path": f"{voicemail}/{LYON_VOICEMAIL}/directories"},  # Lyon comes first in lines.ini.
        {"method": "GET", "path": f"{voicemail}/{LYON_VOICEMAIL}/directories/*"},
        {"method": "POST", "path": f"{voicemail}/{LYON_VOICEMAIL}/directories/*"},
        {"method": "GET", "path": f"{voicemail}/{LYON_VOICEMAIL}/settings"},  # Whether it loses messages.
        {"method": "GET", "path": f"{voicemail}/{LILLE_SIP_LINE}/directories"},
        {"method": "GET", "path": f"{voicemail}/{LILLE_SIP_LINE}/directories/*"},
        {"method": "POST", "path": f"{voicemail}/{LILLE_SIP_LINE}/directories/*"},
        {"method": "GET", "path": f"{voicemail}/{LILLE_SIP_LINE}/settings"},
    ]
    with pytest.raises(ovh.exceptions.NotGrantedCall):
        site.client.delete(f"{voicemail}/{LILLE_SIP_LINE}/directories/{message}")
    with pytest.raises(ovh.exceptions.NotGrantedCall):
        site.client.put(f"{voicemail}/{LILLE_SIP_LINE}/settings", doNotRecord=True)


def test_check_names_each_group_s_boxes_and_what_keeps_one_from_being_read(narrow, capsys):
    assert check(index.App(lines_ini=narrow.lines_ini)) == 0
    output = capsys.readouterr().out
    lille = "ok     [lille] 03 53 01 00 00 : renvoi vers la ligne SIP 03 53 01 00 01"
    assert f"{lille} ; répondeur : 03 53 01 00 01" in output
    assert "ok     [lyon] 04 65 71 00 00 : file d'appels n° 5001 ; répondeur : 04 65 71 00 01" in output
    narrow.configure("lille", voicemail=f"0033353019999, {LYON_VOICEMAIL}")
    assert check(index.App(lines_ini=narrow.lines_ini)) == 1
    output = capsys.readouterr().out
    assert ("ERREUR [lille] 03 53 01 00 00 : le répondeur 03 53 01 99 99 n'est pas dans le compte ab12345-ovh-1 : "
            "corrigez la clé voicemail du groupe dans lines.ini, ou les renvois vers la messagerie chez OVH") in output
    assert "ERREUR [lille] 03 53 01 00 00 : la clé OVH ne peut pas lire le répondeur 03 53 01 99 99" not in output
    assert "la clé OVH ne couvre pas ce groupe ; il lui manque :" in output  # The new box, not in the key's rules.
    assert f"GET    /telephony/{DEMO_BILLING_ACCOUNT}/voicemail/0033353019999/directories" in output
    # A key of before the voicemail: every box named, none readable.
    narrow.configure("lille", voicemail="")
    old = [r for r in required_rules(settings_of(narrow), {"lille": LILLE_SIP_LINE}) if "/voicemail" not in r["path"]]
    conf = narrow.folder / "ovh.conf"
    conf.write_text(conf.read_text(encoding="utf-8").replace(narrow.key, narrow.fake.create_credential(old)),
                    encoding="utf-8")  # fmt: skip
    assert check(index.App(lines_ini=narrow.lines_ini)) == 1
    output = capsys.readouterr().out
    assert "ERREUR [lille] 03 53 01 00 00 : la clé OVH ne peut pas lire le répondeur 03 53 01 00 01 : créez-en une " \
           "nouvelle : /usr/bin/python3 " in output  # fmt: skip
    assert "ERREUR [lyon] 04 65 71 00 00 : la clé OVH ne peut pas lire le répondeur 04 65 71 00 01" in output


def test_index_check_passes_with_the_new_key(narrow, capsys):
    assert check(index.App(lines_ini=narrow.lines_ini)) == 0
    output = capsys.readouterr().out
    assert "ok     [lyon]" in output and "ok     [lille]" in output


def test_calls_outside_the_rules_are_refused(narrow):
    client = narrow.client
    other = f"/telephony/{OTHER_BILLING_ACCOUNT}"
    refused = [
        lambda: client.get("/me"),
        lambda: client.get(f"{other}/redirect"),
        lambda: client.get("/me/api/credential"),
        lambda: client.delete("/me/api/credential/3001"),
        lambda: client.get(f"{other}/redirect/{OTHER_REDIRECT_NUMBER}"),
        lambda: client.get(f"{other}/line/{OTHER_SIP_LINE}/options"),
        lambda: client.put(f"{other}/line/{OTHER_SIP_LINE}/options", forwardUnconditional=False),
        lambda: client.put(f"/telephony/{DEMO_BILLING_ACCOUNT}/line/{LILLE_SIP_LINE}", description="x"),
        lambda: client.put(f"/telephony/{DEMO_BILLING_ACCOUNT}/redirect/{LILLE_NUMBER}", description="x"),
        lambda: client.delete(f"{AGENTS}/4001"),
        lambda: client.put(EASY_HUNTING, description="x"),
    ]
    for call in refused:
        with pytest.raises(ovh.exceptions.NotGrantedCall):
            call()
    assert client.get("/auth/currentCredential")["status"] == "validated"


def test_check_script_accepts_the_new_key_and_warns_about_a_broad_one(narrow, site):
    status, output = run_script("--check", "--lines-ini", narrow.lines_ini)
    assert status == 0, output
    assert "ok     [lyon]" in output and "ok     [lille]" in output and "Attention" not in output
    conf = narrow.folder / "ovh.conf"
    conf.write_text(conf.read_text(encoding="utf-8").replace(narrow.key, DEMO_CONSUMER_KEY), encoding="utf-8")
    status, output = run_script("--check", "--lines-ini", narrow.lines_ini)
    assert status == 0, output
    assert "droits sur tout le compte" in output


def test_a_group_added_after_the_key_is_reported(narrow):
    with open(narrow.lines_ini, "a", encoding="utf-8") as file:
        file.write(
            f"\n[grenoble]\nname = Grenoble\nkind = redirect\nbilling_account = {OTHER_BILLING_ACCOUNT}\n"
            f"number = {OTHER_REDIRECT_NUMBER}\n"
        )
    page = text(narrow.get("/grenoble"))
    assert "La clé d'accès à OVH n'a pas les droits nécessaires pour ce groupe." in page
    assert "créer une nouvelle clé avec create_consumer_key.py" in page
    status, output = run_script("--check", "--lines-ini", narrow.lines_ini)
    assert status == 1, output
    assert "ERREUR [grenoble]" in output and "ok     [lyon]" in output and "ok     [lille]" in output
    assert "ne couvre pas : grenoble" in output and "nouvelle clé" in output
    # A new key covers it (the current key cannot read Grenoble's redirect: its lines get line/*).
    status, output = run_script("--lines-ini", narrow.lines_ini, validate=validate_remotely)
    assert status == 0, output
    assert f"GET    /telephony/{OTHER_BILLING_ACCOUNT}/line/*" in output
    status, output = run_script("--check", "--lines-ini", narrow.lines_ini)
    assert status == 0, output
    assert "ok     [grenoble]" in output


def create_conf_from_example(site):
    """Run the script without ovh.conf, as IT does the first time: (its exit status, its output)."""
    (site.folder / "ovh.conf").unlink()
    return run_script(
        "--lines-ini", site.lines_ini, "--endpoint", site.fake.url, "--application-key", DEMO_APPLICATION_KEY,
        validate=lambda url: site.fake.validate_credential(pending_key(site.fake)),
        env={"OVH_APPLICATION_SECRET": DEMO_APPLICATION_SECRET},
    )  # fmt: skip


def test_ovh_conf_is_created_owner_only_from_the_example(site):
    conf, (status, output) = site.folder / "ovh.conf", create_conf_from_example(site)
    assert status == 0, output
    assert DEMO_APPLICATION_SECRET not in output
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    content = conf.read_text(encoding="utf-8")
    assert content.startswith("# ovh.conf : les clés avec lesquelles cimade-ovh parle à OVH.")
    read = read_ovh_conf(conf)
    assert read["endpoint"] == site.fake.url and read["application_secret"] == DEMO_APPLICATION_SECRET
    assert "Ligne SIP inconnue pour lille" in output
    assert "PUT    /telephony/ab12345-ovh-1/line/*" in output
    assert "Ligne SIP inconnue" not in run_script("--check", "--lines-ini", site.lines_ini)[1]
    assert "C'est fait" in text(site.act("/lille/start", {"number": "0639980001"}))
    assert "C'est fait" in text(site.act("/lyon/start", {"number": "0639980001"}))
    # Running it again with that key names Lille's SIP line exactly.
    status, output = run_script("--lines-ini", site.lines_ini, validate=validate_remotely)
    assert status == 0, output
    assert f"PUT    /telephony/{DEMO_BILLING_ACCOUNT}/line/{LILLE_SIP_LINE}/options" in output
    assert "line/*" not in output
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600


def has_user(name):
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.mark.skipif(os.geteuid() != 0 or not has_user("www-data"), reason="needs root and the user www-data")
def test_ovh_conf_created_by_root_is_readable_by_the_web_server(site):
    site.configure("settings", web_user="www-data")
    conf, (status, output) = site.folder / "ovh.conf", create_conf_from_example(site)
    assert status == 0, output
    info = conf.stat()
    assert (info.st_uid, grp.getgrgid(info.st_gid).gr_name, stat.S_IMODE(info.st_mode)) == (0, "www-data", 0o640)


def test_without_validation_ovh_conf_is_unchanged(site):
    conf = site.folder / "ovh.conf"
    before = conf.read_text(encoding="utf-8")
    status, output = run_script("--lines-ini", site.lines_ini, timeout=1)
    assert status == 1
    assert "n'a pas été validée" in output and "ovh.conf n'a pas changé" in output
    assert conf.read_text(encoding="utf-8") == before


def test_a_refused_validation_changes_nothing(site):
    conf = site.folder / "ovh.conf"
    before = conf.read_text(encoding="utf-8")

    def refuse(url):
        import urllib.parse
        import urllib.request

        token = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["credentialToken"][0]
        form = urllib.parse.urlencode({"credentialToken": token, "action": "refuse"}).encode()
        urllib.request.urlopen(urllib.request.Request(urllib.parse.urljoin(url, "/auth/"), data=form), timeout=5).read()

    status, output = run_script("--lines-ini", site.lines_ini, validate=refuse, timeout=1)
    assert status == 1, output
    assert conf.read_text(encoding="utf-8") == before


def test_a_missing_application_is_explained(site):
    conf = site.folder / "ovh.conf"
    conf.write_text((ROOT / "ovh-example.conf").read_text(encoding="utf-8"), encoding="utf-8")
    status, output = run_script("--lines-ini", site.lines_ini)
    assert status == 1
    assert "https://eu.api.ovh.com/createApp/" in output and site.fake.requests == []


def test_keys_left_in_another_section_than_the_endpoints_are_named_where_they_should_be(site):
    conf = site.folder / "ovh.conf"
    example = (ROOT / "ovh-example.conf").read_text(encoding="utf-8")
    conf.write_text(
        example.replace("endpoint = ovh-eu", f"endpoint = {site.fake.url}")
        .replace("votre-application-key", DEMO_APPLICATION_KEY)
        .replace("votre-application-secret", DEMO_APPLICATION_SECRET),
        encoding="utf-8",
    )
    status, output = run_script("--lines-ini", site.lines_ini)
    assert status == 1 and site.fake.requests == []
    assert output == (
        f"ERREUR : {conf}, section [default] : l'application OVH n'y est pas ; elle est dans la section [ovh-eu], "
        f"que endpoint = {site.fake.url} ne lit pas : déplacez les clés de l'application dans [default], puis "
        "relancez.\n"
    )
    status, output = run_script("--lines-ini", site.lines_ini, "--check")
    assert status == 1 and "dans la section [ovh-eu], que endpoint" in output and "createApp" not in output


def test_a_missing_secret_is_named_with_the_ways_to_give_it(site):
    conf = site.folder / "ovh.conf"
    conf.unlink()
    status, output = run_script("--lines-ini", site.lines_ini, "--endpoint", site.fake.url, "--application-key", "abc")
    assert status == 1 and not conf.exists() and site.fake.requests == []
    assert output == (
        f"ERREUR : Il manque le secret de l'application abc : mettez application_secret dans {conf}, ou le secret "
        "dans la variable d'environnement OVH_APPLICATION_SECRET, ou relancez ce script dans un terminal, qui le "
        "demande.\n"
    )


def test_an_ovh_conf_that_cannot_be_written_is_one_french_sentence(site):
    conf = site.folder / "missing" / "ovh.conf"
    status, output = run_script(
        "--lines-ini", site.lines_ini, "--ovh-conf", conf, "--endpoint", site.fake.url,
        "--application-key", DEMO_APPLICATION_KEY, env={"OVH_APPLICATION_SECRET": DEMO_APPLICATION_SECRET},
        validate=lambda url: site.fake.validate_credential(pending_key(site.fake)),
    )  # fmt: skip
    assert status == 1 and "Traceback" not in output
    assert output.endswith(
        f"ERREUR : {conf} : écriture impossible (le fichier ou son dossier n'existe pas) ; relancez en root, ou "
        "choisissez un autre --ovh-conf. ovh.conf n'a pas changé.\n"
    )


def test_an_ovh_failure_is_explained_and_changes_nothing(site):
    conf = site.folder / "ovh.conf"
    before = conf.read_text(encoding="utf-8")
    site.fake.fail("POST", "/auth/credential", "503")
    status, output = run_script("--lines-ini", site.lines_ini)
    assert status == 1
    assert "OVH a rencontré une erreur de son côté" in output and "réessayez dans quelques minutes" in output
    assert "ovh.conf n'a pas changé" in output and "Traceback" not in output
    assert conf.read_text(encoding="utf-8") == before


def test_check_script_fails_when_the_key_cannot_describe_itself(site):
    key = site.fake.create_credential([{"method": "GET", "path": "/telephony/*"}])
    conf = site.folder / "ovh.conf"
    conf.write_text(conf.read_text(encoding="utf-8").replace(DEMO_CONSUMER_KEY, key), encoding="utf-8")
    status, output = run_script("--check", "--lines-ini", site.lines_ini)
    assert status == 1
    assert "la clé OVH ne peut pas lire ses propres droits" in output
    assert f"créez-en une nouvelle : /usr/bin/python3 {ROOT / 'create_consumer_key.py'}" in output


# --- A group whose kind, billing account or number is wrong ---------------------

NEW_QUEUE, NEW_REDIRECT, NEW_SIP_LINE = "0033465719000", "0033465719500", "0033465719501"


def add_group(site, slug, kind, number, billing_account=DEMO_BILLING_ACCOUNT):
    """Add a group to the site's lines.ini, as IT does after preparing its number at OVH."""
    with open(site.lines_ini, "a", encoding="utf-8") as file:
        file.write(f"\n[{slug}]\nname = {slug.capitalize()}\nkind = {kind}\nbilling_account = {billing_account}\n"
                   f"number = {number}\n")  # fmt: skip


def told_by_check(site, slug):
    """The lines index.py --check prints about a group."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "index.py"), "--check"], env={**os.environ, "LINES_INI": str(site.lines_ini)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return [line for line in result.stdout.splitlines() if f"[{slug}]" in line]


@pytest.mark.parametrize(
    "kind, prepare, number, said",
    [
        ("redirect", lambda fake: fake.add_queue(NEW_QUEUE), NEW_QUEUE, "une file d'appels chez OVH : kind = queue ?"),
        ("queue", lambda fake: fake.add_redirect(NEW_REDIRECT, NEW_SIP_LINE), NEW_REDIRECT,
         "une redirection chez OVH : kind = redirect ?"),
    ],
)  # fmt: skip
def test_a_group_of_the_wrong_kind_is_named_before_any_new_key(narrow, kind, prepare, number, said):
    prepare(narrow.fake)
    add_group(narrow, "grenoble", kind, number)
    page = text(narrow.get("/grenoble"))
    assert "La ligne de ce groupe n'est pas du type que lines.ini lui donne (kind)." in page
    assert "droits" not in page and "nouvelle clé" not in page
    [line] = told_by_check(narrow, "grenoble")
    assert line.startswith(f"ERREUR [grenoble] {format_phone(number)} : ce numéro est {said}")
    asked = len(narrow.fake.snapshot()["credentials"])
    status, output = run_script("--lines-ini", narrow.lines_ini, validate=validate_remotely)
    assert status == 1, output
    assert f"ERREUR [grenoble] ce numéro est {said}" in output and "ovh.conf n'a pas changé" in output
    assert len(narrow.fake.snapshot()["credentials"]) == asked, "no key asked for a lines.ini that is wrong"


def test_an_unknown_billing_account_is_named_before_any_new_key(narrow):
    add_group(narrow, "grenoble", "queue", NEW_QUEUE, billing_account="ab12345-ovh-9")
    page = text(narrow.get("/grenoble"))
    assert "OVH ne connaît pas le compte de facturation de ce groupe." in page
    assert "droits" not in page and "nouvelle clé" not in page
    [line] = told_by_check(narrow, "grenoble")
    assert "OVH ne connaît pas le compte de facturation « ab12345-ovh-9 » (billing_account dans lines.ini)" in line
    assert "créez-en une" not in line
    status, output = run_script("--lines-ini", narrow.lines_ini, validate=validate_remotely)
    assert status == 1 and "« ab12345-ovh-9 »" in output, output


def test_a_number_unknown_in_its_billing_account_is_named(narrow):
    add_group(narrow, "grenoble", "queue", NEW_QUEUE)
    [line] = told_by_check(narrow, "grenoble")
    assert f"OVH ne connaît pas le numéro {format_phone(NEW_QUEUE)} dans le compte de facturation " \
        f"{DEMO_BILLING_ACCOUNT}" in line  # fmt: skip
    assert "créez-en une" not in line


def test_a_group_that_is_right_but_new_to_the_key_still_asks_for_a_new_key(narrow):
    narrow.fake.add_queue(NEW_QUEUE)
    add_group(narrow, "grenoble", "queue", NEW_QUEUE)
    assert "La clé d'accès à OVH n'a pas les droits nécessaires pour ce groupe." in text(narrow.get("/grenoble"))


def test_with_a_key_of_an_earlier_version_the_new_key_names_the_wrong_kind(site):
    """The key in place cannot list the account's numbers: the new one can, and the script says at once."""
    site.fake.add_queue(NEW_QUEUE)
    settings = settings_of(site)
    old_key = site.fake.create_credential([r for r in required_rules(settings) if r not in mistake_rules(settings)])
    conf = site.folder / "ovh.conf"
    conf.write_text(conf.read_text(encoding="utf-8").replace(DEMO_CONSUMER_KEY, old_key), encoding="utf-8")
    add_group(site, "grenoble", "redirect", NEW_QUEUE)
    status, output = run_script("--lines-ini", site.lines_ini, validate=validate_remotely)
    assert status == 1, output
    assert "ERREUR [grenoble] ce numéro est une file d'appels chez OVH : kind = queue ?" in output
    assert "puis relancez ce script : la clé doit couvrir les groupes tels qu'ils sont." in output
