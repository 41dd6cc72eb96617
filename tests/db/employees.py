"""A builder for the tests of employer batches (issue 15): a person on an
employer's roll who may apply for a card, since a batch refuses anyone who
is not on the employer's roll."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from tests.helpers import SYSTEM, add_person, pay_month
from yibao.domain.actors import Channel
from yibao.services.contributions import contributions
from yibao.services.tx import use_case
from yibao.store.models import Employer, Person
from yibao.store.uow import UnitOfWork


@use_case
def _employ(uow: UnitOfWork, person_id: int, uscc: str, start: dt.date) -> None:
    person = uow.session.get(Person, person_id)
    employer = uow.session.execute(select(Employer).where(Employer.uscc == uscc)).scalar_one()
    assert person is not None
    contributions.enrol(
        uow,
        actor=SYSTEM,
        channel=Channel.CLI,
        person=person,
        insutype=contributions.EMPLOYEE,
        psn_type="employee",
        start=start,
        employer=employer,
    )


def add_employee(
    uow: UnitOfWork, uscc: str, *, name: str = "员工", division: str = "330502001", **kw: Any
) -> Person:
    """A registered person employed by the employer ``uscc`` since October
    2026, with October paid: on its roll and eligible for a card.

    ``uow`` is a fresh unit of work (not open): each step is a use case."""
    person = add_person(uow, name=name, division=division, paid=False, **kw)
    _employ(uow, person.id, uscc, dt.date(2026, 10, 1))
    pay_month(uow, person, 202610)
    return person


def employ(uow: UnitOfWork, person: Any, uscc: str) -> None:
    """Put a person registered elsewhere (e.g. over the API) on a roll, with
    a month paid (``person`` has ``id``, or is a certno)."""
    if isinstance(person, str):
        with uow:
            person = uow.session.execute(select(Person).where(Person.certno == person)).scalar_one()
    _employ(uow, person.id, uscc, dt.date(2026, 10, 1))
    pay_month(uow, person, 202610)
