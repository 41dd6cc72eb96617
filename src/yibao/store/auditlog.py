"""Appending to and verifying the hash-chained audit log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.domain.audit import CHAINS, GENESIS, AuditRecord, chained_hash, entry_hash
from yibao.store.models import AuditChainHead, AuditEntry


def append(session: Session, records: Iterable[AuditRecord], at: dt.datetime) -> None:
    """Append records, locking each chain head once, in ascending chain order.

    Two transactions that write to the same chains always take the head locks
    in the same order, so they queue instead of deadlocking.
    """
    by_chain: dict[int, list[AuditRecord]] = {}
    for record in records:
        by_chain.setdefault(record.chain, []).append(record)
    for chain in sorted(by_chain):
        head = session.execute(
            select(AuditChainHead).where(AuditChainHead.chain == chain).with_for_update()
        ).scalar_one_or_none()
        if head is None:
            head = AuditChainHead(chain=chain, seq=0, hash=GENESIS)
            session.add(head)
            session.flush()
        for record in by_chain[chain]:
            seq = head.seq + 1
            digest = chained_hash(head.hash, chain, seq, record.tail(at))
            session.add(
                AuditEntry(
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
            head.seq = seq
            head.hash = digest


@dataclass
class VerifyResult:
    entries: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(session: Session, batch: int = 5000) -> VerifyResult:
    """Walk every chain and report edited, removed or re-ordered entries."""
    problems: list[str] = []
    count = 0
    heads = {h.chain: h for h in session.execute(select(AuditChainHead)).scalars()}
    for chain in range(CHAINS):
        expected_prev = GENESIS
        expected_seq = 1
        last_seq = 0
        stmt = (
            select(AuditEntry)
            .where(AuditEntry.chain == chain)
            .order_by(AuditEntry.seq)
            .execution_options(yield_per=batch)
        )
        for entry in session.execute(stmt).scalars():
            count += 1
            if entry.seq != expected_seq:
                problems.append(
                    f"chain {chain}: entries {expected_seq}..{entry.seq - 1} are missing (removed)"
                )
            if entry.prev_hash != expected_prev:
                problems.append(
                    f"chain {chain} seq {entry.seq}: does not follow its predecessor "
                    "(an entry before it was removed or changed)"
                )
            digest = entry_hash(
                prev_hash=entry.prev_hash,
                chain=entry.chain,
                seq=entry.seq,
                at=entry.at,
                actor_kind=entry.actor_kind,
                actor_id=entry.actor_id,
                actor_division=entry.actor_division,
                channel=entry.channel,
                action=entry.action,
                person_id=entry.person_id,
                subject=entry.subject,
                detail=entry.detail,
            )
            if digest != entry.hash:
                problems.append(
                    f"chain {chain} seq {entry.seq} (id {entry.id}): content does not match "
                    "its hash (entry edited)"
                )
            expected_prev = entry.hash
            expected_seq = entry.seq + 1
            last_seq = entry.seq
            session.expunge(entry)
        head = heads.get(chain)
        if head is not None:
            if head.seq != last_seq:
                problems.append(
                    f"chain {chain}: the head records {head.seq} entries but the last is "
                    f"{last_seq} (entries at the end were removed)"
                )
            elif head.hash != expected_prev:
                problems.append(f"chain {chain}: the head hash does not match the last entry")
        elif last_seq:
            problems.append(f"chain {chain}: entries exist but the chain head is missing")
    return VerifyResult(entries=count, problems=problems)
