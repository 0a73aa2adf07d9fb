"""The voicemail routes: every SIP line's box, its messages, their audio files, its settings; and where a call
that reaches nobody leaves its message, as OVH's guides describe it.

Voicemail is mixed into FakeOVH, which gives it `state`, `_lock`, `port`, `files`, save(), new_id(),
who_rings' helpers (Calls) and the request log. A box exists while its SIP line does ("chaque ligne
OVHcloud est associée à un répondeur"); its state lives in the billing account's "voicemail" seed,
made on first use, so that copies of an account made before voicemail still load.

Audio: GET …/download answers a telephony.PcsFile whose status goes todo → doing → done over
`file_ready_seconds` (None: never ready); its `url` is served by the simulator itself, outside
/1.0, and answers 404 until done and after `urlExpirationDatetime`. Only wav is produced (a real
RIFF/WAVE file of the message's duration, which every browser plays); other formats are refused
with a 501, rather than answered with bytes that are not what they claim.
"""

import datetime
import io
import math
import secrets
import time
import wave

from .account import LILLE_NUMBER, LYON_NUMBER, in_paris, iso, now
from .schema import ApiError, find, not_found, route
from .server import FILES_PATH

FILE_READY_SECONDS = 1.0  # How long a requested file takes to be ready (OVH's manager asks again every second).
FILE_LIFETIME_SECONDS = 3600  # How long a ready file's URL stays valid.
AUDIO_FORMATS = {"wav": "audio/wav"}  # The formats the simulator can truly produce.
SAMPLE_RATE = 8000  # A telephone's: 8 kHz, 8-bit mono.


def box_seed(number):
    """Return the seed of a SIP line's voicemail box: no message, OVH's default settings."""
    return {
        "settings": {
            "annouceMessage": "",
            "audioFormat": "wav",
            "doNotRecord": False,
            "forcePassword": False,
            "fromEmail": "voicemail@ovh.net",
            "fromName": "Messagerie vocale OVH",
            "fullGreetingSoundId": None,
            "greetingType": "default",
            "isNewVersion": True,
            "keepMessage": False,
            "redirectionEmails": [],
            "shortGreetingSoundId": None,
            "temporaryGreetingActivated": False,
            "temporaryGreetingSoundId": None,
        },
        "messages": [],
        "mailed": [],  # Messages OVH mailed and deleted (redirectionEmails without keepMessage): never listed.
    }


def wav_bytes(seconds):
    """A valid WAVE file of `seconds` seconds: a quiet 400 Hz tone, 8 kHz, 8-bit mono."""
    period = bytes(128 + round(24 * math.sin(2 * math.pi * i / 20)) for i in range(20))  # 20 samples: 400 Hz.
    samples = max(1, int(seconds * SAMPLE_RATE))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(1)
        file.setframerate(SAMPLE_RATE)
        file.writeframes((period * (samples // len(period) + 1))[:samples])
    return buffer.getvalue()


class Voicemail:
    """The part of FakeOVH that answers …/voicemail and plays where unanswered calls leave messages."""

    # --- Boxes ---

    def boxes(self, account):
        """The account's voicemail boxes by serviceName: one per SIP line, made on first use."""
        known = account.setdefault("voicemail", {})
        for number in account["line"]:
            known.setdefault(number, box_seed(number))
        for number in [n for n in known if n not in account["line"]]:  # Its line was deleted: so was the box.
            del known[number]
        return known

    def find_box(self, number):
        """Return (billing account, box) of a box by its serviceName, or raise KeyError."""
        for account in self.state["billingAccounts"].values():
            boxes = self.boxes(account)
            if number in boxes:
                return account, boxes[number]
        raise KeyError(number)

    def box(self, call):
        """Return the box named in the path, or the 404."""
        boxes = self.boxes(self.billing(call))
        if call.params["serviceName"] not in boxes:
            raise not_found("serviceName", call.params["serviceName"])
        return boxes[call.params["serviceName"]]

    def message(self, call):
        """Return the message named in the path, or the 404."""
        return find(self.box(call)["messages"], "id", call.params["id"])

    @route("GET", "/telephony/{billingAccount}/voicemail")
    def list_voicemails(self, call):
        return sorted(self.boxes(self.billing(call)))

    @route("GET", "/telephony/{billingAccount}/voicemail/{serviceName}")
    def get_voicemail(self, call):
        self.box(call)
        line = self.billing(call)["line"][call.params["serviceName"]]["line"]
        return {
            "serviceName": line["serviceName"],
            "description": line["description"],
            "serviceType": "line",
            "offers": ["voip.voicemail"],
        }

    @route("PUT", "/telephony/{billingAccount}/voicemail/{serviceName}")
    def put_voicemail(self, call):
        self.box(call)
        if "description" in call.body:
            self.billing(call)["line"][call.params["serviceName"]]["line"]["description"] = call.body["description"]

    @route("GET", "/telephony/{billingAccount}/voicemail/{serviceName}/settings")
    def get_voicemail_settings(self, call):
        box = self.box(call)
        unread = sum(1 for m in box["messages"] if m["dir"] == "inbox")
        return {**box["settings"], "unreadMessages": unread}

    @route("PUT", "/telephony/{billingAccount}/voicemail/{serviceName}/settings")
    def put_voicemail_settings(self, call):
        self.box(call)["settings"].update(call.body)

    # --- Messages ---

    @route("GET", "/telephony/{billingAccount}/voicemail/{serviceName}/directories")
    def list_messages(self, call):
        folder = call.query.get("dir")
        return sorted(m["id"] for m in self.box(call)["messages"] if folder in (None, m["dir"]))

    @route("GET", "/telephony/{billingAccount}/voicemail/{serviceName}/directories/{id}")
    def get_message(self, call):
        return self.message(call)

    @route("DELETE", "/telephony/{billingAccount}/voicemail/{serviceName}/directories/{id}")
    def delete_message(self, call):
        self.box(call)["messages"].remove(self.message(call))

    @route("POST", "/telephony/{billingAccount}/voicemail/{serviceName}/directories/{id}/move")
    def move_message(self, call):
        self.message(call)["dir"] = call.body["dir"]

    @route("GET", "/telephony/{billingAccount}/voicemail/{serviceName}/directories/{id}/download")
    def download_message(self, call):
        message = self.message(call)
        kind = call.query.get("format", "mp3")  # OVH's default format is mp3.
        if kind not in AUDIO_FORMATS:
            raise ApiError(501, f"The simulator only produces {', '.join(AUDIO_FORMATS)} files, not {kind}")
        key = (call.params["serviceName"], message["id"], kind)
        moment = time.time()
        file = next((f for f in self.files.values() if f["key"] == key and f["expires"] > moment), None)
        if file is None:
            token = secrets.token_urlsafe(16)
            file = self.files[token] = {
                "key": key,
                "token": token,
                "asked": moment,
                "expires": moment + FILE_LIFETIME_SECONDS,
                "duration": message["duration"],
                "filename": f"voicemail-{message['id']}.{kind}",
            }
        return {
            "filename": file["filename"],
            "status": self.file_status(file, moment),
            "url": f"http://127.0.0.1:{self.port}{FILES_PATH}{file['token']}/{file['filename']}",
            "urlExpirationDatetime": iso(datetime.datetime.fromtimestamp(int(file["expires"]), datetime.timezone.utc)),
        }

    def file_status(self, file, moment):
        """Where the making of a file is: todo, doing, then done after file_ready_seconds (never if None)."""
        ready = self.file_ready_seconds
        elapsed = moment - file["asked"]
        if ready is not None and elapsed >= ready:
            return "done"
        return "todo" if elapsed < 0.2 else "doing"

    def audio_file(self, token):
        """Answer the URL of a PcsFile: (status, bytes, content type); 404 until it is done and once expired."""
        with self._lock:
            file = self.files.get(token)
            moment = time.time()
            if file is None or file["expires"] <= moment or self.file_status(file, moment) != "done":
                return 404, b"Not Found", "text/plain"
            duration, kind = file["duration"], file["key"][2]
        return 200, wav_bytes(duration), AUDIO_FORMATS[kind]

    def expire_audio_files(self):
        """Make every audio URL given so far expired, as if their urlExpirationDatetime had passed."""
        with self._lock:
            for file in self.files.values():
                file["expires"] = time.time() - 1

    # --- Calls that reach nobody ---

    def leave_message(self, box_number, caller, seconds, at=None):
        """Record a message of `seconds` from `caller` in a box, as its settings allow; return its id or None.

        None: the box takes no message (doNotRecord), or OVH mailed it and deleted it
        (redirectionEmails without keepMessage), so it never reaches the list.
        """
        with self._lock:
            _, box = self.find_box(box_number)
            settings = box["settings"]
            if settings["doNotRecord"]:
                return None
            message = {
                "id": self.new_id("voicemailMessageId"),
                "caller": caller,
                "callee": box_number,
                "creationDatetime": iso(at),
                "duration": int(seconds),
                "dir": "inbox",
            }
            if settings["redirectionEmails"] and not settings["keepMessage"]:
                box["mailed"].append(message)
                self.save()
                return None
            box["messages"].append(message)
            self.save()
            return message["id"]

    def unanswered_call(self, public_number, caller, seconds, at=None):
        """A call to a group's number that nobody answers: leave its message where OVH sends it; return its id or None.

        None also when the call reaches no box of OVH's (a volunteer's phone, whose own voicemail takes it).
        """
        box = self.voicemail_of(public_number, at)
        return None if box is None else self.leave_message(box, caller, seconds, at)

    def voicemail_of(self, public_number, at=None):
        """The box where a call to `public_number` at `at` ends when nobody answers, or None when it reaches none.

        A SIP line (or the line a redirect goes to): forwarded unconditionally, the call goes to
        that number; else the no-reply, backup or busy forward of nature voicemail sends it to its
        box (the line's own when no number is set). An easyHunting group: closed by its time
        conditions, the destination of the slot or of "unavailable" when it is a voicemail (the
        service's when no number is set), or the queue's actionOnClosure when none is set; open,
        the queue's actionOnOverflow when nobody answers.
        """
        ringing = self.who_rings(public_number, at)
        with self._lock:
            for account in self.state["billingAccounts"].values():
                if public_number in account["easyHunting"]:
                    return self.hunting_voicemail(account["easyHunting"][public_number], ringing, at)
                redirect = account["redirect"].get(public_number)
                line = redirect["destination"] if redirect else public_number
                if line in account["line"]:
                    return None if ringing and ringing[0] != line else self.line_voicemail(account["line"][line])
        return None

    def line_voicemail(self, line):
        """The box a SIP line's unanswered calls go to, or None."""
        options = line["options"]
        for forward in ("forwardNoReply", "forwardBackup", "forwardBusy"):
            if options.get(forward) and options.get(f"{forward}Nature") == "voicemail":
                return options.get(f"{forward}Number") or line["line"]["serviceName"]
        return None

    def hunting_voicemail(self, service, ringing, at):
        """The box an easyHunting group's unanswered call goes to, or None."""
        queue = service["queues"][0] if len(service["queues"]) == 1 else {}
        if ringing.elsewhere is None:
            action, box = queue.get("actionOnOverflow"), queue.get("actionOnOverflowParam")
        elif ringing.elsewhere == "voicemail":
            slot = self.closed_slot(service, in_paris(at))
            return service["timeConditions"].get(f"{slot}Number") or service["service"].get("voicemail")
        elif ringing.elsewhere == "":
            action, box = queue.get("actionOnClosure"), queue.get("actionOnClosureParam")
        else:
            return None  # Sent to a number.
        return box if action == "voicemail" and box else None

    def messages_in(self, box_number):
        """The messages of a box (copies), oldest first, for tests."""
        with self._lock:
            return [dict(m) for m in sorted(self.find_box(box_number)[1]["messages"], key=lambda m: m["id"])]


DEMO_CALLS = (  # (group's number, caller, seconds, days ago, hour, minute): all outside Lyon's periods.
    (LILLE_NUMBER, "0033639989901", 42, 2, 19, 40),
    (LILLE_NUMBER, "0033639989902", 17, 0, 8, 5),
    (LYON_NUMBER, "0033639989903", 65, 1, 21, 10),
    (LYON_NUMBER, "0033639989904", 9, 1, 12, 30),
    (LYON_NUMBER, "0033639989905", 31, 0, 7, 45),
)


def leave_demo_messages(fake):
    """Let the demo's unanswered calls leave their messages in Lille's and Lyon's boxes; return how many by number."""
    left = {}
    for number, caller, seconds, days_back, hour, minute in DEMO_CALLS:
        moment = (now() - datetime.timedelta(days=days_back)).replace(hour=hour, minute=minute, second=0)
        if fake.unanswered_call(number, caller, seconds, moment) is not None:
            left[number] = left.get(number, 0) + 1
    return left
