"""The double-entry ledger: the only way a balance changes.

Every movement is one entry with postings that sum to zero, under a unique
idempotency key: a retried request finds its entry and gets the first answer
back. Balances are changed by guarded updates (``balance + :amt >= 0`` unless
the account may go negative), in ascending account order so that concurrent
entries queue instead of deadlocking.

Entries and postings are append-only (the database refuses UPDATE and
DELETE, migration 0015), and every entry leaves an audit record in its
transaction (``domain/ledger_audit.py``), which ``check`` compares it with.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yibao.domain import ledger as codes
from yibao.domain import ledger_audit
from yibao.domain.audit import AuditRecord
from yibao.domain.errors import conflict
from yibao.domain.ledger import Leg as Leg  # the posting rule's leg, re-exported
from yibao.observability import metrics
from yibao.services.ledger import audited
from yibao.services.tx import use_case
from yibao.store.models import LedgerAccount, LedgerEntry, Posting
from yibao.store.uow import UnitOfWork

# which kinds of account may never go below zero
NON_NEGATIVE = {"individual", "payable_person", "payable_heirs", "payable_area", "ia_pending"}


@dataclass
class Posted:
    entry: LedgerEntry
    replay: bool  # True when the key had been used: nothing was posted now


def account(
    session: Session,
    *,
    code: str,
    kind: str,
    person_id: int | None = None,
    area: str = "",
    now: dt.datetime,
) -> LedgerAccount:
    """The account with this code, made on first use."""
    found = session.execute(
        select(LedgerAccount).where(LedgerAccount.code == code)
    ).scalar_one_or_none()
    if found is not None:
        return found
    try:
        with session.begin_nested():
            created = LedgerAccount(
                code=code,
                kind=kind,
                person_id=person_id,
                area=area,
                balance=0,
                allow_negative=kind not in NON_NEGATIVE,
                created_at=now,
            )
            session.add(created)
        return created
    except IntegrityError:  # made by a concurrent transaction just now
        return session.execute(select(LedgerAccount).where(LedgerAccount.code == code)).scalar_one()


def find_entry(session: Session, key: str) -> LedgerEntry | None:
    return session.execute(
        select(LedgerEntry).where(LedgerEntry.idem_key == key)
    ).scalar_one_or_none()


def post(
    uow: UnitOfWork,
    *,
    key: str,
    kind: str,
    legs: Sequence[Leg],
    person_id: int | None = None,
    memo: str = "",
    result: dict[str, Any] | None = None,
    reverses: LedgerEntry | None = None,
    audit: bool = True,
) -> Posted:
    """Post one entry, once per key. Raises ``account.insufficient_balance``
    (and posts nothing) when a non-negative account would go below zero.

    The entry's audit record goes with the unit of work's; a caller that
    posts inside a savepoint it may still roll back passes ``audit=False``
    and audits the entry once the savepoint stands (``writes.settle_orm``)."""
    session = uow.session
    codes.check_balanced([(leg.code, leg.amount) for leg in legs])
    existing = find_entry(session, key)
    if existing is not None:
        return Posted(existing, replay=True)
    now = uow.clock.now()
    entry = LedgerEntry(
        idem_key=key,
        kind=kind,
        person_id=person_id,
        memo=memo[:200],
        at=now,
        reverses_id=reverses.id if reverses else None,
        result=result or {},
    )
    try:
        # Claim the key first: a concurrent request with the same key waits
        # here on the unique index and then finds the first one's entry.
        with session.begin_nested():
            session.add(entry)
    except IntegrityError:
        existing = find_entry(session, key)
        if existing is None and reverses is not None:
            raise conflict(
                "ledger.already_reversed", "该笔业务已撤销", "this entry was already reversed"
            ) from None
        assert existing is not None
        return Posted(existing, replay=True)
    accounts = {
        leg.code: account(
            session, code=leg.code, kind=leg.kind, person_id=leg.person_id, area=leg.area, now=now
        )
        for leg in legs
    }
    totals: dict[int, int] = {}
    for leg in legs:
        totals[accounts[leg.code].id] = totals.get(accounts[leg.code].id, 0) + leg.amount
    for account_id in sorted(totals):  # fixed order: no deadlocks between entries
        amount = totals[account_id]
        changed = session.execute(  # type: ignore[attr-defined]
            update(LedgerAccount)
            .where(
                LedgerAccount.id == account_id,
                (LedgerAccount.allow_negative) | (LedgerAccount.balance + amount >= 0),
            )
            .values(balance=LedgerAccount.balance + amount)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed != 1:
            acct = session.get(LedgerAccount, account_id)
            assert acct is not None
            session.refresh(acct)
            raise codes.insufficient(acct.balance, -amount)
    session.execute(
        insert(Posting),
        [
            {
                "entry_id": entry.id,
                "account_id": accounts[leg.code].id,
                "person_id": leg.person_id,
                "amount": leg.amount,
                "at": now,
            }
            for leg in legs
        ],
    )
    for acct in accounts.values():
        session.expire(acct, ["balance"])
    if audit:
        uow.audit(entry_record(key=key, kind=kind, person_id=person_id, legs=legs))
        fen = moved(legs)
        metrics.on_commit(session, lambda: metrics.ledger_posted(kind, fen))
    return Posted(entry, replay=False)


def moved(legs: Sequence[Leg]) -> int:
    """The fen an entry moves: its positive postings (they sum to zero)."""
    return sum(leg.amount for leg in legs if leg.amount > 0)


def entry_record(*, key: str, kind: str, person_id: int | None, legs: Sequence[Leg]) -> AuditRecord:
    """The audit record of an entry posted with these legs."""
    return ledger_audit.entry_record(
        key=key, kind=kind, person_id=person_id, postings=[(leg.code, leg.amount) for leg in legs]
    )


def reverse(uow: UnitOfWork, *, entry: LedgerEntry, key: str, memo: str = "") -> Posted:
    """A new entry with every posting negated; an entry is reversed at most once."""
    session = uow.session
    again = find_entry(session, key)
    if again is not None:
        return Posted(again, replay=True)
    if session.execute(select(LedgerEntry.id).where(LedgerEntry.reverses_id == entry.id)).first():
        raise conflict(
            "ledger.already_reversed", "该笔业务已撤销", "this entry was already reversed"
        )
    rows = session.execute(
        select(Posting, LedgerAccount)
        .join(LedgerAccount, LedgerAccount.id == Posting.account_id)
        .where(Posting.entry_id == entry.id)
        .order_by(Posting.id)
    ).all()
    legs = [Leg(a.code, -p.amount, a.kind, p.person_id, a.area) for p, a in rows]
    return post(
        uow,
        key=key,
        kind=f"reversal:{entry.kind}",
        legs=legs,
        person_id=entry.person_id,
        memo=memo or f"reverses entry {entry.id}",
        reverses=entry,
    )


def balance(session: Session | Connection, code: str) -> int:
    value = session.execute(
        select(LedgerAccount.balance).where(LedgerAccount.code == code)
    ).scalar()
    return int(value or 0)


def individual_balance(session: Session, person_id: int) -> int:
    return balance(session, codes.individual(person_id))


def existing_account(session: Session, code: str) -> LedgerAccount | None:
    """The account of this code, if it has been made, as it is now (its
    balance re-read even when the session holds the account already: a
    set-based posting may have moved it)."""
    return session.execute(
        select(LedgerAccount)
        .where(LedgerAccount.code == code)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


@dataclass
class Line:
    entry_id: int
    at: dt.datetime
    kind: str
    memo: str
    amount: int
    balance_after: int
    entry_person_id: int | None = None  # whose the entry is (a relative's, for family aid)


def history(
    session: Session,
    *,
    code: str,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = 500,
    known: LedgerAccount | None = None,
) -> list[Line]:
    """An account's postings, newest first, each with the balance after it
    (``known``: the account of ``code`` when the caller has read it already)."""
    acct = known if known is not None and known.code == code else existing_account(session, code)
    if acct is None:
        return []
    running = func.sum(Posting.amount).over(order_by=Posting.id)
    sub = (
        select(
            Posting.id.label("pid"),
            Posting.entry_id,
            Posting.at,
            Posting.amount,
            running.label("balance_after"),
        )
        .where(Posting.account_id == acct.id)
        .subquery()
    )
    stmt = (
        select(
            sub.c.entry_id,
            sub.c.at,
            LedgerEntry.kind,
            LedgerEntry.memo,
            sub.c.amount,
            sub.c.balance_after,
            LedgerEntry.person_id,
        )
        .join(LedgerEntry, LedgerEntry.id == sub.c.entry_id)
        .order_by(sub.c.pid.desc())
        .limit(limit)
    )
    if start is not None:
        stmt = stmt.where(sub.c.at >= start)
    if end is not None:
        stmt = stmt.where(sub.c.at < end)
    return [Line(r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), r[6]) for r in session.execute(stmt)]


@dataclass
class CheckResult:
    accounts: int
    entries: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def check(session: Session) -> CheckResult:
    """Every balance equals the sum of its postings; every entry sums to zero;
    no non-negative account is below zero or allowed to go there; and the
    entries and postings are those their audit records describe, none
    missing, none added (``audited.cross_check``).

    A balance is the one column of the ledger updated by design: a forged
    balance differs from its postings' sum, and forged postings from their
    entry's audit record."""
    # REPEATABLE READ on PostgreSQL (set by the caller's connection) keeps
    # the sums and balances of one snapshot.
    problems: list[str] = []
    sums = (
        select(Posting.account_id, func.sum(Posting.amount).label("total"))
        .group_by(Posting.account_id)
        .subquery()
    )
    mismatched = session.execute(
        select(LedgerAccount.code, LedgerAccount.balance, func.coalesce(sums.c.total, 0))
        .outerjoin(sums, sums.c.account_id == LedgerAccount.id)
        .where(LedgerAccount.balance != func.coalesce(sums.c.total, 0))
    ).all()
    for code, bal, total in mismatched:
        problems.append(f"account {code}: balance {bal} but postings sum to {total}")
    unbalanced = session.execute(
        select(Posting.entry_id, func.sum(Posting.amount))
        .group_by(Posting.entry_id)
        .having(func.sum(Posting.amount) != 0)
    ).all()
    for entry_id, total in unbalanced:
        problems.append(f"entry {entry_id}: postings sum to {total}, not zero")
    negative = session.execute(
        select(LedgerAccount.code, LedgerAccount.balance).where(
            and_(LedgerAccount.allow_negative.is_(False), LedgerAccount.balance < 0)
        )
    ).all()
    for code, bal in negative:
        problems.append(f"account {code}: balance {bal} is below zero")
    loosened = session.execute(
        select(LedgerAccount.code, LedgerAccount.kind).where(
            LedgerAccount.allow_negative.is_(True), LedgerAccount.kind.in_(sorted(NON_NEGATIVE))
        )
    ).all()
    for code, kind in loosened:
        problems.append(f"account {code}: may go below zero, but a {kind} account may not")
    audited.cross_check(session, problems)
    n_accounts = session.execute(select(func.count()).select_from(LedgerAccount)).scalar_one()
    n_entries = session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
    return CheckResult(int(n_accounts), int(n_entries), problems)


# where runtime.Services hangs the database's implementations on each session
# (``backends.Backend``), for a service handed a session alone
BACKEND_KEY = "yibao.backend"


def _verify(uow: UnitOfWork) -> CheckResult:
    repeatable_read(uow.session)  # before the first query: one snapshot
    return check(uow.session)


# ``yibao ledger check`` as a use case: every balance against its postings,
# read from one snapshot
verify = use_case(_verify)


def repeatable_read(session: Session) -> None:
    """Read several rows from one snapshot; call before the first query.

    Totals read under PostgreSQL's READ COMMITTED skew while settlements
    commit between the statements; the database's implementations
    (``backends.Backend.snapshot``) know how to ask for one snapshot.
    """
    backend = session.info.get(BACKEND_KEY)
    if backend is None:
        raise RuntimeError("a session not made by runtime.Services: no backend chosen")
    backend.snapshot(session)
