"""What an attacker with the database owner's rights, but not the audit key,
can do behind the application's back: switch the append-only triggers off,
edit, delete and insert rows, and recompute every hash anyone can compute."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table, select, text, update

from yibao.domain.audit import GENESIS, AuditKey, AuditRecord, entry_hash
from yibao.store.models import AuditEntry

LOG: Table = AuditEntry.__table__  # type: ignore[assignment]


@contextmanager
def behind_the_back(engine: Engine, backend: str) -> Iterator[Connection]:
    """A transaction with the triggers off: PostgreSQL's replica role (what a
    superuser may set), SQLite's triggers dropped and made again after."""
    with engine.begin() as conn:
        if backend == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            yield conn
            return
        triggers = conn.execute(
            text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name IN ('audit_log', 'ledger_entries', 'ledger_postings')"
            )
        ).all()
        for name, _ in triggers:
            conn.execute(text(f'DROP TRIGGER "{name}"'))
        yield conn
        for _, sql in triggers:
            conn.execute(text(sql))


def entry(conn: Connection, *where: Any) -> Any:
    """One audit entry, typed (the first in id order that matches)."""
    return conn.execute(select(LOG).where(*where).order_by(LOG.c.id).limit(1)).one()


def rehash_plain(conn: Connection, chain: int, from_seq: int = 1) -> None:
    """Recompute a chain's hashes from ``from_seq`` on, and its head, with
    the unkeyed SHA-256 of the entries written before the audit key: all an
    attacker without the key can compute."""
    _rehash(conn, chain, from_seq, None)


def rehash_keyed(conn: Connection, chain: int, from_seq: int, key: AuditKey) -> None:
    """The same with the audit key: what an attacker who stole it could do."""
    _rehash(conn, chain, from_seq, key)


def _rehash(conn: Connection, chain: int, from_seq: int, key: AuditKey | None) -> None:
    rows = conn.execute(select(LOG).where(LOG.c.chain == chain).order_by(LOG.c.seq)).all()
    prev, seq = GENESIS, 0
    for row in rows:
        if row.seq >= from_seq and key is not None:
            record = AuditRecord(
                row.actor_kind,
                row.actor_id,
                row.actor_division,
                row.channel,
                row.action,
                row.person_id,
                row.subject,
                row.detail,
            )
            digest = key.link(record, row.at, prev_hash=prev, chain=row.chain, seq=row.seq)
            conn.execute(update(LOG).where(LOG.c.id == row.id).values(prev_hash=prev, hash=digest))
            prev = digest
        elif row.seq >= from_seq:
            digest = entry_hash(
                prev_hash=prev,
                chain=row.chain,
                seq=row.seq,
                at=row.at,
                actor_kind=row.actor_kind,
                actor_id=row.actor_id,
                actor_division=row.actor_division,
                channel=row.channel,
                action=row.action,
                person_id=row.person_id,
                subject=row.subject,
                detail=row.detail,
            )
            conn.execute(update(LOG).where(LOG.c.id == row.id).values(prev_hash=prev, hash=digest))
            prev = digest
        else:
            prev = row.hash
        seq = row.seq
    conn.execute(
        text("UPDATE audit_chain_heads SET seq = :s, hash = :h WHERE chain = :c"),
        {"s": seq, "h": prev, "c": chain},
    )
