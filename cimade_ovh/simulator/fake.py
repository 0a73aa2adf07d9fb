"""FakeOVH: the simulator's account state, its HTTP server, the API dispatch, faults and request log.

The routes and helpers for tests live in the mixins: Credentials (keys, /auth, /me),
Telephony (/telephony), Voicemail (…/voicemail, the audio files, where unanswered calls leave
messages) and Calls (who_rings, live calls, statistics).
"""

import copy
import json
import os
import threading
import time
from pathlib import Path

from .account import (
    DEMO_APPLICATION_KEY,
    DEMO_APPLICATION_SECRET,
    DEMO_CONSUMER_KEY,
    demo_account,
    demo_authentication,
)
from .calls import Calls
from .credentials import Credentials, rule_matches
from .schema import ROUTES, ApiError, Call, Schema
from .server import BASE_PATH, HANG_SECONDS, Server
from .telephony import Telephony
from .voicemail import FILE_READY_SECONDS, Voicemail

FAULT_KINDS = ("500", "503", "invalid_credential", "drop", "hang", "gone")  # gone: deleted by someone else, just now


def wave_name(entry):
    """How in_waves names a request: "METHOD /path", with "?query" when it has one (two lists of one folder)."""
    return f"{entry['method']} {entry['path']}" + (f"?{entry['query']}" if entry.get("query") else "")


def longest_chain(requests):
    """The most requests of a log that waited on each other: each began after the previous one was answered.

    Measured from the log's times: a request sent late by a loaded machine looks as if it waited.
    Exact for a client that sends one request at a time; for reports (bench.py) otherwise.
    Tests measure a page's waits with FakeOVH.in_waves, which does not depend on timing.
    """
    spans = sorted((r["time"], r["time"] + r["duration"]) for r in requests if r["duration"] is not None)
    chains = []
    for i, (start, _) in enumerate(spans):
        chains.append(1 + max((chains[j] for j in range(i) if spans[j][1] <= start), default=0))
    return max(chains, default=0)


class FakeOVH(Credentials, Telephony, Voicemail, Calls):
    """The OVH API simulator: account state, HTTP server, API dispatch; routes and test helpers come from mixins."""

    def __init__(self, account=None, latency_ms=0):
        self.schema = Schema()
        missing = [key for key in ROUTES if key[1] not in {t for _, t, _ in self.schema.routes}]
        if missing:
            raise RuntimeError(f"Simulated routes missing from the schema: {missing}")
        self._lock = threading.RLock()
        self._server = None
        self._thread = None
        self.port = None
        self.state_path = None  # when set, the state is saved there as JSON after each change
        self.log_path = None  # when set, each request is appended there as a JSON line once answered
        self.hang_release = threading.Event()
        self._turns = threading.Condition(self._lock)  # Requests held by in_waves, and who waits for them.
        self._held = None  # While in_waves runs: [(entry, event that releases it)] not released yet.
        self.generation = 0  # Counts the resets: a request that waited across one is dropped.
        self.reset(account)
        self.latency_ms = latency_ms

    @property
    def url(self):
        """The endpoint to give connect_ovh()."""
        return f"http://127.0.0.1:{self.port}{BASE_PATH}"

    def start(self, port=0):
        """Serve in a background thread on 127.0.0.1 (port 0: any free port)."""
        self._server = Server(self, port)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-ovh", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop serving, releasing requests held by a "hang" fault."""
        self.hang_release.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    def reset(self, account=None):
        """Go back to a fresh seed (demo by default), demo credentials, no faults, no log, no latency.

        Audio files asked for are forgotten, and take FILE_READY_SECONDS again to be ready.
        """
        seed = copy.deepcopy(account if account is not None else demo_account())
        for key, value in demo_authentication().items():
            seed.setdefault(key, value)
        with self._lock:
            self.generation += 1
            self.state = seed
            self._faults = []
            self._log = []
            self.latency_ms = 0
            self.release_held()
            self._held = None
            self.files = {}  # The audio files of voicemail messages asked for, by the token of their URL.
            self.file_ready_seconds = FILE_READY_SECONDS  # None: a file is never ready.
            self.hang_release.set()
            self.hang_release = threading.Event()

    def snapshot(self):
        """Return a deep copy of the account state (JSON-serialisable)."""
        with self._lock:
            return copy.deepcopy(self.state)

    def save(self):
        """Write the state to state_path, if set."""
        if self.state_path:
            with self._lock:
                Path(self.state_path).write_text(json.dumps(self.state, indent=1, ensure_ascii=False), encoding="utf-8")

    def ovh_conf_text(self):
        """Return an ovh.conf pointing at this simulator with the demo credentials."""
        return (
            f"[default]\nendpoint = {self.url}\napplication_key = {DEMO_APPLICATION_KEY}\n"
            f"application_secret = {DEMO_APPLICATION_SECRET}\nconsumer_key = {DEMO_CONSUMER_KEY}\n"
        )

    def write_ovh_conf(self, path):
        """Write ovh_conf_text() to a file that only its owner reads, as a secret should be."""
        Path(path).write_text(self.ovh_conf_text(), encoding="utf-8")
        os.chmod(path, 0o600)

    @property
    def requests(self):
        """Every request received: method, path (after /1.0), query, body, status, time (received), duration."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def log_request(self, method, path, query, raw, generation):
        """Record a request as it arrives, unless a reset came since `generation`; the handler fills in the rest."""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        entry = {
            "method": method,
            "path": path,
            "query": query,
            "body": body,
            "status": None,
            "time": time.time(),
            "duration": None,
        }
        with self._lock:
            if generation == self.generation:
                self._log.append(entry)
        return entry

    def write_log_line(self, entry):
        """Append an answered request to log_path, if set, for tools outside this process."""
        if self.log_path:
            with self._lock, open(self.log_path, "a", encoding="utf-8") as file:
                file.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def new_id(self, kind):
        """Allocate the next id of a kind from the account's counters."""
        with self._lock:
            self.state["lastIds"][kind] = self.state["lastIds"].get(kind, 0) + 1
            return self.state["lastIds"][kind]

    # --- API dispatch ---

    def answer(self, method, path, query, raw, headers, url, generation):
        """Answer one API request from the schema and the state: (status, JSON payload).

        A request that arrived before the last reset (`generation`) changes nothing: (None, None).
        """
        try:
            found = self.schema.match(path)
            if found is None:
                raise ApiError(404, "Got an invalid (or empty) URL")
            template, operations, raw_params = found
            operation = operations.get(method)
            if operation is None:
                raise ApiError(405, f"Method {method} is not allowed on {template}")
            with self._lock:
                if generation != self.generation:
                    return None, None
                call = Call(method, path, headers, {}, {}, None, None, None)
                if not operation.get("noAuthentication"):
                    call.application, call.credential = self.authenticate(method, path, url, headers, raw)
                elif template != "/auth/time":
                    call.application = self.application(headers)  # unsigned calls still name their application
                implementation = ROUTES.get((method, template))
                if implementation is None:
                    raise ApiError(501, f"{method} {template} is not simulated")
                call.params = self.schema.path_parameters(operation, raw_params)
                call.query = self.schema.query_parameters(operation, query)
                call.body = self.schema.body(operation, method, raw)
                result = implementation(self, call)
                if method != "GET":
                    self.save()
                return 200, self.schema.render(operation["responseType"], result)
        except ApiError as error:
            return error.status, error.body()

    # --- Faults ---

    def fail(self, method, path, kind="500", nth=1, times=1, after=False):
        """Fail `times` requests from the nth one matching method and path (`*` matches any rest)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"Unknown fault kind {kind!r}; use one of {FAULT_KINDS}")
        if nth < 1 or times < 1:
            raise ValueError("nth and times start at 1")
        with self._lock:
            self._faults.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "kind": kind,
                    "first": nth,
                    "last": nth + times - 1,
                    "seen": 0,
                    "after": after,
                }
            )

    def clear_faults(self):
        """Forget every fault not played yet."""
        with self._lock:
            self._faults = []

    def take_fault(self, method, path):
        """Count a request against the faults; return the fault to play on it, if any."""
        chosen = None
        with self._lock:
            for fault in list(self._faults):
                if fault["method"] == method and rule_matches(fault["path"], path):
                    fault["seen"] += 1
                    if chosen is None and fault["first"] <= fault["seen"] <= fault["last"]:
                        chosen = fault
                    if fault["seen"] >= fault["last"]:
                        self._faults.remove(fault)
        return chosen

    # --- Waves: which request waited for which, whatever the machine's load ---

    def in_waves(self, step, expected, timeout=5):
        """Run step() holding every API request until its wave is released; return step's result and the waves.

        A wave is released once every request `expected` of it (sets of wave_name's) is held:
        none of them waited for another of the wave, however late the machine sent it. A request
        that waited for one of the wave's answers can only come in a later wave. A wave that never
        comes whole (a request waits for a sibling's answer) is released after `timeout` seconds.
        Requests after the last expected wave form one more. The waves are returned as released,
        to compare with `expected`; each log entry keeps its wave's number ("wave", from 1).
        """
        from concurrent.futures import ThreadPoolExecutor

        with self._lock:
            self._held = []
        seen = []
        with ThreadPoolExecutor(max_workers=1) as pool:
            running = pool.submit(step)
            for wanted in expected:
                seen.append(self.release_wave(set(wanted), timeout, running, len(seen) + 1))
            extra = set()
            while not running.done():  # Whatever comes after the last expected wave is let through, and named.
                extra |= self.release_wave(None, 0.05, running, len(seen) + 1)
            with self._lock:
                extra |= self.release_wave(set(), 0, running, len(seen) + 1)
                self._held = None
            result = running.result()
        return result, seen + ([extra] if extra else [])

    def release_wave(self, wanted, timeout, running, number):
        """Wait until the held requests include `wanted` (or the step ended, or `timeout`), release them, name them.

        `wanted` None: wait for the step's end or the timeout only.
        """
        with self._turns:
            self._turns.wait_for(
                lambda: running.done()
                or (wanted is not None and wanted <= {wave_name(e) for e, _ in self._held}),
                timeout,
            )
            released, self._held = self._held, []
        for entry, release in released:
            entry["wave"] = number
            release.set()
        return {wave_name(entry) for entry, _ in released}

    def wait_turn(self, entry):
        """Hold an API request until in_waves releases its wave (at once when no in_waves runs)."""
        with self._turns:
            if self._held is None:
                return
            release = threading.Event()
            self._held.append((entry, release))
            self._turns.notify_all()
        release.wait(HANG_SECONDS)

    def release_held(self):
        """Let every held request go (a reset, the end of in_waves)."""
        with self._lock:
            for _, release in self._held or []:
                release.set()
            if self._held is not None:
                self._held = []
