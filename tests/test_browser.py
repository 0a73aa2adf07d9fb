"""A volunteer's phone: headless Chromium (Debian's) at 360×740, on the page served by Apache in FastCGI mode.

Each test saves a full-page screenshot in tests/screenshots/. Skipped when Apache, Chromium or
Playwright is missing, except in CI (the environment variable CI is set), where that is a failure.
"""

import json
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import apache
import pytest
from webpage import PARIS, VOLUNTEER, today_at_noon

from cimade_ovh.config import load_settings
from cimade_ovh.figures import append_record, record_path
from cimade_ovh.simulator import (
    DEMO_BILLING_ACCOUNT,
    LILLE_NUMBER,
    LILLE_SIP_LINE,
    LYON_NUMBER,
    statistics_history,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PHONE = {"width": 360, "height": 740}
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
FIELD = "Votre numéro de téléphone"
RED = "rgb(164, 22, 26)"  # The start button: proves the style passed the Content-Security-Policy.
pytestmark = pytest.mark.xdist_group("browser")  # One process runs these, with its Apache and Chromium.


@pytest.fixture(scope="session")
def apache_fastcgi(fake_ovh_server):
    """The page as in production: Apache, mod_rewrite, the project's .htaccess, FastCGI."""
    reason = apache.unavailable("fastcgi")
    if reason:
        apache.require(reason)
    server = apache.Apache("fastcgi", fake_ovh_server, apache.site_virtualenv())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, driven by Playwright (no browser downloaded)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        apache.require("Playwright is not installed (pip install -r tests/requirements.txt)")
    if not shutil.which(CHROMIUM):
        apache.require(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def web(apache_fastcgi, fake_ovh):
    """The Apache server, with the simulator back to the demo account and the page told so (no shared read)."""
    apache_fastcgi.forget_reads()
    return apache_fastcgi


def open_phone(browser, request, **options):
    """A new page on a phone-sized screen, in French; console errors (such as CSP violations) are collected."""
    context = browser.new_context(viewport=PHONE, locale="fr-FR", **options)
    context.set_default_timeout(10_000)
    request.addfinalizer(context.close)
    page = context.new_page()
    page.console_errors = []

    def on_console(message):
        # The page answers 400 to an invalid number and 404 to an unknown group, on purpose.
        expected = re.fullmatch(r"Failed to load resource: .* status of 40[04] .*", message.text)
        if message.type == "error" and not expected:
            page.console_errors.append(message.text)

    page.on("console", on_console)
    return page


@pytest.fixture
def phone(browser, request):
    page = open_phone(browser, request)
    yield page
    assert page.console_errors == []


def screenshot(page, name):
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


ON_DUTY = {
    "Lyon": "Permanence en cours : 1 bénévole sur 2 au plus. 06 •• •• •• 01 : libre",
    "Lille": "Permanence en cours sur le 06 •• •• •• 01",
}


def start_and_finish(page, web, fake, name, public_number, idle, shot):
    """Open the list of groups, choose the group, start on a number, then finish."""
    from playwright.sync_api import expect

    page.goto(web.url + "/")
    page.get_by_role("link", name=name, exact=True).click()
    expect(page).to_have_url(f"{web.url}/{name.lower()}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)

    page.get_by_label(FIELD).fill("06 39 98 00 01")
    page.get_by_role("button", name="Répondre sur ce numéro").click()
    expect(page.locator(".box.ok")).to_contain_text(
        "C'est fait : les appels arrivent maintenant sur le 06 39 98 00 01."
    )
    expect(page.locator("main")).to_contain_text(ON_DUTY[name])
    assert fake.who_rings(public_number, at=today_at_noon()) == [VOLUNTEER]
    screenshot(page, f"{shot}-started")

    page.reload()  # The confirmation is shown once: a refresh neither repeats it nor the action.
    expect(page.locator(".box.ok")).to_have_count(0)
    expect(page.locator("main")).to_contain_text(ON_DUTY[name])

    page.get_by_role("button", name="Terminer la permanence").click()
    expect(page.locator(".box.ok")).to_contain_text("La permanence est terminée")
    expect(page.locator("main")).to_contain_text("Pas de permanence en cours")
    assert fake.who_rings(public_number, at=today_at_noon()) == idle
    screenshot(page, f"{shot}-finished")


@pytest.mark.parametrize(
    "name, public_number, idle", [("Lyon", LYON_NUMBER, []), ("Lille", LILLE_NUMBER, [LILLE_SIP_LINE])]
)
def test_volunteer_starts_and_finishes(phone, web, fake_ovh, name, public_number, idle):
    start_and_finish(phone, web, fake_ovh, name, public_number, idle, name.lower())


def test_two_volunteers_answer_together_then_one_leaves(phone, web, fake_ovh):
    from playwright.sync_api import expect

    phone.goto(web.url + "/lyon")
    phone.get_by_label(FIELD).fill("06 39 98 00 01")
    phone.get_by_role("button", name="Répondre sur ce numéro").click()
    phone.get_by_label("Prénom (facultatif)").fill("Inès")
    phone.get_by_label(FIELD).fill("06 39 98 00 02")
    phone.get_by_role("button", name="Ajouter mon numéro").click()
    expect(phone.locator(".box.ok")).to_contain_text("C'est fait : le 06 39 98 00 02 reçoit aussi les appels.")
    expect(phone.locator("main")).to_contain_text("2 bénévoles sur 2 au plus.")
    expect(phone.locator("main")).to_contain_text("La permanence est complète (2 bénévoles).")
    assert sorted(fake_ovh.who_rings(LYON_NUMBER, at=today_at_noon())) == [VOLUNTEER, "0033639980002"]
    screenshot(phone, "lyon-two-volunteers")

    phone.get_by_role("button", name="Retirer le 06 •• •• •• 01").click()
    expect(phone.locator(".box.ok")).to_contain_text("ne reçoit plus les appels")
    expect(phone.locator("main")).to_contain_text("1 bénévole sur 2 au plus. Inès, 06 •• •• •• 02 : libre")
    assert fake_ovh.who_rings(LYON_NUMBER, at=today_at_noon()) == ["0033639980002"]
    screenshot(phone, "lyon-one-left")


def test_works_without_javascript(browser, request, web, fake_ovh):
    page = open_phone(browser, request, java_script_enabled=False)
    start_and_finish(page, web, fake_ovh, "Lille", LILLE_NUMBER, [LILLE_SIP_LINE], "lille-without-javascript")
    assert page.console_errors == []


def test_invalid_number_is_explained_next_to_the_field(phone, web, fake_ovh):
    from playwright.sync_api import expect

    phone.goto(web.url + "/lyon")
    field = phone.get_by_label(FIELD)
    field.fill("08 36 65 65 65")
    phone.get_by_role("button", name="Répondre sur ce numéro").click()
    error = phone.locator("#number-error")
    expect(error).to_contain_text("Les numéros spéciaux en 08 ne peuvent pas recevoir les appels")
    expect(field).to_have_value("08 36 65 65 65")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_attribute("aria-describedby", "number-error")
    # Next to the field: right below it, above the button.
    field_box, error_box = field.bounding_box(), error.bounding_box()
    button_box = phone.get_by_role("button", name="Répondre sur ce numéro").bounding_box()
    assert field_box["y"] + field_box["height"] <= error_box["y"] < button_box["y"]
    assert error_box["y"] - (field_box["y"] + field_box["height"]) < 40
    assert [r for r in fake_ovh.requests if r["method"] != "GET"] == []
    screenshot(phone, "lyon-invalid-number")


@pytest.mark.parametrize("path", ["/", "/lyon", "/lille", "/grenoble"])
def test_page_fits_a_phone(phone, web, path):
    phone.goto(web.url + path)
    screenshot(phone, "phone" + (path.replace("/", "-") if path != "/" else "-index"))
    assert phone.locator("html").get_attribute("lang") == "fr"
    sizes = phone.evaluate(
        """() => ({
            scroll: document.documentElement.scrollWidth,
            width: window.innerWidth,
            fonts: [...document.querySelectorAll('body, p, li, label, input, button, a')]
                .map(e => parseFloat(getComputedStyle(e).fontSize)),
        })"""
    )
    assert sizes["scroll"] <= sizes["width"] == PHONE["width"], "horizontal scroll"
    assert min(sizes["fonts"]) >= 16
    for link in phone.get_by_role("link").all():  # Easy to touch with a finger.
        assert link.bounding_box()["height"] >= 44
    if path in ("/lyon", "/lille"):
        field = phone.get_by_label(FIELD)
        assert field.get_attribute("id") == "number"
        assert field.get_attribute("type") == "tel"
        assert field.get_attribute("autocomplete") == "tel"
        assert field.bounding_box()["height"] >= 44
        for button in phone.get_by_role("button").all():
            box = button.bounding_box()
            assert box["height"] >= 44 and box["width"] >= 200
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        start = phone.get_by_role("button", name="Répondre sur ce numéro")
        assert start.evaluate("b => getComputedStyle(b).backgroundColor") == RED


def test_statistics_fit_a_phone(phone, web, request):
    """A month of the demo's history: the chart shrinks to the screen, the wide table scrolls in its own box."""
    from playwright.sync_api import expect

    settings = load_settings(web.site / "lines.ini")
    request.addfinalizer(lambda: shutil.rmtree(settings.data_dir / "stats", ignore_errors=True))
    for record in statistics_history(datetime.now(PARIS)):
        moment = datetime.fromisoformat(record["time"])
        append_record(record_path(settings, settings.groups["lyon"], moment), record)
    phone.goto(web.url + "/lyon")
    phone.get_by_role("link", name="Statistiques des 30 derniers jours").click()
    expect(phone).to_have_url(f"{web.url}/lyon/stats")
    chart = phone.get_by_role("img", name=re.compile("^Appels répondus et perdus par jour"))
    expect(chart).to_be_visible()
    expect(phone.get_by_role("table", name="Appels par jour").get_by_role("row")).to_have_count(31)
    screenshot(phone, "phone-lyon-stats")
    sizes = phone.evaluate(
        """() => ({
            scroll: document.documentElement.scrollWidth,
            region: [document.querySelector('.scroll').clientWidth, document.querySelector('.scroll').scrollWidth],
        })"""
    )
    assert sizes["scroll"] <= PHONE["width"], "horizontal scroll"
    box = chart.bounding_box()
    assert box["x"] >= 0 and 300 <= box["width"] and box["x"] + box["width"] <= PHONE["width"]
    assert sizes["region"][0] < sizes["region"][1], "the table scrolls inside its box"


def test_the_end_field_on_a_phone_without_javascript(browser, request, web, fake_ovh):
    from playwright.sync_api import expect

    hour = max(datetime.now(PARIS).hour + 2, 3)  # At least 15 minutes ahead; the page opens the line from 2 h.
    if hour > 23:
        pytest.skip("an end within today, an hour ahead at least, needs the test to run before 22:00")
    phone = open_phone(browser, request, java_script_enabled=False)
    phone.goto(web.url + "/lyon")
    ends = phone.get_by_label("Heure de fin")
    assert ends.get_attribute("type") == "time" and ends.input_value() == "23:59"
    box = ends.bounding_box()
    assert box["height"] >= 44 and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    ends.fill("")
    phone.get_by_label(FIELD).fill("06 39 98 00 01")
    phone.get_by_role("button", name="Répondre sur ce numéro").click()
    expect(phone.locator("#ends-error")).to_contain_text("Indiquez l'heure de fin, par exemple 18:00.")
    expect(phone.get_by_label(FIELD)).to_have_value("06 39 98 00 01")
    assert [r for r in fake_ovh.requests if r["method"] != "GET"] == []
    screenshot(phone, "lyon-end-field-error")

    phone.get_by_label("Heure de fin").fill(f"{hour:02}:00")
    phone.get_by_role("button", name="Répondre sur ce numéro").click()
    expect(phone.locator("main")).to_contain_text(f"06 •• •• •• 01 : libre, jusqu'à {hour} h")
    end = datetime.now(PARIS).replace(hour=hour, minute=0, second=0, microsecond=0)
    assert fake_ovh.who_rings(LYON_NUMBER, at=end - timedelta(minutes=1)) == [VOLUNTEER]
    assert fake_ovh.who_rings(LYON_NUMBER, at=end + timedelta(minutes=1)) == []
    phone.get_by_label("Prénom (facultatif)").fill("Inès")
    phone.get_by_label(FIELD).fill("06 39 98 00 02")
    phone.get_by_role("button", name="Ajouter mon numéro").click()
    expect(phone.locator("main")).to_contain_text("Inès, 06 •• •• •• 02 : libre, jusqu'à minuit")
    screenshot(phone, "lyon-ends-two-volunteers")
    buttons = [phone.get_by_role("button", name=f"Retirer le 06 •• •• •• 0{n}").bounding_box() for n in (1, 2)]
    assert buttons[0]["x"] == buttons[1]["x"], "each Retirer button in the same place, with or without a first name"
    assert buttons[0]["x"] + buttons[0]["width"] <= PHONE["width"] and buttons[0]["height"] >= 44
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    phone.get_by_role("button", name="Terminer la permanence pour tout le monde").click()
    expect(phone.locator("main")).to_contain_text("Pas de permanence en cours")
    assert phone.console_errors == []


def test_a_link_from_a_messaging_app_opens_the_page_of_a_group_already_entered(phone, web, fake_ovh):
    """Volunteers get the page's link in messaging apps: another site. The access cookie (SameSite=Lax) goes along."""
    import os
    import subprocess
    import sys

    from playwright.sync_api import expect
    from test_security import CODE, set_code

    assert set_code(web.lines_ini, "lyon", CODE).returncode == 0
    os.chmod(web.site / "access-codes.ini", 0o644)
    try:
        phone.goto(web.url + "/lyon")
        phone.get_by_label("Code d'accès").fill(CODE)
        phone.get_by_role("button", name="Entrer").click()
        expect(phone.get_by_role("button", name="Répondre sur ce numéro")).to_be_visible()
        phone.console_errors.clear()  # The code page answered 403, on purpose.
        phone.goto(f"data:text/html,<a href='{web.url}/lyon'>Permanence de Lyon</a>")
        phone.get_by_role("link", name="Permanence de Lyon").click()
        expect(phone).to_have_url(f"{web.url}/lyon")
        expect(phone.get_by_role("button", name="Répondre sur ce numéro")).to_be_visible()
        screenshot(phone, "lyon-from-a-link")
    finally:
        subprocess.run(
            [sys.executable, str(apache.ROOT / "index.py"), "--remove-code", "lyon"],
            env={**os.environ, "LINES_INI": str(web.lines_ini)}, capture_output=True, check=True,
        )  # fmt: skip


def test_a_voicemail_message_plays_on_a_phone(phone, web, fake_ovh):
    """Behind Lille's code: the count opens the list, the player loads the audio through the page and has a duration."""
    import os
    import subprocess
    import sys

    from playwright.sync_api import expect
    from test_security import CODE, set_code

    assert set_code(web.lines_ini, "lille", CODE).returncode == 0
    os.chmod(web.site / "access-codes.ini", 0o644)
    fake_ovh.unanswered_call(LILLE_NUMBER, "0033639989901", 42)
    try:
        phone.goto(web.url + "/lille")
        phone.get_by_label("Code d'accès").fill(CODE)
        phone.get_by_role("button", name="Entrer").click()
        phone.console_errors.clear()  # The code page answered 403, on purpose.
        button = phone.get_by_role("button", name="Répondre sur ce numéro")
        expect(button).to_be_visible()
        box = button.bounding_box()
        assert box["y"] + box["height"] <= PHONE["height"], "the main button must fit in the first screen"
        expect(phone.locator("main")).to_contain_text("1 message à traiter sur la messagerie.")
        phone.get_by_role("link", name="1 message à traiter").click()
        phone.locator("summary", has_text="1 message à traiter").click()
        player = phone.locator("audio")
        expect(player).to_be_visible()
        duration = player.evaluate(
            "audio => new Promise((resolve, reject) => {"
            " audio.addEventListener('loadedmetadata', () => resolve(audio.duration));"
            " audio.addEventListener('error', () => reject(new Error('audio error ' + audio.error.code)));"
            " audio.preload = 'metadata'; audio.load(); })"
        )
        assert duration == 42
        screenshot(phone, "lille-voicemail")
        phone.get_by_label("Rappelé par (prénom, facultatif)").fill("Awa")
        phone.get_by_role("button", name="Traité").click()
        expect(phone.locator(".box.ok")).to_contain_text("C'est noté : le message est traité.")
        expect(phone.locator("main")).to_contain_text("Aucun message à traiter sur la messagerie.")
    finally:
        subprocess.run(
            [sys.executable, str(apache.ROOT / "index.py"), "--remove-code", "lille"],
            env={**os.environ, "LINES_INI": str(web.lines_ini)}, capture_output=True, check=True,
        )  # fmt: skip


# --- Each state in about one screen ----------------------------------------------------------------

# "About one screen": without scrolling, a volunteer sees the state, the volunteers with their « Retirer », the
# number field and the main button: the main button's bottom edge is within the first 740 px of the page (the
# screen's height; a browser's own bars take some of it on a real phone). Below it only folded explanations
# (<details>), « Terminer », the last actions (folded) and the footer.
ONE_SCREEN = PHONE["height"]
HEIGHTS = SCREENSHOTS / "heights.json"
EASY_HUNTING = f"/telephony/{DEMO_BILLING_ACCOUNT}/easyHunting/{LYON_NUMBER}"


def lyon_with(web, *volunteers):
    """Lyon with these (first name, number) on duty, set through the page as another volunteer's phone would."""
    for name, number in volunteers:
        web.act("/lyon/start", {"name": name, "number": number})
    return web.url + "/lyon"


def add_in_the_browser(page, url, name, number):
    """The volunteer's own phone: open the page, type a first name and a number, press « Ajouter mon numéro »."""
    from playwright.sync_api import expect

    page.goto(url)
    page.get_by_label("Prénom (facultatif)").fill(name)
    page.get_by_label(FIELD).fill(number)
    page.get_by_role("button", name="Ajouter mon numéro").click()
    expect(page.locator(".box")).to_be_visible()  # The page after the action, with the box that tells how it went.


def no_permanence(page, web, fake, request):
    page.goto(web.url + "/lyon")
    return "Répondre sur ce numéro", "Pas de permanence en cours."


def lille_one_volunteer(page, web, fake, request):
    web.act("/lille/start", {"number": "06 39 98 00 01"})
    page.goto(web.url + "/lille")
    return "Répondre sur ce numéro", "sur le 06 •• •• •• 01."


def lyon_one_volunteer(page, web, fake, request):
    page.goto(lyon_with(web, ("Awa", "06 39 98 00 01")))
    return "Ajouter mon numéro", "1 bénévole sur 2 au plus."


def lyon_two_volunteers(page, web, fake, request):
    page.goto(lyon_with(web, ("Awa", "06 39 98 00 01"), ("Bob", "06 39 98 00 02")))
    return "Changer mon heure de fin", "2 bénévoles sur 2 au plus."


def interrupted(page, web, fake, request):
    """OVH failed on reopening the period while Bob joined Awa: both wait, the line is closed."""
    url = lyon_with(web, ("Awa", "06 39 98 00 01"))
    fake.fail("POST", f"{EASY_HUNTING}/timeConditions/conditions", kind="500")
    assert web.post("/lyon/start", {"name": "Bob", "number": "06 39 98 00 02"}).status_code == 303
    page.goto(url)
    return "Ajouter mon numéro", "Permanence interrompue : 2 bénévoles sur 2 au plus."


def ovh_failing(page, web, fake, request):
    fake.fail("GET", f"{EASY_HUNTING}/hunting/queue", kind="503")
    page.goto(web.url + "/lyon")
    return "Répondre sur ce numéro", "Impossible de lire l'état de la ligne chez OVH."


def before_two(page, web, fake, request):
    """Between midnight and 2 h: the page in this process, its clock at 01:00 (Apache's is the real one)."""
    site = request.getfixturevalue("site")
    site.configure("lyon", max_volunteers="2")
    site.moment = site.moment.replace(hour=1, minute=0)
    site.act("/lyon/start", {"name": "Awa", "number": "06 39 98 00 01"})
    page.goto(site.url + "/lyon")
    return "Ajouter mon numéro", "Permanence prévue à partir de 2 h : 1 bénévole sur 2 au plus."


def after_an_action(page, web, fake, request):
    """Bob has just joined Awa on his phone: the box that says it is done, above a full permanence."""
    add_in_the_browser(page, lyon_with(web, ("Awa", "06 39 98 00 01")), "Bob", "06 39 98 00 02")
    return "Changer mon heure de fin", "C'est fait : le 06 39 98 00 02 reçoit aussi les appels."


def after_a_failure(page, web, fake, request):
    """Bob has just tried to join Awa and OVH failed on reopening: the error box, above the permanence interrupted."""
    url = lyon_with(web, ("Awa", "06 39 98 00 01"))
    fake.fail("POST", f"{EASY_HUNTING}/timeConditions/conditions", kind="500")
    add_in_the_browser(page, url, "Bob", "06 39 98 00 02")
    return "Ajouter mon numéro", "La demande n'a pas abouti"


def removal_failing(page, web, fake, request):
    """Awa removes Bob on her phone and OVH fails: the longer box (what OVH has, retry later), both still on duty."""
    page.goto(lyon_with(web, ("Awa", "06 39 98 00 01"), ("Bob", "06 39 98 00 02")))
    fake.fail("PUT", f"{EASY_HUNTING}/hunting/agent/*", kind="500")
    page.get_by_role("button", name="Retirer le 06 •• •• •• 02").click()
    return "Changer mon heure de fin", "L'état ci-dessous est celui qu'OVH a maintenant."


def coded_after_a_failure(page, web, fake, request):
    """As after_a_failure, on a group with an access code and two messages waiting: the status line counts them."""
    import os
    import subprocess
    import sys

    from test_security import CODE, set_code

    from cimade_ovh.simulator import LYON_VOICEMAIL

    url = lyon_with(web, ("Awa", "06 39 98 00 01"))  # Before the code: the test's own client has none.
    assert set_code(web.lines_ini, "lyon", CODE).returncode == 0
    request.addfinalizer(lambda: subprocess.run(
        [sys.executable, str(apache.ROOT / "index.py"), "--remove-code", "lyon"],
        env={**os.environ, "LINES_INI": str(web.lines_ini)}, capture_output=True, check=True,
    ))  # fmt: skip
    os.chmod(web.site / "access-codes.ini", 0o644)
    for caller in ("0033639989901", "0033639989902"):
        fake.leave_message(LYON_VOICEMAIL, caller, 30)
    page.goto(web.url + "/lyon")
    page.get_by_label("Code d'accès").fill(CODE)
    page.get_by_role("button", name="Entrer").click()
    page.console_errors.clear()  # The code page answered 403, on purpose.
    fake.fail("POST", f"{EASY_HUNTING}/timeConditions/conditions", kind="500")
    add_in_the_browser(page, url, "Bob", "06 39 98 00 02")
    return "Ajouter mon numéro", "2 messages à traiter sur la messagerie."


# Each state: how to reach it, which returns its main button and a text that says the page shows that state.
# The heights are printed and kept in HEIGHTS, for the README's table.
STATES = {
    "no-permanence": no_permanence,
    "lille-one-volunteer": lille_one_volunteer,
    "lyon-one-volunteer": lyon_one_volunteer,
    "lyon-two-volunteers": lyon_two_volunteers,
    "interrupted": interrupted,
    "ovh-failing": ovh_failing,
    "before-two": before_two,
    "after-an-action": after_an_action,
    "after-a-failure": after_a_failure,
    "removal-failing": removal_failing,
    "coded-after-a-failure": coded_after_a_failure,
}


@pytest.mark.parametrize("state", STATES)
def test_each_state_fits_about_one_screen(phone, web, fake_ovh, request, state):
    """The state, the volunteers with « Retirer », the number field and the main button within 740 px; heights kept."""
    from playwright.sync_api import expect

    button, shown = STATES[state](phone, web, fake_ovh, request)
    expect(phone.locator("main")).to_contain_text(shown)
    screenshot(phone, f"state-{state}")
    phone.screenshot(path=SCREENSHOTS / f"state-{state}-screen.png")  # The first screen only: the README's captures.
    measured = phone.evaluate(
        """(button) => {
            const bottom = e => e.getBoundingClientRect().bottom + window.scrollY;
            const lowest = selector => Math.max(...[...document.querySelectorAll(selector)].map(bottom));
            const main = [...document.querySelectorAll('button')].find(b => b.textContent.trim() === button);
            return {
                page: document.documentElement.scrollHeight,
                button: main ? bottom(main) : null,
                state: lowest('.box, .on, .off, button.remove'),
                field: lowest('#number, .field-error'),
                // The voicemail's lists fold on purpose (issue 22): their buttons are not the permanence's.
                folded: document.querySelectorAll(
                    'details:not(:has(ul.messages)) :is(button, input, .box, .field-error)').length,
            };
        }""",
        button,
    )
    heights = json.loads(HEIGHTS.read_text()) if HEIGHTS.exists() else {}
    heights[state] = {"page": measured["page"], "button": round(measured["button"] or 0)}
    HEIGHTS.write_text(json.dumps(heights, indent=1, sort_keys=True))
    print(f"{state}: page {measured['page']} px, main button's bottom at {heights[state]['button']} px")
    assert measured["button"] is not None, f"no button « {button} »"
    assert measured["folded"] == 0, "nothing a volunteer acts with is folded away"
    assert measured["state"] <= ONE_SCREEN and measured["field"] <= measured["button"] <= ONE_SCREEN
