"""Enrolment, contribution rules, assessments, payments, arrears and the
monthly crediting of individual accounts (Social Insurance Law art. 4)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, or_, select, text
from sqlalchemy.orm import Session

from yibao.domain import ledger as codes
from yibao.domain import money
from yibao.domain.access import Perm
from yibao.domain.actors import Actor
from yibao.domain.areas import areas_up, nearest
from yibao.domain.errors import DomainError, conflict, invalid, not_found
from yibao.domain.use import PersonState
from yibao.domain.values import is_digits
from yibao.services import idempotency
from yibao.services.ledger import backends, ledger, monthly_credit
from yibao.services.registry import registry
from yibao.services.registry.registry import get_employer, in_scope
from yibao.services.tx import use_case
from yibao.store.models import (
    Assessment,
    ContributionLine,
    ContributionRule,
    Employer,
    Enrolment,
    Payment,
    Person,
)
from yibao.store.uow import UnitOfWork

EMPLOYEE = "310"
RESIDENT = "390"
SCHEMES = {EMPLOYEE: "职工基本医疗保险", RESIDENT: "城乡居民基本医疗保险"}
PSN_TYPES = {"employee", "flexible", "retiree", "resident"}


def month_int(value: str | int, *, field: str = "month") -> int:
    """'2026-11' or 202611 -> 202611."""
    raw = str(value).strip().replace("-", "")
    if len(raw) != 6 or not is_digits(raw) or not 1 <= int(raw[4:]) <= 12:
        raise invalid(field, "月份格式应为YYYY-MM", "a month is written YYYY-MM", "format")
    return int(raw)


def month_text(month: int) -> str:
    return f"{month // 100:04d}-{month % 100:02d}"


def month_of(day: dt.date) -> int:
    return day.year * 100 + day.month


def next_month(month: int) -> int:
    y, m = divmod(month, 100)
    return (y + 1) * 100 + 1 if m == 12 else month + 1


def months_between(first: int, last: int) -> list[int]:
    out = []
    m = first
    while m <= last:
        out.append(m)
        m = next_month(m)
    return out


# the one rounding of a share (domain.money): half a fen away from zero, so
# that a negative amount rounds as the mirror of the positive one
portion = money.portion


# ---------------------------------------------------------------- rules


def set_rule(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    area: str,
    year: int,
    insutype: str,
    base_floor: int,
    base_ceiling: int,
    employer_rate_bp: int,
    individual_rate_bp: int,
    account_share_bp: int = 10000,
    retiree_monthly_credit: int = 0,
    resident_annual_premium: int = 0,
    grace_months: int = 3,
) -> ContributionRule:
    """Keep an area's rule for a year as data; a second call replaces it."""
    if insutype not in SCHEMES:
        raise invalid("insutype", "险种应为310或390", "insutype is 310 or 390")
    if not 0 < base_floor <= base_ceiling:
        raise invalid(
            "base_floor", "缴费基数下限应大于0且不高于上限", "0 < base floor <= base ceiling"
        )
    for name, bp in (
        ("employer_rate_bp", employer_rate_bp),
        ("individual_rate_bp", individual_rate_bp),
        ("account_share_bp", account_share_bp),
    ):
        if not 0 <= bp <= 10000:
            raise invalid(
                name, "费率以基点表示，应在0至10000之间", "rates are basis points, 0 to 10000"
            )
    if grace_months < 1:
        raise invalid("grace_months", "宽限月数至少为1", "at least one month of grace")
    rule = uow.session.execute(
        select(ContributionRule).where(
            ContributionRule.area == area,
            ContributionRule.year == year,
            ContributionRule.insutype == insutype,
        )
    ).scalar_one_or_none()
    if rule is None:
        rule = ContributionRule(area=area, year=year, insutype=insutype)
        uow.session.add(rule)
    rule.base_floor, rule.base_ceiling = base_floor, base_ceiling
    rule.employer_rate_bp, rule.individual_rate_bp = employer_rate_bp, individual_rate_bp
    rule.account_share_bp = account_share_bp
    rule.retiree_monthly_credit = retiree_monthly_credit
    rule.resident_annual_premium = resident_annual_premium
    rule.grace_months = grace_months
    uow.session.flush()
    uow.audit(
        actor.record(
            channel=channel, action="contribution_rule.set", subject=f"{area}/{year}/{insutype}"
        )
    )
    return rule


def rule_for(session: Session, *, area: str, year: int, insutype: str) -> ContributionRule:
    """The rule of the area, else of its city, else of its province."""
    rows = session.scalars(
        select(ContributionRule).where(
            ContributionRule.area.in_(areas_up(area)),
            ContributionRule.year == year,
            ContributionRule.insutype == insutype,
        )
    )
    rule = nearest({r.area: r for r in rows}, area)
    if rule is not None:
        return rule
    raise DomainError(
        code="contribution.no_rule",
        zh=f"{area}地区{year}年没有{SCHEMES.get(insutype, insutype)}缴费规则",
        en=f"no contribution rule for area {area}, year {year}, insutype {insutype}",
        status=409,
    )


# ---------------------------------------------------------------- enrolment


def enrol(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person: Person,
    insutype: str,
    psn_type: str,
    start: dt.date,
    base: int = 0,
    employer: Employer | None = None,
    area: str | None = None,
) -> Enrolment:
    """Enrol a person in a scheme: through an employer, or as an individual."""
    actor.require(Perm.PERSON_WRITE)
    return open_enrolment(
        uow,
        actor=actor,
        channel=channel,
        person=person,
        insutype=insutype,
        psn_type=psn_type,
        start=start,
        base=base,
        employer=employer,
        area=area,
    )


def open_enrolment(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person: Person,
    insutype: str,
    psn_type: str,
    start: dt.date,
    base: int = 0,
    employer: Employer | None = None,
    area: str | None = None,
) -> Enrolment:
    """The enrolment itself, for a caller that has checked who may open it:
    staff with the right to write persons (``enrol``), or an employer taking
    on an employee of its own (``roll.hire``)."""
    if insutype not in SCHEMES:
        raise invalid(
            "insutype", "险种应为310或390", "insutype is 310 (employee) or 390 (resident)"
        )
    if psn_type not in PSN_TYPES:
        raise invalid(
            "psn_type", "人员类别错误", f"psn_type is one of {', '.join(sorted(PSN_TYPES))}"
        )
    if psn_type == "employee" and employer is None:
        raise invalid(
            "employer_uscc",
            "职工参保须由用人单位办理",
            "an employee is enrolled through an employer",
        )
    if insutype == RESIDENT and psn_type != "resident":
        raise invalid(
            "psn_type",
            "居民医保的人员类别为resident",
            "resident insurance is for psn_type resident",
        )
    if person.status != "active":
        raise conflict(
            "person.not_active", "该人员参保关系已终止", "the person's insurance has ended"
        )
    area_code = area or (employer.division_code[:6] if employer else person.division_code[:6])
    if insutype == EMPLOYEE and psn_type in ("employee", "flexible"):
        rule = rule_for(uow.session, area=area_code, year=start.year, insutype=insutype)
        if base <= 0:
            base = rule.base_floor
        base = min(max(base, rule.base_floor), rule.base_ceiling)
    open_one = uow.session.execute(
        select(Enrolment).where(
            Enrolment.person_id == person.id,
            Enrolment.insutype == insutype,
            Enrolment.status != "terminated",
        )
    ).scalar_one_or_none()
    if open_one is not None:
        raise conflict(
            "enrolment.exists",
            "该人员已参加该险种",
            "the person is already enrolled in this scheme",
        )
    now = uow.clock.now()
    enrolment = Enrolment(
        person_id=person.id,
        insutype=insutype,
        psn_type=psn_type,
        employer_id=employer.id if employer else None,
        area=area_code,
        base=base,
        status="active",
        start_date=start,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(enrolment)
    uow.session.flush()
    uow.audit(
        actor.record(
            channel=channel,
            action="enrolment.create",
            person_id=person.id,
            subject=f"{insutype}/{psn_type}",
            detail={"employer": employer.uscc if employer else None, "area": area_code},
        )
    )
    return enrolment


def enrolments_of(session: Session, person_id: int) -> list[Enrolment]:
    return list(
        session.execute(
            select(Enrolment)
            .where(Enrolment.person_id == person_id)
            .order_by(Enrolment.start_date, Enrolment.id)
        ).scalars()
    )


def current_enrolment(session: Session, person_id: int) -> Enrolment | None:
    """The open enrolment that benefits come from: employee insurance first."""
    return pick_current(enrolments_of(session, person_id))


def pick_current(enrolments: Iterable[Enrolment]) -> Enrolment | None:
    open_ones = [e for e in enrolments if e.status != "terminated"]
    open_ones.sort(key=lambda e: (e.insutype != EMPLOYEE, e.id))
    return open_ones[0] if open_ones else None


def terminate(uow: UnitOfWork, enrolment: Enrolment, *, day: dt.date, reason: str) -> None:
    enrolment.status = "terminated"
    enrolment.end_date = day
    enrolment.end_reason = reason
    enrolment.updated_at = uow.clock.now()


def person_state(
    person: Person, enrolment: Enrolment | None, *, arrangement: bool = True, offsite: str = "none"
) -> PersonState:
    """The person as ``domain.use`` decides on them; ``arrangement``: insured
    in the pooling area of the place of use, or with a cross-area filing there."""
    return PersonState(
        id=person.id,
        name=person.name,
        certno=person.certno,
        status=person.status,
        enrolment=enrolment.status if enrolment else None,
        insured_area=enrolment.area if enrolment else "",
        arrangement=arrangement,
        offsite=offsite,
    )


def has_paid(session: Session, person_id: int) -> bool:
    """Whether any contribution was paid for the person: the first payment
    makes them eligible for a card (seed 004, step 5)."""
    return (
        session.execute(
            select(ContributionLine.id)
            .where(ContributionLine.person_id == person_id, ContributionLine.status == "paid")
            .limit(1)
        ).first()
        is not None
    )


# ---------------------------------------------------------------- assessment


def _line_amounts(enrolment: Enrolment, rule: ContributionRule) -> tuple[int, int, int, int]:
    """(base, employer part, individual part, account credit) for one month."""
    if enrolment.psn_type == "retiree":
        return 0, 0, 0, rule.retiree_monthly_credit
    base = min(max(enrolment.base, rule.base_floor), rule.base_ceiling)
    employer_part = portion(base, rule.employer_rate_bp)
    individual_part = portion(base, rule.individual_rate_bp)
    # Since the 2021 outpatient mutual-aid reform the account gets the
    # employee's own contribution (domain.md); the share is data per area.
    credit = portion(individual_part, rule.account_share_bp)
    return base, employer_part, individual_part, credit


@use_case
def assess_employer(
    uow: UnitOfWork, *, actor: Actor, channel: str, employer_uscc: str, month: int
) -> Assessment:
    """The month's assessment: employer and individual parts per insured employee. Once per month."""
    actor.require(Perm.EMPLOYER_WRITE)
    employer = get_employer.step(uow, actor=actor, uscc=employer_uscc)
    existing = uow.session.execute(
        select(Assessment).where(Assessment.employer_id == employer.id, Assessment.month == month)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    first_day = dt.date(month // 100, month % 100, 1)
    enrolments = list(
        uow.session.execute(
            select(Enrolment)
            .where(
                Enrolment.employer_id == employer.id,
                Enrolment.insutype == EMPLOYEE,
                Enrolment.start_date <= last_day(month),
                # an employee who left during the month is owed for it
                or_(Enrolment.status != "terminated", Enrolment.end_date >= first_day),
            )
            .order_by(Enrolment.id)
        ).scalars()
    )
    now = uow.clock.now()
    employer_total = individual_total = 0
    for enrolment in enrolments:
        rule = rule_for(uow.session, area=enrolment.area, year=first_day.year, insutype=EMPLOYEE)
        base, emp_part, ind_part, credit = _line_amounts(enrolment, rule)
        employer_total += emp_part
        individual_total += ind_part
        uow.session.add(
            ContributionLine(
                person_id=enrolment.person_id,
                enrolment_id=enrolment.id,
                employer_id=employer.id,
                area=enrolment.area,
                month=month,
                base=base,
                employer_amount=emp_part,
                individual_amount=ind_part,
                account_credit=credit,
                status="due",
                created_at=now,
            )
        )
    due = dt.date(next_month(month) // 100, next_month(month) % 100, 15)
    assessment = Assessment(
        employer_id=employer.id,
        month=month,
        persons=len(enrolments),
        employer_total=employer_total,
        individual_total=individual_total,
        paid_total=0,
        status="due" if enrolments else "paid",
        due_date=due,
        created_at=now,
    )
    uow.session.add(assessment)
    uow.session.flush()
    uow.audit(
        actor.record(
            channel=channel,
            action="assessment.create",
            subject=f"{employer.uscc}/{month}",
            detail={"persons": len(enrolments), "total": employer_total + individual_total},
        )
    )
    return assessment


@dataclass(frozen=True)
class MonthAssessed:
    employers: int
    persons: int
    total: int  # fen


@use_case
def assess_month(
    uow: UnitOfWork, *, actor: Actor, channel: str, month: int, employer_uscc: str | None = None
) -> MonthAssessed:
    """Assess the month for every employer in the actor's area, or for one."""
    if employer_uscc:
        codes = [employer_uscc.strip().upper()]
    else:
        codes = list(
            uow.session.execute(
                select(Employer.uscc)
                .where(in_scope(Employer.division_code, actor))
                .order_by(Employer.uscc)
            ).scalars()
        )
    total = persons = 0
    for uscc in codes:
        a = assess_employer.step(uow, actor=actor, channel=channel, employer_uscc=uscc, month=month)
        total += a.total
        persons += a.persons
    return MonthAssessed(len(codes), persons, total)


def last_day(month: int) -> dt.date:
    nm = next_month(month)
    return dt.date(nm // 100, nm % 100, 1) - dt.timedelta(days=1)


def assess_person(
    uow: UnitOfWork, *, actor: Actor, channel: str, enrolment: Enrolment, months: list[int]
) -> list[ContributionLine]:
    """Lines for an individual (flexible employment) who pays both parts."""
    lines = []
    now = uow.clock.now()
    for month in months:
        found = uow.session.execute(
            select(ContributionLine).where(
                ContributionLine.person_id == enrolment.person_id,
                ContributionLine.enrolment_id == enrolment.id,
                ContributionLine.month == month,
            )
        ).scalar_one_or_none()
        if found is not None:
            lines.append(found)
            continue
        rule = rule_for(
            uow.session, area=enrolment.area, year=month // 100, insutype=enrolment.insutype
        )
        if enrolment.insutype == RESIDENT:
            base, emp_part, ind_part, credit = 0, 0, rule.resident_annual_premium // 12, 0
        else:
            base, emp_part, ind_part, credit = _line_amounts(enrolment, rule)
        line = ContributionLine(
            person_id=enrolment.person_id,
            enrolment_id=enrolment.id,
            employer_id=None,
            area=enrolment.area,
            month=month,
            base=base,
            employer_amount=emp_part,
            individual_amount=ind_part,
            account_credit=credit,
            status="due",
            created_at=now,
        )
        uow.session.add(line)
        lines.append(line)
    uow.session.flush()
    if enrolment.psn_type == "retiree":
        # A retiree pays nothing; the pooled fund credits a fixed amount (domain.md).
        due = [line for line in lines if line.status == "due"]
        for line in due:
            line.status, line.paid_at = "paid", now
        credit = sum(line.account_credit for line in due)
        if credit:
            ledger.post(
                uow,
                key=f"retiree:{enrolment.id}:{months[0]}-{months[-1]}:{len(due)}",
                kind="retiree_credit",
                legs=[
                    ledger.Leg(
                        codes.fund(enrolment.area, enrolment.person_id),
                        -credit,
                        "fund",
                        area=enrolment.area,
                    ),
                    ledger.Leg(
                        codes.ia_pending(enrolment.area), credit, "ia_pending", area=enrolment.area
                    ),
                ],
                person_id=enrolment.person_id,
                memo="retiree account credit from the pooled fund",
            )
    return lines


# ---------------------------------------------------------------- payments


def settle_lines(
    uow: UnitOfWork,
    *,
    lines: list[ContributionLine],
    payment: Payment,
    holding: ledger.Leg,
    key: str,
) -> None:
    """Move paid money from the payer's holding account to the pooled fund and
    to the pending individual-account credits, and mark the lines paid."""
    credits: dict[str, int] = {}
    fund_parts: dict[str, int] = {}
    total = 0
    for line in lines:
        amount = line.employer_amount + line.individual_amount
        total += amount
        credits[line.area] = credits.get(line.area, 0) + line.account_credit
        fund_parts[line.area] = fund_parts.get(line.area, 0) + amount - line.account_credit
        line.status = "paid"
        line.paid_at = payment.received_at
        line.payment_id = payment.id
    legs = []
    if total:
        legs.append(ledger.Leg(holding.code, -total, holding.kind, holding.person_id, holding.area))
    shard = payment.employer_id or payment.person_id or 0
    for area, amount in sorted(fund_parts.items()):
        if amount:
            legs.append(ledger.Leg(codes.fund(area, shard), amount, "fund", area=area))
    for area, amount in sorted(credits.items()):
        if amount:
            legs.append(ledger.Leg(codes.ia_pending(area), amount, "ia_pending", area=area))
    if legs:
        ledger.post(uow, key=key, kind="contribution", legs=legs, memo="contributions received")


def _receive(
    uow: UnitOfWork,
    *,
    key: str,
    amount: int,
    holding: ledger.Leg,
    payer_kind: str,
    reference: str,
    memo: str,
    employer_id: int | None = None,
    person_id: int | None = None,
    assessment_id: int | None = None,
) -> Payment:
    """Money in from the bank, held for the payer until it is allocated."""
    posted = ledger.post(
        uow,
        key=f"pay:{key}",
        kind="payment",
        person_id=person_id,
        legs=[ledger.Leg(codes.BANK, -amount, "bank"), holding],
        memo=memo,
    )
    payment = Payment(
        idem_key=f"pay:{key}",
        payer_kind=payer_kind,
        employer_id=employer_id,
        person_id=person_id,
        assessment_id=assessment_id,
        amount=amount,
        reference=reference[:100],
        received_at=uow.clock.now(),
        entry_id=posted.entry.id,
    )
    uow.session.add(payment)
    uow.session.flush()
    return payment


@use_case
def record_employer_payment(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    employer_uscc: str,
    month: int,
    amount: int,
    reference: str,
    key: str,
) -> Payment:
    """An employer's payment against a month's assessment. Applied once per
    key: a retry returns the first payment; the key sent again with another
    amount or month is refused, naming the key."""
    actor.require(Perm.EMPLOYER_WRITE)
    if amount <= 0:
        raise invalid("amount", "缴费金额应大于0", "the amount must be more than zero")

    def work() -> dict[str, Any]:
        previous = _paid_before(uow, key)
        if previous is not None:
            earlier = uow.session.get(Assessment, previous.assessment_id)
            if previous.amount != amount or earlier is None or earlier.month != month:
                raise idempotency.key_reused(key, "Idempotency-Key")
            return {"payment_id": previous.id}
        return {
            "payment_id": _employer_payment(
                uow,
                actor=actor,
                channel=channel,
                employer_uscc=employer_uscc,
                month=month,
                amount=amount,
                reference=reference,
                key=key,
            ).id
        }

    done = idempotency.once(
        uow,
        scope="payment",
        key=key,
        fingerprint=idempotency.fingerprint(
            "employer_payment", {"employer": employer_uscc, "month": month, "amount": amount}
        ),
        work=work,
        field="Idempotency-Key",
    )
    payment = uow.session.get(Payment, done["payment_id"])
    assert payment is not None
    return payment


def _paid_before(uow: UnitOfWork, key: str) -> Payment | None:
    """A payment made under this key before the request keys kept it."""
    return uow.session.execute(
        select(Payment).where(Payment.idem_key == f"pay:{key}")
    ).scalar_one_or_none()


def _employer_payment(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    employer_uscc: str,
    month: int,
    amount: int,
    reference: str,
    key: str,
) -> Payment:
    employer = get_employer.step(uow, actor=actor, uscc=employer_uscc)
    assessment = uow.session.execute(
        select(Assessment)
        .where(Assessment.employer_id == employer.id, Assessment.month == month)
        .with_for_update()
    ).scalar_one_or_none()
    if assessment is None:
        raise not_found(
            f"{month_text(month)}的核定",
            f"assessment for {month_text(month)}",
            "assessment.not_found",
        )
    outstanding = assessment.total - assessment.paid_total
    if amount > outstanding:
        raise invalid(
            "amount",
            f"缴费金额超过应缴余额{outstanding / 100:.2f}元",
            f"the amount is more than the {outstanding / 100:.2f} yuan outstanding",
            "overpaid",
        )
    payment = _receive(
        uow,
        key=key,
        amount=amount,
        holding=ledger.Leg(f"EMP:{employer.id}", amount, "employer"),
        payer_kind="employer",
        employer_id=employer.id,
        assessment_id=assessment.id,
        reference=reference,
        memo=f"employer {employer.uscc} pays {month_text(month)} ({reference})",
    )
    assessment.paid_total += amount
    if assessment.paid_total == assessment.total:
        assessment.status = "paid"
        lines = list(
            uow.session.execute(
                select(ContributionLine)
                .where(
                    ContributionLine.employer_id == employer.id,
                    ContributionLine.month == month,
                    ContributionLine.status == "due",
                )
                .order_by(ContributionLine.id)
            ).scalars()
        )
        settle_lines(
            uow,
            lines=lines,
            payment=payment,
            holding=ledger.Leg(f"EMP:{employer.id}", 0, "employer"),
            key=f"alloc:{key}",
        )
        resume_employer(uow, employer=employer)
    else:
        assessment.status = "partial"
    uow.audit(
        actor.record(
            channel=channel,
            action="payment.employer",
            subject=f"{employer.uscc}/{month}",
            detail={"amount": amount, "reference": reference},
        )
    )
    return payment


def record_person_payment(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person: Person,
    lines: list[ContributionLine],
    amount: int,
    reference: str,
    key: str,
) -> Payment:
    """A person's own payment for their due lines (flexible employment,
    residents), once per key: the same payment again gets the first one."""

    def work() -> dict[str, Any]:
        previous = _paid_before(uow, key)
        payment = previous or _person_payment(
            uow,
            actor=actor,
            channel=channel,
            person=person,
            lines=lines,
            amount=amount,
            reference=reference,
            key=key,
        )
        return {"payment_id": payment.id}

    done = idempotency.once(
        uow,
        scope="payment",
        key=key,
        fingerprint=idempotency.fingerprint(
            "person_payment", {"person": person.id, "amount": amount}
        ),
        work=work,
        field="key",
    )
    payment = uow.session.get(Payment, done["payment_id"])
    assert payment is not None
    return payment


def _person_payment(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person: Person,
    lines: list[ContributionLine],
    amount: int,
    reference: str,
    key: str,
) -> Payment:
    due = [line for line in lines if line.status == "due"]
    total = sum(line.employer_amount + line.individual_amount for line in due)
    if amount != total:
        raise invalid(
            "amount",
            f"缴费金额应为{total / 100:.2f}元",
            f"the amount due is {total / 100:.2f} yuan",
            "amount",
        )
    payment = _receive(
        uow,
        key=key,
        amount=amount,
        holding=ledger.Leg(f"PSNPAY:{person.id}", amount, "payer", person.id),
        payer_kind="person",
        person_id=person.id,
        reference=reference,
        memo=f"personal contribution ({reference})",
    )
    settle_lines(
        uow,
        lines=due,
        payment=payment,
        holding=ledger.Leg(f"PSNPAY:{person.id}", 0, "payer", person.id),
        key=f"alloc:{key}",
    )
    for enrolment in {line.enrolment_id for line in due}:
        e = uow.session.get(Enrolment, enrolment)
        if e is not None and e.status == "suspended":
            e.status, e.suspended_since = "active", None
    uow.audit(
        actor.record(
            channel=channel,
            action="payment.person",
            person_id=person.id,
            subject=reference,
            detail={"amount": amount, "months": [line.month for line in due]},
        )
    )
    return payment


# ---------------------------------------------------------------- arrears


def arrears(session: Session, *, employer_id: int, today: dt.date) -> list[Assessment]:
    """Assessments past their due date and not fully paid."""
    return list(
        session.execute(
            select(Assessment)
            .where(
                Assessment.employer_id == employer_id,
                Assessment.status != "paid",
                Assessment.due_date < today,
            )
            .order_by(Assessment.month)
        ).scalars()
    )


@use_case
def employer_arrears(
    uow: UnitOfWork, *, actor: Actor, employer_uscc: str
) -> tuple[Employer, list[Assessment]]:
    """An employer's months past their due date and not fully paid."""
    actor.require(Perm.PERSON_READ)
    employer = get_employer.step(uow, actor=actor, uscc=employer_uscc)
    return employer, arrears(uow.session, employer_id=employer.id, today=uow.clock.today())


def resume_employer(uow: UnitOfWork, *, employer: Employer) -> None:
    if arrears(uow.session, employer_id=employer.id, today=uow.clock.today()):
        return
    for enrolment in uow.session.execute(
        select(Enrolment).where(
            Enrolment.employer_id == employer.id, Enrolment.status == "suspended"
        )
    ).scalars():
        enrolment.status, enrolment.suspended_since = "active", None
        enrolment.updated_at = uow.clock.now()


@use_case
def apply_suspensions(uow: UnitOfWork, *, actor: Actor, channel: str) -> dict[str, int]:
    """Suspend benefits of employees whose employer is behind by the rule's
    number of months; resume those whose arrears are paid (domain.md, Arrears)."""
    today = uow.clock.today()
    suspended = resumed = 0
    employers = uow.session.execute(
        select(Employer).where(in_scope(Employer.division_code, actor))
    ).scalars()
    for employer in employers:
        unpaid = arrears(uow.session, employer_id=employer.id, today=today)
        rule_grace = 3
        if unpaid:
            with contextlib.suppress(DomainError):  # no rule: the national default of 3
                rule_grace = rule_for(
                    uow.session, area=employer.division_code[:6], year=today.year, insutype=EMPLOYEE
                ).grace_months
        enrolments = list(
            uow.session.execute(
                select(Enrolment).where(
                    Enrolment.employer_id == employer.id, Enrolment.status != "terminated"
                )
            ).scalars()
        )
        for e in enrolments:
            if len(unpaid) >= rule_grace and e.status == "active":
                e.status, e.suspended_since = "suspended", today
                suspended += 1
                uow.audit(
                    actor.record(
                        channel=channel,
                        action="enrolment.suspend",
                        person_id=e.person_id,
                        subject=employer.uscc,
                        detail={"unpaid_months": len(unpaid)},
                    )
                )
            elif not unpaid and e.status == "suspended":
                e.status, e.suspended_since = "active", None
                resumed += 1
    return {"suspended": suspended, "resumed": resumed}


# ---------------------------------------------------------------- monthly posting

PostResult = monthly_credit.PostResult


def post_month(
    engine: Engine,
    *,
    month: int,
    now: dt.datetime,
    chunk_size: int = 10_000,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    backend: backends.Backend,
) -> PostResult:
    """Credit every individual account with its paid lines of the month.

    The set-based credit changes balances, so it lives with the ledger
    (``services/ledger/monthly_credit.py``), under the ledger's invariants.
    ``backend`` is ``runtime.Services.backend``.
    """
    return monthly_credit.post_month(
        engine,
        month=month,
        now=now,
        chunk_size=chunk_size,
        workers=workers,
        progress=progress,
        backend=backend,
    )


# ---------------------------------------------------------------- records


@dataclass
class PaymentRecord:
    month: int
    base: int
    employer_amount: int
    individual_amount: int
    account_credit: int
    status: str
    paid_at: dt.datetime | None
    payer: str  # the employer's name, or "个人 self"
    insutype: str


def payment_records(
    session: Session, person_id: int, *, first: int | None = None, last: int | None = None
) -> list[PaymentRecord]:
    """Per month: base, employer part, individual part, paid date and status."""
    stmt = (
        select(ContributionLine, Employer.name, Enrolment.insutype)
        .outerjoin(Employer, Employer.id == ContributionLine.employer_id)
        .join(Enrolment, Enrolment.id == ContributionLine.enrolment_id)
        .where(ContributionLine.person_id == person_id)
        .order_by(ContributionLine.month.desc(), ContributionLine.id)
    )
    if first is not None:
        stmt = stmt.where(ContributionLine.month >= first)
    if last is not None:
        stmt = stmt.where(ContributionLine.month <= last)
    return [
        PaymentRecord(
            line.month,
            line.base,
            line.employer_amount,
            line.individual_amount,
            line.account_credit,
            line.status,
            line.paid_at,
            name or "个人 self",
            insutype,
        )
        for line, name, insutype in session.execute(stmt)
    ]


@use_case
def payment_history(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    account_no: str,
    first: int | None = None,
    last: int | None = None,
) -> tuple[Person, list[PaymentRecord]]:
    """A person's payment records (Social Insurance Law art. 4), audited as a read."""
    person = registry.get_person.step(
        uow,
        actor=actor,
        channel=channel,
        account_no=account_no,
        audit_action="records.payment.read",
    )
    return person, payment_records(uow.session, person.id, first=first, last=last)


def count_unposted(engine: Engine, month: int) -> int:
    """Paid lines of the month not yet credited to their accounts."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT COUNT(*) FROM contribution_lines l WHERE l.month = :m AND l.status = 'paid' "
                    "AND l.account_credit > 0 "
                    "AND NOT EXISTS (SELECT 1 FROM ia_credit_claims c WHERE c.line_id = l.id)"
                ),
                {"m": month},
            ).scalar_one()
        )


def count_lines(session: Session, month: int) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(ContributionLine)
            .where(ContributionLine.month == month)
        ).scalar_one()
    )


# ---------------------------------------------------------------- the employer's own view (issue 15)


def employer_for(uow: UnitOfWork, *, actor: Actor, uscc: str, write: bool) -> Employer:
    """The employer an actor acts for: an employer only for itself; staff
    for an employer in their area, with the right to write employers for a
    change. Any other reads as not found."""
    code = (uscc or "").strip().upper()
    if actor.is_employer:
        if actor.id != code:
            raise not_found("用人单位", "employer", "employer.not_found")
        employer = uow.session.execute(
            select(Employer).where(Employer.uscc == code)
        ).scalar_one_or_none()
        if employer is None:
            raise not_found("用人单位", "employer", "employer.not_found")
        return employer
    actor.require(Perm.EMPLOYER_WRITE if write else Perm.PERSON_READ)
    return get_employer.step(uow, actor=actor, uscc=code)


@dataclass(frozen=True)
class PaymentView:
    amount: int  # fen
    received_at: dt.datetime
    reference: str


@dataclass(frozen=True)
class MonthAccount:
    """One month of an employer's contributions: what was assessed, what it
    paid and when, and what is still owed."""

    month: int
    persons: int
    employer_total: int
    individual_total: int
    paid_total: int
    status: str  # due, partial, paid
    due_date: dt.date
    payments: list[PaymentView]
    overdue: bool  # past its due date and not fully paid: arrears

    @property
    def total(self) -> int:
        return self.employer_total + self.individual_total

    @property
    def outstanding(self) -> int:
        return self.total - self.paid_total


@dataclass(frozen=True)
class EmployerContributions:
    employer: Employer
    months: list[MonthAccount]  # newest first

    @property
    def arrears(self) -> list[MonthAccount]:
        """The months in arrears, oldest first."""
        return sorted((m for m in self.months if m.overdue), key=lambda m: m.month)

    @property
    def arrears_total(self) -> int:
        return sum(m.outstanding for m in self.arrears)


@use_case
def employer_account(
    uow: UnitOfWork, *, actor: Actor, channel: str, employer_uscc: str
) -> EmployerContributions:
    """Each month's assessment of an employer with its payments and their
    dates, and its arrears (Social Insurance Law art. 4): for the employer
    itself, or staff of its area."""
    employer = employer_for(uow, actor=actor, uscc=employer_uscc, write=False)
    today = uow.clock.today()
    assessments = list(
        uow.session.execute(
            select(Assessment)
            .where(Assessment.employer_id == employer.id)
            .order_by(Assessment.month.desc())
        ).scalars()
    )
    paid: dict[int, list[PaymentView]] = {}
    for p in uow.session.execute(
        select(Payment)
        .where(Payment.employer_id == employer.id, Payment.payer_kind == "employer")
        .order_by(Payment.received_at, Payment.id)
    ).scalars():
        if p.assessment_id is not None:
            paid.setdefault(p.assessment_id, []).append(
                PaymentView(p.amount, p.received_at, p.reference)
            )
    months = [
        MonthAccount(
            a.month,
            a.persons,
            a.employer_total,
            a.individual_total,
            a.paid_total,
            a.status,
            a.due_date,
            paid.get(a.id, []),
            a.status != "paid" and a.due_date < today,
        )
        for a in assessments
    ]
    uow.audit(
        actor.record(
            channel=channel,
            action="employer.contributions.read",
            subject=employer.uscc,
            detail={"months": len(months)},
        )
    )
    return EmployerContributions(employer, months)


@dataclass(frozen=True)
class EmployeeMonth:
    month: int
    base: int
    employer_amount: int
    individual_amount: int
    status: str  # due, paid
    paid_at: dt.datetime | None

    @property
    def total(self) -> int:
        return self.employer_amount + self.individual_amount


@dataclass(frozen=True)
class EmployeeHistory:
    employer: Employer
    person: Person
    months: list[EmployeeMonth]  # newest first, paid and unpaid


@use_case
def employee_history(
    uow: UnitOfWork, *, actor: Actor, channel: str, employer_uscc: str, account_no: str
) -> EmployeeHistory:
    """One employee's months under this employer, paid and unpaid, with the
    day each was paid: only of someone who is or was on the employer's
    roll, and audited as a read of the person's records."""
    employer = employer_for(uow, actor=actor, uscc=employer_uscc, write=False)
    person = uow.session.execute(
        select(Person)
        .join(Enrolment, Enrolment.person_id == Person.id)
        .where(
            Person.account_no == (account_no or "").strip(),
            Enrolment.employer_id == employer.id,
        )
        .limit(1)
    ).scalar_one_or_none()
    if person is None:
        raise not_found("本单位参保人员", "employee on this roll", "roll.not_found")
    lines = uow.session.execute(
        select(ContributionLine)
        .where(
            ContributionLine.person_id == person.id,
            ContributionLine.employer_id == employer.id,
        )
        .order_by(ContributionLine.month.desc(), ContributionLine.id)
    ).scalars()
    months = [
        EmployeeMonth(
            line.month,
            line.base,
            line.employer_amount,
            line.individual_amount,
            line.status,
            line.paid_at,
        )
        for line in lines
    ]
    uow.audit(
        actor.record(
            channel=channel,
            action="records.payment.read",
            person_id=person.id,
            subject=employer.uscc,
        )
    )
    return EmployeeHistory(employer, person, months)
