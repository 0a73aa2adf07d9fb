"""Files: system errors in French, atomic writes, locks across processes, values read again when their file changes.

Every process of the page (FastCGI or CGI), stats.py and the commands IT runs as root
share data/: what they write there is whole or absent, never half, and its mode does
not depend on the umask.
"""

import contextlib
import errno
import fcntl
import os
import threading
import time

from .log import log

OS_ERRORS = {
    errno.ENOENT: "le fichier ou son dossier n'existe pas",
    errno.EACCES: "droits insuffisants",
    errno.EPERM: "opération interdite",
    errno.EISDIR: "c'est un dossier, pas un fichier",
    errno.ENOTDIR: "un élément du chemin n'est pas un dossier",
    errno.ENOSPC: "disque plein",
    errno.EROFS: "disque en lecture seule",
    errno.EADDRINUSE: "adresse déjà prise par un autre programme",
    errno.EADDRNOTAVAIL: "cette adresse n'est pas l'une de ce serveur",
}


def os_error_text(error):
    """Why a system call failed, in French for the common causes (else the system's words)."""
    return OS_ERRORS.get(error.errno) or error.strerror or str(error)


# --- Writing ------------------------------------------------------------------


def replace_file(path, data, mode, own=None, link=False):
    """Put `data` (text or bytes) in `path` whole or not at all: readers see the old file or the new one, never half.

    The draft, beside `path`, gets `mode` whatever the umask and `own` (a function of its path, to
    give it an owner); it is on disk before it takes the place of `path`. With link=True it never
    replaces a file already there: FileExistsError.
    """
    draft = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        with open(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as file:
            os.fchmod(file.fileno(), mode)
            if own:
                own(draft)
            file.write(data.encode("utf-8") if isinstance(data, str) else data)
            file.flush()
            os.fsync(file.fileno())
        (os.link if link else os.replace)(draft, path)
    finally:
        draft.unlink(missing_ok=True)


def replace_keeping(path, data, mode, own=None, kept=0o777):
    """replace_file for a file IT owns (ovh.conf, access-codes.ini): an existing one keeps its owner and group, and
    the bits `kept` of its mode; a new one gets `mode` and `own`."""
    try:
        info = path.stat()
    except FileNotFoundError:
        replace_file(path, data, mode, own)
        return
    replace_file(path, data, info.st_mode & kept, keep_owner(info))


def keep_owner(info):
    """An `own` for replace_file: the owner and group of `info` (a stat result), where we may give them."""

    def own(draft):
        with contextlib.suppress(PermissionError):
            os.chown(draft, info.st_uid, info.st_gid)

    return own


def own_like_data(settings, target, mode):
    """Give a file or folder made in data/ a fixed mode, whatever the umask, and data/'s owner when root made it.

    `target` is a path or an open file descriptor.
    """
    os.chmod(target, mode)
    if os.geteuid() == 0:
        info = settings.data_dir.stat()
        os.chown(target, info.st_uid, info.st_gid)


# --- Files of data/ -----------------------------------------------------------


def data_folder(settings, name):
    """A folder of data/ (shared, last-action, voicemail…), made if needed with data/'s owner, as every file in it."""
    folder = settings.data_dir / name
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        own_like_data(settings, folder, 0o750)
    return folder


def write_data_file(settings, path, text):
    """Write a file of a data_folder for every process of the page, whole or not at all, owned like data/."""
    replace_file(path, text, 0o640, lambda draft: own_like_data(settings, draft, 0o640))


def write_record(settings, path, record):
    """Write a JSON object to a file of a data_folder (write_data_file)."""
    import json  # Here: a CGI request for / does not need it.

    write_data_file(settings, path, json.dumps(record, ensure_ascii=False, sort_keys=True))


def read_record(path):
    """A JSON object of data/, or {} when there is none, it cannot be read or it is not an object (logged)."""
    import json

    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        log.error("cannot read %s: %s", path, error)
        return {}
    if not isinstance(record, dict):
        log.error("%s is not a record of the page (%s): taken as none", path, type(record).__name__)
        return {}
    return record


# --- Locks --------------------------------------------------------------------

LOCK_TIMEOUT = 10  # Seconds an action waits for another one on the same group, before its ACTION_SECONDS.


@contextlib.contextmanager
def locked_file(path, blocking=True, poll=0.05, own=None, worth_waiting=None):
    """Hold an exclusive lock on `path` (made if needed), across processes; yield the open file or None.

    None: the lock was held by another for LOCK_TIMEOUT seconds (at once, when not `blocking`, or as
    soon as `worth_waiting`, given the open file at each try, says False: what its holder does is no use).
    What is written to the file is on disk before the lock is released. A file removed
    while waiting for its lock (an old count cleaned up) is opened again. `own` is given
    the descriptor of a file this call creates. `poll`: seconds between two tries.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        with open(path, "r+", encoding="utf-8", opener=lambda name, flags: open_lock(name, own)) as file:
            while True:
                try:
                    fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not blocking or time.monotonic() > deadline or worth_waiting and not worth_waiting(file):
                        yield None
                        return
                    time.sleep(poll)
            try:
                if os.stat(file.fileno()).st_ino != os.stat(path).st_ino:
                    continue  # Removed, or replaced, while we waited.
            except FileNotFoundError:
                continue
            try:
                yield file
            finally:
                file.flush()
                os.fsync(file.fileno())
                fcntl.flock(file, fcntl.LOCK_UN)
            return


def open_lock(path, own=None):
    """Open a lock file for reading and writing, without appending; `own` is given its descriptor if this creates it."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o640)
    except FileExistsError:
        return os.open(path, os.O_RDWR)
    if own:
        own(descriptor)
    return descriptor


def group_lock(settings, group, blocking=True):
    """The lock that lets one action at a time change a group's line, in every process."""
    return locked_file(settings.data_dir / "locks" / f"{group.slug}.lock", blocking)


# --- Values read from files -----------------------------------------------------


def file_identity(path):
    """What changes when a file is replaced, written or given other rights; None when it is not there."""
    try:
        info = os.stat(path)
    except OSError:  # Absent, or in a folder this process may not enter: make() says which.
        return None
    return (str(path), info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class Reloaded:
    """A value made from a file, kept by a persistent process and made again whenever the file changes.

    make(path, *args) builds the value; it runs again when the file's identity differs from the one it
    was made for (written, replaced, removed, its rights changed), and never otherwise.
    """

    def __init__(self, make):
        self.make = make
        self.value = None
        self.identity = None
        self.made = False
        self.lock = threading.Lock()

    def get(self, path, *args):
        """The value for the file at `path` as it is now; `args` go to make()."""
        identity = file_identity(path)
        with self.lock:
            if not self.made or identity != self.identity:
                self.value = self.make(path, *args)
                self.identity, self.made = identity, True
            return self.value

    def forget(self):
        """Make the value again on the next get()."""
        with self.lock:
            self.made = False
