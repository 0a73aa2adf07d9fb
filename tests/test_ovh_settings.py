"""The page tells what a call does as OVH decides it: time-condition settings and the queue's strategy."""

import pytest
from webpage import THURSDAY_AFTERNOON, VOLUNTEER, as_told, text, told, write_lines_ini

import index
from cimade_ovh.commands import check
from cimade_ovh.simulator import DEMO_BILLING_ACCOUNT, LYON_NUMBER

EASY_HUNTING = f"/telephony/{DEMO_BILLING_ACCOUNT}/easyHunting/{LYON_NUMBER}"


def page_as_ovh_decides(site):
    """The group page, after checking that its sentence says what the simulator does with a call now."""
    page = text(site.get("/lyon"))
    assert told(page) == as_told(site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON)), page
    return page


@pytest.mark.parametrize(
    "strategy, said",
    [
        ("ringAll", "ça sonne ensemble sur le 06 •• •• •• 01, 06 •• •• •• 02."),
        ("sequentiallyByAgentOrder", "ça sonne d'abord sur le 06 •• •• •• 01, puis sur le 06 •• •• •• 02."),
    ],
)
def test_during_a_permanence_the_page_says_who_rings_and_how(site, ovh_client, strategy, said):
    site.configure("lyon", max_volunteers="2")
    ovh_client.put(f"{EASY_HUNTING}/hunting/queue/5001", strategy=strategy)
    site.act("/lyon/start", {"number": "0639980001"})
    assert "Si quelqu'un appelle maintenant, ça sonne sur le 06 •• •• •• 01." in page_as_ovh_decides(site)
    site.act("/lyon/start", {"number": "0639980002"})
    assert f"Si quelqu'un appelle maintenant, {said}" in page_as_ovh_decides(site)


@pytest.mark.parametrize(
    "settings, condition, said",
    [
        ({}, None, "l'appel va sur la messagerie de la ligne."),
        (
            {"unavailableType": "number", "unavailableNumber": "0033465710123"},
            None,
            "l'appel est renvoyé vers le 04 •• •• •• 23.",
        ),
        ({"unavailableType": None}, None, "l'appelant entend le message de fermeture de la ligne"),
        (
            {"slot2Type": "number", "slot2Number": "0033465710145"},
            {"weekDay": "thursday", "timeFrom": "16:00:00", "timeTo": "17:00:00", "policy": "slot2"},
            "l'appel est renvoyé vers le 04 •• •• •• 45.",
        ),
    ],
    ids=["voicemail", "number", "closing-message", "slot"],
)
def test_outside_a_permanence_the_page_says_where_calls_go(site, ovh_client, settings, condition, said):
    ovh_client.put(f"{EASY_HUNTING}/hunting/agent/4001", status="available")  # IT's agent: the line is closed anyway.
    if settings:
        ovh_client.put(f"{EASY_HUNTING}/timeConditions", **settings)
    if condition:
        ovh_client.post(f"{EASY_HUNTING}/timeConditions/conditions", **condition)
    page = page_as_ovh_decides(site)
    assert "Pas de permanence en cours." in page
    assert f"Si quelqu'un appelle maintenant, {said}" in page


def test_with_time_conditions_disabled_the_page_says_so_and_mails_it_once_without_touching_them(site, ovh_client):
    ovh_client.put(f"{EASY_HUNTING}/timeConditions", enable=False)
    ovh_client.put(f"{EASY_HUNTING}/hunting/agent/4001", status="available")
    first = len(site.fake.requests)
    page = page_as_ovh_decides(site)
    assert "Les plages horaires de cette ligne sont désactivées chez OVH : la page ne peut ni ouvrir ni fermer" in page
    assert "Pas de permanence en cours. " in page and "ça sonne sur le 06 •• •• •• 11." in page
    site.act("/lyon/start", {"number": "0639980001"})
    assert "ça sonne sur le 06 •• •• •• 01." in page_as_ovh_decides(site)
    night = THURSDAY_AFTERNOON.replace(hour=1)
    assert site.fake.who_rings(LYON_NUMBER, at=night) == [VOLUNTEER], "disabled: it rings at any time"
    site.act("/lyon/finish")
    assert "ça ne sonne chez personne." in page_as_ovh_decides(site)
    subjects = [m["Subject"] for m in site.mails() if "plages horaires" in m["Subject"]]
    assert subjects == ["[cimade-ovh] Lyon : plages horaires désactivées chez OVH"]
    assert "Plages horaires et fermetures" in next(m for m in site.mails() if "plages" in m["Subject"]).get_content()
    settings_writes = [r for r in site.fake.requests[first:] if r["path"] == f"{EASY_HUNTING}/timeConditions"]
    assert {r["method"] for r in settings_writes} == {"GET"}
    assert ovh_client.get(f"{EASY_HUNTING}/timeConditions")["enable"] is False


def test_check_fails_for_a_group_whose_time_conditions_are_disabled(fake_ovh, ovh_client, tmp_path, capsys):
    app = index.App(lines_ini=write_lines_ini(tmp_path, fake_ovh))
    assert check(app) == 0
    ovh_client.put(f"{EASY_HUNTING}/timeConditions", enable=False)
    first = len(fake_ovh.requests)
    assert check(app) == 1
    out = capsys.readouterr().out
    assert "ERREUR [lyon] 04 65 71 00 00 : Les plages horaires de la file d'appels sont désactivées chez OVH" in out
    assert "« Activées »" in out and "ok     [lille]" in out
    assert not [r for r in fake_ovh.requests[first:] if r["method"] != "GET"], "--check only reads"
