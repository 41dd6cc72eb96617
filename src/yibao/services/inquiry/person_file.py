"""A person's file as staff see it: the counter's person page and the staff
API's person, from one use case.

The balance, the card's state and the enrolment come from the account
summary (``summary.summarize``, presenter STAFF), as on every channel; staff
are shown a lost, frozen, cancelled or replaced card with its state, never
refused. The counter's file opens only for the visit whose document the
clerk recorded (``domain.visits``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from yibao.domain.actors import Actor
from yibao.domain.errors import invalid
from yibao.domain.use import Presenter
from yibao.domain.visits import Visit, require_visit
from yibao.services.cards import cards as card_service
from yibao.services.contributions import contributions
from yibao.services.inquiry import records
from yibao.services.inquiry.summary import AccountSummary, summarize
from yibao.services.registry import registry
from yibao.services.tx import use_case
from yibao.store.models import Card, Enrolment, Person
from yibao.store.uow import UnitOfWork


@dataclass(frozen=True)
class PersonFile:
    person: Person
    summary: AccountSummary
    enrolment: Enrolment | None
    cards: list[Card]  # newest first
    current: Card | None  # the card a channel shows: the live one, else the newest
    payments: list[contributions.PaymentRecord] = field(default_factory=list)


def read_file(
    uow: UnitOfWork, *, actor: Actor, channel: str, account_no: str, payments: int = 0
) -> PersonFile:
    person = registry.get_person.step(uow, actor=actor, channel=channel, account_no=account_no)
    summary = summarize(
        uow, actor=actor, channel=channel, presenter=Presenter.STAFF, person_id=person.id
    )
    cards = card_service.cards_of(uow, person)
    return PersonFile(
        person=person,
        summary=summary,
        enrolment=contributions.current_enrolment(uow.session, person.id),
        cards=cards,
        current=card_service.current_of(cards),
        payments=contributions.payment_records(uow.session, person.id)[:payments]
        if payments
        else [],
    )


person_file = use_case(read_file)


@use_case
def visit_file(
    uow: UnitOfWork, *, actor: Actor, channel: str, visit: Visit | None, account_no: str
) -> PersonFile:
    """The counter's person page: only for the person whose document the
    clerk checked in this visit; with the last year of payments."""
    require_visit(visit, account_no)
    return read_file(uow, actor=actor, channel=channel, account_no=account_no, payments=12)


@use_case
def rights_file(
    uow: UnitOfWork, *, actor: Actor, channel: str, account_no: str
) -> tuple[Person, records.RightsRecord]:
    """Enrolment periods, account postings with their causes and the balance
    (Social Insurance Law art. 4), audited as a read."""
    person = registry.get_person.step(
        uow, actor=actor, channel=channel, account_no=account_no, audit_action="records.rights.read"
    )
    return person, records.rights_records(uow.session, person.id)


@use_case
def statement_document(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    account_no: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> tuple[Person, dt.date, dt.date, bytes]:
    """Payment and rights records of a period as one PDF; by default from the
    first of this year to today."""
    today = uow.clock.today()
    lo = start or today.replace(month=1, day=1)
    hi = end or today
    if hi < lo:
        raise invalid("end", "结束日期早于开始日期", "the end is before the start")
    person = registry.get_person.step(
        uow, actor=actor, channel=channel, account_no=account_no, audit_action="records.statement"
    )
    content = records.statement_pdf(uow.session, person, start=lo, end=hi, now=uow.clock.now())
    return person, lo, hi, content
