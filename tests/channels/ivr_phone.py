"""A telephone platform as the tests play it: a Twilio-compatible platform that
signs each webhook with the account's auth token, and a VoiceXML browser that
follows the documents' submit URLs. Only the edge we do not own is faked."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from twilio.request_validator import RequestValidator

from yibao.config import Settings

TOKEN = "test-twilio-auth-token"
AGENT = "+8657212345"
VXML = "{http://www.w3.org/2001/vxml}"
VXML_KEY = "vxml-platform-key"


def ivr_settings(db_url: str, tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        database_url=db_url,
        var_dir=tmp_path / "var",
        secret_key="test-secret-key",
        argon2_profile="fast",
        twilio_auth_token=TOKEN,
        ivr_agent_number=AGENT,
        ivr_vxml_key=VXML_KEY,
        **extra,
    )


def signed(url: str, params: dict[str, str], token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}


class TwimlCall:
    platform = "twiml"

    def __init__(self, client, caller: str = "+8613905720001") -> None:
        self.client = client
        self.caller = caller
        self.call_id = "CA" + secrets.token_hex(16)
        self.doc: ET.Element = ET.Element("Response")

    def _post(self, url: str, extra: dict[str, str]) -> ET.Element:
        params = {
            "AccountSid": "AC" + "0" * 32,
            "CallSid": self.call_id,
            "From": self.caller,
            "To": "+8657212300",
            "CallStatus": "in-progress",
            "Direction": "inbound",
            **extra,
        }
        r = self.client.post(url, data=params, headers=signed(url, params))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/xml")
        self.doc = ET.fromstring(r.text)
        assert self.doc.tag == "Response"
        return self.doc

    def dial(self) -> TwimlCall:
        self._post("https://testserver/ivr/twiml/voice", {})
        return self

    def _action(self) -> str:
        gather = self.doc.find("Gather")
        assert gather is not None, f"no Gather in {ET.tostring(self.doc)!r}"
        assert gather.get("actionOnEmptyResult") == "true"
        return gather.get("action") or ""

    def press(self, digits: str) -> TwimlCall:
        self._post(self._action(), {"Digits": digits})
        return self

    def silence(self) -> TwimlCall:
        self._post(self._action(), {})
        return self

    @property
    def text(self) -> str:
        return " ".join(e.text or "" for e in self.doc.iter("Say"))

    @property
    def hung_up(self) -> bool:
        return self.doc.find("Gather") is None and self.doc.find("Hangup") is not None

    @property
    def transferred_to(self) -> str | None:
        dial = self.doc.find("Dial")
        return dial.text if dial is not None else None


class VxmlCall:
    platform = "vxml"

    def __init__(self, client, caller: str = "+8613905720001") -> None:
        self.client = client
        self.caller = caller
        self.call_id = ""
        self.doc: ET.Element = ET.Element(VXML + "vxml")

    def _get(self, url: str) -> ET.Element:
        r = self.client.get(url)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/voicexml+xml")
        self.doc = ET.fromstring(r.text)  # well-formed XML ...
        assert self.doc.tag == VXML + "vxml"  # ... in the VoiceXML namespace
        assert self.doc.get("version") == "2.1"
        assert self.doc.find(VXML + "form") is not None
        for submit in self.doc.iter(VXML + "submit"):
            self.call_id = parse_qs(urlsplit(submit.get("next", "")).query)["call"][0]
        return self.doc

    def dial(self) -> VxmlCall:
        self._get("/ivr/vxml/start?" + urlencode({"caller": self.caller, "key": VXML_KEY}))
        return self

    def _submit(self, where: str) -> str:
        node = self.doc.find(f".//{VXML}field/{VXML}{where}/{VXML}submit")
        assert node is not None, f"no {where} submit in {ET.tostring(self.doc)!r}"
        return node.get("next") or ""

    def press(self, digits: str) -> VxmlCall:
        # the platform submits the field's value under its name (namelist)
        url = self._submit("filled")
        self._get(url + "&" + urlencode({"digits": digits.rstrip("#")}))
        return self

    def silence(self) -> VxmlCall:
        self._get(self._submit("noinput"))
        return self

    @property
    def text(self) -> str:
        return " ".join("".join(p.itertext()).strip() for p in self.doc.iter(VXML + "prompt"))

    @property
    def hung_up(self) -> bool:
        return (
            self.doc.find(f".//{VXML}field") is None
            and self.doc.find(f".//{VXML}disconnect") is not None
            and self.doc.find(f".//{VXML}transfer") is None
        )

    @property
    def transferred_to(self) -> str | None:
        node = self.doc.find(f".//{VXML}transfer")
        return (node.get("dest") or "").removeprefix("tel:") if node is not None else None


PLATFORMS = {"twiml": TwimlCall, "vxml": VxmlCall}
