"""What the page's processes share through data/: each group's latest OVH read, OVH's clock, the key's expiry.

Under Apache, the page runs in several processes (FastCGI), or one per request (CGI).
Files of data/shared/ let them ask OVH once for all: each group's latest read
(<group>.json, and <group>.lock, held by the process reading OVH for the others),
OVH's clock offset (clock.json) and when the key expires (credential.json).
data/last-action/<group> is the group's stamp: every action changes it. The lines, dataclasses,
json and hashlib are imported where a snapshot, a record or the key is read: a CGI process for / needs none.
"""

import contextlib
import os
import threading
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from .clock import parse_ovh_datetime
from .files import data_folder, locked_file, own_like_data, read_record, write_data_file, write_record
from .log import log
from .ovhapi import (
    CURRENT_CREDENTIAL,
    OVH_FAILURES,
    OvhFailure,
    as_failure,
    connect_ovh,
    read_ovh_conf,
)

SHARE_SECONDS = 1.5  # How long the pages of a group may reuse one OVH read, if no action came since.
CLOCK_SECONDS = 300  # How long the processes trust OVH's clock offset that one of them asked OVH for.
CREDENTIAL_CACHE_SECONDS = 3600  # How long they trust the key's expiry that one of them read.
EXPIRY_NOTICE = timedelta(days=7)  # IT is told this long before the key expires (by mail, and by --check).


# --- Files of data/shared/ ------------------------------------------------------


def read_shared(settings, name):
    """A record of data/shared/: a JSON object, or {} when there is none, it cannot be read or it is not an object."""
    return read_record(settings.data_dir / "shared" / name)


NUMBER = (int, float)


def has_shape(record, shape):
    """Whether `record` is a JSON object with the keys of `shape`, each of its type(s).

    A record of another shape (cut, edited, or written by another version) is taken as
    none: the page then asks OVH, as if the file were not there.
    """
    return isinstance(record, dict) and all(isinstance(record.get(key), kinds) for key, kinds in shape.items())


def snapshot_in(record, kind):
    """The snapshot of a `kind` line that a group's record holds, or None when it holds none of the right shape."""
    import dataclasses

    from .lines import SNAPSHOT_KINDS

    snapshot_class = SNAPSHOT_KINDS[kind]
    shape = {field.name: field.type for field in dataclasses.fields(snapshot_class)}
    data = record.get("snapshot")
    if not has_shape(record, {"began": NUMBER}) or not has_shape(data, shape) or set(data) != set(shape):
        return None
    return snapshot_class(**data)


def as_record(snap):
    """A line's snapshot as a JSON object, for the other processes."""
    import dataclasses

    return dataclasses.asdict(snap)


def failure_in(record):
    """The failure of OVH that a group's record holds, or None when it holds none of the right shape."""
    data = record.get("failure")
    if not has_shape(record, {"ended": NUMBER}) or not has_shape(data, {"reason": str, "detail": str}):
        return None
    if data["reason"] not in OVH_FAILURES or not isinstance(data.get("explanation"), (str, type(None))):
        return None
    return OvhFailure(data["reason"], data["detail"], data.get("explanation"))


def write_shared(settings, name, record):
    """Write a record of data/shared/ for every process of the page, whole or not at all."""
    try:
        write_record(settings, data_folder(settings, "shared") / name, record)
    except OSError as error:
        log.error("cannot write %s in %s: %s", name, settings.data_dir / "shared", error)


# --- The group's stamp ------------------------------------------------------------


def stamp_path(settings, group):
    """The file whose content an action on the group changes, seen by every process of the page."""
    return settings.data_dir / "last-action" / group.slug


def read_stamp(settings, group):
    """The group's stamp: "" before any action, None when it cannot be read (then no read is shared)."""
    try:
        return stamp_path(settings, group).read_text(encoding="ascii")
    except FileNotFoundError:
        return ""
    except OSError as error:
        log.error("cannot read %s: %s", stamp_path(settings, group), error)
        return None


def change_stamp(settings, group):
    """Give the group a new stamp, so that no process reuses a read that began before; run by root, still data/'s."""
    path = stamp_path(settings, group)
    try:
        write_data_file(settings, data_folder(settings, path.parent.name) / path.name, os.urandom(8).hex())
    except OSError as error:
        log.error("cannot write %s: %s; other processes may show the state before the action", path, error)


# --- Shared reads -------------------------------------------------------------------


class Read:
    """One OVH read of a group's line, for the pages of this process that arrive while it runs or soon after."""

    def __init__(self, stamp):
        self.stamp = stamp  # The group's stamp when the read began.
        self.started = time.monotonic()
        from concurrent.futures import Future

        self.result = Future()

    def run(self, read):
        """Do the read; the pages waiting for it get its result or its exception."""
        try:
            self.result.set_result(read())
        except BaseException as error:
            self.result.set_exception(error)

    def reusable(self, stamp, seconds):
        """Whether a page may use this read: no action since it began, and it still runs or succeeded lately."""
        if stamp is None or stamp != self.stamp:
            return False
        if not self.result.done():
            return True
        return self.result.exception() is None and time.monotonic() - self.started <= seconds


class SharedRead:
    """The groups' lines as OVH last showed them, shared by the pages of every process for `seconds`.

    The protocol:
    - get(): a page's read of a group. Pages of one process arriving together wait for one
      Read, and reuse it for `seconds` if it succeeded. Across processes, one process at a
      time reads OVH, under data/shared/<group>.lock, and writes its snapshot (or failure) to
      data/shared/<group>.json; the others, waiting for the lock, take that snapshot if it began
      less than `seconds` ago, or that failure if it ended after they arrived.
    - publish(): after an action, the snapshot it read back is what the next pages show, in every process.
    - changing(): around an action; afterwards, no process reuses a read that began before its end:
      the group's stamp changes, and a read is only reused under the stamp it began with. Nor does it
      wait for one: the process reading writes its stamp in the lock file, and a page under another
      stamp reads OVH at once, after taking what the action published (data/shared/<group>.json).
    - memory(): what a line remembers between requests (queue id, SIP line, voicemail boxes), at first what the
      latest shared read saw.
    - forget(): a new lines.ini or ovh.conf: this process drops its reads and memories.
    A stamp that cannot be read (None) shares nothing: every page reads OVH.
    """

    def __init__(self, seconds=SHARE_SECONDS):
        self.seconds = seconds
        self.reads = {}  # By group: its latest Read in this process.
        self.memories = {}  # By group: what its line remembers between requests.
        self.lock = threading.Lock()

    def get(self, settings, group, read):
        """read() the group's line, or share a read of it that began after the group's last action."""
        stamp = read_stamp(settings, group)
        with self.lock:
            shared = self.reads.get(group.slug)
            mine = shared is None or not shared.reusable(stamp, self.seconds)
            if mine:
                shared = self.reads[group.slug] = Read(stamp)
        if mine:
            shared.run(lambda: self.read_across(settings, group, stamp, read))
        return shared.result.result()

    def read_across(self, settings, group, stamp, read):
        """read(), or the read another process made since the group's last action (data/shared/<group>.json).

        One process at a time reads: the others wait for it, then take its result; a failure
        only for those who waited for it, as within a process.
        """
        if stamp is None or self.seconds <= 0:
            return read()
        arrived = time.time()
        published = self.latest(settings, group, stamp, arrived)  # An action's, for instance: no need to wait.
        if published:
            return published
        with self.read_lock(settings, group, stamp):
            shared = self.latest(settings, group, stamp, arrived)
            if shared:
                return shared
            began = time.time()
            try:
                snap = read()
            except Exception as error:
                failure = as_failure(error)
                record = {"reason": failure.reason, "detail": failure.detail, "explanation": failure.explanation}
                self.write(settings, group, stamp, began, failure=record)
                raise
            self.write(settings, group, stamp, began, snapshot=as_record(snap))
            return snap

    def latest(self, settings, group, stamp, arrived):
        """The snapshot another process read (or an action published) under `stamp` lately; its failure, raised,
        if it ended after `arrived`; else None."""
        latest = read_shared(settings, f"{group.slug}.json")
        if latest.get("stamp") == stamp and latest.get("kind") == group.kind:
            snap, failure = snapshot_in(latest, group.kind), failure_in(latest)
            if snap and 0 <= time.time() - latest["began"] <= self.seconds:
                return snap
            if failure and latest["ended"] >= arrived:
                raise failure
        return None

    @contextlib.contextmanager
    def read_lock(self, settings, group, stamp):
        """Let one process at a time read the group from OVH for the others; after LOCK_TIMEOUT, go on without.

        The process reading writes its stamp in the lock file: a page under another stamp (an action
        came between them) would have no use for its read, and goes on at once without the lock.
        """
        with contextlib.ExitStack() as held:
            try:
                path = data_folder(settings, "shared") / f"{group.slug}.lock"
                own = lambda descriptor: own_like_data(settings, descriptor, 0o640)  # noqa: E731
                same_read = lambda file: reading_stamp(file) in (stamp, None)  # noqa: E731
                # Waiting pages take the read at once (poll).
                file = held.enter_context(locked_file(path, poll=0.005, own=own, worth_waiting=same_read))
                if file is not None:
                    file.seek(0)
                    file.truncate()
                    file.write(READING + stamp)
                    file.flush()
            except OSError as error:
                log.error("cannot open the lock of %s's shared read: %s", group.slug, error)
            yield

    def write(self, settings, group, stamp, began, **result):
        """Write the group's latest read (its snapshot, or its failure) for the other processes."""
        record = {"stamp": stamp, "kind": group.kind, "began": began, "ended": time.time(), **result}
        write_shared(settings, f"{group.slug}.json", record)

    def publish(self, settings, group, snap):
        """After an action: the pages that follow show the snapshot it read back, in every process."""
        stamp, began = read_stamp(settings, group), time.time()
        shared = Read(stamp)
        shared.result.set_result(snap)
        with self.lock:
            self.reads[group.slug] = shared
        if stamp is not None and self.seconds > 0:
            self.write(settings, group, stamp, began, snapshot=as_record(snap))

    @contextlib.contextmanager
    def changing(self, settings, group):
        """Around an action: afterwards, no process reuses a read of the group that began before its end."""
        try:
            yield
        finally:
            with self.lock:
                self.reads.pop(group.slug, None)
            change_stamp(settings, group)

    def memory(self, settings, group):
        """What the group's line remembers in this process (queue id, SIP line, boxes); at first, the latest read's."""
        with self.lock:
            memory = self.memories.setdefault(group.slug, {})
            if not memory:
                latest = read_shared(settings, f"{group.slug}.json").get("snapshot")
                kinds = {"queue_id": int, "sip_line": str}
                if isinstance(latest, dict):
                    memory.update((k, latest[k]) for k, kind in kinds.items() if isinstance(latest.get(k), kind))
                    voicemail = latest.get("voicemail")
                    boxes = voicemail.get("boxes") if isinstance(voicemail, dict) else None
                    if isinstance(boxes, list) and all(isinstance(box, str) for box in boxes):
                        memory["boxes"] = boxes
            return memory

    def forget(self):
        """Drop this process's reads and memories: lines.ini or ovh.conf changed."""
        with self.lock:
            self.reads, self.memories = {}, {}


READING = "stamp:"  # Before the stamp in a group's lock file: the stamp "" (no action yet) is written too.


def reading_stamp(file):
    """The stamp of the read a group's lock file says is running, or None when it says none (yet)."""
    file.seek(0)
    content = file.read(64)
    return content.removeprefix(READING) if content.startswith(READING) else None


# --- OVH's clock and the key's expiry -------------------------------------------------


def open_client(settings, path):
    """The ovh client for the ovh.conf at `path`, knowing OVH's clock: from data/shared/ if a process asked lately.

    The ovh client asks OVH for its clock before its first signed request; learnt once here,
    before requests run in parallel, it is asked once every CLOCK_SECONDS by all the processes.
    """
    conf = read_ovh_conf(path)
    client = connect_ovh(**conf)
    known = read_shared(settings, "clock.json")
    fresh = has_shape(known, {"endpoint": str, "asked": NUMBER, "offset": int})
    if fresh and known["endpoint"] == conf["endpoint"] and 0 <= time.time() - known["asked"] <= CLOCK_SECONDS:
        client._time_delta = known["offset"]  # What the ovh client would have asked OVH for.
    else:
        record = {"endpoint": conf["endpoint"], "asked": time.time(), "offset": client.time_delta}
        write_shared(settings, "clock.json", record)
    return client


class KeyExpiry:
    """When the consumer key expires (None: never), read from OVH at most once an hour by all the processes."""

    def __init__(self):
        self.fetched, self.expiration = 0.0, None  # When it was read (time.time()), and what.

    def get(self, settings, client, ovh_conf):
        """The key's expiry, as a UTC datetime or None; `ovh_conf` is the path of the key's file."""
        if 0 <= time.time() - self.fetched <= CREDENTIAL_CACHE_SECONDS:
            return self.expiration
        import hashlib

        try:
            key = hashlib.sha256(Path(ovh_conf).read_bytes()).hexdigest()[:16]  # A new key is a new ovh.conf.
        except OSError:
            key = None
        known = read_shared(settings, "credential.json")
        shape = {"key": str, "asked": NUMBER, "expiration": (str, type(None))}
        fresh = has_shape(known, shape) and 0 <= time.time() - known["asked"] <= CREDENTIAL_CACHE_SECONDS
        if fresh and key == known["key"]:
            self.fetched, self.expiration = known["asked"], parse_ovh_datetime(known["expiration"], ZoneInfo("UTC"))
            return self.expiration
        try:
            credential = client.get(CURRENT_CREDENTIAL)
        except Exception as error:
            log.warning("cannot read the current credential: %s", error)
            return None
        self.fetched = time.time()
        self.expiration = parse_ovh_datetime(credential.get("expiration"), ZoneInfo("UTC"))
        record = {"key": key, "asked": time.time(), "expiration": credential.get("expiration")}
        write_shared(settings, "credential.json", record)
        return self.expiration

    def forget(self):
        """Read the expiry again on the next get(): ovh.conf changed."""
        self.fetched, self.expiration = 0.0, None
