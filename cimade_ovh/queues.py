"""A queue group's line: an OVH easyHunting queue, whose available agents are the volunteers.

The page opens a period for the day (a time condition) and recognises its own periods by their shape
alone: policy available, from exactly 02:00:00 (PERIOD_FROM), to a timeTo after 02:00 that ends in :59
seconds, one second before the planned end (18:00 → 17:59:59, the end of the day → 23:59:59). Inside,
times of day are seconds since midnight; OVH's "HH:MM:SS" is read and written only at its requests.
"""

from dataclasses import dataclass, field, replace

from .clock import END_OF_DAY, OVH_WEEKDAYS, PERIOD_FROM, format_hms, parse_hms, parse_ovh_datetime, time_of_day
from .ovhapi import QUEUE_COUNT, OvhFailure, as_failure, get_all, parallel, unless_gone
from .state import Call, LineState, Outcome, Refusal, Volunteer, verify

PERIOD_POLICY = "available"  # The policy of the periods the page opens: calls go to the queue.


def is_page_period(condition):
    """True for a time condition the page opened, by the shape the module's docstring states."""
    time_to = parse_hms(condition["timeTo"])
    return (
        condition["policy"] == PERIOD_POLICY
        and parse_hms(condition["timeFrom"]) == PERIOD_FROM
        and time_to % 60 == 59
        and time_to > PERIOD_FROM
    )


def period_to(end):
    """The timeTo, as OVH writes it, of the page's period for a planned end: one second before it."""
    return format_hms(end - 1)


def period_end(period):
    """The planned end a period of the page carries: one second after its timeTo."""
    return parse_hms(period["timeTo"]) + 1


QUEUE_ACTIONS = ("actionOnClosure", "actionOnClosureParam", "actionOnOverflow", "actionOnOverflowParam")
NAME_SEPARATOR = " – "  # Between the group's agent description and a volunteer's first name.


@dataclass
class QueueSnapshot:
    """The raw OVH objects of an easyHunting service that the page works with."""

    queue_id: int
    agents: list
    attached: list  # The queue's agent ids, in the order OVH lists them: their order in the queue.
    conditions: list
    calls: list
    settings: dict  # The time-condition settings: enable, out-of-hours and slot destinations.
    strategy: str
    actions: dict = field(default_factory=dict)  # The queue's QUEUE_ACTIONS: where calls go when closed or full.
    voicemail: dict = field(default_factory=dict)  # The group's voicemail, when read with the line (see voicemail.py).


class QueueLine:
    """An easyHunting queue: the volunteers are its available agents, during a period opened for the day."""

    def __init__(self, client, group, moment, memory=None):
        self.client = client
        self.group = group
        self.moment = moment
        self.today = OVH_WEEKDAYS[moment.weekday()]
        service = f"/telephony/{group.billing_account}/easyHunting/{group.number}"
        self.hunting = f"{service}/hunting"
        self.settings_path = f"{service}/timeConditions"
        self.conditions_path = f"{service}/timeConditions/conditions"
        self.memory = {} if memory is None else memory  # What a persistent process remembers of the group.

    def queue_id(self):
        """The id of the service's only queue, remembered for the next requests."""
        ids = self.client.get(f"{self.hunting}/queue")
        if len(ids) != 1:
            raise OvhFailure(
                "unexpected",
                f"{self.hunting}/queue lists {ids}",
                QUEUE_COUNT.format(count=len(ids)),
            )
        self.memory["queue_id"] = ids[0]
        return ids[0]

    def queue_lists(self, queue_id, with_calls=True):
        """The agents attached to a queue, its live calls (none read without `with_calls`) and itself, in parallel."""
        queue = f"{self.hunting}/queue/{queue_id}"
        return parallel(
            lambda: self.client.get(f"{queue}/agent"),
            lambda: get_all(self.client, f"{queue}/liveCalls") if with_calls else [],
            lambda: self.client.get(queue),
        )

    def read_queue(self, with_calls=True):
        """The queue's id, the agents attached to it, its live calls and the queue itself (strategy, actions).

        The queue's lists wait for its id only the first time: later they start with the id
        remembered, while the list of queues, read alongside, confirms it; they are read again
        if it changed.
        """
        remembered = self.memory.get("queue_id")
        queue_id, lists = parallel(
            self.queue_id, lambda: unless_gone(self.queue_lists, remembered, with_calls) if remembered else None
        )
        if queue_id != remembered or lists is None:
            lists = self.queue_lists(queue_id, with_calls)
        return queue_id, *lists

    def snapshot(self, with_calls=True, whole=False):
        """Read agents, queue members, strategy, time conditions and their settings, live calls, in parallel.

        Nothing waits for the queue id. Actions read the live calls too: they neither use nor verify
        them, but the page that follows an action shows them without asking OVH again.
        `whole` (actions): an agent or time condition listed, then not found, fails the read (see
        get_all); a live call that ended in between is left out, as on the page.
        """
        (queue_id, attached, calls, queue), agents, conditions, settings = parallel(
            lambda: self.read_queue(with_calls),
            lambda: get_all(self.client, f"{self.hunting}/agent", whole),
            lambda: get_all(self.client, self.conditions_path, whole),
            lambda: self.client.get(self.settings_path),
        )
        actions = {key: queue.get(key) for key in QUEUE_ACTIONS}
        return QueueSnapshot(queue_id, agents, attached, conditions, calls, settings, queue["strategy"], actions)

    def page_periods(self, snap):
        """The time conditions the page opened (see is_page_period), on any weekday."""
        return [c for c in snap.conditions if is_page_period(c)]

    def todays_period(self, snap):
        """The period the page opened for today, if any."""
        return next((c for c in self.page_periods(snap) if c["weekDay"] == self.today), None)

    def description(self, name):
        """The agent description on OVH: the group's, then the volunteer's first name if given."""
        return f"{self.group.agent_description}{NAME_SEPARATOR}{name}" if name else self.group.agent_description

    def first_name(self, agent):
        """The first name a volunteer gave, read back from their agent's description."""
        prefix = self.group.agent_description + NAME_SEPARATOR
        description = agent.get("description") or ""
        return description[len(prefix) :] if description.startswith(prefix) else ""

    def state(self, snap):
        """What the snapshot means for callers, now."""
        zone = self.moment.tzinfo
        calls = sorted(
            (
                Call(
                    waiting=c.get("state") != "Answered",
                    begin=parse_ovh_datetime(c.get("begin"), zone),
                    answered=parse_ovh_datetime(c.get("answered"), zone),
                    agent=c.get("agent") or "",
                )
                for c in snap.calls
            ),
            key=lambda call: call.begin or self.moment,
        )
        agents = {a["agentId"]: a for a in snap.agents}
        volunteers = [
            Volunteer(
                number=a["number"],
                name=self.first_name(a),
                agent_id=a["agentId"],
                call=next((c for c in calls if not c.waiting and c.agent == a["number"]), None),
            )
            for a in (agents[i] for i in snap.attached if i in agents)  # In the queue's order.
            if a["status"] == "available"
        ]
        elsewhere = self.elsewhere(snap)
        period = self.todays_period(snap)
        until = period_end(period) if period else None
        running = period is not None and time_of_day(self.moment) < until  # Ended: not running.
        # Before 02:00 the period is not open yet: OVH sends calls out of hours (unless the conditions are off).
        waiting = running and snap.settings.get("enable") and time_of_day(self.moment) < PERIOD_FROM
        for volunteer in volunteers:
            volunteer.until = until
        return LineState(
            running=running,
            volunteers=volunteers,
            rings_now=[v.number for v in volunteers] if elsewhere is None else [],
            calls=calls,
            open_without_volunteer=running and not volunteers,
            strategy=snap.strategy,
            elsewhere=elsewhere,
            conditions_off=not snap.settings.get("enable"),
            until=until,
            opens_at=PERIOD_FROM if waiting else None,
            interrupted=bool(self.interrupted(snap)),
            leftover=bool(self.page_periods(snap) or self.page_agents(snap)),
        )

    def elsewhere(self, snap):
        """Where a call goes now instead of the queue, as OVH's guide on time conditions says; None: to the queue.

        Only while the time conditions are enabled: then a call reaches the queue in a condition
        of policy "available" open now; in one of policy slot1-3, it goes to that slot's
        destination; outside every condition, to the out-of-hours one ("unavailable"). A
        destination is "voicemail", a number, or "" when none is set (the closing message).
        """
        if not snap.settings.get("enable"):
            return None
        clock = time_of_day(self.moment)
        policies = {
            c["policy"]
            for c in snap.conditions
            if c["weekDay"] == self.today and parse_hms(c["timeFrom"]) <= clock <= parse_hms(c["timeTo"])
        }
        if "available" in policies:
            return None
        slot = min(policies, default="unavailable")
        kind = snap.settings.get(f"{slot}Type")
        if kind == "number":
            return snap.settings.get(f"{slot}Number") or ""
        return kind or ""

    def read_state(self):
        """Read the queue's state from OVH."""
        return self.state(self.snapshot())

    def outcome(self, action, number, snap):
        """The Outcome of an action whose snapshot afterwards is `snap`."""
        return Outcome(action, number, self.state(snap), snap)

    def read_back(self, snap, agent_ids, attached=False, conditions=(), created=()):
        """The snapshot after our writes: `snap` with the agents and time conditions written read again.

        The rest is as `snap` read it just before, under the group's lock. The list of time
        conditions is read again, to see those deleted or added: one not in `snap` nor `created`
        (as OVH answered their creation) is read too. `attached`: the queue's members changed.
        """
        agents, members, listed, written = parallel(
            lambda: parallel(*[lambda i=i: self.client.get(f"{self.hunting}/agent/{i}") for i in agent_ids]),
            lambda: self.client.get(f"{self.hunting}/queue/{snap.queue_id}/agent") if attached else snap.attached,
            lambda: self.client.get(self.conditions_path),
            lambda: parallel(*[lambda i=i: self.client.get(f"{self.conditions_path}/{i}") for i in conditions]),
        )
        known = {c["conditionId"]: c for c in snap.conditions + list(created) + written}
        unknown = [i for i in listed if i not in known]
        new = parallel(*[lambda i=i: self.client.get(f"{self.conditions_path}/{i}") for i in unknown])
        known.update((c["conditionId"], c) for c in new)
        by_id = {a["agentId"]: a for a in snap.agents + agents}
        return replace(snap, agents=list(by_id.values()), attached=members, conditions=[known[i] for i in listed])

    def start(self, number, name="", ends=None):
        """Answer on `number`: start, change the number or the planned end, or join the volunteers; return the Outcome.

        With one volunteer at a time, a new number replaces the one on duty.
        With several, it joins them, up to the group's max_volunteers.
        `ends` gives the volunteers' planned ends today ({number: time of day}, `number`'s
        included): today's period closes at the latest of those on duty.
        """
        ends = ends or {}
        snap = self.snapshot(whole=True)
        before = self.state(snap)
        on_duty = before.numbers if before.running else self.interrupted(snap)
        current = next((v.name for v in before.volunteers if v.number == number), "")
        name = name or current  # No name typed: a volunteer on duty, or waiting for the line to reopen, keeps theirs.
        if number in on_duty and before.running and (self.group.max_volunteers > 1 or on_duty == [number]):
            same_end = period_end(self.todays_period(snap)) == self.until(snap, on_duty, ends)
            if same_end and name == current:
                return Outcome("on-duty", number, before, snap)
            changing = "-".join((["name"] if name != current else []) + ([] if same_end else ["ends"]))
            outcome = self.staffed(changing, snap, on_duty, ends, number, name)
            # The name as read back: an agent of IT's keeps its description.
            renamed = next(v.name for v in outcome.state.volunteers if v.number == number) != current
            outcome.action = "on-duty"
            outcome.changed = tuple(what for what, did in (("name", renamed), ("ends", not same_end)) if did)
            return outcome
        if number in on_duty and not before.running:  # Interrupted, one of its volunteers presses again: it reopens.
            resumed = on_duty if self.group.max_volunteers > 1 else [number]
            outcome = self.staffed("resume", snap, resumed, ends, number, name)
            if next(v.name for v in outcome.state.volunteers if v.number == number) != current:  # As read back.
                outcome.action = "resume-name"
            return outcome
        if self.group.max_volunteers == 1 or not on_duty:
            return self.staffed("change" if on_duty else "start", snap, [number], ends, number, name)
        if len(on_duty) >= self.group.max_volunteers:
            raise Refusal(
                f"La permanence compte déjà {len(on_duty)} bénévoles, le maximum pour ce groupe. "
                "Pour répondre à la place de quelqu'un, retirez d'abord son numéro."
            )
        return self.staffed("add", snap, on_duty + [number], ends, number, name)

    def staffed(self, action, snap, numbers, ends, newcomer, name):
        """The Outcome of `action`, done by staff(); a failure on the way names the action, for the activity log."""
        try:
            return self.outcome(action, newcomer, self.staff(snap, numbers, ends, newcomer, name))
        except Exception as error:
            failure = as_failure(error)
            failure.action = action
            raise failure from error

    def until(self, snap, numbers, ends):
        """The planned end of `numbers`' permanence: the latest of theirs (today's period's for one not in `ends`)."""
        period = self.todays_period(snap)
        current = period_end(period) if period else END_OF_DAY
        return max(ends.get(n, current) for n in numbers)

    def interrupted(self, snap):
        """The volunteers of a permanence whose period an interrupted change closed and did not reopen.

        They are the page's agents (by their description) still available and
        in the queue while no period of the page is open on any day, whatever
        the group's max_volunteers; a period left from an earlier day means a
        forgotten permanence, not one to resume.
        """
        if self.page_periods(snap):
            return []
        return [a["number"] for a in self.page_agents(snap)]

    def page_agents(self, snap):
        """The page's own agents that are available and in the queue."""
        return [
            a
            for a in snap.agents
            if a["status"] == "available" and a["agentId"] in snap.attached and self.is_page_agent(a)
        ]

    def is_page_agent(self, agent):
        """True for an agent the page created, known by its description; IT's agents are never renamed or reused."""
        return (agent.get("description") or "").startswith(self.group.agent_description)

    def remove(self, is_leaving, ends=None, snap=None):
        """Stop sending calls to the volunteer whose number `is_leaving` is true for; the last one leaving finishes.

        The others' agents were set before the period opened and stay as they
        are, so the period stays open: only the leaving agent is logged out,
        then the period's end moves to the latest of the others' (`ends`, as in
        start); when that end has passed, the permanence finishes. An
        interrupted permanence stays closed, waiting for its volunteers left.
        A page left open may show a number no longer on duty: then nothing is done.
        `snap`: the snapshot just read (whole, see snapshot), if any.
        """
        snap = snap or self.snapshot(whole=True)
        before = self.state(snap)
        leaving = next((v for v in before.volunteers if is_leaving(v.number)), None)
        if leaving is None or not (before.running or before.interrupted):
            return Outcome("gone", "", before, snap)
        staying = [n for n in before.numbers if n != leaving.number]
        if not staying:
            return self.finish(snap)
        period = self.todays_period(snap) if before.running else None
        until = self.until(snap, staying, ends or {})
        if period and until <= time_of_day(self.moment):  # Those staying are past their end: say why it ends.
            outcome = self.finish(snap)
            outcome.action, outcome.number = "remove-finish", leaving.number
            return outcome
        agent = next(a for a in snap.agents if a["agentId"] == leaving.agent_id)
        self.set_status(agent, "loggedOut")
        moved = period is not None and period_end(period) != until
        if moved:
            self.client.put(f"{self.conditions_path}/{period['conditionId']}", timeTo=period_to(until))
        after = self.read_back(snap, [leaving.agent_id], conditions=[period["conditionId"]] if moved else [])
        state = self.state(after)
        verify(
            state.running == before.running
            and sorted(state.numbers) == sorted(staying)
            and state.until == (until if period else None),
            f"expected {staying} on duty until {format_hms(until)}, reads {state}",
        )
        return Outcome("remove", leaving.number, state, after)

    def staff(self, snap, numbers, ends, newcomer=None, name=""):
        """Make `numbers` the available agents, today's period open until their latest end; return the snapshot after.

        OVH forwards to an external number reliably only if the agent is set
        before the period opens: a change of the numbers during a permanence
        closes the period, switches the agents, then reopens it. A new end alone
        moves the period's end (after the agents are set, as an opening).
        """
        until = self.until(snap, numbers, ends)
        period = self.todays_period(snap)
        available = [a for a in snap.agents if a["status"] == "available" and a["agentId"] in snap.attached]
        changing = period is not None and sorted(a["number"] for a in available) != sorted(numbers)
        if changing:
            self.client.delete(f"{self.conditions_path}/{period['conditionId']}")
        others = [a for a in snap.agents if a["status"] == "available" and a["number"] not in numbers]
        # Every other period of the page goes: an earlier day's, and a second one of today (made by hand, or
        # by an action that once missed today's), which would hide the planned end or keep the line open.
        extra_periods = [p for p in self.page_periods(snap) if p is not period]
        logouts = [lambda a=a: self.set_status(a, "loggedOut") for a in others]
        parallel(*logouts, lambda: self.remove_periods(extra_periods))
        agents = {}
        for agent in snap.agents:
            agents.setdefault(agent["number"], agent)
        spares = [
            a
            for a in snap.agents
            if a["status"] != "available" and self.is_page_agent(a) and a["number"] not in numbers
        ]
        chosen = {n: agents.get(n) or (spares.pop() if spares else None) for n in numbers}
        written = parallel(
            *[lambda n=n: self.make_available(snap, chosen[n], n, name if n == newcomer else None) for n in numbers]
        )
        written = [a["agentId"] for a in others] + [i for i in written if i is not None]
        conditions, created = [], []
        if changing or period is None:
            created = [c for c in [self.open_period(until)] if c is not None]
        elif period_end(period) != until:
            self.client.put(f"{self.conditions_path}/{period['conditionId']}", timeTo=period_to(until))
            conditions = [period["conditionId"]]
        attached = any(i not in snap.attached for i in written)
        after = self.read_back(snap, written, attached, conditions, created)
        state = self.state(after)
        verify(
            state.running and sorted(state.numbers) == sorted(numbers) and state.until == until,
            f"expected {numbers} on duty until {format_hms(until)}, reads {state}",
        )
        return after

    def make_available(self, snap, agent, number, name):
        """Make `number` an available agent of the queue, with the group's settings; `name` None keeps its name.

        Return the agent's id if anything of it was written, else None.

        `agent` is the number's own agent, or a spare agent of the page given the number (so that
        agents do not pile up, one per number ever used), or None for a new agent.
        The description (and first name) is only written on the page's own agents, never on IT's.
        """
        settings = {"timeout": self.group.ring_timeout, "simultaneousLines": 1, "wrapUpTime": 0}
        if agent is None:
            agent = self.client.post(
                f"{self.hunting}/agent",
                number=number,
                status="available",
                description=self.description(name),
                **settings,
            )
        else:
            wanted = dict(settings, status="available", number=number)
            if self.is_page_agent(agent) and (name is not None or agent["number"] != number):
                wanted["description"] = self.description(name or "")
            if not any(agent.get(key) != value for key, value in wanted.items()):
                return None if agent["agentId"] in snap.attached else self.attach(snap, agent)
            self.client.put(f"{self.hunting}/agent/{agent['agentId']}", **wanted)
        return self.attach(snap, agent)

    def attach(self, snap, agent):
        """Put an agent in the queue, unless it is there; return its id."""
        if agent["agentId"] not in snap.attached:
            self.client.post(f"{self.hunting}/agent/{agent['agentId']}/queue", queueId=snap.queue_id, position=1)
        return agent["agentId"]

    def finish(self, snap=None):
        """Log the agents out, then close every period the page opened; return the Outcome.

        Agents go first: if OVH fails halfway, the period is open with nobody
        available, which the page shows, rather than volunteers left available.
        `snap`: the snapshot just read (whole, see snapshot), if any.
        """
        snap = snap or self.snapshot(whole=True)
        before = self.state(snap)
        available = [a for a in snap.agents if a["status"] == "available"]
        parallel(*[lambda a=a: self.set_status(a, "loggedOut") for a in available])
        self.remove_periods(self.page_periods(snap))
        after = self.read_back(snap, [a["agentId"] for a in available])
        state = self.state(after)
        verify(not state.running and not state.volunteers, f"expected nobody on duty, reads {state}")
        return Outcome("finish" if before.running or before.volunteers else "nothing", "", state, after)

    def set_status(self, agent, status):
        """Set an agent's status (available or loggedOut)."""
        self.client.put(f"{self.hunting}/agent/{agent['agentId']}", status=status)

    def remove_periods(self, periods):
        """Delete time conditions the page opened."""
        parallel(*[lambda p=p: self.client.delete(f"{self.conditions_path}/{p['conditionId']}") for p in periods])

    def open_period(self, until):
        """Open today's period until the planned end `until`; return it as OVH made it (None: it was there)."""
        import ovh.exceptions

        start = format_hms(PERIOD_FROM)
        period = {"weekDay": self.today, "timeFrom": start, "timeTo": period_to(until), "policy": PERIOD_POLICY}
        try:
            return self.client.post(self.conditions_path, **period)
        except ovh.exceptions.BadParametersError:
            conditions = get_all(self.client, self.conditions_path)
            if not any(all(c[key] == value for key, value in period.items()) for c in conditions):
                raise
            return None


CONDITIONS_OFF_STEP = (
    "Les plages horaires de la file d'appels sont désactivées chez OVH : la page ne peut ni ouvrir ni fermer "
    "la ligne. Dans l'espace client OVH, Télécom > Téléphonie > le numéro du groupe > Configuration > "
    "Plages horaires et fermetures : choisir « Activées » (« Activer l'utilisation des plages horaires » : Oui), "
    "puis Valider. La page n'y touche jamais elle-même."
)
