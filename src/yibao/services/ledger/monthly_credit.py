"""The monthly credit of the individual accounts: the month's paid
contribution lines, set-based, in chunks (``yibao contributions post``).

A balance changes only through the ledger: each chunk is one ledger entry
whose postings sum to zero (each person's account credited, each area's
pending account ``IAPEND:`` debited), every line is claimed once by the
primary key of ``ia_credit_claims`` (the idempotency key of the credit: a
second run, or two at once, post nothing twice), and the pending account,
which may not go below zero, is debited by a guarded update.

A chunk has two implementations (``backends.Backend.credit_range``): one
data-modifying statement on PostgreSQL, plain statements on SQLite, whose
single writer needs no claim conflict handling. Either way the chunk's
entry leaves its audit record in the chunk's transaction, sealed with the
backend's audit key, as every ledger entry does.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import BindParameter, Connection, Engine, bindparam, text

from yibao.domain import ledger as codes
from yibao.domain import ledger_audit
from yibao.domain.audit import AuditKey
from yibao.domain.errors import DomainError
from yibao.store import auditlog
from yibao.store.types import UTCDateTime

# a chunk's credit: the lines claimed, the amount per area, and the
# postings written to the individual accounts (account code, amount)
Credited = tuple[int, list[tuple[str, int]], list[tuple[str, int]]]
CreditRange = Callable[..., Credited]


class Writers(Protocol):
    """What of the database's implementations (``backends.Backend``) the
    credit uses."""

    @property
    def credit_range(self) -> CreditRange: ...

    @property
    def parallel_writers(self) -> bool: ...

    @property
    def audit_key(self) -> AuditKey: ...


@dataclass
class PostResult:
    month: int
    persons: int
    amount: int
    chunks: int


def _month_text(month: int) -> str:
    return f"{month // 100:04d}-{month % 100:02d}"


def post_month(
    engine: Engine,
    *,
    month: int,
    now: dt.datetime,
    chunk_size: int = 10_000,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    backend: Writers,
) -> PostResult:
    """Credit every individual account with its paid lines of the month.

    Set-based and in chunks, each chunk one transaction and one ledger entry,
    committed before the next, so that live settlements keep their latency.
    ``backend`` is the database's implementations (``runtime.Services.backend``).
    """
    stamp = bindparam("now", value=now, type_=UTCDateTime())
    pending = (
        "FROM contribution_lines l WHERE l.month = :m AND l.status = 'paid' AND l.account_credit > 0 "
        "AND NOT EXISTS (SELECT 1 FROM ia_credit_claims c WHERE c.line_id = l.id)"
    )
    with engine.begin() as conn:
        # every person to be credited gets an individual account, in one
        # statement; a run at the same time may create the same ones between
        # this statement's snapshot and its insert, hence the ON CONFLICT
        conn.execute(
            text(
                "INSERT INTO ledger_accounts (code, kind, person_id, area, balance, allow_negative, created_at) "  # noqa: S608 - constant SQL, values bound
                "SELECT 'IA:' || l.person_id, 'individual', l.person_id, MIN(l.area), 0, FALSE, :now "
                f"{pending} AND NOT EXISTS (SELECT 1 FROM ledger_accounts a "
                "WHERE a.person_id = l.person_id AND a.kind = 'individual') GROUP BY l.person_id "
                "ON CONFLICT DO NOTHING"
            ).bindparams(stamp),
            {"m": month},
        )
    persons = amount = chunks = 0
    with engine.connect() as conn:
        first, last = conn.execute(
            text(
                "SELECT MIN(id), MAX(id) FROM contribution_lines WHERE month = :m AND status = 'paid'"
            ),
            {"m": month},
        ).one()
    if first is None:
        return PostResult(month=month, persons=0, amount=0, chunks=0)
    # Chunks are ranges of the primary key: each is found by an index range
    # scan, however large the table, and no query searches for "the next
    # unposted lines". With several workers, each takes every n-th range on
    # its own connection; the claims keep them from crediting a line twice.
    ranges = [(lo, lo + chunk_size - 1) for lo in range(int(first), int(last) + 1, chunk_size)]
    lock = threading.Lock()

    def one(bounds: tuple[int, int]) -> None:
        nonlocal persons, amount, chunks
        claimed, total = _post_range(
            engine,
            backend.credit_range,
            month=month,
            lo=bounds[0],
            hi=bounds[1],
            stamp=stamp,
            audit_key=backend.audit_key,
            now=now,
        )
        if not claimed:
            return
        with lock:
            persons += claimed
            amount += total
            chunks += 1
            if progress is not None:
                progress(claimed)

    if workers <= 1 or not backend.parallel_writers:  # one writer: no gain in parallel
        for bounds in ranges:
            one(bounds)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="post-month") as pool:
            for future in [pool.submit(one, bounds) for bounds in ranges]:
                future.result()
    return PostResult(month=month, persons=persons, amount=amount, chunks=chunks)


def _post_range(
    engine: Engine,
    credit_range: CreditRange,
    *,
    month: int,
    lo: int,
    hi: int,
    stamp: BindParameter[dt.datetime],
    audit_key: AuditKey,
    now: dt.datetime,
) -> tuple[int, int]:
    """Credit the paid, unclaimed lines with ids in [lo, hi]; one transaction, one entry."""
    key = f"iacredit:{month}:{uuid.uuid4().hex}"
    with engine.begin() as conn:
        entry_id = conn.execute(
            text(
                "INSERT INTO ledger_entries (idem_key, kind, memo, at, result) "
                "VALUES (:key, 'ia_credit', :memo, :now, '{}') RETURNING id"
            ).bindparams(stamp),
            {"key": key, "memo": f"individual account credit {_month_text(month)}"},
        ).scalar_one()
        params = {"e": entry_id, "lo": lo, "hi": hi, "m": month}
        claimed, totals, credited = credit_range(conn, params=params, stamp=stamp)
        if not claimed:  # nothing to credit here, or another run took these lines
            conn.rollback()
            return 0, 0
        _debit_pending(conn, entry_id, totals, stamp)
        # the entry's audit record, of its postings as written: the persons'
        # and each area's pending account's
        debited = [(codes.ia_pending(area), -total) for area, total in totals]
        record = ledger_audit.entry_record(
            key=key, kind="ia_credit", person_id=None, postings=credited + debited
        )
        auditlog.append(conn, [record], now, audit_key)
    return claimed, sum(t for _, t in totals)


_CLAIM = (
    "INSERT INTO ia_credit_claims (line_id, entry_id) SELECT l.id, :e FROM contribution_lines l "
    "WHERE l.id BETWEEN :lo AND :hi AND l.month = :m AND l.status = 'paid' AND l.account_credit > 0 "
)


def credit_range_one_statement(
    conn: Connection, *, params: dict[str, int], stamp: BindParameter[dt.datetime]
) -> Credited:
    """PostgreSQL: claim the lines (a concurrent run's claims win the
    conflict and are skipped), write the postings and credit the accounts,
    in one round trip and then one short update."""
    # A chunk touches thousands of millions of accounts: index look-ups,
    # never a hash join over the whole accounts table.
    conn.execute(text("SET LOCAL enable_hashjoin = off"))
    conn.execute(text("SET LOCAL enable_mergejoin = off"))
    # A chunk's commit need not wait for the disk: if the server crashes
    # first, the chunk is lost whole (claims included) and a rerun posts it.
    # Live settlements' commits then do not queue behind the batch's flushes.
    conn.execute(text("SET LOCAL synchronous_commit = off"))
    rows = conn.execute(
        text(
            f"WITH claimed AS ({_CLAIM} ON CONFLICT (line_id) DO NOTHING RETURNING line_id), "  # noqa: S608 - constant SQL
            "lines AS (SELECT l.person_id, l.area, l.account_credit FROM claimed c "
            "JOIN contribution_lines l ON l.id = c.line_id), "
            "per_person AS (SELECT x.person_id, SUM(x.account_credit) AS total, a.id AS account_id, "
            "a.code FROM lines x JOIN ledger_accounts a ON a.person_id = x.person_id "
            "AND a.kind = 'individual' GROUP BY x.person_id, a.id, a.code), "
            "posted AS (INSERT INTO ledger_postings (entry_id, account_id, person_id, amount, at) "
            "SELECT :e, account_id, person_id, total, :now FROM per_person RETURNING 1) "
            # each area's total, and each posting for the entry's audit record (as
            # written: no second reading of the postings and their accounts)
            "SELECT 'area', area, SUM(account_credit), COUNT(*), (SELECT COUNT(*) FROM posted) "
            "FROM lines GROUP BY area "
            "UNION ALL SELECT 'posting', code, total, 0, 0 FROM per_person"
        ).bindparams(stamp),
        params,
    ).all()
    areas = sorted((str(r[1]), int(r[2]), int(r[3])) for r in rows if r[0] == "area")
    credited = [(str(r[1]), int(r[2])) for r in rows if r[0] == "posting"]
    claimed = sum(n for _, _, n in areas)
    if claimed:
        # The balances last, in their own short statement: a live settlement
        # on one of these accounts waits only from here to the commit, not
        # for the whole chunk.
        conn.execute(
            text(
                "UPDATE ledger_accounts SET balance = ledger_accounts.balance + p.amount "
                "FROM ledger_postings p WHERE p.entry_id = :e AND p.person_id IS NOT NULL "
                "AND ledger_accounts.id = p.account_id"
            ),
            params,
        )
    return claimed, [(area, total) for area, total, _ in areas], credited


def credit_range_statements(
    conn: Connection, *, params: dict[str, int], stamp: BindParameter[dt.datetime]
) -> Credited:
    """Every database, in plain statements: SQLite has one writer at a
    time, so that nothing can claim in between."""
    claimed = conn.execute(
        text(
            f"{_CLAIM} AND NOT EXISTS (SELECT 1 FROM ia_credit_claims c WHERE c.line_id = l.id)"  # noqa: S608
        ),
        params,
    ).rowcount
    chunk = (
        "FROM ia_credit_claims c JOIN contribution_lines l ON l.id = c.line_id "
        "WHERE c.line_id BETWEEN :lo AND :hi AND c.entry_id = :e"
    )
    conn.execute(
        text(
            "INSERT INTO ledger_postings (entry_id, account_id, person_id, amount, at) "
            "SELECT :e, a.id, l.person_id, SUM(l.account_credit), :now "
            "FROM ia_credit_claims c JOIN contribution_lines l ON l.id = c.line_id "
            "JOIN ledger_accounts a ON a.person_id = l.person_id AND a.kind = 'individual' "
            "WHERE c.line_id BETWEEN :lo AND :hi AND c.entry_id = :e GROUP BY a.id, l.person_id"
        ).bindparams(stamp),
        params,
    )
    conn.execute(
        text(
            "UPDATE ledger_accounts SET balance = ledger_accounts.balance + s.total FROM "  # noqa: S608
            f"(SELECT l.person_id, SUM(l.account_credit) AS total {chunk} GROUP BY l.person_id) s "
            "WHERE ledger_accounts.person_id = s.person_id AND ledger_accounts.kind = 'individual'"
        ),
        params,
    )
    totals = [
        (str(r[0]), int(r[1]))
        for r in conn.execute(
            text(f"SELECT l.area, SUM(l.account_credit) {chunk} GROUP BY l.area ORDER BY l.area"),
            params,
        ).all()
    ]
    credited = [
        (str(r[0]), int(r[1]))
        for r in conn.execute(
            text(
                "SELECT a.code, p.amount FROM ledger_postings p "
                "JOIN ledger_accounts a ON a.id = p.account_id WHERE p.entry_id = :e"
            ),
            params,
        ).all()
    ]
    return int(claimed or 0), totals, credited


def _debit_pending(
    conn: Connection,
    entry_id: int,
    totals: Sequence[tuple[str, int]],
    stamp: BindParameter[dt.datetime],
) -> None:
    """The credited money leaves each area's pending account (one row per
    area), never below zero: contributions not received are not credited."""
    for area, total in totals:
        pend = codes.ia_pending(area)
        pend_id = conn.execute(
            text("SELECT id FROM ledger_accounts WHERE code = :c"), {"c": pend}
        ).scalar()
        if pend_id is None:
            raise DomainError(
                code="ledger.no_pending",
                zh=f"{area}没有待记账资金",
                en=f"no contributions received for area {area} to credit from",
                status=409,
            )
        conn.execute(
            text(
                "INSERT INTO ledger_postings (entry_id, account_id, person_id, amount, at) "
                "VALUES (:e, :a, NULL, :amt, :now)"
            ).bindparams(stamp),
            {"e": entry_id, "a": pend_id, "amt": -total},
        )
        moved = conn.execute(
            text(
                "UPDATE ledger_accounts SET balance = balance - :amt "
                "WHERE id = :a AND (allow_negative OR balance - :amt >= 0)"
            ),
            {"amt": total, "a": pend_id},
        ).rowcount
        if moved != 1:
            balance = conn.execute(
                text("SELECT balance FROM ledger_accounts WHERE id = :a"), {"a": pend_id}
            ).scalar_one()
            raise codes.insufficient(int(balance), total)
