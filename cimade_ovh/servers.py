"""The servers the page runs under: FastCGI through flup, plain CGI, or a local server from the command line."""

import errno
import os
import stat

from .files import os_error_text


def is_fastcgi():
    """True when a FastCGI server started us: our standard input is then a listening socket."""
    try:
        if not stat.S_ISSOCK(os.fstat(0).st_mode):
            return False  # A pipe, a file or a terminal: known without importing socket, as plain CGI starts.
    except OSError:
        return False
    import socket

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
    import socket
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
        why = "nom ou adresse inconnus" if error.errno == socket.EAI_NONAME else os_error_text(error)
        print(f"ERREUR : impossible d'écouter sur {host}:{port} ({why}) ; {fix}.")
        return 1
    with server:
        print(f"cimade-ovh : ouvrez http://{host}:{server.server_port}/ (Ctrl-C pour arrêter)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0
