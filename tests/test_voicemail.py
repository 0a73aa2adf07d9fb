"""The group's voicemail on its page: which boxes are read, the messages shown, « Traité », listening, privacy."""

import html
import io
import json
import os
import re
import shlex
import subprocess
import sys
import wave
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from test_reads import WARM_PAGE, gets
from test_security import CODE, set_code
from webpage import Browser, text

from cimade_ovh.config import load_settings
from cimade_ovh.ovhapi import connect_ovh
from cimade_ovh.simulator import (
    DEMO_APPLICATION_KEY,
    DEMO_APPLICATION_SECRET,
    DEMO_CONSUMER_KEY,
    DEMO_BILLING_ACCOUNT,
    LILLE_NUMBER,
    LILLE_SIP_LINE,
    LYON_NUMBER,
    LYON_VOICEMAIL,
)

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = f"/telephony/{DEMO_BILLING_ACCOUNT}"
LYON = f"{ACCOUNT}/easyHunting/{LYON_NUMBER}"
CALLER, OTHER_CALLER = "0033639989901", "0033639989902"


def enter(site, slug):
    """Type the group's access code, as a volunteer does."""
    site.get(f"/{slug}")
    response = site.post(f"/{slug}/access", {"code": CODE})
    assert response.status_code == 303, response.text
    site.get(f"/{slug}")  # The forms' token of a browser let in.


@pytest.fixture
def coded(site):
    """The site with an access code on Lyon and Lille, typed in by the browser."""
    for slug in ("lyon", "lille"):
        result = set_code(site.lines_ini, slug, CODE)
        assert result.returncode == 0, result.stdout + result.stderr
        enter(site, slug)
    return site


def boxes_read(site, since=0):
    """The boxes whose messages the page listed at OVH since the `since`th request, by folder."""
    found = set()
    for request in site.fake.requests[since:]:
        if request["path"].startswith(f"{ACCOUNT}/voicemail/") and request["path"].endswith("/directories"):
            found.add((request["path"].split("/")[4], request["query"]))
    return found


# --- Which boxes ---


def test_a_group_without_a_code_asks_ovh_nothing_of_its_voicemail(site):
    site.fake.unanswered_call(LILLE_NUMBER, CALLER, 30)
    for slug in ("lille", "lyon"):
        assert site.get(f"/{slug}").status_code == 200
    assert not [r for r in site.fake.requests if "/voicemail" in r["path"]]


def test_the_boxes_read_are_those_ovh_sends_the_calls_to(coded, ovh_client):
    start = len(coded.fake.requests)
    coded.get("/lille")
    assert boxes_read(coded, start) == {(LILLE_SIP_LINE, "dir=inbox"), (LILLE_SIP_LINE, "dir=old")}
    start = len(coded.fake.requests)
    coded.get("/lyon")  # Out of hours, to its own box.
    assert boxes_read(coded, start) == {(LYON_VOICEMAIL, "dir=inbox"), (LYON_VOICEMAIL, "dir=old")}
    full = {"actionOnOverflow": "voicemail", "actionOnOverflowParam": LILLE_SIP_LINE}  # A full queue: to Lille's box.
    ovh_client.put(f"{LYON}/hunting/queue/5001", **full)
    start = len(coded.fake.requests)
    coded.get("/lyon")  # Remembered boxes read alongside; the settings name one more, read at once.
    assert {box for box, _ in boxes_read(coded, start)} == {LYON_VOICEMAIL, LILLE_SIP_LINE}
    ovh_client.put(f"{ACCOUNT}/line/{LILLE_SIP_LINE}/options", forwardNoReply=False)  # Lille: no box any more.
    coded.get("/lille")
    start = len(coded.fake.requests)
    assert "Aucun répondeur ne prend les appels sans réponse de ce groupe." in text(coded.get("/lille"))
    assert boxes_read(coded, start) == set()


def test_lines_ini_may_name_more_boxes(coded):
    coded.configure("lille", voicemail=f"{LYON_VOICEMAIL}, {LILLE_SIP_LINE}")
    start = len(coded.fake.requests)
    coded.get("/lille")
    assert {box for box, _ in boxes_read(coded, start)} == {LILLE_SIP_LINE, LYON_VOICEMAIL}
    coded.configure("lille", voicemail="03 53 01 00 01")
    settings = load_settings(coded.lines_ini)
    assert "clé « voicemail » : « 03 53 01 00 01 » n'est pas un numéro de ligne OVH" in settings.broken["lille"]


@pytest.mark.parametrize("slug", ["lille", "lyon"])
def test_once_the_boxes_are_known_a_page_waits_for_two_answers_at_most(coded, slug):
    """The boxes' lists and settings go with the line's lists, each message's details with the line's items."""
    coded.app.reads.seconds = 0  # Every page reads OVH.
    coded.fake.unanswered_call(LILLE_NUMBER, CALLER, 30)
    coded.fake.leave_message(LYON_VOICEMAIL, OTHER_CALLER, 12)
    coded.get(f"/{slug}")  # The process learns the clock, the key's expiration, the line and its boxes.
    box = {"lille": LILLE_SIP_LINE, "lyon": LYON_VOICEMAIL}[slug]
    folders = ("directories?dir=inbox", "directories?dir=old", "settings")  # The two folders' lists go together.
    lists = {f"{ACCOUNT}/voicemail/{box}/{rest}" for rest in folders}
    details = {f"{ACCOUNT}/voicemail/{box}/directories/{m['id']}" for m in coded.fake.messages_in(box)}
    line_waves = WARM_PAGE[slug] + [set()] * (2 - len(WARM_PAGE[slug]))  # Lille's line is read in one wave.
    expected = gets([line_waves[0] | lists, line_waves[1] | details])
    start = len(coded.fake.requests)
    page, waves = coded.fake.in_waves(lambda: text(coded.get(f"/{slug}")), expected)
    assert "Impossible de lire" not in page and boxes_read(coded, start)
    assert waves == expected
    made = coded.fake.requests[start:]
    assert len({(r["method"], r["path"], r["query"]) for r in made}) == len(made), "each thing once"


# --- The messages on the page ---

MONDAY_EVENING, TUESDAY_MORNING = datetime(2026, 11, 23, 20, 5), datetime(2026, 11, 24, 9, 15)


class OtherBrowser(Browser):
    """A second volunteer's browser on the same site, with the group's code typed in."""

    def __init__(self, site, slug):
        self.url, self.lines_ini, self.token = site.url, site.lines_ini, ""
        self.http = requests.Session()
        enter(self, slug)


def leave_two(site):
    """Two unanswered calls to Lille, Monday evening then Tuesday morning; return their keys, oldest first."""
    first = site.fake.unanswered_call(LILLE_NUMBER, CALLER, 42, MONDAY_EVENING)
    second = site.fake.unanswered_call(LILLE_NUMBER, OTHER_CALLER, 75, TUESDAY_MORNING)
    return f"{LILLE_SIP_LINE}:{first}", f"{LILLE_SIP_LINE}:{second}"


def folders(site, box=LILLE_SIP_LINE):
    """The OVH folder of each message of a box, by id."""
    return {m["id"]: m["dir"] for m in site.fake.messages_in(box)}


def test_the_messages_to_handle_newest_first_with_a_masked_caller(coded):
    first, second = leave_two(coded)
    page = coded.get("/lille")
    shown = text(page)
    assert "2 messages à traiter sur la messagerie." in shown
    assert "Messagerie 2 messages à traiter mar. 24/11 09:15 · 1 min · 06 •• •• •• 02 Rappeler Écouter" in shown
    assert "lun. 23/11 20:05 · 42 s · 06 •• •• •• 01 Rappeler Écouter" in shown
    assert shown.index("mar. 24/11 09:15") < shown.index("lun. 23/11 20:05")
    assert '<a href="tel:+33639989901">Rappeler</a>' in page.text
    assert CALLER not in page.text.replace("tel:+33639989901", "") and "06 39 98 99 01" not in shown
    assert f'<audio controls preload="none" src="/lille/messages/{second}/audio"' in page.text
    assert "<details><summary>2 messages à traiter</summary>" in page.text  # Folded: the page stays short.
    assert shown.index("Répondre sur ce numéro") < shown.index("Messagerie 2 messages")  # Below the main button.


def test_handled_by_a_first_name_then_back_to_handle(coded):
    first, second = leave_two(coded)
    page = text(coded.act("/lille/handled", {"message": first, "name": " Awa "}))
    assert "C'est noté : le message est traité." in page
    assert folders(coded)[int(first.split(":")[1])] == "old"
    assert "1 message à traiter sur la messagerie." in page
    handled = "1 message traité lun. 23/11 20:05 · 42 s · 06 •• •• •• 01 Rappeler Écouter rappelé par Awa, jeu. 26/11 "
    assert handled + "16:28" in page
    assert "message traité, message du lun. 23/11 20:05 (42 s), par Awa" in page  # « Dernières actions ».
    kept = json.loads((coded.folder / "data" / "voicemail" / "lille.json").read_text())
    assert kept == {first: {"by": "Awa", "at": "2026-11-26T16:28:00+01:00"}}
    [logged] = [line for line in coded.activity() if line[2] == "handled"]
    assert logged[3:] == ["-", "127.0.0.1", "ok, message du lun. 23/11 20:05 (42 s), par Awa"]
    mail = coded.mails()[-1]
    subject = "[cimade-ovh] Lille : message du répondeur traité, message du lun. 23/11 20:05 (42 s), par Awa"
    assert mail["Subject"] == subject
    everything = json.dumps([coded.activity(), [m.as_string() for m in coded.mails()], kept])
    assert "99 01" not in everything and "9989901" not in everything
    page = text(coded.act("/lille/unhandled", {"message": first}))
    assert "C'est noté : le message est de nouveau à traiter." in page
    assert "2 messages à traiter sur la messagerie." in page and "message traité lun." not in page
    assert folders(coded)[int(first.split(":")[1])] == "inbox"
    assert json.loads((coded.folder / "data" / "voicemail" / "lille.json").read_text()) == {}


def test_a_message_handled_by_one_volunteer_while_another_looks_at_the_page(coded):
    first, _ = leave_two(coded)
    other = OtherBrowser(coded, "lille")
    assert "2 messages à traiter" in text(other.get("/lille"))  # The other volunteer's page, left open.
    coded.act("/lille/handled", {"message": first, "name": "Awa"})
    page = text(other.act("/lille/handled", {"message": first, "name": "Léo"}))
    assert "Ce message était déjà traité (voir ci-dessous) ; rien n'a changé." in page
    assert "rappelé par Awa" in page and "Léo" not in page
    assert [line[2] for line in coded.activity() if "handled" in line[2]] == ["handled", "already-handled"]


def test_a_message_deleted_meanwhile_or_of_another_box(coded, ovh_client):
    first, second = leave_two(coded)
    coded.get("/lille")
    ovh_client.delete(f"{ACCOUNT}/voicemail/{LILLE_SIP_LINE}/directories/{first.split(':')[1]}")
    page = text(coded.act("/lille/handled", {"message": first}))
    assert "Ce message n'est plus sur le répondeur du groupe (effacé entre-temps) ; rien n'a changé." in page
    assert "1 message à traiter sur la messagerie." in page
    lyon = coded.fake.leave_message(LYON_VOICEMAIL, CALLER, 9)
    text(coded.act("/lille/handled", {"message": f"{LYON_VOICEMAIL}:{lyon}"}))  # Lyon's box, from Lille's page.
    assert folders(coded, LYON_VOICEMAIL)[lyon] == "inbox"
    for wrong in ("", "8001", f"{LILLE_SIP_LINE}:x", "<script>:1"):
        assert coded.post("/lille/handled", {"message": wrong}).status_code == 400


def test_a_group_without_a_code_says_how_it_gets_one(site):
    leave_two(site)
    response = site.get("/lille")
    page = text(response)
    assert "Les messages laissés sur le répondeur ne s'affichent que sur une page protégée par un code d'accès" in page
    assert "Rappeler" not in page and "à traiter" not in page
    assert site.post("/lille/handled", {"message": f"{LILLE_SIP_LINE}:8001"}).status_code == 404
    command = html.unescape(re.search(r"<code>(.*?)</code>", response.text)[1])
    assert command == f"/usr/bin/python3 {ROOT / 'index.py'} --set-code lille"
    result = subprocess.run(  # As IT would paste it: Debian's python3, which finds .venv3 itself.
        shlex.split(command), input=CODE + "\n", env={**os.environ, "LINES_INI": str(site.lines_ini)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"Lille : code d'accès enregistré dans {site.folder / 'access-codes.ini'}.",
        "Donnez ce code aux bénévoles du groupe : la page le leur demande avant de s'afficher.",
    ]  # A first code: there is no former one to forget.
    again = set_code(site.lines_ini, "lille", CODE)
    assert "Les bénévoles déjà entrés avec l'ancien code devront saisir le nouveau." in again.stdout
    enter(site, "lille")
    assert "2 messages à traiter" in text(site.get("/lille"))


# --- OVH failing ---


def test_a_box_ovh_fails_to_list_is_explained_and_the_line_still_shown(coded, caplog):
    leave_two(coded)
    coded.fake.fail("GET", f"{ACCOUNT}/voicemail/{LILLE_SIP_LINE}/directories", "500")
    page = text(coded.get("/lille"))
    assert "Les appels arrivent sur la ligne SIP du groupe" in page  # The line is read all the same.
    assert "Impossible de lire un répondeur chez OVH. OVH a rencontré une erreur de son côté." in page
    assert "Messages à traiter : lecture impossible chez OVH." in page and "Aucun message à traiter" not in page
    assert f"reading the voicemail {LILLE_SIP_LINE} of lille failed: server" in caplog.text
    assert "9989901" not in caplog.text
    assert "2 messages à traiter" in text(coded.get("/lille"))  # Once OVH answers again.


def test_a_box_deleted_meanwhile(coded):
    leave_two(coded)
    coded.get("/lille")  # Its box remembered.
    with coded.fake._lock:
        coded.fake.state["billingAccounts"][DEMO_BILLING_ACCOUNT]["line"].pop(LYON_VOICEMAIL)
    coded.configure("lille", voicemail=LYON_VOICEMAIL)
    page = text(coded.get("/lille"))
    assert "OVH ne connaît pas (ou plus) le répondeur 04 65 71 00 01 : ses messages ne peuvent pas s'afficher." in page
    assert "2 messages à traiter" in page  # Lille's own box is read all the same.


def use_a_key_without(site, left_out, per_box=False):
    """Put in ovh.conf a key with every right the page needs but those whose path holds `left_out`.

    `per_box`: its voicemail rights name each group's boxes, as create_consumer_key.py makes them once it knows them.
    """
    from cimade_ovh.rules import required_rules, resolve_sip_lines
    from cimade_ovh.voicemail import resolve_boxes

    settings = load_settings(site.lines_ini)
    client = connect_ovh(site.fake.url, DEMO_APPLICATION_KEY, DEMO_APPLICATION_SECRET, DEMO_CONSUMER_KEY)
    boxes = resolve_boxes(client, settings, site.moment) if per_box else None
    rules = required_rules(settings, resolve_sip_lines(client, settings), boxes)
    rules = [r for r in rules if left_out not in r["path"]]
    key = site.fake.create_credential(rules)
    conf = site.folder / "ovh.conf"
    conf.write_text(conf.read_text(encoding="utf-8").replace(DEMO_CONSUMER_KEY, key), encoding="utf-8")


def test_a_key_without_the_voicemail_rights(coded):
    use_a_key_without(coded, "/voicemail")
    leave_two(coded)
    page = text(coded.get("/lille"))
    assert "Les appels arrivent sur la ligne SIP du groupe" in page
    assert "La clé d'accès à OVH n'a pas le droit de lire le répondeur 03 53 01 00 01." in page
    assert "il faut créer une nouvelle clé avec create_consumer_key.py" in page


@pytest.mark.parametrize("step", ["GET", "POST", "GET-after"])
def test_ovh_failing_while_a_message_is_handled_loses_nothing_and_a_retry_converges(coded, step):
    first, _ = leave_two(coded)
    message = f"{ACCOUNT}/voicemail/{LILLE_SIP_LINE}/directories/{first.split(':')[1]}"
    coded.get("/lille")
    if step == "GET":
        coded.fake.fail("GET", message, "503")
    elif step == "POST":
        coded.fake.fail("POST", message + "/move", "500")
    else:
        coded.fake.fail("GET", message, "drop", nth=2)  # Moved, but the page never sees it read back.
    page = text(coded.act("/lille/handled", {"message": first, "name": "Awa"}))
    assert "La demande n'a pas abouti, ou en partie seulement." in page
    assert not (coded.folder / "data" / "voicemail" / "lille.json").exists()
    [failed] = [line for line in coded.activity() if line[2] == "handled"]
    assert failed[5].startswith("erreur ") and "9989901" not in failed[5]
    page = text(coded.act("/lille/handled", {"message": first, "name": "Awa"}))
    assert "rappelé par Awa" in page and "1 message à traiter sur la messagerie." in page
    assert folders(coded)[int(first.split(":")[1])] == "old"


# --- Listening ---


def audio_path(key, slug="lille"):
    """The page's own address of a message's audio."""
    return f"/{slug}/messages/{key}/audio"


def downloads(site):
    """The download requests the page made to OVH."""
    return [r for r in site.fake.requests if r["path"].endswith("/download")]


def test_listening_streams_the_file_and_answers_ranges(coded):
    first, _ = leave_two(coded)
    page = coded.get("/lille")
    whole = coded.get(audio_path(first))
    kind = (whole.status_code, whole.headers["Content-Type"], whole.headers["Accept-Ranges"])
    assert kind == (200, "audio/wav", "bytes")
    with wave.open(io.BytesIO(whole.content)) as file:
        assert file.getnframes() / file.getframerate() == 42
    assert "voicemail-files" not in page.text + whole.headers.get("Location", "")  # OVH's URL stays with the page.
    assert [r["query"] for r in downloads(coded)][-1] == "format=wav"
    asked = len(downloads(coded))
    size = len(whole.content)
    for header, status, first_byte, last_byte in (("bytes=0-1", 206, 0, 1), ("bytes=100-", 206, 100, size - 1),
                                                   ("bytes=-10", 206, size - 10, size - 1),
                                                   (f"bytes=100-{size + 50}", 206, 100, size - 1)):  # fmt: skip
        part = coded.get(audio_path(first), headers={"Range": header})
        assert part.status_code == status, header
        assert part.headers["Content-Range"] == f"bytes {first_byte}-{last_byte}/{size}"
        assert part.content == whole.content[first_byte : last_byte + 1]
    out = coded.get(audio_path(first), headers={"Range": f"bytes={size}-"})
    assert (out.status_code, out.headers["Content-Range"], out.content) == (416, f"bytes */{size}", b"")
    assert len(downloads(coded)) == asked  # The URL OVH gave is used again while it is valid.
    assert coded.http.head(coded.url + audio_path(first)).status_code == 200


def test_an_expired_url_is_asked_again(coded):
    first, _ = leave_two(coded)
    assert coded.get(audio_path(first)).status_code == 200
    coded.fake.expire_audio_files()
    asked = len(downloads(coded))
    again = coded.get(audio_path(first))
    assert again.status_code == 200 and again.content[:4] == b"RIFF"
    assert len(downloads(coded)) > asked


def test_a_url_that_cannot_be_kept_does_not_stop_listening(coded, mocker, caplog):
    first, _ = leave_two(coded)
    mocker.patch("cimade_ovh.voicemail_page.write_record", side_effect=OSError(28, "No space left on device"))
    response = coded.get(audio_path(first), headers={"Range": "bytes=0-3"})
    assert (response.status_code, response.content) == (206, b"RIFF")
    assert "cannot keep the audio URLs in" in caplog.text and "voicemail-files" not in caplog.text


def test_a_file_never_ready_is_a_clear_message(coded, mocker, caplog):
    mocker.patch("cimade_ovh.voicemail.AUDIO_WAIT_SECONDS", 1.5)  # Instead of a few seconds.
    first, _ = leave_two(coded)
    coded.fake.file_ready_seconds = None
    response = coded.get(audio_path(first))
    assert response.status_code == 503
    assert "OVH n'a pas encore préparé l'enregistrement de ce message. Réessayez dans une minute" in text(response)
    assert f"audio of {first} on lille not ready" in caplog.text and "9989901" not in caplog.text
    coded.fake.file_ready_seconds = 0.3
    assert coded.get(audio_path(first)).status_code == 200  # Once OVH has it ready.


@pytest.mark.parametrize("fault", ["download", "file"])
def test_ovh_failing_while_listening_is_explained_and_a_retry_converges(coded, fault, caplog):
    first, _ = leave_two(coded)
    if fault == "download":
        coded.fake.fail("GET", f"{ACCOUNT}/voicemail/{LILLE_SIP_LINE}/directories/*/download", "503")
        says = "OVH a rencontré une erreur de son côté."
    else:
        coded.fake.file_ready_seconds = 0
        coded.fake.fail("GET", "/voicemail-files/*", "drop")
        says = "Impossible de joindre OVH."
    failed = coded.get(audio_path(first))
    assert failed.status_code == 502 and says in text(failed), text(failed)
    assert f"audio of {first} on lille failed" in caplog.text and "9989901" not in caplog.text
    assert coded.get(audio_path(first)).status_code == 200


def test_only_the_group_s_own_messages_behind_its_code(coded):
    first, _ = leave_two(coded)
    lyon = coded.fake.leave_message(LYON_VOICEMAIL, CALLER, 9)
    assert coded.get(audio_path(f"{LYON_VOICEMAIL}:{lyon}")).status_code == 404  # Lyon's box from Lille's page.
    assert coded.get(audio_path("not-a-key")).status_code == 404
    stranger = requests.get(coded.url + audio_path(first), allow_redirects=False, timeout=10)
    assert stranger.status_code == 403 and "Code d'accès" in text(stranger)
    coded.fake.unanswered_call(LILLE_NUMBER, CALLER, 5)
    deleted = first.split(":")[1]
    with coded.fake._lock:
        box = coded.fake.state["billingAccounts"][DEMO_BILLING_ACCOUNT]["voicemail"][LILLE_SIP_LINE]
        box["messages"] = [m for m in box["messages"] if str(m["id"]) != deleted]
    gone = coded.get(audio_path(first))
    assert gone.status_code == 404 and "Ce message n'est plus sur le répondeur" in text(gone)
    assert coded.post(audio_path(first)).status_code == 405


def test_listening_under_cgi(coded):
    first, _ = leave_two(coded)
    cookies = "; ".join(f"{c.name}={c.value}" for c in coded.http.cookies if c.path in ("/", "/lille"))
    env = {**os.environ, "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "GET", "PATH_INFO": audio_path(first),
           "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
           "HTTP_COOKIE": cookies, "HTTP_RANGE": "bytes=0-3", "LINES_INI": str(coded.lines_ini)}  # fmt: skip
    asked = []
    for first_byte, last_byte in ((0, 3), (8, 11)):  # A phone's ranges, each a CGI process of its own.
        env["HTTP_RANGE"] = f"bytes={first_byte}-{last_byte}"
        result = subprocess.run([sys.executable, str(ROOT / "index.py")], env=env, capture_output=True, timeout=60)
        headers, _, body = result.stdout.partition(b"\r\n\r\n")
        assert headers.startswith(b"Status: 206 Partial Content"), result.stdout[:500] + result.stderr
        assert f"Content-Range: bytes {first_byte}-{last_byte}/".encode() in headers
        assert body == (b"RIFF" if first_byte == 0 else b"WAVE")
        asked.append(len(downloads(coded)))
    assert asked[1] == asked[0], "the second process uses the URL the first one was given"
    kept = (coded.folder / "data" / "voicemail" / "lille.audio.json")
    assert oct(kept.stat().st_mode & 0o777) == "0o640" and CALLER not in kept.read_text(encoding="utf-8")
    until = datetime.fromisoformat(json.loads(kept.read_text(encoding="utf-8"))[first]["expires"])
    assert until <= datetime.now(timezone.utc) + timedelta(minutes=10), "kept 10 minutes at most, not OVH's hour"
