"""Designated institutions' equipment failures for staff consoles: the same
declaration as the HIS's extension transaction 9901 (seed 000, part three,
item 3). Staff of the institution's area declare one (with the permission
to manage institutions) and list them; every declaration is audited."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from yibao.channels.api.deps import Staff, Work
from yibao.channels.api.errors import answers
from yibao.channels.api.fields import Body, Code, Moment, Text
from yibao.domain.actors import Channel
from yibao.services.settlement import equipment

router = APIRouter(tags=["institutions 定点医药机构"])


class FailureIn(Body):
    start: Moment = Field(description="故障开始 when the failure began (with its offset)")
    end: Moment = Field(description="故障排除 when it was repaired; not in the future")
    reason: Text = Field(description="故障原因 what failed")


def _failure(f: equipment.FailureView) -> dict[str, Any]:
    return {
        "id": f.id,
        "institution_code": f.institution_code,
        "start": f.start_at.isoformat(),
        "end": f.end_at.isoformat(),
        "reason": f.reason,
        "declared_at": f.declared_at.isoformat(),
        "declared_by": f.declared_by,
        "channel": f.channel,
    }


@router.post(
    "/institutions/{code}/equipment-failures", status_code=201, responses=answers(404, 409)
)
def declare_failure(code: Code, body: FailureIn, ctx: Staff, work: Work) -> dict[str, Any]:
    """Declare an institution's equipment failure after the repair: cash
    visits inside it may then be recorded and re-settled."""
    return _failure(
        equipment.declare_failure(
            work,
            actor=ctx.actor,
            channel=Channel.API,
            institution_code=code,
            start=body.start,
            end=body.end,
            reason=body.reason,
        )
    )


@router.get("/institutions/{code}/equipment-failures", responses=answers(404))
def list_failures(code: Code, ctx: Staff, work: Work) -> list[dict[str, Any]]:
    return [
        _failure(f) for f in equipment.list_failures(work, actor=ctx.actor, institution_code=code)
    ]
