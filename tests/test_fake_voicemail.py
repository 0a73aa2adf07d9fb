"""Tests of the simulator's voicemail: boxes, messages, audio files, settings, where unanswered calls go."""

import datetime
import io
import json
import subprocess
import sys
import time
import wave

import ovh
import pytest
import requests

from cimade_ovh.ovhapi import connect_ovh
from cimade_ovh.simulator import (
    DEMO_BILLING_ACCOUNT,
    LILLE_NUMBER,
    LILLE_SIP_LINE,
    LYON_NUMBER,
    LYON_VOICEMAIL,
    SCHEMA_PATH,
    leave_demo_messages,
)
from test_fake_ovh import SIMULATOR, start_command, stop_command

ACCOUNT = f"/telephony/{DEMO_BILLING_ACCOUNT}"
LILLE_BOX = f"{ACCOUNT}/voicemail/{LILLE_SIP_LINE}"
LYON_BOX = f"{ACCOUNT}/voicemail/{LYON_VOICEMAIL}"
LYON = f"{ACCOUNT}/easyHunting/{LYON_NUMBER}"
CALLER = "0033639989901"
MONDAY_15H, MONDAY_20H = datetime.datetime(2026, 11, 23, 15, 0), datetime.datetime(2026, 11, 23, 20, 0)
MODELS = json.loads(SCHEMA_PATH.read_text())["models"]


def check_shape(model_name, value):
    """Assert a response has exactly the model's properties, null only where the schema allows it."""
    properties = MODELS[model_name]["properties"]
    assert set(value) == set(properties), model_name
    assert all(value[name] is not None or prop["canBeNull"] for name, prop in properties.items()), value


def test_every_sip_line_has_a_box_with_the_schema_shapes(ovh_client, fake_ovh):
    assert ovh_client.get(f"{ACCOUNT}/voicemail") == sorted([LILLE_SIP_LINE, LYON_VOICEMAIL])
    check_shape("telephony.Voicemail", ovh_client.get(LILLE_BOX))
    settings = ovh_client.get(f"{LILLE_BOX}/settings")
    check_shape("telephony.VoicemailProperties", settings)
    assert (settings["doNotRecord"], settings["redirectionEmails"], settings["unreadMessages"]) == (False, [], 0)
    message_id = fake_ovh.unanswered_call(LILLE_NUMBER, CALLER, 42)
    message = ovh_client.get(f"{LILLE_BOX}/directories/{message_id}")
    check_shape("telephony.VoicemailMessages", message)
    assert (message["caller"], message["callee"], message["duration"], message["dir"]) == (
        CALLER, LILLE_SIP_LINE, 42, "inbox",
    )  # fmt: skip
    check_shape("telephony.PcsFile", ovh_client.get(f"{LILLE_BOX}/directories/{message_id}/download", format="wav"))
    with pytest.raises(ovh.exceptions.ResourceNotFoundError):
        ovh_client.get(f"{ACCOUNT}/voicemail/0033465719901")  # The other customer's line.


def test_folders_move_and_delete(ovh_client, fake_ovh):
    first, second = (fake_ovh.leave_message(LILLE_SIP_LINE, CALLER, s) for s in (10, 20))
    assert ovh_client.get(f"{LILLE_BOX}/directories", dir="inbox") == [first, second]
    assert ovh_client.get(f"{LILLE_BOX}/settings")["unreadMessages"] == 2
    ovh_client.post(f"{LILLE_BOX}/directories/{first}/move", dir="old")
    assert ovh_client.get(f"{LILLE_BOX}/directories", dir="inbox") == [second]
    assert ovh_client.get(f"{LILLE_BOX}/directories", dir="old") == [first]
    assert ovh_client.get(f"{LILLE_BOX}/directories") == [first, second]
    assert ovh_client.get(f"{LILLE_BOX}/settings")["unreadMessages"] == 1
    with pytest.raises(ovh.exceptions.BadParametersError):
        ovh_client.post(f"{LILLE_BOX}/directories/{first}/move", dir="trash")
    ovh_client.delete(f"{LILLE_BOX}/directories/{first}")
    with pytest.raises(ovh.exceptions.ResourceNotFoundError):
        ovh_client.get(f"{LILLE_BOX}/directories/{first}")
    assert ovh_client.get(f"{LILLE_BOX}/directories") == [second]


def test_the_audio_file_is_ready_after_about_a_second_then_expires(ovh_client, fake_ovh):
    message_id = fake_ovh.leave_message(LILLE_SIP_LINE, CALLER, 3)
    path = f"{LILLE_BOX}/directories/{message_id}/download"
    started = time.monotonic()
    asked = ovh_client.get(path, format="wav")
    assert asked["status"] == "todo"
    assert requests.get(asked["url"], timeout=5).status_code == 404  # Not ready yet.
    statuses = [asked["status"]]
    while statuses[-1] != "done":
        time.sleep(0.1)
        statuses.append(ovh_client.get(path, format="wav")["status"])
    order = ["todo", "doing", "done"]
    assert statuses == sorted(statuses, key=order.index), statuses  # However late each answer comes (a busy machine).
    assert time.monotonic() - started >= fake_ovh.file_ready_seconds, "never done before its time"
    asked_at = time.time()
    assert [fake_ovh.file_status({"asked": asked_at}, asked_at + s) for s in (0, 0.5, 1.0)] == order
    done = ovh_client.get(path, format="wav")
    assert done["url"] == asked["url"]
    expires = datetime.datetime.fromisoformat(done["urlExpirationDatetime"])
    assert expires > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=30)
    audio = requests.get(done["url"], timeout=5)
    assert (audio.status_code, audio.headers["Content-Type"]) == (200, "audio/wav")
    with wave.open(io.BytesIO(audio.content)) as file:
        assert file.getnframes() / file.getframerate() == 3
    fake_ovh.expire_audio_files()
    assert requests.get(done["url"], timeout=5).status_code == 404
    again = ovh_client.get(path, format="wav")  # Asked again after it expired: a new file, a new URL.
    assert again["url"] != done["url"] and again["status"] == "todo"


def test_a_file_never_ready_and_formats_the_simulator_cannot_make(ovh_client, fake_ovh):
    fake_ovh.file_ready_seconds = None
    message_id = fake_ovh.leave_message(LILLE_SIP_LINE, CALLER, 3)
    path = f"{LILLE_BOX}/directories/{message_id}/download"
    ovh_client.get(path, format="wav")
    time.sleep(1.2)
    never = ovh_client.get(path, format="wav")
    assert never["status"] == "doing" and requests.get(never["url"], timeout=5).status_code == 404
    with pytest.raises(ovh.exceptions.APIError, match="only produces wav"):
        ovh_client.get(path, format="mp3")
    with pytest.raises(ovh.exceptions.BadParametersError):
        ovh_client.get(path, format="midi")
    ovh_client.delete(f"{LILLE_BOX}/directories/{message_id}")
    with pytest.raises(ovh.exceptions.ResourceNotFoundError):
        ovh_client.get(path, format="wav")


def test_settings_decide_whether_a_message_reaches_the_list(ovh_client, fake_ovh):
    ovh_client.put(f"{LILLE_BOX}/settings", doNotRecord=True)
    assert fake_ovh.unanswered_call(LILLE_NUMBER, CALLER, 30) is None
    ovh_client.put(f"{LILLE_BOX}/settings", doNotRecord=False,
                   redirectionEmails=[{"email": "lille@example.org", "type": "attachment"}])  # fmt: skip
    assert fake_ovh.unanswered_call(LILLE_NUMBER, CALLER, 30) is None  # Mailed, then deleted.
    assert ovh_client.get(f"{LILLE_BOX}/directories") == []
    ovh_client.put(f"{LILLE_BOX}/settings", keepMessage=True)
    kept = fake_ovh.unanswered_call(LILLE_NUMBER, CALLER, 30)
    assert ovh_client.get(f"{LILLE_BOX}/directories", dir="inbox") == [kept]
    with pytest.raises(ovh.exceptions.BadParametersError):
        ovh_client.put(f"{LILLE_BOX}/settings", unreadMessages=3)  # Read-only.


def test_unanswered_calls_go_where_the_settings_send_them(ovh_client, fake_ovh):
    assert fake_ovh.voicemail_of(LILLE_NUMBER) == LILLE_SIP_LINE  # No permanence: the SIP line's no-reply forward.
    options = f"{ACCOUNT}/line/{LILLE_SIP_LINE}/options"
    ovh_client.put(options, forwardUnconditional=True, forwardUnconditionalNumber="0033639980001")
    assert fake_ovh.unanswered_call(LILLE_NUMBER, CALLER, 5) is None  # The volunteer's phone (and own voicemail).
    ovh_client.put(options, forwardUnconditional=False, forwardNoReply=False)
    assert fake_ovh.voicemail_of(LILLE_NUMBER) is None
    ovh_client.put(options, forwardBusy=True, forwardBusyNature="voicemail", forwardBusyNumber=LYON_VOICEMAIL)
    assert fake_ovh.voicemail_of(LILLE_NUMBER) == LYON_VOICEMAIL
    # Lyon: closed outside Monday 14:00-16:00, to its out-of-hours box; open, the queue's overflow.
    assert fake_ovh.voicemail_of(LYON_NUMBER, MONDAY_20H) == LYON_VOICEMAIL
    assert fake_ovh.voicemail_of(LYON_NUMBER, MONDAY_15H) is None
    ovh_client.put(f"{LYON}/hunting/queue/5001", actionOnOverflow="voicemail", actionOnOverflowParam=LILLE_SIP_LINE)
    assert fake_ovh.voicemail_of(LYON_NUMBER, MONDAY_15H) == LILLE_SIP_LINE
    ovh_client.put(f"{LYON}/timeConditions", unavailableType=None, unavailableNumber=None)
    assert fake_ovh.voicemail_of(LYON_NUMBER, MONDAY_20H) is None  # The closing message, nothing else.
    ovh_client.put(f"{LYON}/hunting/queue/5001", actionOnClosure="voicemail", actionOnClosureParam=LYON_VOICEMAIL)
    left = fake_ovh.unanswered_call(LYON_NUMBER, CALLER, 12, MONDAY_20H)
    message = ovh_client.get(f"{LYON_BOX}/directories/{left}")
    assert (message["callee"], message["creationDatetime"]) == (LYON_VOICEMAIL, "2026-11-23T20:00:00+01:00")


def test_a_deleted_line_takes_its_box_along(ovh_client, fake_ovh):
    fake_ovh.leave_message(LYON_VOICEMAIL, CALLER, 5)
    with fake_ovh._lock:
        del fake_ovh.state["billingAccounts"][DEMO_BILLING_ACCOUNT]["line"][LYON_VOICEMAIL]
    with pytest.raises(ovh.exceptions.ResourceNotFoundError):
        ovh_client.get(f"{LYON_BOX}/directories")
    assert ovh_client.get(f"{ACCOUNT}/voicemail") == [LILLE_SIP_LINE]


def test_the_demo_messages_are_in_lille_and_lyon(fake_ovh):
    assert leave_demo_messages(fake_ovh) == {LILLE_NUMBER: 2, LYON_NUMBER: 3}
    assert [m["duration"] for m in fake_ovh.messages_in(LILLE_SIP_LINE)] == [42, 17]
    assert len(fake_ovh.messages_in(LYON_VOICEMAIL)) == 3


def test_command_line_leaves_messages_at_start():
    process, conf = start_command(
        "--voicemail", f"{LILLE_SIP_LINE}:{CALLER}:42", "--voicemail", f"{LYON_VOICEMAIL}:0033639989902:7"
    )
    try:
        client = connect_ovh(conf["endpoint"], conf["application_key"], conf["application_secret"],
                             conf["consumer_key"])  # fmt: skip
        [lille] = client.get(f"{LILLE_BOX}/directories", dir="inbox")
        assert client.get(f"{LILLE_BOX}/directories/{lille}")["caller"] == CALLER
        [lyon] = client.get(f"{LYON_BOX}/directories", dir="inbox")
        assert client.get(f"{LYON_BOX}/directories/{lyon}")["duration"] == 7
    finally:
        stop_command(process)
    for wrong, says in (("0033353010001:42", "expected BOX:CALLER:SECONDS"),
                        ("0033399999999:0033639989901:42", "no SIP line 0033399999999")):  # fmt: skip
        result = subprocess.run([sys.executable, str(SIMULATOR), "--port", "0", "--voicemail", wrong],
                                capture_output=True, text=True, timeout=30)  # fmt: skip
        assert result.returncode == 2 and says in result.stderr, result.stderr
