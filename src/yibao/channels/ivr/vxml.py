"""VoiceXML 2.1 documents for platforms that speak VoiceXML.

A call enters at ``GET /ivr/vxml/start`` (the platform may pass the caller's
number as ``caller``); every document submits the keys to ``/ivr/vxml/step``
with the call id yibao gave the call. VoiceXML has no request signature:
with ``YIBAO_IVR_VXML_KEY`` set, a call starts only when the platform's
application URL carries that key (``?key=``); each later step is known by the
call id, an unguessable token made here; and the telephone PIN guards every
person's data. Run the platform and yibao on a network only they share.
"""

from __future__ import annotations

import hmac
import secrets
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from yibao.channels.ivr.common import (
    LANGUAGE_TAGS,
    public_base,
    recording,
    services,
    spoken_failures,
)
from yibao.config import Settings
from yibao.services.inquiry import dialog as ivr_service

VXML_NS = "http://www.w3.org/2001/vxml"
SRGS_NS = "http://www.w3.org/2001/06/grammar"
MEDIA_TYPE = "application/voicexml+xml"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

ET.register_namespace("", VXML_NS)


def _v(tag: str) -> str:
    return f"{{{VXML_NS}}}{tag}"


def _grammar(parent: ET.Element, gather: ivr_service.Gather) -> None:
    """An inline DTMF grammar: exactly n keys, or 1..max keys (with * for X)."""
    grammar = ET.SubElement(
        parent,
        _v("grammar"),
        {"mode": "dtmf", "version": "1.0", "root": "keys", "type": "application/srgs+xml"},
    )
    rule = ET.SubElement(grammar, _v("rule"), {"id": "keys", "scope": "public"})
    repeat = str(gather.digits) if gather.digits else f"1-{gather.max_digits}"
    item = ET.SubElement(rule, _v("item"), {"repeat": repeat})
    one_of = ET.SubElement(item, _v("one-of"))
    keys = list("0123456789") + ([] if gather.digits else ["*"])
    for key in keys:
        ET.SubElement(one_of, _v("item")).text = key


def _prompts(parent: ET.Element, turn: ivr_service.Turn, base: str, settings: Settings) -> None:
    for part in turn.speech:
        prompt = ET.SubElement(parent, _v("prompt"), {XML_LANG: LANGUAGE_TAGS[part.lang]})
        if recording(settings, part.lang, part.key) is not None:
            audio = ET.SubElement(
                prompt, _v("audio"), {"src": f"{base}/ivr/prompts/{part.lang}/{part.key}.wav"}
            )
            audio.text = part.text  # spoken if the recording cannot be fetched
        else:
            prompt.text = part.text


def render(turn: ivr_service.Turn, *, call_id: str, base: str, settings: Settings) -> str:
    """One dialog turn as a VoiceXML 2.1 document."""
    lang = turn.speech[0].lang if turn.speech else "zh"
    root = ET.Element(_v("vxml"), {"version": "2.1", XML_LANG: LANGUAGE_TAGS[lang]})
    ET.SubElement(root, _v("property"), {"name": "inputmodes", "value": "dtmf"})
    form = ET.SubElement(root, _v("form"), {"id": "turn"})
    step = f"{base}/ivr/vxml/step"
    if turn.gather is not None:
        timeout = f"{turn.gather.timeout}s"
        field = ET.SubElement(form, _v("field"), {"name": "digits"})
        ET.SubElement(field, _v("property"), {"name": "timeout", "value": timeout})
        ET.SubElement(field, _v("property"), {"name": "termchar", "value": "#"})
        ET.SubElement(field, _v("property"), {"name": "interdigittimeout", "value": timeout})
        _grammar(field, turn.gather)
        _prompts(field, turn, base, settings)
        noinput = ET.SubElement(field, _v("noinput"))
        ET.SubElement(
            noinput,
            _v("submit"),
            {"next": f"{step}?{urlencode({'call': call_id, 'silence': '1'})}", "method": "get"},
        )
        nomatch = ET.SubElement(field, _v("nomatch"))
        ET.SubElement(nomatch, _v("reprompt"))
        filled = ET.SubElement(field, _v("filled"))
        ET.SubElement(
            filled,
            _v("submit"),
            {
                "next": f"{step}?{urlencode({'call': call_id})}",
                "namelist": "digits",
                "method": "get",
            },
        )
        return _document(root)
    block = ET.SubElement(form, _v("block"))
    _prompts(block, turn, base, settings)
    if turn.transfer:
        ET.SubElement(
            form,
            _v("transfer"),
            {"name": "agent", "dest": f"tel:{turn.transfer}", "bridge": "true"},
        )
        ET.SubElement(ET.SubElement(form, _v("block")), _v("disconnect"))
    else:
        ET.SubElement(block, _v("disconnect"))
    return _document(root)


def _document(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _answer(body: str) -> Response:
    return Response(body, media_type=MEDIA_TYPE, headers={"Cache-Control": "no-store"})


def _failed(request: Request, turn: ivr_service.Turn) -> Response:
    settings = services(request).settings
    call_id = request.query_params.get("call", "")
    return _answer(
        render(turn, call_id=call_id, base=public_base(request, settings), settings=settings)
    )


router = APIRouter(prefix="/vxml", route_class=spoken_failures(_failed))


@router.api_route("/start", methods=["GET", "POST"])
def start(request: Request, caller: str = "", key: str = "") -> Response:
    svc = services(request)
    want = svc.settings.ivr_vxml_key
    if want and not hmac.compare_digest(key.encode(), want.encode()):
        return Response(
            "拒绝：key 参数缺失或错误 / refused: the key parameter is missing or wrong\n",
            status_code=403,
            media_type="text/plain; charset=utf-8",
        )
    call_id = "vxml-" + secrets.token_urlsafe(18)
    turn = ivr_service.start_call(svc.uow(), call_id=call_id, caller=caller, platform="vxml")
    base = public_base(request, svc.settings)
    return _answer(render(turn, call_id=call_id, base=base, settings=svc.settings))


@router.get("/step")
def step(request: Request, call: str, digits: str = "", silence: str = "") -> Response:
    svc = services(request)
    if not call.startswith("vxml-"):
        return Response(status_code=404)
    keys = None if silence else digits.replace(" ", "").replace("star", "*")
    turn = ivr_service.step(svc.uow(), call_id=call, digits=keys)
    base = public_base(request, svc.settings)
    return _answer(render(turn, call_id=call, base=base, settings=svc.settings))
