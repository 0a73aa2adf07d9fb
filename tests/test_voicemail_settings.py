"""OVH settings that lose callers: named by index.py --check with the fix, and in one line on a coded group's page."""

import os
import subprocess
import sys

import pytest
from test_security import CODE, set_code
from test_voicemail import enter
from webpage import ROOT, text

from cimade_ovh.simulator import DEMO_BILLING_ACCOUNT, LILLE_SIP_LINE, LYON_NUMBER, LYON_VOICEMAIL

ACCOUNT = f"/telephony/{DEMO_BILLING_ACCOUNT}"
LYON = f"{ACCOUNT}/easyHunting/{LYON_NUMBER}"
VOLUNTEER = "0033639980001"
LOSSES_LINE = "Des réglages d'OVH font perdre des appels"


def run_check(site):
    """index.py --check as IT runs it; return its output lines."""
    result = subprocess.run([sys.executable, str(ROOT / "index.py"), "--check"], cwd="/", capture_output=True,
                            text=True, timeout=120, env={**os.environ, "LINES_INI": str(site.lines_ini)})  # fmt: skip
    assert result.stderr == "", result.stderr
    return result.stdout.splitlines()


def attentions(lines, slug):
    return [line.split(" : ", 1)[1] for line in lines if line.startswith(f"Attention [{slug}] ")]


def volunteer_agent(ovh_client):
    """The id of the agent the page made for VOLUNTEER."""
    agents = [ovh_client.get(f"{LYON}/hunting/agent/{i}") for i in ovh_client.get(f"{LYON}/hunting/agent")]
    return next(a["agentId"] for a in agents if a["number"] == VOLUNTEER)


def lose_callers(site, ovh_client):
    """Lyon's volunteer rings 25 s, Lyon's box takes no message, Lille's mails its messages and deletes them."""
    site.get("/lyon")  # The form's token of Lyon's page.
    site.act("/lyon/start", {"number": "0639980001"})
    ovh_client.put(f"{LYON}/hunting/agent/{volunteer_agent(ovh_client)}", timeout=25)
    ovh_client.put(f"{ACCOUNT}/voicemail/{LYON_VOICEMAIL}/settings", doNotRecord=True)
    ovh_client.put(f"{ACCOUNT}/voicemail/{LILLE_SIP_LINE}/settings", keepMessage=False,
                   redirectionEmails=[{"email": "lille@example.org", "type": "simple"}])  # fmt: skip


def test_check_names_each_setting_that_loses_callers_with_its_fix(site, ovh_client):
    lines = run_check(site)
    assert attentions(lines, "lille") == []
    assert attentions(lines, "lyon") == [  # The demo's queue, as OVH makes it: no sound, nothing when full.
        "la file n'a pas de message d'accueil (toneOnOpening) : sans lui, les appelants ne comprennent pas où ils "
        "arrivent ; dans le manager d'OVH (file d'appels, musiques et messages), enregistrez un message d'accueil",
        "rien n'est prévu quand la file est pleine (actionOnOverflow) : l'appel s'arrête sans un mot ; dans le "
        "manager d'OVH (file d'appels), choisissez un message de débordement ou la messagerie",
    ]
    lose_callers(site, ovh_client)
    ovh_client.put(LYON, toneOnOpening=1001)
    ovh_client.put(f"{LYON}/hunting/queue/5001", actionOnOverflow="playback", actionOnOverflowParam="1002")
    ovh_client.put(f"{LYON}/timeConditions", unavailableType=None)
    lines = run_check(site)
    assert attentions(lines, "lyon") == [
        "l'agent 06 39 98 00 01 sonne 25 s, plus que ring_timeout (10 s) : sa propre messagerie peut prendre l'appel "
        "avant que la file passe au suivant ; dans le manager d'OVH (file d'appels, agents), mettez sa durée de "
        "sonnerie à 10 s ou moins (10 s ou moins conseillé), ou retirez-le de la file",
        "rien n'est prévu quand la file est fermée (actionOnClosure, ni destination hors plages horaires) : l'appel "
        "s'arrête sans un mot ; dans le manager d'OVH, choisissez un message de fermeture ou la messagerie",
    ], "Lyon's box takes no calls without the time conditions' destination"
    assert attentions(lines, "lille") == [
        "le répondeur 03 53 01 00 01 envoie chaque message par courriel puis l'efface (redirectionEmails sans "
        "keepMessage) : la page ne peut jamais le montrer ; dans le manager d'OVH, réglages de la messagerie, cochez "
        "la conservation des messages après l'envoi, ou retirez les adresses"
    ]
    ovh_client.put(f"{LYON}/timeConditions", unavailableType="voicemail", unavailableNumber=LYON_VOICEMAIL)
    assert (
        "le répondeur 04 65 71 00 01 ne prend aucun message (doNotRecord) : les appelants ne peuvent rien laisser ; "
        "dans le manager d'OVH, réglages de la messagerie de la ligne 04 65 71 00 01, autorisez le dépôt de messages"
    ) in attentions(run_check(site), "lyon")
    # Fixed as told: nothing more to say, and the rest of --check as before.
    ovh_client.put(f"{LYON}/hunting/agent/{volunteer_agent(ovh_client)}", timeout=10)
    ovh_client.put(f"{ACCOUNT}/voicemail/{LYON_VOICEMAIL}/settings", doNotRecord=False)
    ovh_client.put(f"{ACCOUNT}/voicemail/{LILLE_SIP_LINE}/settings", keepMessage=True)
    lines = run_check(site)
    assert [line for line in lines if line.startswith("Attention [")] == []
    assert [line for line in lines if line.startswith("ok     [")] == [
        "ok     [lyon] 04 65 71 00 00 : file d'appels n° 5001 ; répondeur : 04 65 71 00 01",
        "ok     [lille] 03 53 01 00 00 : renvoi vers la ligne SIP 03 53 01 00 01 ; répondeur : 03 53 01 00 01",
    ]


@pytest.fixture
def coded(site):
    for slug in ("lyon", "lille"):
        assert set_code(site.lines_ini, slug, CODE).returncode == 0
        enter(site, slug)
    return site


def test_a_coded_group_s_page_says_in_one_line_what_loses_callers(coded, ovh_client):
    site = coded
    assert LOSSES_LINE not in text(site.get("/lyon")) and LOSSES_LINE not in text(site.get("/lille"))
    lose_callers(site, ovh_client)
    contact = "Prévenez l'informatique de la Cimade (informatique@example.org)."
    assert (f"{LOSSES_LINE} : le 06 •• •• •• 01 sonne 25 s, plus que les 10 s prévues : sa propre messagerie peut "
            "prendre l'appel ; le répondeur 04 65 71 00 01 ne prend pas de message. "
            f"{contact}") in text(site.get("/lyon"))  # fmt: skip
    assert (f"{LOSSES_LINE} : le répondeur 03 53 01 00 01 envoie les messages par courriel puis les efface : ils ne "
            f"peuvent pas s'afficher ici. {contact}") in text(site.get("/lille"))  # fmt: skip
    assert VOLUNTEER not in site.get("/lyon").text.replace(f"tel:{VOLUNTEER}", "")


def test_without_the_group_s_code_the_page_neither_reads_nor_says_it(site, ovh_client):
    lose_callers(site, ovh_client)
    start = len(site.fake.requests)
    assert LOSSES_LINE not in text(site.get("/lille"))
    assert not [r for r in site.fake.requests[start:] if "/voicemail" in r["path"]]


def test_a_key_made_before_this_check_still_shows_the_messages(coded, ovh_client):
    from cimade_ovh.config import load_settings
    from cimade_ovh.rules import required_rules
    from cimade_ovh.simulator import LILLE_NUMBER

    site = coded
    boxes = {"lille": [LILLE_SIP_LINE], "lyon": [LYON_VOICEMAIL]}
    rules = required_rules(load_settings(site.lines_ini), {"lille": LILLE_SIP_LINE}, boxes)
    old = [r for r in rules if not r["path"].endswith("/settings")]
    conf = site.folder / "ovh.conf"
    key = site.fake.create_credential(old)
    conf.write_text(conf.read_text(encoding="utf-8").replace(
        next(line.split("=", 1)[1].strip() for line in conf.read_text(encoding="utf-8").splitlines()
             if line.startswith("consumer_key")), key), encoding="utf-8")  # fmt: skip
    site.fake.unanswered_call(LILLE_NUMBER, "0033639989901", 12)
    ovh_client.put(f"{ACCOUNT}/voicemail/{LILLE_SIP_LINE}/settings", keepMessage=False,
                   redirectionEmails=[{"email": "lille@example.org", "type": "simple"}])  # fmt: skip
    page = text(site.get("/lille"))
    assert "1 message à traiter sur la messagerie." in page and LOSSES_LINE not in page
    lines = run_check(site)
    assert f"    GET    {ACCOUNT}/voicemail/{LILLE_SIP_LINE}/settings" in lines
