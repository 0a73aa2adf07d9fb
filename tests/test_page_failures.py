"""When OVH fails: the page tells the truth in French, logs, mails IT, and a retry converges."""

import os
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from webpage import OTHER_VOLUNTEER, THURSDAY_AFTERNOON, VOLUNTEER, text, told, write_lines_ini

from cimade_ovh.ovhapi import OVH_TIMEOUT
from cimade_ovh.phones import format_phone, mask_phone
from cimade_ovh.simulator import (
    DEMO_BILLING_ACCOUNT,
    LILLE_NUMBER,
    LILLE_SIP_LINE,
    LYON_NUMBER,
)

HUNTING = f"/telephony/{DEMO_BILLING_ACCOUNT}/easyHunting/{LYON_NUMBER}/hunting"


def rings(site, slug):
    number = LYON_NUMBER if slug == "lyon" else LILLE_NUMBER
    return site.fake.who_rings(number, at=THURSDAY_AFTERNOON)


NOBODY = {"lyon": [], "lille": [LILLE_SIP_LINE]}
# (name, group, numbers started before, the action, the form, who rings once it is done, volunteers at once)
SCENARIOS = [
    ("lyon-start", "lyon", [], "start", {"number": "0639980001"}, [VOLUNTEER], 1),
    ("lyon-change", "lyon", ["0639980002"], "start", {"number": "0639980001"}, [VOLUNTEER], 1),
    ("lyon-finish", "lyon", ["0639980002"], "finish", {}, [], 1),
    ("lyon-add", "lyon", ["0639980002"], "start", {"number": "0639980001"}, [VOLUNTEER, OTHER_VOLUNTEER], 2),
    ("lyon-remove", "lyon", ["0639980002", "0639980001"], "remove", {"agent": OTHER_VOLUNTEER}, [VOLUNTEER], 2),
    ("lyon-finish-all", "lyon", ["0639980002", "0639980001"], "finish", {}, [], 2),
    ("lille-start", "lille", [], "start", {"number": "0639980001"}, [VOLUNTEER], 1),
    ("lille-change", "lille", ["0639980002"], "start", {"number": "0639980001"}, [VOLUNTEER], 1),
    ("lille-finish", "lille", ["0639980002"], "finish", {}, [LILLE_SIP_LINE], 1),
    ("lyon-ends", "lyon", ["0639980001"], "start", {"number": "0639980001", "ends": "20:00"}, [VOLUNTEER], 1),
    (
        "lyon-add-ends",
        "lyon",
        ["0639980002"],
        "start",
        {"number": "0639980001", "ends": "20:00"},
        [VOLUNTEER, OTHER_VOLUNTEER],
        2,
    ),
    (
        "lyon-remove-ends",
        "lyon",
        [{"number": "0639980002", "ends": "18:00"}, {"number": "0639980001", "ends": "21:00"}],
        "remove",
        {"agent": VOLUNTEER},
        [OTHER_VOLUNTEER],
        2,
    ),
]


def prepare(site, group, before):
    """Start the numbers of `before`, each a number or the form that starts it."""
    for number in before:
        site.act(f"/{group}/start", number if isinstance(number, dict) else {"number": number})


def form_for(site, form):
    """The form to post; "agent" names the volunteer whose "Retirer" button is pressed."""
    if "agent" not in form:
        return form
    return site.remove_form("lyon", form["agent"])


def ovh_calls_of(site, group, before, action, form):
    """The OVH requests an action makes in a warm process, as (method, path, occurrence) triples."""
    site.get(f"/{group}")
    prepare(site, group, before)
    posted = form_for(site, form)
    first = len(site.fake.requests)
    assert site.post(f"/{group}/{action}", posted).status_code == 303
    seen, calls = {}, []
    for request in site.fake.requests[first:]:
        key = (request["method"], request["path"])
        seen[key] = seen.get(key, 0) + 1
        calls.append((*key, seen[key]))
    site.fake.reset()
    return calls


# (fault, played after OVH did the change, what the page says): a refusal; a change made whose answer is lost.
FAULTS = [
    ("500", False, "OVH a rencontré une erreur de son côté."),
    ("drop", True, "Impossible de joindre OVH."),
    ("hang", True, "OVH a mis trop de temps à répondre."),
]


def told_rings(page):
    """Who the page says a call would ring now: masked numbers, or the SIP line's."""
    sip_line = re.search(r"ligne SIP du groupe \((.*?)\)", page)
    return [sip_line[1]] if sip_line else sorted(told(page)[0])


def masked(numbers):
    return sorted(mask_phone(n) if n != LILLE_SIP_LINE else format_phone(n) for n in numbers)


def queue_agents(site):
    service = site.fake.snapshot()["billingAccounts"][DEMO_BILLING_ACCOUNT]["easyHunting"][LYON_NUMBER]
    attached = {link["agentId"] for link in service["agentQueues"]}
    return [a for a in service["agents"] if a["status"] == "available" and a["agentId"] in attached], service


@pytest.mark.parametrize("fault, after, explanation", FAULTS, ids=[f[0] for f in FAULTS])
@pytest.mark.parametrize("name, group, before, action, form, expected, team", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_a_failure_at_any_ovh_call_is_told_truly_and_a_retry_converges(
    site, mocker, name, group, before, action, form, expected, team, fault, after, explanation
):
    site.configure(group, max_volunteers=str(team))
    calls = ovh_calls_of(site, group, before, action, form)
    assert calls, "the action made no OVH call"
    prepare(site, group, before)
    prepared = site.fake.snapshot()
    for method, path, nth in calls:
        site.fake.reset(prepared)
        mails, activity = len(site.mails()), len(site.activity())
        posted = form_for(site, form)
        site.fake.fail(method, path, kind=fault, nth=nth, after=after)
        if fault == "hang":  # The page gives up on the hanging call after 1 s, then reads with its usual patience.
            patience(site, mocker, (2, 1))
            assert site.post(f"/{group}/{action}", posted).status_code == 303
            patience(site, mocker, OVH_TIMEOUT)  # A machine busy with other tests may take over 1 s to answer.
            response = site.get(f"/{group}")
        else:
            response = site.act(f"/{group}/{action}", posted)
        page = text(response)
        where = f"{fault} at {method} {path} #{nth}"
        # What to do now in sight; why, what OVH has and whom to tell if it lasts, folded below it.
        resumed = "Permanence interrompue" in page and action == "start"  # Pressing again resumes it.
        now = "Appuyez de nouveau sur « " if resumed else "Réessayez dans quelques minutes. "
        assert f"La demande n'a pas abouti, ou en partie seulement. {now}" in page, where
        shown = "L'état ci-dessous est celui qu'OVH a maintenant."
        assert f"Pourquoi, et si cela dure {explanation} {shown} Si cela dure, prévenez l'informatique" in page, where
        typed_again = 'value="0639980001"' in response.text
        assert typed_again == (action == "start"), f"{where}: the number typed is kept for a retry, and only it"
        logged = site.activity()[activity:]
        assert len(logged) == 1 and logged[0][5].startswith("erreur "), where
        sent = site.mails()
        assert len(sent) == mails + 1 and "échec" in sent[-1]["Subject"], where
        # The page tells the truth about what rings now, whatever OVH did before failing.
        assert told_rings(page) == masked(rings(site, group)), where
        if group == "lyon":
            available, service = queue_agents(site)
            if team == 1:
                assert len(available) <= 1, f"{where}: two agents available in a single-volunteer queue"
            today_open = any(c["weekDay"] == "thursday" and c["timeFrom"] == "02:00:00" for c in service["conditions"])
            if today_open and not available:
                assert "La permanence est ouverte, mais aucun numéro ne reçoit les appels." in page, where
        page = text(site.act(f"/{group}/{action}", posted))
        assert "La demande n'a pas abouti" not in page, where
        assert sorted(rings(site, group)) == sorted(expected), where


def patience(site, mocker, timeout):
    """The page's OVH timeout from now on: ovh.conf touched, as IT would write it, so the page makes a new client."""
    mocker.patch("cimade_ovh.ovhapi.OVH_TIMEOUT", timeout)
    conf = site.folder / "ovh.conf"
    os.utime(conf, ns=(conf.stat().st_atime_ns, conf.stat().st_mtime_ns + 1_000_000))


def test_a_failed_read_shows_the_error_and_keeps_the_forms(site):
    site.fake.fail("GET", f"{HUNTING}/queue", kind="503")
    response = site.get("/lyon")
    assert response.status_code == 200
    page = text(response)
    assert "Impossible de lire l'état de la ligne chez OVH. OVH a rencontré une erreur de son côté." in page
    assert "l'informatique de la Cimade" in page
    assert 'name="number"' in response.text and "/lyon/finish" in response.text
    assert "impossible de lire" in site.mails()[-1]["Subject"]
    site.fake.fail("GET", f"{HUNTING}/queue", kind="503")
    site.get("/lyon")
    assert len(site.mails()) == 1, "the same failure is mailed once an hour at most"


def test_a_timeout_is_explained(site, mocker):
    mocker.patch("cimade_ovh.ovhapi.OVH_TIMEOUT", (1, 1))
    site.fake.fail("GET", f"{HUNTING}/agent", kind="hang")
    page = text(site.get("/lyon"))
    assert "OVH a mis trop de temps à répondre." in page


def test_a_dropped_connection_during_an_action_is_explained(site):
    site.fake.fail("PUT", f"/telephony/{DEMO_BILLING_ACCOUNT}/line/{LILLE_SIP_LINE}/options", kind="drop")
    page = text(site.act("/lille/start", {"number": "0639980001"}))
    assert "La demande n'a pas abouti, ou en partie seulement. Réessayez dans quelques minutes." in page
    assert "Pourquoi, et si cela dure Impossible de joindre OVH. L'état ci-dessous est celui qu'OVH a" in page
    assert site.activity()[-1][5].startswith("erreur unreachable")


def test_ovh_unreachable(site):
    (site.folder / "ovh.conf").write_text(
        site.fake.ovh_conf_text().replace(f":{site.fake.port}/", ":9/"), encoding="utf-8"
    )
    assert "Impossible de joindre OVH." in text(site.get("/lille"))


def test_an_invalid_credential_tells_to_create_a_new_key(site):
    site.fake.fail("GET", f"{HUNTING}/queue", kind="invalid_credential")
    page = text(site.get("/lyon"))
    assert "La clé d'accès à OVH n'est plus valable" in page
    assert "create_consumer_key.py" in page


def test_a_missing_ovh_conf_is_explained(site):
    (site.folder / "ovh.conf").unlink()
    page = text(site.get("/lyon"))
    assert "Le fichier de configuration OVH (ovh.conf) est absent, incomplet ou erroné." in page


def test_an_unknown_endpoint_is_blamed_on_ovh_conf_not_on_ovh(site):
    conf = (site.folder / "ovh.conf").read_text(encoding="utf-8")
    (site.folder / "ovh.conf").write_text(re.sub(r"endpoint = .*", "endpoint = ovh-xx", conf))
    page = text(site.get("/lyon"))
    assert "Le fichier de configuration OVH (ovh.conf) est absent, incomplet ou erroné." in page
    assert "OVH a rencontré une erreur de son côté" not in page


def test_a_key_without_rights_for_the_group_is_explained(site):
    key = site.fake.create_credential([{"method": "GET", "path": "/telephony/zz98765-ovh-1/*"}])
    site.fake.write_ovh_conf(site.folder / "ovh.conf")
    conf = (site.folder / "ovh.conf").read_text(encoding="utf-8")
    (site.folder / "ovh.conf").write_text(re.sub(r"consumer_key = .*", f"consumer_key = {key}", conf))
    page = text(site.get("/lille"))
    assert "La clé d'accès à OVH n'a pas les droits nécessaires pour ce groupe." in page


@pytest.mark.parametrize("queues", [[], [5001, 5002]])
def test_a_queue_group_without_exactly_one_queue_is_explained(site, queues):
    account = site.fake.snapshot()
    service = account["billingAccounts"][DEMO_BILLING_ACCOUNT]["easyHunting"][LYON_NUMBER]
    template = service["queues"][0]
    service["queues"] = [dict(template, queueId=queue_id) for queue_id in queues]
    site.fake.reset(account)
    page = text(site.get("/lyon"))
    assert f"devrait avoir exactement une file d'appels ; OVH en montre {len(queues)}" in page
    page = text(site.act("/lyon/start", {"number": "0639980001"}))
    assert "La demande n'a pas abouti" in page


def use_key_expiring(site, days):
    expiration = None if days is None else datetime.now(timezone.utc) + timedelta(days=days)
    rules = [{"method": m, "path": "/*"} for m in ("GET", "POST", "PUT", "DELETE")]
    key = site.fake.create_credential(rules, expiration=expiration)
    conf = site.fake.ovh_conf_text()
    (site.folder / "ovh.conf").write_text(re.sub(r"consumer_key = .*", f"consumer_key = {key}", conf))


def test_a_key_expiring_within_two_days_is_shown_and_mailed(site, mocker):
    mocker.patch("cimade_ovh.clock.now", lambda zone: datetime.now(zone))
    use_key_expiring(site, 1)
    page = text(site.get("/lille"))
    assert "La clé d'accès à OVH de cette page expire le" in page
    assert [m["Subject"] for m in site.mails()] == ["[cimade-ovh] La clé OVH expire bientôt"]


def test_a_key_expiring_within_a_week_is_mailed_not_shown(site, mocker):
    mocker.patch("cimade_ovh.clock.now", lambda zone: datetime.now(zone))
    use_key_expiring(site, 5)
    assert "expire le" not in text(site.get("/lille"))
    site.get("/lyon")
    assert [m["Subject"] for m in site.mails()] == ["[cimade-ovh] La clé OVH expire bientôt"]


def test_an_unlimited_key_never_warns(site, mocker):
    mocker.patch("cimade_ovh.clock.now", lambda zone: datetime.now(zone))
    use_key_expiring(site, None)
    assert "expire" not in text(site.get("/lille"))
    assert site.mails() == []


def test_the_credential_is_read_once_per_process(site):
    site.get("/lille")
    site.get("/lyon")
    site.get("/lille")
    reads = [r for r in site.fake.requests if r["path"] == "/auth/currentCredential"]
    assert len(reads) == 1


def test_a_failing_sendmail_and_log_never_break_the_page(site, mocker):
    settings = site.app.settings()
    broken = mocker.patch.object(site.app, "settings")
    broken.return_value = settings._replace(
        sendmail=("/nonexistent/sendmail",), activity_log=site.folder / "ovh.conf" / "activity.log"
    )
    page = text(site.act("/lille/start", {"number": "0639980001"}))
    assert "C'est fait" in page
    assert site.fake.who_rings(LILLE_NUMBER) == [VOLUNTEER]


def test_a_bug_during_an_action_is_told_as_one_logged_and_mailed_with_its_traceback(site, mocker, caplog):
    mocker.patch(
        "cimade_ovh.redirect.RedirectLine.read_back", side_effect=RuntimeError("boom")
    )  # A crash after OVH's write.
    page = text(site.act("/lille/start", {"number": "0639980001"}))
    shown = "Une erreur inattendue s'est produite dans la page. L'état ci-dessous est celui qu'OVH a maintenant."
    assert shown in page
    assert "n'est pas configurée" not in page and "boom" not in page
    assert "Permanence en cours sur le 06 •• •• •• 01" in page, "OVH did it: the page shows it"
    assert site.fake.who_rings(LILLE_NUMBER) == [VOLUNTEER]
    mail = site.mails()[-1]
    assert mail["Subject"] == "[cimade-ovh] Lille : échec (start, 06 39 98 00 01)"
    assert "Traceback" in mail.get_content() and "RuntimeError: boom" in mail.get_content()
    assert "Traceback" in caplog.text and "RuntimeError: boom" in caplog.text


def redirect_to_a_number(billing):
    billing["redirect"][LILLE_NUMBER]["featureType"] = "ddi"


def second_queue(billing):
    queues = billing["easyHunting"][LYON_NUMBER]["queues"]
    queues.append(dict(queues[0], queueId=5002))


@pytest.mark.parametrize(
    "group, change, explanation",
    [
        ("lille", redirect_to_a_number, "Le numéro public de ce groupe ne renvoie pas vers une ligne SIP."),
        ("lyon", second_queue, "La ligne de ce groupe devrait avoir exactement une file d'appels ; OVH en montre 2."),
    ],
)
def test_a_failed_action_keeps_its_own_explanation_after_the_redirect(site, group, change, explanation):
    account = site.fake.snapshot()
    change(account["billingAccounts"][DEMO_BILLING_ACCOUNT])
    site.fake.reset(account)
    page = text(site.act(f"/{group}/start", {"number": "0639980001"}))
    told_after_the_redirect = page.split("La demande n'a pas abouti, ou en partie seulement.")[1].split("En ce moment")[
        0
    ]
    assert explanation in told_after_the_redirect


@pytest.mark.parametrize(
    "explanation, shown",
    [
        ("La ligne de ce groupe devrait avoir exactement une file d'appels ; OVH en montre 3.", True),
        ("Appelez plutôt le 08 99 00 00 00.", False),
        (
            "La ligne de ce groupe devrait avoir exactement une file d'appels ; OVH en montre 3. Appelez le 08 99.",
            False,
        ),
    ],
)
def test_a_flash_cookie_shows_only_the_page_s_own_explanations(site, explanation, shown):
    site.http.cookies.set("flash", quote(f"error-unexpected::{explanation}"), path="/lille")
    page = site.get("/lille")
    assert (explanation in text(page)) is shown
    assert ("La demande n'a pas abouti" in text(page)) is shown
    assert "Pas de permanence en cours." in text(page)


def test_error_pages_name_the_contact_of_lines_ini(site, mocker):
    """Without lines.ini read, a fixed contact; once it is, its own."""
    site.lines_ini.write_text("[lyon]\nname = Lyon\n", encoding="utf-8")
    assert "Prévenez l'informatique de la Cimade." in text(site.get("/lyon"))
    write_lines_ini(site.folder, site.fake, contact="Samia (samia@example.org)")
    (site.folder / "access-codes.ini").write_text("[lyon]\ncode = tournesol\n", encoding="utf-8")
    assert "Prévenez Samia (samia@example.org)." in text(site.get("/lyon")), "access-codes.ini is wrong"
    (site.folder / "access-codes.ini").unlink()
    site.configure("settings", data_dir="lines.ini")
    assert "Prévenez Samia (samia@example.org)." in text(site.get("/lyon")), "the data folder is not one"
    site.configure("settings", data_dir="data")
    mocker.patch("cimade_ovh.pages.render_index", side_effect=RuntimeError("boom"))
    assert "prévenez Samia (samia@example.org)." in text(site.get("/")), "a bug"


def test_an_unexpected_error_gives_a_french_page_without_traceback(site, mocker):
    mocker.patch("cimade_ovh.pages.render_index", side_effect=RuntimeError("boom"))
    response = site.get("/")
    assert response.status_code == 500
    assert "Une erreur inattendue s'est produite" in text(response)
    assert "Traceback" not in response.text and "boom" not in response.text


class Killed(BaseException):
    """What kill -9 does to the page's process in the middle of an action: nothing after it runs."""


def test_an_action_killed_between_two_ovh_writes_leaves_its_start_in_the_activity_log(site, mocker):
    site.act("/lyon/start", {"number": "0639980002"})
    written = len(site.writes())
    mocker.patch("cimade_ovh.queues.QueueLine.open_period", side_effect=Killed)  # Once the agents are switched.
    killed = site.post("/lyon/start", {"number": "06 39 98 00 01"})
    assert killed.status_code == 500, "the server answers for the dead process, as Apache does"
    assert "DELETE" in [r["method"] for r in site.writes()[written:]], "killed after OVH's first writes"
    *_, done, started = site.activity(begun=True)
    assert done[2:6] == ["start", "0033639980002", "127.0.0.1", "ok, jusqu'à minuit"]
    assert started[2:6] == ["start", "0033639980001", "127.0.0.1", "en cours"], "the start is written before OVH is"
    page = text(site.get("/lyon"))
    assert "Dernières actions" in page
    assert page.count("début") == 1, "an action begun is not shown as done among the last actions"
