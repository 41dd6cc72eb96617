"""Builders for the family mutual aid tests (issue 16): holders with money
in their individual accounts, resident relatives, suspended holders."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from tests.helpers import SYSTEM, add_person
from yibao.domain import ledger as codes
from yibao.domain.actors import Channel
from yibao.services.contributions import contributions
from yibao.services.ledger import ledger
from yibao.services.registry import registry
from yibao.services.tx import use_case
from yibao.store.models import Enrolment, Person
from yibao.store.uow import UnitOfWork


@use_case
def fund(uow: UnitOfWork, person_id: int, amount: int, key: str) -> None:
    """Money into a person's individual account, through the ledger (as
    the monthly credit would)."""
    ledger.post(
        uow,
        key=f"test-fund:{key}",
        kind="test_credit",
        person_id=person_id,
        legs=[
            ledger.Leg(codes.BANK, -amount, "bank"),
            ledger.Leg(codes.individual(person_id), amount, "individual", person_id),
        ],
        memo="test credit",
    )


def holder(uow_factory, *, name: str = "共济人", balance: int = 0, key: str = "") -> Person:  # type: ignore[no-untyped-def]
    """An employee (flexible, October 2026 paid) with ``balance`` fen in
    the individual account."""
    person = add_person(uow_factory(), name=name)
    if balance:
        fund(uow_factory(), person.id, balance, key or f"{person.id}")
    return person


@use_case
def _resident(uow: UnitOfWork, person_id: int, year: int) -> None:
    person = uow.session.get(Person, person_id)
    assert person is not None
    contributions.enrol(
        uow,
        actor=SYSTEM,
        channel=Channel.CLI,
        person=person,
        insutype=contributions.RESIDENT,
        psn_type="resident",
        start=dt.date(year, 1, 1),
    )


def resident(uow_factory, *, name: str = "居民亲属", year: int = 2026) -> Person:  # type: ignore[no-untyped-def]
    """A person enrolled in resident insurance, nothing paid."""
    person = registry.register_person(
        uow_factory(),
        actor=SYSTEM,
        channel=Channel.CLI,
        certno=_certno(),
        name=name,
        division_code="330502001",
    )
    _resident(uow_factory(), person.id, year)
    return person


def _certno() -> str:
    from tests.helpers import new_certno

    return new_certno("330502", dt.date(1950, 2, 3))


@use_case
def suspend(uow: UnitOfWork, person_id: int) -> None:
    enrolment = uow.session.execute(
        select(Enrolment).where(Enrolment.person_id == person_id)
    ).scalar_one()
    enrolment.status, enrolment.suspended_since = "suspended", uow.clock.today()


@use_case
def set_status(uow: UnitOfWork, person_id: int, status: str) -> None:
    person = uow.session.get(Person, person_id)
    assert person is not None
    person.status = status


def balance(uow: UnitOfWork, person_id: int) -> int:
    with uow:
        return ledger.individual_balance(uow.session, person_id)
