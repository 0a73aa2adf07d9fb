"""stats.py and the groups' voicemail: handled messages deleted after keep_handled_days, new ones mailed."""

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from test_security import CODE, set_code
from test_voicemail import CALLER, OTHER_CALLER, enter, use_a_key_without
from webpage import ROOT, text

import stats
from cimade_ovh import config
from cimade_ovh.config import load_settings
from cimade_ovh.ovhapi import CURRENT_CREDENTIAL, connect_ovh
from cimade_ovh.rules import required_rules
from cimade_ovh.simulator import (
    DEMO_APPLICATION_KEY,
    DEMO_APPLICATION_SECRET,
    DEMO_BILLING_ACCOUNT,
    LILLE_NUMBER,
    LILLE_SIP_LINE,
    LYON_VOICEMAIL,
)

BOXES = f"/telephony/{DEMO_BILLING_ACCOUNT}/voicemail"


@pytest.fixture
def coded(site):
    """The site with an access code on Lille, typed in by the browser."""
    result = set_code(site.lines_ini, "lille", CODE)
    assert result.returncode == 0, result.stdout + result.stderr
    enter(site, "lille")
    return site


def run_stats(site, monkeypatch):
    """stats.py as cron runs it, at the moment the site believes it is."""
    monkeypatch.setattr(config, "LINES_INI", site.lines_ini)
    return stats.main(())


def folder_of(ovh_client, box, folder):
    """The ids of a box's folder, as OVH lists them."""
    return ovh_client.get(f"{BOXES}/{box}/directories", dir=folder)


def handled_records(site, slug="lille"):
    path = site.folder / "data" / "voicemail" / f"{slug}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


# --- keep_handled_days ---


def test_handled_messages_are_deleted_at_ovh_once_kept_long_enough(coded, ovh_client, monkeypatch, capsys):
    site = coded
    site.configure("lille", keep_handled_days="30")
    now = site.moment
    early = site.fake.unanswered_call(LILLE_NUMBER, CALLER, 42, now - timedelta(days=40))
    late = site.fake.unanswered_call(LILLE_NUMBER, OTHER_CALLER, 17, now - timedelta(days=2))
    elsewhere = site.fake.unanswered_call(LILLE_NUMBER, "0033639989903", 9, now - timedelta(days=50))
    waiting = site.fake.unanswered_call(LILLE_NUMBER, "0033639989904", 5, now - timedelta(days=60))
    site.moment = now - timedelta(days=31)
    site.act("/lille/handled", {"message": f"{LILLE_SIP_LINE}:{early}", "name": "Awa"})
    site.moment = now - timedelta(days=1)
    site.act("/lille/handled", {"message": f"{LILLE_SIP_LINE}:{late}", "name": "Awa"})
    ovh_client.post(f"{BOXES}/{LILLE_SIP_LINE}/directories/{elsewhere}/move", dir="old")  # On the phone, say.
    site.moment = now
    assert run_stats(site, monkeypatch) == 0
    assert capsys.readouterr() == ("", "")
    assert folder_of(ovh_client, LILLE_SIP_LINE, "old") == sorted([late, elsewhere])
    assert folder_of(ovh_client, LILLE_SIP_LINE, "inbox") == [waiting], "never a message to handle"
    records = handled_records(site)
    assert f"{LILLE_SIP_LINE}:{early}" not in records
    assert records[f"{LILLE_SIP_LINE}:{elsewhere}"] == {"seen": now.isoformat(timespec="seconds")}
    deleted = [line for line in site.activity() if line[2] == "message-deleted"]
    assert [line[1:6] for line in deleted] == [[
        "lille", "message-deleted", "-", "stats.py",
        "message du sam. 17/10 16:28 (42 s) supprimé chez OVH, traité depuis 30 jours ou plus",
    ]]  # fmt: skip
    everything = (site.folder / "data").rglob("*")
    assert not [p for p in everything if p.is_file() and CALLER in p.read_text(encoding="utf-8", errors="replace")]
    page = text(site.get("/lille"))
    assert "2 messages traités" in page and "rappelé par Awa" in page
    # A month later: the one handled on the page a day before, and the one seen handled by this run.
    site.moment = now + timedelta(days=30)
    assert run_stats(site, monkeypatch) == 0
    assert folder_of(ovh_client, LILLE_SIP_LINE, "old") == []
    assert folder_of(ovh_client, LILLE_SIP_LINE, "inbox") == [waiting]
    assert handled_records(site) == {}


def test_without_keep_handled_days_nothing_is_deleted(coded, ovh_client, monkeypatch):
    site = coded
    message = site.fake.unanswered_call(LILLE_NUMBER, CALLER, 42, site.moment - timedelta(days=400))
    site.act("/lille/handled", {"message": f"{LILLE_SIP_LINE}:{message}"})
    site.moment += timedelta(days=400)
    start = len(site.fake.requests)
    assert run_stats(site, monkeypatch) == 0
    read = [(r["method"], r["path"], r["query"]) for r in site.fake.requests[start:] if "/voicemail" in r["path"]]
    assert read == [("GET", f"{BOXES}/{LILLE_SIP_LINE}/directories", "dir=old")], "only the box of its records"
    assert folder_of(ovh_client, LILLE_SIP_LINE, "old") == [message]
    assert f"{LILLE_SIP_LINE}:{message}" in handled_records(site)


def test_who_handled_a_message_deleted_or_put_back_at_ovh_is_forgotten(coded, ovh_client, monkeypatch):
    site = coded
    deleted, put_back, kept = (site.fake.unanswered_call(LILLE_NUMBER, CALLER, s) for s in (42, 17, 9))
    for message in (deleted, put_back, kept):
        site.act("/lille/handled", {"message": f"{LILLE_SIP_LINE}:{message}", "name": "Awa"})
    ovh_client.delete(f"{BOXES}/{LILLE_SIP_LINE}/directories/{deleted}")  # In OVH's manager, say.
    ovh_client.post(f"{BOXES}/{LILLE_SIP_LINE}/directories/{put_back}/move", dir="inbox")
    assert run_stats(site, monkeypatch) == 0
    assert set(handled_records(site)) == {f"{LILLE_SIP_LINE}:{kept}"}
    ovh_client.post(f"{BOXES}/{LILLE_SIP_LINE}/directories/{put_back}/move", dir="old")  # Handled again elsewhere.
    page = text(site.get("/lille"))
    assert page.count("rappelé par Awa") == 1, "the former « Traité » is not shown for the later one"
    site.act("/lille/unhandled", {"message": f"{LILLE_SIP_LINE}:{kept}"})
    assert handled_records(site) == {}
    start = len(site.fake.requests)
    assert run_stats(site, monkeypatch) == 0
    assert not [r for r in site.fake.requests[start:] if "/voicemail" in r["path"]], "no records: no box read"


def test_a_message_put_back_to_handle_meanwhile_is_kept(coded, ovh_client, monkeypatch, mocker):
    site = coded
    site.configure("lille", keep_handled_days="1")
    message = site.fake.unanswered_call(LILLE_NUMBER, CALLER, 42, site.moment - timedelta(days=3))
    key = f"{LILLE_SIP_LINE}:{message}"
    site.act("/lille/handled", {"message": key})
    site.moment += timedelta(days=2)
    from cimade_ovh import voicemail_tasks

    real_get = voicemail_tasks.unless_gone

    def put_back_first(call, path):  # Another volunteer's « À traiter » between the list and the deletion.
        ovh_client.post(f"{path}/move", dir="inbox")
        return real_get(call, path)

    mocker.patch.object(voicemail_tasks, "unless_gone", put_back_first)
    assert run_stats(site, monkeypatch) == 0
    assert folder_of(ovh_client, LILLE_SIP_LINE, "inbox") == [message]


@pytest.mark.parametrize("days", ["0", "trente", "-3", "3661"])
def test_keep_handled_days_must_be_a_number_of_days(site, days):
    site.configure("lille", keep_handled_days=days)
    settings = load_settings(site.lines_ini)
    assert settings.broken["lille"] == (
        f"{site.lines_ini}, section [lille], clé « keep_handled_days » : « {days} » n'est pas un nombre de jours "
        "(1 à 3660) ; sans cette clé, les messages traités restent chez OVH"
    )


def test_the_key_may_delete_messages_only_for_a_group_that_sets_keep_handled_days(site):
    boxes = {"lille": [LILLE_SIP_LINE], "lyon": [LYON_VOICEMAIL]}

    def voicemail_rules():
        rules = required_rules(load_settings(site.lines_ini), {"lille": LILLE_SIP_LINE}, boxes)
        return [(r["method"], r["path"]) for r in rules if r["path"].startswith(BOXES)]

    lyon, lille = f"{BOXES}/{LYON_VOICEMAIL}/directories", f"{BOXES}/{LILLE_SIP_LINE}/directories"
    reading = [("GET", BOXES), ("GET", lyon), ("GET", f"{lyon}/*"), ("POST", f"{lyon}/*"),
               ("GET", f"{BOXES}/{LYON_VOICEMAIL}/settings"), ("GET", lille), ("GET", f"{lille}/*"),
               ("POST", f"{lille}/*"), ("GET", f"{BOXES}/{LILLE_SIP_LINE}/settings")]  # fmt: skip
    assert voicemail_rules() == reading
    site.configure("lille", keep_handled_days="30")
    assert voicemail_rules() == [*reading, ("DELETE", f"{lille}/*")]
    rules = required_rules(load_settings(site.lines_ini), {"lille": LILLE_SIP_LINE})  # Boxes not known yet.
    assert [r for r in rules if r["method"] == "DELETE" and "/voicemail" in r["path"]] == [
        {"method": "DELETE", "path": f"{BOXES}/*"}
    ]


def test_stats_py_deletes_with_exactly_the_generated_rules(coded, ovh_client, monkeypatch, capsys):
    from test_consumer_key import conf_keys, run_script

    from cimade_ovh.simulator import validate_remotely

    site = coded
    site.configure("lille", keep_handled_days="30")
    status, output = run_script("--lines-ini", site.lines_ini, validate=validate_remotely)
    assert status == 0, output
    _, keys = conf_keys(site.folder / "ovh.conf")
    client = connect_ovh(site.fake.url, DEMO_APPLICATION_KEY, DEMO_APPLICATION_SECRET, keys["consumer_key"])
    granted = client.get(CURRENT_CREDENTIAL)["rules"]
    assert {"method": "DELETE", "path": f"{BOXES}/{LILLE_SIP_LINE}/directories/*"} in granted
    assert not [r for r in granted if r["method"] == "DELETE" and LYON_VOICEMAIL in r["path"]]
    message = site.fake.unanswered_call(LILLE_NUMBER, CALLER, 42, site.moment - timedelta(days=40))
    site.act("/lille/handled", {"message": f"{LILLE_SIP_LINE}:{message}"})
    site.moment += timedelta(days=30)
    assert run_stats(site, monkeypatch) == 0, capsys.readouterr()
    assert folder_of(ovh_client, LILLE_SIP_LINE, "old") == []


def test_cron_run_as_it_is_printed_deletes_nothing_early(coded, ovh_client):
    site = coded
    site.configure("lille", keep_handled_days="3650")
    message = site.fake.unanswered_call(LILLE_NUMBER, CALLER, 42)
    site.act("/lille/handled", {"message": f"{LILLE_SIP_LINE}:{message}"})
    environment = {**os.environ, "LINES_INI": str(site.lines_ini)}
    result = subprocess.run([sys.executable, str(ROOT / "stats.py")], env=environment, cwd="/", capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert folder_of(ovh_client, LILLE_SIP_LINE, "old") == [message]


# --- messages_to ---


def alerts(site):
    """The mails sent to the group's messages_to (IT's go to notify)."""
    return [mail for mail in site.mails() if "it@example.org" not in mail["To"]]


def announced(site, slug="lille"):
    path = site.folder / "data" / "voicemail" / f"{slug}.announced.json"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def alerted(site):
    """The site with Lille's new messages mailed to two addresses, and the site's public address."""
    site.configure("settings", site_url="https://permanences.example.org/")
    site.configure("lille", messages_to="lille@example.org, coordination@example.org")
    return site


def test_each_new_message_is_mailed_once_without_the_caller(alerted, ovh_client, monkeypatch, capsys):
    site = alerted
    site.fake.unanswered_call(LILLE_NUMBER, OTHER_CALLER, 17, site.moment - timedelta(hours=3))
    assert run_stats(site, monkeypatch) == 0  # The first run: what waits already is not new.
    assert alerts(site) == []
    site.fake.unanswered_call(LILLE_NUMBER, CALLER, 42, site.moment + timedelta(minutes=1))
    site.moment += timedelta(minutes=5)
    assert run_stats(site, monkeypatch) == 0
    assert capsys.readouterr() == ("", "")
    (mail,) = alerts(site)
    assert mail["To"] == "lille@example.org, coordination@example.org"
    assert mail["Subject"] == "[cimade-ovh] Lille : nouveau message sur le répondeur"
    assert mail.get_content() == (
        "Un message attend sur la messagerie de Lille.\n\n"
        "Laissé le jeudi 26 novembre 2026 à 16:29, durée 42 s.\n\n"
        "Pour l'écouter et rappeler la personne, avec le code d'accès du groupe, sur la page du groupe : "
        "https://permanences.example.org/lille\n"
    )
    assert not mail.is_multipart(), "no audio"
    logged = [line for line in site.activity() if line[2] == "message-announced"]
    assert [line[1:6] for line in logged] == [[
        "lille", "message-announced", "-", "stats.py",
        "message du jeu. 26/11 16:29 (42 s) annoncé à lille@example.org, coordination@example.org",
    ]]  # fmt: skip
    for path in [*(site.folder / "data").rglob("*"), *(site.folder / "mailbox").glob("*")]:
        content = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        assert CALLER not in content and "06 39 98 99 01" not in content and "39989901" not in content, path
    site.moment += timedelta(minutes=5)
    assert run_stats(site, monkeypatch) == 0
    assert len(alerts(site)) == 1, "once per message"


def test_a_run_reads_each_box_once_and_a_message_only_when_new(alerted, monkeypatch):
    site = alerted
    assert run_stats(site, monkeypatch) == 0
    site.fake.unanswered_call(LILLE_NUMBER, CALLER, 42, site.moment + timedelta(minutes=1))
    site.moment += timedelta(minutes=5)

    def voicemail_reads():
        start = len(site.fake.requests)
        assert run_stats(site, monkeypatch) == 0
        return sorted((r["path"].removeprefix(BOXES), r["query"]) for r in site.fake.requests[start:]
                      if r["path"].startswith(BOXES))  # fmt: skip

    (message,) = site.fake.messages_in(LILLE_SIP_LINE)
    assert voicemail_reads() == [(f"/{LILLE_SIP_LINE}/directories", "dir=inbox"),
                                 (f"/{LILLE_SIP_LINE}/directories/{message['id']}", "")]  # fmt: skip
    assert voicemail_reads() == [(f"/{LILLE_SIP_LINE}/directories", "dir=inbox")]  # Lyon's box: never.


def test_an_alert_to_it_s_own_address_that_sendmail_refuses_is_told_once(alerted, monkeypatch, capsys):
    """messages_to may name IT's address (notify): the refused alert is said as an alert, not as a mail to IT."""
    site = alerted
    site.configure("lille", messages_to="it@example.org")
    assert run_stats(site, monkeypatch) == 0
    site.configure("settings", sendmail="false")
    site.fake.unanswered_call(LILLE_NUMBER, CALLER, 42, site.moment + timedelta(minutes=1))
    site.moment += timedelta(minutes=5)
    assert run_stats(site, monkeypatch) == 1
    told = capsys.readouterr().err.splitlines()
    assert len(told) == 1 and told[0].startswith("stats.py : [lille] l'alerte d'un nouveau message à it@example.org")


def test_an_alert_that_sendmail_refuses_is_sent_at_the_next_run(alerted, monkeypatch, capsys):
    site = alerted
    assert run_stats(site, monkeypatch) == 0
    mailbox = site.folder / "mailbox"
    site.configure("settings", sendmail="false")  # The server's mail is down.
    site.fake.unanswered_call(LILLE_NUMBER, CALLER, 42, site.moment + timedelta(minutes=1))
    site.moment += timedelta(minutes=5)
    assert run_stats(site, monkeypatch) == 1
    assert capsys.readouterr().err.splitlines() == [
        "stats.py : [lille] l'alerte d'un nouveau message à lille@example.org, coordination@example.org n'est pas "
        "partie (commande « false », clé sendmail de lines.ini) ; elle repartira au prochain passage de stats.py : "
        "vérifiez l'envoi de courriels du serveur"
    ]
    assert announced(site)["messages"] == {}
    site.configure("settings", sendmail=f"sh -c 'cat > \"$0/mail-$$.eml\"' {mailbox}")
    site.moment += timedelta(minutes=5)
    assert run_stats(site, monkeypatch) == 0
    assert [mail["Subject"] for mail in alerts(site)] == ["[cimade-ovh] Lille : nouveau message sur le répondeur"]
    assert run_stats(site, monkeypatch) == 0
    assert len(alerts(site)) == 1


def test_the_records_forget_a_message_a_week_after_it_stopped_waiting(alerted, ovh_client, monkeypatch):
    site = alerted
    assert run_stats(site, monkeypatch) == 0
    message = site.fake.unanswered_call(LILLE_NUMBER, CALLER, 42, site.moment + timedelta(minutes=1))
    site.moment += timedelta(minutes=5)
    assert run_stats(site, monkeypatch) == 0
    key = f"{LILLE_SIP_LINE}:{message}"
    assert list(announced(site)["messages"]) == [key]
    ovh_client.post(f"{BOXES}/{LILLE_SIP_LINE}/directories/{message}/move", dir="old")
    site.moment += timedelta(days=2)
    assert run_stats(site, monkeypatch) == 0
    assert list(announced(site)["messages"]) == [key], "handled, then put back: not new"
    ovh_client.post(f"{BOXES}/{LILLE_SIP_LINE}/directories/{message}/move", dir="inbox")
    assert run_stats(site, monkeypatch) == 0
    ovh_client.post(f"{BOXES}/{LILLE_SIP_LINE}/directories/{message}/move", dir="old")
    site.moment += timedelta(days=8)
    assert run_stats(site, monkeypatch) == 0
    assert announced(site)["messages"] == {}
    assert len(alerts(site)) == 1


def test_without_the_site_s_address_the_mail_has_no_link(alerted, monkeypatch):
    site = alerted
    site.configure("settings", site_url="")
    assert run_stats(site, monkeypatch) == 0
    site.fake.unanswered_call(LILLE_NUMBER, CALLER, 42, site.moment + timedelta(minutes=1))
    site.moment += timedelta(minutes=5)
    assert run_stats(site, monkeypatch) == 0
    (mail,) = alerts(site)
    assert mail.get_content().endswith("avec le code d'accès du groupe, sur la page du groupe\n")
    assert "http" not in mail.get_content()


def test_cron_run_as_printed_mails_a_new_message(alerted):
    site = alerted
    environment = {**os.environ, "LINES_INI": str(site.lines_ini)}

    def cron():
        result = subprocess.run([sys.executable, str(ROOT / "stats.py")], env=environment, cwd="/",
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")

    cron()
    site.fake.unanswered_call(LILLE_NUMBER, CALLER, 42)
    cron()
    cron()
    assert [mail["To"] for mail in alerts(site)] == ["lille@example.org, coordination@example.org"]


@pytest.mark.parametrize("addresses", ["lille.example.org", "lille@example.org; lyon@example.org", "a@b"])
def test_messages_to_must_be_addresses(site, addresses):
    site.configure("lille", messages_to=addresses)
    wrong = addresses.split(",")[0].strip()
    assert load_settings(site.lines_ini).broken["lille"] == (
        f"{site.lines_ini}, section [lille], clé « messages_to » : « {wrong} » n'est pas une adresse électronique "
        "(plusieurs adresses séparées par des virgules)"
    )


def test_site_url_must_be_an_address(site):
    site.configure("settings", site_url="permanences.example.org")
    with pytest.raises(config.ConfigError) as raised:
        load_settings(site.lines_ini)
    assert str(raised.value) == (
        f"{site.lines_ini}, section [settings], clé « site_url » : « permanences.example.org » n'est pas l'adresse du "
        "site (par exemple https://permanences.example.org)"
    )


@pytest.mark.parametrize("method, path, times", [
    ("GET", "directories", 2),  # The lists of both folders, in the same run.
    ("GET", "directories/*", 2),  # The details of the new message, and of the one to delete.
    ("DELETE", "directories/*", 1),
])  # fmt: skip
def test_ovh_failing_is_one_line_and_the_next_run_converges(coded, monkeypatch, capsys, method, path, times):
    site = coded
    site.configure("lille", keep_handled_days="30", messages_to="lille@example.org")
    assert run_stats(site, monkeypatch) == 0
    handled = site.fake.unanswered_call(LILLE_NUMBER, OTHER_CALLER, 17, site.moment - timedelta(days=40))
    site.moment -= timedelta(days=31)
    site.act("/lille/handled", {"message": f"{LILLE_SIP_LINE}:{handled}"})
    site.moment += timedelta(days=31)
    new = site.fake.unanswered_call(LILLE_NUMBER, CALLER, 42, site.moment + timedelta(minutes=1))
    site.moment += timedelta(minutes=5)
    site.fake.fail(method, f"{BOXES}/{LILLE_SIP_LINE}/{path}", "500", times=times)
    assert run_stats(site, monkeypatch) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("stats.py : [lille] ") and "OVH" in line, line
    assert CALLER not in line and OTHER_CALLER not in line
    assert run_stats(site, monkeypatch) == 0, capsys.readouterr()
    assert [mail["Subject"] for mail in alerts(site)] == ["[cimade-ovh] Lille : nouveau message sur le répondeur"]
    assert [m["id"] for m in site.fake.messages_in(LILLE_SIP_LINE)] == [new]


def test_ovh_failing_while_records_are_checked_keeps_them_until_the_next_run(coded, ovh_client, monkeypatch, capsys):
    site = coded  # No keep_handled_days, no messages_to: only the boxes of the records are read.
    message = site.fake.unanswered_call(LILLE_NUMBER, CALLER, 42)
    site.act("/lille/handled", {"message": f"{LILLE_SIP_LINE}:{message}", "name": "Awa"})
    ovh_client.delete(f"{BOXES}/{LILLE_SIP_LINE}/directories/{message}")
    site.fake.fail("GET", f"{BOXES}/{LILLE_SIP_LINE}/directories", "500")
    assert run_stats(site, monkeypatch) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("stats.py : [lille] ") and "OVH a rencontré une erreur de son côté" in line, line
    assert set(handled_records(site)) == {f"{LILLE_SIP_LINE}:{message}"}, "nothing forgotten on a failed read"
    assert run_stats(site, monkeypatch) == 0, capsys.readouterr()
    assert handled_records(site) == {}


def test_a_key_that_may_not_read_the_box_is_told_and_forgets_nothing(coded, monkeypatch, capsys):
    """A key without rights on the box its records name: IT is told (cron mails it), the records stay."""
    site = coded
    message = site.fake.unanswered_call(LILLE_NUMBER, CALLER, 42)
    site.act("/lille/handled", {"message": f"{LILLE_SIP_LINE}:{message}", "name": "Awa"})
    use_a_key_without(site, "/voicemail")
    assert run_stats(site, monkeypatch) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("stats.py : [lille] La clé d'accès n'a pas le droit de faire cette demande"), line
    assert set(handled_records(site)) == {f"{LILLE_SIP_LINE}:{message}"}


def test_a_message_handled_again_while_stats_py_reads_keeps_its_record(coded, ovh_client, monkeypatch, mocker):
    """A volunteer's « Traité » between stats.py's list and its write: the new record stays."""
    from cimade_ovh import voicemail_tasks

    site = coded
    message = site.fake.unanswered_call(LILLE_NUMBER, CALLER, 42)
    key = f"{LILLE_SIP_LINE}:{message}"
    site.act("/lille/handled", {"message": key, "name": "Awa"})
    ovh_client.post(f"{BOXES}/{LILLE_SIP_LINE}/directories/{message}/move", dir="inbox")  # Back to handle, elsewhere.
    real_unless_gone = voicemail_tasks.unless_gone

    def handled_again_meanwhile(call):
        listed = real_unless_gone(call)  # Listed while the message waits in inbox: its record looks gone.
        site.act("/lille/handled", {"message": key, "name": "Bob"})
        return listed

    mocker.patch.object(voicemail_tasks, "unless_gone", handled_again_meanwhile)
    assert run_stats(site, monkeypatch) == 0
    assert handled_records(site)[key]["by"] == "Bob"


def test_records_of_a_box_the_group_no_longer_uses_go_when_a_new_key_may_not_read_it(coded, monkeypatch, capsys):
    """Lille's calls went to another box once; a key made since has no right on it: its records go, quietly."""
    from cimade_ovh.voicemail import write_handled

    site = coded
    settings = load_settings(site.lines_ini)
    former = f"{LYON_VOICEMAIL}:{site.fake.leave_message(LYON_VOICEMAIL, CALLER, 9)}"
    write_handled(settings, settings.groups["lille"], {former: {"by": "Awa", "at": site.moment.isoformat()}})
    use_a_key_without(site, LYON_VOICEMAIL, per_box=True)  # As create_consumer_key.py makes it, Lyon's box aside.
    assert run_stats(site, monkeypatch) == 0, capsys.readouterr()
    assert handled_records(site) == {}
