"""Bad input, fuzzed with hypothesis against the WSGI application, on the OVH simulator.

Whatever the path, method, headers, query string or form (any Unicode, invalid
UTF-8, huge values, repeated or missing fields, a wrong Content-Length): never
a 500 nor a traceback, always a French page with the status the request calls for.

The application is called directly, with environs built by hand the way real
servers build them (PEP 3333: every string is "bytes as latin-1").
"""

import io
import json
import logging
import os
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import quote, quote_from_bytes, urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from webpage import THURSDAY_AFTERNOON, write_lines_ini

import index
from cimade_ovh import clock
from cimade_ovh.actions import FLASHED
from cimade_ovh.ovhapi import OVH_FAILURES
from cimade_ovh.phones import mask_phone, normalize_phone
from cimade_ovh.simulator import LILLE_NUMBER, LILLE_SIP_LINE, LYON_NUMBER
from cimade_ovh.web import MAX_BODY, MAX_DRAIN, STATUS_TEXTS

# The statuses the page may answer. 403 and 429 come with the access codes and
# CSRF tokens (a POST without a valid token, a wrong code, too many tries).
KNOWN_STATUSES = {200, 303, 400, 403, 404, 405, 409, 413, 429}
GUARDED = {403, 429}
GROUPS = {"lyon": ("start", "remove", "finish"), "lille": ("start", "finish")}  # lines.ini: Lyon takes 2 volunteers.
EXCEPTION_NAMES = re.compile(r"Traceback|\b[A-Z][A-Za-z]*(Error|Exception|Warning)\b|File \"|line \d+, in ")
MARKER_TAG = "<fuzz-tag>"  # Put into inputs: the page must never show it unescaped.
MARKER_ATTRIBUTE = '"fuzz-attr="'


def latin1(data):
    """Bytes as a WSGI native string."""
    return data.decode("latin-1")


def utf8(text):
    return text.encode("utf-8", "surrogatepass")


# --- Calling the application --------------------------------------------------


@dataclass
class Result:
    status: int
    status_line: str
    headers: list
    body: bytes

    def header(self, name):
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(values) <= 1, f"{name} given {len(values)} times: {values}"
        return values[0] if values else None

    @property
    def text(self):
        return self.body.decode("utf-8")


def environ(method="GET", path="/", body=b"", content_length="exact", content_type=None, script="", **extra):
    """A WSGI environ as a real server gives it; content_length "exact", None (absent) or the header's text."""
    env = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": script,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "permanences.example.org",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "192.0.2.7",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if content_type is not None:
        env["CONTENT_TYPE"] = content_type
    if content_length == "exact":
        env["CONTENT_LENGTH"] = str(len(body))
    elif content_length is not None:
        env["CONTENT_LENGTH"] = content_length
    env.update(extra)
    return {key: value for key, value in env.items() if value is not None}


def call(app, env):
    """Run one request the way a WSGI server does; return its Result."""
    calls = []

    def start_response(status, headers, exc_info=None):
        assert exc_info is None, "the application passed exc_info: it failed"
        calls.append((status, headers))

    chunks = app(env, start_response)
    try:
        body = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    assert len(calls) == 1, f"start_response called {len(calls)} times"
    status_line, headers = calls[0]
    assert isinstance(status_line, str) and re.fullmatch(r"\d{3} [^\r\n\x00]+", status_line), status_line
    return Result(int(status_line[:3]), status_line, headers, body)


HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
URL_IN_PAGE = re.compile(r'(?:href|action)="([^"]*)"')


def check_response(result, method, base=""):
    """What every answer must be, whatever the request: a known status, clean headers, a French page."""
    assert result.status in KNOWN_STATUSES, f"{result.status_line}\n{result.body[:3000]!r}"
    assert result.status_line == f"{result.status} {STATUS_TEXTS[result.status]}"
    for name, value in result.headers:
        assert isinstance(name, str) and HEADER_NAME.fullmatch(name), name
        assert isinstance(value, str) and not re.search(r"[\r\n\x00]", value), (name, value)
        value.encode("latin-1")  # A header the server can send.
    content_type = result.header("Content-Type")
    length = result.header("Content-Length")
    assert content_type and length and length.isdigit()
    if method.upper() == "HEAD":
        assert result.body == b""
    else:
        assert int(length) == len(result.body)
    if result.status == 405:
        assert {"GET", "POST"} <= {m.strip() for m in result.header("Allow").split(",")}
    if result.status == 303:
        location = result.header("Location")
        assert location.startswith(f"{base}/") and not location.startswith("//") and "\\" not in location, location
        assert result.body == b""
        return
    if content_type == "image/x-icon":
        assert result.status == 200
        return
    assert content_type == "text/html; charset=utf-8"
    if method.upper() == "HEAD":
        return
    page = result.text  # Strict UTF-8.
    assert page.startswith("<!DOCTYPE html>\n")
    assert '<html lang="fr">' in page and "<title>" in page and page.rstrip().endswith("</html>")
    assert not EXCEPTION_NAMES.search(page), EXCEPTION_NAMES.search(page)
    assert MARKER_TAG not in page and MARKER_ATTRIBUTE not in page
    for url in URL_IN_PAGE.findall(page):
        assert re.fullmatch(r"[A-Za-z0-9/_.~%:?=&;#-]*", url), f"unsafe URL in the page: {url!r}"
        assert url.startswith(f"{base}/"), url


def site_base(script):
    """Where the site is, from SCRIPT_NAME (/permanences/index.py → /permanences), percent-encoded for URLs."""
    base = script.removesuffix("/index.py") if script.endswith("/index.py") else script.rstrip("/")
    return quote(base.encode("latin-1"), safe="/")


@dataclass
class Fuzzed:
    """The application on the simulator, and what it logged during one example."""

    app: index.App
    fake: object
    folder: object
    records: list

    def run(self, env, expected=None):
        """Reset the simulator, run one request, check the answer and the log."""
        self.fake.reset()
        self.records.clear()
        result = call(self.app, env)
        check_response(result, env.get("REQUEST_METHOD", "GET"), site_base(env.get("SCRIPT_NAME", "")))
        problems = [r for r in self.records if r.levelno >= logging.ERROR or r.exc_info]
        assert not problems, [r.getMessage() for r in problems]
        if expected is not None:
            assert result.status in expected, (
                f"{result.status_line}, expected {sorted(expected)}: {result.body[:2000]!r}"
            )
        return result


class Recorder(logging.Handler):
    def __init__(self, records):
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record):
        self.records.append(record)


@pytest.fixture(scope="module")
def fuzzed(fake_ovh_server, tmp_path_factory):
    """One application for the whole module (hypothesis runs many examples in one test), on Thursday afternoon."""
    folder = tmp_path_factory.mktemp("fuzz")
    fake_ovh_server.reset()
    records = []
    recorder = Recorder(records)
    logger = logging.getLogger("cimade-ovh")
    logger.addHandler(recorder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clock, "now", lambda zone: THURSDAY_AFTERNOON.astimezone(zone))
        # No shared reads: each example resets the simulator behind the page's back.
        app = index.App(lines_ini=write_lines_ini(folder, fake_ovh_server), share_seconds=0)
        yield Fuzzed(app, fake_ovh_server, folder, records)
    logger.removeHandler(recorder)
    fake_ovh_server.reset()


# --- Strategies ---------------------------------------------------------------

ROUTES = [
    "/", "", "/lyon", "/LYON/", "/Lyon", "/lyon/", "/lyon/start", "/lyon/finish", "/lyon/remove",
    "/lille", "/LILLE", "/lille/start", "/lille/finish", "/lille/remove", "/favicon.ico", "/FAVICON.ICO",
    "/index.py", "/index.py/lyon", "/settings", "/lyon/start/again", "//lyon", "/lyon//start", "/grenoble",
    "/lyon/START", "/../lines.ini", "/lyon/../lille", "/data/activity.log", "/ovh.conf", "/.git/config",
]  # fmt: skip
SEGMENTS = [
    b"lyon", b"LYON", b"Lyon", b"lille", b"start", b"finish", b"remove", b"favicon.ico", b"index.py", b"settings",
    b"..", b".", b"", b"%2e%2e", b"%2F", b"%00", b"%C3%A9", b"%ZZ", b"%", b"\x00", b" ", b"lyon\x00", b"lyon%00",
    b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xe2\x80\xae", "lyon\u0131".encode(), "\u212aelvin".encode(),
]  # fmt: skip
segment = st.one_of(
    st.sampled_from(SEGMENTS),
    st.text(max_size=12).map(utf8),  # Any Unicode, as UTF-8.
    st.binary(max_size=12),  # Mostly invalid UTF-8.
    st.text(max_size=8).map(lambda s: quote(s, safe="").encode()),  # Percent-encodings the server left.
    st.builds(lambda c, n: c * n, st.sampled_from([b"a", b"\xe9", utf8("é"), b"%41"]), st.integers(200, 6000)),
)
route = st.sampled_from(ROUTES).map(utf8)
path_bytes = st.one_of(
    route,
    st.tuples(route, st.lists(segment, max_size=3)).map(lambda t: b"/".join([t[0].rstrip(b"/"), *t[1]])),
    st.tuples(st.lists(segment, max_size=5), st.booleans()).map(lambda t: b"/" + b"/".join(t[0]) + b"/" * t[1]),
    st.tuples(st.lists(segment, min_size=1, max_size=3), route).map(lambda t: b"/".join(t[0]) + t[1]),
)
path_info = path_bytes.map(latin1)

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "PROPFIND"]
method = st.one_of(
    st.sampled_from(METHODS),
    st.sampled_from(METHODS).map(str.lower),
    st.sampled_from(["", "Get", "pOsT", "G E T", "GET\r\n", "POST ", "\x00", "ÉTÉ", "ß", "GET" * 1000]),
    st.text(st.characters(max_codepoint=0xFF), max_size=12),
)

SCRIPT_NAMES = [
    "",
    "/index.py",
    "/permanences",
    "/permanences/",
    "/permanences/index.py",
    latin1(utf8("/été/index.py")),
]
script_name = st.sampled_from(SCRIPT_NAMES)

latin1_text = st.text(st.characters(max_codepoint=0xFF), max_size=40)
odd_header = st.one_of(
    latin1_text,
    st.binary(max_size=40).map(latin1),
    st.sampled_from(["", " ", "\t", "é", latin1(utf8("été")), "\x00", "a\r\nSet-Cookie: evil=1", MARKER_TAG]),
    st.integers(1000, 20000).map(lambda n: "x" * n),
)
HEADER_KEYS = [
    "HTTP_HOST", "HTTP_USER_AGENT", "HTTP_ACCEPT", "HTTP_ACCEPT_LANGUAGE", "HTTP_ACCEPT_ENCODING", "HTTP_REFERER",
    "HTTP_ORIGIN", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_TRANSFER_ENCODING", "HTTP_EXPECT",
    "HTTP_CONTENT_LENGTH", "HTTP_CONTENT_TYPE", "HTTP_IF_NONE_MATCH", "HTTP_RANGE", "HTTP_AUTHORIZATION",
    "HTTP_X_REQUESTED_WITH", "HTTP_SEC_FETCH_SITE", "HTTP_\xe9", "HTTP_",
]  # fmt: skip
other_headers = st.dictionaries(st.sampled_from(HEADER_KEYS), odd_header, max_size=4)

FLASH_CODES = [*FLASHED, *(f"error-{reason}" for reason in OVH_FAILURES), "error-", "unknown"]
flash_value = st.one_of(
    st.tuples(st.sampled_from(FLASH_CODES), st.sampled_from(["", "0033639980001", "0033", "06 39", MARKER_TAG])).map(
        lambda t: quote(f"{t[0]}:{t[1]}")
    ),
    latin1_text,
    st.sampled_from(["%", "%ZZ", "%FF%FE", "%C3%A9", "start%3A%FF", "start:0033639980001", '"start:"', "=="]),
    st.integers(1000, 10000).map(lambda n: "start%3A" + "0" * n),
)
cookie_part = st.one_of(
    flash_value.map(lambda v: f"flash={v}"),
    st.tuples(latin1_text, latin1_text).map("=".join),
    st.sampled_from(["", ";", "flash", "flash=", " flash = start:", "FLASH=start%3A", "=flash", "\x00"]),
)
cookie = st.lists(cookie_part, max_size=6).flatmap(
    lambda parts: st.sampled_from([";", "; ", ";;;"]).map(lambda s: s.join(parts))
)

remote_addr = st.sampled_from(["192.0.2.7", "", "::1", "2001:db8::7", "unknown\t\nhost", "x" * 2000, None])
url_scheme = st.sampled_from(["http", "https", "gopher", ""])
query_string = st.one_of(
    st.just(""),
    latin1_text,
    st.sampled_from(["number=0639980001", "a=%FF", "flash=start", "=&=&", "%", "x=" + "y" * 20000]),
)

# Form fields: what a volunteer may type or paste, what a forger may send.
NUMBERS = ["06 39 98 00 01", "+33 6 39 98 00 02", "0639980003", "0033639980001", "08 36 65 65 65", "3949", ""]
AGENT_IDS = ["1", "2", "0", "-1", "²", "١", "99999999999999999999999", "9" * 4000, "0x1", " 1", "1.0", ""]
field_name = st.one_of(
    st.sampled_from(["number", "name", "agent", "csrf_token", "token", "code", "NUMBER", "number[]", ""]),
    st.text(max_size=10),
)
HOSTILE = [MARKER_TAG, MARKER_ATTRIBUTE, f"06 39 98 00 01{MARKER_TAG}", f"Inès{MARKER_ATTRIBUTE}", "</textarea>"]
field_value = st.one_of(
    st.sampled_from(NUMBERS + AGENT_IDS + ["Inès", "Jean-Luc", "N’Golo"]),
    st.sampled_from(HOSTILE),
    st.text(max_size=40),
    st.text(st.characters(categories=["Nd", "Cf", "Zs", "Mn", "So"]), max_size=20),
    st.integers(100, 5000).map(lambda n: "6" * n),
)


def encode_field(name, value, how):
    """One name=value pair of a urlencoded body, encoded in one of several right or wrong ways."""
    if how == "utf-8":
        return urlencode({name: value}).encode()
    if how == "raw":  # Not percent-encoded at all: any bytes, & and = included.
        return utf8(name) + b"=" + utf8(value)
    if how == "latin-1":
        return urlencode({name: value}, encoding="latin-1", errors="replace").encode()
    if how == "invalid":  # Percent-encoded bytes that are not UTF-8.
        return quote_from_bytes(utf8(name)).encode() + b"=" + quote_from_bytes(utf8(value) + b"\xff\xc3").encode()
    return utf8(name)  # "bare": a name without "=".


pair = st.tuples(field_name, field_value, st.sampled_from(["utf-8", "utf-8", "raw", "latin-1", "invalid", "bare"]))
urlencoded = st.lists(pair, max_size=6).map(lambda pairs: b"&".join(encode_field(*p) for p in pairs))
form_body = st.one_of(
    urlencoded,
    st.fixed_dictionaries({"number": field_value}, optional={"name": field_value, "agent": field_value}).map(
        lambda d: urlencode(d).encode("utf-8", "surrogatepass")
    ),  # The page's own fields, with any value.
    st.tuples(urlencoded, urlencoded).map(lambda t: t[0] + b"&" + t[1]),  # Repeated fields.
    st.binary(max_size=200),
    st.sampled_from([b"", b"&", b"&&&", b"=", b"number", b"number=", b"%", b"%ZZ=%ZZ", b"number=%FF%FE", b"a=1;b=2"]),
    st.integers(MAX_BODY - 10, MAX_BODY + 100).map(lambda n: (b"number=" + b"6" * n)[:n]),
    st.integers(MAX_BODY + 1, 200_000).map(lambda n: b"number=0639980001&x=" + b"x" * n),
    st.dictionaries(field_name, field_value, max_size=3).map(lambda d: json.dumps(d).encode()),
    st.tuples(field_name, field_value).map(
        lambda t: f'--XyZ\r\nContent-Disposition: form-data; name="{t[0]}"\r\n\r\n{t[1]}\r\n--XyZ--\r\n'.encode(
            "utf-8", "surrogatepass"
        )
    ),
)
CONTENT_TYPES = [
    "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=UTF-8",
    "application/x-www-form-urlencoded; charset=ISO-8859-1", "multipart/form-data; boundary=XyZ",
    "multipart/form-data", "application/json", "text/plain", "", "\xff\xfe/garbage", None,
]  # fmt: skip
content_type = st.sampled_from(CONTENT_TYPES)


@st.composite
def content_length(draw, body):
    """The Content-Length header for `body`: right, absent, wrong, negative, not a number, huge."""
    return draw(
        st.one_of(
            st.just("exact"),
            st.just("exact"),
            st.sampled_from([None, "", " ", "-1", "-99999", "abc", "1e3", "0x10", "²", "1.5", "12abc", "\x00"]),
            st.integers(1, 10_000).map(lambda n: str(len(body) + n)),  # Larger than the body.
            st.integers(0, max(len(body), 0)).map(str),  # Smaller than the body.
            st.sampled_from([str(MAX_BODY), str(MAX_BODY + 1), "99999999999999999999", "9" * 5000]),
        )
    )


@st.composite
def wsgi_requests(draw, methods=method, paths=path_info, bodies=form_body):
    """A whole request: method, path, body, Content-Length, headers, cookies..."""
    body = draw(bodies)
    env = environ(
        method=draw(methods),
        path=draw(paths),
        body=body,
        content_length=draw(content_length(body)),
        content_type=draw(content_type),
        script=draw(script_name),
        QUERY_STRING=draw(query_string),
        HTTP_COOKIE=draw(st.one_of(st.none(), cookie)),
        REMOTE_ADDR=draw(remote_addr),
        **{"wsgi.url_scheme": draw(url_scheme)},
    )
    env.update(draw(other_headers))
    return env


def expected_statuses(env):
    """The statuses the body (read first, whatever the address) and routing call for, by method and path."""
    length = env.get("CONTENT_LENGTH", "").strip()
    announced = int(length) if length.isascii() and length.isdigit() and len(length.lstrip("0")) <= 9 else 0
    if length.isascii() and length.isdigit() and len(length.lstrip("0")) > 9 or announced > MAX_DRAIN:
        return {413}
    if announced > len(env["wsgi.input"].getbuffer()):
        return {400}
    if announced > MAX_BODY:
        return {413}
    verb = env.get("REQUEST_METHOD", "GET").upper()
    if verb not in ("GET", "HEAD", "POST"):
        return {405}
    path = env.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
    if path == "/favicon.ico":
        return {200}
    parts = [p for p in path.split("/") if p]
    if not parts:
        return {200}
    slug = parts[0].lower()
    if slug not in GROUPS or len(parts) > 2 or (len(parts) == 2 and parts[1] not in GROUPS[slug]):
        return {404}
    if len(parts) == 1:
        return {200} | GUARDED
    if verb != "POST":
        return {303} | GUARDED
    return {303, 400, 409} | GUARDED


# --- Fuzzing ------------------------------------------------------------------

# FUZZ_EXAMPLES=5000 for a longer search than the few seconds of the usual run.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "250"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(env=wsgi_requests())
@example(env=environ("GET", latin1(b"/lyon/\xff\xfe")))
@example(env=environ("POST", "/lyon/start", b"number=0639980001", content_length="-1"))
@example(env=environ("POST", "/lyon/start", b"number=0639980001", content_length="99999"))
@example(env=environ("HEAD", "/lyon/start", b"", HTTP_COOKIE="flash=start%3A0033639980001"))
@example(env=environ("GET", "/lyon", HTTP_COOKIE="flash=start%3A0033639980001; flash=%FF; ;;;"))
@example(env=environ("DELETE", "/lyon"))
def test_any_request_gets_a_french_page_with_the_right_status(fuzzed, env):
    fuzzed.run(env, expected_statuses(env))


action_path = st.tuples(st.sampled_from(["lyon", "LYON", "lille"]), st.sampled_from(["start", "finish", "remove"]))


@FUZZ
@given(
    env=wsgi_requests(
        methods=st.sampled_from(["POST", "post"]),
        paths=action_path.map(lambda t: f"/{t[0]}/{t[1]}"),
    )
)
@example(env=environ("POST", "/lyon/remove", b"volunteer=%C2%B2", content_type=CONTENT_TYPES[0]))
@example(env=environ("POST", "/lyon/start", utf8("number=06١٢٣٤٥٦٧٨"), content_type=CONTENT_TYPES[0]))
@example(env=environ("POST", "/lyon/start", b"number=0639980001&number=0639980002&name=In%C3%A8s&name=%FF"))
@example(env=environ("POST", "/lille/start", b"", content_length=None))
@example(env=environ("POST", "/lyon/start", utf8(urlencode({"number": MARKER_TAG, "name": MARKER_ATTRIBUTE}))))
@example(env=environ("POST", "/lille/start", b"number=0639980001", content_length="abc"))
def test_posted_forms_never_fail(fuzzed, env):
    """Every kind of body on the action addresses, where the page reads the form."""
    result = fuzzed.run(env, expected_statuses(env))
    if result.status == 400 and result.header("Content-Type").startswith("text/html"):
        assert "La demande" in result.text or 'aria-invalid="true"' in result.text or "incomplète" in result.text
    if result.status != 303:
        return
    # Something was done: it is in the activity log, with a known outcome, without an error.
    log = (fuzzed.folder / "data" / "activity.log").read_text(encoding="utf-8").splitlines()
    assert log and log[-1].endswith("\tok"), log[-1:]
    number = log[-1].split("\t")[3]
    french = r"0033[1-79][0-9]{8}|00(262|590|594|596)[26][0-9]{8}"  # Mainland, or an overseas department.
    assert number == "-" or re.fullmatch(french, number, re.ASCII), f"sent to OVH: {number!r}"


# --- Valid forms, as a browser sends them ------------------------------------


class Forms(HTMLParser):
    """The forms of a page: action, fields (hidden ones with their value) and button labels."""

    def __init__(self, page):
        super().__init__()
        self.forms = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action", ""), "fields": {}, "inputs": set(), "label": ""})
        elif tag == "input" and self.forms and attrs.get("name"):
            form = self.forms[-1]
            form["inputs"].add(attrs["name"])
            if attrs.get("type") == "hidden":
                form["fields"][attrs["name"]] = attrs.get("value", "")
        elif tag == "button" and self.forms:
            self.forms[-1]["label"] = attrs.get("aria-label", "")


class Browser:
    """Cookies and forms, as a browser keeps them across requests."""

    def __init__(self, fuzzed):
        self.fuzzed = fuzzed
        self.cookies = {}  # (name, path) → value

    def request(self, method, path, fields=None):
        body = urlencode(fields or {}).encode()
        sent = "; ".join(
            f"{name}={value}"
            for (name, where), value in self.cookies.items()
            if path == where or path.startswith(where.rstrip("/") + "/")
        )
        env = environ(method, path, body, content_type=CONTENT_TYPES[0], HTTP_COOKIE=sent or None)
        self.fuzzed.records.clear()
        result = call(self.fuzzed.app, env)
        check_response(result, method)
        assert not [r for r in self.fuzzed.records if r.levelno >= logging.ERROR], self.fuzzed.records
        for name, value in result.headers:
            if name.lower() == "set-cookie":
                pair, *attributes = [a.strip() for a in value.split(";")]
                key, _, cookie_value = pair.partition("=")
                options = {k.lower(): v for k, _, v in (a.partition("=") for a in attributes)}
                where = options.get("path", "/")
                if options.get("max-age") == "0":
                    self.cookies.pop((key, where), None)
                else:
                    self.cookies[(key, where)] = cookie_value
        return result

    def submit(self, group, action, typed=None, button=None):
        """Open the group's page, fill in its form for `action` and send it."""
        page = self.request("GET", f"/{group}")
        assert page.status == 200, page.text
        forms = [f for f in Forms(page.text).forms if f["action"] == f"/{group}/{action}"]
        if button is not None:
            forms = [f for f in forms if button in f["label"]]
        if not forms:
            return None
        form = forms[0]
        fields = dict(form["fields"])
        for name, value in (typed or {}).items():
            if name in form["inputs"]:
                fields[name] = value
        return self.request("POST", form["action"], fields)


NUMBER_FORMS = {
    "0033639980001": ["06 39 98 00 01", "+33 6 39 98 00 01", "٠٦٣٩٩٨٠٠٠١"],
    "0033639980002": ["0639980002", "+33 (0)6 39 98 00 02", "06.39.98.00.02"],
    "0033639980003": ["06-39-98-00-03", "0033639980003", "０６３９９８０００３"],
    "00262692999999": ["0692 99 99 99", "+262 692 99 99 99", "+33 6 92 99 99 99"],  # La Réunion.
}
valid_action = st.one_of(
    st.tuples(
        st.just("start"),
        st.sampled_from(["lyon", "lille"]),
        st.sampled_from(sorted(NUMBER_FORMS)).flatmap(
            lambda n: st.tuples(st.just(n), st.sampled_from(NUMBER_FORMS[n]))
        ),
        st.sampled_from(["", "Inès", "Jean-Luc", "N’Golo"]),
    ),
    st.tuples(st.just("finish"), st.sampled_from(["lyon", "lille"])),
    st.tuples(st.just("remove"), st.just("lyon"), st.sampled_from(sorted(NUMBER_FORMS))),
)


@settings(max_examples=max(30, EXAMPLES // 8), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=st.lists(valid_action, min_size=1, max_size=4))
@example(actions=[("start", "lyon", ("0033639980001", "٠٦٣٩٩٨٠٠٠١"), "Inès"), ("remove", "lyon", "0033639980001")])
@example(actions=[("start", "lyon", (n, n), "") for n in sorted(NUMBER_FORMS)] + [("finish", "lyon")])
def test_valid_forms_do_what_they_say(fuzzed, actions):
    """Valid POSTs, as a browser sends them from the page: they act, redirect, and the line rings whom it should."""
    fuzzed.fake.reset()
    browser = Browser(fuzzed)
    on_duty = {"lyon": [], "lille": []}
    for action, group, *arguments in actions:
        if action == "start":
            (number, typed), name = arguments
            response = browser.submit(group, "start", {"number": typed, "name": name})
            if group == "lille":  # A forward: one number, the new one replaces the old.
                on_duty["lille"] = [number]
            elif number not in on_duty["lyon"] and len(on_duty["lyon"]) == 2:  # Lyon takes 2 volunteers at most.
                assert response.status == 409, response.status_line
                assert "le maximum pour ce groupe" in response.text
                continue
            elif number not in on_duty["lyon"]:
                on_duty["lyon"].append(number)
        elif action == "finish":
            response = browser.submit(group, "finish")
            if response is None:  # Nothing to end: no "Terminer" section.
                assert on_duty[group] == []
                continue
            on_duty[group] = []
        else:
            (number,) = arguments
            label = f"Retirer le {mask_phone(number)}"
            response = browser.submit(group, "remove", button=label)
            if response is None:  # Not on duty: no button to press.
                assert number not in on_duty["lyon"]
                continue
            on_duty["lyon"].remove(number)
        assert response.status == 303, response.status_line
        page = browser.request("GET", response.header("Location"))
        assert page.status == 200
        assert 'class="box ok"' in page.text, "no confirmation after the redirect"
        assert sorted(fuzzed.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON)) == sorted(on_duty["lyon"])
        assert fuzzed.fake.who_rings(LILLE_NUMBER) == (on_duty["lille"] or [LILLE_SIP_LINE])


# --- Regressions found by fuzzing ----------------------------------------------


def test_numbers_typed_in_other_digits_are_understood():
    """Unicode digits (Arabic-Indic…) passed the \\d check and went to OVH as they were typed."""
    assert normalize_phone("٠٦٣٩٩٨٠٠٠١") == "0033639980001"
    assert normalize_phone("۰۶ ۳۹ ۹۸ ۰۰ ۰۱") == "0033639980001"  # Persian digits.
    assert normalize_phone("06١٢٣٤٥٦٧٨") == "0033612345678"


def test_a_site_in_a_folder_with_accents_gets_valid_links(fuzzed):
    """SCRIPT_NAME holds the folder's bytes as latin-1: the links and Location must percent-encode them."""
    script = latin1(utf8("/été/index.py"))
    page = fuzzed.run(environ("GET", "/", script=script), {200})
    assert 'href="/%C3%A9t%C3%A9/lyon"' in page.text
    redirect = fuzzed.run(environ("GET", "/lille/start", script=script), {303})
    assert redirect.header("Location") == "/%C3%A9t%C3%A9/lille"
