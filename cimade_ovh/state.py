"""What the page knows of a line, whatever its kind: volunteers, calls, the outcome of an action."""

from dataclasses import dataclass, field
from datetime import datetime

from .ovhapi import OvhFailure


@dataclass
class Call:
    """A call in a queue: waiting, or answered by a volunteer."""

    waiting: bool
    begin: datetime
    answered: datetime = None
    agent: str = ""


@dataclass
class Volunteer:
    """A number the permanence sends calls to, with what the page knows of it."""

    number: str
    name: str = ""  # The first name the volunteer typed, if any.
    agent_id: int = None  # Queue: the OVH agent that rings this number.
    call: Call = None  # Queue: the call this volunteer is on, if any.
    until: int = None  # The planned end of their permanence today, a time of day in seconds (None when unknown).
    mark: str = ""  # Queue: the page's keyed fingerprint of the number, that the volunteer's "Retirer" button sends.


@dataclass
class LineState:
    """What the page shows of a line, read from OVH."""

    running: bool  # A permanence started by the page is on.
    volunteers: list  # The Volunteers the permanence sends calls to.
    rings_now: list  # The numbers a call would ring right now.
    sip_line: str = ""  # Redirect: where calls go without a permanence.
    calls: list = field(default_factory=list)
    open_without_volunteer: bool = False  # Queue: the period is open but nobody is available.
    strategy: str = ""  # Queue: how several numbers ring (OVH's strategy: ringAll, sequentiallyByAgentOrder…).
    elsewhere: str = None  # Queue closed now: "voicemail", a number, or "" (the closing message); None when open.
    conditions_off: bool = False  # Queue: IT left the time conditions disabled; periods then change nothing.
    until: int = None  # Queue: the planned end today's period carries, a time of day in seconds.
    opens_at: int = None  # Queue: when today's period opens, while the permanence waits for it (before 02:00).
    interrupted: bool = False  # Queue: a change closed the period and did not reopen it; the volunteers wait for it.
    leftover: bool = False  # Something of the page's is left at OVH (a forward, a period, an available agent).

    @property
    def numbers(self):
        """The volunteers' numbers."""
        return [v.number for v in self.volunteers]


@dataclass
class Outcome:
    """What an action did: `action` is a word of actions.ACTIONS ("start", "finish", "gone"…), or "on-duty".

    "on-duty": the number was on duty already; `changed` says what OVH changed for it ("name", "ends"
    for the period's end), which names the action in the log ("same", "name", "ends", "name-ends").
    """

    action: str
    number: str
    state: LineState
    snap: object  # The snapshot `state` comes from: read before, with what the action wrote read back.
    changed: tuple = ()

    def word(self, end_changed):
        """The log's word for the action: `action`, or for "on-duty" what changed ("same", "name", "ends"…).

        `end_changed`: the planned end asked differs from the one stored before, which OVH may not show (a
        volunteer's end before the period's); a retry after a failure finds its end stored already.
        """
        if self.action != "on-duty":
            return self.action
        changed = [c for c in ("name", "ends") if c in self.changed or c == "ends" and end_changed]
        return "-".join(changed) or "same"


class Refusal(Exception):
    """An action the page will not do as asked; the message tells the volunteer why, in French."""


OWN_LINE = "Ce numéro est celui d'une ligne de la Cimade : tapez celui du téléphone où vous allez répondre."


def verify(condition, detail):
    """Raise a mismatch failure when the state read back is not what was asked."""
    if not condition:
        raise OvhFailure("mismatch", detail)
