"""Care in another area (异地就医备案): file, cancel and list a person's
filings, and whether one covers a visit (``covering``, read by the
settlement's ``person_state``). The rules are ``domain.offsite``'s; every
channel (the portal, the counter, the staff API, the command line) calls
these use cases.

A person acts for themselves only; staff need ``person.write`` to file or
cancel, ``person.read`` to list, and see only the persons of their own
area (outside it the person is not found)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.domain import offsite as rules
from yibao.domain.access import Perm
from yibao.domain.actors import Actor
from yibao.domain.errors import not_found
from yibao.services.contributions import contributions
from yibao.services.tx import use_case
from yibao.store.models import CrossAreaFiling, Person
from yibao.store.uow import UnitOfWork


def _facts(row: CrossAreaFiling) -> rules.Filing:
    return rules.Filing(
        id=row.id,
        kind=row.kind,
        visit_area=row.visit_area,
        start=row.start_date,
        end=row.end_date,
        cancelled=row.state == "cancelled",
    )


def _rows(session: Session, person_id: int) -> list[CrossAreaFiling]:
    return list(
        session.execute(
            select(CrossAreaFiling)
            .where(CrossAreaFiling.person_id == person_id)
            .order_by(CrossAreaFiling.start_date.desc(), CrossAreaFiling.id.desc())
        ).scalars()
    )


def _person(uow: UnitOfWork, actor: Actor, person_id: int, perm: Perm) -> Person:
    """The person the actor may act for: themselves, or for staff one of
    their area (else not found, like a person who does not exist)."""
    person = uow.session.get(Person, person_id)
    if actor.kind == "person":
        if person is None or actor.id != str(person_id):
            raise not_found("参保人员", "person", "person.not_found")
        return person
    if actor.kind == "staff":
        actor.require(perm)
    if person is None or not actor.sees(person.division_code):
        raise not_found("参保人员", "person", "person.not_found")
    return person


def covering(session: Session, *, person_id: int, visit_area: str, day: dt.date) -> rules.Cover:
    """Which of the person's filings covers a visit in ``visit_area`` on ``day``, or why none does."""
    return rules.cover(
        [_facts(r) for r in _rows(session, person_id)], visit_area=visit_area, day=day
    )


def has_filing(session: Session, *, person_id: int, visit_area: str, day: dt.date) -> bool:
    return covering(session, person_id=person_id, visit_area=visit_area, day=day).covered


@dataclass(frozen=True)
class FilingView:
    """A filing as the pages and the API show it."""

    id: int
    kind: str
    kind_zh: str
    kind_en: str
    visit_area: str
    start: dt.date
    end: dt.date | None
    state: str
    state_zh: str
    filed_at: dt.datetime
    cancelled_at: dt.datetime | None
    channel: str | None

    @property
    def cancellable(self) -> bool:
        return self.state in (rules.State.ACTIVE, rules.State.FUTURE)


def view(row: CrossAreaFiling, today: dt.date) -> FilingView:
    now = rules.state(_facts(row), today)
    kind = rules.Kind(row.kind)
    return FilingView(
        id=row.id,
        kind=kind.value,
        kind_zh=rules.KIND_ZH[kind],
        kind_en=rules.KIND_EN[kind],
        visit_area=row.visit_area,
        start=row.start_date,
        end=row.end_date,
        state=now.value,
        state_zh=rules.STATE_ZH[now],
        filed_at=row.created_at,
        cancelled_at=row.cancelled_at,
        channel=row.channel,
    )


@use_case
def file(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person_id: int,
    kind: str | None,
    visit_area: str | None,
    start: dt.date | None,
    end: dt.date | None = None,
) -> FilingView:
    """File for care in another area: checked by ``domain.offsite.check``
    against the person's insured area (their current enrolment's, as
    recorded) and their other filings."""
    person = _person(uow, actor, person_id, Perm.PERSON_WRITE)
    enrolment = contributions.current_enrolment(uow.session, person.id)
    today = uow.clock.today()
    rows = _rows(uow.session, person.id)
    asked = rules.check(
        kind=kind,
        destination=visit_area,
        home=enrolment.area if enrolment else None,
        start=start,
        end=end,
        today=today,
        existing=[_facts(r) for r in rows],
    )
    row = CrossAreaFiling(
        person_id=person.id,
        kind=asked.kind.value,
        visit_area=asked.visit_area,
        start_date=asked.start,
        end_date=asked.end,
        state="active",
        created_at=uow.clock.now(),
        channel=channel,
        filed_by=f"{actor.kind}:{actor.id}",
    )
    uow.session.add(row)
    uow.session.flush()
    uow.audit(
        actor.record(
            channel=channel,
            action="offsite.file",
            person_id=person.id,
            subject=str(row.id),
            detail={
                "kind": row.kind,
                "visit_area": row.visit_area,
                "start": row.start_date.isoformat(),
                "end": row.end_date.isoformat() if row.end_date else None,
            },
        )
    )
    return view(row, today)


@use_case
def cancel(
    uow: UnitOfWork, *, actor: Actor, channel: str, person_id: int, filing_id: int
) -> FilingView:
    """Cancel a filing that covers now or later; from then on it covers nothing."""
    person = _person(uow, actor, person_id, Perm.PERSON_WRITE)
    row = uow.session.execute(
        select(CrossAreaFiling)
        .where(CrossAreaFiling.id == filing_id, CrossAreaFiling.person_id == person.id)
        .with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise not_found("该备案", "filing", "offsite.not_found")
    today = uow.clock.today()
    rules.check_cancel(_facts(row), today)
    row.state = "cancelled"
    row.cancelled_at = uow.clock.now()
    row.cancelled_by = f"{actor.kind}:{actor.id}"
    uow.session.flush()
    uow.audit(
        actor.record(
            channel=channel,
            action="offsite.cancel",
            person_id=person.id,
            subject=str(row.id),
            detail={"visit_area": row.visit_area},
        )
    )
    return view(row, today)


@use_case
def filings(uow: UnitOfWork, *, actor: Actor, channel: str, person_id: int) -> list[FilingView]:
    """The person's filings, newest first, each with its state today."""
    person = _person(uow, actor, person_id, Perm.PERSON_READ)
    today = uow.clock.today()
    out = [view(r, today) for r in _rows(uow.session, person.id)]
    uow.audit(
        actor.record(
            channel=channel,
            action="offsite.list",
            person_id=person.id,
            subject=person.account_no,
        )
    )
    return out
