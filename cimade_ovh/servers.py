"""The servers the page runs under: FastCGI through flup, plain CGI, or a local server from the command line."""

import errno
import logging
import os
import socket

from .files import os_error_text
from .web import CLIENT


def log_to_stderr():
    """Log to standard error, which Apache writes to its error log: each line with its time and the client's address."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s cimade-ovh: %(levelname)s: %(client)s%(message)s"))
    handler.addFilter(with_client)
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def with_client(record):
    """Give a log record the address of the request being answered, if any ("[client 192.0.2.7] ")."""
    client = CLIENT.get()
    record.client = f"[client {client}] " if client else ""
    return True


def is_fastcgi():
    """True when a FastCGI server started us: our standard input is then a listening socket."""
    try:
        sock = socket.socket(fileno=os.dup(0))
    except OSError:
        return False
    try:
        sock.getpeername()
    except OSError as error:
        return error.errno == errno.ENOTCONN
    finally:
        sock.close()
    return False


def run_fastcgi(app):
    """Serve requests from Apache's mod_fcgid in this persistent process."""
    from flup.server.fcgi import WSGIServer

    WSGIServer(app).run()


def run_cgi(app):
    """Serve the one request of a plain CGI process."""
    from wsgiref.handlers import CGIHandler

    CGIHandler().run(app)


SERVE_TIMEOUT = 10  # Seconds --serve waits for a client's next bytes.


def serve(app, host, port):
    """Serve the page on http://host:port/ until interrupted; return the exit status."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Handler(WSGIRequestHandler):
        timeout = SERVE_TIMEOUT  # A client that sends less than it announced does not keep a thread forever.

    try:
        server = make_server(host, port, app, server_class=ThreadingWSGIServer, handler_class=Handler)
    except OSError as error:
        taken = error.errno == errno.EADDRINUSE
        fix = "choisissez un autre --port" if taken else "vérifiez --host (par exemple 127.0.0.1)"
        print(f"ERREUR : impossible d'écouter sur {host}:{port} ({os_error_text(error)}) ; {fix}.")
        return 1
    with server:
        print(f"cimade-ovh : ouvrez http://{host}:{server.server_port}/ (Ctrl-C pour arrêter)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0
