"""index.py --check --snapshot FILE copies the groups' lines; --demo --state FILE serves the page on that copy."""

import json
import subprocess
import sys

import pytest
from webpage import ROOT, THURSDAY_AFTERNOON, text

import index
from cimade_ovh import snapshot
from cimade_ovh.commands import check, write_demo_folder
from cimade_ovh.config import load_settings
from cimade_ovh.phones import format_phone, normalize_phone
from cimade_ovh.simulator import DEMO_BILLING_ACCOUNT, LILLE_NUMBER, LYON_NUMBER, FakeOVH
from cimade_ovh.snapshot import copied_accounts, snapshot_problem

EASY_HUNTING = f"/telephony/{DEMO_BILLING_ACCOUNT}/easyHunting/{LYON_NUMBER}"


def pages(site):
    return {slug: text(site.get(f"/{slug}")) for slug in ("lyon", "lille")}


def test_a_snapshot_of_the_demo_account_replays_to_the_same_pages(site, ovh_client, tmp_path, capsys):
    site.configure("lyon", max_volunteers="2")
    site.act("/lyon/start", {"number": "0639980001", "ends": "20:00"})
    site.act("/lyon/start", {"number": "0639980002"})
    site.act("/lille/start", {"number": "0639980003", "ends": "18:00"})
    ovh_client.put(f"{EASY_HUNTING}/hunting/queue/5001", strategy="ringAll")
    ovh_client.put(f"{EASY_HUNTING}/timeConditions", unavailableType="number", unavailableNumber="0033465710123")
    before, first = pages(site), len(site.fake.requests)
    copy = tmp_path / "copie.json"
    assert check(site.app, snapshot=copy) == 0
    assert f"/usr/bin/python3 {ROOT / 'index.py'} --demo --state {copy} sert la page dessus." in capsys.readouterr().out
    assert [r for r in site.fake.requests[first:] if r["method"] != "GET"] == [], "read only"
    assert snapshot_problem(json.loads(copy.read_text(encoding="utf-8"))) is None, "--demo --state takes it"
    state = json.loads(copy.read_text(encoding="utf-8"))
    site.fake.reset(state)
    serve_on_the_copy(site, state)
    assert pages(site) == before
    assert site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON).together
    site.act("/lyon/finish")
    assert "Pas de permanence en cours." in text(site.get("/lyon"))


def serve_on_the_copy(site, state):
    """Name the site's groups by their copy's billing accounts, as --demo --state does."""
    for slug, number in (("lyon", LYON_NUMBER), ("lille", LILLE_NUMBER)):
        site.configure(slug, billing_account=copied_accounts(state)[number])


def test_the_demo_on_a_copy_names_each_group_by_its_copy_s_billing_account(site, tmp_path):
    copy = tmp_path / "copie.json"
    assert check(site.app, snapshot=copy) == 0
    state = json.loads(copy.read_text(encoding="utf-8"))
    fake = FakeOVH(state).start()
    try:
        (tmp_path / "demo").mkdir()
        settings = load_settings(write_demo_folder(tmp_path / "demo", fake, state))
        assert settings.groups["lyon"].billing_account == copied_accounts(state)[LYON_NUMBER] != DEMO_BILLING_ACCOUNT
        lille = index.App(lines_ini=settings.path).line(settings, settings.groups["lille"], THURSDAY_AFTERNOON)
        assert lille.read_state().sip_line, "the demo reads Lille's line on the copy"
    finally:
        fake.stop()


def test_a_snapshot_makes_every_number_but_the_public_ones_fictional(site, ovh_client, tmp_path, capsys):
    ovh_client.put(f"{EASY_HUNTING}/hunting/agent/4001", number="0033612345678")
    ovh_client.put(f"{EASY_HUNTING}/hunting/agent/4002", description="Marie Curie, portable")
    ovh_client.put(f"{EASY_HUNTING}/timeConditions", unavailableType="number", unavailableNumber="0033478123456")
    site.act("/lille/start", {"number": "06 12 34 56 78"})
    site.act("/lyon/start", {"number": "06 39 98 00 01", "name": "Inès"})
    copy = tmp_path / "copie.json"
    assert check(site.app, snapshot=copy) == 0
    saved = copy.read_text(encoding="utf-8")
    assert "0033612345678" not in saved and "0033478123456" not in saved
    assert LYON_NUMBER in saved and LILLE_NUMBER in saved
    assert DEMO_BILLING_ACCOUNT not in saved and "applicationSecret" not in saved and "consumerKey" not in saved
    assert "Inès" not in saved and "Marie Curie" not in saved, "no person's name"
    state = json.loads(saved)
    hunting = state["billingAccounts"][copied_accounts(state)[LYON_NUMBER]]["easyHunting"][LYON_NUMBER]
    agent = next(a for a in hunting["agents"] if a["agentId"] == 4001)
    assert agent["number"].startswith("003363998")
    assert hunting["timeConditions"]["unavailableNumber"].startswith("003363998")
    fake = FakeOVH(state)  # The simulator takes the copy as it is.
    assert fake.who_rings(LILLE_NUMBER) == [agent["number"]], "the same real number, the same fictional one"


def test_a_snapshot_makes_an_overseas_number_fictional_as_well(site, tmp_path):
    site.act("/lille/start", {"number": "0692 99 99 99"})
    assert site.fake.who_rings(LILLE_NUMBER) == ["00262692999999"]
    copy = tmp_path / "copie.json"
    assert check(site.app, snapshot=copy) == 0
    saved = copy.read_text(encoding="utf-8")
    assert "00262692999999" not in saved
    (fictional,) = FakeOVH(json.loads(saved)).who_rings(LILLE_NUMBER)
    assert fictional.startswith("003363998")
    assert normalize_phone(format_phone(fictional)) == fictional, "typed back as shown, the same number"


def test_a_broken_state_file_is_one_french_sentence(tmp_path, capsys):
    broken = tmp_path / "copie.json"
    broken.write_text("{", encoding="utf-8")
    assert index.main(["--demo", "--state", str(broken)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("ERREUR : ") and "refaites-la avec index.py --check --snapshot" in out


WRONG_SHAPES = {
    "{}": ({}, "le fichier n'a pas de « lastIds »"),
    "a list": ([], "le fichier n'est pas un objet JSON"),
    "an account without lines": (
        {"lastIds": {}, "billingAccounts": {"ab1": {"info": {}}}}, "le compte ab1 n'a pas de « line »",
    ),
    "a queue without agents": (
        {"lastIds": {}, "billingAccounts": {"ab1": {"info": {}, "line": {}, "redirect": {}, "easyHunting": {"0033": {
            "service": {}, "hunting": {}, "queues": []}}}}},
        "le service 0033 du compte ab1 n'a pas de « agents »",
    ),
}  # fmt: skip


@pytest.mark.parametrize("shape", WRONG_SHAPES)
def test_a_state_file_of_the_wrong_shape_is_refused_when_the_demo_starts(tmp_path, shape):
    state, problem = WRONG_SHAPES[shape]
    path = tmp_path / "copie.json"
    path.write_text(json.dumps(state), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(ROOT / "index.py"), "--demo", "--port", "0", "--state", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout == (
        f"ERREUR : {path} : ce n'est pas une copie lisible du compte ({problem}) ; "
        "refaites-la avec index.py --check --snapshot FICHIER.\n"
    )


def test_a_copy_the_simulator_does_not_read_as_ovh_fails_the_check(site, ovh_client, tmp_path, capsys, mocker):
    site.act("/lyon/start", {"number": "0639980001", "ends": "20:00"})
    copied = snapshot.snapshot_group

    def unfaithful(client, group):
        services = copied(client, group)
        for service in services.get("easyHunting", {}).values():
            service["timeConditions"]["enable"] = False  # What a model that misses a setting would do.
        return services

    mocker.patch("cimade_ovh.snapshot.snapshot_group", unfaithful)
    assert check(site.app, snapshot=tmp_path / "copie.json") == 1
    out = capsys.readouterr().out
    assert "ERREUR [lyon] le simulateur ne lit pas la copie comme OVH lit la ligne : " in out
    assert "plages désactivées False chez OVH, True dans la copie" in out and "ERREUR [lille]" not in out


def test_ovh_failing_while_the_copy_is_compared_is_one_french_sentence(site, tmp_path, capsys):
    redirect = f"/telephony/{DEMO_BILLING_ACCOUNT}/redirect/{LILLE_NUMBER}"
    first = len(site.fake.requests)
    assert check(index.App(lines_ini=site.lines_ini), snapshot=tmp_path / "copie.json") == 0
    reads = [r for r in site.fake.requests[first:] if r["path"] == redirect]
    site.fake.fail("GET", redirect, nth=len(reads))  # The last read of Lille at OVH: the comparison's.
    assert check(index.App(lines_ini=site.lines_ini), snapshot=tmp_path / "copie.json") == 1
    out = capsys.readouterr().out
    assert "ERREUR [lille] le simulateur ne lit pas la copie comme OVH lit la ligne : relecture impossible : " \
        "OVH a rencontré une erreur de son côté" in out  # fmt: skip
    assert "Traceback" not in out


PRIVATE_ACCOUNT = "pv77777-ovh-1"  # A billing account is named after the OVH customer's handle (pv77777-ovh).


def plant_private_values(fake):
    """Put a private value in every free text and setting of the demo account that a copy could carry away."""
    state = fake.snapshot()
    account = state["billingAccounts"].pop(DEMO_BILLING_ACCOUNT)
    state["billingAccounts"][PRIVATE_ACCOUNT] = account
    account["info"].update(billingAccount=PRIVATE_ACCOUNT, description="Compte de Mme Privée")
    hunting = account["easyHunting"][LYON_NUMBER]
    hunting["service"]["description"] = "Service privé de Mme Privée"
    hunting["hunting"]["name"] = "Nom privé du groupe"
    queue = hunting["queues"][0]
    queue.update(description="File privée de Mme Privée", actionOnClosure="voicemail",
                 actionOnClosureParam="+33 6 11 22 33 44", actionOnOverflow="playback",
                 actionOnOverflowParam="06.55.66.77.88")  # fmt: skip
    account["redirect"][LILLE_NUMBER]["description"] = "Renvoi privé de Mme Privée"
    line = account["line"][account["redirect"][LILLE_NUMBER]["destination"]]
    line["line"]["description"] = "Ligne privée de Mme Privée"
    line["line"]["notifications"]["logs"]["email"] = "mme.privee@example.org"
    line["options"]["ipRestrictions"] = ["203.0.113.77/32"]
    fake.reset(state)
    return ["Privée", "privé", "mme.privee", "203.0.113.77", "pv77777", "11 22 33 44", "0033611223344",
            "55.66.77.88", "0033655667788"]  # fmt: skip


def test_a_snapshot_carries_away_no_private_value(site, tmp_path, capsys):
    private = plant_private_values(site.fake)
    for slug in ("lyon", "lille"):
        site.configure(slug, billing_account=PRIVATE_ACCOUNT)
    site.act("/lille/start", {"number": "0639980003"})
    copy = tmp_path / "copie.json"
    check(site.app, snapshot=copy)
    told = capsys.readouterr().out
    # The closure's box planted is no line of the account: --check names it, and nothing else.
    assert [line for line in told.splitlines() if line.startswith("ERREUR")] == [
        f"ERREUR [lyon] {format_phone(LYON_NUMBER)} : le répondeur +33 6 11 22 33 44 n'est pas dans le compte "
        f"{PRIVATE_ACCOUNT} : corrigez la clé voicemail du groupe dans lines.ini, ou les renvois vers la messagerie "
        "chez OVH"
    ], told
    saved = copy.read_text(encoding="utf-8")
    assert [value for value in private if value in saved] == []
    assert LYON_NUMBER in saved and LILLE_NUMBER in saved, "the public numbers stay: the copy serves lines.ini"
    state = json.loads(saved)
    site.fake.reset(state)
    serve_on_the_copy(site, state)
    assert "Permanence en cours sur le 06 •• •• •• 03" in text(site.get("/lille")), "the copy serves the page"
