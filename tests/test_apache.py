"""The real deployment: a private Apache 2 with mod_rewrite and the project's .htaccess, in FastCGI and CGI modes.

The page runs on the OVH simulator with the real clock. Skipped when Apache or its modules are missing,
except in CI (the environment variable CI is set), where that is a failure.
"""

import os
import re
import signal
import subprocess
import sys
import time

import apache
import pytest
from webpage import OTHER_VOLUNTEER, ROOT, VOLUNTEER, text, today_at_noon, write_lines_ini

from cimade_ovh.simulator import (
    DEMO_APPLICATION_SECRET,
    DEMO_CONSUMER_KEY,
    LILLE_NUMBER,
    LILLE_SIP_LINE,
    LYON_NUMBER,
)

NO_CACHE = "no-cache, no-store, must-revalidate"
pytestmark = pytest.mark.xdist_group("apache")  # One process runs these, with the Apache servers they share.


@pytest.fixture(scope="session")
def site_venv():
    """The .venv3 (ovh, flup) the site's index.py imports, for the python3 Apache runs."""
    reason = apache.unavailable("cgi") and apache.unavailable("fastcgi")
    if reason:
        apache.require(reason)
    return apache.site_virtualenv()


@pytest.fixture(scope="session", params=["fastcgi", "cgi"])
def apache_server(request, fake_ovh_server, site_venv):
    """A private Apache serving a copy of the checkout, started once per mode."""
    reason = apache.unavailable(request.param)
    if reason:
        apache.require(reason)
    server = apache.Apache(request.param, fake_ovh_server, site_venv)
    yield server
    server.stop()


@pytest.fixture
def web(apache_server, fake_ovh):
    """The Apache server, with the simulator back to the demo account and the page told so (no shared read)."""
    apache_server.forget_reads()
    yield apache_server


def auth_time_requests(fake):
    return [r for r in fake.requests if r["path"] == "/auth/time"]


# --- Pages --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/index.py"])
def test_index_lists_the_groups(web, path):
    response = web.get(path)
    assert response.status_code == 200, web.error_log()
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert 'href="/lyon"' in response.text and 'href="/lille"' in response.text


@pytest.mark.parametrize(
    "path, title",
    [("/lyon", "Permanence téléphonique Lyon"), ("/LYON/", "Permanence téléphonique Lyon"),
     ("/lille", "Permanence téléphonique Lille")],
)  # fmt: skip
def test_group_pages(web, path, title):
    response = web.get(path)
    assert response.status_code == 200, web.error_log()
    assert title in text(response)
    assert 'action="/lyon/start"' in response.text or 'action="/lille/start"' in response.text
    assert "Impossible de lire" not in text(response)


def test_unknown_group_is_a_french_404(web):
    response = web.get("/grenoble")
    assert response.status_code == 404
    assert "Page introuvable" in text(response)
    assert 'href="/"' in response.text


def test_favicon(web):
    response = web.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"


@pytest.mark.parametrize("path", ["/", "/lyon", "/grenoble", "/favicon.ico"])
def test_no_cache_headers_sent_once(web, path):
    response = web.get(path)
    # requests joins repeated headers with ", ": equality proves each is sent once.
    assert response.headers["Cache-Control"] == NO_CACHE
    assert response.headers["Pragma"] == "no-cache"
    assert response.headers["Expires"] == "0"


def test_get_on_an_action_redirects_without_acting(web, fake_ovh):
    response = web.get("/lyon/start")
    assert response.status_code == 303
    assert response.headers["Location"] == "/lyon"
    assert [r for r in fake_ovh.requests if r["method"] != "GET"] == []


# --- Files Apache must never serve --------------------------------------------

PRIVATE_FILES = [
    "ovh.conf", "lines.ini", "data/activity.log", ".git/config", "tests/conftest.py", "cimade_ovh/simulator/fake.py",
    "cimade_ovh/config.py", "cimade_ovh/__init__.py", "cimade_ovh/__pycache__/config.*.pyc",
    "requirements.txt", "README.md", ".htaccess", "stats.py", "index.py",
]  # fmt: skip
PRIVATE_FOLDERS = [
    "/data", "/data/", "/tests", "/tests/", "/.git", "/.git/", "/.venv3/", "/cimade_ovh", "/cimade_ovh/",
    "/cimade_ovh/__pycache__/",
]  # fmt: skip


def private_file(site, name):
    """The file of the site `name` stands for (a compiled module: the one the site's python3 wrote)."""
    [path] = site.glob(name) if "*" in name else [site / name]
    assert path.is_file(), f"{path} should exist for this test to mean something"
    return path


def assert_not_revealed(path, response):
    """Nothing of the file `path` is in the response."""
    if path.suffix == ".pyc":  # Bytecode: neither the file nor a piece of it.
        data = path.read_bytes()
        assert data not in response.content and data[16:80] not in response.content
        return
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if len(line.strip()) >= 12]
    lines = [line for line in lines if not re.fullmatch(r"(</?\w+>)+", line)]  # Any error page has "</body></html>".
    assert not [line for line in lines if line in response.text]
    assert DEMO_APPLICATION_SECRET not in response.text and DEMO_CONSUMER_KEY not in response.text


@pytest.mark.parametrize("name", PRIVATE_FILES)
def test_files_are_never_served(web, name):
    if name == "data/activity.log":
        web.act("/lille/finish")  # The page writes its log.
    path = private_file(web.site, name)
    name = str(path.relative_to(web.site))
    response = web.get("/" + name) if name != "index.py" else web.get("/index.py/")
    if name == "index.py":  # /index.py runs the page: its source never shows.
        assert response.status_code == 200 and "import" not in response.text
        return
    assert response.status_code in (403, 404)
    assert_not_revealed(path, response)


@pytest.mark.parametrize("path", PRIVATE_FOLDERS)
def test_folders_are_not_listed_nor_revealed(web, path):
    response = web.get(path)
    assert response.status_code == 404
    assert "Page introuvable" in text(response)


def test_without_mod_rewrite_nothing_is_served(fake_ovh_server, site_venv):
    """The .htaccess denies everything when mod_rewrite is not loaded: no file, no folder, not even the page."""
    reason = apache.unavailable("cgi")
    if reason:
        apache.require(reason)
    server = apache.Apache("cgi", fake_ovh_server, site_venv, rewrite=False)
    try:
        assert "rewrite_module" not in server.configuration.read_text(encoding="utf-8")
        for name in PRIVATE_FILES:
            if name == "data/activity.log":  # The page cannot write it here: a line as it writes them.
                (server.site / name).write_text("2026-12-03 10:00:00\tlille\tfinish\t-\t127.0.0.1\tok\n")
            path = private_file(server.site, name)
            response = server.get("/" + str(path.relative_to(server.site)))
            assert response.status_code == 403, (name, response.status_code)
            assert_not_revealed(path, response)
        for path in ["/", "/lyon", *PRIVATE_FOLDERS]:
            assert server.get(path).status_code == 403, path
    finally:
        server.stop()


# --- Start, change, finish ----------------------------------------------------


def test_lille_start_change_finish(web, fake_ovh):
    page = web.act("/lille/start", {"number": "06 39 98 00 01"})
    assert "C'est fait : les appels arrivent maintenant sur le 06 39 98 00 01." in text(page)
    assert fake_ovh.who_rings(LILLE_NUMBER) == [VOLUNTEER]
    assert "flash=" in page.headers["Set-Cookie"] and "Max-Age=0" in page.headers["Set-Cookie"]

    page = web.act("/lille/start", {"number": "0639980002"})
    assert "le numéro a changé" in text(page)
    assert fake_ovh.who_rings(LILLE_NUMBER) == [OTHER_VOLUNTEER]

    page = web.act("/lille/finish")
    assert "La permanence est terminée" in text(page)
    assert fake_ovh.who_rings(LILLE_NUMBER) == [LILLE_SIP_LINE]

    actions = [(line[1], line[2], line[3], line[5]) for line in web.activity()[-3:]]
    assert actions == [
        ("lille", "start", VOLUNTEER, "ok, jusqu'à minuit"),
        ("lille", "change", OTHER_VOLUNTEER, "ok, jusqu'à minuit"),
        ("lille", "finish", "-", "ok"),
    ]
    assert web.activity()[-1][4] == "127.0.0.1"  # The volunteer's address, as Apache gives it.
    assert "[cimade-ovh] Lille : permanence terminée" in [mail["Subject"] for mail in web.mails()]


def test_what_the_page_writes_is_for_the_web_server_only(web):
    web.act("/lille/start", {"number": "06 39 98 00 01"})
    web.act("/lille/finish")
    written = [web.site / "data", *(web.site / "data").rglob("*")]
    assert web.site / "data" / "activity.log" in written
    assert [path for path in written if path.stat().st_mode & 0o007] == [], "other local users read nothing"


def test_lyon_two_volunteers_through_apache(web, fake_ovh):
    page = web.act("/lyon/start", {"number": "06 39 98 00 01", "name": "Inès"})
    assert "C'est fait : les appels arrivent maintenant sur le 06 39 98 00 01." in text(page)
    assert "Permanence en cours : 1 bénévole sur 2 au plus. Inès, 06 •• •• •• 01 : libre" in text(page)
    assert fake_ovh.who_rings(LYON_NUMBER, at=today_at_noon()) == [VOLUNTEER]

    page = web.act("/lyon/start", {"number": "+33 6 39 98 00 02"})
    assert "C'est fait : le 06 39 98 00 02 reçoit aussi les appels." in text(page)
    assert sorted(fake_ovh.who_rings(LYON_NUMBER, at=today_at_noon())) == [VOLUNTEER, OTHER_VOLUNTEER]

    page = web.act("/lyon/remove", web.remove_form("lyon", VOLUNTEER))
    assert "ne reçoit plus les appels" in text(page)
    assert fake_ovh.who_rings(LYON_NUMBER, at=today_at_noon()) == [OTHER_VOLUNTEER]

    page = web.act("/lyon/finish")
    assert "La permanence est terminée" in text(page)
    assert fake_ovh.who_rings(LYON_NUMBER, at=today_at_noon()) == []

    actions = [(line[1], line[2], line[3], line[5]) for line in web.activity()[-4:]]
    assert actions == [
        ("lyon", "start", VOLUNTEER, "ok, jusqu'à minuit"),
        ("lyon", "add", OTHER_VOLUNTEER, "ok, jusqu'à minuit"),
        ("lyon", "remove", VOLUNTEER, "ok"),
        ("lyon", "finish", "-", "ok"),
    ]


def test_invalid_number_is_refused_next_to_the_field(web, fake_ovh):
    response = web.post("/lyon/start", {"number": "08 36 65 65 65"})
    assert response.status_code == 400
    assert "numéros spéciaux en 08" in text(response)
    assert 'value="08 36 65 65 65"' in response.text
    assert [r for r in fake_ovh.requests if r["method"] != "GET"] == []


# --- lines.ini changed while Apache runs ---------------------------------------


def test_a_mistake_in_lines_ini_leaves_the_other_groups_serving(web, request):
    good = web.lines_ini.read_text(encoding="utf-8")
    request.addfinalizer(lambda: web.lines_ini.write_text(good, encoding="utf-8"))
    assert web.get("/lyon").status_code == 200  # A FastCGI process has read the good file.
    grenoble = "\n[grenoble]\nname = Grenoble\nkind = queue\nbilling_account = ab12345-ovh-1\nnumbre = 0033465719999\n"
    web.lines_ini.write_text(good + grenoble, encoding="utf-8")
    broken = web.get("/grenoble")
    assert broken.status_code == 500, web.error_log()
    assert "clé inconnue « numbre » : vouliez-vous dire « number » ?" in text(broken)
    for path in ("/", "/lyon", "/lille"):
        assert web.get(path).status_code == 200, web.error_log()
    assert "group [grenoble] not served" in web.error_log()
    if web.mode == "fastcgi":  # A running process keeps its last good configuration; a CGI process has none.
        web.lines_ini.write_text(good.replace("[settings]", "[settings]\ntimezon = UTC"), encoding="utf-8")
        for path in ("/", "/lyon", "/lille"):
            assert web.get(path).status_code == 200, web.error_log()
        assert "keeps serving the configuration it read before" in web.error_log()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give ovh.conf rights the web server lacks")
def test_an_ovh_conf_the_web_server_cannot_read_is_named(web, request):
    conf = web.site / "ovh.conf"
    request.addfinalizer(lambda: (conf.chmod(0o640), web.forget_reads()))
    assert web.get("/lille").status_code == 200
    conf.chmod(0o600)  # Root's own, as a "chmod 600" would leave it.
    web.forget_reads()  # The next read of OVH, not one shared for a second, needs ovh.conf.
    page = text(web.get("/lille"))
    assert "Le fichier de configuration OVH (ovh.conf) est illisible par la page (droits du fichier)." in page
    check = subprocess.run(
        [sys.executable, str(ROOT / "index.py"), "--check"], env={**os.environ, "LINES_INI": str(web.lines_ini)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert check.returncode == 1
    assert f"ERREUR : le serveur web (www-data) ne peut pas lire {conf} : chown root:www-data {conf}" in check.stdout


# --- The FastCGI process ------------------------------------------------------


def test_fastcgi_keeps_one_process_and_cgi_starts_one_per_request(web, fake_ovh):
    web.get("/lyon")  # A process is running from here on.
    before = web.page_processes()
    fake_ovh.reset()
    for path in ("/lyon", "/lille", "/LYON/", "/lille"):
        assert web.get(path).status_code == 200
    after = web.page_processes()
    if web.mode == "fastcgi":
        assert len(before) == 1 and after == before
        assert auth_time_requests(fake_ovh) == []  # It learnt OVH's clock once, before.
    else:
        assert before == after == []
        assert auth_time_requests(fake_ovh) == []  # Each CGI process takes the clock the first one shared.


def test_back_to_fastcgi_with_mod_cgid_still_loaded_the_page_runs_in_fastcgi(fake_ovh_server, site_venv):
    """The README's way back from CGI enables mod_fcgid and leaves mod_cgid: the .htaccess then prefers FastCGI."""
    reason = apache.unavailable("fastcgi") or apache.unavailable("cgi")
    if reason:
        apache.require(reason)
    server = apache.Apache("fastcgi", fake_ovh_server, site_venv, also=("cgid",))
    try:
        assert "cgid_module" in server.configuration.read_text(encoding="utf-8")
        assert server.get("/lille").status_code == 200
        running = server.page_processes()
        assert server.get("/lyon").status_code == 200
        assert len(running) == 1 and server.page_processes() == running, "one FastCGI process serves both"
    finally:
        server.stop()


def test_killed_fastcgi_process_is_replaced(web):
    if web.mode == "cgi":  # Nothing to kill: no process outlives its request.
        assert web.get("/lyon").status_code == 200
        assert web.page_processes() == []
        return
    assert web.get("/lyon").status_code == 200
    [killed] = web.page_processes()
    os.kill(killed, signal.SIGKILL)
    statuses = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = web.get("/lyon").status_code
        statuses.append(status)
        if status == 200:
            break
    assert statuses[-1] == 200 and len(statuses) <= 2, f"{statuses}\n{web.error_log()}"
    assert killed not in web.page_processes()
    assert all(web.get("/lille").status_code == 200 for _ in range(3))


# --- Answers sent before the body is read (CGI) -----------------------------------


@pytest.mark.parametrize(
    "path, size, status",
    [("/lyon", 30, 200), ("/nope", 30, 404), ("/lyon/stats", 30, 405), ("/lille/start", 5000, 413),
     ("/lille/start", 100_000, 413)],  # Under mod_fcgid's FcgidMaxRequestLen (128 KiB): beyond, Apache answers.
)  # fmt: skip
def test_answers_that_need_no_body_reach_the_browser(web, fake_ovh, path, size, status):
    """Under CGI, Apache drops an answer sent before the body is read (AH00574): the browser got nothing."""
    response = web.post(path, {"number": "0639980001", "pad": "x" * size})
    assert response.status_code == status, web.error_log()[-2000:]
    assert "<h1>" in response.text
    assert [r for r in fake_ovh.requests if r["method"] != "GET"] == []


def test_finish_after_the_access_cookie_expired_shows_the_code_page(web, fake_ovh):
    from test_security import CODE, set_code

    assert set_code(web.lines_ini, "lyon", CODE).returncode == 0
    os.chmod(web.site / "access-codes.ini", 0o644)
    try:
        web.http.cookies.set("access", "1.expired", path="/lyon")
        response = web.post("/lyon/finish", {"csrf": "from-the-page-left-open"}, token=False)
        assert response.status_code == 403, web.error_log()[-2000:]
        assert "réservée aux bénévoles du groupe" in text(response)
        assert [r for r in fake_ovh.requests if r["method"] != "GET"] == []
    finally:
        web.http.cookies.clear()
        web.token = ""
        subprocess.run(
            [sys.executable, str(apache.ROOT / "index.py"), "--remove-code", "lyon"],
            env={**os.environ, "LINES_INI": str(web.lines_ini)}, capture_output=True, check=True,
        )  # fmt: skip


# --- Slow OVH -----------------------------------------------------------------


def test_a_slow_action_answers_in_french_before_apache_gives_up(web, fake_ovh):
    """At 7 s a request, a change of number (about ten requests one after the other) outlasts Apache.

    mod_fcgid gives up after 40 s (FcgidIOTimeout), CGI after 60 s (Timeout): the page stops before.
    """
    write_lines_ini(web.site, fake_ovh, groups={"lyon": {"max_volunteers": "1"}})
    try:
        web.act("/lyon/start", {"number": "0639980001"})
        fake_ovh.latency_ms = 7000
        response = web.post("/lyon/start", {"number": "0639980002"})
        assert response.status_code == 303, web.error_log()[-2000:]
        fake_ovh.latency_ms = 0
        page = text(web.get("/lyon"))
        assert "OVH répond trop lentement : la page s'est arrêtée avant d'avoir tout fait." in page
    finally:
        fake_ovh.latency_ms = 0
        write_lines_ini(web.site, fake_ovh)
