"""Equipment failures and the cash visits recorded under them (seed 000,
part three, item 3): "If the card cannot be used due to equipment failure of
the designated institution, the fee is paid in cash first, and then
re-settled according to the regulations at the original institution where
the failure occurred after the failure is eliminated."

So a re-settlement needs, and yibao keeps:

- a failure the institution declared (start, end, reason), through the HIS
  extension transaction ``9901`` or the staff API
  (``POST /api/v1/institutions/{code}/equipment-failures``);
- a cash visit recorded only inside a declared failure of the institution
  that records it, once per receipt number there (a unique index);
- no cash visit of a person at a time they were already seen, at any
  institution (the same minute of ``begntime``): a receipt copied by a
  second institution is refused;
- re-settled only by the recording institution, once, within
  ``YIBAO_HIS_RESETTLE_WINDOW_DAYS`` (``domain.settlement.decide``; once also
  by a unique index on the settlements).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from yibao.clock import CHINA
from yibao.domain.access import Perm
from yibao.domain.actors import Actor, Channel
from yibao.domain.errors import DomainError, conflict, invalid, not_found
from yibao.services.access.institution_auth import Caller
from yibao.services.tx import use_case
from yibao.store.models import EquipmentFailure, Institution, Visit
from yibao.store.uow import UnitOfWork

REASON_MAX = 200
# "the same time" of two visits of one person: the same minute
SAME_TIME = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class FailureView:
    id: int
    institution_code: str
    start_at: dt.datetime
    end_at: dt.datetime
    reason: str
    declared_at: dt.datetime
    declared_by: str
    channel: str


def _view(row: EquipmentFailure) -> FailureView:
    return FailureView(
        row.id,
        row.institution_code,
        row.start_at.astimezone(dt.UTC),
        row.end_at.astimezone(dt.UTC),
        row.reason,
        row.declared_at.astimezone(dt.UTC),
        row.declared_by,
        row.channel,
    )


def _declare(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    institution_code: str,
    start: dt.datetime,
    end: dt.datetime,
    reason: str,
    prefix: str = "",
) -> FailureView:
    """Record a failure, after the repair: its start and end are past, the
    end after the start, the start within the re-settlement window."""
    now = uow.clock.now()
    reason = reason.strip()
    if not reason:
        raise invalid(f"{prefix}reason", "请填写故障原因", "give the failure's reason", "missing")
    if len(reason) > REASON_MAX:
        raise invalid(f"{prefix}reason", "故障原因过长", f"reason is over {REASON_MAX} characters")
    if end <= start:
        raise invalid(f"{prefix}end", "故障结束时间应晚于开始时间", "the end is after the start")
    if end > now:
        raise invalid(
            f"{prefix}end",
            "故障排除后再申报，结束时间不能晚于当前时间",
            "declare a failure after the repair: its end is not in the future",
        )
    window = uow.settings.his_resettle_window_days
    if (now.astimezone(CHINA).date() - start.astimezone(CHINA).date()).days > window:
        raise invalid(
            f"{prefix}start",
            f"故障开始时间早于{window}天的重新结算期限",
            f"the start is before the re-settlement window of {window} days",
        )
    row = EquipmentFailure(
        institution_code=institution_code,
        start_at=start,
        end_at=end,
        reason=reason,
        declared_at=now,
        declared_by=f"{actor.kind}:{actor.id}"[:80],
        channel=channel,
    )
    uow.session.add(row)
    uow.session.flush()
    uow.audit(
        actor.record(
            channel=channel,
            action="equipment_failure.declare",
            subject=institution_code,
            detail={"failure_id": row.id, "start": start.isoformat(), "end": end.isoformat()},
        )
    )
    return _view(row)


def _institution(uow: UnitOfWork, actor: Actor, code: str) -> Institution:
    """An institution in the staff member's area; another area's is not found."""
    inst = uow.session.execute(
        select(Institution).where(Institution.code == code)
    ).scalar_one_or_none()
    if inst is None or not actor.sees(inst.division_code):
        raise not_found("定点医药机构", "institution", "institution.not_found")
    return inst


@use_case
def declare_failure(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    institution_code: str,
    start: dt.datetime,
    end: dt.datetime,
    reason: str,
) -> FailureView:
    """Staff of the institution's area record its failure (staff API)."""
    actor.require(Perm.INSTITUTION_WRITE)
    inst = _institution(uow, actor, institution_code)
    return _declare(
        uow,
        actor=actor,
        channel=channel,
        institution_code=inst.code,
        start=start,
        end=end,
        reason=reason,
    )


@use_case
def list_failures(uow: UnitOfWork, *, actor: Actor, institution_code: str) -> list[FailureView]:
    """An institution's declared failures, newest first."""
    inst = _institution(uow, actor, institution_code)
    rows = uow.session.execute(
        select(EquipmentFailure)
        .where(EquipmentFailure.institution_code == inst.code)
        .order_by(EquipmentFailure.start_at.desc(), EquipmentFailure.id.desc())
    ).scalars()
    return [_view(r) for r in rows]


def declare_for_his(
    uow: UnitOfWork, caller: Caller, *, start: dt.datetime, end: dt.datetime, reason: str
) -> FailureView:
    """The institution's own HIS declares its failure (9901); the step of
    ``settlement.declare_failure``, under the msgid's idempotency."""
    return _declare(
        uow,
        actor=caller.actor,
        channel=Channel.HIS,
        institution_code=caller.code,
        start=start,
        end=end,
        reason=reason,
        prefix="input.data.",
    )


def covering(uow: UnitOfWork, caller: Caller, begntime: dt.datetime) -> int:
    """The institution's declared failure the cash visit's time falls in."""
    found = uow.session.execute(
        select(EquipmentFailure.id)
        .where(
            EquipmentFailure.institution_code == caller.code,
            EquipmentFailure.start_at <= begntime,
            EquipmentFailure.end_at >= begntime,
        )
        .order_by(EquipmentFailure.id)
        .limit(1)
    ).scalar()
    if found is None:
        raise DomainError(
            code="resettle.no_failure",
            zh="该时间不在本机构已申报的设备故障期间内，不能登记现金就诊",
            en="begntime is not within an equipment failure this institution declared "
            "(9901, or the staff API); a cash visit is recorded only inside one",
            field="input.data.begntime",
            status=409,
        )
    return int(found)


def receipt_recorded() -> DomainError:
    return conflict(
        "visit.receipt_recorded", "该发票已登记", "this receipt is already recorded", "invono"
    )


def check_cash_visit(
    uow: UnitOfWork, caller: Caller, *, person_id: int, begntime: dt.datetime, invono: str
) -> None:
    """A receipt is recorded once per institution; a person seen at any
    institution at that time (a visit registered, settled or recorded there)
    is not recorded as paying cash here at the same time."""
    if uow.session.execute(
        select(Visit.id).where(
            Visit.institution_code == caller.code,
            Visit.invono == invono,
            Visit.cash_fallback,
        )
    ).first():
        raise receipt_recorded()
    minute = begntime.replace(second=0, microsecond=0)
    seen = uow.session.execute(
        select(Visit.institution_code).where(
            Visit.person_id == person_id,
            Visit.begntime >= minute,
            Visit.begntime < minute + SAME_TIME,
            Visit.status != "cancelled",
        )
    ).first()
    if seen is not None:
        raise conflict(
            "visit.same_time",
            "该参保人同一时间已有就诊记录(已登记或已结算)，不能再登记现金就诊",
            "the person has a visit at this time already (registered or settled, at this "
            "or another institution); the cash visit is not recorded again",
            "begntime",
        )
