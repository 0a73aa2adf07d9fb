"""A simulator of the OVH API 1.0, limited to what cimade-ovh uses, for tests and demonstrations.

Routes, parameter types and object shapes come from ovh-api-schema.json, beside this file, at run time.
From Python: `FakeOVH().start()` and give its `url` to cimade_ovh.ovhapi.connect_ovh().
From a shell, in the checkout: `python3 -m cimade_ovh.simulator --port 8081` (or by its path,
`python3 cimade_ovh/simulator --port 8081`) prints an ovh.conf and serves the demo account.

Modules, each importing only those above it:
- schema: ApiError, the Schema read from the JSON, and the @route registry of simulated operations.
- account: the demo account's seeds and constants, statistics_history for the demo's figures.
- server: the HTTP server (Handler, Server): the API under /1.0 and the key validation page.
- credentials, telephony, calls, voicemail: FakeOVH's parts (mixins): keys and /auth, /me; the
  /telephony routes; who_rings and the calls, statistics and lines tests add; the voicemail boxes,
  their messages and audio files, and where a call that reaches nobody leaves its message.
- fake: FakeOVH itself (state, start/stop/reset, dispatch, faults, request log, in_waves), longest_chain.
- command: the command line (main, validate_remotely); __main__ runs it.
"""

from .account import (
    DEMO_APPLICATION_KEY,
    DEMO_APPLICATION_SECRET,
    DEMO_BILLING_ACCOUNT,
    DEMO_CONSUMER_KEY,
    LILLE_NUMBER,
    LILLE_SIP_LINE,
    LYON_NUMBER,
    LYON_VOICEMAIL,
    OTHER_BILLING_ACCOUNT,
    PARIS,
    demo_account,
    sip_line,
    statistics_history,
)
from .calls import Ringing
from .command import main, validate_remotely
from .fake import FAULT_KINDS, FakeOVH, longest_chain
from .schema import ROUTES, SCHEMA_PATH, ApiError, Schema, route
from .voicemail import leave_demo_messages, wav_bytes

__all__ = [
    "DEMO_APPLICATION_KEY",
    "DEMO_APPLICATION_SECRET",
    "DEMO_BILLING_ACCOUNT",
    "DEMO_CONSUMER_KEY",
    "FAULT_KINDS",
    "LILLE_NUMBER",
    "LILLE_SIP_LINE",
    "LYON_NUMBER",
    "LYON_VOICEMAIL",
    "OTHER_BILLING_ACCOUNT",
    "PARIS",
    "ROUTES",
    "SCHEMA_PATH",
    "ApiError",
    "FakeOVH",
    "Ringing",
    "Schema",
    "demo_account",
    "longest_chain",
    "main",
    "route",
    "sip_line",
    "statistics_history",
    "leave_demo_messages",
    "validate_remotely",
    "wav_bytes",
]
