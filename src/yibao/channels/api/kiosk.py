"""Self-service terminals for staff consoles: the same register, issue and
deactivate as the counter pages and ``yibao kiosk``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from yibao.channels.api.deps import Staff, Work
from yibao.channels.api.errors import answers
from yibao.channels.api.fields import Body, Code, DivisionCode, Text
from yibao.domain.actors import Channel
from yibao.services.access import terminals as kiosk_service
from yibao.store.models import KioskTerminal

router = APIRouter(tags=["terminals 自助终端"])


class TerminalIn(Body):
    code: Code = Field(description="终端编号 terminal code, letters, digits and '-'")
    location: Text = Field(description="终端位置 where the machine stands")
    division_code: DivisionCode = Field(description="a division in your area")


def _terminal(t: KioskTerminal, state: str) -> dict[str, Any]:
    return {
        "code": t.code,
        "location": t.location,
        "division_code": t.division_code,
        "active": t.active,
        "state": state,
        "activated_at": t.activated_at.isoformat() if t.activated_at else None,
        "activation_expires": t.activation_expires.isoformat() if t.activation_expires else None,
    }


def _issued(issued: kiosk_service.IssuedCode, state: str) -> dict[str, Any]:
    return {
        **_terminal(issued.terminal, state),
        "activation_code": issued.activation_code,
        "expires_at": issued.expires_at.isoformat(),
    }


@router.get("/kiosk-terminals")
def list_terminals(ctx: Staff, work: Work) -> list[dict[str, Any]]:
    now = work.clock.now()
    return [
        _terminal(t, kiosk_service.terminal_state(t, now))
        for t in kiosk_service.list_terminals(work, actor=ctx.actor)
    ]


@router.post("/kiosk-terminals", status_code=201, responses=answers(409))
def register_terminal(body: TerminalIn, ctx: Staff, work: Work) -> dict[str, Any]:
    """Register a terminal; its one-time activation code is shown once."""
    issued = kiosk_service.register_terminal(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        code=body.code,
        location=body.location,
        division_code=body.division_code,
    )
    return _issued(issued, "pending")


@router.post(
    "/kiosk-terminals/{code}/activation-code", status_code=201, responses=answers(404, 409)
)
def issue_code(code: Code, ctx: Staff, work: Work) -> dict[str, Any]:
    """A new activation code, shown once; the machine bound so far stops working."""
    issued = kiosk_service.issue_code(work, actor=ctx.actor, channel=Channel.API, code=code)
    return _issued(issued, "pending")


@router.post("/kiosk-terminals/{code}/deactivate", responses=answers(404, 409))
def deactivate(code: Code, ctx: Staff, work: Work) -> dict[str, Any]:
    terminal = kiosk_service.deactivate_terminal(
        work, actor=ctx.actor, channel=Channel.API, code=code
    )
    return _terminal(terminal, "inactive")
