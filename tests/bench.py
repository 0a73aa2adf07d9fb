#!/usr/bin/env python3
"""Benchmark of the permanence page on the OVH simulator: OVH requests, chains of waits, time.

    .venv3/bin/python tests/bench.py [--latency-ms 50] [--runs 20] [--load-seconds 5]
    .venv3/bin/python tests/bench.py --start-up [--runs 20]     only the CGI start-up of / (a minute)

Every OVH request waits --latency-ms in the simulator. Lyon is a queue with 10 agents,
2 time conditions and 3 live calls; Lille is a redirect; then Lille with an access code and
10 voicemail messages: its page, and the first byte of « Écouter ». It measures the group pages in
a warm process and in cold CGI processes, each action (its POST, then the page it leads
to) in both, the start-up of a CGI process, then 20 volunteers refreshing /lyon at once
through a private Apache with mod_fcgid. The package is compiled first (compileall), as the
README's install does. It prints a table and the issue's targets beside
the figures; it passes or fails nothing (pytest does not collect it: no test in it).
"""

import argparse
import itertools
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webpage import write_lines_ini  # noqa: E402

from cimade_ovh import sharing  # noqa: E402
from cimade_ovh.access import form_token, secret_key  # noqa: E402
from cimade_ovh.config import load_settings  # noqa: E402
from cimade_ovh.ovhapi import connect_ovh  # noqa: E402
from cimade_ovh.sharing import change_stamp  # noqa: E402
from cimade_ovh.simulator.voicemail import FILE_READY_SECONDS  # noqa: E402
from cimade_ovh.voicemail import AUDIO_POLL_SECONDS  # noqa: E402
from cimade_ovh.simulator import (  # noqa: E402
    DEMO_APPLICATION_KEY,
    DEMO_APPLICATION_SECRET,
    DEMO_BILLING_ACCOUNT,
    DEMO_CONSUMER_KEY,
    LYON_NUMBER,
    FakeOVH,
    longest_chain,
)

EASY_HUNTING = f"/telephony/{DEMO_BILLING_ACCOUNT}/easyHunting/{LYON_NUMBER}"
AGENTS, CONDITIONS, LIVE_CALLS = 10, 2, 3  # Lyon's A, C and L in the issue's targets.
QUEUE_ID = 5001  # The demo queue of Lyon.
AGENT_NUMBERS = [f"00336399800{n}" for n in range(11, 21)]  # 11 and 12 are the demo's own agents.
LYON_VOLUNTEERS = (AGENT_NUMBERS[2], AGENT_NUMBERS[3])
LILLE_VOLUNTEERS = ("0033639980001", "0033639980002")


# --- Scenario -------------------------------------------------------------------


def set_up_account(fake):
    """Give Lyon 10 agents in its queue, 2 time conditions and 3 live calls, through the API and helpers."""
    client = connect_ovh(fake.url, DEMO_APPLICATION_KEY, DEMO_APPLICATION_SECRET, DEMO_CONSUMER_KEY)
    hunting = f"{EASY_HUNTING}/hunting"
    for position, number in enumerate(AGENT_NUMBERS[2:], start=3):
        agent = client.post(
            f"{hunting}/agent", number=number, status="loggedOut", timeout=10, simultaneousLines=1, wrapUpTime=0,
            description=f"Volunteer {position}",
        )  # fmt: skip
        client.post(f"{hunting}/agent/{agent['agentId']}/queue", queueId=QUEUE_ID, position=position)
    client.post(
        f"{EASY_HUNTING}/timeConditions/conditions",
        weekDay="friday", timeFrom="09:00:00", timeTo="12:00:00", policy="available",
    )  # fmt: skip
    fake.add_live_call(LYON_NUMBER, state="Waiting", caller="0033639989997")
    fake.add_live_call(LYON_NUMBER, state="Waiting", caller="0033639989998")
    fake.add_live_call(LYON_NUMBER, state="Answered", caller="0033639989999", agent=AGENT_NUMBERS[0])
    assert len(client.get(f"{hunting}/agent")) == 10
    assert len(client.get(f"{EASY_HUNTING}/timeConditions/conditions")) == 2
    assert len(client.get(f"{hunting}/queue/{QUEUE_ID}/liveCalls")) == 3


# --- Measures -------------------------------------------------------------------


def percentile(values, share):
    """The nearest-rank percentile: the smallest value at or above `share` of them."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def spread(values):
    """One number when every run gave the same, else min–max."""
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}–{high}"


@dataclass
class Row:
    """One line of the table: what was measured, over every run."""

    what: str
    requests: list
    chains: list
    seconds: list

    def cells(self):
        return [
            self.what,
            str(len(self.seconds)),
            spread(self.requests),
            spread(self.chains),
            f"{statistics.median(self.seconds) * 1000:.0f}",
            f"{percentile(self.seconds, 0.95) * 1000:.0f}",
        ]


def measure(fake, what, runs, step, before=None):
    """Run step() `runs` times, after before(); count the OVH requests of each step, their longest chain; time it."""
    row = Row(what, [], [], [])
    for _ in range(runs):
        if before:
            before()
        first = len(fake.requests)
        started = time.perf_counter()
        step()
        row.seconds.append(time.perf_counter() - started)
        made = fake.requests[first:]
        row.requests.append(len(made))
        row.chains.append(longest_chain(made))
    return row


# --- The page in a warm process -----------------------------------------------------


class Served:
    """index.py --serve in a process of its own: a persistent process, as mod_fcgid keeps one."""

    def __init__(self, lines_ini):
        import requests

        command = [sys.executable, str(ROOT / "index.py"), "--serve", "--port", "0"]
        environ = {**os.environ, "LINES_INI": str(lines_ini)}
        self.process = subprocess.Popen(
            command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.url = re.search(r"http://[\d.:]+", self.process.stdout.readline())[0]
        self.http = requests.Session()
        first = self.http.get(self.url + "/lille", timeout=30)  # The form token, as a browser gets it.
        self.csrf = self.http.cookies["csrf"]
        self.token = re.search(r'name="csrf" value="([^"]+)"', first.text)[1]
        self.access = {}  # The access cookies of the groups whose code was typed.

    def enter(self, slug, code):
        """Type a group's access code, as a volunteer does once; keep its cookie for the next requests."""
        response = self.call("POST", f"/{slug}/access", {"code": code})
        assert response.status_code == 303, f"POST /{slug}/access: {response.status_code}"
        self.access[slug] = self.http.cookies["access"]

    def stop(self):
        self.http.close()
        self.process.terminate()
        self.process.wait(10)

    def call(self, method, path, form=None):
        """Send a request with the form token and no other cookie (no flash message); return the response."""
        self.http.cookies.clear()
        self.http.cookies.set("csrf", self.csrf)
        slug = path.split("/")[1]
        if slug in self.access:
            self.http.cookies.set("access", self.access[slug])
        if method == "POST":
            form = {**(form or {}), "csrf": self.token}
        return self.http.request(method, self.url + path, data=form, allow_redirects=False, timeout=30)


def page(server, path):
    """A step: GET a group page, which must show the line's state."""

    def step():
        response = server.call("GET", path)
        assert response.status_code == 200 and "Impossible de lire" not in response.text, f"GET {path}"

    return step


def action(server, path, done, number=""):
    """A step: POST an action, which must succeed as `done` (start, change, finish), then GET the page it leads to."""

    def step():
        response = server.call("POST", path, {"number": number} if number else {})
        cookie = response.headers.get("Set-Cookie", "")
        assert response.status_code == 303 and cookie.startswith(f"flash={done}"), f"POST {path}: {cookie}"
        page(server, response.headers["Location"])()

    return step


def rounds(fake, runs, where, steps):
    """Rows for rounds of actions (start, change, finish: half as many as `runs`), after a first round unmeasured."""
    for step in steps.values():  # A first round, so that every measured round does the same.
        step()
    measured = {name: Row(f"{name}, POST + GET, {where}", [], [], []) for name in steps}
    for _ in range(max(1, runs // 2)):
        for name, step in steps.items():
            one = measure(fake, "", 1, step)
            measured[name].requests += one.requests
            measured[name].chains += one.chains
            measured[name].seconds += one.seconds
    return list(measured.values())


def after_an_action(lines_ini, slug):
    """Change the group's stamp as an action does, so that the next page reads OVH afresh."""
    settings = load_settings(lines_ini)
    return lambda: change_stamp(settings, settings.groups[slug])


def warm_rows(fake, lines_ini, runs):
    """The group pages, then rounds of actions (half as many), in a persistent process warmed by a first request."""
    server = Served(lines_ini)
    try:
        for path in ("/lyon", "/lille"):
            page(server, path)()
        rows = []
        for slug in ("lyon", "lille"):
            fresh = after_an_action(lines_ini, slug)
            rows.append(measure(fake, f"page /{slug}, warm process", runs, page(server, f"/{slug}"), before=fresh))
        fresh, lyon = after_an_action(lines_ini, "lyon"), page(server, "/lyon")
        shared = f"page /lyon, warm process, read shared (< {sharing.SHARE_SECONDS} s)"
        rows.append(measure(fake, shared, runs, lyon, before=lambda: (fresh(), lyon())))
        for slug, (first, second) in {"lyon": LYON_VOLUNTEERS, "lille": LILLE_VOLUNTEERS}.items():
            steps = {
                f"start /{slug}": action(server, f"/{slug}/start", "start", first),
                f"change /{slug}": action(server, f"/{slug}/start", "change", second),
                f"finish /{slug}": action(server, f"/{slug}/finish", "finish"),
            }
            rows += rounds(fake, runs, "warm process", steps)
    finally:
        server.stop()
    return rows


# --- The voicemail ------------------------------------------------------------------


MESSAGES = 10
VOICEMAIL_CODE = "bench-code-lille"


def first_byte(server, path, rows_seconds):
    """A step: GET a message's audio and time its first byte (appended to `rows_seconds`)."""

    def step():
        started = time.perf_counter()
        with server.http.get(server.url + path, stream=True, timeout=30) as response:
            assert response.status_code == 200, f"GET {path}: {response.status_code}"
            next(response.iter_content(1))
            rows_seconds.append(time.perf_counter() - started)

    return step


def voicemail_rows(fake, runs):
    """Lille with an access code and 10 messages: its fresh page, then « Écouter » (first byte), in a warm process."""
    from cimade_ovh.access import hash_code, write_access_code, write_coded_groups
    from cimade_ovh.simulator import LILLE_SIP_LINE

    keys = [f"{LILLE_SIP_LINE}:{fake.leave_message(LILLE_SIP_LINE, f'00336399899{n:02}', 20 + n)}"
            for n in range(MESSAGES)]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="cimade-ovh-bench-voicemail-") as folder:
        lines_ini = write_lines_ini(Path(folder), fake, notify="")
        settings = load_settings(lines_ini)
        write_access_code(settings.access_codes, "lille", hash_code(VOICEMAIL_CODE))
        write_coded_groups(settings, {"lille"})
        server = Served(lines_ini)
        try:
            server.enter("lille", VOICEMAIL_CODE)
            page(server, "/lille")()  # The boxes remembered.
            fresh = after_an_action(lines_ini, "lille")
            rows = [measure(fake, f"page /lille, code, {MESSAGES} messages, warm", runs, page(server, "/lille"),
                            before=fresh)]  # fmt: skip
            new = Row("« Écouter », new file, first byte, warm", [], [], [])
            for key in keys[:runs]:  # Each message's file asked for the first time.
                one = measure(fake, "", 1, first_byte(server, f"/lille/messages/{key}/audio", []))
                new.requests += one.requests
                new.chains += one.chains
                new.seconds += one.seconds
            known = measure(fake, "« Écouter » again (URL known), first byte, warm", runs,
                            first_byte(server, f"/lille/messages/{keys[0]}/audio", []))  # fmt: skip
            rows += [new, known]
        finally:
            server.stop()
    return rows


# --- The page in cold CGI processes -----------------------------------------------


def cgi(lines_ini, path, *python_options, form=None, cookie="", status="200"):
    """Run index.py as Apache runs a CGI script, for a GET (or a POST of `form`); return its output and error."""
    body = urlencode(form).encode("ascii") if form is not None else b""
    environ = {
        **os.environ,
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": "GET" if form is None else "POST",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "HTTP_COOKIE": cookie,
        "SCRIPT_NAME": "/index.py",
        "PATH_INFO": path,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "LINES_INI": str(lines_ini),
    }
    command = [sys.executable, *python_options, str(ROOT / "index.py")]
    result = subprocess.run(command, env=environ, input=body, capture_output=True, timeout=60, check=True)
    out, error = result.stdout.decode("utf-8"), result.stderr.decode("utf-8")
    assert out.startswith(f"Status: {status}"), out + error
    return out, error


def imports_ovh(lines_ini, path):
    """Whether index.py run as CGI for `path` imports the ovh client (python -X importtime tells)."""
    _, error = cgi(lines_ini, path, "-X", "importtime")
    modules = [line.rsplit("|", 1)[-1].strip() for line in error.splitlines()]
    return any(name == "ovh" or name.startswith("ovh.") for name in modules)


def ovh_import_seconds(lines_ini, runs):
    """The median time a POST /lille/start in CGI takes to import the ovh client (python -X importtime)."""
    settings = load_settings(lines_ini)
    csrf = "bench-csrf-cookie-000000"
    token = form_token(secret_key(settings), csrf)
    seconds = []
    for run in range(runs):
        form = {"csrf": token, "number": LILLE_VOLUNTEERS[run % 2]}
        _, error = cgi(lines_ini, "/lille/start", "-X", "importtime", form=form, cookie=f"csrf={csrf}", status="303")
        lines = [line.split("|") for line in error.splitlines() if line.startswith("import time:")]
        seconds += [int(line[1]) / 1e6 for line in lines if line[2].strip() == "ovh"]
    return statistics.median(seconds)


def page_in_cgi(lines_ini, path):
    """A step: GET a group page from a CGI process."""
    return lambda: cgi(lines_ini, path)


def cgi_action(lines_ini, path, done, number=""):
    """A step: POST an action to a CGI process, which must succeed as `done`, then GET the page in another one."""
    settings = load_settings(lines_ini)
    csrf = "bench-csrf-cookie-000000"  # A browser's csrf cookie, and the form token that goes with it.
    form = {"csrf": form_token(secret_key(settings), csrf), **({"number": number} if number else {})}

    def step():
        out, error = cgi(lines_ini, path, form=form, cookie=f"csrf={csrf}", status="303")
        assert f"flash={done}" in out, out + error
        cgi(lines_ini, path.rsplit("/", 1)[0])

    return step


def in_turn(fake, runs, steps):
    """Rows for `steps` ({what: step}) run in turn, `runs` times: a load that comes and goes weighs on each alike."""
    rows = {what: Row(what, [], [], []) for what in steps}
    for _ in range(runs):
        for what, step in steps.items():
            one = measure(fake, what, 1, step)
            rows[what].requests += one.requests
            rows[what].chains += one.chains
            rows[what].seconds += one.seconds
    return list(rows.values())


def start_up_rows(fake, lines_ini, runs):
    """The start-up of / in a CGI process and of a bare python3, measured in turn: / is counted in bare starts."""
    return in_turn(fake, runs, {
        "python3 -c pass (no index.py)": lambda: subprocess.run([sys.executable, "-c", "pass"]),
        "page /, cold CGI process": lambda: cgi(lines_ini, "/"),
    })  # fmt: skip


def start_up_lines(bare_row, index_row):
    """The CGI start-up of / beside a bare start, and what / costs beyond it in bare starts (the issue's target)."""
    bare, start_up = statistics.median(bare_row.seconds), statistics.median(index_row.seconds)
    beyond = (start_up - bare) / bare
    return [
        f"  CGI start-up of index.py for /: {start_up * 1000:.0f} ms, python3 -c pass: {bare * 1000:.0f} ms "
        f"(+{(start_up - bare) * 1000:.0f} ms)",
        f"  {'ok  ' if beyond <= 3.5 else 'MISS'} CGI /, start-up beyond python3 -c pass, in bare starts: "
        f"{beyond:.1f} (target ≤ 3.5)",
    ]


def cgi_rows(fake, lines_ini, runs):
    """Each request in a new process, as Apache without mod_fcgid runs it (half as many runs).

    The start-up of / and a bare python3 are measured in turn (as many runs), since / is counted in bare starts.
    """
    bare, index = start_up_rows(fake, lines_ini, runs)
    runs, rows = max(1, runs // 2), [bare]
    for path in ("/lyon", "/lille"):
        fresh = after_an_action(lines_ini, path[1:])
        rows.append(measure(fake, f"page {path}, cold CGI process", runs, lambda p=path: cgi(lines_ini, p), fresh))
    fresh, lille = after_an_action(lines_ini, "lille"), page_in_cgi(lines_ini, "/lille")
    shared = f"page /lille, cold CGI process, read shared (< {sharing.SHARE_SECONDS} s)"
    rows.append(measure(fake, shared, runs, lille, before=lambda: (fresh(), lille())))
    fresh(), lille()
    rows[-1].what += f" (imports ovh: {'yes' if imports_ovh(lines_ini, '/lille') else 'no'})"
    rows.append(index)
    rows[-1].what += f" (imports ovh: {'yes' if imports_ovh(lines_ini, '/') else 'no'})"
    for slug, (first, second) in {"lyon": LYON_VOLUNTEERS, "lille": LILLE_VOLUNTEERS}.items():
        steps = {
            f"start /{slug}": cgi_action(lines_ini, f"/{slug}/start", "start", first),
            f"change /{slug}": cgi_action(lines_ini, f"/{slug}/start", "change", second),
            f"finish /{slug}": cgi_action(lines_ini, f"/{slug}/finish", "finish"),
        }
        rows += rounds(fake, runs * 2, "CGI", steps)
    return rows


# --- Load through Apache and mod_fcgid ----------------------------------------------


def refresh(server, path, deadline, latencies, statuses):
    """One volunteer: refresh `path` until the deadline."""
    import requests

    with requests.Session() as http:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            status = http.get(server.url + path, timeout=30).status_code
            latencies.append(time.perf_counter() - started)
            statuses.append(status)


def crowd(server, path, clients, seconds):
    """`clients` volunteers refreshing `path` at once for `seconds`; return (latencies, statuses)."""
    latencies, statuses = [], []
    deadline = time.monotonic() + seconds
    arguments = (server, path, deadline, latencies, statuses)
    threads = [threading.Thread(target=refresh, args=arguments) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, statuses


def load(fake, clients, seconds):
    """Volunteers refreshing /lyon through a private Apache with mod_fcgid; return the lines to print, and
    (p95 in seconds, OVH requests per page), or None when Apache cannot run."""
    import apache

    reason = apache.unavailable("fastcgi")
    if reason:
        return [f"Load: skipped, {reason}."], None
    try:
        server = apache.Apache("fastcgi", fake, apache.site_virtualenv())
    except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
        return [f"Load: skipped, Apache could not start: {error}"], None
    try:
        assert server.get("/lyon").status_code == 200, server.error_log()
        crowd(server, "/lyon", clients, 3)  # Let mod_fcgid start the processes it wants.
        first = len(fake.requests)
        latencies, statuses = crowd(server, "/lyon", clients, seconds)
        made = len(fake.requests) - first
        processes = len(server.page_processes())
    finally:
        server.stop()
    failed = sum(status != 200 for status in statuses)
    figures = (percentile(latencies, 0.95), made / len(latencies))
    return [
        f"Load: {clients} volunteers refreshing /lyon for {seconds} s through Apache + mod_fcgid "
        f"({processes} FastCGI processes):",
        f"  {len(latencies)} pages ({failed} failed), {len(latencies) / seconds:.0f} pages/s, "
        f"median {statistics.median(latencies) * 1000:.0f} ms, p95 {percentile(latencies, 0.95) * 1000:.0f} ms, "
        f"{made} OVH requests ({made / len(latencies):.2f} per page)",
    ], figures


# --- Report ---------------------------------------------------------------------------


def table(rows):
    """The rows as aligned text columns."""
    header = ["what", "runs", "OVH requests", "chain", "median ms", "p95 ms"]
    lines = [header] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join([line[0].ljust(widths[0])] + [line[i].rjust(widths[i]) for i in range(1, len(header))])
        for line in lines
    )


def targets(rows, latency_ms, loaded, ovh_import):
    """The issue's targets beside the figures measured: the worst run for counts, the median for times."""
    found = {row.what: row for row in rows}
    lines = [f"Targets (A = {AGENTS} agents, C = {CONDITIONS} time conditions, L = {LIVE_CALLS} live calls):"]

    def check(what, measured, target, met):
        lines.append(f"  {'ok  ' if met else 'MISS'} {what}: {measured} (target {target})")

    for where, suffix in (("warm", "warm process"), ("CGI", "cold CGI process")):
        for path, chain, most in (("/lyon", 2, AGENTS + CONDITIONS + LIVE_CALLS + 7), ("/lille", 1, 2)):
            row = found[f"page {path}, {suffix}"]
            check(f"fresh page {path}, {where}, requests", max(row.requests), f"≤ {most}", max(row.requests) <= most)
            check(f"fresh page {path}, {where}, chain", max(row.chains), f"≤ {chain}", max(row.chains) <= chain)
    for where in ("warm process", "CGI"):
        for name, slug in itertools.product(("start", "change", "finish"), ("lyon", "lille")):
            row = found[f"{name} /{slug}, POST + GET, {where}"]
            most, chain = (AGENTS + CONDITIONS + 18, 8 if name == "change" else 6) if slug == "lyon" else (5, 3)
            what = f"{name} /{slug}, POST + GET, {where}"
            check(f"{what}, requests", max(row.requests), f"≤ {most}", max(row.requests) <= most)
            check(f"{what}, chain", max(row.chains), f"≤ {chain}", max(row.chains) <= chain)
    bare_row = found["python3 -c pass (no index.py)"]
    bare = statistics.median(bare_row.seconds)
    index_row = next(row for row in rows if row.what.startswith("page /, cold CGI"))
    start_up = statistics.median(index_row.seconds)
    lines += start_up_lines(bare_row, index_row)
    group_row = next(row for row in rows if row.what.startswith("page /lille, cold CGI process, read shared"))
    group_start_up = statistics.median(group_row.seconds)
    lines.append(f"  CGI start-up of index.py for /lille, read shared: {group_start_up * 1000:.0f} ms "
                 f"(+{(group_start_up - bare) * 1000:.0f} ms), {max(group_row.requests)} OVH requests, "
                 f"imports ovh: {group_row.what.rsplit(': ', 1)[1].rstrip(')')}")  # fmt: skip
    imported = index_row.what.rsplit(": ", 1)[1].rstrip(")")
    check("CGI /, OVH requests", max(index_row.requests), "0", max(index_row.requests) == 0)
    check("CGI /, imports ovh", imported, "no", imported == "no")
    lille = statistics.median(found["start /lille, POST + GET, CGI"].seconds)
    limit = 2 * start_up + 4 * latency_ms / 1000
    check("start /lille, POST + GET, CGI, median", f"{lille * 1000:.0f} ms",
          f"≤ 2 × {start_up * 1000:.0f} + 4 × {latency_ms} = {limit * 1000:.0f} ms", lille <= limit)  # fmt: skip
    lines.append(f"    its POST makes 3 OVH round trips (read, write, read back) and its GET none, so the import of "
                 f"the ovh client, which / does not need, must fit in the fourth ({latency_ms} ms): "
                 f"it takes {ovh_import * 1000:.0f} ms (python -X importtime, median)")  # fmt: skip
    row = found[f"page /lille, code, {MESSAGES} messages, warm"]
    # Its line (its redirect, its SIP line's options), its box (settings, the two folders), a message's detail each.
    check(f"page /lille with {MESSAGES} messages, requests", max(row.requests), f"≤ {5 + MESSAGES}",
          max(row.requests) <= 5 + MESSAGES)  # fmt: skip
    check(f"page /lille with {MESSAGES} messages, chain", max(row.chains), "≤ 2", max(row.chains) <= 2)
    row = found["« Écouter » again (URL known), first byte, warm"]
    known = statistics.median(row.seconds)
    check("« Écouter », URL known, first byte, median", f"{known * 1000:.0f} ms", f"≤ 3 × {latency_ms} ms",
          known <= 3 * latency_ms / 1000)  # fmt: skip
    row = found["« Écouter », new file, first byte, warm"]
    lines.append(
        f"    a new file waits for OVH to make it (the simulator: {FILE_READY_SECONDS} s, asked every "
        f"{AUDIO_POLL_SECONDS} s): first byte after {statistics.median(row.seconds) * 1000:.0f} ms (median)"
    )
    if loaded:
        p95, per_page = loaded
        check("load, p95", f"{p95 * 1000:.0f} ms", f"≤ 4 × {latency_ms} ms", p95 <= 4 * latency_ms / 1000)
        check("load, OVH requests per page", f"{per_page:.2f}", "≤ 0.2", per_page <= 0.2)
    return lines


def main(argv=None):
    """Measure, then print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=int, default=50, help="delay of every OVH request (50)")
    parser.add_argument("--runs", type=int, default=20, help="runs of each measure (20)")
    parser.add_argument("--clients", type=int, default=20, help="volunteers refreshing at once (20)")
    parser.add_argument("--load-seconds", type=int, default=5, help="length of the load measure (5)")
    parser.add_argument("--start-up", action="store_true", help="only the CGI start-up of / against python3 -c pass")
    args = parser.parse_args(argv)

    # As the README's install does: the CGI processes run the package's compiled code, as under Apache.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "cimade_ovh")], check=True)
    fake = FakeOVH().start()
    try:
        set_up_account(fake)
        fake.latency_ms = args.latency_ms
        with tempfile.TemporaryDirectory(prefix="cimade-ovh-bench-") as folder:
            # One volunteer at a time on Lyon, so that a second number is a change, as the first version did.
            lines_ini = write_lines_ini(Path(folder), fake, groups={"lyon": {"max_volunteers": "1"}}, notify="")
            if args.start_up:
                rows = start_up_rows(fake, lines_ini, args.runs)
                print(table(rows), *start_up_lines(*rows), sep="\n")
                return 0
            rows = warm_rows(fake, lines_ini, args.runs) + cgi_rows(fake, lines_ini, args.runs)
            ovh_import = ovh_import_seconds(lines_ini, max(1, args.runs // 2))
        rows += voicemail_rows(fake, args.runs)
        load_lines, loaded = load(fake, args.clients, args.load_seconds)
    finally:
        fake.stop()
    print(
        f"cimade-ovh benchmark: OVH simulator at {args.latency_ms} ms per request; "
        "Lyon: queue, 10 agents, 2 time conditions, 3 live calls; Lille: redirect."
    )
    print(table(rows))
    print()
    print("\n".join(load_lines))
    print()
    print("\n".join(targets(rows, args.latency_ms, loaded, ovh_import)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
