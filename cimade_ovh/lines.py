"""The two kinds of lines, by the name lines.ini gives them."""

from .queues import QueueLine, QueueSnapshot
from .redirect import RedirectLine, RedirectSnapshot

LINE_KINDS = {"redirect": RedirectLine, "queue": QueueLine}
SNAPSHOT_KINDS = {"redirect": RedirectSnapshot, "queue": QueueSnapshot}
