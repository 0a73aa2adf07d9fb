"""The permanence page, through HTTP, on the OVH simulator: what volunteers see and what rings."""

import re
from datetime import datetime, timedelta

import pytest
from webpage import OTHER_VOLUNTEER, PARIS, THURSDAY_AFTERNOON, VOLUNTEER, text

from cimade_ovh.phones import PhoneError, format_phone, mask_phone, normalize_phone
from cimade_ovh.simulator import (
    DEMO_BILLING_ACCOUNT,
    LILLE_NUMBER,
    LILLE_SIP_LINE,
    LYON_NUMBER,
)

EASY_HUNTING = f"/telephony/{DEMO_BILLING_ACCOUNT}/easyHunting/{LYON_NUMBER}"
CONDITIONS = f"{EASY_HUNTING}/timeConditions/conditions"
AGENTS = f"{EASY_HUNTING}/hunting/agent"
LILLE_OPTIONS = f"/telephony/{DEMO_BILLING_ACCOUNT}/line/{LILLE_SIP_LINE}/options"
IT_MONDAY_SLOT = ("monday", "14:00:00", "16:00:00", "available")


def conditions(client):
    return sorted(
        (c["weekDay"], c["timeFrom"], c["timeTo"], c["policy"])
        for c in (client.get(f"{CONDITIONS}/{i}") for i in client.get(CONDITIONS))
    )


def agents(client):
    return {a["number"]: a for a in (client.get(f"{AGENTS}/{i}") for i in client.get(AGENTS))}


# --- Pages --------------------------------------------------------------------


def test_index_lists_the_groups_without_calling_ovh(site):
    response = site.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert 'href="/lyon"' in response.text and 'href="/lille"' in response.text
    assert "Lyon (04 65 71 00 00)" in text(response)
    assert site.fake.requests == []


def test_unknown_group_is_a_french_404_with_a_link_home(site):
    response = site.get("/grenoble")
    assert response.status_code == 404
    assert "Page introuvable" in response.text
    assert 'href="/"' in response.text


@pytest.mark.parametrize("path", ["/lyon", "/LYON/", "/Lyon"])
def test_group_address_ignores_case_and_trailing_slash(site, path):
    response = site.get(path)
    assert response.status_code == 200
    assert "Permanence téléphonique Lyon" in text(response)


def test_favicon_is_served(site):
    response = site.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"


def test_pages_are_never_cached(site):
    response = site.get("/lyon")
    assert "no-store" in response.headers["Cache-Control"]
    assert response.headers["Pragma"] == "no-cache"


def test_page_shows_the_time_of_its_reading_in_french(site):
    assert "En ce moment jeu. 26/11 16:28" in text(site.get("/lyon"))


def test_other_methods_are_refused(site):
    response = site.http.request("PUT", site.url + "/lyon")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


def test_get_on_an_action_address_changes_nothing(site):
    response = site.get("/lyon/start")
    assert response.status_code == 303
    assert site.writes() == []


# --- Redirect group (Lille) -------------------------------------------------


def test_lille_without_permanence_rings_the_sip_line(site):
    page = text(site.get("/lille"))
    assert "Pas de permanence en cours" in page
    assert "ligne SIP du groupe (03 53 01 00 01)" in page
    assert site.fake.who_rings(LILLE_NUMBER) == [LILLE_SIP_LINE]


def test_lille_start_change_finish(site, ovh_client):
    page = site.act("/lille/start", {"number": "06 39 98 00 01"})
    assert "C'est fait : les appels arrivent maintenant sur le 06 39 98 00 01." in text(page)
    assert "Permanence en cours sur le 06 •• •• •• 01" in text(page)
    assert site.fake.who_rings(LILLE_NUMBER) == [VOLUNTEER]

    page = site.act("/lille/start", {"number": "0639980002"})
    assert "le numéro a changé" in text(page)
    assert site.fake.who_rings(LILLE_NUMBER) == [OTHER_VOLUNTEER]

    page = site.act("/lille/finish")
    assert "La permanence est terminée" in text(page)
    assert "Pas de permanence en cours" in text(page)
    assert site.fake.who_rings(LILLE_NUMBER) == [LILLE_SIP_LINE]
    assert ovh_client.get(LILLE_OPTIONS)["forwardUnconditional"] is False

    actions = [(line[1], line[2], line[3], line[5]) for line in site.activity()]
    assert actions == [
        ("lille", "start", VOLUNTEER, "ok, jusqu'à minuit"),
        ("lille", "change", OTHER_VOLUNTEER, "ok, jusqu'à minuit"),
        ("lille", "finish", "-", "ok"),
    ]
    subjects = [mail["Subject"] for mail in site.mails()]
    assert subjects == [
        "[cimade-ovh] Lille : permanence commencée sur le 06 39 98 00 01, jusqu'à minuit",
        "[cimade-ovh] Lille : permanence passée sur le 06 39 98 00 02, jusqu'à minuit",
        "[cimade-ovh] Lille : permanence terminée",
    ]
    assert all(mail["To"] == "it@example.org" for mail in site.mails())


def test_refresh_after_an_action_repeats_nothing(site):
    site.act("/lille/start", {"number": "0639980001"})
    writes = len(site.writes())
    page = site.get("/lille")
    assert "C'est fait" not in text(page)
    assert "Permanence en cours sur le 06 •• •• •• 01" in text(page)
    assert len(site.writes()) == writes
    assert len(site.activity()) == 1


# --- Queue group (Lyon) -----------------------------------------------------


def test_lyon_start_opens_today_and_rings_the_volunteer(site, ovh_client):
    assert site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON) == []
    page = site.act("/lyon/start", {"number": "06 39 98 00 01"})
    assert "C'est fait : les appels arrivent maintenant sur le 06 39 98 00 01." in text(page)
    assert "Permanence en cours sur le 06 •• •• •• 01" in text(page)
    assert "ça sonne sur le 06 •• •• •• 01" in text(page)
    assert site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON) == [VOLUNTEER]
    assert conditions(ovh_client) == sorted([IT_MONDAY_SLOT, ("thursday", "02:00:00", "23:59:59", "available")])
    agent = agents(ovh_client)[VOLUNTEER]
    assert (agent["status"], agent["timeout"], agent["simultaneousLines"], agent["wrapUpTime"]) == (
        "available",
        10,
        1,
        0,
    )
    assert "Lyon" in agent["description"]


def test_lyon_change_switches_the_agent_inside_a_closed_period(site, ovh_client):
    site.act("/lyon/start", {"number": "0639980001"})
    first = len(site.fake.requests)
    page = site.act("/lyon/start", {"number": "0639980002"})
    assert "le numéro a changé" in text(page)
    assert site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON) == [OTHER_VOLUNTEER]
    assert agents(ovh_client)[VOLUNTEER]["status"] == "loggedOut"
    writes = [(r["method"], r["path"]) for r in site.fake.requests[first:] if r["method"] != "GET"]
    closing = writes.index(("DELETE", next(p for m, p in writes if m == "DELETE")))
    opening = writes.index(("POST", CONDITIONS))
    agent_changes = [i for i, (m, p) in enumerate(writes) if p.startswith(AGENTS)]
    assert closing < min(agent_changes) and max(agent_changes) < opening


def test_lyon_finish_removes_only_the_pages_periods(site, ovh_client):
    site.act("/lyon/start", {"number": "0639980001"})
    page = site.act("/lyon/finish")
    assert "La permanence est terminée" in text(page)
    assert "Pas de permanence en cours" in text(page)
    assert conditions(ovh_client) == [IT_MONDAY_SLOT]
    assert site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON) == []
    monday_slot = datetime(2026, 11, 30, 15, 0, tzinfo=PARIS)
    assert site.fake.who_rings(LYON_NUMBER, at=monday_slot) == []


def test_lyon_page_warns_that_waiting_calls_still_arrive(site):
    site.act("/lyon/start", {"number": "0639980001"})
    site.act("/lille/start", {"number": "0639980001"})
    assert "déjà en attente dans la file peuvent encore arriver" in text(site.get("/lyon"))
    assert "déjà en attente" not in text(site.get("/lille"))


def test_lyon_reuses_an_existing_agent(site, ovh_client):
    before = agents(ovh_client)
    assert "0033639980011" in before
    site.act("/lyon/start", {"number": "06 39 98 00 11"})
    assert agents(ovh_client).keys() == before.keys()
    assert not [r for r in site.fake.requests if r["method"] == "POST" and r["path"] == AGENTS]
    assert site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON) == ["0033639980011"]


def test_lyon_start_logs_other_agents_out(site, ovh_client):
    agent = agents(ovh_client)["0033639980012"]
    ovh_client.put(f"{AGENTS}/{agent['agentId']}", status="available")
    site.act("/lyon/start", {"number": "0639980001"})
    assert agents(ovh_client)["0033639980012"]["status"] == "loggedOut"
    assert site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON) == [VOLUNTEER]


def test_it_slot_shows_who_would_ring_without_a_permanence(site, ovh_client):
    agent = agents(ovh_client)["0033639980012"]
    ovh_client.put(f"{AGENTS}/{agent['agentId']}", status="available")
    site.moment = datetime(2026, 11, 30, 15, 0, tzinfo=PARIS)
    page = text(site.get("/lyon"))
    assert "Pas de permanence en cours" in page
    assert "ça sonne sur le 06 •• •• •• 12" in page


def test_a_period_left_from_an_earlier_day_is_not_running_and_goes_at_the_next_action(site, ovh_client):
    site.moment = THURSDAY_AFTERNOON - timedelta(days=1)
    site.act("/lyon/start", {"number": "0639980001"})
    site.moment = THURSDAY_AFTERNOON
    page = text(site.get("/lyon"))
    assert "Pas de permanence en cours" in page
    assert "Si quelqu'un appelle maintenant, l'appel va sur la messagerie de la ligne." in page
    site.act("/lyon/start", {"number": "0639980002"})
    assert conditions(ovh_client) == sorted([IT_MONDAY_SLOT, ("thursday", "02:00:00", "23:59:59", "available")])


def test_finish_removes_periods_of_every_weekday(site, ovh_client):
    site.moment = THURSDAY_AFTERNOON - timedelta(days=1)
    site.act("/lyon/start", {"number": "0639980001"})
    site.moment = THURSDAY_AFTERNOON
    site.act("/lyon/start", {"number": "0639980001"})
    site.act("/lyon/finish")
    assert conditions(ovh_client) == [IT_MONDAY_SLOT]


def test_lyon_shows_calls_in_progress_and_waiting_in_paris_time(site):
    begin = datetime(2026, 11, 26, 15, 5, tzinfo=PARIS)
    site.fake.add_live_call(LYON_NUMBER, state="Waiting", begin=begin)
    answered = site.fake.add_live_call(LYON_NUMBER, state="Waiting", begin=begin - timedelta(minutes=3))
    site.fake.answer_live_call(LYON_NUMBER, answered, VOLUNTEER)
    page = text(site.act("/lyon/start", {"number": "0639980001"}))
    assert "Appel en attente depuis 15:05" in page
    assert "Appel en cours depuis" in page and "avec le 06 •• •• •• 01" in page


# --- Numbers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "06 39 98 00 01",
        "06.39.98.00.01",
        "06-39-98-00-01",
        "+33 6 39 98 00 01",
        "0033 6 39 98 00 01",
        "+33 (0)6 39 98 00 01",
        "\u202a06\u00a039\u00a098\u00a000\u00a001\u202c",
        "\u200b06 39 98 00 01\ufeff",
        "０６３９９８０００１",
        " 0639980001 ",
    ],
)
def test_pasted_numbers_are_understood(typed):
    assert normalize_phone(typed) == VOLUNTEER


@pytest.mark.parametrize(
    "typed, message",
    [
        ("", "Indiquez le numéro"),
        ("08 00 00 00 00", "numéros spéciaux en 08"),
        ("3949", "trop court"),
        ("06 39 98 00", "trop court"),
        ("06 39 98 00 01 2", "trop long"),
        ("06 39 98 OO 01", "« O »"),
        ("+32 470 12 34 56", "Seuls les numéros français"),
        ("6 39 98 00 01", "doit commencer par 0"),
        ("+33 00 12 34 56 78", "n'existe pas en France"),
        ("00 00 00 00 00", "Seuls les numéros français"),
    ],
)
def test_invalid_numbers_are_explained(typed, message):
    with pytest.raises(PhoneError, match=re.escape(message)):
        normalize_phone(typed)


# Overseas departments: their own country code, the national number without its 0. Fictional: ending 99 99 99.
OVERSEAS = [
    ("0262 99 99 99", "00262262999999"),  # La Réunion, fixed.
    ("0263 99 99 99", "00262263999999"),
    ("0692 99 99 99", "00262692999999"),  # La Réunion, mobile.
    ("0693 99 99 99", "00262693999999"),
    ("0269 99 99 99", "00262269999999"),  # Mayotte, fixed.
    ("0639 99 99 99", "00262639999999"),  # Mayotte, mobile.
    ("0590 99 99 99", "00590590999999"),  # Guadeloupe, Saint-Martin, Saint-Barthélemy.
    ("0690 99 99 99", "00590690999999"),
    ("0691 99 99 99", "00590691999999"),
    ("0594 99 99 99", "00594594999999"),  # Guyane.
    ("0694 99 99 99", "00594694999999"),
    ("0596 99 99 99", "00596596999999"),  # Martinique.
    ("0696 99 99 99", "00596696999999"),
    ("0697 99 99 99", "00596697999999"),
]


@pytest.mark.parametrize("typed, number", OVERSEAS)
def test_overseas_numbers_get_their_department_code(typed, number):
    national = typed.replace(" ", "")
    assert normalize_phone(typed) == number
    assert normalize_phone("+" + number[2:]) == number
    assert normalize_phone(number) == number
    assert normalize_phone("+33 " + national[1:]) == number, "+33 6 92… is the same number, mistyped"
    assert format_phone(number) == " ".join(national[i : i + 2] for i in range(0, 10, 2))
    assert mask_phone(number) == f"{national[:2]} •• •• •• 99"


def test_a_reunion_mobile_is_no_longer_sent_as_a_mainland_number():
    """0692… became 0033692…, a number that does not exist: OVH forwarded the line to nowhere."""
    assert normalize_phone("0692 99 99 99") == "00262692999999"
    assert normalize_phone("+262 (0)6 92 99 99 99") == "00262692999999"
    assert normalize_phone("0590 99 99 99") == "00590590999999"
    assert format_phone("0033692999999") == "0033692999999", "not shown as if it were 06 92 99 99 99"


def test_arcep_fiction_block_inside_mayotte_mobiles_stays_the_projects_demo_number():
    assert normalize_phone("06 39 98 00 01") == VOLUNTEER
    assert normalize_phone("+262 639 98 00 01") == VOLUNTEER


@pytest.mark.parametrize(
    "typed",
    [
        "+262 7 99 99 99 99",  # A mainland number behind Réunion's code.
        "00262 1 99 00 99 99",
        "+590 692 99 99 99",  # Réunion's mobile behind Guadeloupe's code.
        "+594 590 99 99 99",
        "+508 41 99 99",  # Saint-Pierre-et-Miquelon.
        "+689 87 99 99 99",  # French Polynesia, outside the French plan.
    ],
)
def test_other_numbers_behind_an_overseas_code_are_refused(typed):
    with pytest.raises(PhoneError, match=re.escape("Seuls les numéros français sont acceptés")):
        normalize_phone(typed)


def test_saint_pierre_et_miquelon_numbers_are_refused_not_sent_as_mainland_ones():
    with pytest.raises(PhoneError, match=re.escape("Saint-Pierre-et-Miquelon (05 08…) ne sont pas acceptés")):
        normalize_phone("05 08 41 99 99")


def test_a_reunion_volunteer_answers_the_queue_and_is_found_again(site, ovh_client):
    site.configure("lyon", max_volunteers="2")
    reunion = "00262692999999"
    page = text(site.act("/lyon/start", {"number": "+262 692 99 99 99", "name": "Inès", "ends": "18:00"}))
    assert "C'est fait : les appels arrivent maintenant sur le 06 92 99 99 99." in page
    assert agents(ovh_client)[reunion]["status"] == "available"
    assert site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON) == [reunion]
    assert site.activity()[-1][2:4] == ["start", reunion]
    assert site.mails()[-1]["Subject"] == "[cimade-ovh] Lyon : permanence commencée sur le 06 92 99 99 99, jusqu'à 18 h"

    page = text(site.act("/lyon/start", {"number": "06 39 98 00 01"}))
    assert "Inès, 06 •• •• •• 99 : libre, jusqu'à 18 h Retirer" in page, "its planned end, found by its number"
    page = text(site.act("/lyon/start", {"number": "0692 99 99 99", "ends": "18:00"}))
    assert "Le 06 92 99 99 99 reçoit déjà les appels ; rien n'a changé." in page

    page = text(site.act("/lyon/remove", site.remove_form("lyon", reunion)))
    assert "C'est fait : le 06 •• •• •• 99 ne reçoit plus les appels." in page
    assert site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON) == [VOLUNTEER]
    assert agents(ovh_client)[reunion]["status"] != "available"
    site.act("/lyon/start", {"number": "0692999999"})
    site.act("/lyon/finish")
    assert site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON) == []
    assert agents(ovh_client)[reunion]["status"] != "available"


def test_a_martinique_volunteer_gets_the_redirect(site, ovh_client):
    martinique = "00596696999999"
    page = text(site.act("/lille/start", {"number": "0696 99 99 99"}))
    assert "C'est fait : les appels arrivent maintenant sur le 06 96 99 99 99." in page
    assert "Permanence en cours sur le 06 •• •• •• 99" in page
    options = ovh_client.get(LILLE_OPTIONS)
    assert (options["forwardUnconditional"], options["forwardUnconditionalNumber"]) == (True, martinique)
    assert site.fake.who_rings(LILLE_NUMBER) == [martinique]
    page = text(site.act("/lille/start", {"number": "+596 696 99 99 99"}))
    assert "Le 06 96 99 99 99 reçoit déjà les appels ; rien n'a changé." in page
    page = text(site.act("/lille/finish"))
    assert "Pas de permanence en cours" in page
    assert site.fake.who_rings(LILLE_NUMBER) == [LILLE_SIP_LINE]


def test_pasted_number_through_the_page(site):
    site.act("/lyon/start", {"number": "+33\u00a0(0)6\u200b39 98 00 01"})
    assert site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON) == [VOLUNTEER]


def test_invalid_number_keeps_what_was_typed_and_changes_nothing(site):
    response = site.post("/lyon/start", {"number": "08 36 65 65 65"})
    assert response.status_code == 400
    assert "numéros spéciaux en 08" in text(response)
    assert 'value="08 36 65 65 65"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert site.writes() == []
    assert site.activity() == []


OWN_LINE = "Ce numéro est celui d'une ligne de la Cimade : tapez celui du téléphone où vous allez répondre."


@pytest.mark.parametrize(
    "group, typed",
    [
        ("lille", "03 53 01 00 00"),  # Its public number, printed on its page.
        ("lille", "03 53 01 00 01"),  # Its SIP line, which the forward would send back to itself.
        ("lyon", "04 65 71 00 00"),
        ("lyon", "+33 3 53 01 00 00"),  # Another group's public number.
    ],
)
def test_a_number_of_the_cimade_s_own_lines_is_refused_next_to_the_field(site, ovh_client, group, typed):
    site.act("/lille/start", {"number": "0639980002"})
    site.act("/lyon/start", {"number": "0639980002"})
    before = (ovh_client.get(LILLE_OPTIONS), agents(ovh_client), conditions(ovh_client))
    writes = len(site.writes())
    response = site.post(f"/{group}/start", {"number": typed})
    assert response.status_code in (400, 409)
    assert f'<p id="number-error" class="field-error">{OWN_LINE}</p>' in response.text.replace("&#x27;", "'")
    assert f'value="{typed}"' in response.text
    assert len(site.writes()) == writes
    assert (ovh_client.get(LILLE_OPTIONS), agents(ovh_client), conditions(ovh_client)) == before
    assert site.fake.who_rings(LILLE_NUMBER) == [OTHER_VOLUNTEER]
    assert site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON) == [OTHER_VOLUNTEER]


def test_format_phone():
    assert format_phone("0033612345678") == "06 12 34 56 78"
    assert format_phone("00262262999999") == "02 62 99 99 99"
    assert format_phone("0041221234567") == "0041221234567"
