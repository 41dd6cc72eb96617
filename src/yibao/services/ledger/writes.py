"""A settlement's write, in two implementations with the same invariants
(no balance below zero, postings that sum to zero, one entry per idempotency
key) and the same rows written:

- ``settle_orm``: the ledger's posting function and ORM rows, on every
  database;
- ``settle_sql``: one call of the server-side function ``yb_settle``
  (``store/sql/yb_settle.sql``) on PostgreSQL, a round trip instead of a dozen
  statements.

Both write only if what the decision was made from still holds (the visit
open, the year's usage and the balance as read), else raise ``Stale`` having
written nothing, and the caller decides again. ``backends`` chooses one.
Both leave the entry's audit record with the unit of work once the entry
stands (``ledger.entry_record``); the HIS fast path sends it along to
``yb_his_settle`` (``his_settle_audit``).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError

from yibao.domain import ledger as codes
from yibao.domain.audit import AuditKey, AuditRecord
from yibao.domain.errors import DomainError, conflict
from yibao.domain.settlement import SettlementWrite
from yibao.observability import metrics
from yibao.services.ledger import ledger, usage
from yibao.store import auditlog
from yibao.store.models import Settlement, Visit
from yibao.store.uow import UnitOfWork


class Stale(Exception):
    """What a write was decided from changed before it was written: nothing
    was written, decide again."""


def _replayed() -> DomainError:
    # The request key is claimed before the decision (services.idempotency):
    # a used ledger key behind a fresh request key is a ledger entry written
    # before that layer existed.
    return conflict(
        "ledger.key_used",
        "该笔结算的幂等键已使用",
        "the ledger entry of this request exists already",
        "msgid",
    )


# ------------------------------------------------------------- the ORM


def _ia_leg(w: SettlementWrite) -> int:
    code = codes.individual(w.person_id)
    return sum(leg.amount for leg in w.legs if leg.code == code)


def settle_orm(uow: UnitOfWork, w: SettlementWrite) -> int:
    """The settlement written through the ledger's posting function and the
    ORM; the new entry's id. Row locks in the order of ``yb_settle``: the
    visit, the year's usage, the ledger accounts by ascending id."""
    session = uow.session
    with session.begin_nested():  # a stale write leaves nothing behind
        closed = session.execute(  # type: ignore[attr-defined]
            update(Visit)
            .where(Visit.id == w.visit_id, Visit.status == "registered")
            .values(status="settled")
            .execution_options(synchronize_session=False)
        ).rowcount
        if closed != 1:
            raise Stale("the visit is no longer open")
        if not usage.move(
            session,
            person_id=w.person_id,
            insutype=w.insutype,
            year=w.year,
            seen=w.usage_seen,
            delta=w.usage_delta,
        ):
            raise Stale("the year's usage moved")
        try:
            posted = ledger.post(
                uow,
                key=w.key,
                kind=w.kind,
                legs=w.legs,
                person_id=w.person_id,
                memo=w.memo,
                audit=False,  # below, once the savepoint stands
            )
        except DomainError as exc:
            if exc.code == "account.insufficient_balance":
                raise Stale("a balance would go below zero") from None
            raise
        if posted.replay:
            raise _replayed()
        balance = ledger.individual_balance(session, w.person_id)
        if balance - _ia_leg(w) != w.balance_seen:
            raise Stale("the balance moved")
        session.add(Settlement(**w.settlement, entry_id=posted.entry.id))
        session.flush()
    uow.audit(_record(w))
    _count(uow, w)
    return posted.entry.id


def _count(uow: UnitOfWork, w: SettlementWrite) -> None:
    fen = ledger.moved(w.legs)
    metrics.on_commit(uow.session, lambda: metrics.settled(w.kind, "general", fen))


def counted_fast(w: SettlementWrite, *records: AuditRecord) -> None:
    """The HIS fast path's ``yb_his_settle`` returned: its settlement, its
    ledger entry and its audit entries stand."""
    metrics.settled(w.kind, "fast", ledger.moved(w.legs))
    for record in (*records, _record(w)):
        metrics.audit_appended(record.chain, record.action)


def _record(w: SettlementWrite) -> AuditRecord:
    return ledger.entry_record(key=w.key, kind=w.kind, person_id=w.person_id, legs=w.legs)


# ------------------------------------------------------------- yb_settle


def settle_args(w: SettlementWrite) -> list[Any]:
    """``yb_settle``'s arguments, in its order (``store/sql/yb_settle.sql``);
    the fast path sends the same through ``yb_his_settle``."""
    row = dict(w.settlement)
    row["setl_time"] = row["setl_time"].isoformat()
    return [
        w.key,
        w.kind,
        w.person_id,
        w.memo,
        w.at,
        [leg.code for leg in w.legs],
        [leg.kind for leg in w.legs],
        [leg.amount for leg in w.legs],
        [leg.person_id for leg in w.legs],
        [leg.area for leg in w.legs],
        w.visit_id,
        w.insutype,
        w.year,
        w.usage_seen.deductible_used,
        w.usage_seen.fund_used,
        w.balance_seen,
        json.dumps(row, ensure_ascii=False),
    ]


_YB_SETTLE = text(
    "SELECT yb_settle(:a0, :a1, :a2, :a3, :a4, :a5, :a6, :a7, :a8, :a9, :a10, :a11, :a12, "
    ":a13, :a14, :a15, CAST(:a16 AS json))"
)


def settle_sql(uow: UnitOfWork, w: SettlementWrite) -> int:
    """The settlement written by one call of ``yb_settle`` (PostgreSQL)."""
    params = {f"a{i}": value for i, value in enumerate(settle_args(w))}
    try:
        # a savepoint: yb_settle raises 'yb:stale' after its first writes
        with uow.session.begin_nested():
            entry = uow.session.execute(_YB_SETTLE, params).scalar_one()
    except DBAPIError as exc:
        if "yb:stale" in str(exc.orig):
            raise Stale(str(exc.orig).splitlines()[0]) from None
        raise
    if entry is None:
        raise _replayed()
    uow.audit(_record(w))
    _count(uow, w)
    return int(entry)


def his_settle_audit(key: AuditKey, w: SettlementWrite) -> list[Any]:
    """The entry's audit record as ``yb_his_settle`` appends it after
    ``yb_settle``'s write (its ``p_l_*`` arguments, in order): the record,
    and HMAC's inner and outer keys of its secret (``AuditKey.pads``); the
    chain, the person and the time are the settlement's."""
    return key.function_args(auditlog.stamped(_record(w)), w.at)
