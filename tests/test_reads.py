"""How the page reads OVH: each thing once, in parallel, with what the process remembers checked each time."""

import pytest
from fake_ovh import DEMO_BILLING_ACCOUNT, LILLE_NUMBER, LILLE_SIP_LINE, LYON_NUMBER, longest_chain, sip_line
from webpage import THURSDAY_AFTERNOON, text

VOLUNTEER = "0033639980001"
NEW_SIP_LINE = "0033353010002"


def change_account(fake, change):
    """Change the simulated account behind the page's back, as IT would in OVH's manager."""
    account = fake.snapshot()
    change(account["billingAccounts"][DEMO_BILLING_ACCOUNT])
    fake.reset(account)


# --- OVH requests of a page -----------------------------------------------------


@pytest.mark.parametrize("slug, chain", [("lyon", 2), ("lille", 1)])
def test_a_warm_page_asks_each_thing_once_and_waits_for_two_answers_at_most(site, slug, chain):
    site.get(f"/{slug}")  # The process learns OVH's clock, the key's expiration, the queue id or SIP line.
    site.fake.latency_ms = 50
    first = len(site.fake.requests)
    assert "Impossible de lire" not in text(site.get(f"/{slug}"))
    made = site.fake.requests[first:]
    asked = [(r["method"], r["path"]) for r in made]
    assert len(asked) == len(set(asked)) and {method for method, _ in asked} == {"GET"}
    assert not [path for _, path in asked if path.startswith("/auth/")]
    assert longest_chain(made) == chain


# --- What a process remembers: checked on every read ----------------------------


def test_a_queue_replaced_in_the_manager_is_found_again(site):
    site.get("/lyon")  # The process remembers queue 5001.

    def replace_queue(billing):
        service = billing["easyHunting"][LYON_NUMBER]
        service["queues"][0]["queueId"] = 5002
        for link in service["agentQueues"]:
            link["queueId"] = 5002

    change_account(site.fake, replace_queue)
    assert "Impossible de lire" not in text(site.get("/lyon"))
    assert "Permanence en cours sur le 06 39 98 00 01" in text(site.act("/lyon/start", {"number": VOLUNTEER}))
    assert site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON) == [VOLUNTEER]


def test_a_second_queue_added_in_the_manager_is_still_refused(site):
    site.get("/lyon")
    change_account(
        site.fake,
        lambda billing: billing["easyHunting"][LYON_NUMBER]["queues"].append(
            dict(billing["easyHunting"][LYON_NUMBER]["queues"][0], queueId=5002)
        ),
    )
    assert "OVH en montre 2" in text(site.get("/lyon"))


@pytest.mark.parametrize("old_line_kept", [True, False])
def test_a_redirect_moved_to_another_sip_line_is_followed(site, old_line_kept):
    site.get("/lille")  # The process remembers the SIP line 03 53 01 00 01.

    def move_redirect(billing):
        billing["line"][NEW_SIP_LINE] = sip_line(NEW_SIP_LINE, "New SIP line", LILLE_NUMBER, "0033353010098")
        billing["redirect"][LILLE_NUMBER]["destination"] = NEW_SIP_LINE
        if not old_line_kept:
            del billing["line"][LILLE_SIP_LINE]

    change_account(site.fake, move_redirect)
    assert "ligne SIP du groupe (03 53 01 00 02)" in text(site.get("/lille"))
    assert "Permanence en cours sur le 06 39 98 00 01" in text(site.act("/lille/start", {"number": VOLUNTEER}))
    assert site.fake.who_rings(LILLE_NUMBER) == [VOLUNTEER]
