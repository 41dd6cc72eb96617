"""The account summary: "what is my balance?" on every channel.

One use case answers it for the portal's first page, the self-service
terminal, the counter, the telephone, the staff API and the HIS's 1101
(``balc``): the balance and its as-of time, the card and its state, the
enrolment and any suspension, the last postings and, for the portal's chart,
the balance at each month's end. Whether the card (or the person) may be used
for an inquiry is ``domain.use.decide``; the read is audited with who asked,
through which channel.

Which card is shown: the one presented (the terminal's card reader, a card
number keyed on the telephone), else the person's current card.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.clock import CHINA
from yibao.domain import ledger as codes
from yibao.domain.access import Perm
from yibao.domain.actors import Actor
from yibao.domain.cards import STATUS_ZH, CardStatus
from yibao.domain.errors import not_found
from yibao.domain.use import (
    CardState,
    Named,
    Presenter,
    Purpose,
    card_state_code,
    decide,
)
from yibao.services.cards import cards as card_service
from yibao.services.contributions import contributions
from yibao.services.family import family as family_aid
from yibao.services.ledger import ledger
from yibao.services.tx import use_case
from yibao.store.models import Card, ContributionLine, Employer, Enrolment, LedgerAccount, Person
from yibao.store.uow import UnitOfWork


@dataclass(frozen=True)
class CardView:
    card_no: str
    status: str  # the lifecycle status: issued, lost, frozen, ...
    state: str  # as the refusals name it: issued, lost, frozen, cancelled, replaced, not_issued
    status_zh: str


@dataclass(frozen=True)
class EnrolmentView:
    insutype: str
    psn_type: str
    status: str  # active, suspended
    area: str
    start_date: dt.date
    suspended_since: dt.date | None
    employer_id: int | None


@dataclass(frozen=True)
class Arrears:
    """Why benefits are suspended: who has not paid which months.
    ``employer`` is the employer's name, empty when the person pays
    themselves; ``months`` are YYYYMM, oldest first."""

    employer: str
    months: list[int]


@dataclass(frozen=True)
class AccountSummary:
    person_id: int
    name: str
    account_no: str
    certno: str
    division_code: str
    person_status: str
    balance: int  # fen
    as_of: dt.datetime
    card: CardView | None
    enrolment: EnrolmentView | None
    recent: list[ledger.Line] = field(default_factory=list)
    # the latest family mutual aid payments, both ways, as many as ``recent``
    family: list[family_aid.PaymentView] = field(default_factory=list)
    # (YYYY-MM, balance at the month's end in fen), oldest first, when asked for
    month_ends: list[tuple[str, int]] = field(default_factory=list)
    # when benefits are suspended: the unpaid months behind it
    arrears: Arrears | None = None

    @property
    def suspended(self) -> bool:
        return self.enrolment is not None and self.enrolment.status == "suspended"


def card_view(card: Card, state: CardState) -> CardView:
    return CardView(
        card.card_no, card.status, card_state_code(state), STATUS_ZH[CardStatus(card.status)]
    )


def _enrolment_view(e: Enrolment | None) -> EnrolmentView | None:
    if e is None:
        return None
    return EnrolmentView(
        e.insutype, e.psn_type, e.status, e.area, e.start_date, e.suspended_since, e.employer_id
    )


@dataclass(frozen=True)
class Opened:
    """What an inquiry may read: the person, the card presented, the enrolment."""

    person: Person
    card: Card | None
    enrolment: Enrolment | None


def open_for_inquiry(
    uow: UnitOfWork,
    *,
    actor: Actor,
    presenter: Presenter,
    person_id: int | None = None,
    card_no: str | None = None,
    named: Named | None = None,
    card_field: str = "card_no",
) -> Opened:
    """Find the person (by the card presented, or by id) and decide whether
    this presenter may read their records: staff need the permission and the
    person in their area; everyone else is ``domain.use.decide``'s to refuse."""
    card: Card | None = None
    person: Person | None = None
    if card_no is not None:
        card = uow.session.execute(
            select(Card).where(Card.card_no == card_no.strip())
        ).scalar_one_or_none()
        if card is None:
            raise not_found("卡片", "card", "card.not_found")
        person = uow.session.get(Person, card.person_id)
    elif person_id is not None:
        person = uow.session.get(Person, person_id)
    if presenter is Presenter.STAFF:
        actor.require(Perm.PERSON_READ)
        if person is None or not actor.sees(person.division_code):
            raise not_found("参保人员", "person", "person.not_found")
    enrolment = contributions.current_enrolment(uow.session, person.id) if person else None
    decide(
        purpose=Purpose.INQUIRY,
        presenter=presenter,
        person=contributions.person_state(person, enrolment) if person else None,
        card=card_service.card_state(uow, card) if card else None,
        named=named,
        card_field=card_field,
    ).require()
    assert person is not None
    return Opened(person, card, enrolment)


def month_end_balances(
    lines: list[tuple[dt.datetime, int]],
    *,
    today: dt.date,
    months: int = 12,
    opening: int = 0,
) -> list[tuple[str, int]]:
    """The balance at the end of each of the last ``months`` months (the current
    one up to today), oldest first, from postings given as (time, balance
    after), newest first; ``opening`` is the balance before the oldest of them."""
    ends: list[tuple[str, dt.datetime]] = []
    year, month = today.year, today.month
    for _ in range(months):
        nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
        ends.append((f"{year:04d}-{month:02d}", dt.datetime.combine(nxt, dt.time(), CHINA)))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    result: list[tuple[str, int]] = []
    for label, end in reversed(ends):
        balance = opening
        for at, after in lines:  # newest first: the first one before the end counts
            if at < end:
                balance = after
                break
        result.append((label, balance))
    return result


def _month_ends(
    session: Session,
    today: dt.date,
    person_id: int,
    balance: int,
    months: int,
    known: LedgerAccount | None = None,
) -> list[tuple[str, int]]:
    first = today.replace(day=1)
    for _ in range(months - 1):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    since = dt.datetime.combine(first, dt.time(), CHINA)
    lines = ledger.history(
        session, code=codes.individual(person_id), start=since, limit=100_000, known=known
    )
    opening = balance - sum(line.amount for line in lines)
    return month_end_balances(
        [(line.at, line.balance_after) for line in lines],
        today=today,
        months=months,
        opening=opening,
    )


def arrears_of(uow: UnitOfWork, enrolment: Enrolment | None) -> Arrears | None:
    """The unpaid months behind a suspension, read only for a suspended
    enrolment: the employer's months past their due date, or the person's
    own unpaid months before this one."""
    if enrolment is None or enrolment.status != "suspended":
        return None
    today = uow.clock.today()
    if enrolment.employer_id is not None:
        employer = uow.session.get(Employer, enrolment.employer_id)
        due = contributions.arrears(uow.session, employer_id=enrolment.employer_id, today=today)
        return Arrears(employer.name if employer else "", [a.month for a in due])
    months = uow.session.execute(
        select(ContributionLine.month)
        .where(
            ContributionLine.enrolment_id == enrolment.id,
            ContributionLine.status == "due",
            ContributionLine.month < contributions.month_of(today),
        )
        .order_by(ContributionLine.month)
    ).scalars()
    return Arrears("", list(months))


def summarize(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    presenter: Presenter,
    person_id: int | None = None,
    card_no: str | None = None,
    named: Named | None = None,
    recent: int = 10,
    action: str = "balance.read",
    card_field: str = "card_no",
    months: int = 0,
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
    replica: bool = False,
) -> AccountSummary:
    """The step of ``account_summary``, for a use case that reads it inside its
    own transaction (the HIS's 1101, the telephone dialog, the terminal's
    receipt). ``months``: also the balance at the end of each of the last
    so many months. ``subject`` and ``detail`` go into the audit entry (the
    telephone names its call); the subject is else the card shown.
    ``replica``: the balance, the postings and the month ends may come from
    the read replica (``uow.replica_read``), and ``as_of`` says how fresh
    they are; who may see them is decided on the primary, and the read is
    audited there."""
    opened = open_for_inquiry(
        uow,
        actor=actor,
        presenter=presenter,
        person_id=person_id,
        card_no=card_no,
        named=named,
        card_field=card_field,
    )
    person, enrolment = opened.person, opened.enrolment
    shown = opened.card or card_service.current_card(uow, person)
    if replica:
        with uow.replica_read() as (reads, as_of):
            balance = ledger.individual_balance(reads, person.id)
            lines = (
                ledger.history(reads, code=codes.individual(person.id), limit=recent)
                if recent
                else []
            )
            ends = (
                _month_ends(reads, uow.clock.today(), person.id, balance, months) if months else []
            )
    else:
        as_of = uow.clock.now()
        # the account read once for its balance, its postings and its month
        # ends; the balance alone when only it is asked for
        code = codes.individual(person.id)
        acct = ledger.existing_account(uow.session, code) if recent or months else None
        balance = acct.balance if acct is not None else ledger.balance(uow.session, code)
        lines = (
            ledger.history(uow.session, code=code, limit=recent, known=acct)
            if recent and acct is not None
            else []
        )
        ends = (
            _month_ends(uow.session, uow.clock.today(), person.id, balance, months, acct)
            if months
            else []
        )
    family_aid.relabel(uow.session, person.id, lines)
    uow.audit(
        actor.record(
            channel=channel,
            action=action,
            person_id=person.id,
            subject=subject or (shown.card_no if shown else person.account_no),
            detail=detail,
        )
    )
    return AccountSummary(
        person_id=person.id,
        name=person.name,
        account_no=person.account_no,
        certno=person.certno,
        division_code=person.division_code,
        person_status=person.status,
        balance=balance,
        as_of=as_of,
        card=card_view(shown, card_service.card_state(uow, shown)) if shown else None,
        enrolment=_enrolment_view(enrolment),
        recent=lines,
        family=family_aid.payments_of(uow.session, person.id, limit=recent) if recent else [],
        month_ends=ends,
        arrears=arrears_of(uow, enrolment),
    )


@use_case
def account_summary(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    presenter: Presenter,
    person_id: int | None = None,
    card_no: str | None = None,
    named: Named | None = None,
    recent: int = 10,
    action: str = "balance.read",
    card_field: str = "card_no",
    months: int = 0,
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AccountSummary:
    """The account summary as a use case of its own: a read alone (the
    portal's first page, the terminal, the counter, the staff API), so the
    balance may come from the read replica. Inside another use case
    (1101, the telephone, a receipt) ``summarize`` reads the primary."""
    return summarize(
        uow,
        actor=actor,
        channel=channel,
        presenter=presenter,
        person_id=person_id,
        card_no=card_no,
        named=named,
        recent=recent,
        action=action,
        card_field=card_field,
        months=months,
        subject=subject,
        detail=detail,
        replica=True,
    )
