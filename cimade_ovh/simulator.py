#!/usr/bin/env python3
"""A simulator of the OVH API 1.0, limited to what cimade-ovh uses, for tests and demonstrations.

Routes, parameter types and object shapes come from ovh-api-schema.json, beside this file, at run time.
From Python: `FakeOVH().start()` and give its `url` to cimade_ovh.ovhapi.connect_ovh().
From a shell: `python3 cimade_ovh/simulator.py --port 8081` prints an ovh.conf and serves the demo account.
"""

import argparse
import copy
import dataclasses
import datetime
import hashlib
import hmac
import html
import http
import http.server
import ipaddress
import json
import os
import random
import re
import secrets
import signal
import socketserver
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zoneinfo
from pathlib import Path

SCHEMA_PATH = Path(__file__).resolve().with_name("ovh-api-schema.json")
BASE_PATH = "/1.0"
VALIDATION_PATH = "/auth/"
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
TIMESTAMP_TOLERANCE = 180  # seconds a signed request's X-Ovh-Timestamp may be away from the server's clock
HANG_SECONDS = 60  # longest a "hang" fault holds a request

DEMO_APPLICATION_KEY = "cimadeDemoAppKey"
DEMO_APPLICATION_SECRET = "cimadeDemoApplicationSecret00001"
DEMO_CONSUMER_KEY = "cimadeDemoConsumerKeyUnlimited01"
DEMO_BILLING_ACCOUNT = "ab12345-ovh-1"
OTHER_BILLING_ACCOUNT = "zz98765-ovh-1"
LYON_NUMBER = "0033465710000"
LILLE_NUMBER = "0033353010000"
LILLE_SIP_LINE = "0033353010001"

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
FAULT_KINDS = ("500", "503", "invalid_credential", "drop", "hang", "gone")  # gone: deleted by someone else, just now


# --- Schema ---


class ApiError(Exception):
    """An error answer of the API: HTTP status, message and, for a 403, OVH's errorCode."""

    def __init__(self, status, message, error_code=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code

    def body(self):
        """Return the JSON body OVH sends with this error."""
        body = {"message": self.message, "httpCode": f"{self.status} {http.HTTPStatus(self.status).phrase}"}
        if self.error_code:
            body["errorCode"] = self.error_code
        return body


def invalid(name, problem):
    """Return the 400 error for a parameter or property that breaks the schema."""
    return ApiError(400, f"Invalid parameter: property '{name}' {problem}")


def is_time(value):
    """Tell whether `value` is a valid "HH:MM:SS"."""
    found = re.fullmatch(r"(\d\d):(\d\d):(\d\d)", value)
    return bool(found) and int(found[1]) < 24 and int(found[2]) < 60 and int(found[3]) < 60


def is_datetime(value):
    """Tell whether `value` is an ISO 8601 date and time."""
    try:
        datetime.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_ip_block(value):
    """Tell whether `value` is an IP address or network."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


PRIMITIVES = {
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "password": lambda v: isinstance(v, str),
    "uuid": lambda v: isinstance(v, str),
    "phoneNumber": lambda v: isinstance(v, str) and re.fullmatch(r"00\d{6,15}", v) is not None,
    "time": lambda v: isinstance(v, str) and is_time(v),
    "datetime": lambda v: isinstance(v, str) and is_datetime(v),
    "ipBlock": lambda v: isinstance(v, str) and is_ip_block(v),
    "map[string]string": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
}


class Schema:
    """The OVH API description: which routes exist, and what their parameters and objects look like."""

    def __init__(self, path=SCHEMA_PATH):
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        self.models = data["models"]
        self.routes = []
        for api in data["apis"]:
            parts = []
            for segment in api["path"].strip("/").split("/"):
                name = re.fullmatch(r"\{(\w+)\}", segment)
                parts.append(f"(?P<{name[1]}>[^/]+)" if name else re.escape(segment))
            operations = {operation["httpMethod"]: operation for operation in api["operations"]}
            self.routes.append((re.compile("/" + "/".join(parts)), api["path"], operations))
        self.routes.sort(key=lambda route: route[1].count("{"))

    def match(self, path):
        """Return (template, {method: operation}, raw path parameters) for a path after /1.0, or None."""
        for pattern, template, operations in self.routes:
            found = pattern.fullmatch(path)
            if found:
                return template, operations, found.groupdict()
        return None

    def parse_text(self, type_name, text, name):
        """Turn a path or query string value into its schema type."""
        model = self.models.get(type_name, {})
        if type_name == "long":
            if not re.fullmatch(r"-?\d+", text):
                raise invalid(name, "is not a valid long")
            return int(text)
        if type_name == "boolean":
            if text not in ("true", "false"):
                raise invalid(name, "is not a valid boolean")
            return text == "true"
        if "enum" in model and text not in model["enum"]:
            raise invalid(name, f"is not a valid {type_name} ({', '.join(model['enum'])})")
        return text

    def path_parameters(self, operation, raw):
        """Type the path parameters of a matched route."""
        types = {p["name"]: p["dataType"] for p in operation["parameters"] if p["paramType"] == "path"}
        return {name: self.parse_text(types[name], urllib.parse.unquote(text), name) for name, text in raw.items()}

    def query_parameters(self, operation, query):
        """Type the query string: only declared parameters, required ones present."""
        declared = {p["name"]: p for p in operation["parameters"] if p["paramType"] == "query"}
        values = {}
        for name, text in urllib.parse.parse_qsl(query, keep_blank_values=True):
            if name not in declared:
                raise invalid(name, "is not a parameter of this call")
            values[name] = self.parse_text(declared[name]["dataType"], text, name)
        for name, parameter in declared.items():
            if parameter.get("required") and name not in values:
                raise invalid(name, "is missing")
        return values

    def body(self, operation, method, raw):
        """Parse and check a request body against the operation's body parameters."""
        parameters = [p for p in operation["parameters"] if p["paramType"] == "body"]
        if not parameters:
            return None
        try:
            value = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ApiError(400, "Invalid JSON received") from None
        if not isinstance(value, dict):
            raise ApiError(400, "Invalid parameter: the body must be a JSON object")
        # The ovh client sends null for optional arguments left out: in a POST, null means "not given".
        creating = method == "POST"
        whole = [p for p in parameters if not p.get("name")]
        if whole:
            return self.check_object(whole[0]["dataType"], value, "", top=True, creating=creating)
        declared = {p["name"]: p for p in parameters}
        checked = {}
        for name, item in value.items():
            if name not in declared:
                raise invalid(name, "is not a parameter of this call")
            if item is None and creating and not declared[name].get("required"):
                continue
            self.check(declared[name]["dataType"], item, name)
            checked[name] = item
        for name, parameter in declared.items():
            if parameter.get("required") and name not in checked:
                raise invalid(name, "is missing")
        return checked

    def check_object(self, model_name, value, prefix, top=False, creating=False):
        """Check a JSON object against a model: known properties, right types, and no readOnly one at the top."""
        if not isinstance(value, dict):
            raise invalid(prefix or model_name, f"is not a valid {model_name}")
        properties = self.models[model_name]["properties"]
        checked = {}
        for name, item in value.items():
            full_name = prefix + name
            if name not in properties:
                raise invalid(full_name, f"does not exist in {model_name}")
            prop = properties[name]
            if top and prop.get("readOnly"):
                raise invalid(full_name, "is read-only")
            if item is None and creating and not prop.get("required") and not prop.get("canBeNull"):
                continue
            self.check(prop["type"], item, full_name, prop.get("canBeNull", False))
            checked[name] = item
        for name, prop in properties.items():
            if prop.get("required") and name not in checked:
                raise invalid(prefix + name, "is missing")
        return checked

    def check(self, type_name, value, name, nullable=False):
        """Raise a 400 unless `value` is a valid `type_name`."""
        if value is None:
            if not nullable:
                raise invalid(name, "can not be null")
            return
        if type_name.endswith("[]"):
            if not isinstance(value, list):
                raise invalid(name, f"is not a valid {type_name}")
            for index, item in enumerate(value):
                self.check(type_name[:-2], item, f"{name}[{index}]")
            return
        model = self.models.get(type_name)
        if model is None:
            if type_name in PRIMITIVES and not PRIMITIVES[type_name](value):
                raise invalid(name, f"is not a valid {type_name}")
        elif "enum" in model:
            text = str(value) if model.get("enumType") == "long" and PRIMITIVES["long"](value) else value
            if text not in model["enum"]:
                raise invalid(name, f"is not a valid {type_name} ({', '.join(model['enum'])})")
        else:
            self.check_object(type_name, value, name + ".")

    def render(self, type_name, value):
        """Shape a stored value as the API answers it: every property of the model, null when unset."""
        if value is None:
            return None
        if type_name.endswith("[]"):
            return [self.render(type_name[:-2], item) for item in value]
        model = self.models.get(type_name, {})
        if "properties" in model:
            return {name: self.render(prop["type"], value.get(name)) for name, prop in model["properties"].items()}
        return copy.deepcopy(value)


# --- Account state ---


def now():
    """Return the current time in Paris, to the second."""
    return datetime.datetime.now(PARIS).replace(microsecond=0)


def in_paris(moment):
    """Return an aware Paris datetime: now if None, naive ones taken as Paris time."""
    if moment is None:
        return now()
    if moment.tzinfo is None:
        return moment.replace(tzinfo=PARIS)
    return moment.astimezone(PARIS)


def iso(moment):
    """Format a datetime as OVH does: ISO 8601, Paris offset, seconds."""
    return in_paris(moment).isoformat(timespec="seconds")


def price(value):
    """Return an order.Price in euros."""
    return {
        "currencyCode": "EUR",
        "priceInUcents": int(value * 100_000_000),
        "text": f"{value:.2f} €",
        "value": float(value),
    }


def billing_account(name, description, lines=(), redirects=(), hunting=()):
    """Return the seed of a billing account holding the given services."""
    return {
        "info": {
            "billingAccount": name,
            "description": description,
            "status": "enabled",
            "trusted": True,
            "hasSpecialNumbers": False,
            "hiddenExternalNumber": False,
            "overrideDisplayedNumber": False,
            "allowedOutplan": price(50),
            "creditThreshold": price(50),
            "currentOutplan": price(0),
            "securityDeposit": price(0),
            "iam": None,
        },
        "line": {line["line"]["serviceName"]: line for line in lines},
        "redirect": {redirect["serviceName"]: redirect for redirect in redirects},
        "easyHunting": {service["service"]["serviceName"]: service for service in hunting},
    }


def sip_line(number, description, display_number, voicemail_number):
    """Return the seed of a SIP line (telephony.Line and its telephony.LineOptions), not forwarded."""
    return {
        "line": {
            "serviceName": number,
            "description": description,
            "serviceType": "line",
            "simultaneousLines": 2,
            "canChangePassword": True,
            "deviceSlot": 1,
            "infrastructure": "sip",
            "isAttachedToOtherLinesPhone": False,
            "offers": ["voip.main.offer.individual"],
            "getPublicOffer": {
                "name": "voip.main.offer.individual",
                "description": "Individual SIP line",
                "price": price(1.19),
            },
            "notifications": {"logs": {"email": None, "frequency": "Never", "sendIfNull": False}},
        },
        "options": {
            "absentSubscriber": False,
            "anonymousCallRejection": False,
            "callRestrictionIncoming": False,
            "callRestrictionOutgoing": False,
            "callWaiting": True,
            "codecs": "g711a,g722",
            "defaultVoicemail": number,
            "displayNumber": display_number,
            "doNotDisturb": False,
            "domain": "sip3.ovh.fr",
            "forwardBackup": False,
            "forwardBackupNature": "number",
            "forwardBackupNumber": "",
            "forwardBusy": False,
            "forwardBusyNature": "number",
            "forwardBusyNumber": "",
            "forwardNoReply": False,
            "forwardNoReplyDelay": 20,
            "forwardNoReplyNature": "number",
            "forwardNoReplyNumber": "",
            "forwardUnconditional": False,
            "forwardUnconditionalNature": "number",
            "forwardUnconditionalNumber": "",
            "identificationRestriction": False,
            "intercom": "no",
            "ipRestrictions": [],
            "language": "French",
            "lockOutCall": False,
            "lockOutCallPassword": None,
            "recordOutgoingCallsBeta": False,
            "toneOnCallWaitingSoundId": None,
            "toneOnHoldSoundId": None,
            "toneRingbackSoundId": None,
            "voicemailExternalNumber": voicemail_number,
            "voicemailInternalNumber": "8888",
        },
    }


def redirect(number, destination, description):
    """Return the seed of a redirect service (telephony.Redirect) to a SIP line."""
    return {
        "serviceName": number,
        "description": description,
        "featureType": "redirect",
        "serviceType": "alias",
        "destination": destination,
    }


def agent(agent_id, number, description):
    """Return the seed of a logged-out external agent with the settings cimade-ovh uses."""
    return {
        "agentId": agent_id,
        "number": number,
        "description": description,
        "status": "loggedOut",
        "timeout": 10,
        "simultaneousLines": 1,
        "wrapUpTime": 0,
        "type": "external",
        "breakStatus": None,
    }


def call_in_queue(call_id, queue, public_number, caller, begin, answered=None, agent=None):
    """Return a live call of a queue: waiting, or answered by an agent's number."""
    return {
        "id": call_id,
        "queueId": queue["queueId"],
        "queue": queue["description"],
        "begin": iso(begin),
        "answered": iso(answered) if answered else None,
        "end": None,
        "agent": agent or "",
        "callerIdName": "",
        "callerIdNumber": caller,
        "destinationNumber": public_number,
        "onHold": False,
        "state": "Answered" if answered else "Waiting",
    }


def lyon_hunting():
    """Return the seed of Lyon's easyHunting group: one queue, two agents, Monday 14:00-16:00 open."""
    return {
        "service": {
            "serviceName": LYON_NUMBER,
            "description": "Permanence Lyon",
            "featureType": "easyHunting",
            "serviceType": "alias",
            "isCCS": False,
            "anonymousRejection": False,
            "maxWaitTime": 600,
            "queueSize": 10,
            "showCallerNumber": "caller",
            "statusIvrEnabled": False,
            "strategy": "sequentiallyByAgentOrder",
            "toneOnClosing": None,
            "toneOnHold": None,
            "toneOnOpening": None,
            "voicemail": None,
        },
        "hunting": {"name": "Permanence Lyon", "crmUrlTemplate": None, "g729": False, "statusIvrEnabled": False},
        "queues": [
            {
                "queueId": 5001,
                "description": "File Lyon",
                "strategy": "sequentiallyByAgentOrder",
                "maxMember": 10,
                "maxWaitTime": 600,
                "actionOnClosure": None,
                "actionOnClosureParam": None,
                "actionOnOverflow": None,
                "actionOnOverflowParam": None,
                "askForRecordDisabling": False,
                "confirmKey": None,
                "followCallForwards": True,
                "record": False,
                "recordDisablingDigit": None,
                "recordDisablingLanguage": None,
                "soundOnHold": None,
                "statistics": {
                    "callsAnswered": 12,
                    "callsLost": 3,
                    "callsTotal": 15,
                    "totalCallDuration": 3600,
                    "totalWaitingDuration": 450,
                    "lastReset": "2024-05-06T00:00:00+02:00",
                },
            }
        ],
        "agents": [agent(4001, "0033639980011", "Volunteer 1"), agent(4002, "0033639980012", "Volunteer 2")],
        "agentQueues": [
            {"agentId": 4001, "queueId": 5001, "position": 1},
            {"agentId": 4002, "queueId": 5001, "position": 2},
        ],
        "timeConditions": {
            "enable": True,
            "slot1Number": None,
            "slot1Type": None,
            "slot2Number": None,
            "slot2Type": None,
            "slot3Number": None,
            "slot3Type": None,
            "unavailableNumber": None,
            "unavailableType": "voicemail",
        },
        "conditions": [
            {
                "conditionId": 6001,
                "weekDay": "monday",
                "timeFrom": "14:00:00",
                "timeTo": "16:00:00",
                "policy": "available",
            }
        ],
        "liveCalls": [],
    }


def demo_authentication():
    """Return the demo application and its validated, unlimited consumer key."""
    return {
        "applications": [
            {
                "applicationId": 2001,
                "applicationKey": DEMO_APPLICATION_KEY,
                "applicationSecret": DEMO_APPLICATION_SECRET,
                "name": "cimade-ovh",
                "description": "Permanence page of La Cimade (demo)",
            }
        ],
        "credentials": [
            {
                "credentialId": 3001,
                "applicationId": 2001,
                "consumerKey": DEMO_CONSUMER_KEY,
                "status": "validated",
                "rules": [{"method": m, "path": "/*"} for m in ("GET", "POST", "PUT", "DELETE")],
                "creation": "2024-01-15T10:00:00+01:00",
                "expiration": None,
                "lastUse": None,
                "allowedIPs": None,
                "ovhSupport": False,
                "redirection": None,
                "credentialToken": None,
            }
        ],
    }


def demo_account():
    """Return a fresh seed of the demo account: Lyon's queue and Lille's redirect, plus a second billing account."""
    return {
        "lastIds": {
            "applicationId": 2001,
            "credentialId": 3001,
            "agentId": 4002,
            "queueId": 5001,
            "conditionId": 6001,
            "liveCallId": 7000,
        },
        "me": {
            "nichandle": "xx12345-ovh",
            "email": "permanences@example.org",
            "firstname": "Camille",
            "name": "Exemple",
            "organisation": "La Cimade (demo)",
            "legalform": "association",
            "country": "FR",
            "language": "fr_FR",
            "currency": {"code": "EUR", "symbol": "€"},
            "ovhCompany": "ovh",
            "ovhSubsidiary": "FR",
            "state": "complete",
            "address": "1 rue de l'Exemple",
            "zip": "69000",
            "city": "Lyon",
            "area": None,
            "phone": "+33.465710001",
            "phoneCountry": "FR",
            "phoneType": "landline",
            "fax": None,
            "birthCity": None,
            "birthDay": None,
            "companyNationalIdentificationNumber": None,
            "complementaryAddress": None,
            "corporationType": None,
            "customerCode": "0000-0000-01",
            "italianSDI": None,
            "kycValidated": True,
            "nationalIdentificationNumber": None,
            "purposeOfPurchase": None,
            "sex": None,
            "spareEmail": None,
            "vat": None,
        },
        **demo_authentication(),
        "billingAccounts": {
            DEMO_BILLING_ACCOUNT: billing_account(
                DEMO_BILLING_ACCOUNT,
                "La Cimade - help lines (demo)",
                lines=[sip_line(LILLE_SIP_LINE, "Permanence Lille (SIP)", LILLE_NUMBER, "0033353010099")],
                redirects=[redirect(LILLE_NUMBER, LILLE_SIP_LINE, "Permanence Lille")],
                hunting=[lyon_hunting()],
            ),
            OTHER_BILLING_ACCOUNT: billing_account(
                OTHER_BILLING_ACCOUNT,
                "Another customer's account",
                lines=[sip_line("0033465719901", "Other SIP line", "0033465719900", "0033465719999")],
                redirects=[redirect("0033465719900", "0033465719901", "Other redirect")],
            ),
        },
    }


def statistics_history(today, days=30, seed=2026):
    """Return a month of plausible records of Lyon's queue up to `today`, in stats.py's format, for the demo.

    One record an hour. Calls come in the daytime, mostly on weekday afternoons,
    answered by the demo agents. OVH resets the counters 9 days before `today`,
    and 17 days before it nothing was recorded (a server down).
    """
    rng = random.Random(seed)
    queue = lyon_hunting()["queues"][0]
    statistics = dict(queue["statistics"], lastReset=iso(today - datetime.timedelta(days=days + 40)))
    reset_day = (today - datetime.timedelta(days=9)).date()
    missing_day = (today - datetime.timedelta(days=17)).date()
    records = []
    for back in range(days - 1, -1, -1):
        day = (today - datetime.timedelta(days=back)).date()
        agent_number = ("0033639980011", "0033639980012")[day.toordinal() % 2]
        for hour in range(24):
            moment = datetime.datetime(day.year, day.month, day.day, hour, tzinfo=PARIS)
            if moment > today:
                break
            if day == reset_day and hour == 9:
                statistics = dict.fromkeys(statistics, 0) | {"lastReset": iso(moment - datetime.timedelta(minutes=40))}
            busy = day.weekday() < 5 and 14 <= hour <= 18
            choices = (0, 1, 1, 2, 3) if busy else (0, 0, 0, 0, 1) if 9 <= hour <= 19 else (0,)
            for _ in range(rng.choice(choices)):
                statistics["callsTotal"] += 1
                if rng.random() < 0.85:
                    statistics["callsAnswered"] += 1
                    statistics["totalWaitingDuration"] += rng.randint(5, 60)
                    statistics["totalCallDuration"] += rng.randint(120, 1200)
                else:
                    statistics["callsLost"] += 1
                    statistics["totalWaitingDuration"] += rng.randint(30, 240)
            calls = []
            if busy and rng.random() < 0.3:  # A call in progress when stats.py ran.
                begin = moment - datetime.timedelta(minutes=rng.randint(2, 20))
                answered = begin + datetime.timedelta(seconds=rng.randint(5, 60))
                call_id = 70000 + len(records)
                calls.append(call_in_queue(call_id, queue, LYON_NUMBER, "0033639989999", begin, answered, agent_number))
            if day != missing_day:
                records.append({"time": iso(moment), "statistics": dict(statistics), "calls": calls})
    return records


def not_found(key, value):
    """Return OVH's 404 for an unknown object."""
    return ApiError(404, f"The requested object ({key} = {value}) does not exist")


def find(items, key, value):
    """Return the item of a list whose `key` is `value`, or raise the 404."""
    for item in items:
        if item[key] == value:
            return item
    raise not_found(key, value)


# --- Authentication ---


def rule_matches(pattern, path):
    """Tell whether an access rule's path (where `*` matches any rest) covers a request path."""
    regex = "".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", pattern))
    return re.fullmatch(regex, path) is not None


def signature(secret, consumer_key, method, url, body, timestamp):
    """Return the X-Ovh-Signature a client must send, as ovh/client.py computes it."""
    text = "+".join([secret, consumer_key, method.upper(), url, body, timestamp])
    return "$1$" + hashlib.sha1(text.encode("utf-8")).hexdigest()


def credential_status(credential, moment):
    """Return a credential's status at a moment: a validated key past its expiration is "expired"."""
    expiration = credential["expiration"]
    if credential["status"] == "validated" and expiration and datetime.datetime.fromisoformat(expiration) <= moment:
        return "expired"
    return credential["status"]


@dataclasses.dataclass
class Call:
    """One API call being answered: typed parameters, checked body and the caller's identity."""

    method: str
    path: str
    headers: object
    params: dict
    query: dict
    body: object
    application: dict
    credential: dict


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


ROUTES = {}


def route(method, template):
    """Register a FakeOVH method as the simulation of one operation of the schema."""

    def register(function):
        ROUTES[method, template] = function
        return function

    return register


# --- HTTP server ---


class Handler(http.server.BaseHTTPRequestHandler):
    """Answer one connection: the API under /1.0 and the credential validation page."""

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
        else:
            self.send_json(404, ApiError(404, "Got an invalid (or empty) URL").body())

    do_POST = do_PUT = do_DELETE = do_GET

    def serve_api(self, fake, path, query, raw):
        """Answer an API request, playing latency and faults; return the status sent (None if none)."""
        generation = self.generation
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


# --- Simulator ---


def longest_chain(requests):
    """The most requests of a log that waited on each other: each began after the previous one was answered."""
    spans = sorted((r["time"], r["time"] + r["duration"]) for r in requests if r["duration"] is not None)
    chains = []
    for i, (start, _) in enumerate(spans):
        chains.append(1 + max((chains[j] for j in range(i) if spans[j][1] <= start), default=0))
    return max(chains, default=0)


class FakeOVH:
    """The OVH API simulator: account state, HTTP server, and helpers for tests."""

    def __init__(self, account=None, latency_ms=0):
        self.schema = Schema()
        missing = [key for key in ROUTES if key[1] not in {t for _, t, _ in self.schema.routes}]
        if missing:
            raise RuntimeError(f"Simulated routes missing from the schema: {missing}")
        self._lock = threading.RLock()
        self._server = None
        self._thread = None
        self.port = None
        self.state_path = None  # when set, the state is saved there as JSON after each change
        self.log_path = None  # when set, each request is appended there as a JSON line once answered
        self.hang_release = threading.Event()
        self.generation = 0  # Counts the resets: a request that waited across one is dropped.
        self.reset(account)
        self.latency_ms = latency_ms

    @property
    def url(self):
        """The endpoint to give connect_ovh()."""
        return f"http://127.0.0.1:{self.port}{BASE_PATH}"

    def start(self, port=0):
        """Serve in a background thread on 127.0.0.1 (port 0: any free port)."""
        self._server = Server(self, port)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-ovh", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop serving, releasing requests held by a "hang" fault."""
        self.hang_release.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    def reset(self, account=None):
        """Go back to a fresh seed (demo by default), demo credentials, no faults, no log, no latency."""
        seed = copy.deepcopy(account if account is not None else demo_account())
        for key, value in demo_authentication().items():
            seed.setdefault(key, value)
        with self._lock:
            self.generation += 1
            self.state = seed
            self._faults = []
            self._log = []
            self.latency_ms = 0
            self.hang_release.set()
            self.hang_release = threading.Event()

    def snapshot(self):
        """Return a deep copy of the account state (JSON-serialisable)."""
        with self._lock:
            return copy.deepcopy(self.state)

    def save(self):
        """Write the state to state_path, if set."""
        if self.state_path:
            with self._lock:
                Path(self.state_path).write_text(json.dumps(self.state, indent=1, ensure_ascii=False), encoding="utf-8")

    def ovh_conf_text(self):
        """Return an ovh.conf pointing at this simulator with the demo credentials."""
        return (
            f"[default]\nendpoint = {self.url}\napplication_key = {DEMO_APPLICATION_KEY}\n"
            f"application_secret = {DEMO_APPLICATION_SECRET}\nconsumer_key = {DEMO_CONSUMER_KEY}\n"
        )

    def write_ovh_conf(self, path):
        """Write ovh_conf_text() to a file that only its owner reads, as a secret should be."""
        Path(path).write_text(self.ovh_conf_text(), encoding="utf-8")
        os.chmod(path, 0o600)

    @property
    def requests(self):
        """Every request received: method, path (after /1.0), query, body, status, time (received), duration."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def log_request(self, method, path, query, raw, generation):
        """Record a request as it arrives, unless a reset came since `generation`; the handler fills in the rest."""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        entry = {
            "method": method,
            "path": path,
            "query": query,
            "body": body,
            "status": None,
            "time": time.time(),
            "duration": None,
        }
        with self._lock:
            if generation == self.generation:
                self._log.append(entry)
        return entry

    def write_log_line(self, entry):
        """Append an answered request to log_path, if set, for tools outside this process."""
        if self.log_path:
            with self._lock, open(self.log_path, "a", encoding="utf-8") as file:
                file.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def new_id(self, kind):
        """Allocate the next id of a kind from the account's counters."""
        with self._lock:
            self.state["lastIds"][kind] = self.state["lastIds"].get(kind, 0) + 1
            return self.state["lastIds"][kind]

    # --- Credentials ---

    def create_credential(self, rules, application_key=DEMO_APPLICATION_KEY, validated=True, expiration=None):
        """Create a consumer key for an application, validated or pending; return it."""
        with self._lock:
            application = next((a for a in self.state["applications"] if a["applicationKey"] == application_key), None)
            if application is None:
                raise ValueError(f"Unknown application key {application_key!r}")
            credential = self.new_credential(application, rules, None)
            if validated:
                self.validate_credential(credential["consumerKey"], expiration)
            return credential["consumerKey"]

    def new_credential(self, application, rules, redirection):
        """Add a pendingValidation credential."""
        credential = {
            "credentialId": self.new_id("credentialId"),
            "applicationId": application["applicationId"],
            "consumerKey": secrets.token_hex(16),
            "status": "pendingValidation",
            "rules": [{"method": rule["method"], "path": rule["path"]} for rule in rules],
            "creation": iso(now()),
            "expiration": None,
            "lastUse": None,
            "allowedIPs": None,
            "ovhSupport": False,
            "redirection": redirection,
            "credentialToken": secrets.token_urlsafe(24),
        }
        self.state["credentials"].append(credential)
        return credential

    def validate_credential(self, consumer_key, expiration=None):
        """Validate a pending consumer key, as OVH's validation page does; expiration None means unlimited."""
        with self._lock:
            credential = next((c for c in self.state["credentials"] if c["consumerKey"] == consumer_key), None)
            if credential is None:
                raise KeyError(consumer_key)
            if credential["status"] != "pendingValidation":
                raise ValueError(f"The credential is {credential['status']}, not pendingValidation")
            credential["status"] = "validated"
            credential["expiration"] = iso(expiration) if expiration else None
            self.save()

    def validation_page(self, token):
        """Return (status, HTML) of the page asking a person to validate a consumer key."""
        with self._lock:
            credential = next((c for c in self.state["credentials"] if c["credentialToken"] == token), None)
            if credential is None or credential["status"] != "pendingValidation":
                return (
                    404,
                    "<!DOCTYPE html><title>OVH</title><p>This credential request is unknown or already handled.</p>",
                )
            application = find(self.state["applications"], "applicationId", credential["applicationId"])
            rules = "".join(
                f"<li><code>{html.escape(r['method'])} {html.escape(r['path'])}</code></li>"
                for r in credential["rules"]
            )
            return (
                200,
                f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>OVH simulator - authorise an application</title></head>
<body>
<h1>Authorise {html.escape(application["name"])}</h1>
<p>Account {html.escape(self.state["me"]["nichandle"])}. This application asks for:</p>
<ul>{rules}</ul>
<form method="post" action="{VALIDATION_PATH}">
<input type="hidden" name="credentialToken" value="{html.escape(token)}">
<fieldset><legend>Validity</legend>
<label><input type="radio" name="validity" value="unlimited" checked> Unlimited</label><br>
<label><input type="radio" name="validity" value="days"> For <input type="number" name="days" min="1" value="30"> days</label><br>
<label><input type="radio" name="validity" value="date"> Until <input type="date" name="date"> (00:00, Paris time)</label>
</fieldset>
<button name="action" value="validate">Log in and authorise</button>
<button name="action" value="refuse">Refuse</button>
</form>
</body></html>
""",
            )

    def validation_submit(self, form):
        """Take the validation page's form: validate (with the chosen validity) or refuse the key."""
        field = {name: values[0] for name, values in form.items()}
        with self._lock:
            credential = next(
                (
                    c
                    for c in self.state["credentials"]
                    if c["credentialToken"] and c["credentialToken"] == field.get("credentialToken")
                ),
                None,
            )
            if credential is None or credential["status"] != "pendingValidation":
                return (
                    404,
                    "<!DOCTYPE html><title>OVH</title><p>This credential request is unknown or already handled.</p>",
                )
            if field.get("action") == "refuse":
                credential["status"] = "refused"
                self.save()
                return 200, "<!DOCTYPE html><title>OVH</title><p>Access refused.</p>"
            validity = field.get("validity", "unlimited")
            try:
                if validity == "days":
                    expiration = now() + datetime.timedelta(days=int(field["days"]))
                elif validity == "date":
                    expiration = datetime.datetime.combine(
                        datetime.date.fromisoformat(field["date"]), datetime.time(), PARIS
                    )
                else:
                    expiration = None
            except (KeyError, ValueError):
                return 400, "<!DOCTYPE html><title>OVH</title><p>Invalid validity.</p>"
            self.validate_credential(credential["consumerKey"], expiration)
            refresh = ""
            if credential["redirection"]:
                refresh = f'<meta http-equiv="refresh" content="0;url={html.escape(credential["redirection"])}">'
            return 200, f"<!DOCTYPE html><title>OVH</title>{refresh}<p>Access validated.</p>"

    # --- API dispatch ---

    def answer(self, method, path, query, raw, headers, url, generation):
        """Answer one API request from the schema and the state: (status, JSON payload).

        A request that arrived before the last reset (`generation`) changes nothing: (None, None).
        """
        try:
            found = self.schema.match(path)
            if found is None:
                raise ApiError(404, "Got an invalid (or empty) URL")
            template, operations, raw_params = found
            operation = operations.get(method)
            if operation is None:
                raise ApiError(405, f"Method {method} is not allowed on {template}")
            with self._lock:
                if generation != self.generation:
                    return None, None
                call = Call(method, path, headers, {}, {}, None, None, None)
                if not operation.get("noAuthentication"):
                    call.application, call.credential = self.authenticate(method, path, url, headers, raw)
                elif template != "/auth/time":
                    call.application = self.application(headers)  # unsigned calls still name their application
                implementation = ROUTES.get((method, template))
                if implementation is None:
                    raise ApiError(501, f"{method} {template} is not simulated")
                call.params = self.schema.path_parameters(operation, raw_params)
                call.query = self.schema.query_parameters(operation, query)
                call.body = self.schema.body(operation, method, raw)
                result = implementation(self, call)
                if method != "GET":
                    self.save()
                return 200, self.schema.render(operation["responseType"], result)
        except ApiError as error:
            return error.status, error.body()

    def application(self, headers):
        """Return the application of X-Ovh-Application, or the 403 INVALID_KEY."""
        key = headers.get("X-Ovh-Application")
        for application in self.state["applications"]:
            if key and application["applicationKey"] == key:
                return application
        raise ApiError(403, "Invalid application key", "INVALID_KEY")

    def authenticate(self, method, path, url, headers, raw):
        """Check application, consumer key, signature, time and access rules; return (application, credential)."""
        application = self.application(headers)
        consumer_key = headers.get("X-Ovh-Consumer")
        if not consumer_key:
            raise ApiError(403, "You must login first", "NOT_CREDENTIAL")
        credential = next(
            (
                c
                for c in self.state["credentials"]
                if c["consumerKey"] == consumer_key and c["applicationId"] == application["applicationId"]
            ),
            None,
        )
        if credential is None:
            raise ApiError(403, "This credential does not exist", "INVALID_CREDENTIAL")
        moment = now()
        status = credential_status(credential, moment)
        if status != "validated":
            raise ApiError(403, f"This credential is not valid ({status})", "INVALID_CREDENTIAL")
        timestamp = headers.get("X-Ovh-Timestamp", "")
        expected = signature(application["applicationSecret"], consumer_key, method, url, raw, timestamp)
        if not hmac.compare_digest(headers.get("X-Ovh-Signature", ""), expected):
            raise ApiError(400, "Invalid signature")
        if not timestamp.isdigit() or abs(int(timestamp) - time.time()) > TIMESTAMP_TOLERANCE:
            raise ApiError(
                400, f"Query out of time: X-Ovh-Timestamp must be within {TIMESTAMP_TOLERANCE} s of the server's time"
            )
        if not any(rule["method"] == method and rule_matches(rule["path"], path) for rule in credential["rules"]):
            raise ApiError(403, f"This call has not been granted: {method} {path}", "NOT_GRANTED_CALL")
        credential["lastUse"] = iso(moment)
        return application, credential

    # --- API routes ---

    @route("GET", "/auth/time")
    def get_time(self, call):
        return int(time.time())

    @route("POST", "/auth/credential")
    def post_credential(self, call):
        for rule in call.body["accessRules"]:
            if "method" not in rule or "path" not in rule:
                raise invalid("accessRules", "needs a method and a path in each rule")
        credential = self.new_credential(call.application, call.body["accessRules"], call.body.get("redirection"))
        url = f"http://127.0.0.1:{self.port}{VALIDATION_PATH}?credentialToken={credential['credentialToken']}"
        return {"validationUrl": url, "consumerKey": credential["consumerKey"], "state": "pendingValidation"}

    def credential_view(self, credential):
        """Return an auth.ApiCredential, with its status as of now."""
        return {**credential, "status": credential_status(credential, now())}

    @route("GET", "/auth/currentCredential")
    def get_current_credential(self, call):
        return self.credential_view(call.credential)

    @route("GET", "/me")
    def get_me(self, call):
        return self.state["me"]

    def own_credentials(self, call):
        """Return the credentials of the calling application."""
        return [c for c in self.state["credentials"] if c["applicationId"] == call.application["applicationId"]]

    @route("GET", "/me/api/credential")
    def list_credentials(self, call):
        moment = now()
        return [
            c["credentialId"]
            for c in self.own_credentials(call)
            if call.query.get("applicationId", c["applicationId"]) == c["applicationId"]
            and call.query.get("status", credential_status(c, moment)) == credential_status(c, moment)
        ]

    @route("GET", "/me/api/credential/{credentialId}")
    def get_credential(self, call):
        return self.credential_view(find(self.own_credentials(call), "credentialId", call.params["credentialId"]))

    @route("DELETE", "/me/api/credential/{credentialId}")
    def delete_credential(self, call):
        self.state["credentials"].remove(find(self.own_credentials(call), "credentialId", call.params["credentialId"]))

    @route("GET", "/telephony")
    def list_billing_accounts(self, call):
        return sorted(self.state["billingAccounts"])

    def billing(self, call):
        """Return the billing account named in the path, or the 404."""
        name = call.params["billingAccount"]
        if name not in self.state["billingAccounts"]:
            raise not_found("billingAccount", name)
        return self.state["billingAccounts"][name]

    def service(self, call, kind):
        """Return the service of a kind (line, redirect, easyHunting) named in the path, or the 404."""
        services = self.billing(call)[kind]
        if call.params["serviceName"] not in services:
            raise not_found("serviceName", call.params["serviceName"])
        return services[call.params["serviceName"]]

    @route("GET", "/telephony/{billingAccount}")
    def get_billing_account(self, call):
        return self.billing(call)["info"]

    @route("GET", "/telephony/{billingAccount}/line")
    def list_lines(self, call):
        return sorted(self.billing(call)["line"])

    @route("GET", "/telephony/{billingAccount}/line/{serviceName}")
    def get_line(self, call):
        return self.service(call, "line")["line"]

    @route("GET", "/telephony/{billingAccount}/line/{serviceName}/options")
    def get_line_options(self, call):
        return self.service(call, "line")["options"]

    @route("PUT", "/telephony/{billingAccount}/line/{serviceName}/options")
    def put_line_options(self, call):
        self.service(call, "line")["options"].update(call.body)

    @route("GET", "/telephony/{billingAccount}/redirect")
    def list_redirects(self, call):
        return sorted(self.billing(call)["redirect"])

    @route("GET", "/telephony/{billingAccount}/redirect/{serviceName}")
    def get_redirect(self, call):
        return self.service(call, "redirect")

    @route("GET", "/telephony/{billingAccount}/easyHunting")
    def list_easy_huntings(self, call):
        return sorted(self.billing(call)["easyHunting"])

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}")
    def get_easy_hunting(self, call):
        return self.service(call, "easyHunting")["service"]

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting")
    def get_hunting(self, call):
        return self.service(call, "easyHunting")["hunting"]

    def queue(self, call):
        """Return the queue named in the path, or the 404."""
        return find(self.service(call, "easyHunting")["queues"], "queueId", call.params["queueId"])

    def agent(self, call):
        """Return the agent named in the path, or the 404."""
        return find(self.service(call, "easyHunting")["agents"], "agentId", call.params["agentId"])

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/queue")
    def list_queues(self, call):
        return sorted(q["queueId"] for q in self.service(call, "easyHunting")["queues"])

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/queue/{queueId}")
    def get_queue(self, call):
        return self.queue(call)

    @route("PUT", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/queue/{queueId}")
    def put_queue(self, call):
        self.queue(call).update(call.body)

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/queue/{queueId}/agent")
    def list_queue_agents(self, call):
        queue_id = self.queue(call)["queueId"]
        links = [link for link in self.service(call, "easyHunting")["agentQueues"] if link["queueId"] == queue_id]
        return [link["agentId"] for link in sorted(links, key=lambda link: (link["position"], link["agentId"]))]

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/queue/{queueId}/liveCalls")
    def list_live_calls(self, call):
        queue_id = self.queue(call)["queueId"]
        return [c["id"] for c in self.service(call, "easyHunting")["liveCalls"] if c["queueId"] == queue_id]

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/queue/{queueId}/liveCalls/{id}")
    def get_live_call(self, call):
        queue_id = self.queue(call)["queueId"]
        calls = [c for c in self.service(call, "easyHunting")["liveCalls"] if c["queueId"] == queue_id]
        return find(calls, "id", call.params["id"])

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/queue/{queueId}/liveStatistics")
    def get_live_statistics(self, call):
        return self.queue(call)["statistics"]

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent")
    def list_agents(self, call):
        return sorted(a["agentId"] for a in self.service(call, "easyHunting")["agents"])

    def check_agent_number(self, service, number, agent_id=None):
        """Refuse a second agent with the same number in a group, as OVH does."""
        if any(a["number"] == number and a["agentId"] != agent_id for a in service["agents"]):
            raise ApiError(400, f"An agent with the number {number} already exists")

    @route("POST", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent")
    def post_agent(self, call):
        service = self.service(call, "easyHunting")
        self.check_agent_number(service, call.body["number"])
        created = {
            "agentId": self.new_id("agentId"),
            "type": "external",
            "breakStatus": None,
            "description": None,
            **call.body,
        }
        service["agents"].append(created)
        return created

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent/{agentId}")
    def get_agent(self, call):
        return self.agent(call)

    @route("PUT", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent/{agentId}")
    def put_agent(self, call):
        found = self.agent(call)
        if "number" in call.body:
            self.check_agent_number(self.service(call, "easyHunting"), call.body["number"], found["agentId"])
        found.update(call.body)

    @route("DELETE", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent/{agentId}")
    def delete_agent(self, call):
        service = self.service(call, "easyHunting")
        found = self.agent(call)
        service["agents"].remove(found)
        service["agentQueues"] = [link for link in service["agentQueues"] if link["agentId"] != found["agentId"]]

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent/{agentId}/queue")
    def list_agent_queues(self, call):
        agent_id = self.agent(call)["agentId"]
        return sorted(
            link["queueId"] for link in self.service(call, "easyHunting")["agentQueues"] if link["agentId"] == agent_id
        )

    @route("POST", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent/{agentId}/queue")
    def post_agent_queue(self, call):
        service = self.service(call, "easyHunting")
        agent_id = self.agent(call)["agentId"]
        queue_id = find(service["queues"], "queueId", call.body["queueId"])["queueId"]
        if any(link["agentId"] == agent_id and link["queueId"] == queue_id for link in service["agentQueues"]):
            raise ApiError(400, f"The agent {agent_id} is already in the queue {queue_id}")
        link = {"agentId": agent_id, "queueId": queue_id, "position": call.body["position"]}
        service["agentQueues"].append(link)
        return link

    def agent_queue(self, call):
        """Return the agent-queue link named in the path, or the 404."""
        agent_id = self.agent(call)["agentId"]
        links = [link for link in self.service(call, "easyHunting")["agentQueues"] if link["agentId"] == agent_id]
        return find(links, "queueId", call.params["queueId"])

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent/{agentId}/queue/{queueId}")
    def get_agent_queue(self, call):
        return self.agent_queue(call)

    @route("PUT", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent/{agentId}/queue/{queueId}")
    def put_agent_queue(self, call):
        self.agent_queue(call).update(call.body)

    @route("DELETE", "/telephony/{billingAccount}/easyHunting/{serviceName}/hunting/agent/{agentId}/queue/{queueId}")
    def delete_agent_queue(self, call):
        self.service(call, "easyHunting")["agentQueues"].remove(self.agent_queue(call))

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/timeConditions")
    def get_time_conditions(self, call):
        return self.service(call, "easyHunting")["timeConditions"]

    @route("PUT", "/telephony/{billingAccount}/easyHunting/{serviceName}/timeConditions")
    def put_time_conditions(self, call):
        settings = self.service(call, "easyHunting")["timeConditions"]
        wanted = {**settings, **call.body}
        for slot in ("unavailable", "slot1", "slot2", "slot3"):
            if wanted[f"{slot}Type"] == "number" and not wanted[f"{slot}Number"]:
                raise ApiError(400, f"Invalid parameter: property '{slot}Number' is missing for the type 'number'")
        settings.update(call.body)

    def check_condition(self, service, condition):
        """Refuse an empty time range or a duplicate condition, as OVH does."""
        if not condition["timeFrom"] < condition["timeTo"]:
            raise ApiError(400, "Invalid parameter: property 'timeFrom' must be before 'timeTo'")
        fields = ("weekDay", "timeFrom", "timeTo", "policy")
        for other in service["conditions"]:
            if other is not condition and all(other[f] == condition[f] for f in fields):
                raise ApiError(400, f"This time condition already exists (conditionId = {other['conditionId']})")

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/timeConditions/conditions")
    def list_conditions(self, call):
        return sorted(
            c["conditionId"]
            for c in self.service(call, "easyHunting")["conditions"]
            if call.query.get("policy", c["policy"]) == c["policy"]
        )

    @route("POST", "/telephony/{billingAccount}/easyHunting/{serviceName}/timeConditions/conditions")
    def post_condition(self, call):
        service = self.service(call, "easyHunting")
        condition = dict(call.body)
        self.check_condition(service, condition)
        condition["conditionId"] = self.new_id("conditionId")
        service["conditions"].append(condition)
        return condition

    def condition(self, call):
        """Return the time condition named in the path, or the 404."""
        return find(self.service(call, "easyHunting")["conditions"], "conditionId", call.params["conditionId"])

    @route("GET", "/telephony/{billingAccount}/easyHunting/{serviceName}/timeConditions/conditions/{conditionId}")
    def get_condition(self, call):
        return self.condition(call)

    @route("PUT", "/telephony/{billingAccount}/easyHunting/{serviceName}/timeConditions/conditions/{conditionId}")
    def put_condition(self, call):
        found = self.condition(call)
        self.check_condition(self.service(call, "easyHunting"), {**found, **call.body})
        found.update(call.body)

    @route("DELETE", "/telephony/{billingAccount}/easyHunting/{serviceName}/timeConditions/conditions/{conditionId}")
    def delete_condition(self, call):
        self.service(call, "easyHunting")["conditions"].remove(self.condition(call))

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
        if settings.get("enable"):
            clock = moment.strftime("%H:%M:%S")
            policies = {
                c["policy"]
                for c in service["conditions"]
                if c["weekDay"] == WEEKDAYS[moment.weekday()] and c["timeFrom"] <= clock <= c["timeTo"]
            }
            if "available" not in policies:
                slot = min(policies, default="unavailable")
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

    # --- Faults ---

    def fail(self, method, path, kind="500", nth=1, times=1, after=False):
        """Fail `times` requests from the nth one matching method and path (`*` matches any rest)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"Unknown fault kind {kind!r}; use one of {FAULT_KINDS}")
        if nth < 1 or times < 1:
            raise ValueError("nth and times start at 1")
        with self._lock:
            self._faults.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "kind": kind,
                    "first": nth,
                    "last": nth + times - 1,
                    "seen": 0,
                    "after": after,
                }
            )

    def clear_faults(self):
        """Forget every fault not played yet."""
        with self._lock:
            self._faults = []

    def take_fault(self, method, path):
        """Count a request against the faults; return the fault to play on it, if any."""
        chosen = None
        with self._lock:
            for fault in list(self._faults):
                if fault["method"] == method and rule_matches(fault["path"], path):
                    fault["seen"] += 1
                    if chosen is None and fault["first"] <= fault["seen"] <= fault["last"]:
                        chosen = fault
                    if fault["seen"] >= fault["last"]:
                        self._faults.remove(fault)
        return chosen


# --- Command line ---


def validate_remotely(validation_url, expiration=None):
    """Validate a pending key on a running simulator through its page, as a person would."""
    with urllib.request.urlopen(validation_url, timeout=10) as page:
        page.read()
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(validation_url).query)["credentialToken"][0]
    form = {"credentialToken": token, "action": "validate", "validity": "unlimited"}
    if expiration:
        form.update(validity="date", date=expiration.isoformat())
    request = urllib.request.Request(
        urllib.parse.urljoin(validation_url, VALIDATION_PATH), data=urllib.parse.urlencode(form).encode("ascii")
    )
    with urllib.request.urlopen(request, timeout=10) as page:
        page.read()


def main(argv=None):
    """Serve the simulator until Ctrl-C or SIGTERM, or validate a key on a running one."""
    parser = argparse.ArgumentParser(description="Simulate the OVH API for cimade-ovh.")
    parser.add_argument("--port", type=int, default=8081, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay added to every API request")
    parser.add_argument("--state", type=Path, help="JSON file to load the account from and save it to")
    parser.add_argument("--traffic", action="store_true", help="add a waiting and an answered call to Lyon")
    parser.add_argument(
        "--add-queue", action="append", default=[], metavar="NUMBER",
        help="add an easyHunting number (0033…) with one queue to the demo billing account (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--add-redirect", action="append", default=[], metavar="NUMBER:SIP_LINE",
        help="add a redirect number to a new SIP line, both 0033…, to the demo billing account (repeatable)",
    )  # fmt: skip
    parser.add_argument("--log", type=Path, help="append each request answered to this file, as JSON lines")
    parser.add_argument("--validate", metavar="VALIDATION_URL", help="validate a pending consumer key and exit")
    parser.add_argument(
        "--expiration",
        type=datetime.date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="with --validate: the key expires on that date (default: unlimited)",
    )
    args = parser.parse_args(argv)
    if args.validate:
        try:
            validate_remotely(args.validate, args.expiration)
        except (urllib.error.URLError, KeyError) as error:
            print(f"Validation failed: {error}", file=sys.stderr)
            return 1
        print("Consumer key validated.")
        return 0
    account = None
    if args.state and args.state.exists():
        account = json.loads(args.state.read_text(encoding="utf-8"))
    fake = FakeOVH(account, args.latency_ms)
    fake.state_path = args.state
    for number in args.add_queue:
        fake.add_queue(number)
    for pair in args.add_redirect:
        number, _, sip = pair.partition(":")
        if not sip:
            parser.error(f"--add-redirect {pair}: expected NUMBER:SIP_LINE, such as 0033465719500:0033465719501")
        fake.add_redirect(number, sip)
    fake.log_path = args.log
    if args.traffic:
        fake.add_live_call(LYON_NUMBER)
        fake.add_live_call(LYON_NUMBER, state="Answered", caller="0033639989998", agent="0033639980011")
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    fake.start(args.port)
    fake.save()
    print(fake.ovh_conf_text(), end="", flush=True)
    stopping.wait()
    fake.stop()
    fake.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
