"""HTTP: the request as the page reads it, the response it makes, and the headers every answer carries."""

from urllib.parse import parse_qs, quote, unquote

from .log import log
from .pages import render_message

MAX_BODY = 4096  # Bytes: our forms are tiny.
MAX_DRAIN = 1 << 20  # Bytes of a larger body still read (and thrown away), so that the 413 page reaches the browser.
# The SHA-256 of STYLE in base64, which the CSP lets in: written out, as hashlib costs a CGI process its start-up;
# test_pages checks it.
STYLE_HASH = "FOEItd3S1et7Jb0NTh1ilJ92dn43uXJWSkumLFjyFao="
COMMON_HEADERS = [
    ("Cache-Control", "no-cache, no-store, must-revalidate"),
    ("Pragma", "no-cache"),
    ("Expires", "0"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),  # Not no-referrer: browsers would then send our own forms with Origin: null.
    (
        "Content-Security-Policy",
        f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; img-src 'self'; media-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'",
    ),
]
STATUS_TEXTS = {
    200: "OK", 206: "Partial Content", 303: "See Other", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large", 416: "Range Not Satisfiable",
    429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
}  # fmt: skip


class Response:
    """What the application answers: a status, headers and a body."""

    def __init__(self, status, body=b"", content_type="text/html; charset=utf-8", headers=None):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers if headers is not None else []

    @classmethod
    def page(cls, html_text, status=200):
        """An HTML page."""
        return cls(status, html_text.encode("utf-8"))

    @classmethod
    def redirect(cls, location):
        """A 303 redirect, so that a refresh after a POST never repeats it."""
        return cls(303, headers=[("Location", location)])


def method_not_allowed(request, allow):
    """The French 405 page, with the methods the address answers."""
    text = "Cette adresse ne répond pas à cette méthode."
    response = Response.page(render_message("Méthode non permise", text, request.base), 405)
    response.headers.append(("Allow", allow))
    return response


class Request:
    """The parts of a WSGI request the page uses."""

    def __init__(self, environ):
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        raw_path = environ.get("PATH_INFO", "")
        self.path = raw_path.encode("latin-1", "replace").decode("utf-8", "replace")
        script = environ.get("SCRIPT_NAME", "")
        base = script[: -len("/index.py")] if script.endswith("/index.py") else script.rstrip("/")
        self.base = quote(base.encode("latin-1", "replace"), safe="/")  # For links, Location and cookie paths.
        self.client = environ.get("REMOTE_ADDR", "")
        self.https = environ.get("wsgi.url_scheme") == "https" or environ.get("HTTPS", "").lower() in ("on", "1")
        self.body = b""

    def origin(self):
        """This page's origin, as a browser writes it in an Origin header: https://host, without a default port."""
        scheme = "https" if self.https else "http"
        environ = self.environ
        host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
        return f"{scheme}://{host.lower().removesuffix(':443' if self.https else ':80')}"

    def from_elsewhere(self):
        """True when the browser says the request comes from another site: by Sec-Fetch-Site, or else by Origin.

        A sibling subdomain is "same-site", not "same-origin": refused too. Browsers without
        Sec-Fetch-Site (older Safari) send Origin; a web page can set neither.
        """
        site = self.environ.get("HTTP_SEC_FETCH_SITE")
        if site is not None:
            return site != "same-origin"
        origin = self.environ.get("HTTP_ORIGIN")
        return origin is not None and origin != self.origin()

    def cookie(self, name):
        """The value of a cookie, or ""."""
        for part in self.environ.get("HTTP_COOKIE", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return unquote(value)
        return ""

    def read_body(self):
        """Read the whole body before any answer (under CGI, Apache drops an answer sent before it).

        Return None, or the status of a body refused: 413 when larger than MAX_BODY (read all
        the same, up to MAX_DRAIN), 400 when shorter than announced.
        """
        length = self.environ.get("CONTENT_LENGTH", "").strip()
        if not (length.isascii() and length.isdigit()):
            length = "0"  # Absent, empty, negative or not a number: no body.
        length = int(length) if len(length.lstrip("0")) <= 9 else MAX_DRAIN + 1
        if length > MAX_DRAIN:
            return 413
        try:
            body = self.environ["wsgi.input"].read(length) if length > 0 else b""
        except OSError as error:  # The client went away, or sent less than it said and waits (--serve's timeout).
            log.warning("cannot read the body of %s %s from %s: %s", self.method, self.path, self.client, error)
            return 400
        if len(body) < length:
            return 400
        if length > MAX_BODY:
            return 413
        self.body = body
        return None

    def form(self):
        """The fields of the posted form, first value of each."""
        fields = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {key: values[0] for key, values in fields.items()}
