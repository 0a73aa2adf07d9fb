"""Shared fixtures: one OVH simulator for the session, reset before each test; a site, and one guarded by a code."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from test_security import CODE, set_code  # noqa: E402

from cimade_ovh.ovhapi import connect_ovh  # noqa: E402
from cimade_ovh.simulator import DEMO_APPLICATION_KEY, DEMO_APPLICATION_SECRET, DEMO_CONSUMER_KEY, FakeOVH  # noqa: E402


@pytest.fixture(scope="session")
def fake_ovh_server():
    """Start the simulator once, on a free port."""
    server = FakeOVH().start()
    yield server
    server.stop()


@pytest.fixture
def fake_ovh(fake_ovh_server):
    """The simulator, back to the demo account, no faults and no latency."""
    fake_ovh_server.reset()
    yield fake_ovh_server
    fake_ovh_server.reset()


@pytest.fixture
def ovh_client(fake_ovh):
    """An ovh.Client on the simulator with the demo application and consumer key."""
    return connect_ovh(fake_ovh.url, DEMO_APPLICATION_KEY, DEMO_APPLICATION_SECRET, DEMO_CONSUMER_KEY)


@pytest.fixture
def site(fake_ovh, tmp_path, mocker):
    """The page over HTTP on the simulator, believing it is Thursday 26 November 2026, 16:28 in Paris.

    Lyon takes one volunteer at a time here (the demo takes two): most tests are about one number.
    """
    from webpage import Site

    running = Site(tmp_path, fake_ovh, groups={"lyon": {"max_volunteers": "1"}})
    mocker.patch("cimade_ovh.clock.now", running.now)
    yield running
    running.close()


@pytest.fixture
def guarded(site, mocker):
    """The site with an access code on Lyon; wrong codes answer at once here."""
    mocker.patch("cimade_ovh.access.WRONG_CODE_DELAY", 0)
    result = set_code(site.lines_ini, "lyon", CODE)
    assert result.returncode == 0, result.stdout + result.stderr
    return site
