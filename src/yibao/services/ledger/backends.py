"""What differs between the databases, chosen once at start-up.

- the settlement's write (``writes``): the ORM's, or the server-side
  function ``yb_settle`` on PostgreSQL;
- the monthly credit of a range of contribution lines (``monthly_credit``):
  plain statements, or one data-modifying statement on PostgreSQL;
- whether several connections may write at once, and how to read several
  rows from one snapshot;
- the audit key, for the ledger's writes outside a unit of work (the
  monthly credit's chunks, the HIS fast path), whose audit records are
  sealed with it as a unit of work's are (``domain/audit.py``).

``for_dialect`` is the one place that looks at the database's dialect;
``runtime.Services`` calls it and hangs the result on every session
(``of(session)``), so that no service tests the dialect itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

from sqlalchemy.orm import Session

from yibao.domain.audit import AuditKey
from yibao.domain.settlement import SettlementWrite
from yibao.services.ledger import monthly_credit, writes
from yibao.services.ledger.ledger import BACKEND_KEY
from yibao.services.ledger.writes import Stale as Stale
from yibao.services.ledger.writes import counted_fast as counted_fast
from yibao.services.ledger.writes import his_settle_audit as his_settle_audit
from yibao.services.ledger.writes import settle_args as settle_args
from yibao.store.uow import UnitOfWork

# ------------------------------------------------------------- the choice

SettleWriter = Callable[[UnitOfWork, SettlementWrite], int]
CreditRange = monthly_credit.CreditRange


@dataclass(frozen=True)
class Backend:
    name: str
    settle: SettleWriter
    # the monthly credit of one range of contribution lines
    credit_range: CreditRange
    # several connections may write at once (PostgreSQL); SQLite has one writer
    parallel_writers: bool
    # the isolation level that reads several rows from one snapshot, when the
    # default one does not (PostgreSQL's READ COMMITTED); SQLite's one writer does
    snapshot_isolation: str | None
    # what the audit records of writes outside a unit of work are sealed with
    # (a unit of work's session carries it too: store.auditlog.KEY)
    audit_key: AuditKey
    # the server-side functions of store/sql exist: the HIS's fast path may run
    server_functions: bool = False

    def snapshot(self, session: Session) -> None:
        """Read several rows from one snapshot; call before the first query."""
        if self.snapshot_isolation is not None:
            session.connection(execution_options={"isolation_level": self.snapshot_isolation})


def for_dialect(
    dialect: str,
    *,
    settle: Literal["orm", "sql"] | None = None,
    audit_key: AuditKey,
) -> Backend:
    """The implementations for this database: the one place the dialect is
    looked at. ``settle`` picks the settlement's write on PostgreSQL (the
    tests run both)."""
    if dialect == "postgresql":
        return Backend(
            name="postgresql",
            settle=writes.settle_orm if settle == "orm" else writes.settle_sql,
            credit_range=monthly_credit.credit_range_one_statement,
            parallel_writers=True,
            snapshot_isolation="REPEATABLE READ",
            server_functions=True,
            audit_key=audit_key,
        )
    if settle == "sql":
        raise ValueError(f"{dialect} has no yb_settle")
    return Backend(
        name=dialect,
        settle=writes.settle_orm,
        credit_range=monthly_credit.credit_range_statements,
        parallel_writers=False,
        snapshot_isolation=None,
        audit_key=audit_key,
    )


def of(session: Session) -> Backend:
    """The implementations chosen at start-up, carried by every session
    ``runtime.Services`` makes."""
    found = session.info.get(BACKEND_KEY)
    if found is None:
        raise RuntimeError("a session not made by runtime.Services: no backend chosen")
    return cast(Backend, found)
