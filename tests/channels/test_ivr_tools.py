"""The telephone PIN set at the counter, the recorded prompts, the terminal
simulator and the demo's PINs."""

from __future__ import annotations

import json
import shutil
import wave
from array import array

import pytest

from tests.channels.ivr_phone import TwimlCall, ivr_settings
from tests.helpers import CliRunner
from yibao.cli import app as cli_app
from yibao.services.inquiry.dialog import LANGS, PROMPTS

runner = CliRunner()


@pytest.fixture
def settings(db_url, tmp_path):
    return ivr_settings(db_url, tmp_path)


def test_counter_staff_set_a_phone_pin_and_the_caller_uses_it(client, demo, token_for):
    p = demo["persons"][0]
    url = f"/api/v1/persons/{p['account_no']}/phone-pin"
    r = client.post(url, json={"pin": "975310"}, headers=token_for("wuxing"))
    assert r.status_code == 200, r.text
    assert r.json() == {"account_no": p["account_no"], "phone_pin_set": True}
    call = TwimlCall(client).dial().press("1").press("1").press(p["certno"] + "#")
    call.press(p["phone_pin"])  # the old one no longer works
    assert "密码不正确" in call.text
    call.press("975310")
    assert "您的个人账户余额" in call.text


def test_without_a_pin_one_is_made_and_shown_once(client, demo, token_for):
    p = demo["persons"][1]
    r = client.post(
        f"/api/v1/persons/{p['account_no']}/phone-pin", json={}, headers=token_for("wuxing")
    )
    assert r.status_code == 200 and len(r.json()["phone_pin"]) == 6


def test_phone_pin_rules_and_permissions(client, demo, token_for):
    p = demo["persons"][0]
    url = f"/api/v1/persons/{p['account_no']}/phone-pin"
    weak = client.post(url, json={"pin": "123456"}, headers=token_for("wuxing"))
    assert weak.status_code == 422 and weak.json()["code"] == "validation.weak"
    # the contribution clerk may read persons but not do counter card business
    assert (
        client.post(url, json={"pin": "975310"}, headers=token_for("wuxing_fund")).status_code
        == 403
    )
    # a clerk of another county does not see the person
    assert client.post(url, json={"pin": "975310"}, headers=token_for("nanxun")).status_code == 404
    assert client.post(url, json={"pin": "975310"}).status_code == 401


@pytest.fixture(scope="module")
def prompts(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("ESPEAK-NG MISSING: `make system-deps` as root installs it")
    folder = tmp_path_factory.mktemp("prompts")
    result = runner.invoke(cli_app, ["ivr", "prompts", "-o", str(folder)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return folder


def test_every_fixed_prompt_is_rendered_to_8khz_mono_wav_in_both_languages(prompts):
    for key in PROMPTS:
        for lang in LANGS:
            path = prompts / lang / f"{key}.wav"
            with wave.open(str(path), "rb") as w:
                assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
                frames = w.getnframes()
                samples = array("h", w.readframes(frames))
            assert frames / 8000 > 0.3, f"{path} is too short"
            assert max(abs(s) for s in samples) > 1000, f"{path} is silent"


def test_the_mandarin_and_english_recordings_differ(prompts):
    zh = (prompts / "zh" / "menu.wav").read_bytes()
    en = (prompts / "en" / "menu.wav").read_bytes()
    assert zh != en


@pytest.fixture
def env(env, monkeypatch):
    monkeypatch.setenv("YIBAO_IVR_AGENT_NUMBER", "+8657299999")
    return env


def test_the_terminal_simulator_runs_a_call(env, demo):
    p = demo["persons"][0]
    keys = ["2", "1", p["card_no"] + "#", p["phone_pin"], "", "0"]
    result = runner.invoke(
        cli_app, ["phone", "--no-sound"], input="\n".join(keys) + "\n", catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "For English, please press 2." in out
    assert "Your individual account balance is" in out
    assert "> (silence 无按键)" in out
    assert "transferred to the agent at +8657299999" in out


def test_the_simulator_ends_when_the_caller_hangs_up(env, demo):
    result = runner.invoke(cli_app, ["phone", "--no-sound"], input="1\n", catch_exceptions=False)
    assert result.exit_code == 0 and "来电方挂断" in result.output


def test_demo_json_gives_each_person_a_phone_pin():
    result = runner.invoke(cli_app, ["demo", "--json"], catch_exceptions=False)
    persons = json.loads(result.output)["persons"]
    assert all(len(p["phone_pin"]) == 6 and p["phone_pin"].isdigit() for p in persons)
    assert len({p["phone_pin"] for p in persons}) == len(persons)
