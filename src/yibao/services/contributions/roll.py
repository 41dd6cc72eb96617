"""An employer's roll (参保人员名单, issue 15): who it insures as employees,
from when and until when.

The roll is the employee enrolments (310, ``psn_type`` employee) that name
the employer: a hire opens one from its start date, a leaver ends it on the
last day of work. Both are done by the employer on its own channel or by a
county clerk for it; the rules are here, so that both get the same answer:

- a hire names a registered, active person by ID number and name (the
  registry's name); who is not registered yet is registered at the county
  center first;
- a hire starts no earlier than the first of this month and no later than
  the end of next month, in a month not yet assessed: an earlier start
  would change an assessment already made, which is the county center's
  business;
- a person insured as an employee elsewhere (another employer, flexible
  employment, retired) is not hired over it: the other enrolment ends first;
- a leaver's last day is not before the hire, not after today and not
  before the first of last month; the month in which they left is still
  assessed (``contributions.assess_employer``).

Every read of the roll and every change is audited with the person, and
with the employer (or the clerk) as the actor.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from yibao.domain.actors import Actor
from yibao.domain.errors import conflict, invalid, not_found
from yibao.domain.ids import parse_resident_id
from yibao.services.contributions import contributions as cs
from yibao.services.tx import use_case
from yibao.store.models import Assessment, Employer, Enrolment, Person
from yibao.store.uow import UnitOfWork

EMPLOYEE = "employee"
LEFT = "left the employer"


def on_roll(uow: UnitOfWork, *, employer: Employer, person_id: int) -> Enrolment | None:
    """The person's open employee enrolment with this employer, if any."""
    return uow.session.execute(
        select(Enrolment).where(
            Enrolment.employer_id == employer.id,
            Enrolment.person_id == person_id,
            Enrolment.insutype == cs.EMPLOYEE,
            Enrolment.status != "terminated",
        )
    ).scalar_one_or_none()


@dataclass(frozen=True)
class RollEntry:
    person_id: int
    name: str
    certno: str
    account_no: str
    start_date: dt.date
    end_date: dt.date | None
    status: str  # active, suspended, terminated
    base: int  # fen a month

    @property
    def current(self) -> bool:
        return self.status != "terminated"


def _entries(uow: UnitOfWork, employer: Employer) -> list[RollEntry]:
    rows = uow.session.execute(
        select(Enrolment, Person)
        .join(Person, Person.id == Enrolment.person_id)
        .where(Enrolment.employer_id == employer.id, Enrolment.insutype == cs.EMPLOYEE)
        .order_by(Enrolment.status == "terminated", Person.name, Enrolment.start_date)
    )
    return [
        RollEntry(p.id, p.name, p.certno, p.account_no, e.start_date, e.end_date, e.status, e.base)
        for e, p in rows
    ]


@dataclass(frozen=True)
class Roll:
    employer: Employer
    entries: list[RollEntry]

    @property
    def current(self) -> list[RollEntry]:
        return [e for e in self.entries if e.current]

    @property
    def former(self) -> list[RollEntry]:
        return [e for e in self.entries if not e.current]


@use_case
def read_roll(uow: UnitOfWork, *, actor: Actor, channel: str, employer_uscc: str) -> Roll:
    """The employer's employees, present and former, each read audited."""
    employer = cs.employer_for(uow, actor=actor, uscc=employer_uscc, write=False)
    entries = _entries(uow, employer)
    for person_id in dict.fromkeys(e.person_id for e in entries):
        uow.audit(
            actor.record(
                channel=channel, action="roll.read", person_id=person_id, subject=employer.uscc
            )
        )
    return Roll(employer, entries)


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _check_start(uow: UnitOfWork, employer: Employer, start: dt.date) -> None:
    today = uow.clock.today()
    first = _month_start(today)
    last = cs.last_day(cs.next_month(cs.month_of(today)))
    if start < first:
        raise invalid(
            "start",
            f"入职日期不能早于本月1日（{first:%Y-%m-%d}），更早的参保请到县医保中心办理",
            f"a hire starts on {first:%Y-%m-%d} or later; an earlier start is "
            "recorded at the county center",
            "too_early",
        )
    if start > last:
        raise invalid(
            "start",
            f"入职日期不能晚于{last:%Y-%m-%d}",
            f"a hire starts on {last:%Y-%m-%d} at the latest",
            "too_late",
        )
    assessed = uow.session.execute(
        select(Assessment.id).where(
            Assessment.employer_id == employer.id, Assessment.month == cs.month_of(start)
        )
    ).first()
    if assessed is not None:
        raise invalid(
            "start",
            f"{cs.month_text(cs.month_of(start))}已核定，请到县医保中心办理",
            f"{cs.month_text(cs.month_of(start))} is assessed already; "
            "the county center records this hire",
            "assessed",
        )


def _person(uow: UnitOfWork, certno: str, name: str) -> Person:
    rid = parse_resident_id(certno, field="certno", today=uow.clock.today())
    person = uow.session.execute(
        select(Person).where(Person.certno == rid.number)
    ).scalar_one_or_none()
    if person is None:
        raise invalid(
            "certno",
            "没有该身份证号码的参保登记，请先到县医保中心登记",
            "no one is registered with this ID number; register them at the county center first",
            "unknown",
        )
    if person.name != (name or "").strip():
        raise invalid(
            "name", "姓名与登记信息不一致", "the name does not match the registry", "mismatch"
        )
    return person


@use_case
def hire(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    employer_uscc: str,
    certno: str,
    name: str,
    start: dt.date,
    base: int = 0,
) -> RollEntry:
    """Put a person on the employer's roll from ``start``: an employee
    enrolment (310) under the employer, assessed from that month. ``base``
    is the monthly contribution base in fen (0: the area's floor; kept
    within the floor and the ceiling)."""
    employer = cs.employer_for(uow, actor=actor, uscc=employer_uscc, write=True)
    person = _person(uow, certno, name)
    if person.status != "active":
        raise conflict(
            "person.not_active", "该人员参保关系已终止", "the person's insurance has ended"
        )
    if base < 0:
        raise invalid("base", "缴费基数不能为负", "the base cannot be negative", "negative")
    _check_start(uow, employer, start)
    other = uow.session.execute(
        select(Enrolment, Employer.name)
        .outerjoin(Employer, Employer.id == Enrolment.employer_id)
        .where(
            Enrolment.person_id == person.id,
            Enrolment.insutype == cs.EMPLOYEE,
            Enrolment.status != "terminated",
        )
    ).first()
    if other is not None:
        enrolment, other_name = other
        if enrolment.employer_id == employer.id:
            raise conflict(
                "roll.already",
                "该人员已在本单位参保",
                "the person is on this roll already",
                "certno",
            )
        if enrolment.employer_id is not None:
            raise conflict(
                "roll.elsewhere",
                f"该人员正在{other_name}参保，须原单位先办理减员",
                "the person is insured by another employer, which must record the leaving first",
                "certno",
            )
        raise conflict(
            "roll.insured_otherwise",
            "该人员正以灵活就业或退休人员参保，请先到县医保中心办理变更",
            "the person is insured as self-employed or retired; "
            "the county center changes that first",
            "certno",
        )
    enrolment = cs.open_enrolment(
        uow,
        actor=actor,
        channel=channel,
        person=person,
        insutype=cs.EMPLOYEE,
        psn_type=EMPLOYEE,
        start=start,
        base=base,
        employer=employer,
    )
    uow.audit(
        actor.record(
            channel=channel,
            action="roll.hire",
            person_id=person.id,
            subject=employer.uscc,
            detail={"start": start.isoformat(), "base": enrolment.base},
        )
    )
    return RollEntry(
        person.id,
        person.name,
        person.certno,
        person.account_no,
        enrolment.start_date,
        None,
        enrolment.status,
        enrolment.base,
    )


@use_case
def leave(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    employer_uscc: str,
    account_no: str,
    end: dt.date,
) -> RollEntry:
    """Take a person off the roll: their enrolment under the employer ends
    on ``end``, their last day of work; that month is still assessed."""
    employer = cs.employer_for(uow, actor=actor, uscc=employer_uscc, write=True)
    person = uow.session.execute(
        select(Person).where(Person.account_no == (account_no or "").strip())
    ).scalar_one_or_none()
    enrolment = on_roll(uow, employer=employer, person_id=person.id) if person else None
    if person is None or enrolment is None:
        raise not_found("本单位参保人员", "employee on this roll", "roll.not_found")
    today = uow.clock.today()
    earliest = max(enrolment.start_date, _month_start(_month_start(today) - dt.timedelta(days=1)))
    if end > today:
        raise invalid(
            "end",
            "离职日期不能晚于今天，请在离职后办理",
            "the last day cannot be after today; record the leaving once it is done",
            "too_late",
        )
    if end < earliest:
        raise invalid(
            "end",
            f"离职日期不能早于{earliest:%Y-%m-%d}",
            f"the last day is {earliest:%Y-%m-%d} or later",
            "too_early",
        )
    cs.terminate(uow, enrolment, day=end, reason=LEFT)
    uow.audit(
        actor.record(
            channel=channel,
            action="roll.leave",
            person_id=person.id,
            subject=employer.uscc,
            detail={"end": end.isoformat()},
        )
    )
    return RollEntry(
        person.id,
        person.name,
        person.certno,
        person.account_no,
        enrolment.start_date,
        end,
        enrolment.status,
        enrolment.base,
    )
