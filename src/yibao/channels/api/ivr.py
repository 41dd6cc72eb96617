"""The telephone line's staff side: setting a person's telephone PIN at the
counter, and the agent's console reading who is on a transferred call."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from yibao.channels.api import views
from yibao.channels.api.deps import Holder, Staff, Work
from yibao.channels.api.errors import answers
from yibao.channels.api.fields import AccountNo, Body, Code, Pin
from yibao.domain.actors import Channel
from yibao.services.access import phone_pin
from yibao.services.inquiry import dialog as ivr_service

router = APIRouter(tags=["telephone 电话查询"])


class PhonePinIn(Body):
    pin: Pin | None = Field(
        default=None,
        description="6-digit telephone PIN chosen by the person; without it one is made and returned once",
    )


@router.post("/persons/{account_no}/phone-pin", responses=answers(404))
def set_phone_pin(
    account_no: AccountNo, body: PhonePinIn, ctx: Staff, person_id: Holder, work: Work
) -> dict[str, Any]:
    new = phone_pin.set_phone_pin(
        work, actor=ctx.actor, channel=Channel.API, person_id=person_id, pin=body.pin
    )
    out: dict[str, Any] = {"account_no": account_no, "phone_pin_set": True}
    if new is not None:
        out["phone_pin"] = new
    return out


@router.get("/ivr/calls/{call_id}", responses=answers(404))
def get_call(call_id: Code, ctx: Staff, work: Work) -> dict[str, Any]:
    """For the agent's console: the call and the person the caller proved to be.
    A call whose person is outside your area is not found (404), like any
    other object there; so is a call where nobody was proven before it was
    transferred to an agent."""
    view = ivr_service.get_call(work, actor=ctx.actor, channel=Channel.API, call_id=call_id)
    call = view.call
    return {
        "call_id": call.call_id,
        "platform": call.platform,
        "caller": call.caller,
        "state": call.state,
        "lang": call.lang,
        "started_at": call.started_at.isoformat(),
        "transferred_at": call.transferred_at.isoformat() if call.transferred_at else None,
        "agent_number": call.agent_number,
        "person": views.person(view.person) if view.person else None,
    }
