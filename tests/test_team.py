"""Several volunteers answering a queue group together (max_volunteers in lines.ini)."""

import re
from datetime import datetime, timedelta

import pytest
from webpage import PARIS, THURSDAY_AFTERNOON, text

from cimade_ovh.access import sign
from cimade_ovh.simulator import DEMO_BILLING_ACCOUNT, LYON_NUMBER

FIRST = "0033639980001"
SECOND = "0033639980002"
EASY_HUNTING = f"/telephony/{DEMO_BILLING_ACCOUNT}/easyHunting/{LYON_NUMBER}"
CONDITIONS = f"{EASY_HUNTING}/timeConditions/conditions"
AGENTS = f"{EASY_HUNTING}/hunting/agent"


@pytest.fixture
def team(site):
    """The site, with Lyon taking two volunteers at once, as in the demo."""
    site.configure("lyon", max_volunteers="2")
    return site


def rings(site):
    return sorted(site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON))


def agents(client):
    return {a["number"]: a for a in (client.get(f"{AGENTS}/{i}") for i in client.get(AGENTS))}


def remove(site, client, number):
    """Press "Retirer" next to `number`."""
    return site.act("/lyon/remove", site.remove_form("lyon", number))


def test_two_volunteers_ring_and_the_page_shows_each_with_their_call(team, ovh_client):
    team.act("/lyon/start", {"number": "06 39 98 00 01", "name": "Inès"})
    page = text(team.act("/lyon/start", {"number": "06 39 98 00 02", "name": ""}))
    assert "C'est fait : le 06 39 98 00 02 reçoit aussi les appels." in page
    assert rings(team) == [FIRST, SECOND]
    before = datetime.now(PARIS)
    team.fake.add_live_call(LYON_NUMBER, state="Answered", agent=FIRST)
    after = datetime.now(PARIS)
    page = text(team.get("/lyon"))
    assert "Permanence en cours : 2 bénévoles sur 2 au plus." in page
    shown = [f"Inès, 06 •• •• •• 01 : en appel depuis {t:%H:%M}, jusqu'à minuit Retirer" for t in (before, after)]
    assert any(s in page for s in shown)
    assert "06 •• •• •• 02 : libre, jusqu'à minuit Retirer" in page
    assert "Terminer la permanence pour tout le monde" in page
    assert agents(ovh_client)[FIRST]["description"] == "Bénévole Lyon (cimade-ovh) – Inès"


def test_removing_one_leaves_the_other_ringing(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980001"})
    team.act("/lyon/start", {"number": "0639980002"})
    page = text(remove(team, ovh_client, FIRST))
    assert "C'est fait : le 06 •• •• •• 01 ne reçoit plus les appels." in page
    assert rings(team) == [SECOND]
    assert agents(ovh_client)[FIRST]["status"] == "loggedOut"
    assert team.activity()[-1][2:4] == ["remove", FIRST]


def test_finishing_stops_both(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980001"})
    team.act("/lyon/start", {"number": "0639980002"})
    page = text(team.act("/lyon/finish"))
    assert "La permanence est terminée" in page
    assert rings(team) == []
    assert {agents(ovh_client)[n]["status"] for n in (FIRST, SECOND)} == {"loggedOut"}


def test_the_limit_is_enforced_with_a_clear_message(team):
    team.act("/lyon/start", {"number": "0639980001"})
    team.act("/lyon/start", {"number": "0639980002"})
    assert "La permanence est complète (2 bénévoles)." in text(team.get("/lyon"))
    writes = len(team.writes())
    response = team.post("/lyon/start", {"number": "06 39 98 00 03", "name": "Léa"})
    assert response.status_code == 409
    page = text(response)
    assert "La permanence compte déjà 2 bénévoles, le maximum pour ce groupe." in page
    assert "retirez d'abord son numéro" in page
    assert 'value="06 39 98 00 03"' in response.text and 'value="Léa"' in response.text
    assert len(team.writes()) == writes
    assert rings(team) == [FIRST, SECOND]


def test_adding_a_number_closes_the_period_first(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980001"})
    first = len(team.fake.requests)
    team.act("/lyon/start", {"number": "0639980002"})
    writes = [(r["method"], r["path"]) for r in team.fake.requests[first:] if r["method"] != "GET"]
    closing = next(i for i, (m, p) in enumerate(writes) if m == "DELETE" and p.startswith(CONDITIONS))
    opening = writes.index(("POST", CONDITIONS))
    agent_changes = [i for i, (m, p) in enumerate(writes) if p.startswith(AGENTS)]
    assert agent_changes and closing < min(agent_changes) and max(agent_changes) < opening, writes


def test_removing_a_number_only_logs_its_agent_out(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980001"})
    team.act("/lyon/start", {"number": "0639980002"})
    first = len(team.fake.requests)
    remove(team, ovh_client, FIRST)
    writes = [(r["method"], r["path"]) for r in team.fake.requests[first:] if r["method"] != "GET"]
    assert writes == [("PUT", f"{AGENTS}/{agents(ovh_client)[FIRST]['agentId']}")]


def test_the_retirer_button_sends_only_the_volunteers_mark_and_reads_ovh_once(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980001"})
    team.act("/lyon/start", {"number": "0639980002"})
    form = team.remove_form("lyon", FIRST)
    assert list(form) == ["volunteer"] and 'name="agent"' not in team.get("/lyon").text
    first = len(team.fake.requests)
    page = text(team.act("/lyon/remove", form))
    assert "C'est fait : le 06 •• •• •• 01 ne reçoit plus les appels" in page
    made = team.fake.requests[first:]
    before_write = [r["path"] for r in made[: next(i for i, r in enumerate(made) if r["method"] != "GET")]]
    assert len(before_write) == len(set(before_write)), "the agents are read once, as the snapshot reads them"
    assert rings(team) == [SECOND]
    assert agents(ovh_client)[FIRST]["status"] == "loggedOut"


FORGED_MARKS = {
    "made up": lambda key: "x" * 32,
    "another key": lambda key: sign(b"k" * 32, f"volunteer:lyon:{FIRST}"),
    "another group": lambda key: sign(key, f"volunteer:lille:{FIRST}"),
    "digits that are not ASCII": lambda key: "²١𝟙",
}


@pytest.mark.parametrize("forge", FORGED_MARKS.values(), ids=list(FORGED_MARKS))
def test_a_forged_mark_changes_nothing_at_ovh(team, ovh_client, forge):
    team.act("/lyon/start", {"number": "0639980001"})
    team.act("/lyon/start", {"number": "0639980002"})
    mark = forge(team.app.key(team.app.settings()))
    before = (agents(ovh_client), ovh_client.get(CONDITIONS))
    writes = len(team.writes())
    page = text(team.act("/lyon/remove", {"volunteer": mark}))
    assert "Ce numéro ne recevait déjà plus les appels ; rien n'a changé." in page
    assert len(team.writes()) == writes
    assert (agents(ovh_client), ovh_client.get(CONDITIONS)) == before
    assert rings(team) == [FIRST, SECOND]


def test_an_addition_interrupted_after_closing_the_period_is_resumed_by_a_retry(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980001"})
    team.fake.fail("POST", AGENTS, kind="500")
    assert "La demande n'a pas abouti" in text(team.act("/lyon/start", {"number": "0639980002"}))
    assert rings(team) == []
    assert "Permanence interrompue : 1 bénévole sur 2 au plus." in text(team.get("/lyon"))
    page = text(team.act("/lyon/start", {"number": "0639980002"}))
    assert "C'est fait : le 06 39 98 00 02 reçoit aussi les appels." in page
    assert rings(team) == [FIRST, SECOND]


def todays_periods(client):
    return [c for c in (client.get(f"{CONDITIONS}/{i}") for i in client.get(CONDITIONS)) if c["weekDay"] == "thursday"]


def interrupt_an_addition(team):
    """Awa on duty; Bob adds his number and OVH fails on reopening the period; return the page Bob sees."""
    team.act("/lyon/start", {"number": "0639980001", "name": "Awa"})
    team.fake.fail("POST", CONDITIONS, kind="500")
    return team.act("/lyon/start", {"number": "0639980002", "name": "Bob"})


def test_an_addition_failing_at_the_reopening_shows_who_waits_and_how_to_resume(team, ovh_client):
    response = interrupt_an_addition(team)
    assert {agents(ovh_client)[n]["status"] for n in (FIRST, SECOND)} == {"available"}
    assert todays_periods(ovh_client) == [] and rings(team) == []
    page = text(response)
    assert "Permanence interrompue : 2 bénévoles sur 2 au plus." in page
    assert "Awa, 06 •• •• •• 01 : libre" in page and "Bob, 06 •• •• •• 02 : libre" in page
    assert "Si quelqu'un appelle maintenant, l'appel va sur la messagerie de la ligne." in page
    assert "La demande n'a pas abouti, ou en partie seulement. Appuyez de nouveau sur « Ajouter mon numéro »." in page
    assert "Pourquoi, et si cela dure OVH a rencontré une erreur de son côté. L'état ci-dessous" in page
    assert "Pourquoi, et comment reprendre" not in page, "the box says how to resume: no fold repeats it"
    assert 'name="number" type="tel" autocomplete="tel" inputmode="tel" value="0639980002"' in response.text
    assert "Réessayez dans quelques minutes" not in page and "Pas de permanence en cours" not in page
    assert 'aria-label="Retirer le 06 •• •• •• 01"' in response.text and "Ajouter mon numéro</button>" in response.text
    assert team.activity()[-1][2:4] == ["add", SECOND] and team.activity()[-1][5].startswith("erreur server")
    assert "numéro ajouté (échec), 06 •• •• •• 02" in page
    assert "échec (add, 06 39 98 00 02)" in team.mails()[-1]["Subject"]
    page = text(team.act("/lyon/start", {"number": "06 39 98 00 02"}))  # No name typed, as the page allows.
    assert "C'est fait : la permanence reprend, les appels arrivent de nouveau sur les numéros ci-dessous." in page
    assert rings(team) == [FIRST, SECOND] and len(todays_periods(ovh_client)) == 1
    assert "Awa, 06 •• •• •• 01 : libre" in page and "Bob, 06 •• •• •• 02 : libre" in page, "names kept"
    assert agents(ovh_client)[SECOND]["description"].endswith("Bob")
    assert team.activity()[-1][2:4] == ["resume", SECOND] and "permanence reprise, 06 •• •• •• 02" in page


def test_a_failed_addition_keeps_what_was_typed_and_pressing_again_adds_it_as_typed(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980001", "name": "Awa"})
    team.fake.fail("POST", AGENTS, kind="500")  # After the period was closed: interrupted.
    response = team.act("/lyon/start", {"number": "06 39 98 00 02", "name": "Bob", "ends": "18:00"})
    typed = dict(re.findall(r'<input id="(number|ends|name)" [^>]*value="([^"]*)"', response.text))
    assert typed == {"number": "06 39 98 00 02", "ends": "18:00", "name": "Bob"}
    assert "Appuyez de nouveau sur « Ajouter mon numéro »." in text(response)
    page = text(team.act("/lyon/start", typed))  # The button pressed again, the form as the page shows it.
    assert "Bob, 06 •• •• •• 02 : libre, jusqu'à 18 h" in page


def test_another_failed_button_while_interrupted_keeps_the_state_s_explanation(team, ovh_client):
    interrupt_an_addition(team)
    team.fake.fail("PUT", f"{AGENTS}/*", kind="500")
    page = text(team.act("/lyon/finish", {}))
    assert "La demande n'a pas abouti, ou en partie seulement. Réessayez dans quelques minutes." in page
    assert "Pourquoi, et comment reprendre" in page and "ou retirez un numéro, ou terminez la permanence" in page
    assert "Appuyez de nouveau sur « Ajouter mon numéro »" not in page


def test_a_third_volunteer_is_told_to_remove_a_number_and_can_while_interrupted(team, ovh_client):
    interrupt_an_addition(team)
    response = team.post("/lyon/start", {"number": "0639980003"})
    assert response.status_code == 409 and "retirez d'abord son numéro" in text(response)
    assert "La permanence est complète (2 bénévoles)." in text(response)
    page = text(remove(team, ovh_client, FIRST))
    assert agents(ovh_client)[FIRST]["status"] == "loggedOut" and agents(ovh_client)[SECOND]["status"] == "available"
    assert "Permanence interrompue : 1 bénévole sur 2 au plus." in page and rings(team) == []
    page = text(team.act("/lyon/start", {"number": "0639980003"}))
    assert "C'est fait : le 06 39 98 00 03 reçoit aussi les appels." in page
    assert rings(team) == [SECOND, "0033639980003"] and len(todays_periods(ovh_client)) == 1


def test_a_permanence_forgotten_on_an_earlier_day_is_not_resumed(team, ovh_client):
    team.moment = THURSDAY_AFTERNOON - timedelta(days=1)
    team.act("/lyon/start", {"number": "0639980001"})
    team.moment = THURSDAY_AFTERNOON
    page = text(team.act("/lyon/start", {"number": "0639980002"}))
    assert "C'est fait : les appels arrivent maintenant sur le 06 39 98 00 02." in page
    assert rings(team) == [SECOND]


def test_the_same_number_again_changes_nothing_but_may_give_a_name(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980001"})
    writes = len(team.writes())
    page = text(team.act("/lyon/start", {"number": "06 39 98 00 01"}))
    assert "Le 06 39 98 00 01 reçoit déjà les appels ; rien n'a changé." in page
    assert len(team.writes()) == writes
    page = text(team.act("/lyon/start", {"number": "06 39 98 00 01", "name": "Inès"}))
    assert "Inès, 06 •• •• •• 01 : libre" in page
    assert [(r["method"], r["path"]) for r in team.writes()[writes:]] == [
        ("PUT", f"{AGENTS}/{agents(ovh_client)[FIRST]['agentId']}")
    ]
    assert rings(team) == [FIRST]


def test_a_new_end_without_a_name_keeps_the_volunteer_s_name(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980001", "name": "Awa"})
    page = text(team.act("/lyon/start", {"number": "06 39 98 00 01", "name": "", "ends": "20:00"}))
    assert "C'est fait : la fin prévue du 06 39 98 00 01 a changé" in page
    assert "Awa, 06 •• •• •• 01 : libre, jusqu'à 20 h" in page
    assert agents(ovh_client)[FIRST]["description"] == "Bénévole Lyon (cimade-ovh) – Awa"
    assert "retapez votre numéro avec la nouvelle heure (prénom laissé vide : celui que vous aviez donné reste)" in page
    team.act("/lyon/start", {"number": "0639980002"})
    remove(team, ovh_client, FIRST)
    team.act("/lyon/start", {"number": "0639980001", "name": ""})  # The README's way to take one's name off.
    assert agents(ovh_client)[FIRST]["description"] == "Bénévole Lyon (cimade-ovh)"


def test_a_new_name_is_said_to_have_changed(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980001", "name": "Awa"})
    page = text(team.act("/lyon/start", {"number": "06 39 98 00 01", "name": "Inès"}))
    assert "C'est fait : le prénom du 06 39 98 00 01 a changé (voir ci-dessous)." in page
    assert "rien n'a changé" not in page and "Inès, 06 •• •• •• 01 : libre, jusqu'à minuit" in page
    assert agents(ovh_client)[FIRST]["description"] == "Bénévole Lyon (cimade-ovh) – Inès"
    page = text(team.act("/lyon/start", {"number": "06 39 98 00 01", "name": "Léa", "ends": "20:00"}))
    assert "C'est fait : le prénom et la fin prévue du 06 39 98 00 01 ont changé (voir ci-dessous)." in page
    assert "Léa, 06 •• •• •• 01 : libre, jusqu'à 20 h" in page
    assert [line[2] for line in team.activity()] == ["start", "name", "name-ends"]
    assert [m["Subject"] for m in team.mails()][1:] == [
        "[cimade-ovh] Lyon : prénom changé pour le 06 39 98 00 01, jusqu'à minuit",
        "[cimade-ovh] Lyon : prénom et fin prévue changés pour le 06 39 98 00 01, jusqu'à 20 h",
    ]
    assert "prénom et fin prévue changés, 06 •• •• •• 01, jusqu'à 20 h" in page, "in the last actions"


def test_a_name_given_to_an_agent_of_it_s_is_not_said_to_have_changed(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980011"})  # IT's agent "Volunteer 1": the page never renames it.
    page = text(team.act("/lyon/start", {"number": "0639980011", "name": "Awa"}))
    assert "Le 06 39 98 00 11 reçoit déjà les appels ; rien n'a changé." in page
    assert agents(ovh_client)["0033639980011"]["description"] == "Volunteer 1"


NAME_NOT_KEPT = (
    "Votre prénom n'a pas été enregistré : ce numéro est un agent que l'informatique a créé chez OVH, dont la page "
    "ne change pas la description."
)


@pytest.mark.parametrize("before", [[], ["0639980011"]])
def test_a_first_name_given_to_an_agent_of_it_s_is_said_not_to_be_kept(team, ovh_client, before):
    for number in before:
        team.act("/lyon/start", {"number": number})
    page = text(team.act("/lyon/start", {"number": "06 39 98 00 11", "name": "Awa"}))
    assert NAME_NOT_KEPT in page
    assert "Awa" not in page.split(NAME_NOT_KEPT)[1], "no name shown that OVH does not hold"
    assert team.activity()[-1][5].endswith("prénom non enregistré (agent de l'informatique)")
    page = text(team.act("/lyon/start", {"number": "06 39 98 00 02", "name": "Léa"}))
    assert NAME_NOT_KEPT not in page and "Léa, 06 •• •• •• 02" in page, "the page's own agents keep their name"


def test_a_full_permanence_s_button_says_it_changes_one_s_end(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980001"})
    page = team.act("/lyon/start", {"number": "0639980002"})
    assert '<button type="submit">Changer mon heure de fin</button>' in page.text
    assert "Ajouter mon numéro" not in page.text
    assert "Le bouton « Changer mon heure de fin » sert seulement aux bénévoles de permanence" in text(page)
    page = text(team.act("/lyon/start", {"number": "06 39 98 00 02", "ends": "20:00"}))
    assert "06 •• •• •• 02 : libre, jusqu'à 20 h" in page
    assert rings(team) == [FIRST, SECOND]


def test_removing_the_last_volunteer_finishes(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980001"})
    page = text(remove(team, ovh_client, FIRST))
    assert "La permanence est terminée" in page
    assert "Pas de permanence en cours" in page
    assert rings(team) == []


def test_removing_a_number_that_already_left_changes_nothing(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980001"})
    team.act("/lyon/start", {"number": "0639980002"})
    form = team.remove_form("lyon", FIRST)
    team.act("/lyon/remove", form)
    writes = len(team.writes())
    page = text(team.act("/lyon/remove", form))
    assert "Ce numéro ne recevait déjà plus les appels ; rien n'a changé." in page
    assert len(team.writes()) == writes
    assert rings(team) == [SECOND]


def test_a_tampered_remove_form_is_refused(team):
    response = team.post("/lyon/remove", {"agent": "../4001"})
    assert response.status_code == 400
    assert "Cette demande est incomplète." in text(response)


@pytest.mark.parametrize(
    "name, message",
    [
        ("0639980001", "Le prénom ne peut contenir que des lettres"),
        ("<b>Inès</b>", "Le prénom ne peut contenir que des lettres"),
        ("A" * 31, "Le prénom est trop long : 30 caractères au plus."),
        ("\u0301\u0301", "Le prénom doit contenir au moins une lettre."),  # Combining marks only.
        ("...", "Le prénom doit contenir au moins une lettre."),
        ("' -", "Le prénom doit contenir au moins une lettre."),
    ],
)
def test_a_first_name_that_is_not_one_is_explained_and_changes_nothing(team, name, message):
    response = team.post("/lyon/start", {"number": "0639980001", "name": name})
    assert response.status_code == 400
    assert message in text(response)
    assert 'value="0639980001"' in response.text
    assert team.writes() == []


def test_first_names_are_tidied(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980001", "name": "  Marie\u200b-Anne  d’Arc "})
    assert agents(ovh_client)[FIRST]["description"] == "Bénévole Lyon (cimade-ovh) – Marie-Anne d’Arc"
    team.act("/lyon/start", {"number": "0639980002", "name": "Marie\r\nClaire"})
    assert agents(ovh_client)[SECOND]["description"] == "Bénévole Lyon (cimade-ovh) – Marie Claire"


def test_a_right_to_left_first_name_is_isolated_from_the_number_beside_it(team):
    page = team.act("/lyon/start", {"number": "0639980001", "name": "محمد"}).text
    assert '<bdi>محمد</bdi>, <span class="tel">06 •• •• •• 01</span>' in page


def test_the_groups_ring_timeout_and_agent_description_go_to_ovh(team, ovh_client):
    team.configure("lyon", ring_timeout="8", agent_description="Permanence Lyon")
    team.act("/lyon/start", {"number": "06 39 98 00 11", "name": "Paul"})
    team.act("/lyon/start", {"number": "06 39 98 00 01"})
    its, created = agents(ovh_client)["0033639980011"], agents(ovh_client)[FIRST]
    assert (its["timeout"], its["simultaneousLines"], its["description"]) == (8, 1, "Volunteer 1"), "IT's name kept"
    assert (created["timeout"], created["simultaneousLines"], created["description"]) == (8, 1, "Permanence Lyon")


def test_the_pages_agents_are_reused_for_new_numbers_and_never_pile_up(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980001", "name": "Inès"})
    team.act("/lyon/finish")
    first = len(team.fake.requests)
    team.act("/lyon/start", {"number": "0639980002"})
    assert not [r for r in team.fake.requests[first:] if (r["method"], r["path"]) == ("POST", AGENTS)]
    assert sorted(agents(ovh_client)) == [SECOND, "0033639980011", "0033639980012"]
    assert agents(ovh_client)[SECOND]["description"] == "Bénévole Lyon (cimade-ovh)", "Inès's name is gone"
    assert rings(team) == [SECOND]
    team.act("/lyon/start", {"number": "0639980003"})
    assert len(agents(ovh_client)) == 4, "a second volunteer at once needs an agent of their own"


def test_a_group_back_to_one_volunteer_keeps_only_the_number_given(team):
    team.act("/lyon/start", {"number": "0639980001"})
    team.act("/lyon/start", {"number": "0639980002"})
    team.configure("lyon", max_volunteers="1")
    page = text(team.act("/lyon/start", {"number": "0639980001"}))
    assert "le numéro a changé" in page
    assert rings(team) == [FIRST]


def test_a_group_of_one_keeps_one_number_and_says_why(site):
    page = site.get("/lyon")
    assert 'name="name"' not in page.text
    assert site.post("/lyon/remove", {"agent": "4001"}).status_code == 404
    site.act("/lyon/start", {"number": "0639980001"})
    page = text(site.act("/lyon/start", {"number": "0639980002"}))
    assert "le numéro a changé" in page
    assert "Ce groupe reçoit les appels sur un seul numéro à la fois" in page
    assert rings(site) == [SECOND]


def test_a_redirect_group_explains_it_rings_one_number(site):
    assert "un seul numéro à la fois" not in text(site.get("/lille"))
    page = text(site.act("/lille/start", {"number": "0639980001"}))
    assert "Cette ligne renvoie les appels vers un seul numéro à la fois" in page
    assert site.post("/lille/remove", {"agent": "1"}).status_code == 404


# --- An item OVH just listed answers 404 during an action: the action fails, it never acts on a partial view -----

VANISHED = "OVH a perdu de vue un élément de la ligne pendant la lecture"


def lose_once(site, path):
    """OVH answers 404 once for `path` (its hiccup, or a change in the manager at that instant), the next GET."""
    site.fake.fail("GET", path, kind="gone")


def remove_the_second_while_ovh_loses(team, ovh_client, lost):
    """Two on duty; « Retirer » the second while OVH loses the agent of `lost` once: (the page after, the form)."""
    team.act("/lyon/start", {"number": "0639980001"})
    team.act("/lyon/start", {"number": "0639980002"})
    form = team.remove_form("lyon", SECOND)
    lose_once(team, f"{AGENTS}/{agents(ovh_client)[lost]['agentId']}")
    return text(team.act("/lyon/remove", form)), form


def test_retirer_while_ovh_loses_the_other_volunteer_fails_and_ends_nothing(team, ovh_client):
    page, form = remove_the_second_while_ovh_loses(team, ovh_client, FIRST)
    assert VANISHED in page and "rien n'a été changé" in page
    assert rings(team) == [FIRST, SECOND], "the permanence is not ended"
    page = text(team.act("/lyon/remove", form))  # The retry.
    assert "C'est fait : le 06 •• •• •• 02 ne reçoit plus les appels." in page
    assert rings(team) == [FIRST]


def test_retirer_while_ovh_loses_the_leaving_volunteer_fails_instead_of_saying_they_had_left(team, ovh_client):
    page, form = remove_the_second_while_ovh_loses(team, ovh_client, SECOND)
    assert VANISHED in page and "ne recevait déjà plus les appels" not in page
    assert rings(team) == [FIRST, SECOND]
    assert "C'est fait : le 06 •• •• •• 02 ne reçoit plus les appels." in text(team.act("/lyon/remove", form))
    assert rings(team) == [FIRST]


@pytest.mark.parametrize("second", [{"number": "0639980002"}, {"number": "0639980001", "ends": "18:00"}])
def test_an_addition_or_a_new_end_while_ovh_loses_todays_period_fails_and_opens_no_second_one(team, ovh_client, second):
    team.act("/lyon/start", {"number": "0639980001"})
    [period] = todays_periods(ovh_client)
    lose_once(team, f"{CONDITIONS}/{period['conditionId']}")
    page = text(team.act("/lyon/start", second))
    assert VANISHED in page
    assert todays_periods(ovh_client) == [period] and rings(team) == [FIRST]
    page = text(team.act("/lyon/start", second))
    assert "C'est fait" in page and len(todays_periods(ovh_client)) == 1


def test_a_second_period_of_the_page_today_is_cleared_by_a_change_of_end(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980001"})
    [period] = todays_periods(ovh_client)
    ovh_client.post(CONDITIONS, **{k: period[k] for k in ("weekDay", "timeFrom", "policy")}, timeTo="21:59:59")
    page = text(team.act("/lyon/start", {"number": "0639980001", "ends": "18:00"}))
    assert "C'est fait : la fin prévue du 06 39 98 00 01 a changé" in page
    assert [p["timeTo"] for p in todays_periods(ovh_client)] == ["17:59:59"]
    assert "jusqu'à 18 h" in page
    page = text(team.act("/lyon/start", {"number": "0639980001", "ends": "19:00"}))  # Every later change works too.
    assert [p["timeTo"] for p in todays_periods(ovh_client)] == ["18:59:59"] and "jusqu'à 19 h" in page


def test_a_one_volunteer_group_whose_change_fails_at_the_reopening_shows_it_interrupted_and_resumes(site, ovh_client):
    site.act("/lyon/start", {"number": "0639980001"})
    site.fake.fail("POST", CONDITIONS, kind="500")
    response = site.act("/lyon/start", {"number": "0639980002"})
    page = text(response)
    assert todays_periods(ovh_client) == [] and rings(site) == []
    assert "Pas de permanence en cours" not in page
    assert "Permanence interrompue sur le 06 •• •• •• 02." in page
    assert "Si quelqu'un appelle maintenant, l'appel va sur la messagerie de la ligne." in page
    assert "Appuyez de nouveau sur « Répondre sur ce numéro »." in page
    assert 'value="0639980002"' in response.text, "the number typed, to press again"
    page = text(site.act("/lyon/start", {"number": "0639980002"}))
    assert "C'est fait : la permanence reprend" in page and "Permanence en cours sur le 06 •• •• •• 02." in page
    assert rings(site) == [SECOND] and len(todays_periods(ovh_client)) == 1


def test_resuming_with_a_new_first_name_says_the_name_changed(team, ovh_client):
    interrupt_an_addition(team)  # Awa and Bob wait for the line to reopen.
    page = text(team.act("/lyon/start", {"number": "06 39 98 00 02", "name": "Robert"}))
    assert "C'est fait : la permanence reprend" in page
    assert "le prénom du 06 39 98 00 02 a changé" in page and "Robert, 06 •• •• •• 02 : libre" in page
    assert team.activity()[-1][2:4] == ["resume-name", SECOND]
    assert rings(team) == [FIRST, SECOND]
