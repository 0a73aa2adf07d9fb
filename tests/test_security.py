"""Access codes, form tokens, masked numbers, headers, one action per group at a time, handover."""

import html
import io
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from webpage import THURSDAY_AFTERNOON, VOLUNTEER, Site, text

import index
from cimade_ovh import access
from cimade_ovh.access import access_cookie_value, check_code, hash_code, read_access_codes
from cimade_ovh.files import locked_file
from cimade_ovh.phones import format_phone, mask_phone, normalize_phone
from cimade_ovh.simulator import LYON_NUMBER

ROOT = Path(__file__).resolve().parent.parent
CODE = "tournesol-42"


def set_code(lines_ini, group, code):
    """Run `index.py --set-code` as IT would, the code on standard input."""
    return subprocess.run(
        [sys.executable, str(ROOT / "index.py"), "--set-code", group],
        input=code + "\n",
        env={**os.environ, "LINES_INI": str(lines_ini)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def call(app, path, method="GET", body=b"", **environ):
    """Call the WSGI application directly, as another process or address would."""
    answer = {}
    base = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
    }
    chunks = app({**base, **environ}, lambda status, headers: answer.update(status=status, headers=headers))
    return int(answer["status"].split()[0]), answer["headers"], b"".join(chunks).decode("utf-8")


# --- Access code --------------------------------------------------------------


def test_a_group_with_a_code_asks_for_it_before_showing_anything(guarded):
    response = guarded.get("/lyon")
    assert response.status_code == 403
    page = text(response)
    assert "Cette page est réservée aux bénévoles du groupe." in page
    assert 'type="password"' in response.text
    assert "Permanence en cours" not in page and "Pas de permanence" not in page
    assert guarded.fake.requests == [], "nothing is read from OVH before the code"
    assert guarded.get("/lille").status_code == 200, "a group without a code behaves as before"


def test_the_statistics_page_needs_the_code_too(guarded):
    assert guarded.get("/lyon/stats").status_code == 403
    guarded.post("/lyon/access", {"code": CODE})
    assert guarded.get("/lyon/stats").status_code == 200


def test_the_stored_code_is_a_salted_slow_hash(guarded):
    stored = (guarded.folder / "access-codes.ini").read_text(encoding="utf-8")
    assert CODE not in stored
    digest = re.search(r"code = (scrypt\$\S+)", stored)[1]
    assert check_code(CODE, digest) and not check_code(CODE + "x", digest)
    assert hash_code(CODE) != hash_code(CODE), "each hash has its own salt"


def test_the_right_code_lets_the_volunteer_in_with_a_signed_cookie(guarded):
    response = guarded.post("/lyon/access", {"code": CODE})
    assert response.status_code == 303 and response.headers["Location"] == "/lyon"
    cookie = next(c for c in response.raw.headers.getlist("Set-Cookie") if c.startswith("access="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/lyon" in cookie
    assert f"Max-Age={12 * 3600}" in cookie
    assert "Secure" not in cookie, "plain HTTP here; Secure under HTTPS (see below)"
    assert "Pas de permanence en cours" in text(guarded.get("/lyon"))
    page = text(guarded.act("/lyon/start", {"number": "0639980001"}))
    assert "C'est fait" in page
    assert guarded.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON) == [VOLUNTEER]
    assert [line[2:6] for line in guarded.activity()] == [
        ["access", "-", "127.0.0.1", "ok"],
        ["start", VOLUNTEER, "127.0.0.1", "ok, jusqu'à minuit"],
    ]


def test_an_action_without_the_code_changes_nothing(guarded):
    response = guarded.post("/lyon/start", {"number": "0639980001"})
    assert response.status_code == 403
    assert "Code d'accès" in text(response)
    assert guarded.writes() == []


def test_a_wrong_code_is_refused_in_french(guarded):
    response = guarded.post("/lyon/access", {"code": "tournesol-43"})
    assert response.status_code == 403
    assert "Ce code n'est pas le bon." in text(response)
    assert "access=" not in response.headers.get("Set-Cookie", "")
    assert guarded.activity()[-1][2:6] == ["access", "-", "127.0.0.1", "code erroné"]


def test_a_wrong_code_is_slowed_down(site):
    assert set_code(site.lines_ini, "lyon", CODE).returncode == 0
    started = time.monotonic()
    assert site.post("/lyon/access", {"code": "nope"}).status_code == 403
    assert time.monotonic() - started >= access.WRONG_CODE_DELAY


def test_forged_expired_or_old_cookies_are_refused(guarded):
    guarded.get("/lyon")
    key = (guarded.folder / "data" / "secret.key").read_bytes()
    group = guarded.app.settings().groups["lyon"]
    stored = read_access_codes(guarded.folder / "access-codes.ini")["lyon"]
    past = access_cookie_value(key, group, stored, int(time.time()) - 1)
    for value in (past, f"{int(time.time()) + 3600}.forged", "garbage"):
        guarded.http.cookies.set("access", value, path="/lyon")
        assert guarded.get("/lyon").status_code == 403, value
    guarded.http.cookies.clear()
    guarded.token = ""
    guarded.post("/lyon/access", {"code": CODE})
    assert guarded.get("/lyon").status_code == 200
    assert set_code(guarded.lines_ini, "lyon", "a-new-code").returncode == 0
    assert guarded.get("/lyon").status_code == 403, "a new code shuts out the old cookies"


def test_repeated_wrong_codes_lock_out_that_address_in_every_process(guarded):
    for _ in range(access.MAX_WRONG_CODES):
        assert guarded.post("/lyon/access", {"code": "guess"}).status_code == 403
    response = guarded.post("/lyon/access", {"code": CODE})
    assert response.status_code == 429
    assert "Trop de codes erronés depuis cet appareil. Réessayez dans 15 minutes." in text(response)
    assert 800 < int(response.headers["Retry-After"]) <= 901
    other_process = index.App(lines_ini=guarded.lines_ini)
    status, _, page = call(other_process, "/lyon/access", "POST", b"code=x")
    assert status == 403, "a form without a token is refused before any check"
    cookie, token = guarded.http.cookies.get("csrf"), guarded.token
    body = f"code={CODE}&csrf={token}".encode()
    status, _, _ = call(other_process, "/lyon/access", "POST", body, HTTP_COOKIE=f"csrf={cookie}")
    assert status == 429, "the lockout holds in another process"
    status, _, _ = call(
        other_process, "/lyon/access", "POST", body, HTTP_COOKIE=f"csrf={cookie}", REMOTE_ADDR="10.0.0.9"
    )
    assert status == 303, "another address is not locked out"


def test_set_code_refuses_short_codes_and_unknown_groups_and_can_remove(site):
    short = set_code(site.lines_ini, "lyon", "abc")
    assert short.returncode == 1 and "au moins 6 caractères" in short.stdout
    unknown = set_code(site.lines_ini, "grenoble", CODE)
    assert unknown.returncode == 1 and "ne définit pas le groupe « grenoble »" in unknown.stdout
    assert set_code(site.lines_ini, "lyon", CODE).returncode == 0
    assert site.get("/lyon").status_code == 403
    removed = subprocess.run(
        [sys.executable, str(ROOT / "index.py"), "--remove-code", "lyon"],
        env={**os.environ, "LINES_INI": str(site.lines_ini)},
        capture_output=True,
        text=True,
    )
    assert removed.returncode == 0, removed.stdout
    assert site.get("/lyon").status_code == 200


def test_a_code_pasted_or_set_with_spaces_around_it_works(site, mocker):
    mocker.patch("cimade_ovh.access.WRONG_CODE_DELAY", 0)
    assert set_code(site.lines_ini, "lyon", f"  {CODE}\t").returncode == 0
    for pasted in (f" {CODE}\n", CODE):
        site.http.cookies.clear()
        site.token = ""
        response = site.post("/lyon/access", {"code": pasted})
        assert response.status_code == 303, text(response)
        assert "Pas de permanence en cours" in text(site.get("/lyon"))
    response = site.post("/lyon/access", {"code": f"{CODE[:-1]} "})
    assert response.status_code == 403 and "Ce code n'est pas le bon." in text(response)


def test_secret_key_is_readable_by_its_owner_only(guarded):
    guarded.get("/lyon")
    assert (guarded.folder / "data" / "secret.key").stat().st_mode & 0o777 == 0o600


# --- Forms --------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_a_form_without_its_token_does_nothing_and_keeps_what_was_typed(site, token):
    site.get("/lyon")
    data = {"number": "06 39 98 00 01"} | ({} if token is None else {"csrf": token})
    response = site.post("/lyon/start", data, token=False)
    assert response.status_code == 403
    assert "La page avait expiré" in text(response)
    assert 'value="06 39 98 00 01"' in response.text
    assert site.writes() == []


def test_a_token_only_works_with_its_own_browser_cookie(site):
    site.get("/lille")
    with requests.Session() as other_browser:
        other_browser.get(site.url + "/lille")
        response = other_browser.post(site.url + "/lille/start", data={"number": "0639980001", "csrf": site.token})
    assert response.status_code == 403
    assert site.writes() == []


def test_cookies_are_secure_under_https(site):
    status, headers, _ = call(site.app, "/lille", HTTPS="on", **{"wsgi.url_scheme": "https"})
    cookies = [value for name, value in headers if name == "Set-Cookie"]
    assert status == 200 and cookies
    assert all("Secure" in c and "HttpOnly" in c and "SameSite=Lax" in c for c in cookies)


def test_security_headers_hold_on_every_kind_of_answer(site):
    for response in (site.get("/"), site.get("/lyon"), site.get("/nowhere"), site.http.delete(site.url + "/lyon")):
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "script-src" not in policy and "unsafe-inline" not in policy
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "<script" not in response.text


# --- Privacy ------------------------------------------------------------------


def test_numbers_are_masked_for_everyone_but_the_volunteer_who_set_it(site, fake_ovh):
    page = site.act("/lyon/start", {"number": "06 39 98 00 01"})
    assert "C'est fait : les appels arrivent maintenant sur le 06 39 98 00 01." in text(page)
    assert "Permanence en cours sur le 06 •• •• •• 01." in text(page)
    assert text(page).count("39 98 00 01") == 1, "only in the confirmation"
    fake_ovh.add_live_call(LYON_NUMBER, state="Answered", agent=VOLUNTEER, caller="0033639981234")
    fake_ovh.add_live_call(LYON_NUMBER, caller="0033639985678")
    with requests.Session() as visitor:
        shown = visitor.get(site.url + "/lyon").text
    assert "06 •• •• •• 01" in text_of(shown)
    for hidden in ("39 98 00 01", "0033639980001", "0639980001", "1234", "5678"):
        assert hidden not in shown
    assert site.activity()[-1][3] == VOLUNTEER, "the activity log keeps whole numbers for IT"


def text_of(html_text):
    return " ".join(re.sub(r"<[^>]+>", " ", html_text).split())


def test_mask_phone():
    assert mask_phone("0033639980001") == "06 •• •• •• 01"
    assert mask_phone("0041221234567") == "•••••••••••67"


# --- One action per group at a time --------------------------------------------


def test_two_volunteers_at_the_same_moment_get_one_whole_outcome_each(site):
    site.fake.latency_ms = 20
    site.get("/lyon")
    numbers = {"a": "0639980001", "b": "0639980002"}
    pages = {}

    def press(who):
        browser = Site.__new__(Site)
        browser.__dict__.update(site.__dict__)
        browser.http = type(site.http)()
        browser.http.cookies.update(site.http.cookies)
        pages[who] = text(browser.act("/lyon/start", {"number": numbers[who]}))

    threads = [threading.Thread(target=press, args=(who,)) for who in numbers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    last = site.activity()[-1][3]
    assert site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON) == [last]
    available = [
        a for a in site.fake.snapshot()["billingAccounts"]["ab12345-ovh-1"]["easyHunting"][LYON_NUMBER]["agents"]
        if a["status"] == "available"
    ]  # fmt: skip
    assert [a["number"] for a in available] == [last]
    assert sorted(line[2] for line in site.activity()) == ["change", "start"]
    for who, number in numbers.items():
        shown = format_phone(normalize_phone(number))
        assert f"sur le {shown}." in pages[who], pages[who]


def test_an_action_waits_for_another_process_and_then_says_so(site, mocker):
    mocker.patch("cimade_ovh.files.LOCK_TIMEOUT", 0.3)
    settings = site.app.settings()
    site.get("/lyon")
    with locked_file(settings.data_dir / "locks" / "lyon.lock") as held:
        assert held is not None
        response = site.post("/lyon/start", {"number": "06 39 98 00 01"})
    assert response.status_code == 503
    assert "Quelqu'un d'autre modifie cette permanence en ce moment : rien n'a été fait." in text(response)
    assert 'value="06 39 98 00 01"' in response.text
    assert site.writes() == []


# --- Handover -----------------------------------------------------------------


def test_the_page_shows_the_last_actions_with_masked_numbers(site):
    site.act("/lyon/start", {"number": "0639980001"})
    site.act("/lyon/start", {"number": "0639980002"})
    site.fake.fail("PUT", "/telephony/ab12345-ovh-1/easyHunting/0033465710000/hunting/agent/*", kind="500")
    site.act("/lyon/finish")
    site.act("/lille/start", {"number": "0639980003"})
    page = text(site.get("/lyon"))
    assert (
        "Dernières actions jeu. 26/11 16:28 : fin (échec) jeu. 26/11 16:28 : changement de numéro, 06 •• •• •• 02, "
        "jusqu'à minuit jeu. 26/11 16:28 : début, 06 •• •• •• 01, jusqu'à minuit"
    ) in page
    assert "06 •• •• •• 03" not in page, "only the group's own actions"
    lille = text(site.get("/lille"))
    assert "Dernières actions jeu. 26/11 16:28 : début, 06 •• •• •• 03, jusqu'à minuit Numéro du groupe" in lille


# --- Found in review ------------------------------------------------------------


def test_odd_cookie_and_token_values_are_refused_not_crashed(guarded):
    guarded.get("/lille")
    response = guarded.post("/lille/finish", {"csrf": "é"}, token=False)
    assert response.status_code == 403
    for value in ("99999999999.é", "².abc", "9" * 5000 + ".x"):
        guarded.http.cookies.set("access", value, path="/lyon")
        assert guarded.get("/lyon").status_code == 403, value


def test_wrong_codes_sent_all_at_once_are_all_counted(guarded):
    guarded.get("/lyon")
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(lambda _: guarded.post("/lyon/access", {"code": "guess"}).status_code, range(10)))
    assert sorted(statuses) == [403] * access.MAX_WRONG_CODES + [429] * (10 - access.MAX_WRONG_CODES)


def test_deleting_the_secret_key_logs_everyone_out_at_once(guarded):
    guarded.post("/lyon/access", {"code": CODE})
    assert guarded.get("/lyon").status_code == 200
    (guarded.folder / "data" / "secret.key").unlink()
    assert guarded.get("/lyon").status_code == 403


def test_an_unwritable_data_folder_is_explained_in_french(site):
    site.configure("settings", data_dir="lines.ini")
    response = site.get("/lyon")
    assert response.status_code == 500
    assert "La page ne peut pas écrire dans son dossier de données." in text(response)
    assert "Traceback" not in response.text


# --- A broken group behind its code --------------------------------------------------

MISTAKE = "lines.ini, section [lyon], clé « kind » : « queu » inconnu (attendu : queue ou redirect)"
OUT_OF_ORDER = (
    "La configuration de ce groupe contient une erreur : la page ne peut pas le servir. "
    "Prévenez l'informatique de la Cimade (informatique@example.org)."
)


def test_a_broken_group_with_a_code_tells_its_mistake_only_to_those_it_let_in(guarded, caplog):
    guarded.post("/lyon/access", {"code": CODE})
    guarded.configure("lyon", kind="queu")
    let_in = guarded.get("/lyon")
    assert let_in.status_code == 500
    assert f"{OUT_OF_ORDER} Pour l'informatique : {MISTAKE}" in text(let_in)
    key = (guarded.folder / "data" / "secret.key").read_bytes()
    forged = access_cookie_value(key, guarded.app.settings().groups["lille"], "scrypt$other", 2**40)
    for path, method, cookie in [
        ("/lyon", "GET", ""),
        ("/lyon/access", "POST", ""),
        ("/lyon/remove", "POST", ""),
        ("/lyon", "GET", f"access={forged}"),
    ]:
        status, _, page = call(guarded.app, path, method, HTTP_COOKIE=cookie)
        page = html.unescape(page)
        assert status == 500, path
        assert OUT_OF_ORDER in page and "Pour l'informatique" not in page, path
        assert "lines.ini" not in page and "queu" not in page and 'type="password"' not in page, path
    assert any(MISTAKE.replace("lines.ini", str(guarded.lines_ini)) in r.getMessage() for r in caplog.records)
    guarded.configure("lille", kind="queu")
    status, _, page = call(guarded.app, "/lille")
    assert status == 500 and "Pour l'informatique : lines.ini, section [lille], clé « kind »" in html.unescape(page)


def test_a_broken_group_whose_code_is_lost_tells_its_mistake_to_nobody(guarded):
    guarded.post("/lyon/access", {"code": CODE})
    (guarded.folder / "access-codes.ini").unlink()
    guarded.configure("lyon", kind="queu")
    response = guarded.get("/lyon")
    assert response.status_code == 500
    assert OUT_OF_ORDER in text(response) and "lines.ini" not in response.text
