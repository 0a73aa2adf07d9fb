"""The demo account the simulator starts from, its building blocks, and a month of simulated statistics.

The seeds are the simulator's state: plain JSON-like dicts, the shape of --state files and of
index.py --check --snapshot's copies. Times are Paris time, written as OVH writes them.
"""

import datetime
import random
import zoneinfo

PARIS = zoneinfo.ZoneInfo("Europe/Paris")

DEMO_APPLICATION_KEY = "cimadeDemoAppKey"
DEMO_APPLICATION_SECRET = "cimadeDemoApplicationSecret00001"
DEMO_CONSUMER_KEY = "cimadeDemoConsumerKeyUnlimited01"
DEMO_BILLING_ACCOUNT = "ab12345-ovh-1"
OTHER_BILLING_ACCOUNT = "zz98765-ovh-1"
LYON_NUMBER = "0033465710000"
LILLE_NUMBER = "0033353010000"
LILLE_SIP_LINE = "0033353010001"
LYON_VOICEMAIL = "0033465710001"  # The SIP line whose box takes Lyon's calls outside its periods.


# --- Time ---


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



# --- Seeds ---


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


def to_voicemail(line, box=None):
    """Return a SIP line's seed whose unanswered calls go to a voicemail box (its own by default)."""
    line["options"].update(
        forwardNoReply=True, forwardNoReplyNature="voicemail", forwardNoReplyNumber=box or line["line"]["serviceName"]
    )
    return line


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
            "voicemail": LYON_VOICEMAIL,
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
            "unavailableNumber": LYON_VOICEMAIL,
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
    """Return a fresh seed of the demo account: Lyon's queue and Lille's redirect, plus a second billing account.

    Unanswered calls leave messages: Lille's in its SIP line's box, Lyon's (outside its periods)
    in the box of a SIP line of its own, LYON_VOICEMAIL.
    """
    return {
        "lastIds": {
            "applicationId": 2001,
            "credentialId": 3001,
            "agentId": 4002,
            "queueId": 5001,
            "conditionId": 6001,
            "liveCallId": 7000,
            "voicemailMessageId": 8000,
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
                lines=[
                    to_voicemail(sip_line(LILLE_SIP_LINE, "Permanence Lille (SIP)", LILLE_NUMBER, "0033353010099")),
                    sip_line(LYON_VOICEMAIL, "Messagerie Lyon", LYON_NUMBER, "0033465710099"),
                ],
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



# --- Statistics ---


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
