"""How the page reads OVH: each thing once, in parallel, shared by concurrent pages, never older than an action."""

import os
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from webpage import THURSDAY_AFTERNOON, VOLUNTEER, Site, text

import index
from cimade_ovh.ovhapi import OvhFailure
from cimade_ovh.queues import QueueSnapshot
from cimade_ovh.sharing import SHARE_SECONDS, change_stamp, stamp_path
from cimade_ovh.simulator import (
    DEMO_BILLING_ACCOUNT,
    LILLE_NUMBER,
    LILLE_SIP_LINE,
    LYON_NUMBER,
    sip_line,
)

NEW_SIP_LINE = "0033353010002"


def group(app, slug):
    """The settings and a group of an App."""
    settings = app.settings()
    return settings, settings.groups[slug]


def change_account(fake, change):
    """Change the simulated account behind the page's back, as IT would in OVH's manager."""
    account = fake.snapshot()
    change(account["billingAccounts"][DEMO_BILLING_ACCOUNT])
    fake.reset(account)


# --- OVH requests of a page -----------------------------------------------------


@pytest.fixture(autouse=True)
def sharing(site):
    """Pages share their reads here, as in production (webpage.Site turns it off for the other tests)."""
    site.app.reads.seconds = SHARE_SECONDS


SERVICE = f"/telephony/{DEMO_BILLING_ACCOUNT}/easyHunting/{LYON_NUMBER}"
QUEUE_LISTS = {f"{SERVICE}/hunting/queue/5001{rest}" for rest in ("", "/agent", "/liveCalls")}
LYON_LISTS = {f"{SERVICE}/{rest}" for rest in ("hunting/agent", "timeConditions", "timeConditions/conditions")}
LYON_ITEMS = {
    f"{SERVICE}/{rest}" for rest in ("hunting/agent/4001", "hunting/agent/4002", "timeConditions/conditions/6001")
}
REDIRECT = f"/telephony/{DEMO_BILLING_ACCOUNT}/redirect/{LILLE_NUMBER}"
LINE = f"/telephony/{DEMO_BILLING_ACCOUNT}/line/{LILLE_SIP_LINE}"
# What a page asks OVH, wave by wave: a request of a wave waits for no other of it, but for one of the wave before.
FIRST_PAGE = {
    "lyon": [
        {"/auth/time"},
        {"/auth/currentCredential", f"{SERVICE}/hunting/queue"} | LYON_LISTS,
        QUEUE_LISTS | LYON_ITEMS,
    ],
    "lille": [{"/auth/time"}, {"/auth/currentCredential", REDIRECT}, {f"{LINE}/options"}],
}
WARM_PAGE = {
    "lyon": [{f"{SERVICE}/hunting/queue"} | QUEUE_LISTS | LYON_LISTS, LYON_ITEMS],
    "lille": [{REDIRECT, f"{LINE}/options"}],
}


def gets(waves):
    """Waves of GET paths, as FakeOVH.in_waves names them."""
    return [{f"GET {path}" for path in wave} for wave in waves]


@pytest.mark.parametrize("slug", ["lyon", "lille"])
def test_a_warm_page_asks_each_thing_once_and_waits_for_two_answers_at_most(site, slug):
    site.app.reads.seconds = 0  # Every page reads OVH.
    site.get(f"/{slug}")  # The process learns OVH's clock, the key's expiration, the queue id or SIP line.
    first = len(site.fake.requests)
    page, waves = site.fake.in_waves(lambda: text(site.get(f"/{slug}")), gets(WARM_PAGE[slug]))
    assert "Impossible de lire" not in page
    assert waves == gets(WARM_PAGE[slug])
    assert len(site.fake.requests[first:]) == sum(len(wave) for wave in waves)  # Each thing once.


@pytest.mark.parametrize("slug", ["lyon", "lille"])
def test_the_first_page_of_a_process_waits_for_the_clock_then_the_queue_id_or_sip_line(site, slug):
    page, waves = site.fake.in_waves(lambda: text(site.get(f"/{slug}")), gets(FIRST_PAGE[slug]))
    assert "Impossible de lire" not in page
    # /auth/time, the queue id (the SIP line), the queue's lists (the line's options); the other lists alongside.
    assert waves == gets(FIRST_PAGE[slug])


def test_concurrent_pages_share_one_read(site):
    site.get("/lille")  # The process has its client and the key's expiration.
    site.fake.latency_ms = 100
    first = len(site.fake.requests)
    with ThreadPoolExecutor(max_workers=10) as pool:
        pages = list(pool.map(lambda _: text(site.get("/lyon")), range(10)))
    assert all("Pas de permanence en cours" in page for page in pages)
    conditions = f"/telephony/{DEMO_BILLING_ACCOUNT}/easyHunting/{LYON_NUMBER}/timeConditions/conditions"
    assert [r["path"] for r in site.fake.requests[first:]].count(conditions) == 1


def test_a_page_right_after_another_reuses_its_read(site):
    site.get("/lyon")
    first = len(site.fake.requests)
    assert "Pas de permanence en cours" in text(site.get("/lyon"))
    assert site.fake.requests[first:] == []


def test_the_page_after_an_action_shows_its_result(site):
    for slug in ("lyon", "lille"):
        assert "Pas de permanence en cours" in text(site.get(f"/{slug}"))
        assert "Permanence en cours sur le 06 •• •• •• 01" in text(site.act(f"/{slug}/start", {"number": VOLUNTEER}))
        assert "Pas de permanence en cours" in text(site.act(f"/{slug}/finish"))


def test_two_processes_never_show_a_state_older_than_the_others_last_action(site):
    # A second process on the same lines.ini and data folder.
    other = Site(site.folder, site.fake, groups={"lyon": {"max_volunteers": "1"}}, share_seconds=SHARE_SECONDS)
    try:
        for slug in ("lille", "lyon"):
            assert "Pas de permanence en cours" in text(other.get(f"/{slug}"))
            site.act(f"/{slug}/start", {"number": VOLUNTEER})
            assert "Permanence en cours sur le 06 •• •• •• 01" in text(other.get(f"/{slug}"))
            other.act(f"/{slug}/finish")
            assert "Pas de permanence en cours" in text(site.get(f"/{slug}"))
    finally:
        other.close()


def test_the_page_after_an_action_asks_ovh_nothing_it_read_back(site):
    for slug in ("lyon", "lille"):
        site.get(f"/{slug}")
        first = len(site.fake.requests)
        response = site.post(f"/{slug}/start", {"number": VOLUNTEER})
        assert response.status_code == 303
        written = len(site.fake.requests)
        assert "Permanence en cours sur le 06 •• •• •• 01" in text(site.get(f"/{slug}"))
        assert site.fake.requests[written:] == []
        made = site.fake.requests[first:written]
        assert len([r for r in made if r["method"] == "GET"]) < 2 * len({r["path"] for r in made})
        site.act(f"/{slug}/finish")


def test_a_read_is_shared_by_another_process_and_so_are_the_clock_and_the_keys_expiration(site):
    site.get("/lyon")
    other = Site(site.folder, site.fake, groups={"lyon": {"max_volunteers": "1"}}, share_seconds=SHARE_SECONDS)
    try:
        first = len(site.fake.requests)
        assert "Pas de permanence en cours" in text(other.get("/lyon"))
        assert site.fake.requests[first:] == []  # Not even OVH's clock, the key's expiration or the queue id.
        settings, lyon = group(other.app, "lyon")
        change_stamp(settings, lyon)
        page, waves = site.fake.in_waves(lambda: text(other.get("/lyon")), gets(WARM_PAGE["lyon"]))
        assert "Pas de permanence en cours" in page
        assert waves == gets(WARM_PAGE["lyon"])  # The queue's lists did not wait for its id: the shared read told it.
    finally:
        other.close()


def test_a_failed_read_is_shared_only_with_the_pages_that_waited_for_it(site):
    other = index.App(lines_ini=site.lines_ini)
    settings, lyon = group(site.app, "lyon")

    def failing_read():
        raise OvhFailure("server", "test")

    with pytest.raises(OvhFailure):
        site.app.reads.get(settings, lyon, failing_read)
    assert other.reads.get(*group(other, "lyon"), lambda: shot("again")) == shot("again")


def test_shared_files_are_readable_by_the_page_whatever_the_umask(site):
    previous = os.umask(0o077)
    try:
        site.get("/lyon")
    finally:
        os.umask(previous)
    shared = site.app.settings().data_dir / "shared"
    assert stat.S_IMODE(shared.stat().st_mode) == 0o750
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in shared.iterdir()}
    assert modes == {name: 0o640 for name in ("lyon.json", "lyon.lock", "clock.json", "credential.json")}


# --- Sharing, step by step ------------------------------------------------------


def shot(name):
    """A snapshot of Lyon told apart by `name`, as a read of OVH gives."""
    return QueueSnapshot(5001, [], [], [], [], {}, name)


def held_read(value, seconds=10):
    """A read that starts, then waits for release.set() (`seconds` at most) before giving `value`.

    Returns (read, started, release).
    """
    started, release = threading.Event(), threading.Event()

    def read():
        started.set()
        release.wait(seconds)
        return value

    return read, started, release


def test_a_page_arriving_during_a_read_waits_for_it(site):
    settings, lyon = group(site.app, "lyon")
    slow_read, started, release = held_read(shot("first"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(site.app.reads.get, settings, lyon, slow_read)
        started.wait(10)
        second = pool.submit(site.app.reads.get, settings, lyon, lambda: shot("second"))
        release.set()
        assert (first.result(), second.result()) == (shot("first"), shot("first"))


def test_a_page_of_another_process_waits_for_its_read_in_progress(site):
    other = index.App(lines_ini=site.lines_ini)
    settings, lyon = group(site.app, "lyon")
    slow_read, started, release = held_read(shot("first"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(site.app.reads.get, settings, lyon, slow_read)
        started.wait(10)
        second = pool.submit(other.reads.get, *group(other, "lyon"), lambda: shot("second"))
        time.sleep(0.2)  # The second page reaches the lock (passing either way if it is late).
        release.set()
        assert (first.result(), second.result()) == (shot("first"), shot("first"))


def test_a_read_begun_before_an_action_ended_is_not_reused_after_it(site, mocker):
    mocker.patch("cimade_ovh.files.LOCK_TIMEOUT", 600)  # Nor waited for: the held read's lock would hold it that long.
    settings, lyon = group(site.app, "lyon")
    slow_read, started, release = held_read(shot("before"))
    with ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = pool.submit(site.app.reads.get, settings, lyon, slow_read)
        started.wait(10)
        with site.app.reads.changing(settings, lyon):
            pass
        assert site.app.reads.get(settings, lyon, lambda: shot("after")) == shot("after")
        release.set()
        assert in_flight.result() == shot("before")
    assert site.app.reads.get(settings, lyon, lambda: shot("later")) == shot("after")


def test_an_action_in_another_process_ends_the_sharing(site):
    other = index.App(lines_ini=site.lines_ini)
    settings, lyon = group(site.app, "lyon")
    assert site.app.reads.get(settings, lyon, lambda: shot("before")) == shot("before")
    assert site.app.reads.get(settings, lyon, lambda: shot("again")) == shot("before")
    with other.reads.changing(*group(other, "lyon")):
        pass
    assert site.app.reads.get(settings, lyon, lambda: shot("after")) == shot("after")


def test_a_failed_read_is_not_reused(site):
    settings, lyon = group(site.app, "lyon")

    def failing_read():
        raise OvhFailure("server", "test")

    with pytest.raises(OvhFailure):
        site.app.reads.get(settings, lyon, failing_read)
    assert site.app.reads.get(settings, lyon, lambda: shot("again")) == shot("again")


def test_an_unreadable_stamp_shares_nothing(site):
    settings, lyon = group(site.app, "lyon")
    stamp_path(settings, lyon).mkdir(parents=True)  # A folder where the stamp file should be.
    assert site.app.reads.get(settings, lyon, lambda: shot("first")) == shot("first")
    assert site.app.reads.get(settings, lyon, lambda: shot("second")) == shot("second")


# --- What a process remembers: checked on every read ----------------------------


def test_a_queue_replaced_in_the_manager_is_found_again(site):
    site.app.reads.seconds = 0
    site.get("/lyon")  # The process remembers queue 5001.

    def replace_queue(billing):
        service = billing["easyHunting"][LYON_NUMBER]
        service["queues"][0]["queueId"] = 5002
        for link in service["agentQueues"]:
            link["queueId"] = 5002

    change_account(site.fake, replace_queue)
    assert "Impossible de lire" not in text(site.get("/lyon"))
    assert "Permanence en cours sur le 06 •• •• •• 01" in text(site.act("/lyon/start", {"number": VOLUNTEER}))
    assert site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON) == [VOLUNTEER]


def test_a_second_queue_added_in_the_manager_is_still_refused(site):
    site.app.reads.seconds = 0
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
    site.app.reads.seconds = 0
    site.get("/lille")  # The process remembers the SIP line 03 53 01 00 01.

    def move_redirect(billing):
        billing["line"][NEW_SIP_LINE] = sip_line(NEW_SIP_LINE, "New SIP line", LILLE_NUMBER, "0033353010098")
        billing["redirect"][LILLE_NUMBER]["destination"] = NEW_SIP_LINE
        if not old_line_kept:
            del billing["line"][LILLE_SIP_LINE]

    change_account(site.fake, move_redirect)
    assert "ligne SIP du groupe (03 53 01 00 02)" in text(site.get("/lille"))
    assert "Permanence en cours sur le 06 •• •• •• 01" in text(site.act("/lille/start", {"number": VOLUNTEER}))
    assert site.fake.who_rings(LILLE_NUMBER) == [VOLUNTEER]


def test_a_page_after_an_action_does_not_wait_for_a_read_of_another_process_begun_before_it(site, mocker):
    mocker.patch("cimade_ovh.files.LOCK_TIMEOUT", 600)  # Were the page to wait for the held read, this long.
    other = index.App(lines_ini=site.lines_ini)  # A process whose read of OVH began before the action.
    viewer = Site(site.folder, site.fake, groups={"lyon": {"max_volunteers": "1"}}, share_seconds=SHARE_SECONDS)
    slow_read, started, release = held_read(shot("before"), seconds=60)
    site.get("/lyon")  # The form's token.
    change_stamp(*group(other, "lyon"))  # The read of `other` does not reuse that page's.
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            in_flight = pool.submit(other.reads.get, *group(other, "lyon"), slow_read)
            started.wait(10)
            try:
                site.act("/lyon/start", {"number": VOLUNTEER})
                page = pool.submit(lambda: text(viewer.get("/lyon")))  # Another process shows the group.
                assert "Permanence en cours sur le 06 •• •• •• 01" in page.result(timeout=30)
            finally:
                release.set()
            assert in_flight.result() == shot("before")
    finally:
        viewer.close()
