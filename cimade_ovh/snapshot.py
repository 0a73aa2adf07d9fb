"""index.py --check --snapshot: a copy of the groups' lines (read only, numbers made fictional) for the simulator."""

import json
import re
import shlex
from pathlib import Path

from . import clock
from .config import script_command
from .files import os_error_text
from .lines import LINE_KINDS
from .ovhapi import connect_ovh, explain_for_it, get_all, parallel

SNAPSHOT_SERVICES = {  # What the simulator reads of each service in a copy of the account.
    "line": ("line", "options"),
    "redirect": ("destination",),
    "easyHunting": (
        "service", "hunting", "queues", "agents", "agentQueues", "timeConditions", "conditions", "liveCalls",
    ),
}  # fmt: skip


def snapshot_problem(state):
    """What keeps `state` from being a copy of the account as --check --snapshot writes it, in French; else None."""

    def lacks(value, keys, where):
        if not isinstance(value, dict):
            return f"{where} n'est pas un objet JSON"
        missing = [key for key in keys if key not in value]
        return f"{where} n'a pas de « {missing[0]} »" if missing else None

    problem = lacks(state, ("lastIds", "billingAccounts"), "le fichier") or lacks(
        state["billingAccounts"], (), "« billingAccounts »"
    )
    if problem:
        return problem
    for name, account in state["billingAccounts"].items():
        problem = lacks(account, ("info", *SNAPSHOT_SERVICES), f"le compte {name}")
        if problem:
            return problem
        for kind, keys in SNAPSHOT_SERVICES.items():
            services = account[kind]
            problem = lacks(services, (), f"« {kind} » du compte {name}") or next(
                filter(None, (lacks(s, keys, f"le service {n} du compte {name}") for n, s in services.items())), None
            )
            if problem:
                return problem
    return None


FORWARDS = tuple(
    f"forward{kind}{what}"
    for kind in ("Unconditional", "NoReply", "Busy", "Backup")
    for what in ("", "Nature", "Number")
)
# What a copy keeps of each OVH object: the fields the page and the simulator use, and settings without a
# person in them. Everything else stays at OVH: descriptions, e-mails, IP addresses, passwords, offers.
KEPT = {
    "line": ("serviceName", "serviceType"),
    "options": (*FORWARDS, "forwardNoReplyDelay", "defaultVoicemail"),
    "redirect": ("serviceName", "featureType", "serviceType", "destination"),
    "service": (
        "serviceName", "featureType", "serviceType", "strategy", "maxWaitTime", "queueSize", "isCCS",
        "anonymousRejection", "showCallerNumber", "statusIvrEnabled", "toneOnOpening", "toneOnClosing", "toneOnHold",
        "voicemail",
    ),
    "queue": (
        "queueId", "strategy", "maxMember", "maxWaitTime", "actionOnClosure", "actionOnClosureParam",
        "actionOnOverflow", "actionOnOverflowParam", "followCallForwards", "soundOnHold", "statistics",
    ),
    "agent": ("agentId", "number", "status", "timeout", "simultaneousLines", "wrapUpTime", "type", "breakStatus"),
}  # fmt: skip


def kept(kind, item):
    """The fields of an OVH object that a copy keeps (KEPT); the simulator answers null for the others."""
    return {key: item[key] for key in KEPT[kind] if key in item}


FICTIONAL_PREFIXES = ("003319900", "003326191", "003335301", "003346571", "003353649", "003363998")  # ARCEP's.


class Fictional:
    """Replaces phone numbers by fictional ones (06 39 98 1x xx), always the same for the same number.

    The groups' public numbers and numbers already fictional are kept.
    """

    def __init__(self, kept):
        self.kept = set(kept)
        self.given = {}

    def __call__(self, value):
        """`value` with every phone number in it (in any dict or list) made fictional."""
        if isinstance(value, dict):
            return {self(k): None if "assword" in k else self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, str):
            return value
        if not re.fullmatch(r"00\d{6,15}", value):
            return self.other_form(value)
        if value in self.kept or value.startswith(FICTIONAL_PREFIXES):
            return value
        return self.given.setdefault(value, f"0033639981{len(self.given):03}")

    def other_form(self, value):
        """A text that is a French number written otherwise (+33 6…, 06.…) made fictional; any other text as is."""
        from .phones import PhoneError, normalize_phone

        if not re.fullmatch(r"[+(]?\d[\d .()/-]{7,}", value.strip()):
            return value
        try:
            return self(normalize_phone(value))
        except PhoneError:
            return value


def snapshot_group(client, group):
    """What OVH has of a group's line, as the simulator's state of its service(s): {kind: {name: seed}}."""
    account = f"/telephony/{group.billing_account}"
    if group.kind == "redirect":
        redirect = client.get(f"{account}/redirect/{group.number}")
        sip_line = redirect["destination"]
        line, options = parallel(
            lambda: client.get(f"{account}/line/{sip_line}"), lambda: client.get(f"{account}/line/{sip_line}/options")
        )
        return {
            "redirect": {group.number: kept("redirect", redirect)},
            "line": {sip_line: {"line": kept("line", line), "options": kept("options", options)}},
        }
    service = f"{account}/easyHunting/{group.number}"
    hunting = f"{service}/hunting"
    seed, queue_ids, agents, conditions, settings = parallel(
        lambda: client.get(service),
        lambda: client.get(f"{hunting}/queue"),
        lambda: get_all(client, f"{hunting}/agent"),
        lambda: get_all(client, f"{service}/timeConditions/conditions"),
        lambda: client.get(f"{service}/timeConditions"),
    )
    queues = parallel(
        *[
            lambda q=q: {
                **client.get(f"{hunting}/queue/{q}"),
                "statistics": client.get(f"{hunting}/queue/{q}/liveStatistics"),
            }
            for q in queue_ids
        ]
    )
    links = parallel(*[lambda a=a: get_all(client, f"{hunting}/agent/{a['agentId']}/queue") for a in agents])
    return {
        "easyHunting": {
            group.number: {
                "service": kept("service", seed),
                "hunting": {"name": group.name},
                "queues": [kept("queue", queue) for queue in queues],
                "agents": [{**kept("agent", a), "description": anonymous_description(group, a)} for a in agents],
                "agentQueues": [
                    {"agentId": a["agentId"], "queueId": link["queueId"], "position": link["position"]}
                    for a, found in zip(agents, links, strict=True)
                    for link in found
                ],
                "timeConditions": settings,
                "conditions": conditions,
                "liveCalls": [],
            }
        }
    }


def anonymous_description(group, agent):
    """An agent's description without a person's name: the page's own, else a neutral one."""
    if (agent.get("description") or "").startswith(group.agent_description):
        return group.agent_description
    return f"Agent {agent['agentId']}"


def line_summary(state):
    """What a group's page says of its line, numbers and live calls aside: to compare OVH with the copy."""
    return {
        "en cours": state.running, "bénévoles": len(state.volunteers), "sonnent": len(state.rings_now),
        "stratégie": state.strategy,
        "ailleurs": state.elsewhere if state.elsewhere in (None, "voicemail", "") else "un numéro",
        "plages désactivées": state.conditions_off, "fin": "" if state.until is None else clock.format_hms(state.until),
    }  # fmt: skip


def replay_departures(client, settings, state):
    """The groups whose line the simulator, given the copy `state`, does not read as OVH does: [(slug, detail)]."""
    from .simulator import (
        DEMO_APPLICATION_KEY,
        DEMO_APPLICATION_SECRET,
        DEMO_CONSUMER_KEY,
        FakeOVH,
    )

    fake = FakeOVH(state).start()
    try:
        copy = connect_ovh(fake.url, DEMO_APPLICATION_KEY, DEMO_APPLICATION_SECRET, DEMO_CONSUMER_KEY)
        moment, departures = clock.now(settings.timezone), []
        for group, copied_group in zip(settings.groups.values(), on_the_copy(settings, state), strict=True):
            try:
                real, copied = (line_summary(LINE_KINDS[group.kind](c, g, moment).read_state())
                                for c, g in ((client, group), (copy, copied_group)))  # fmt: skip
            except Exception as error:  # OVH failing now, or a copy the simulator cannot read.
                departures.append((group.slug, f"relecture impossible : {explain_for_it(error)}"))
                continue
            differing = [f"{key} {real[key]} chez OVH, {copied[key]} dans la copie" for key in real
                         if real[key] != copied[key]]  # fmt: skip
            if differing:
                departures.append((group.slug, " ; ".join(differing)))
        return departures
    finally:
        fake.stop()


def copied_accounts(state):
    """The billing account of each public number in a copy: {number: account}, to serve lines.ini's groups on it."""
    return {
        number: name
        for name, account in state["billingAccounts"].items()
        for kind in ("redirect", "easyHunting")
        for number in account[kind]
    }


def on_the_copy(settings, state):
    """The groups of `settings` as they are named in the copy `state` (its fictional billing accounts)."""
    accounts = copied_accounts(state)
    return [
        group._replace(billing_account=accounts.get(group.number, group.billing_account))
        for group in settings.groups.values()
    ]


def write_snapshot(client, settings, path):
    """Write what OVH has of every group's line (read only) to `path` in the simulator's state format; return 0 or 1.

    Billing accounts, named after the OVH customer's handle, get fictional names (copied_accounts finds them).
    """
    fictional = Fictional(g.number for g in settings.groups.values())
    accounts, names = {}, {}
    for group in settings.groups.values():
        name = names.setdefault(group.billing_account, f"cp{len(names) + 1:05}-ovh-1")
        account = accounts.setdefault(
            name,
            {"info": {"billingAccount": name, "description": f"Copie {len(names)}", "status": "enabled"},
             "line": {}, "redirect": {}, "easyHunting": {}},
        )  # fmt: skip
        try:
            for kind, services in snapshot_group(client, group).items():
                account[kind].update(fictional(services))
        except Exception as error:
            print(f"ERREUR [{group.slug}] copie impossible : {explain_for_it(error)}")
            return 1
    ids = {"agentId": 0, "queueId": 0, "conditionId": 0}
    for account in accounts.values():
        for service in account["easyHunting"].values():
            for kind, items in (("agentId", "agents"), ("queueId", "queues"), ("conditionId", "conditions")):
                ids[kind] = max([ids[kind], *(item[kind] for item in service[items])])
    state = {
        "lastIds": {"applicationId": 2001, "credentialId": 3001, "liveCallId": 7000, **ids},
        "billingAccounts": accounts,
    }
    try:
        Path(path).write_text(json.dumps(state, indent=1, ensure_ascii=False), encoding="utf-8")
    except OSError as error:
        print(f"ERREUR : {path} : écriture impossible ({os_error_text(error)}) ; choisissez un autre fichier.")
        return 1
    departures = replay_departures(client, settings, state)
    for slug, detail in departures:
        print(f"ERREUR [{slug}] le simulateur ne lit pas la copie comme OVH lit la ligne : {detail}")
    if departures:
        return 1
    serve = script_command("index.py", "--demo", "--state", shlex.quote(str(path)))
    print(f"Copie du compte (lecture seule, numéros rendus fictifs) dans {path} : {serve} sert la page dessus.")
    return 0
