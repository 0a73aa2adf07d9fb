"""A planned end, « Heure de fin »: OVH closes a queue, stats.py a redirect or a volunteer leaving early."""

from datetime import timedelta

import pytest
from webpage import OTHER_VOLUNTEER, THURSDAY_AFTERNOON, VOLUNTEER, as_told, text, told

import stats
from cimade_ovh import config
from cimade_ovh.clock import END_OF_DAY
from cimade_ovh.config import ConfigError, load_settings
from cimade_ovh.ends import read_ends
from cimade_ovh.simulator import DEMO_BILLING_ACCOUNT, LILLE_NUMBER, LILLE_SIP_LINE, LYON_NUMBER

LYON = f"/telephony/{DEMO_BILLING_ACCOUNT}/easyHunting/{LYON_NUMBER}"
QUEUE = f"{LYON}/hunting/queue/5001"
CONDITIONS = f"{LYON}/timeConditions/conditions"
IT_MONDAY_SLOT = ("monday", "14:00:00", "16:00:00", "available")
PLANNED = "fin prévue à 18 h, appliquée à"


def at(hour, minute):
    return THURSDAY_AFTERNOON.replace(hour=hour, minute=minute)


def conditions(client):
    return sorted(
        (c["weekDay"], c["timeFrom"], c["timeTo"], c["policy"])
        for c in (client.get(f"{CONDITIONS}/{i}") for i in client.get(CONDITIONS))
    )


def run_cron(site, monkeypatch, moment):
    site.moment = moment
    monkeypatch.setattr(config, "LINES_INI", site.lines_ini)
    return stats.main([])


def test_a_queue_permanence_closes_at_its_planned_end(site, ovh_client):
    page = text(site.act("/lyon/start", {"number": "0639980001", "ends": "18:00"}))
    assert "Permanence en cours sur le 06 •• •• •• 01. Fin prévue à 18 h." in page
    assert conditions(ovh_client) == sorted([IT_MONDAY_SLOT, ("thursday", "02:00:00", "17:59:59", "available")])
    assert site.fake.who_rings(LYON_NUMBER, at=at(17, 59)) == [VOLUNTEER]
    after = site.fake.who_rings(LYON_NUMBER, at=at(18, 1))
    assert (after, after.elsewhere) == ([], "voicemail")
    assert site.activity()[-1][2:6] == ["start", VOLUNTEER, "127.0.0.1", "ok, jusqu'à 18 h"]
    assert site.mails()[-1]["Subject"] == "[cimade-ovh] Lyon : permanence commencée sur le 06 39 98 00 01, jusqu'à 18 h"
    assert "Fin prévue : 18 h" in site.mails()[-1].get_content()
    site.moment = at(18, 1)
    page = text(site.get("/lyon"))
    assert "Pas de permanence en cours." in page, "a permanence whose end has passed is not running"
    assert "Si quelqu'un appelle maintenant, l'appel va sur la messagerie de la ligne." in page
    assert "Terminer la permanence" in page, "the page's agent is still there to end"


def test_a_failed_change_of_end_is_logged_as_one(site, ovh_client):
    site.act("/lyon/start", {"number": "0639980001", "ends": "21:00"})
    site.fake.fail("PUT", f"{CONDITIONS}/*")
    page = text(site.act("/lyon/start", {"number": "0639980001", "ends": "20:00"}))
    assert "La demande n'a pas abouti" in page
    assert site.activity()[-1][2:4] == ["ends", VOLUNTEER] and site.activity()[-1][5].startswith("erreur server")
    assert "fin prévue changée (échec), 06 •• •• •• 01" in page
    assert "échec (ends, 06 39 98 00 01)" in site.mails()[-1]["Subject"]


def test_a_retry_after_a_failed_change_of_end_says_it_changed_and_the_page_never_promises_more(site, ovh_client):
    site.configure("lyon", max_volunteers="2")
    site.act("/lyon/start", {"number": "0639980001", "name": "Awa", "ends": "19:00"})
    site.fake.fail("PUT", f"{CONDITIONS}/*")
    page = text(site.act("/lyon/start", {"number": "0639980001", "ends": "21:00"}))
    assert ("thursday", "02:00:00", "18:59:59", "available") in conditions(ovh_client)
    assert "Awa, 06 •• •• •• 01 : libre, jusqu'à 19 h" in page, "OVH's end, not the one asked for"
    page = text(site.act("/lyon/start", {"number": "0639980001", "ends": "21:00"}))
    assert "C'est fait : la fin prévue du 06 39 98 00 01 a changé" in page
    assert ("thursday", "02:00:00", "20:59:59", "available") in conditions(ovh_client)
    assert "Awa, 06 •• •• •• 01 : libre, jusqu'à 21 h" in page and site.activity()[-1][2] == "ends"


def test_a_refused_number_leaves_no_planned_end(site):
    site.configure("lyon", max_volunteers="2")
    site.act("/lyon/start", {"number": "0639980001", "ends": "21:00"})
    site.act("/lyon/start", {"number": "0639980002", "ends": "20:00"})
    settings = load_settings(site.lines_ini)
    before = read_ends(settings, settings.groups["lyon"])
    assert sorted(before[1]) == sorted([VOLUNTEER, OTHER_VOLUNTEER])
    response = site.post("/lyon/start", {"number": "0639980003", "ends": "18:00"})
    assert response.status_code == 409 and "retirez d'abord son numéro" in text(response)
    assert read_ends(settings, settings.groups["lyon"]) == before, "stats.py has no end to apply to it"


def test_changing_the_end_moves_the_period_only(site, ovh_client):
    site.act("/lyon/start", {"number": "0639980001", "ends": "18:00"})
    page = text(site.act("/lyon/start", {"number": "06 39 98 00 01", "ends": "20:30"}))
    assert "C'est fait : la fin prévue du 06 39 98 00 01 a changé" in page
    assert "Fin prévue à 20 h 30." in page
    assert ("thursday", "02:00:00", "20:29:59", "available") in conditions(ovh_client)
    writes = [(r["method"], r["path"].rsplit("/", 2)[-2]) for r in site.writes()][-1:]
    assert writes == [("PUT", "conditions")], "only the period's end changes"
    site.act("/lyon/start", {"number": "0639980001", "ends": "17h"})
    assert site.fake.who_rings(LYON_NUMBER, at=at(17, 1)) == []
    assert [line[2] for line in site.activity()[-3:]] == ["start", "ends", "ends"]
    assert "Le 06 39 98 00 01 reçoit déjà les appels ; rien n'a changé." in text(
        site.act("/lyon/start", {"number": "0639980001", "ends": "17:00"})
    )


def test_a_volunteer_ending_earlier_is_taken_off_by_the_cron_job(site, ovh_client, monkeypatch):
    site.configure("lyon", max_volunteers="2")
    site.act("/lyon/start", {"number": "0639980001", "ends": "18:00"})
    page = text(site.act("/lyon/start", {"number": "0639980002", "name": "Inès", "ends": "20:00"}))
    assert "06 •• •• •• 01 : libre, jusqu'à 18 h Retirer Inès, 06 •• •• •• 02 : libre, jusqu'à 20 h Retirer" in page
    assert ("thursday", "02:00:00", "19:59:59", "available") in conditions(ovh_client), "the latest end"
    before = len(site.fake.requests)
    assert run_cron(site, monkeypatch, at(17, 55)) == 0
    assert sorted(site.fake.who_rings(LYON_NUMBER, at=at(17, 55))) == [VOLUNTEER, OTHER_VOLUNTEER]
    assert not [r for r in site.fake.requests[before:] if r["method"] != "GET"], "nothing changed before an end"
    assert run_cron(site, monkeypatch, at(18, 2)) == 0
    assert site.fake.who_rings(LYON_NUMBER, at=at(18, 2)) == [OTHER_VOLUNTEER]
    assert site.activity()[-1][2:6] == ["auto-finish", VOLUNTEER, "stats.py", f"ok, {PLANNED} 18 h 02"]
    assert site.activity(begun=True)[-2][2:6] == ["auto-finish", VOLUNTEER, "stats.py", "en cours"], "before OVH"
    page = text(site.get("/lyon"))
    assert "1 bénévole sur 2 au plus. Inès, 06 •• •• •• 02 : libre, jusqu'à 20 h" in page
    assert "fin automatique, 06 •• •• •• 01, fin prévue à 18 h, appliquée à 18 h 02" in page
    assert run_cron(site, monkeypatch, at(20, 3)) == 0
    assert site.fake.who_rings(LYON_NUMBER, at=at(19, 0)) == []
    assert conditions(ovh_client) == [IT_MONDAY_SLOT], "the last one ending finishes the permanence"


def test_the_cron_job_takes_a_volunteer_off_reading_the_line_once_without_its_live_calls(site, monkeypatch):
    site.configure("lyon", max_volunteers="2")
    site.act("/lyon/start", {"number": "0639980001", "ends": "18:00"})
    site.act("/lyon/start", {"number": "0639980002", "ends": "20:00"})
    site.fake.add_live_call(LYON_NUMBER, "Answered", agent=OTHER_VOLUNTEER)
    site.fake.add_live_call(LYON_NUMBER)
    before = len(site.fake.requests)
    assert run_cron(site, monkeypatch, at(18, 2)) == 0
    assert site.fake.who_rings(LYON_NUMBER, at=at(18, 2)) == [OTHER_VOLUNTEER]
    lyon = [r["path"] for r in site.fake.requests[before:] if r["path"].startswith(LYON) and r["method"] == "GET"]
    recorded = lyon.index(f"{QUEUE}/liveStatistics") + 1  # The record's reads end there; the planned end's follow.
    assert len([path for path in lyon[:recorded] if path.startswith(f"{QUEUE}/liveCalls")]) == 3, "the list, 2 calls"
    planned_end = lyon[recorded:]
    assert [path for path in planned_end if "/liveCalls" in path] == []
    assert planned_end.count(f"{LYON}/hunting/agent") == 1, "the line is read once"


def awa_until_21_and_bob_until_18(site):
    site.configure("lyon", max_volunteers="2")
    site.act("/lyon/start", {"number": "0639980001", "name": "Awa", "ends": "21:00"})
    site.act("/lyon/start", {"number": "0639980002", "name": "Bob", "ends": "18:00"})
    return site.remove_form("lyon", VOLUNTEER)


def test_retirer_closes_the_period_at_the_latest_end_of_those_left(site, ovh_client):
    form = awa_until_21_and_bob_until_18(site)
    assert ("thursday", "02:00:00", "20:59:59", "available") in conditions(ovh_client)
    first = len(site.fake.requests)
    assert site.post("/lyon/remove", form).status_code == 303
    made = [(r["method"], r["path"].rsplit("/", 2)[-2]) for r in site.fake.requests[first:]]
    page = text(site.get("/lyon"))
    assert "C'est fait : le 06 •• •• •• 01 ne reçoit plus les appels" in page
    assert "1 bénévole sur 2 au plus. Bob, 06 •• •• •• 02 : libre, jusqu'à 18 h" in page
    assert conditions(ovh_client) == sorted([IT_MONDAY_SLOT, ("thursday", "02:00:00", "17:59:59", "available")])
    assert site.fake.who_rings(LYON_NUMBER, at=at(17, 59)) == [OTHER_VOLUNTEER]
    assert site.fake.who_rings(LYON_NUMBER, at=at(18, 0)) == []
    writes = [call for call in made if call[0] != "GET"]
    assert writes == [("PUT", "agent"), ("PUT", "conditions")], "the agent leaves, then the period's end moves"
    read_back = sorted(made[made.index(writes[-1]) + 1 :])
    assert read_back == [("GET", "agent"), ("GET", "conditions"), ("GET", "timeConditions")], "what was written"


def test_retirer_finishes_when_those_left_are_past_their_end(site, ovh_client):
    form = awa_until_21_and_bob_until_18(site)
    site.moment = at(18, 1)
    page = text(site.act("/lyon/remove", form))
    assert "La permanence est terminée : le 06 •• •• •• 01 est retiré, et la fin prévue de ceux qui restaient " \
        "est déjà passée." in page
    assert conditions(ovh_client) == [IT_MONDAY_SLOT]
    assert site.fake.who_rings(LYON_NUMBER, at=at(18, 1)) == []
    assert site.activity()[-1][2:4] == ["remove-finish", "0033639980001"]
    assert "numéro retiré, permanence terminée, 06 •• •• •• 01" in page


def test_a_redirect_with_no_end_stored_is_read_once_by_the_cron_job(site, monkeypatch):
    """Its redirect is read once (lines.ini checked), then its SIP line's options: is it forwarding, with no end?"""
    before = len(site.fake.requests)
    assert run_cron(site, monkeypatch, at(17, 58)) == 0
    lille_calls = [r for r in site.fake.requests[before:] if "/line/" in r["path"] or "/redirect/" in r["path"]]
    read = [(r["method"], r["path"].rsplit("/", 2)[-2:]) for r in lille_calls]
    assert read == [("GET", ["redirect", LILLE_NUMBER]), ("GET", [LILLE_SIP_LINE, "options"])]


def test_a_redirect_is_ended_by_the_cron_job_after_its_planned_end(site, monkeypatch):
    site.act("/lille/start", {"number": "0639980001", "ends": "18:00"})
    assert "Fin prévue à 18 h." in text(site.get("/lille"))
    before = len(site.fake.requests)
    assert run_cron(site, monkeypatch, at(17, 58)) == 0
    lille_calls = [r for r in site.fake.requests[before:] if "/line/" in r["path"] or "/redirect/" in r["path"]]
    read = [(r["method"], r["path"].rsplit("/", 2)[-2:]) for r in lille_calls]
    assert read == [("GET", ["redirect", LILLE_NUMBER])], "before the end, only the redirect: lines.ini checked"
    assert site.fake.who_rings(LILLE_NUMBER) == [VOLUNTEER], "not before the end"
    assert run_cron(site, monkeypatch, at(18, 3)) == 0
    assert site.fake.who_rings(LILLE_NUMBER) == [LILLE_SIP_LINE]
    assert site.activity()[-1][2:6] == ["auto-finish", VOLUNTEER, "stats.py", f"ok, {PLANNED} 18 h 03"]
    assert site.mails()[-1]["Subject"] == "[cimade-ovh] Lille : fin automatique sur le 06 39 98 00 01"
    page = text(site.get("/lille"))
    assert "Pas de permanence en cours." in page and "Terminer" not in page
    assert "jeu. 26/11 18:03 : fin automatique, 06 •• •• •• 01, fin prévue à 18 h, appliquée à 18 h 03" in page
    assert run_cron(site, monkeypatch, at(18, 8)) == 0
    assert [line[2] for line in site.activity()].count("auto-finish") == 1


@pytest.mark.parametrize(
    "typed, message",
    [
        ("16:00", "16 h est déjà passé : choisissez une heure plus tard aujourd'hui."),
        ("16:40", "Choisissez une fin au moins 15 minutes après maintenant (après 16:43)."),
        ("midi et demi", "Heure illisible : écrivez-la par exemple 18:00."),
        ("25:00", "Heure illisible : écrivez-la par exemple 18:00."),
        ("", "Indiquez l'heure de fin, par exemple 18:00."),
    ],
)
def test_a_wrong_end_is_explained_next_to_the_field_and_nothing_is_done(site, typed, message):
    response = site.post("/lyon/start", {"number": "06 39 98 00 01", "ends": typed})
    assert response.status_code == 400
    assert f'<p id="ends-error" class="field-error">{message}</p>' in response.text.replace("&#x27;", "'")
    assert 'value="06 39 98 00 01"' in response.text
    assert 'id="ends" name="ends"' in response.text and f'value="{typed}"' in response.text
    assert site.writes() == [] and site.activity() == []


def test_the_form_proposes_the_groups_end_from_lines_ini(site, ovh_client):
    assert 'id="ends" name="ends" type="time" autocomplete="off" value="23:59"' in site.get("/lyon").text
    site.configure("settings", ends_at="19:00")
    site.configure("lille", ends_at="17h30")
    assert 'value="19:00"' in site.get("/lyon").text and 'value="17:30"' in site.get("/lille").text
    site.act("/lyon/start", {"number": "0639980001"})  # A form without the field: the group's end.
    assert ("thursday", "02:00:00", "18:59:59", "available") in conditions(ovh_client)
    site.moment = at(18, 50)
    assert 'value="23:59"' in site.get("/lyon").text, "less than 15 minutes before the group's end: the day's end"


def test_an_end_before_the_page_opens_the_line_is_refused_next_to_the_field(site, ovh_client):
    site.moment = at(0, 30)
    response = site.post("/lyon/start", {"number": "0639980001", "ends": "01:30"})
    assert response.status_code == 400
    assert "La page n'ouvre la ligne qu'à partir de 2 h : choisissez une fin après 2 h." in text(response)
    assert 'value="01:30"' in response.text and site.writes() == []
    site.configure("lyon", ends_at="01:00")
    assert "la page n'ouvre la ligne qu'à partir de 2 h" in load_settings(site.lines_ini).broken["lyon"]


def test_midnight_from_a_phone_s_time_picker_is_the_end_of_the_day(site, ovh_client):
    page = text(site.act("/lyon/start", {"number": "0639980001", "ends": "00:00"}))
    assert "Permanence en cours sur le 06 •• •• •• 01. Fin prévue à minuit." in page
    assert ("thursday", "02:00:00", "23:59:59", "available") in conditions(ovh_client)
    site.configure("lyon", ends_at="00:00")
    assert 'id="ends" name="ends" type="time" autocomplete="off" value="23:59"' in site.get("/lyon").text
    assert load_settings(site.lines_ini).groups["lyon"].ends_at == END_OF_DAY


def test_a_wrong_ends_at_in_lines_ini_names_the_key(site):
    site.configure("lyon", ends_at="tard")
    settings = load_settings(site.lines_ini)
    assert "lyon" not in settings.groups and "lille" in settings.groups, "only the broken group is out"
    assert "section [lyon], clé « ends_at » : « tard » n'est pas une heure" in settings.broken["lyon"]
    site.configure("lyon", ends_at="18:00")
    site.configure("settings", ends_at="tôt")
    with pytest.raises(ConfigError, match=r"section \[settings\], clé « ends_at » : « tôt » n'est pas une heure"):
        load_settings(site.lines_ini)


def test_the_page_recognises_its_periods_whatever_their_end_and_never_it_s(site, ovh_client, monkeypatch):
    for start, end in [("02:00:00", "18:00:00"), ("09:00:00", "17:59:59")]:
        ovh_client.post(CONDITIONS, weekDay="thursday", timeFrom=start, timeTo=end, policy="available")
    theirs = conditions(ovh_client)
    site.act("/lyon/start", {"number": "0639980001", "ends": "19:00"})
    site.act("/lyon/finish")
    assert conditions(ovh_client) == theirs
    site.moment = at(10, 0)
    ovh_client.post(CONDITIONS, weekDay="wednesday", timeFrom="02:00:00", timeTo="12:29:59", policy="available")
    assert run_cron(site, monkeypatch, at(10, 0)) == 0
    assert conditions(ovh_client) == theirs, "stats.py removes a period of the page left on an earlier day"


def test_the_finish_section_shows_only_when_there_is_something_to_end(site):
    for slug in ("lyon", "lille"):
        assert "/finish" not in site.get(f"/{slug}").text
        site.act(f"/{slug}/start", {"number": "0639980001"})
        assert "/finish" in site.get(f"/{slug}").text


@pytest.mark.parametrize("slug, team", [("lille", 1), ("lyon", 1), ("lyon", 2)])
def test_a_failure_at_any_ovh_call_of_an_automatic_end_is_reported_and_the_next_run_converges(
    site, monkeypatch, capsys, slug, team
):
    site.configure("lyon", max_volunteers=str(team))
    site.act(f"/{slug}/start", {"number": "0639980001", "ends": "18:00"})
    if team == 2:
        site.act("/lyon/start", {"number": "0639980002", "ends": "20:00"})
    number = LYON_NUMBER if slug == "lyon" else LILLE_NUMBER
    expected = [OTHER_VOLUNTEER] if team == 2 else ([] if slug == "lyon" else [LILLE_SIP_LINE])
    prepared, data = site.fake.snapshot(), (site.folder / "data" / "ends" / f"{slug}.json").read_text()
    first = len(site.fake.requests)
    assert run_cron(site, monkeypatch, at(18, 2)) == 0
    service = "/redirect/" if slug == "lille" else "/easyHunting/"
    calls, seen = [], {}
    for r in site.fake.requests[first:]:
        if (service in r["path"] or "/line/" in r["path"]) and "liveStatistics" not in r["path"]:
            seen[r["method"], r["path"]] = seen.get((r["method"], r["path"]), 0) + 1
            calls.append((r["method"], r["path"], seen[r["method"], r["path"]]))
    writes = [c for c in calls if c[0] != "GET"]
    assert writes, "the automatic end changed nothing"
    for method, path, nth in writes:
        site.fake.reset(prepared)
        (site.folder / "data" / "ends" / f"{slug}.json").write_text(data)
        site.fake.fail(method, path, kind="500", nth=nth)
        assert run_cron(site, monkeypatch, at(18, 2)) == 1, f"{method} {path} #{nth}"
        assert f"stats.py : [{slug}] OVH a rencontré une erreur de son côté" in capsys.readouterr().err
        assert run_cron(site, monkeypatch, at(18, 7)) == 0, f"{method} {path} #{nth}"
        assert sorted(site.fake.who_rings(number, at=at(18, 7))) == expected, f"{method} {path} #{nth}"


def test_late_in_the_evening_the_form_s_end_of_day_still_starts_a_permanence(site):
    site.moment = at(23, 50)
    page = text(site.act("/lille/start", {"number": "0639980001", "ends": "23:59"}))
    assert "C'est fait : les appels arrivent maintenant sur le 06 39 98 00 01" in page
    assert site.fake.who_rings(LILLE_NUMBER, at=at(23, 55)) == [VOLUNTEER]


def test_a_forward_ovh_applied_without_answering_still_ends_at_its_planned_end(site, monkeypatch):
    site.fake.fail("PUT", f"/telephony/{DEMO_BILLING_ACCOUNT}/line/{LILLE_SIP_LINE}/options", kind="drop", after=True)
    page = text(site.act("/lille/start", {"number": "0639980001", "ends": "18:00"}))
    assert "La demande n'a pas abouti" in page and site.fake.who_rings(LILLE_NUMBER) == [VOLUNTEER]
    assert run_cron(site, monkeypatch, at(18, 3)) == 0
    assert site.fake.who_rings(LILLE_NUMBER, at=at(18, 3)) == [LILLE_SIP_LINE]


@pytest.mark.parametrize("volunteers", ["1", "2"])
def test_before_two_in_the_morning_a_queue_permanence_is_told_to_open_at_two(site, volunteers):
    site.configure("lyon", max_volunteers=volunteers)
    site.moment = at(1, 0)
    page = text(site.act("/lyon/start", {"number": "0639980001", "ends": "12:00"}))
    assert "Permanence en cours" not in page and "arrivent maintenant" not in page
    assert "C'est fait : les appels arriveront à partir de 2 h sur le 06 39 98 00 01." in page
    assert "Permanence prévue à partir de 2 h" in page and "12 h" in page
    assert told(page) == as_told(site.fake.who_rings(LYON_NUMBER, at=at(1, 0))) == ([], "", "voicemail")
    assert site.fake.who_rings(LYON_NUMBER, at=at(2, 1)) == [VOLUNTEER]
    site.moment = at(2, 1)
    assert "Permanence en cours" in text(site.get("/lyon"))


# --- A planned end the page cannot store -------------------------------------------------------

NOT_KEPT = "la page n'a pas pu enregistrer la fin prévue"


def break_ends(site, how):
    """data/ends made unusable as the review found it: replaced by a file, or the group's file corrupt."""
    ends = site.folder / "data" / "ends"
    if how == "replaced":
        ends.mkdir(exist_ok=True)
        for path in ends.iterdir():
            path.unlink()
        ends.rmdir()
        ends.write_text("not a folder", encoding="utf-8")
    else:
        ends.mkdir(exist_ok=True)
        for slug in ("lille", "lyon"):
            (ends / f"{slug}.json").write_text('{"day": "2026-11-26", "ends": {', encoding="utf-8")


@pytest.mark.parametrize("how", ["replaced", "corrupt"])
def test_a_planned_end_that_cannot_be_stored_is_said_and_the_volunteer_asked_to_end_by_hand(site, how):
    site.configure("lyon", max_volunteers="2")
    site.act("/lyon/start", {"number": "0639980002", "ends": "20:00"})
    break_ends(site, how)  # Replaced: no end can be stored; corrupt: the end of 02 is lost.
    page = text(site.act("/lyon/start", {"number": "0639980001", "ends": "18:00"}))
    assert "C'est fait : le 06 39 98 00 01 reçoit aussi les appels." in page
    assert NOT_KEPT in page and "terminez la permanence vous-même" in page
    assert "fin prévue non enregistrée" in site.mails()[-1].get_content()
    assert site.activity()[-1][5].endswith("fin prévue non enregistrée")


def test_a_redirect_changed_over_a_corrupt_ends_file_stores_its_end_and_says_nothing(site):
    site.act("/lille/start", {"number": "0639980002", "ends": "20:00"})
    break_ends(site, "corrupt")
    page = text(site.act("/lille/start", {"number": "0639980001", "ends": "18:00"}))
    assert "C'est fait : le numéro a changé" in page and NOT_KEPT not in page
    assert read_ends(load_settings(site.lines_ini), load_settings(site.lines_ini).groups["lille"])[1] == {
        VOLUNTEER: 18 * 3600
    }


def test_a_redirect_whose_end_is_unknown_is_ended_by_the_cron_job_at_the_end_of_the_day(site, monkeypatch):
    site.act("/lille/start", {"number": "0639980001", "ends": "18:00"})
    (site.folder / "data" / "ends" / "lille.json").write_text("{", encoding="utf-8")  # Lost, whatever the way.
    assert run_cron(site, monkeypatch, at(23, 55)) == 1, "the corrupt file is told to IT, once"
    assert site.fake.who_rings(LILLE_NUMBER) == [VOLUNTEER], "not before the end of the day"
    assert run_cron(site, monkeypatch, at(0, 3) + timedelta(days=1)) == 0
    assert site.fake.who_rings(LILLE_NUMBER) == [LILLE_SIP_LINE]
    assert site.activity()[-1][2:4] == ["auto-finish", VOLUNTEER]
