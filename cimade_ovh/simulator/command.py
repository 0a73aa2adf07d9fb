"""The simulator's command line: serve the demo account (or a saved one), or validate a key on a running simulator."""

import argparse
import datetime
import json
import re
import signal
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .account import LYON_NUMBER
from .fake import FakeOVH
from .server import VALIDATION_PATH


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


def leave_message(fake, text):
    """Leave the message that --voicemail BOX:CALLER:SECONDS describes; raise ValueError saying what is wrong."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[2].isdigit() or not all(re.fullmatch(r"00\d{6,15}", p) for p in parts[:2]):
        raise ValueError("expected BOX:CALLER:SECONDS, such as 0033353010001:0033639989901:42")
    box, caller, seconds = parts
    try:
        left = fake.leave_message(box, caller, int(seconds))
    except KeyError:
        raise ValueError(f"no SIP line {box} in the account, so no such box") from None
    if left is None:
        raise ValueError(f"the box {box} takes no message (doNotRecord, or mailed then deleted)")


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
    parser.add_argument(
        "--voicemail", action="append", default=[], metavar="BOX:CALLER:SECONDS",
        help="leave a message of SECONDS from CALLER in the box of the SIP line BOX, both 0033…, at start (repeatable)",
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
    for text in args.voicemail:
        try:
            leave_message(fake, text)
        except ValueError as error:
            parser.error(f"--voicemail {text}: {error}")
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
