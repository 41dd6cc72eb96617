"""Appending to and verifying the keyed, hash-chained audit log
(``domain/audit.py`` has the arithmetic).

The audit key reaches the store with each session (``runtime.Services``
puts it in the session's ``info`` under ``KEY``); a writer outside a
session (the monthly credit's connection) hands it over itself.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, cast

from sqlalchemy import (
    Connection,
    Insert,
    Table,
    bindparam,
    func,
    insert,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from yibao.domain.audit import (
    CHAINS,
    GENESIS,
    Anchor,
    AuditKey,
    AuditRecord,
    Checkpoint,
    chained_hash,
    entry_hash,
)
from yibao.observability import context, metrics
from yibao.store.models import AuditChainHead, AuditEntry

# where runtime.Services hangs the audit key on every session it makes
KEY = "yibao.audit_key"

_log = cast(Table, AuditEntry.__table__)
_heads = cast(Table, AuditChainHead.__table__)

# A chain's first entry makes its head; two writers doing so at once both
# go on (SQLite and PostgreSQL both know ON CONFLICT).
_NEW_HEAD = text(
    "INSERT INTO audit_chain_heads (chain, seq, hash) VALUES (:chain, 0, :genesis) "
    "ON CONFLICT DO NOTHING"
)


_COLUMNS = (
    "chain", "seq", "at", "actor_kind", "actor_id", "actor_division", "channel", "action",
    "person_id", "subject", "detail", "prev_hash", "hash",
)  # fmt: skip


@functools.lru_cache(maxsize=8)
def _append_many(n: int) -> Insert:
    """PostgreSQL: ``n`` entries of one chain appended and its head moved in
    one statement, made once per ``n``: its values are bound parameters
    (``v_<column>_<row>``, ``h_chain``, ``h_seq``, ``h_hash``), so it is
    compiled once."""
    moved = (
        update(_heads)
        .where(_heads.c.chain == bindparam("h_chain", type_=_heads.c.chain.type))
        .values(
            seq=bindparam("h_seq", type_=_heads.c.seq.type),
            hash=bindparam("h_hash", type_=_heads.c.hash.type),
        )
        .cte("moved")
    )
    # rows as SELECTs of parameters (a multi-row VALUES has no cache key)
    rows = [
        select(*[bindparam(f"v_{c}_{i}", type_=_log.c[c].type).label(c) for c in _COLUMNS])
        for i in range(n)
    ]
    source = rows[0] if n == 1 else union_all(*rows)
    return insert(_log).from_select(list(_COLUMNS), source).add_cte(moved)


def key_of(session: Session | Connection) -> AuditKey:
    found = session.info.get(KEY)
    if not isinstance(found, AuditKey):
        raise RuntimeError("a session not made by runtime.Services: no audit key")
    return found


def append(
    target: Session | Connection,
    records: Iterable[AuditRecord],
    at: dt.datetime,
    key: AuditKey | None = None,
) -> None:
    """Append records, locking each chain head once, in ascending chain order.

    Two transactions that write to the same chains always take the head locks
    in the same order, so they queue instead of deadlocking.
    """
    key = key or key_of(target)
    by_chain: dict[int, list[AuditRecord]] = {}
    for record in records:
        by_chain.setdefault(record.chain, []).append(stamped(record))
    for chain in sorted(by_chain):
        locked = (
            select(_heads.c.seq, _heads.c.hash).where(_heads.c.chain == chain).with_for_update()
        )
        head = target.execute(locked).one_or_none()
        if head is None:
            target.execute(_NEW_HEAD, {"chain": chain, "genesis": GENESIS})
            head = target.execute(locked).one()
        seq, prev = int(head.seq), str(head.hash)
        rows = []
        for record in by_chain[chain]:
            seq += 1
            digest = key.link(record, at, prev_hash=prev, chain=chain, seq=seq)
            rows.append(
                {
                    "chain": chain,
                    "seq": seq,
                    "at": at,
                    "actor_kind": record.actor_kind,
                    "actor_id": record.actor_id,
                    "actor_division": record.actor_division,
                    "channel": record.channel,
                    "action": record.action,
                    "person_id": record.person_id,
                    "subject": record.subject,
                    "detail": record.detail,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
        if len(rows) <= 8 and _dialect(target) == "postgresql":
            # the entries and the head's move in one statement (one round trip)
            values = {f"v_{k}_{i}": v for i, row in enumerate(rows) for k, v in row.items()}
            target.execute(
                _append_many(len(rows)), {**values, "h_chain": chain, "h_seq": seq, "h_hash": prev}
            )
        else:  # many entries at once; and SQLite allows only a SELECT in a WITH
            target.execute(insert(_log), rows)
            target.execute(update(_heads).where(_heads.c.chain == chain).values(seq=seq, hash=prev))
        appended(target, chain, [r.action for r in by_chain[chain]])


def _dialect(target: Session | Connection) -> str:
    bind = target.get_bind() if isinstance(target, Session) else target
    return bind.dialect.name


def stamped(record: AuditRecord) -> AuditRecord:
    """The record with the request's id in its detail (``request_id``),
    when written while a request is served: the log lines and the answer
    carry the same id. It is part of the detail, so the entry's HMAC covers
    it like the rest of the entry."""
    rid = context.request_id()
    if rid is None or "request_id" in record.detail:
        return record
    return replace(record, detail={**record.detail, "request_id": rid})


def appended(target: Session | Connection, chain: int, actions: Sequence[str]) -> None:
    """Count entries appended, once their transaction commits (a session's)
    or now (a connection's, or a server-side function's that returned)."""

    def count() -> None:
        for action in actions:
            metrics.audit_appended(chain, action)

    if isinstance(target, Session):
        metrics.on_commit(target, count)
    else:
        count()


def append_unkeyed(target: Connection, record: AuditRecord, at: dt.datetime) -> None:
    """One entry with the plain hash of before migration 0015, for that
    migration's own record, written where no audit key is at hand (``verify``
    accepts plain entries only at a chain's beginning)."""
    chain = record.chain
    target.execute(_NEW_HEAD, {"chain": chain, "genesis": GENESIS})
    head = target.execute(
        select(_heads.c.seq, _heads.c.hash).where(_heads.c.chain == chain).with_for_update()
    ).one()
    seq = int(head.seq) + 1
    digest = chained_hash(str(head.hash), chain, seq, record.tail(at))
    target.execute(
        insert(_log).values(
            chain=chain,
            seq=seq,
            at=at,
            actor_kind=record.actor_kind,
            actor_id=record.actor_id,
            actor_division=record.actor_division,
            channel=record.channel,
            action=record.action,
            person_id=record.person_id,
            subject=record.subject,
            detail=record.detail,
            prev_hash=head.hash,
            hash=digest,
        )
    )
    target.execute(update(_heads).where(_heads.c.chain == chain).values(seq=seq, hash=digest))


def record_of(entry: AuditEntry) -> AuditRecord:
    return AuditRecord(
        actor_kind=entry.actor_kind,
        actor_id=entry.actor_id,
        actor_division=entry.actor_division,
        channel=entry.channel,
        action=entry.action,
        person_id=entry.person_id,
        subject=entry.subject,
        detail=entry.detail,
    )


def sealed(key: AuditKey, entry: AuditEntry) -> Literal["keyed", "plain"] | None:
    """How an entry's hash matches its content and place: keyed (written
    with the audit key), plain (the unkeyed hash of an entry written before
    migration 0015, which anyone can recompute), or not at all (edited)."""
    record = record_of(entry)
    keyed = key.link(record, entry.at, prev_hash=entry.prev_hash, chain=entry.chain, seq=entry.seq)
    if hmac.compare_digest(keyed, entry.hash):
        return "keyed"
    plain = entry_hash(
        prev_hash=entry.prev_hash,
        chain=entry.chain,
        seq=entry.seq,
        at=entry.at,
        **{k: getattr(record, k) for k in _RECORD_FIELDS},
    )
    return "plain" if plain == entry.hash else None


_RECORD_FIELDS = (
    "actor_kind",
    "actor_id",
    "actor_division",
    "channel",
    "action",
    "person_id",
    "subject",
    "detail",
)


def entries_of(session: Session, action: str, batch: int = 5000) -> Iterator[AuditEntry]:
    """Every entry of one action, detached, in id order."""
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.action == action)
        .order_by(AuditEntry.id)
        .execution_options(yield_per=batch)
    )
    for entry in session.execute(stmt).scalars():
        session.expunge(entry)
        yield entry


@dataclass
class VerifyResult:
    entries: int
    problems: list[str]
    keyed: int = 0
    # entries with the plain hash of before migration 0015
    plain: int = 0
    # chains whose entries up to their newest checkpoint were found as they were
    anchored: int = 0
    # each chain's last entry (seq 0: none), what a new checkpoint records
    last: dict[int, Anchor] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _where(entry: AuditEntry) -> str:
    return f"chain {entry.chain} seq {entry.seq} (id {entry.id})"


def verify(
    session: Session,
    batch: int = 5000,
    *,
    checkpoints: Sequence[Checkpoint] = (),
    since_checkpoints: bool = False,
    key: AuditKey | None = None,
) -> VerifyResult:
    """Walk every chain and report edited, removed, re-ordered or forged
    entries; with checkpoints, also what vanished or changed up to the
    newest one of each chain (a chain's tail, a whole chain). With
    ``since_checkpoints``, each chain is walked from its newest checkpoint
    on (what a new checkpoint needs), not from its first entry."""
    key = key or key_of(session)
    anchors: dict[int, dict[int, list[tuple[Anchor, str]]]] = {}
    for cp in checkpoints:
        for a in cp.anchors:
            if 0 <= a.chain < CHAINS:
                anchors.setdefault(a.chain, {}).setdefault(a.seq, []).append((a, cp.name))
    result = VerifyResult(entries=0, problems=[])
    problems = result.problems
    heads = {h.chain: h for h in session.execute(select(AuditChainHead)).scalars()}
    for chain in range(CHAINS):
        seen = anchors.get(chain, {})
        newest = max(seen, default=None)
        start = newest if since_checkpoints and newest else 0
        # before the first entry walked: the genesis, or unknown when the walk
        # starts at a checkpoint (which vouches for everything before it)
        expected_prev: str | None = GENESIS if start == 0 else None
        expected_seq = max(start, 1)
        last: AuditEntry | None = None
        keyed_seen = False
        differs = False
        stmt = (
            select(AuditEntry)
            .where(AuditEntry.chain == chain, AuditEntry.seq >= start)
            .order_by(AuditEntry.seq)
            .execution_options(yield_per=batch)
        )
        for entry in session.execute(stmt).scalars():
            result.entries += 1
            if entry.seq != expected_seq:
                problems.append(
                    f"chain {chain}: entries {expected_seq}..{entry.seq - 1} are missing (removed)"
                )
            if expected_prev is not None and entry.prev_hash != expected_prev:
                problems.append(
                    f"{_where(entry)}: does not follow its predecessor "
                    "(an entry before it was removed or changed)"
                )
            how = sealed(key, entry)
            if how == "keyed":
                keyed_seen = True
                result.keyed += 1
            elif how == "plain" and not keyed_seen and (newest is None or entry.seq <= newest):
                result.plain += 1
            elif how == "plain":
                problems.append(
                    f"{_where(entry)}: has an unkeyed hash after keyed entries or after a "
                    "checkpoint: written without the audit key (forged)"
                )
            else:
                problems.append(
                    f"{_where(entry)}: content does not match its hash "
                    "(entry edited, or written without the audit key)"
                )
            for anchor, name in seen.get(entry.seq, ()):
                if anchor.hash != entry.hash or anchor.id not in (None, entry.id):
                    differs = True
                    problems.append(
                        f"{_where(entry)}: is not the entry checkpoint {name} saw there "
                        f"(id {anchor.id}): changed or replaced since"
                    )
            expected_prev = entry.hash
            expected_seq = entry.seq + 1
            last = entry
            session.expunge(entry)
        last_seq = last.seq if last is not None else 0
        if newest is not None and newest > last_seq:
            anchor, name = seen[newest][0]
            problems.append(
                f"chain {chain}: entries {last_seq + 1}..{newest} are missing: checkpoint {name} "
                f"saw seq {newest} (id {anchor.id}) (removed, "
                + ("the whole chain)" if last_seq == 0 else "the chain's tail)")
            )
        elif newest is not None and not differs:
            result.anchored += 1
        result.last[chain] = (
            Anchor(chain, last.seq, last.id, last.hash)
            if last is not None
            else Anchor(chain, 0, None, GENESIS)
        )
        head = heads.get(chain)
        if head is not None:
            if head.seq != last_seq:
                problems.append(
                    f"chain {chain}: the head records {head.seq} entries but the last is "
                    f"{last_seq} (entries at the end were removed)"
                )
            elif last is not None and head.hash != last.hash:
                problems.append(f"chain {chain}: the head hash does not match the last entry")
        elif last_seq:
            problems.append(f"chain {chain}: entries exist but the chain head is missing")
    # the walk reads chains 0..CHAINS-1, the only ones yibao writes
    for chain, count, first in session.execute(
        select(AuditEntry.chain, func.count(), func.min(AuditEntry.id))
        .where((AuditEntry.chain < 0) | (AuditEntry.chain >= CHAINS))
        .group_by(AuditEntry.chain)
    ):
        problems.append(
            f"chain {chain}: {count} entries (the first id {first}) on a chain yibao never "
            "writes (forged, or moved from their chain)"
        )
    return result
