"""The simulator's HTTP server: the API under /1.0, the page where a person validates a consumer key, and the
voicemail messages' audio files (under /voicemail-files/, as OVH serves them from another address).

The handler only speaks HTTP (latency, faults, logging, Content-Length); what to answer is
FakeOVH's business (answer, validation_page, validation_submit, take_fault, log_request).
"""

import http.server
import json
import socketserver
import time
import urllib.parse

from .schema import ApiError

BASE_PATH = "/1.0"
VALIDATION_PATH = "/auth/"
FILES_PATH = "/voicemail-files/"  # Where the simulator serves voicemail messages' audio files, outside the API.
HANG_SECONDS = 60  # longest a "hang" fault holds a request


class Handler(http.server.BaseHTTPRequestHandler):
    """Answer one connection: the API under /1.0, the credential validation page and the audio files."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeOVH/1.0"

    disable_nagle_algorithm = True  # Answer at once: headers and body are two writes.

    def do_GET(self):
        """Serve any method the same way; the schema decides what exists."""
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        parts = urllib.parse.urlsplit(self.path)
        api = parts.path == BASE_PATH or parts.path.startswith(BASE_PATH + "/")
        path = parts.path[len(BASE_PATH) :] if api else parts.path
        self.generation = fake.generation  # A reset after this drops the request, and keeps it out of the new log.
        self.entry = fake.log_request(self.command, path, parts.query, raw, self.generation)
        self.started = time.monotonic()
        if api:
            self.serve_api(fake, path, parts.query, raw)
        elif parts.path == VALIDATION_PATH:
            self.serve_validation_page(fake, parts.query, raw)
        elif parts.path.startswith(FILES_PATH) and self.command == "GET":
            self.serve_audio_file(fake, parts.path)
        else:
            self.send_json(404, ApiError(404, "Got an invalid (or empty) URL").body())

    do_POST = do_PUT = do_DELETE = do_GET

    def serve_api(self, fake, path, query, raw):
        """Answer an API request, playing latency and faults; return the status sent (None if none)."""
        generation = self.generation
        fake.wait_turn(self.entry)
        if fake.latency_ms:
            time.sleep(fake.latency_ms / 1000)
        fault = fake.take_fault(self.command, path) if fake.generation == generation else None
        if fault and not fault["after"]:
            return self.play_fault(fake, fault["kind"])
        url = "http://" + self.headers.get("Host", f"127.0.0.1:{fake.port}") + self.path
        status, payload = fake.answer(self.command, path, query, raw, self.headers, url, generation)
        if status is None:  # Reset while it waited: it belongs to a test that is over, so it is dropped.
            self.close_connection = True
            return None
        if fault:
            return self.play_fault(fake, fault["kind"])
        return self.send_json(status, payload)

    def play_fault(self, fake, kind):
        """Fail the response as asked by FakeOVH.fail()."""
        if kind in ("drop", "hang"):
            if kind == "hang":
                fake.hang_release.wait(HANG_SECONDS)
            self.close_connection = True
            return None
        error = {
            "500": ApiError(500, "Internal Server Error (simulated fault)"),
            "503": ApiError(503, "Service Unavailable (simulated fault)"),
            "invalid_credential": ApiError(403, "This credential is not valid", "INVALID_CREDENTIAL"),
            "gone": ApiError(404, "The requested object does not exist (simulated: deleted just now)"),
        }[kind]
        return self.send_json(error.status, error.body())

    def serve_audio_file(self, fake, path):
        """Send a voicemail message's audio file, after the latency every request of OVH's takes, or its fault."""
        if fake.latency_ms:
            time.sleep(fake.latency_ms / 1000)
        fault = fake.take_fault("GET", path)
        if fault:
            return self.play_fault(fake, fault["kind"])
        return self.send(*fake.audio_file(path[len(FILES_PATH) :].split("/")[0]))

    def serve_validation_page(self, fake, query, raw):
        """Show the page where a person validates a consumer key, or take its form."""
        if self.command == "GET":
            token = urllib.parse.parse_qs(query).get("credentialToken", [""])[0]
            status, page = fake.validation_page(token)
        elif self.command == "POST":
            status, page = fake.validation_submit(urllib.parse.parse_qs(raw))
        else:
            status, page = 405, "<p>Method not allowed</p>"
        return self.send(status, page.encode("utf-8"), "text/html; charset=utf-8")

    def send_json(self, status, payload):
        """Send a JSON answer; return its status."""
        return self.send(status, json.dumps(payload).encode("utf-8"), "application/json; charset=utf-8")

    def send(self, status, content, content_type):
        """Log, then send an answer with its Content-Length, so that the connection can be kept alive."""
        self.entry.update(status=status, duration=time.monotonic() - self.started)
        self.server.fake.write_log_line(self.entry)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)
        return status

    def log_message(self, format, *args):
        """Stay quiet: FakeOVH.requests is the log."""


class Server(http.server.ThreadingHTTPServer):
    """A threading HTTP server with daemon threads that knows its FakeOVH."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # Connections waiting to be accepted: 20-60 clients at once drop none.

    def __init__(self, fake, port):
        self.fake = fake
        super().__init__(("127.0.0.1", port), Handler)

    def server_bind(self):
        """Bind without HTTPServer's reverse DNS lookup, which can be slow."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
