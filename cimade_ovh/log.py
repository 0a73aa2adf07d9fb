"""The page's log, which Apache writes to its error log: logging is imported with the first line written.

Most requests log nothing: a CGI process that shows a page then starts without logging.
"""

import contextvars
import threading

CLIENT = contextvars.ContextVar("client", default=None)  # The address of the request being answered, for the log.
LINE_FORMAT = "%(asctime)s cimade-ovh: %(levelname)s: %(client)s%(message)s"


class Log:
    """The logger "cimade-ovh", made when a line is first written (or ready() is called).

    After log_to_stderr(), that first line also sends the log to standard error.
    """

    def __init__(self):
        self.stderr = False  # Set by log_to_stderr().
        self.logger = None
        self.lock = threading.Lock()

    def ready(self):
        """The logger, logging imported and set up the first time."""
        with self.lock:
            if self.logger is None:
                import logging

                if self.stderr:
                    handler = logging.StreamHandler()
                    handler.setFormatter(logging.Formatter(LINE_FORMAT))
                    handler.addFilter(with_client)
                    logging.basicConfig(level=logging.INFO, handlers=[handler])
                self.logger = logging.getLogger("cimade-ovh")
            return self.logger

    def warning(self, *args, **kwargs):
        """Log a warning, as logging.Logger.warning."""
        self.ready().warning(*args, **kwargs)

    def error(self, *args, **kwargs):
        """Log an error, as logging.Logger.error."""
        self.ready().error(*args, **kwargs)

    def exception(self, *args, **kwargs):
        """Log an error with the traceback of the exception being handled, as logging.Logger.exception."""
        self.ready().exception(*args, **kwargs)


log = Log()


def log_to_stderr():
    """Log to standard error, which Apache writes to its error log: each line with its time and the client's address.

    Also the lines of the libraries that log (requests, urllib3): connect_ovh sets the log up before importing them.
    """
    log.stderr = True


def with_client(record):
    """Give a log record the address of the request being answered, if any ("[client 192.0.2.7] ")."""
    client = CLIENT.get()
    record.client = f"[client {client}] " if client else ""
    return True
