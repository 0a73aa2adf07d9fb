"""What a call does (who_rings, as OVH's guides describe it), and the calls, statistics and lines tests add.

Calls is mixed into FakeOVH, which gives it `state`, `_lock`, save() and new_id().
"""

import datetime

from .account import (
    DEMO_BILLING_ACCOUNT,
    call_in_queue,
    in_paris,
    iso,
    lyon_hunting,
    now,
    redirect,
    sip_line,
)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class Ringing(list):
    """What a call does: the numbers it rings (a list), in the order they ring, and how or where else it goes.

    `strategy`: the queue's strategy (None for a SIP line); `together` when they all ring at once.
    `elsewhere`: where the call goes when the time conditions close the line: "voicemail" (the
    service's voicemail), a number ("0033…"), or "" (no destination: callers hear the closing
    message); None while the line is open.
    """

    def __init__(self, numbers=(), strategy=None, elsewhere=None):
        super().__init__(numbers)
        self.strategy = strategy
        self.elsewhere = elsewhere

    @property
    def together(self):
        """True when the numbers ring all at once."""
        return self.strategy == "ringAll"

    def __repr__(self):
        return f"Ringing({list(self)!r}, strategy={self.strategy!r}, elsewhere={self.elsewhere!r})"


class Calls:
    """The part of FakeOVH that plays calls: who rings, live calls, statistics, lines added for new groups."""

    # --- Oracle ---

    def who_rings(self, public_number, at=None):
        """Return what a call to `public_number` does at `at` (naive = Paris time): a Ringing."""
        moment = in_paris(at)
        with self._lock:
            for account in self.state["billingAccounts"].values():
                if public_number in account["easyHunting"]:
                    return self.hunting_rings(account["easyHunting"][public_number], moment)
                if public_number in account["redirect"]:
                    return self.line_rings(account, account["redirect"][public_number]["destination"])
                if public_number in account["line"]:
                    return self.line_rings(account, public_number)
        raise KeyError(public_number)

    def line_rings(self, account, number):
        """Return what a call to a SIP line rings: its unconditional forward if on, else the line."""
        options = account["line"][number]["options"] if number in account["line"] else {}
        if options.get("forwardUnconditional"):
            return Ringing([options["forwardUnconditionalNumber"]])
        return Ringing([number])

    def hunting_rings(self, service, moment):
        """Return what a call to an easyHunting group does, as OVH's guides describe it.

        With time conditions enabled, a call outside every condition open now goes to the
        out-of-hours destination ("unavailable"), and in a condition of policy slot1-3 to that
        slot's destination; only in an "available" condition does it reach the queue. With them
        disabled, it always reaches the queue. There, the available agents of the single queue
        ring as its strategy says: all at once (ringAll) or one after the other, in the order
        of their positions for the strategies "by agent order".
        """
        settings = service["timeConditions"]
        slot = self.closed_slot(service, moment)
        if slot:
            kind, number = settings.get(f"{slot}Type"), settings.get(f"{slot}Number")
            return Ringing(elsewhere=number if kind == "number" else kind or "")
        if len(service["queues"]) != 1:
            return Ringing()
        queue = service["queues"][0]
        agents = {a["agentId"]: a for a in service["agents"]}
        links = sorted(
            (link["position"], link["agentId"])
            for link in service["agentQueues"]
            if link["queueId"] == queue["queueId"] and link["agentId"] in agents
        )
        numbers = [agents[agent_id]["number"] for _, agent_id in links if agents[agent_id]["status"] == "available"]
        return Ringing(numbers, strategy=queue["strategy"])

    def closed_slot(self, service, moment):
        """Where the time conditions send a call at `moment` instead of the queue: "unavailable" or "slot1"-"slot3".

        None while they let it reach the queue: disabled, or in a condition of policy "available" open now.
        """
        if not service["timeConditions"].get("enable"):
            return None
        clock = moment.strftime("%H:%M:%S")
        policies = {
            c["policy"]
            for c in service["conditions"]
            if c["weekDay"] == WEEKDAYS[moment.weekday()] and c["timeFrom"] <= clock <= c["timeTo"]
        }
        return None if "available" in policies else min(policies, default="unavailable")

    # --- Traffic ---

    def hunting_queue(self, public_number):
        """Return (service, queue) of an easyHunting number with exactly one queue."""
        for account in self.state["billingAccounts"].values():
            if public_number in account["easyHunting"]:
                service = account["easyHunting"][public_number]
                if len(service["queues"]) != 1:
                    raise ValueError(f"{public_number} has {len(service['queues'])} queues, not one")
                return service, service["queues"][0]
        raise KeyError(public_number)

    def add_queue(self, number, billing_account=DEMO_BILLING_ACCOUNT):
        """Add an easyHunting number with one queue, no agent and no time condition, as IT prepares a group."""
        service = lyon_hunting()
        name = f"Permanence {number}"
        service["service"].update(serviceName=number, description=name)
        service["hunting"]["name"] = name
        [queue] = service["queues"]
        queue.update(queueId=self.new_id("queueId"), description=f"File {number}")
        counters = ("callsAnswered", "callsLost", "callsTotal", "totalCallDuration", "totalWaitingDuration")
        queue["statistics"].update(dict.fromkeys(counters, 0))
        service.update(agents=[], agentQueues=[], conditions=[])
        with self._lock:
            self.state["billingAccounts"][billing_account]["easyHunting"][number] = service

    def add_redirect(self, number, sip, billing_account=DEMO_BILLING_ACCOUNT):
        """Add a redirect number to a new SIP line of the same billing account, as IT prepares a group."""
        with self._lock:
            account = self.state["billingAccounts"][billing_account]
            account["line"][sip] = sip_line(sip, f"Permanence {number} (SIP)", number, sip)
            account["redirect"][number] = redirect(number, sip, f"Permanence {number}")

    def add_live_call(self, public_number, state="Waiting", caller="0033639989999", agent=None, begin=None):
        """Put a call in the group's queue, waiting or answered by an agent's number; return its id."""
        if state not in ("Waiting", "Answered"):
            raise ValueError(f"Unknown live call state {state!r}")
        if state == "Answered" and not agent:
            raise ValueError("An answered call needs the agent's number")
        with self._lock:
            service, queue = self.hunting_queue(public_number)
            moment = now()
            answered = moment if state == "Answered" else None
            live_call = call_in_queue(
                self.new_id("liveCallId"), queue, public_number, caller, begin or moment, answered, agent
            )
            service["liveCalls"].append(live_call)
            self.save()
            return live_call["id"]

    def answer_live_call(self, public_number, call_id, agent_number):
        """Let an agent's number answer a waiting call."""
        with self._lock:
            service, _ = self.hunting_queue(public_number)
            live_call = next(c for c in service["liveCalls"] if c["id"] == call_id)
            live_call.update(state="Answered", agent=agent_number, answered=iso(now()))
            self.save()

    def end_live_call(self, public_number, call_id):
        """End a call: it leaves the queue and counts as answered (if it was) or lost."""
        with self._lock:
            service, queue = self.hunting_queue(public_number)
            live_call = next(c for c in service["liveCalls"] if c["id"] == call_id)
            service["liveCalls"].remove(live_call)
            moment = now()
            begin = datetime.datetime.fromisoformat(live_call["begin"])
            if live_call["answered"]:
                answered = datetime.datetime.fromisoformat(live_call["answered"])
                self.count(
                    queue,
                    answered=1,
                    waiting_seconds=(answered - begin).total_seconds(),
                    talk_seconds=(moment - answered).total_seconds(),
                )
            else:
                self.count(queue, lost=1, waiting_seconds=(moment - begin).total_seconds())
            self.save()

    def count(self, queue, answered=0, lost=0, waiting_seconds=0, talk_seconds=0):
        """Add to a queue's live statistics."""
        statistics = queue["statistics"]
        statistics["callsAnswered"] += answered
        statistics["callsLost"] += lost
        statistics["callsTotal"] += answered + lost
        statistics["totalWaitingDuration"] += int(waiting_seconds)
        statistics["totalCallDuration"] += int(talk_seconds)

    def add_statistics(self, public_number, answered=0, lost=0, waiting_seconds=0, talk_seconds=0):
        """Add past calls to the statistics of a group's queue."""
        with self._lock:
            self.count(self.hunting_queue(public_number)[1], answered, lost, waiting_seconds, talk_seconds)
            self.save()

    def reset_statistics(self, public_number, at=None):
        """Zero the counters of a group's queue, lastReset = at (default now)."""
        with self._lock:
            queue = self.hunting_queue(public_number)[1]
            queue["statistics"] = {
                "callsAnswered": 0,
                "callsLost": 0,
                "callsTotal": 0,
                "totalCallDuration": 0,
                "totalWaitingDuration": 0,
                "lastReset": iso(at),
            }
            self.save()
