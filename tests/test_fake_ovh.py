"""Tests of the OVH simulator, through the official ovh client and the simulator's helpers."""

import concurrent.futures
import datetime
import hashlib
import json
import os
import pwd
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import ovh
import pytest
import requests

import index
from cimade_ovh import simulator
from cimade_ovh.ovhapi import connect_ovh, wrapped
from cimade_ovh.simulator import (
    DEMO_APPLICATION_KEY,
    DEMO_APPLICATION_SECRET,
    DEMO_BILLING_ACCOUNT,
    DEMO_CONSUMER_KEY,
    LILLE_NUMBER,
    LILLE_SIP_LINE,
    LYON_NUMBER,
    LYON_VOICEMAIL,
    OTHER_BILLING_ACCOUNT,
    SCHEMA_PATH,
    demo_account,
    longest_chain,
)

SIMULATOR = Path(simulator.__file__).parent  # The folder, run by its path as IT may, from a shell.
LYON = f"/telephony/{DEMO_BILLING_ACCOUNT}/easyHunting/{LYON_NUMBER}"
LILLE_OPTIONS = f"/telephony/{DEMO_BILLING_ACCOUNT}/line/{LILLE_SIP_LINE}/options"
MONDAY_15H = datetime.datetime(2024, 5, 6, 15, 0, 0)  # a Monday, naive = Paris time
NEW_AGENT = {"number": "0033639980013", "simultaneousLines": 1, "status": "available", "timeout": 10, "wrapUpTime": 0}


def client_for(
    fake, consumer_key=DEMO_CONSUMER_KEY, secret=DEMO_APPLICATION_SECRET, key=DEMO_APPLICATION_KEY, timeout=(3.05, 8)
):
    """Return an ovh.Client on the simulator, built the project's way."""
    return connect_ovh(fake.url, key, secret, consumer_key, timeout)


MODELS = json.loads(SCHEMA_PATH.read_text())["models"]


def check_shape(model_name, value):
    """Assert a response has exactly the model's properties, null only where the schema allows it."""
    properties = MODELS[model_name]["properties"]
    assert set(value) == set(properties), model_name
    for name, prop in properties.items():
        if value[name] is None:
            assert prop["canBeNull"], f"{model_name}.{name} is null"


# --- Authentication ---


def test_auth_time_is_the_server_time(ovh_client):
    assert abs(ovh_client.get("/auth/time", _need_auth=False) - time.time()) < 5


def test_signed_call_accepted_and_last_use_recorded(ovh_client):
    assert ovh_client.get("/me")["nichandle"] == "xx12345-ovh"
    current = ovh_client.get("/auth/currentCredential")
    check_shape("auth.ApiCredential", current)
    assert current["status"] == "validated" and current["expiration"] is None and current["lastUse"]
    assert {"method": "DELETE", "path": "/*"} in current["rules"]


def test_wrong_secret_is_an_invalid_signature(fake_ovh):
    with pytest.raises(ovh.exceptions.BadParametersError, match="Invalid signature"):
        client_for(fake_ovh, secret="x" * 32).get("/me")


def test_timestamp_too_far_is_refused(fake_ovh):
    client = client_for(fake_ovh)
    client._time_delta = -600  # the client believes the server is 10 minutes behind
    with pytest.raises(ovh.exceptions.BadParametersError, match="out of time"):
        client.get("/me")


def test_unknown_application(fake_ovh):
    with pytest.raises(ovh.exceptions.InvalidKey):
        client_for(fake_ovh, key="unknownAppKey000").get("/me")


def test_unknown_consumer_key(fake_ovh):
    with pytest.raises(ovh.exceptions.InvalidCredential):
        client_for(fake_ovh, consumer_key="0" * 32).get("/me")


def test_missing_consumer_key_is_not_credential(ovh_client):
    response = ovh_client.raw_call("GET", "/me", need_auth=False)
    assert response.status_code == 403 and response.json()["errorCode"] == "NOT_CREDENTIAL"
    with pytest.raises(ovh.exceptions.NotCredential):
        ovh_client.get("/me", _need_auth=False)


def test_pending_and_expired_keys(fake_ovh):
    pending = fake_ovh.create_credential([{"method": "GET", "path": "/*"}], validated=False)
    with pytest.raises(ovh.exceptions.InvalidCredential, match="pendingValidation"):
        client_for(fake_ovh, pending).get("/me")
    fake_ovh.validate_credential(pending)
    assert client_for(fake_ovh, pending).get("/me")["nichandle"] == "xx12345-ovh"
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    expired = fake_ovh.create_credential([{"method": "GET", "path": "/*"}], expiration=past)
    with pytest.raises(ovh.exceptions.InvalidCredential, match="expired"):
        client_for(fake_ovh, expired).get("/me")


def test_access_rules_with_star(fake_ovh):
    key = fake_ovh.create_credential(
        [{"method": "GET", "path": f"/telephony/{DEMO_BILLING_ACCOUNT}/*"}, {"method": "GET", "path": "/me"}]
    )
    client = client_for(fake_ovh, key)
    assert client.get(LYON + "/hunting/agent") == [4001, 4002]
    assert client.get("/me")["nichandle"] == "xx12345-ovh"
    with pytest.raises(ovh.exceptions.NotGrantedCall, match=f"GET /telephony/{OTHER_BILLING_ACCOUNT}/redirect"):
        client.get(f"/telephony/{OTHER_BILLING_ACCOUNT}/redirect")
    with pytest.raises(ovh.exceptions.NotGrantedCall, match="POST"):
        client.post(LYON + "/hunting/agent", **NEW_AGENT)
    with pytest.raises(ovh.exceptions.NotGrantedCall):
        client.get("/me/api/credential")  # "/me" does not cover "/me/api/credential"


def test_credentials_of_the_application(ovh_client, fake_ovh):
    pending = fake_ovh.create_credential([{"method": "GET", "path": "/me"}], validated=False)
    ids = ovh_client.get("/me/api/credential")
    assert len(ids) == 2
    pending_ids = ovh_client.get("/me/api/credential", status="pendingValidation")
    assert len(pending_ids) == 1
    details = ovh_client.get(f"/me/api/credential/{pending_ids[0]}")
    check_shape("auth.ApiCredential", details)
    assert details["status"] == "pendingValidation"
    assert ovh_client.delete(f"/me/api/credential/{pending_ids[0]}") is None
    with pytest.raises(ovh.exceptions.InvalidCredential):
        client_for(fake_ovh, pending).get("/me")
    with pytest.raises(ovh.exceptions.ResourceNotFoundError, match=r"credentialId = 999"):
        ovh_client.get("/me/api/credential/999")


def open_validation_page(validation_url):
    """Read the validation page; return its HTML."""
    with urllib.request.urlopen(validation_url, timeout=5) as page:
        return page.read().decode()


def post_validation_form(validation_url, **fields):
    """Submit the validation page's form; return the answer's HTML."""
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(validation_url).query)["credentialToken"][0]
    data = urllib.parse.urlencode({"credentialToken": token, **fields}).encode()
    with urllib.request.urlopen(urllib.parse.urljoin(validation_url, "/auth/"), data, timeout=5) as page:
        return page.read().decode()


def test_validation_page_unlimited(fake_ovh):
    client = client_for(fake_ovh, consumer_key=None)
    rules = [{"method": "GET", "path": "/telephony/*"}, {"method": "GET", "path": "/auth/currentCredential"}]
    request = client.request_consumerkey(rules)
    assert request["state"] == "pendingValidation"
    page = open_validation_page(request["validationUrl"])
    assert "GET /telephony/*" in page and 'value="unlimited"' in page and 'type="date"' in page
    with pytest.raises(ovh.exceptions.InvalidCredential):
        client.get(LYON + "/hunting/agent")
    assert "validated" in post_validation_form(request["validationUrl"], action="validate", validity="unlimited")
    assert client.get(LYON + "/hunting/agent") == [4001, 4002]
    with pytest.raises(ovh.exceptions.NotGrantedCall):
        client.get("/telephony")  # "/telephony/*" needs the slash
    current = client.get("/auth/currentCredential")
    assert current["expiration"] is None and current["rules"] == rules
    with pytest.raises(ovh.exceptions.NotGrantedCall):
        client.get("/me")


def test_validation_page_days_date_and_refusal(fake_ovh):
    client = client_for(fake_ovh, consumer_key=None)
    url = client.request_consumerkey([{"method": "GET", "path": "/*"}])["validationUrl"]
    post_validation_form(url, action="validate", validity="days", days="3")
    expiration = datetime.datetime.fromisoformat(client.get("/auth/currentCredential")["expiration"])
    remaining = expiration - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(days=2, hours=23) < remaining <= datetime.timedelta(days=3)

    url = client.request_consumerkey([{"method": "GET", "path": "/*"}])["validationUrl"]
    yesterday = datetime.date.today() - datetime.timedelta(days=1)
    post_validation_form(url, action="validate", validity="date", date=yesterday.isoformat())
    with pytest.raises(ovh.exceptions.InvalidCredential, match="expired"):
        client.get("/me")

    url = client.request_consumerkey([{"method": "GET", "path": "/*"}])["validationUrl"]
    assert "refused" in post_validation_form(url, action="refuse")
    with pytest.raises(ovh.exceptions.InvalidCredential, match="refused"):
        client.get("/me")
    with pytest.raises(urllib.error.HTTPError):
        open_validation_page(url)  # already handled


def test_credential_request_is_checked(fake_ovh):
    client = client_for(fake_ovh, consumer_key=None)
    with pytest.raises(ovh.exceptions.BadParametersError, match="method"):
        client.request_consumerkey([{"method": "PATCH", "path": "/*"}])
    with pytest.raises(ovh.exceptions.InvalidKey):
        client_for(fake_ovh, key="unknownAppKey000").request_consumerkey([{"method": "GET", "path": "/*"}])


# --- Routes, shapes and schema validation ---


def test_every_read_route_answers_the_model(ovh_client):
    checks = {
        "/me": "nichandle.Nichandle",
        f"/telephony/{DEMO_BILLING_ACCOUNT}": "telephony.BillingAccountWithIAM",
        f"/telephony/{DEMO_BILLING_ACCOUNT}/line/{LILLE_SIP_LINE}": "telephony.Line",
        LILLE_OPTIONS: "telephony.LineOptions",
        f"/telephony/{DEMO_BILLING_ACCOUNT}/redirect/{LILLE_NUMBER}": "telephony.Redirect",
        LYON: "telephony.EasyHunting",
        LYON + "/hunting": "telephony.OvhPabxHunting",
        LYON + "/hunting/queue/5001": "telephony.OvhPabxHuntingQueue",
        LYON + "/hunting/agent/4001": "telephony.OvhPabxHuntingAgent",
        LYON + "/hunting/agent/4001/queue/5001": "telephony.OvhPabxHuntingAgentQueue",
        LYON + "/hunting/queue/5001/liveStatistics": "telephony.OvhPabxHuntingQueueLiveStatistics",
        LYON + "/timeConditions": "telephony.EasyHuntingTimeConditionsSettings",
        LYON + "/timeConditions/conditions/6001": "telephony.EasyHuntingTimeConditions",
    }
    for path, model in checks.items():
        check_shape(model, ovh_client.get(path))
    assert ovh_client.get(f"/telephony/{DEMO_BILLING_ACCOUNT}/line") == [LILLE_SIP_LINE, LYON_VOICEMAIL]
    assert ovh_client.get(f"/telephony/{DEMO_BILLING_ACCOUNT}/redirect") == [LILLE_NUMBER]
    assert ovh_client.get(f"/telephony/{DEMO_BILLING_ACCOUNT}/easyHunting") == [LYON_NUMBER]
    assert (
        ovh_client.get(f"/telephony/{OTHER_BILLING_ACCOUNT}/redirect/0033465719900")["destination"] == "0033465719901"
    )
    redirect = ovh_client.get(f"/telephony/{DEMO_BILLING_ACCOUNT}/redirect/{LILLE_NUMBER}")
    assert redirect["featureType"] == "redirect" and redirect["destination"] == LILLE_SIP_LINE
    assert ovh_client.get(LYON + "/hunting/queue") == [5001]
    assert ovh_client.get(LYON + "/hunting/queue/5001")["description"] == "File Lyon"
    assert ovh_client.get(LYON + "/hunting/queue/5001/agent") == [4001, 4002]
    assert ovh_client.get(LYON + "/hunting/agent/4002/queue") == [5001]
    agent = ovh_client.get(LYON + "/hunting/agent/4001")
    assert (agent["number"], agent["status"], agent["timeout"], agent["type"]) == (
        "0033639980011",
        "loggedOut",
        10,
        "external",
    )
    condition = ovh_client.get(LYON + "/timeConditions/conditions/6001")
    assert condition == {
        "conditionId": 6001,
        "weekDay": "monday",
        "timeFrom": "14:00:00",
        "timeTo": "16:00:00",
        "policy": "available",
    }


def test_full_flow_agent_queue_condition(ovh_client, fake_ovh):
    created = ovh_client.post(LYON + "/hunting/agent", description="Permanence", **NEW_AGENT)
    check_shape("telephony.OvhPabxHuntingAgent", created)
    agent_id = created["agentId"]
    assert created["type"] == "external" and created["number"] == "0033639980013"
    link = ovh_client.post(LYON + f"/hunting/agent/{agent_id}/queue", queueId=5001, position=3)
    assert link == {"agentId": agent_id, "queueId": 5001, "position": 3}
    assert ovh_client.get(LYON + "/hunting/queue/5001/agent") == [4001, 4002, agent_id]
    assert ovh_client.put(LYON + "/hunting/agent/4001", status="available") is None
    condition = ovh_client.post(
        LYON + "/timeConditions/conditions",
        weekDay="tuesday",
        timeFrom="09:00:00",
        timeTo="12:30:00",
        policy="available",
    )
    check_shape("telephony.EasyHuntingTimeConditions", condition)
    assert ovh_client.get(LYON + "/timeConditions/conditions", policy="available") == [6001, condition["conditionId"]]
    assert ovh_client.get(LYON + "/timeConditions/conditions", policy="slot1") == []
    tuesday = datetime.datetime(2024, 5, 7, 10, 0)
    assert fake_ovh.who_rings(LYON_NUMBER, tuesday) == ["0033639980011", "0033639980013"]
    assert ovh_client.put(LYON + f"/timeConditions/conditions/{condition['conditionId']}", timeTo="13:00:00") is None
    assert ovh_client.get(LYON + f"/timeConditions/conditions/{condition['conditionId']}")["timeTo"] == "13:00:00"
    assert ovh_client.delete(LYON + f"/timeConditions/conditions/{condition['conditionId']}") is None
    assert ovh_client.delete(LYON + f"/hunting/agent/{agent_id}/queue/5001") is None
    assert ovh_client.get(LYON + f"/hunting/agent/{agent_id}/queue") == []
    ovh_client.post(LYON + f"/hunting/agent/{agent_id}/queue", queueId=5001, position=3)
    assert ovh_client.delete(LYON + f"/hunting/agent/{agent_id}") is None
    assert ovh_client.get(LYON + "/hunting/agent") == [4001, 4002]
    assert ovh_client.get(LYON + "/hunting/queue/5001/agent") == [4001, 4002]  # its queue link went too
    assert fake_ovh.who_rings(LYON_NUMBER, tuesday) == []


def test_ovh_refusals(ovh_client):
    with pytest.raises(ovh.exceptions.BadParametersError, match="already exists"):
        ovh_client.post(
            LYON + "/timeConditions/conditions",
            weekDay="monday",
            timeFrom="14:00:00",
            timeTo="16:00:00",
            policy="available",
        )
    with pytest.raises(ovh.exceptions.BadParametersError, match="timeFrom"):
        ovh_client.post(
            LYON + "/timeConditions/conditions",
            weekDay="monday",
            timeFrom="16:00:00",
            timeTo="14:00:00",
            policy="available",
        )
    with pytest.raises(ovh.exceptions.BadParametersError, match="already exists"):
        ovh_client.post(LYON + "/hunting/agent", **{**NEW_AGENT, "number": "0033639980011"})
    with pytest.raises(ovh.exceptions.BadParametersError, match="already in the queue"):
        ovh_client.post(LYON + "/hunting/agent/4001/queue", queueId=5001, position=1)
    with pytest.raises(ovh.exceptions.BadParametersError, match="'number' is missing"):
        ovh_client.post(LYON + "/hunting/agent", simultaneousLines=1, status="available", timeout=10, wrapUpTime=0)


@pytest.mark.parametrize(
    "path, body, message",
    [
        (
            LILLE_OPTIONS,
            {"forwardUnconditionalNumber": "0639980011"},
            "'forwardUnconditionalNumber' is not a valid phoneNumber",
        ),
        (LILLE_OPTIONS, {"noSuchOption": True}, "'noSuchOption' does not exist"),
        (LILLE_OPTIONS, {"forwardUnconditional": "yes"}, "'forwardUnconditional' is not a valid boolean"),
        (LILLE_OPTIONS, {"voicemailExternalNumber": "0033353010098"}, "'voicemailExternalNumber' is read-only"),
        (LILLE_OPTIONS, {"language": "Klingon"}, "'language' is not a valid telephony.LineOptionLanguageEnum"),
        (LILLE_OPTIONS, {"forwardNoReplyDelay": "20"}, "'forwardNoReplyDelay' is not a valid long"),
        (LILLE_OPTIONS, {"forwardUnconditionalNumber": None}, "'forwardUnconditionalNumber' can not be null"),
        (
            LYON + "/hunting/agent/4001",
            {"status": "busy"},
            "'status' is not a valid telephony.OvhPabxHuntingAgentStatusEnum",
        ),
        (LYON + "/hunting/agent/4001", {"agentId": 5}, "'agentId' is read-only"),
        (LYON + "/hunting/agent/4001", {"timeout": True}, "'timeout' is not a valid long"),
        (LYON + "/timeConditions/conditions/6001", {"timeTo": "24:00:00"}, "'timeTo' is not a valid time"),
        (LYON + "/timeConditions/conditions/6001", {"timeTo": "16h00"}, "'timeTo' is not a valid time"),
    ],
)
def test_schema_validation_of_put_bodies(ovh_client, fake_ovh, path, body, message):
    before = fake_ovh.snapshot()["billingAccounts"]
    with pytest.raises(ovh.exceptions.BadParametersError, match=re.escape(message)):
        ovh_client.put(path, **body)
    assert fake_ovh.snapshot()["billingAccounts"] == before


def test_schema_validation_of_post_and_query(ovh_client):
    with pytest.raises(ovh.exceptions.BadParametersError, match="'weekDay' is not a valid"):
        ovh_client.post(
            LYON + "/timeConditions/conditions",
            weekDay="lundi",
            timeFrom="09:00:00",
            timeTo="10:00:00",
            policy="available",
        )
    with pytest.raises(ovh.exceptions.BadParametersError, match="'timeFrom' is not a valid time"):
        ovh_client.post(
            LYON + "/timeConditions/conditions",
            weekDay="monday",
            timeFrom="9:00",
            timeTo="10:00:00",
            policy="available",
        )
    with pytest.raises(ovh.exceptions.BadParametersError, match="'colour' is not a parameter"):
        ovh_client.post(LYON + "/hunting/agent", colour="blue", **NEW_AGENT)
    with pytest.raises(ovh.exceptions.BadParametersError, match="'policy' is not a valid"):
        ovh_client.get(LYON + "/timeConditions/conditions", policy="always")
    with pytest.raises(ovh.exceptions.BadParametersError, match="'agentId' is not a valid long"):
        ovh_client.get(LYON + "/hunting/agent/abc")
    assert ovh_client.raw_call("PUT", LILLE_OPTIONS).status_code == 200  # an empty PUT changes nothing


def test_non_json_body_is_refused(ovh_client):
    # The ovh client always sends JSON: sign and send a broken body by hand, as the client would sign it.
    url = ovh_client._endpoint + LILLE_OPTIONS
    timestamp = str(int(time.time()) + ovh_client.time_delta)
    text = "+".join([DEMO_APPLICATION_SECRET, DEMO_CONSUMER_KEY, "PUT", url, "{not json", timestamp])
    headers = {
        "X-Ovh-Application": DEMO_APPLICATION_KEY,
        "X-Ovh-Consumer": DEMO_CONSUMER_KEY,
        "X-Ovh-Timestamp": timestamp,
        "X-Ovh-Signature": "$1$" + hashlib.sha1(text.encode()).hexdigest(),
        "Content-Type": "application/json",
    }
    request = urllib.request.Request(url, data=b"{not json", headers=headers, method="PUT")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400 and "JSON" in json.loads(caught.value.read())["message"]


def test_not_found_and_unknown_routes(ovh_client):
    with pytest.raises(
        ovh.exceptions.ResourceNotFoundError, match=r"^The requested object \(agentId = 999\) does not exist$"
    ):
        ovh_client.get(LYON + "/hunting/agent/999")
    with pytest.raises(ovh.exceptions.ResourceNotFoundError, match="billingAccount = nope"):
        ovh_client.get("/telephony/nope/easyHunting")
    with pytest.raises(ovh.exceptions.ResourceNotFoundError, match="serviceName = 0033465710099"):
        ovh_client.get(f"/telephony/{DEMO_BILLING_ACCOUNT}/easyHunting/0033465710099/hunting")
    with pytest.raises(ovh.exceptions.ResourceNotFoundError, match="queueId = 77"):
        ovh_client.post(LYON + "/hunting/agent/4001/queue", queueId=77, position=1)
    with pytest.raises(ovh.exceptions.ResourceNotFoundError, match="invalid"):
        ovh_client.get("/telephony/x/y/z/nothing")
    with pytest.raises(ovh.exceptions.APIError) as caught:
        ovh_client.post(LYON + "/hunting")
    assert caught.value.response.status_code == 405
    with pytest.raises(ovh.exceptions.APIError, match="not simulated") as caught:
        ovh_client.get(LYON + "/hunting/agent/4001/liveStatus")
    assert caught.value.response.status_code == 501


def test_line_options_forward(ovh_client, fake_ovh):
    assert fake_ovh.who_rings(LILLE_NUMBER) == [LILLE_SIP_LINE]
    ovh_client.put(LILLE_OPTIONS, forwardUnconditional=True, forwardUnconditionalNumber="0033639980012")
    options = ovh_client.get(LILLE_OPTIONS)
    assert options["forwardUnconditional"] is True and options["forwardUnconditionalNumber"] == "0033639980012"
    assert fake_ovh.who_rings(LILLE_NUMBER) == ["0033639980012"]
    ovh_client.put(LILLE_OPTIONS, forwardUnconditional=False)
    assert fake_ovh.who_rings(LILLE_NUMBER) == [LILLE_SIP_LINE]
    assert fake_ovh.who_rings("0033465719900") == ["0033465719901"]


# --- Oracle ---


def test_who_rings_queue(fake_ovh, ovh_client):
    assert fake_ovh.who_rings(LYON_NUMBER, MONDAY_15H) == []  # both agents logged out
    ovh_client.put(LYON + "/hunting/agent/4002", status="available")
    assert fake_ovh.who_rings(LYON_NUMBER, MONDAY_15H) == ["0033639980012"]
    ovh_client.put(LYON + "/hunting/agent/4001", status="available")
    assert fake_ovh.who_rings(LYON_NUMBER, MONDAY_15H) == ["0033639980011", "0033639980012"]
    ovh_client.put(LYON + "/hunting/agent/4001/queue/5001", position=5)
    assert fake_ovh.who_rings(LYON_NUMBER, MONDAY_15H) == ["0033639980012", "0033639980011"]
    assert fake_ovh.who_rings(LYON_NUMBER, datetime.datetime(2024, 5, 6, 14, 0, 0)) != []
    assert fake_ovh.who_rings(LYON_NUMBER, datetime.datetime(2024, 5, 6, 16, 0, 0)) != []
    assert fake_ovh.who_rings(LYON_NUMBER, datetime.datetime(2024, 5, 6, 16, 0, 1)) == []
    assert fake_ovh.who_rings(LYON_NUMBER, datetime.datetime(2024, 5, 6, 13, 59, 59)) == []
    assert fake_ovh.who_rings(LYON_NUMBER, datetime.datetime(2024, 5, 7, 15, 0, 0)) == []  # Tuesday
    # 13:30 UTC on that Monday is 15:30 in Paris.
    assert fake_ovh.who_rings(LYON_NUMBER, datetime.datetime(2024, 5, 6, 13, 30, tzinfo=datetime.timezone.utc)) != []
    assert fake_ovh.who_rings(LYON_NUMBER, datetime.datetime(2024, 5, 6, 15, 30, tzinfo=datetime.timezone.utc)) == []
    ovh_client.put(LYON + "/hunting/agent/4002", status="onBreak")
    assert fake_ovh.who_rings(LYON_NUMBER, MONDAY_15H) == ["0033639980011"]
    ovh_client.put(LYON + "/timeConditions/conditions/6001", policy="slot1")
    assert fake_ovh.who_rings(LYON_NUMBER, MONDAY_15H) == []
    with pytest.raises(KeyError):
        fake_ovh.who_rings("0033465710099")


def test_time_condition_settings_are_read_and_written_as_the_schema_says(ovh_client):
    settings = ovh_client.get(LYON + "/timeConditions")
    check_shape("telephony.EasyHuntingTimeConditionsSettings", settings)
    assert settings["enable"] is True and settings["unavailableType"] == "voicemail"
    ovh_client.put(LYON + "/timeConditions", unavailableType="number", unavailableNumber="0033465710123")
    ovh_client.put(LYON + "/timeConditions", enable=False)
    settings = ovh_client.get(LYON + "/timeConditions")
    assert (settings["enable"], settings["unavailableType"], settings["unavailableNumber"]) == (
        False, "number", "0033465710123",
    )  # fmt: skip
    refused = [
        ({"unavailableType": "fax"}, "unavailableType"),
        ({"unavailableNumber": "04 65 71 01 23"}, "unavailableNumber"),
        ({"enable": "yes"}, "enable"),
        ({"enable": None}, "enable"),
        ({"closingTone": True}, "closingTone"),
        ({"slot2Type": "number"}, "slot2Number"),
        ({"unavailableNumber": None}, "unavailableNumber"),  # still of type number
    ]
    for body, named in refused:
        with pytest.raises(ovh.exceptions.BadParametersError, match=named):
            ovh_client.put(LYON + "/timeConditions", **body)
    assert ovh_client.get(LYON + "/timeConditions") == settings
    ovh_client.put(LYON + "/timeConditions", unavailableType=None, unavailableNumber=None)
    assert ovh_client.get(LYON + "/timeConditions")["unavailableType"] is None


def test_queue_strategy_is_read_and_written(ovh_client):
    assert ovh_client.get(LYON + "/hunting/queue/5001")["strategy"] == "sequentiallyByAgentOrder"
    ovh_client.put(LYON + "/hunting/queue/5001", strategy="ringAll")
    assert ovh_client.get(LYON + "/hunting/queue/5001")["strategy"] == "ringAll"
    with pytest.raises(ovh.exceptions.BadParametersError, match="strategy"):
        ovh_client.put(LYON + "/hunting/queue/5001", strategy="everybody")
    with pytest.raises(ovh.exceptions.BadParametersError, match="queueId"):
        ovh_client.put(LYON + "/hunting/queue/5001", queueId=5002)


@pytest.mark.parametrize("strategy", ["ringAll", "sequentiallyByAgentOrder"])
def test_who_rings_follows_the_time_condition_settings_and_the_strategy(fake_ovh, ovh_client, strategy):
    ovh_client.put(LYON + "/hunting/queue/5001", strategy=strategy)
    for agent_id in (4001, 4002):
        ovh_client.put(LYON + f"/hunting/agent/{agent_id}", status="available")
    ovh_client.put(LYON + "/hunting/agent/4001/queue/5001", position=3)
    monday_17h = datetime.datetime(2024, 5, 6, 17, 0, 0)
    # Enabled, in an available condition: the agents, in their order, together or one after the other.
    open_now = fake_ovh.who_rings(LYON_NUMBER, MONDAY_15H)
    assert open_now == ["0033639980012", "0033639980011"]
    assert (open_now.together, open_now.strategy, open_now.elsewhere) == (strategy == "ringAll", strategy, None)
    # Enabled, outside every condition: the out-of-hours destination, whichever strategy.
    closed = fake_ovh.who_rings(LYON_NUMBER, monday_17h)
    assert (closed, closed.elsewhere) == ([], "voicemail")
    ovh_client.put(LYON + "/timeConditions", unavailableType="number", unavailableNumber="0033465710123")
    assert fake_ovh.who_rings(LYON_NUMBER, monday_17h).elsewhere == "0033465710123"
    ovh_client.put(LYON + "/timeConditions", unavailableType=None, unavailableNumber=None)
    assert fake_ovh.who_rings(LYON_NUMBER, monday_17h).elsewhere == ""  # the closing message only
    # Enabled, in a slot condition: that slot's destination.
    ovh_client.put(LYON + "/timeConditions", slot1Type="voicemail")
    ovh_client.put(LYON + "/timeConditions/conditions/6001", policy="slot1")
    in_slot = fake_ovh.who_rings(LYON_NUMBER, MONDAY_15H)
    assert (in_slot, in_slot.elsewhere) == ([], "voicemail")
    # Disabled: the conditions change nothing, the available agents ring at any time.
    ovh_client.put(LYON + "/timeConditions", enable=False)
    for moment in (MONDAY_15H, monday_17h, datetime.datetime(2024, 5, 7, 3, 0, 0)):
        anytime = fake_ovh.who_rings(LYON_NUMBER, moment)
        assert anytime == ["0033639980012", "0033639980011"]
        assert (anytime.together, anytime.elsewhere) == (strategy == "ringAll", None)
    ovh_client.put(LYON + "/hunting/agent/4002", status="loggedOut")
    assert fake_ovh.who_rings(LYON_NUMBER, monday_17h) == ["0033639980011"]


def test_seeds_without_or_with_two_queues(fake_ovh, ovh_client):
    account = demo_account()
    hunting = account["billingAccounts"][DEMO_BILLING_ACCOUNT]["easyHunting"][LYON_NUMBER]
    hunting["queues"] = []
    fake_ovh.reset(account)
    assert ovh_client.get(LYON + "/hunting/queue") == []
    assert fake_ovh.who_rings(LYON_NUMBER, MONDAY_15H) == []
    second = dict(
        demo_account()["billingAccounts"][DEMO_BILLING_ACCOUNT]["easyHunting"][LYON_NUMBER]["queues"][0],
        queueId=5002,
        description="Second",
    )
    hunting["queues"] = [dict(second, queueId=5001), second]
    fake_ovh.reset(account)
    assert ovh_client.get(LYON + "/hunting/queue") == [5001, 5002]
    with pytest.raises(ValueError):
        fake_ovh.add_live_call(LYON_NUMBER)


# --- Traffic ---


def test_live_calls_and_statistics(fake_ovh, ovh_client):
    statistics = LYON + "/hunting/queue/5001/liveStatistics"
    fake_ovh.reset_statistics(LYON_NUMBER, at=datetime.datetime(2024, 5, 6, 9, 0))
    assert ovh_client.get(statistics) == {
        "callsAnswered": 0,
        "callsLost": 0,
        "callsTotal": 0,
        "totalCallDuration": 0,
        "totalWaitingDuration": 0,
        "lastReset": "2024-05-06T09:00:00+02:00",
    }
    begin = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=30)
    waiting = fake_ovh.add_live_call(LYON_NUMBER, begin=begin)
    answered = fake_ovh.add_live_call(LYON_NUMBER, state="Answered", agent="0033639980011")
    assert ovh_client.get(LYON + "/hunting/queue/5001/liveCalls") == [waiting, answered]
    live = ovh_client.get(LYON + f"/hunting/queue/5001/liveCalls/{waiting}")
    check_shape("telephony.OvhPabxHuntingQueueLiveCalls", live)
    assert live["state"] == "Waiting" and live["callerIdNumber"] == "0033639989999" and live["answered"] is None
    assert ovh_client.get(LYON + f"/hunting/queue/5001/liveCalls/{answered}")["agent"] == "0033639980011"
    fake_ovh.end_live_call(LYON_NUMBER, waiting)
    fake_ovh.answer_live_call(LYON_NUMBER, answered, "0033639980012")
    assert ovh_client.get(LYON + f"/hunting/queue/5001/liveCalls/{answered}")["agent"] == "0033639980012"
    fake_ovh.end_live_call(LYON_NUMBER, answered)
    assert ovh_client.get(LYON + "/hunting/queue/5001/liveCalls") == []
    with pytest.raises(ovh.exceptions.ResourceNotFoundError):
        ovh_client.get(LYON + f"/hunting/queue/5001/liveCalls/{waiting}")
    counters = ovh_client.get(statistics)
    assert (counters["callsTotal"], counters["callsAnswered"], counters["callsLost"]) == (2, 1, 1)
    assert counters["totalWaitingDuration"] >= 30
    fake_ovh.add_statistics(LYON_NUMBER, answered=3, lost=1, waiting_seconds=60, talk_seconds=600)
    counters = ovh_client.get(statistics)
    assert (counters["callsTotal"], counters["callsAnswered"], counters["callsLost"]) == (6, 4, 2)
    assert counters["totalCallDuration"] >= 600
    with pytest.raises(ValueError):
        fake_ovh.add_live_call(LYON_NUMBER, state="Answered")


# --- Faults ---


@pytest.mark.parametrize(
    "kind, error, status",
    [
        ("500", ovh.exceptions.APIError, 500),
        ("503", ovh.exceptions.APIError, 503),
        ("invalid_credential", ovh.exceptions.InvalidCredential, 403),
        ("drop", ovh.exceptions.HTTPError, None),
        ("gone", ovh.exceptions.ResourceNotFoundError, 404),
    ],
)
def test_fault_kinds(fake_ovh, ovh_client, kind, error, status):
    ovh_client.get("/me")  # keep-alive connection open before the fault
    fake_ovh.fail("GET", "/telephony/*", kind=kind)
    with pytest.raises(error):
        ovh_client.get(LYON + "/hunting/agent")
    assert fake_ovh.requests[-1]["status"] == status
    assert ovh_client.get(LYON + "/hunting/agent") == [4001, 4002]  # only once


def test_fault_nth_and_times(fake_ovh, ovh_client):
    fake_ovh.fail("GET", LYON + "/hunting/agent/*", nth=2, times=2)
    outcomes = []
    for _ in range(5):
        try:
            ovh_client.get(LYON + "/hunting/agent/4001")
            outcomes.append("ok")
        except ovh.exceptions.APIError:
            outcomes.append("fail")
    assert outcomes == ["ok", "fail", "fail", "ok", "ok"]
    assert ovh_client.get(LYON + "/hunting/agent") == [4001, 4002]  # did not match the pattern


def test_fault_after_applies_the_change(fake_ovh, ovh_client):
    fake_ovh.fail("POST", "/telephony/*/hunting/agent", kind="drop", after=True)
    with pytest.raises(ovh.exceptions.HTTPError):
        ovh_client.post(LYON + "/hunting/agent", **NEW_AGENT)
    assert ovh_client.get(LYON + "/hunting/agent") == [4001, 4002, 4003]
    fake_ovh.fail("PUT", "/telephony/*", kind="500", after=True)
    with pytest.raises(ovh.exceptions.APIError):
        ovh_client.put(LYON + "/hunting/agent/4001", status="available")
    assert ovh_client.get(LYON + "/hunting/agent/4001")["status"] == "available"


def test_fault_hang_until_client_timeout(fake_ovh):
    client = client_for(fake_ovh, timeout=(1, 0.5))
    client.get("/me")
    fake_ovh.fail("GET", "/me", kind="hang")
    with pytest.raises(ovh.exceptions.HTTPError) as raised:
        client.get("/me")
    assert isinstance(wrapped(raised.value), requests.ReadTimeout), "the client gave up waiting"
    fake_ovh.clear_faults()
    fake_ovh.fail("GET", "/me", kind="500")
    fake_ovh.clear_faults()
    assert client.get("/me")["nichandle"] == "xx12345-ovh"
    with pytest.raises(ValueError):
        fake_ovh.fail("GET", "/me", kind="teapot")


# --- Latency, request log, concurrency ---


def test_latency_and_concurrency_overlap(fake_ovh):
    fake_ovh.latency_ms = 200
    client = client_for(fake_ovh)
    client.get("/auth/time", _need_auth=False)
    client.get("/me")
    assert fake_ovh.requests[-1]["duration"] >= 0.2  # The simulator waited before answering.
    clients = [client_for(fake_ovh) for _ in range(10)]
    for each in clients:
        each._time_delta = 0
    barrier = threading.Barrier(len(clients))

    def ask(each):
        barrier.wait(10)
        each.get("/me")

    first = len(fake_ovh.requests)
    threads = [threading.Thread(target=ask, args=(each,)) for each in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    made = fake_ovh.requests[first:]
    assert len(made) == 10 and all(r["status"] == 200 for r in made)
    assert longest_chain(made) < 10  # Served one at a time, each would have waited for the one before.


def test_a_request_waiting_across_a_reset_changes_nothing(fake_ovh, ovh_client):
    """A slow test's last request must not land in the next test's fresh account, nor take its faults."""
    agent = LYON + "/hunting/agent/4001"
    description = ovh_client.get(agent)["description"]
    fake_ovh.latency_ms = 300
    client = client_for(fake_ovh)
    client._time_delta = 0
    failed = []

    def late_write():
        try:
            client.put(agent, description="written by the test before")
        except ovh.exceptions.HTTPError as error:
            failed.append(error)

    asked = len(fake_ovh.requests)
    thread = threading.Thread(target=late_write)
    thread.start()
    while len(fake_ovh.requests) == asked:  # Until the simulator holds the late write.
        time.sleep(0.01)
    fake_ovh.reset()
    fake_ovh.fail("PUT", agent, kind="503")
    thread.join(10)
    assert failed and "simulated fault" not in str(failed[0])  # Dropped, not answered.
    assert ovh_client.get(agent)["description"] == description
    with pytest.raises(ovh.exceptions.APIError, match="simulated fault"):  # The new test's fault is still there.
        ovh_client.put(agent, description="written by this test")


def test_request_log(fake_ovh, ovh_client):
    ovh_client.get(LYON + "/timeConditions/conditions", policy="available")
    ovh_client.put(LYON + "/hunting/agent/4001", status="available")
    with pytest.raises(ovh.exceptions.ResourceNotFoundError):
        ovh_client.get(LYON + "/hunting/agent/999")
    log = fake_ovh.requests
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("GET", "/auth/time", 200),
        ("GET", LYON + "/timeConditions/conditions", 200),
        ("PUT", LYON + "/hunting/agent/4001", 200),
        ("GET", LYON + "/hunting/agent/999", 404),
    ]
    assert log[1]["query"] == "policy=available" and log[2]["body"] == {"status": "available"}
    assert all(e["duration"] >= 0 and abs(e["time"] - time.time()) < 60 for e in log)
    fake_ovh.reset()
    assert fake_ovh.requests == []


def test_concurrent_agent_creation(fake_ovh):
    clients = [client_for(fake_ovh) for _ in range(20)]
    results = [None] * 20

    def create(index_):
        results[index_] = clients[index_].post(
            LYON + "/hunting/agent", **{**NEW_AGENT, "number": f"00336399801{index_:02d}"}
        )

    threads = [threading.Thread(target=create, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [result["agentId"] for result in results]
    assert len(set(ids)) == 20
    assert sorted(clients[0].get(LYON + "/hunting/agent")) == sorted([4001, 4002] + ids)


# --- Helpers, state file and command line ---


def test_reset_snapshot_and_conf(fake_ovh, ovh_client, tmp_path):
    ovh_client.delete(LYON + "/hunting/agent/4001")
    assert len(fake_ovh.snapshot()["billingAccounts"][DEMO_BILLING_ACCOUNT]["easyHunting"][LYON_NUMBER]["agents"]) == 1
    fake_ovh.latency_ms = 500
    fake_ovh.reset()
    assert fake_ovh.latency_ms == 0 and fake_ovh.snapshot() == demo_account()
    json.dumps(fake_ovh.snapshot())
    path = tmp_path / "ovh.conf"
    fake_ovh.write_ovh_conf(path)
    assert path.read_text() == (
        f"[default]\nendpoint = {fake_ovh.url}\napplication_key = {DEMO_APPLICATION_KEY}\n"
        f"application_secret = {DEMO_APPLICATION_SECRET}\nconsumer_key = {DEMO_CONSUMER_KEY}\n"
    )
    assert demo_account() is not demo_account() and demo_account() == demo_account()


def start_command(*arguments):
    """Start the simulator's command on a free port; return the process and its printed ovh.conf values."""
    process = subprocess.Popen(
        [sys.executable, str(SIMULATOR), "--port", "0", *arguments],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = [process.stdout.readline() for _ in range(5)]
    assert lines[0] == "[default]\n"
    conf = dict(line.strip().split(" = ", 1) for line in lines[1:])
    return process, conf


def stop_command(process):
    """Terminate the command and check it exits cleanly."""
    process.terminate()
    assert process.wait(timeout=10) == 0
    process.stdout.close()


def test_command_line_state_round_trip_and_validate(tmp_path):
    state = tmp_path / "state.json"
    process, conf = start_command("--state", str(state), "--traffic")
    try:
        client = connect_ovh(
            conf["endpoint"], conf["application_key"], conf["application_secret"], conf["consumer_key"]
        )
        assert len(client.get(LYON + "/hunting/queue/5001/liveCalls")) == 2
        created = client.post(LYON + "/hunting/agent", **NEW_AGENT)
        saved = json.loads(state.read_text())
        agents = saved["billingAccounts"][DEMO_BILLING_ACCOUNT]["easyHunting"][LYON_NUMBER]["agents"]
        assert created["agentId"] in [a["agentId"] for a in agents]
        request = client.request_consumerkey([{"method": "GET", "path": "/me"}])
        command = [sys.executable, str(SIMULATOR), "--validate", request["validationUrl"]]
        assert subprocess.run(command, capture_output=True, timeout=10).returncode == 0
        assert client.get("/me")["nichandle"] == "xx12345-ovh"
    finally:
        stop_command(process)
    process, conf = start_command("--state", str(state))
    try:
        client = connect_ovh(
            conf["endpoint"], conf["application_key"], conf["application_secret"], conf["consumer_key"]
        )
        assert created["agentId"] in client.get(LYON + "/hunting/agent")
        assert client.get(LYON + "/hunting/agent/" + str(created["agentId"]))["number"] == NEW_AGENT["number"]
    finally:
        stop_command(process)


def test_command_line_adds_a_queue_and_a_redirect_for_a_new_group(tmp_path):
    process, conf = start_command("--add-queue", "0033465719000", "--add-redirect", "0033465719500:0033465719501")
    try:
        (tmp_path / "ovh.conf").write_text(
            "[default]\n" + "".join(f"{key} = {value}\n" for key, value in conf.items()), encoding="utf-8"
        )
        groups = "".join(
            f"\n[{slug}]\nname = {slug}\nkind = {kind}\nbilling_account = {DEMO_BILLING_ACCOUNT}\nnumber = {number}\n"
            for slug, kind, number in (("grenoble", "queue", "0033465719000"), ("nantes", "redirect", "0033465719500"))
        )
        web_user = pwd.getpwuid(os.geteuid()).pw_name  # The page runs as this test does.
        (tmp_path / "lines.ini").write_text(f"[settings]\nweb_user = {web_user}\n" + groups, encoding="utf-8")
        result = subprocess.run(
            [sys.executable, str(Path(index.__file__)), "--check"],
            env={**os.environ, "LINES_INI": str(tmp_path / "lines.ini")}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert "ok     [grenoble] 04 65 71 90 00 : file d'appels n° 5002" in result.stdout, result.stdout
        assert "ok     [nantes] 04 65 71 95 00 : renvoi vers la ligne SIP 04 65 71 95 01" in result.stdout
    finally:
        stop_command(process)


def test_command_line_request_log(tmp_path):
    log = tmp_path / "requests.jsonl"
    process, conf = start_command("--log", str(log))
    try:
        client = connect_ovh(
            conf["endpoint"], conf["application_key"], conf["application_secret"], conf["consumer_key"]
        )
        client.get(LYON + "/hunting/agent")
        client.put(LYON + "/hunting/agent/4001", status="available")
    finally:
        stop_command(process)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("GET", "/auth/time", 200),
        ("GET", LYON + "/hunting/agent", 200),
        ("PUT", LYON + "/hunting/agent/4001", 200),
    ]
    assert entries[2]["body"] == {"status": "available"} and longest_chain(entries) == 3


# --- Waves: which request waited for which, whatever the load -----------------------------------


def test_in_waves_keeps_a_late_request_in_its_wave_and_a_dependent_one_in_the_next(fake_ovh, ovh_client):
    ovh_client.time_delta  # noqa: B018 (the client asks OVH's clock once, before the waves)
    agents, conditions = f"GET {LYON}/hunting/agent", f"GET {LYON}/timeConditions/conditions"

    def late_sibling():
        """Two requests that wait for nothing, the second sent once the first is held, as a loaded machine may."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(ovh_client.get, f"{LYON}/hunting/agent")
            while not [r for r in fake_ovh.requests if r["path"].endswith("/hunting/agent")]:
                time.sleep(0.01)
            time.sleep(0.2)
            second = ovh_client.get(f"{LYON}/timeConditions/conditions")
            return first.result(), second

    _, waves = fake_ovh.in_waves(late_sibling, [{agents, conditions}])
    assert waves == [{agents, conditions}]

    def one_after_the_other():
        return ovh_client.get(f"{LYON}/hunting/agent"), ovh_client.get(f"{LYON}/timeConditions/conditions")

    _, waves = fake_ovh.in_waves(one_after_the_other, [{agents, conditions}], timeout=0.5)
    assert waves == [{agents}, {conditions}]
