"""Small builders shared by the tests."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from typer.testing import CliRunner as TyperRunner

from yibao.clock import CHINA, Clock, FixedClock
from yibao.domain.access import Role
from yibao.domain.actors import Actor, Channel
from yibao.domain.ids import make_resident_id
from yibao.services.contributions import contributions
from yibao.services.registry import registry
from yibao.services.tx import use_case
from yibao.store.models import Enrolment, Person
from yibao.store.uow import UnitOfWork

_seq = itertools.count(101)

# The tests' day: every test's clock starts here, whatever today's date is.
START = dt.datetime(2026, 11, 23, 10, 0, tzinfo=CHINA)


class CliRunner(TyperRunner):
    """Typer's runner handing each ``yibao`` command the tests' clock (its
    ``obj``), so that no outcome depends on the day the suite runs."""

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__()
        self.clock = clock or FixedClock(START)

    def invoke(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("obj", self.clock)
        return super().invoke(*args, **kwargs)


WUXING = Actor.staff(username="wuxing", division="330502", role=Role.COUNTY_CLERK)
NANXUN = Actor.staff(username="nanxun", division="330503", role=Role.COUNTY_CLERK)
YUEHE = Actor.staff(username="yuehe", division="330502001", role=Role.SERVICE_POINT_CLERK)
CITY = Actor.staff(username="admin", division="330500", role=Role.CITY_ADMIN)
FUND_CLERK = Actor.staff(username="wuxing_fund", division="330502", role=Role.CONTRIBUTION_CLERK)
SYSTEM = Actor.system("test")


def new_certno(division: str = "330502", birth: dt.date = dt.date(1990, 5, 6)) -> str:
    return make_resident_id(division, birth, next(_seq) % 1000)


def add_person(
    uow: UnitOfWork,
    *,
    division: str = "330502001",
    name: str = "测试人",
    certno: str | None = None,
    paid: bool = True,
) -> Person:
    """A registered person; with ``paid`` (the default) also enrolled as a
    flexible employee with October 2026 paid, so that they may apply for a card.

    ``uow`` is a fresh unit of work (not open): each step is a use case."""
    person = registry.register_person(
        uow,
        actor=SYSTEM,
        channel=Channel.CLI,
        certno=certno or new_certno(division[:6]),
        name=name,
        division_code=division,
    )
    if paid:
        pay_month(uow, person, 202610)
    return person


def _pay_month(uow: UnitOfWork, person: Any, month: int, *, base: int = 5_000_00) -> Enrolment:
    enrolment = contributions.current_enrolment(uow.session, person.id)
    if enrolment is None:
        enrolment = contributions.enrol(
            uow,
            actor=SYSTEM,
            channel=Channel.CLI,
            person=person,
            insutype=contributions.EMPLOYEE,
            psn_type="flexible",
            start=dt.date(month // 100, month % 100, 1),
            base=base,
        )
    lines = contributions.assess_person(
        uow, actor=SYSTEM, channel=Channel.CLI, enrolment=enrolment, months=[month]
    )
    due = [line for line in lines if line.status == "due"]
    if due:
        contributions.record_person_payment(
            uow,
            actor=SYSTEM,
            channel=Channel.CLI,
            person=person,
            lines=due,
            amount=sum(line.employer_amount + line.individual_amount for line in due),
            reference=f"TEST-{month}",
            key=f"test:{person.id}:{month}",
        )
    return enrolment


# Enrol (if needed) as a flexible employee and pay one month, in a transaction
# of its own: ``pay_month(uow, person, 202610)`` with a fresh unit of work;
# ``pay_month.step`` inside a test's own use case.
pay_month = use_case(_pay_month)


@use_case
def _insure(uow: UnitOfWork, certno: str, month: int) -> None:
    from sqlalchemy import select

    person = uow.session.execute(select(Person).where(Person.certno == certno)).scalar_one()
    _pay_month(uow, person, month)


def insure(uow: UnitOfWork, certno: str, month: int = 202610) -> None:
    """Enrol and pay a month for a person registered elsewhere (e.g. over the API)."""
    _insure(uow, certno, month)


def person_id_of(uow: UnitOfWork, certno: str) -> int:
    """The registry's id of the person with this ID number (a card action is
    done for a person: ``person_id=``)."""
    from sqlalchemy import select

    with uow:
        return uow.session.execute(select(Person.id).where(Person.certno == certno)).scalar_one()


def wait_for_lock_waiters(services: Any, count: int, tries: int = 500) -> bool:
    """Whether ``count`` sessions come to wait on a lock (PostgreSQL), polled
    every 20 ms: a test of a race sees the waiter instead of guessing a time."""
    import time

    from sqlalchemy import text

    for _ in range(tries):
        with services.engine.connect() as conn:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ).scalar_one()
        if waiting >= count:
            return True
        time.sleep(0.02)
    return False
