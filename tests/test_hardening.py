"""Hardening found by an outside review (issue 14): cross-site forms, request bodies, stale buttons, lockouts, keys."""

import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from test_security import CODE, call
from test_team import agents
from webpage import THURSDAY_AFTERNOON, text

from cimade_ovh import access
from cimade_ovh.access import form_token, hash_code, write_access_code
from cimade_ovh.simulator import DEMO_BILLING_ACCOUNT, LYON_NUMBER
from cimade_ovh.web import MAX_BODY

ROOT = Path(__file__).resolve().parent.parent

# --- Actions from another site --------------------------------------------------


def test_a_token_handed_out_for_a_tossed_cookie_does_not_work_with_the_access_cookie(guarded):
    """A sibling subdomain sets csrf=… for the group's path, and takes that cookie's token from the code page."""
    guarded.post("/lyon/access", {"code": CODE})
    access = guarded.http.cookies.get("access")
    mine = guarded.http.cookies.get("csrf")
    with requests.Session() as attacker:
        page = attacker.get(guarded.url + "/lyon")
        tossed = attacker.cookies.get("csrf")
    assert page.status_code == 403
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]
    body = f"number=0639980001&csrf={token}".encode()
    cookies = f"csrf={tossed}; csrf={mine}; access={access}"  # The tossed cookie, more specific, comes first.
    status, _, page = call(guarded.app, "/lyon/start", "POST", body, HTTP_COOKIE=cookies)
    assert status == 403, page
    assert guarded.writes() == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://evil.example.org"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://permanences.example.org"},
    ],
)
def test_an_action_from_another_site_is_refused(site, headers):
    response = site.post("/lille/start", {"number": "0639980001"}, headers=headers)
    assert response.status_code == 403
    assert "Cette demande ne vient pas de la page du groupe : rien n'a été fait." in text(response)
    assert site.writes() == []


@pytest.mark.parametrize("own", [{"Sec-Fetch-Site": "same-origin"}, {"Origin": "{url}"}, {}])
def test_an_action_from_the_page_itself_is_done(site, own):
    headers = {name: value.format(url=site.url) for name, value in own.items()}
    response = site.post("/lille/start", {"number": "0639980001"}, headers=headers)
    assert response.status_code == 303
    assert len(site.writes()) == 1


def https(**environ):
    return {"HTTPS": "on", "wsgi.url_scheme": "https", "HTTP_HOST": "permanences.example.org", **environ}


def test_under_https_cookies_are_for_this_host_only(guarded):
    status, headers, page = call(guarded.app, "/lyon", **https())
    cookies = [value for name, value in headers if name == "Set-Cookie"]
    assert status == 403 and cookies
    assert all(c.startswith("__Host-") and "; Path=/;" in c and "Domain" not in c and "Secure" in c for c in cookies)
    csrf = cookies[0].split(";")[0].split("=", 1)[1]
    token = re.search(r'name="csrf" value="([^"]+)"', page)[1]
    body = f"code={CODE}&csrf={token}".encode()
    status, headers, _ = call(guarded.app, "/lyon/access", "POST", body, HTTP_COOKIE=f"__Host-csrf={csrf}", **https())
    assert status == 303
    access = next(v for n, v in headers if n == "Set-Cookie" and v.startswith("__Host-access-lyon="))
    cookie = f"__Host-csrf={csrf}; {access.split(';')[0]}"
    assert call(guarded.app, "/lyon", HTTP_COOKIE=cookie, **https())[0] == 200
    tossed = f"csrf={csrf}; access={access.split(';')[0].split('=', 1)[1]}"
    assert call(guarded.app, "/lyon", HTTP_COOKIE=tossed, **https())[0] == 403, "cookies without __Host- are not ours"


# --- Request bodies -------------------------------------------------------------

UNREAD_BODIES = [
    ("/lyon", 30, 200),
    ("/nope", 30, 404),
    ("/lyon/stats", 30, 405),
    ("/lille/start", MAX_BODY + 1, 413),
    ("/lille/start", 200_000, 413),
]


class CountingInput:
    """A request body that remembers how much of it was read."""

    def __init__(self, body):
        import io

        self.stream = io.BytesIO(body)

    def read(self, size=-1):
        return self.stream.read(size)

    @property
    def left(self):
        return len(self.stream.getbuffer()) - self.stream.tell()


@pytest.mark.parametrize("path, size, status", UNREAD_BODIES)
def test_every_answer_reads_the_whole_body_first(site, path, size, status):
    """Under CGI, Apache drops an answer sent before the body is read (AH00574): the browser gets nothing."""
    body = CountingInput(b"number=0639980001&pad=" + b"x" * size)
    answer = call(site.app, path, "POST", **{"wsgi.input": body, "CONTENT_LENGTH": str(body.left)})
    assert answer[0] == status
    assert body.left == 0


def test_an_action_behind_an_expired_code_reads_the_body_too(guarded):
    body = CountingInput(b"csrf=whatever")
    status, _, page = call(guarded.app, "/lyon/finish", "POST", **{"wsgi.input": body, "CONTENT_LENGTH": "13"})
    assert status == 403 and "réservée aux bénévoles" in page
    assert body.left == 0


def test_a_body_shorter_than_announced_is_refused(site):
    status, _, page = call(site.app, "/lille/start", "POST", b"number=06", CONTENT_LENGTH="100")
    assert status == 400 and "Cette demande est incomplète." in page
    assert site.writes() == []


# --- A stale "Retirer" ------------------------------------------------------------


@pytest.fixture
def team(site):
    site.configure("lyon", max_volunteers="2")
    return site


def test_a_stale_remove_button_does_not_take_off_the_number_now_on_its_agent(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980001"})
    team.act("/lyon/start", {"number": "0639980002"})
    stale = team.remove_form("lyon", "0033639980001")  # A page left open.
    agent_id = agents(ovh_client)["0033639980001"]["agentId"]
    team.act("/lyon/remove", team.remove_form("lyon", "0033639980001"))
    team.act("/lyon/start", {"number": "0639980003"})
    assert agents(ovh_client)["0033639980003"]["agentId"] == agent_id, "03 got 01's agent"
    writes = len(team.writes())
    page = text(team.act("/lyon/remove", stale))
    assert "Ce numéro ne recevait déjà plus les appels ; rien n'a changé." in page
    assert len(team.writes()) == writes
    assert sorted(team.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON)) == ["0033639980002", "0033639980003"]


def test_a_remove_form_without_the_volunteer_is_refused(team, ovh_client):
    team.act("/lyon/start", {"number": "0639980001"})
    team.act("/lyon/start", {"number": "0639980002"})
    agent_id = agents(ovh_client)["0033639980001"]["agentId"]
    for forged in ({}, {"agent": str(agent_id)}, {"agent": str(agent_id), "volunteer": ""}):
        response = team.post("/lyon/remove", forged)
        assert response.status_code == 400
        assert "Cette demande est incomplète." in text(response)
    assert sorted(team.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON)) == ["0033639980001", "0033639980002"]


# --- Counting wrong codes -----------------------------------------------------------


def test_wrong_codes_are_all_counted_even_when_unlocking_is_slow(guarded, mocker):
    """The count is written before its lock is released: the next try reads it whole."""
    flock = fcntl.flock

    def slow_unlock(file, operation):
        flock(file, operation)
        if operation == fcntl.LOCK_UN:
            time.sleep(0.05)

    mocker.patch("cimade_ovh.files.fcntl.flock", slow_unlock)
    guarded.get("/lyon")
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: guarded.post("/lyon/access", {"code": "guess"}).status_code, range(16)))
    assert sorted(statuses) == [403] * access.MAX_WRONG_CODES + [429] * (16 - access.MAX_WRONG_CODES)
    for path in (guarded.folder / "data" / "attempts").iterdir():
        json.loads(path.read_text(encoding="utf-8"))


def test_an_unreadable_count_locks_rather_than_opens(guarded):
    assert guarded.post("/lyon/access", {"code": "guess"}).status_code == 403
    [count] = [p for p in (guarded.folder / "data" / "attempts").iterdir() if p.name != "lyon"]
    count.write_text("[1764400000, 17644", encoding="utf-8")
    response = guarded.post("/lyon/access", {"code": CODE})
    assert response.status_code == 429
    assert "access=" not in response.headers.get("Set-Cookie", "")


def test_a_count_cut_while_it_is_written_keeps_the_lockout(guarded, mocker):
    """A crash while a count is written leaves the former count whole: the lockout holds."""
    guarded.get("/lyon")
    for _ in range(access.MAX_WRONG_CODES - 1):
        assert try_code(guarded, "guess", "10.2.0.1")[0] == 403
    dumps = json.dumps
    mocker.patch("json.dumps", side_effect=OSError("killed while writing"))
    assert try_code(guarded, "guess", "10.2.0.1")[0] == 500
    mocker.patch("json.dumps", dumps)
    assert try_code(guarded, "guess", "10.2.0.1")[0] == 403
    assert try_code(guarded, CODE, "10.2.0.1")[0] == 429, "the wrong codes before the crash still count"
    for path in (guarded.folder / "data" / "attempts").iterdir():
        assert path.read_text(encoding="utf-8"), f"{path.name} is empty"


# --- Items deleted while the page reads them -------------------------------------------

HUNTING = f"/telephony/{DEMO_BILLING_ACCOUNT}/easyHunting/{LYON_NUMBER}"


DELETED = [
    f"{HUNTING}/hunting/agent/*",
    f"{HUNTING}/timeConditions/conditions/*",
    f"{HUNTING}/hunting/queue/*/liveCalls/*",
]


@pytest.mark.parametrize("path", DELETED)
def test_an_item_deleted_between_its_list_and_its_reading_is_left_out(team, path):
    team.act("/lyon/start", {"number": "0639980001"})
    team.act("/lyon/start", {"number": "0639980002"})
    team.fake.add_live_call(LYON_NUMBER)
    mails = len(team.mails())
    team.fake.fail("GET", path, kind="gone")
    page = text(team.get("/lyon"))
    assert "Impossible de lire" not in page and "lines.ini" not in page
    assert "Si quelqu'un appelle maintenant" in page, "the state, as read without the deleted item"
    assert len(team.mails()) == mails


def test_the_group_own_service_unknown_is_still_a_configuration_error(team):
    team.fake.fail("GET", f"{HUNTING}/hunting/agent", kind="gone")
    page = text(team.get("/lyon"))
    assert "OVH ne connaît pas la ligne de ce groupe." in page


# --- Slow OVH: an action's deadline -------------------------------------------------


def test_a_slow_action_stops_at_its_deadline_says_so_and_a_retry_converges(site, mocker):
    mocker.patch("cimade_ovh.ovhapi.ACTION_SECONDS", 1.5)
    site.act("/lyon/start", {"number": "0639980001"})
    site.fake.latency_ms = 250  # A change of number makes about ten requests one after the other.
    page = text(site.act("/lyon/start", {"number": "0639980002"}))
    assert "OVH répond trop lentement : la page s'est arrêtée avant d'avoir tout fait." in page
    assert "Appuyez de nouveau sur le bouton pour finir" in page
    assert site.activity()[-1][5].startswith("erreur deadline")
    for _ in range(10):
        page = text(site.act("/lyon/start", {"number": "0639980002"}))
        if "trop lentement" not in page:
            break
    converged = (
        "les appels arrivent maintenant sur le 06 39 98 00 02",
        "reçoit déjà les appels",
        "la permanence reprend",
    )
    assert any(said in page for said in converged)  # Stopped between closing and reopening: it resumes.
    site.fake.latency_ms = 0
    assert site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON) == ["0033639980002"]
    assert "Permanence en cours sur le 06 •• •• •• 02." in text(site.get("/lyon"))


# --- A lost access-codes.ini --------------------------------------------------------


def remove_code(lines_ini, group):
    """Run `index.py --remove-code` as IT would."""
    return subprocess.run(
        [sys.executable, str(ROOT / "index.py"), "--remove-code", group],
        env={**os.environ, "LINES_INI": str(lines_ini)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def assert_lyon_closed(guarded):
    """Lyon's page is closed and writes nothing; Lille, which never had a code, stays open."""
    response = guarded.get("/lyon")
    assert response.status_code == 503
    assert "La page de ce groupe est fermée : son code d'accès est introuvable." in text(response)
    assert guarded.post("/lyon/start", {"number": "0639980001"}).status_code == 503
    assert guarded.writes() == []
    assert guarded.get("/lille").status_code == 200, "a group that never had a code stays open"


def test_a_lost_access_codes_file_closes_the_groups_it_guarded(guarded):
    (guarded.folder / "access-codes.ini").unlink()
    assert_lyon_closed(guarded)
    assert any("code d'accès introuvable" in mail["Subject"] for mail in guarded.mails())
    assert remove_code(guarded.lines_ini, "lyon").returncode == 0
    assert guarded.get("/lyon").status_code == 200, "--remove-code opens it on purpose"


def test_losing_the_codes_and_the_data_folder_keeps_a_coded_group_closed(guarded):
    """A partial restore: lines.ini and ovh.conf are back, access-codes.ini is not, data/ is empty."""
    before = guarded.lines_ini.read_text(encoding="utf-8")
    lyon = before.split("[lyon]\n")[1].split("\n[")[0]
    assert lyon.splitlines()[0] == "access_code = yes", "--set-code marks the group in lines.ini"
    assert before.replace("[lyon]\naccess_code = yes\n", "[lyon]\n").count("access_code") == 0, "no other line"
    (guarded.folder / "access-codes.ini").unlink()
    shutil.rmtree(guarded.folder / "data")
    (guarded.folder / "data").mkdir(mode=0o750)
    assert_lyon_closed(guarded)
    check = run_check(guarded)
    assert check.returncode == 1
    assert (
        f"ERREUR [lyon] 04 65 71 00 00 : le groupe avait un code d'accès et {guarded.folder / 'access-codes.ini'} "
        "n'en a plus : sa page est fermée ; remettez ce fichier (sauvegarde) ou redonnez un code : /usr/bin/python3 "
        f"{ROOT / 'index.py'} --set-code lyon\n"
    ) in check.stdout, check.stdout
    assert "ok     [lille]" in check.stdout
    assert remove_code(guarded.lines_ini, "lyon").returncode == 0
    assert "access_code" not in guarded.lines_ini.read_text(encoding="utf-8")
    assert guarded.get("/lyon").status_code == 200, "--remove-code opens it on purpose"


def test_check_names_a_group_whose_code_lines_ini_does_not_mark(guarded):
    """A code set before lines.ini was marked (an upgrade), or the mark lost with an older copy put in place."""
    marked = guarded.lines_ini.read_text(encoding="utf-8")
    guarded.lines_ini.write_text(marked.replace("access_code = yes\n", ""), encoding="utf-8")
    check = run_check(guarded)
    assert (
        f"Attention [lyon] : ce groupe a un code d'accès que {guarded.lines_ini} ne marque pas : perdre "
        "access-codes.ini et data/ ouvrirait sa page à tous ; ajoutez la ligne « access_code = yes » à sa section\n"
    ) in check.stdout, check.stdout
    guarded.lines_ini.write_text(marked, encoding="utf-8")
    assert "Attention [lyon] : ce groupe a un code" not in run_check(guarded).stdout


def run_check(site):
    """index.py --check on a test site, as IT runs it."""
    return subprocess.run(
        [sys.executable, str(ROOT / "index.py"), "--check"], env={**os.environ, "LINES_INI": str(site.lines_ini)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_closed_group_names_the_contact_of_lines_ini(guarded):
    guarded.configure("settings", contact="Samia (samia@example.org)")
    (guarded.folder / "access-codes.ini").unlink()
    assert "introuvable. Prévenez Samia (samia@example.org)." in text(guarded.get("/lyon"))


def test_a_code_file_written_by_hand_is_remembered_by_the_page(site):
    settings = site.app.settings()
    write_access_code(settings.access_codes, "lyon", hash_code(CODE))
    assert site.get("/lyon").status_code == 403
    settings.access_codes.rename(settings.access_codes.with_name("access-codes.ini.old"))
    assert site.get("/lyon").status_code == 503


# --- The secret key -------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"short"])
def test_a_short_secret_key_is_replaced_not_used(site, content, caplog):
    site.get("/lille")
    key = site.folder / "data" / "secret.key"
    key.write_bytes(content)
    cookie = "a" * 24
    forged = form_token(content, cookie)
    site.http.cookies.set("csrf", cookie, path="/")
    response = site.post("/lille/start", {"number": "0639980001", "csrf": forged}, token=False)
    assert response.status_code == 403
    assert site.writes() == []
    assert len(key.read_bytes()) >= 32 and key.stat().st_mode & 0o777 == 0o600
    assert "fewer than 32: replaced by a new key" in caplog.text


# --- Wrong codes from many addresses ------------------------------------------------


def try_code(guarded, code, address):
    """POST a code to Lyon from `address`, with the browser's csrf cookie and token."""
    cookie, token = guarded.http.cookies.get("csrf"), guarded.token
    body = f"code={code}&csrf={token}".encode()
    return call(guarded.app, "/lyon/access", "POST", body, HTTP_COOKIE=f"csrf={cookie}", REMOTE_ADDR=address)


def test_wrong_codes_from_one_ipv6_subscriber_are_counted_together(guarded):
    guarded.get("/lyon")
    statuses = [try_code(guarded, "guess", f"2001:db8:1:{i:x}::{i:x}")[0] for i in range(1, 21)]  # 20 of its /64s
    assert statuses == [403] * access.MAX_WRONG_CODES + [429] * (20 - access.MAX_WRONG_CODES)
    status, _, page = try_code(guarded, CODE, "2001:db8:1:2:abcd::1")
    assert status == 429 and "Trop de codes erronés depuis cet appareil." in page
    assert try_code(guarded, CODE, "2001:db8:1:100::1")[0] == 303, "the next /56 is someone else"


def test_the_group_has_a_slower_limit_across_all_addresses(guarded):
    guarded.get("/lyon")
    entering = try_code(guarded, CODE, "10.0.0.1")
    assert entering[0] == 303, "a right code does not count against the group"
    for i in range(access.MAX_GROUP_WRONG_CODES):
        assert try_code(guarded, "guess", f"10.1.{i // 4}.{i % 4}")[0] == 403
    status, headers, page = try_code(guarded, CODE, "10.2.0.1")
    assert status == 429
    assert "Trop de codes erronés pour ce groupe. Réessayez dans 60 minutes." in " ".join(page.split())
    assert 3500 < int(dict(headers)["Retry-After"]) <= 3601
    assert guarded.get("/lyon").status_code == 403, "the lockout is only for entering"


def test_old_counts_are_removed(guarded):
    guarded.get("/lyon")
    attempts = guarded.folder / "data" / "attempts"
    attempts.mkdir(parents=True, exist_ok=True)
    old = attempts / "lyon-0123456789abcdef"
    old.write_text("[1]", encoding="utf-8")
    hours_ago = time.time() - 2 * 3600
    os.utime(old, (hours_ago, hours_ago))
    assert try_code(guarded, "guess", "10.0.0.1")[0] == 403
    assert not old.exists()
    assert sorted(p.name for p in attempts.iterdir())[0] == "lyon"


# --- Smaller ones ---------------------------------------------------------------------


def test_a_wrong_application_secret_is_a_configuration_problem_for_it(site):
    from cimade_ovh.simulator import DEMO_APPLICATION_SECRET

    conf = site.folder / "ovh.conf"
    conf.write_text(conf.read_text(encoding="utf-8").replace(DEMO_APPLICATION_SECRET, "not-the-secret"), "utf-8")
    page = text(site.get("/lille"))
    assert "OVH refuse la signature des demandes de la page : sa configuration (ovh.conf) est erronée." in page
    assert "la clé « application_secret » de ovh.conf ne correspond pas" in page
    assert "Réessayez" not in page


def test_after_a_write_applied_but_not_acknowledged_the_state_shown_is_what_ovh_has(site):
    site.fake.fail("PUT", "/telephony/*/line/*/options", kind="drop", after=True)
    page = text(site.act("/lille/start", {"number": "0639980001"}))
    assert "La demande n'a pas abouti, ou en partie seulement." in page
    assert "L'état ci-dessous est celui qu'OVH a maintenant." in page
    assert "Permanence en cours sur le 06 •• •• •• 01." in page


def test_https_answers_ask_browsers_to_stay_on_https(site):
    status, headers, _ = call(site.app, "/lille", **https())
    assert status == 200 and dict(headers)["Strict-Transport-Security"] == "max-age=31536000"
    status, headers, _ = call(site.app, "/lille")
    assert "Strict-Transport-Security" not in dict(headers), "never over plain HTTP"


def run_index(site, *arguments):
    """Start index.py as IT would, on the site's lines.ini and any free port; return the process."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "index.py"), *arguments, "--port", "0"],
        env={**os.environ, "LINES_INI": str(site.lines_ini), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return process


def test_serve_does_not_keep_a_thread_for_a_body_that_never_comes(site):
    process = run_index(site, "--serve")
    try:
        port = int(re.search(r"http://127.0.0.1:(\d+)/", process.stdout.readline())[1])
        with socket.create_connection(("127.0.0.1", port), timeout=60) as client:
            client.sendall(b"POST /lille/start HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nnumber=06")
            answer = client.recv(65536)
        assert answer.startswith(b"HTTP/1.0 400 "), answer[:200]
        assert site.writes() == []
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_demo_removes_its_folder_when_stopped(site):
    process = run_index(site, "--demo")
    try:
        lines = [process.stdout.readline() for _ in range(3)]
        folder = Path(re.search(r"simulées dans (\S+)", "".join(lines))[1])
        assert folder.is_dir()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not folder.exists()
    finally:
        process.kill()
        process.wait(timeout=30)


# --- Lifting a lockout ----------------------------------------------------------------


def run_unlock(lines_ini, group):
    return subprocess.run(
        [sys.executable, str(ROOT / "index.py"), "--unlock", group],
        env={**os.environ, "LINES_INI": str(lines_ini)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_it_lifts_a_lockout_at_once(guarded, mocker):
    mocker.patch("cimade_ovh.access.MAX_GROUP_WRONG_CODES", 8)
    guarded.get("/lyon")
    for i in range(8):
        try_code(guarded, "guess", f"10.1.0.{i // 4}")
    assert try_code(guarded, CODE, "10.1.0.0")[0] == 429
    assert try_code(guarded, CODE, "10.9.9.9")[0] == 429, "the whole group waits"
    result = run_unlock(guarded.lines_ini, "LYON")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == "Lyon : les codes erronés sont oubliés ; chacun peut de nouveau entrer le code.\n"
    assert try_code(guarded, CODE, "10.1.0.0")[0] == 303


def test_unlock_names_an_unknown_group_in_one_french_sentence(site):
    result = run_unlock(site.lines_ini, "grenoble")
    assert result.returncode == 1 and result.stderr == ""
    assert result.stdout == (
        f"ERREUR : {site.lines_ini} ne définit pas le groupe « grenoble » (groupes : lyon, lille) : "
        "relancez avec l'un d'eux.\n"
    )
