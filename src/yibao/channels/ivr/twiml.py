"""TwiML webhooks for Twilio-compatible platforms.

A call enters at ``POST /ivr/twiml/voice``; every later step is the ``action``
of a ``<Gather>`` the previous answer gave (``POST /ivr/twiml/step``). Each
request must carry a valid ``X-Twilio-Signature`` for the URL the platform
called and its form fields, made with ``YIBAO_TWILIO_AUTH_TOKEN``; otherwise
403 and nothing else.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Gather, VoiceResponse

from yibao.channels.ivr.common import (
    LANGUAGE_TAGS,
    public_base,
    public_url,
    recording,
    services,
    spoken_failures,
)
from yibao.config import Settings
from yibao.services.inquiry import dialog as ivr_service

TWIML = "application/xml"


async def _verified_form(request: Request, settings: Settings) -> dict[str, str] | None:
    form = await request.form()
    params = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    token = settings.twilio_auth_token
    signature = request.headers.get("x-twilio-signature", "")
    if not token or not signature:
        return None
    validator = RequestValidator(token)
    if not validator.validate(public_url(request, settings), params, signature):
        return None
    return params


def _forbidden() -> Response:
    return Response(status_code=403)


def render(turn: ivr_service.Turn, *, base: str, settings: Settings) -> str:
    """One dialog turn as a TwiML document."""
    response = VoiceResponse()
    step_url = f"{base}/ivr/twiml/step"
    target: VoiceResponse | Gather = response
    if turn.gather is not None:
        options: dict[str, object] = {
            "action": step_url,
            "method": "POST",
            "input": "dtmf",
            "timeout": turn.gather.timeout,
            "finish_on_key": "#",
            # silence comes back to the action too, with empty Digits
            "action_on_empty_result": True,
        }
        if turn.gather.digits:
            options["num_digits"] = turn.gather.digits
        target = Gather(**options)
    for part in turn.speech:
        if recording(settings, part.lang, part.key) is not None:
            target.play(f"{base}/ivr/prompts/{part.lang}/{part.key}.wav")
        else:
            target.say(part.text, language=LANGUAGE_TAGS[part.lang])
    if isinstance(target, Gather):
        response.append(target)
        # a platform that ignores actionOnEmptyResult falls through to here
        response.redirect(step_url, method="POST")
    elif turn.transfer:
        response.dial(turn.transfer)
        response.hangup()
    elif turn.hangup:
        response.hangup()
    return str(response)


def _answer(request: Request, turn: ivr_service.Turn) -> Response:
    settings = services(request).settings
    body = render(turn, base=public_base(request, settings), settings=settings)
    return Response(body, media_type=TWIML)


router = APIRouter(prefix="/twiml", route_class=spoken_failures(_answer))


@router.post("/voice")
async def voice(request: Request) -> Response:
    svc = services(request)
    params = await _verified_form(request, svc.settings)
    if params is None or not params.get("CallSid"):
        return _forbidden()
    turn = ivr_service.start_call(
        svc.uow(), call_id=params["CallSid"], caller=params.get("From", ""), platform="twiml"
    )
    return _answer(request, turn)


@router.post("/step")
async def step(request: Request) -> Response:
    svc = services(request)
    params = await _verified_form(request, svc.settings)
    if params is None or not params.get("CallSid"):
        return _forbidden()
    turn = ivr_service.step(svc.uow(), call_id=params["CallSid"], digits=params.get("Digits"))
    return _answer(request, turn)
