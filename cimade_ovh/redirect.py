"""A redirect group's line: the public number goes to a SIP line, whose unconditional forward the page sets."""

from dataclasses import dataclass, field

from .ovhapi import NOT_A_REDIRECT, OvhFailure, parallel, unless_gone
from .state import OWN_LINE, LineState, Outcome, Refusal, Volunteer, verify


@dataclass
class RedirectSnapshot:
    """The raw OVH objects of a redirect that the page works with."""

    sip_line: str
    options: dict
    voicemail: dict = field(default_factory=dict)  # The group's voicemail, when read with the line (see voicemail.py).


class RedirectLine:
    """A public number that goes to a SIP line, whose unconditional forward we set."""

    def __init__(self, client, group, moment, memory=None):
        self.client = client
        self.group = group
        self.redirect_path = f"/telephony/{group.billing_account}/redirect/{group.number}"
        self.memory = {} if memory is None else memory  # What a persistent process remembers of the group.
        self._sip_line = None

    def sip_line(self):
        """The SIP line the public number goes to, read once per request and remembered for the next ones."""
        if self._sip_line is None:
            redirect = self.client.get(self.redirect_path)
            if redirect.get("featureType") != "redirect" or not redirect.get("destination"):
                raise OvhFailure(
                    "unexpected",
                    f"{self.redirect_path}: featureType={redirect.get('featureType')!r} "
                    f"destination={redirect.get('destination')!r}",
                    NOT_A_REDIRECT,
                )
            self._sip_line = self.memory["sip_line"] = redirect["destination"]
        return self._sip_line

    def options_path(self, sip_line=None):
        """The OVH path of the SIP line's options."""
        return f"/telephony/{self.group.billing_account}/line/{sip_line or self.sip_line()}/options"

    def snapshot(self):
        """Read the SIP line's options; with a SIP line remembered, at once, while the redirect confirms it."""
        remembered = self.memory.get("sip_line")
        if self._sip_line is None and remembered:
            sip_line, options = parallel(
                self.sip_line, lambda: unless_gone(self.client.get, self.options_path(remembered))
            )
            if sip_line == remembered and options is not None:
                return RedirectSnapshot(sip_line, options)
        return RedirectSnapshot(self.sip_line(), self.client.get(self.options_path()))

    def state(self, snap):
        """What the snapshot means for callers."""
        options = snap.options
        forward = options.get("forwardUnconditionalNumber") if options.get("forwardUnconditional") else None
        return LineState(
            running=bool(forward),
            volunteers=[Volunteer(forward)] if forward else [],
            rings_now=[forward] if forward else [snap.sip_line],
            sip_line=snap.sip_line,
            leftover=bool(forward),
        )

    def read_state(self):
        """Read whether the SIP line forwards, and where."""
        return self.state(self.snapshot())

    def read_back(self, snap):
        """The snapshot after a write of the forward: the SIP line's options read again."""
        return RedirectSnapshot(snap.sip_line, self.client.get(self.options_path(snap.sip_line)))

    def start(self, number, name="", ends=None):
        """Forward the SIP line to `number` (no name, no timer: stats.py ends it); return the Outcome."""
        snap = self.snapshot()
        if number == snap.sip_line:  # Forwarded to itself, the line would loop.
            raise Refusal(OWN_LINE)
        before = self.state(snap)
        if before.numbers == [number]:
            return Outcome("on-duty", number, before, snap)
        self.client.put(
            self.options_path(snap.sip_line),
            forwardUnconditional=True,
            forwardUnconditionalNumber=number,
            forwardUnconditionalNature="number",
        )
        after = self.read_back(snap)
        state = self.state(after)
        verify(state.numbers == [number], f"forward should go to {number}, reads {state.numbers}")
        return Outcome("change" if before.running else "start", number, state, after)

    def finish(self, snap=None):
        """Clear the SIP line's forward; return the Outcome ("finish", or "nothing" when it was off).

        `snap`: the snapshot just read, if any.
        """
        snap = snap or self.snapshot()
        before = self.state(snap)
        self.client.put(self.options_path(snap.sip_line), forwardUnconditional=False)
        after = self.read_back(snap)
        state = self.state(after)
        verify(not state.running, f"forward should be off, reads {state.numbers}")
        return Outcome("finish" if before.running else "nothing", "", state, after)
