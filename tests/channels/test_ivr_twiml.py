"""The telephone platforms' gates: a TwiML request counts only with the
platform's signature over the URL it called and its form fields; a VoiceXML
call starts only with the configured key."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import func, select

from tests.channels.ivr_phone import VXML_KEY, TwimlCall, VxmlCall, ivr_settings, signed
from yibao.store.models import IvrCall

PARAMS = {"CallSid": "CA" + "1" * 32, "From": "+8613905720001", "To": "+8657212300"}


@pytest.fixture
def settings(db_url, tmp_path):
    return ivr_settings(db_url, tmp_path)


def calls(uow) -> int:
    with uow:
        return uow.session.execute(select(func.count()).select_from(IvrCall)).scalar_one()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
        signed("https://testserver/ivr/twiml/voice", PARAMS, token="another-account-token"),
        signed("https://elsewhere.example/ivr/twiml/voice", PARAMS),
        signed("https://testserver/ivr/twiml/voice", {**PARAMS, "From": "+8613800000000"}),
    ],
    ids=["missing", "garbage", "other-token", "other-url", "tampered-field"],
)
def test_a_bad_or_missing_signature_gets_403_and_nothing_else(client, demo, uow, headers):
    r = client.post("/ivr/twiml/voice", data=PARAMS, headers=headers)
    assert r.status_code == 403 and r.content == b""
    assert calls(uow) == 0


def test_a_step_with_a_bad_signature_reveals_nothing(client, demo):
    call = TwimlCall(client).dial()
    p = {"CallSid": call.call_id, "Digits": "1"}
    r = client.post("/ivr/twiml/step", data=p, headers={"X-Twilio-Signature": "x"})
    assert r.status_code == 403 and r.content == b""


def test_without_a_configured_token_every_webhook_is_refused(client, demo, settings):
    settings.twilio_auth_token = ""
    r = client.post(
        "/ivr/twiml/voice",
        data=PARAMS,
        headers=signed("https://testserver/ivr/twiml/voice", PARAMS),
    )
    assert r.status_code == 403


def test_behind_a_proxy_the_forwarded_url_is_the_one_checked(client, demo):
    url = "https://ivr.yibao.example/ivr/twiml/voice"
    headers = {
        **signed(url, PARAMS),
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "ivr.yibao.example",
    }
    r = client.post("http://10.0.0.5:8000/ivr/twiml/voice", data=PARAMS, headers=headers)
    assert r.status_code == 200, r.text
    gather = ET.fromstring(r.text).find("Gather")
    assert gather is not None and gather.get("action") == "https://ivr.yibao.example/ivr/twiml/step"


def test_a_configured_public_url_is_the_one_checked(client, demo, settings):
    settings.ivr_public_url = "https://hotline.example.cn/"
    url = "https://hotline.example.cn/ivr/twiml/voice"
    r = client.post("/ivr/twiml/voice", data=PARAMS, headers=signed(url, PARAMS))
    assert r.status_code == 200, r.text
    r = client.post(
        "/ivr/twiml/voice",
        data=PARAMS,
        headers=signed("https://testserver/ivr/twiml/voice", PARAMS),
    )
    assert r.status_code == 403


def test_recorded_prompts_are_played_when_rendered(client, demo, settings, tmp_path):
    folder = tmp_path / "prompts"
    (folder / "zh").mkdir(parents=True)
    (folder / "zh" / "welcome.wav").write_bytes(b"RIFF")
    settings.ivr_prompt_dir = folder
    call = TwimlCall(client).dial()
    play = call.doc.find("Gather/Play")
    assert play is not None and play.text == "https://testserver/ivr/prompts/zh/welcome.wav"
    assert "For English" in call.text  # the English one is not rendered: spoken
    assert client.get("/ivr/prompts/zh/welcome.wav").content == b"RIFF"
    assert client.get("/ivr/prompts/en/welcome.wav").status_code == 404
    assert client.get("/ivr/prompts/zh/..%2Fsecret.wav").status_code == 404


@pytest.mark.parametrize("key", [None, "", "wrong-key", VXML_KEY + "x"])
def test_a_voicexml_call_without_the_configured_key_does_not_start(client, demo, uow, key):
    url = "/ivr/vxml/start?caller=%2B8613905720001" + ("" if key is None else f"&key={key}")
    r = client.get(url)
    assert r.status_code == 403 and "key" in r.text
    assert calls(uow) == 0
    call = VxmlCall(client).dial()  # with the key, the call starts
    assert call.call_id.startswith("vxml-") and calls(uow) == 1


def test_without_a_configured_key_a_voicexml_call_starts_as_before(client, demo, uow, settings):
    settings.ivr_vxml_key = ""
    r = client.get("/ivr/vxml/start")
    assert r.status_code == 200 and "vxml" in r.text
    assert calls(uow) == 1


@pytest.mark.parametrize("platform", [TwimlCall, VxmlCall])
def test_when_the_database_fails_the_caller_hears_so_and_the_call_ends(
    request, client, app, db_url, demo, platform
):
    from tests.channels.states import lose_the_database

    call = platform(client).dial().press("1")
    lose_the_database(request, app, db_url)
    call.press("1")  # the platform gets its own document, no JSON, no trace
    assert "系统暂时无法办理，请稍后再拨" in call.text
    assert "Please call again later" in call.text and call.hung_up
