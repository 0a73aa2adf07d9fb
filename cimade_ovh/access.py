"""Access to a group's page: its code, the signed cookies and form tokens, and the count of wrong codes.

hashlib, hmac, json and ipaddress are imported by the functions that use them: the list of groups needs none.
"""

import base64
import configparser
import contextlib
import errno
import io
import os
import re
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from . import files
from .config import ConfigError, read_ini
from .files import locked_file, own_like_data, replace_file, replace_keeping
from .log import log

CODE_MIN_LENGTH = 6
SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # About 50 ms and 16 MB a try: slow for guessing, quick for a person.
WRONG_CODE_DELAY = 1.0  # Seconds every wrong code waits before its answer.
MAX_WRONG_CODES = 5  # Wrong codes allowed per group and address (IPv6: per /56) within LOCKOUT…
LOCKOUT = timedelta(minutes=15)  # …after which that address waits this long.
# A slower limit for the group, from all addresses: one address alone (20 an hour at most) never reaches it,
# and the whole internet cannot try more than 30 codes an hour (720 a day) on a group.
MAX_GROUP_WRONG_CODES = 30
GROUP_LOCKOUT = timedelta(hours=1)


def hash_code(code):
    """A salted scrypt hash of an access code, as stored in access-codes.ini."""
    import hashlib
    import secrets

    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(code.encode("utf-8"), salt=salt, **SCRYPT)
    encode = base64.b64encode
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${encode(salt).decode()}${encode(digest).decode()}"


def check_code(code, stored):
    """True when `code` matches a hash made by hash_code."""
    import hashlib
    import hmac

    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        salt, digest = base64.b64decode(salt), base64.b64decode(digest)
        if scheme != "scrypt":
            return False
        tried = hashlib.scrypt(code.encode("utf-8"), salt=salt, n=int(n), r=int(r), p=int(p))
    except ValueError:
        return False
    return hmac.compare_digest(tried, digest)


def read_access_codes(path):
    """The hashed access codes by group slug, from access-codes.ini (none when the file is absent)."""
    if not path.exists():
        return {}
    parser = read_ini(path)
    codes = {}
    for section in parser.sections():
        stored = parser.get(section, "code", fallback="").strip()
        if stored:
            if not stored.startswith("scrypt$"):
                raise ConfigError(f"{path}, section [{section}], clé « code » : pas une empreinte faite par --set-code")
            codes[section.lower()] = stored
    return codes


def write_access_code(path, slug, stored, share=None):
    """Set (or with None remove) a group's hashed code in access-codes.ini, keeping the file's owner and mode.

    A new file is first given to `share` (a function of its path), before the page can see it.
    """
    parser = read_ini(path) if path.exists() else configparser.ConfigParser(interpolation=None)
    if stored is None:
        parser.remove_section(slug)
    else:
        if not parser.has_section(slug):
            parser.add_section(slug)
        parser[slug]["code"] = stored
    text = io.StringIO()
    text.write("# Codes d'accès des groupes (empreintes), écrits par : index.py --set-code <groupe>\n\n")
    parser.write(text)
    replace_keeping(path, text.getvalue(), 0o640, share)


def coded_groups_path(settings):
    """The file that remembers which groups have a code: losing access-codes.ini must not open their pages."""
    return settings.data_dir / "access-codes.groups"


def read_coded_groups(settings):
    """The slugs of the groups known to have an access code; OSError when the file cannot be read (fail closed)."""
    path = coded_groups_path(settings)
    try:
        return set(path.read_text(encoding="utf-8").split())
    except FileNotFoundError:
        return set()
    except UnicodeDecodeError as error:  # Not written by the page: which groups had a code is unknown.
        raise OSError(errno.EILSEQ, f"pas en UTF-8 ({error.reason})", str(path)) from None


def write_coded_groups(settings, slugs):
    """Remember the groups that have an access code, in a file owned like the data folder (the page may add to it)."""
    path = coded_groups_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{slug}\n" for slug in sorted(slugs))
    replace_file(path, text, 0o640, lambda draft: own_like_data(settings, draft, 0o640))


SECRET_KEY_BYTES = 32  # A shorter key (an empty file, say) is replaced.


def secret_key(settings):
    """The key that signs cookies and form tokens: made on first use, or when too short; readable only by its owner."""
    path = settings.data_dir / "secret.key"
    with contextlib.suppress(FileNotFoundError):
        key = path.read_bytes()
        if len(key) >= SECRET_KEY_BYTES:
            return key
        with locked_file(settings.data_dir / "locks" / "secret.key.lock") as held:  # One process replaces it.
            if held is not None and len(path.read_bytes()) < SECRET_KEY_BYTES:
                log.error("%s holds %d bytes, fewer than %d: replaced by a new key, everyone must enter again",
                          path, len(key), SECRET_KEY_BYTES)  # fmt: skip
                path.unlink()
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # When two processes race, the first key wins for both.
        replace_file(path, secrets.token_bytes(SECRET_KEY_BYTES), 0o600, link=True)
    key = path.read_bytes()
    if len(key) < SECRET_KEY_BYTES:  # Another process holds the lock to replace it: never sign with it.
        raise OSError(f"{path} : clé trop courte ({len(key)} octets)")
    return key


def sign(key, text):
    """A short HMAC of `text`, safe in a cookie or a form."""
    import hmac

    digest = hmac.digest(key, text.encode("utf-8"), "sha256")
    return base64.urlsafe_b64encode(digest[:24]).decode()


def access_cookie_value(key, group, stored, expires):
    """The signed cookie that lets a browser in a group until `expires` (a Unix time), while the code stays."""
    return f"{expires}.{sign(key, f'access:{group.slug}:{expires}:{stored}')}"


def has_access(key, group, stored, value, clock):
    """True when `value` is a valid, unexpired access cookie for the group's current code."""
    expires, _, _ = value.partition(".")
    if not re.fullmatch(r"[0-9]{1,12}", expires) or int(expires) < clock:
        return False
    return same_text(value, access_cookie_value(key, group, stored, int(expires)))


def same_text(given, expected):
    """Compare a secret in constant time; any text may be given (compare_digest refuses non-ASCII str)."""
    import hmac

    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def form_token(key, csrf_cookie, access_cookie=""):
    """The token every form carries: tied to the browser's csrf cookie and, on a group with a code, its access cookie.

    A sibling subdomain can set a csrf cookie of its choice and read its token on the code page,
    but it can neither read nor set the access cookie: that token is worthless behind the code.
    """
    return sign(key, f"csrf:{csrf_cookie}:{access_cookie}")


class WrongCodes:
    """Wrong access codes of a group, per client address and for the whole group, in files shared by every process."""

    def __init__(self, settings, group, client):
        import hashlib

        self.folder = settings.data_dir / "attempts"
        who = hashlib.sha256(client_network(client).encode("utf-8")).hexdigest()[:16]
        self.path = self.folder / f"{group.slug}.{who}"
        self.group_path = self.folder / group.slug
        self.whole_group = False  # Whether the group's limit, not the address's, was reached.

    def claim(self, clock):
        """Count one more try before checking it; return 0, or the seconds to wait (see whole_group).

        Counting first, under the locks, means that tries sent all at once are counted all the
        same; a right code then takes its try back.
        """
        self.sweep(clock)
        with locked_file(self.path) as mine, locked_file(self.group_path) as everyone:
            if mine is None or everyone is None:
                return int(files.LOCK_TIMEOUT)
            own, wait = self.count(mine, clock, MAX_WRONG_CODES, LOCKOUT)
            if wait:
                return wait
            group, wait = self.count(everyone, clock, MAX_GROUP_WRONG_CODES, GROUP_LOCKOUT)
            if wait:
                self.whole_group = True
                return wait
            write_times(mine, own + [clock])
            write_times(everyone, group + [clock])
        return 0

    def clear(self, clock):
        """After a right code: forget the address's wrong codes, and take its try back from the group's count."""
        with locked_file(self.path) as mine, locked_file(self.group_path) as everyone:
            if mine is not None:
                write_times(mine, [])
            if everyone is not None:
                group, _ = self.count(everyone, clock, MAX_GROUP_WRONG_CODES, GROUP_LOCKOUT)
                if group is not None:
                    write_times(everyone, [t for t in group if t != clock])

    def count(self, file, clock, limit, window):
        """The times of the tries a file counts within `window`, and the seconds to wait (0: one more is allowed).

        An unreadable count is locked until its last change is older than `window`: never opened.
        """
        import json

        file.seek(0)
        try:
            times = json.loads(file.read() or "[]")
            if not isinstance(times, list):
                raise ValueError("not a list")
        except ValueError as error:
            wait = int(os.stat(file.fileno()).st_mtime + window.total_seconds() - clock) + 1
            log.error("%s unreadable (%s): locked for %s s", file.name, error, max(wait, 0))
            return ([], 0) if wait <= 0 else (None, wait)
        recent = [t for t in times if isinstance(t, (int, float)) and clock - t < window.total_seconds()]
        if len(recent) >= limit:
            return recent, max(1, int(recent[-limit] + window.total_seconds() - clock) + 1)
        return recent, 0

    def sweep(self, clock):
        """Remove the counts nobody added to for longer than the longest window (checked again under their lock)."""
        stale = GROUP_LOCKOUT.total_seconds()
        with contextlib.suppress(FileNotFoundError):
            for path in self.folder.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if clock - path.stat().st_mtime > stale:
                        with locked_file(path, blocking=False) as held:
                            if held is not None and clock - os.stat(held.fileno()).st_mtime > stale:
                                path.unlink()


def write_times(file, times):
    """Replace the times a count file holds, under its lock, whole or not at all: a crash leaves the former count.

    The new file takes the place of the locked one: those waiting for the lock open it afresh (locked_file).
    """
    import json

    replace_file(Path(file.name), json.dumps(times), 0o640)


def client_network(address):
    """Whom wrong codes are counted for: an IPv4 address, or an IPv6 address's /56.

    A subscriber gets a /56 or a /60 from French providers: counted by /64, one home could use 16 to 256
    networks, and so reach the group's own limit alone.
    """
    import ipaddress

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/56", strict=False)) if ip.version == 6 else str(ip)


class Visit:
    """A request to a group's page or action, with what access and forms need: the key, the code, the cookies."""

    def __init__(self, request, settings, group, key, stored_code):
        self.request = request
        self.settings = settings
        self.group = group
        self.key = key
        self.stored_code = stored_code
        self.group_url = f"{request.base}/{group.slug}"
        self.new_cookies = []
        self.csrf = self.read_cookie("csrf")
        if not re.fullmatch(r"[A-Za-z0-9_-]{24}", self.csrf):
            import secrets

            self.csrf = secrets.token_urlsafe(18)
            self.new_cookies.append(self.cookie("csrf", self.csrf, path=f"{request.base}/"))

    def cookie_name(self, name):
        """A cookie's name; under HTTPS, with the __Host- prefix (no other host can set it), and the group's slug.

        A __Host- cookie has the path /: the group's slug, but in csrf (one for the site), keeps groups apart.
        """
        if not self.request.https:
            return name
        return "__Host-csrf" if name == "csrf" else f"__Host-{name}-{self.group.slug}"

    def read_cookie(self, name):
        """The value of one of our cookies, or ""."""
        return self.request.cookie(self.cookie_name(name))

    def cookie(self, name, value, path=None, max_age=None):
        """A Set-Cookie value: HttpOnly, SameSite=Lax, the group's path by default; __Host- and Secure in HTTPS.

        Lax, not Strict: a link to the page opened from a messaging app (another site) keeps the
        volunteer in. Cross-site forms are refused all the same (from_elsewhere, form_token).
        """
        path = "/" if self.request.https else path or self.group_url
        attributes = [f"{self.cookie_name(name)}={quote(value)}", f"Path={path}"]
        if max_age is not None:
            attributes.append(f"Max-Age={max_age}")
        attributes += ["HttpOnly", "SameSite=Lax"] + (["Secure"] if self.request.https else [])
        return "; ".join(attributes)

    def token(self):
        """The form token for this browser: bound to its access cookie too, once it is let in a group with a code."""
        access = self.read_cookie("access") if self.stored_code and self.allowed() else ""
        return form_token(self.key, self.csrf, access)

    def token_matches(self, form):
        """True when a posted form carries the token of the browser's csrf cookie."""
        return not self.new_cookies and same_text(form.get("csrf", ""), self.token())

    def allowed(self):
        """True when the group has no access code, or the browser holds a valid access cookie."""
        if self.stored_code is None:
            return True
        return has_access(self.key, self.group, self.stored_code, self.read_cookie("access"), int(time.time()))

    def mark(self, number):
        """The fingerprint of a volunteer's number that their "Retirer" button sends: only the page can make it."""
        return sign(self.key, f"volunteer:{self.group.slug}:{number}")

    def respond(self, response):
        """Add the cookies this visit made (a new csrf cookie) to a response."""
        response.headers += [("Set-Cookie", cookie) for cookie in self.new_cookies]
        return response
