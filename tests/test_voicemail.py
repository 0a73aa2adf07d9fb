"""The group's voicemail on its page: which boxes are read, the messages shown, « Traité », listening, privacy."""

import pytest
from test_security import CODE, set_code
from webpage import text

from cimade_ovh.config import load_settings
from cimade_ovh.simulator import (
    DEMO_BILLING_ACCOUNT,
    LILLE_NUMBER,
    LILLE_SIP_LINE,
    LYON_NUMBER,
    LYON_VOICEMAIL,
    longest_chain,
)

ACCOUNT = f"/telephony/{DEMO_BILLING_ACCOUNT}"
LYON = f"{ACCOUNT}/easyHunting/{LYON_NUMBER}"
CALLER, OTHER_CALLER = "0033639989901", "0033639989902"


def enter(site, slug):
    """Type the group's access code, as a volunteer does."""
    site.get(f"/{slug}")
    response = site.post(f"/{slug}/access", {"code": CODE})
    assert response.status_code == 303, response.text


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
    coded.get("/lille")
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
    coded.app.reads.seconds = 0  # Every page reads OVH.
    coded.fake.unanswered_call(LILLE_NUMBER, CALLER, 30)
    coded.fake.leave_message(LYON_VOICEMAIL, OTHER_CALLER, 12)
    coded.get(f"/{slug}")
    coded.fake.latency_ms = 50
    start = len(coded.fake.requests)
    assert coded.get(f"/{slug}").status_code == 200
    made = coded.fake.requests[start:]
    assert boxes_read(coded, start) and longest_chain(made) == 2
    assert len({(r["method"], r["path"], r["query"]) for r in made}) == len(made)
    assert text(coded.get(f"/{slug}"))  # Still whole.
