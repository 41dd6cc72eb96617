"""The audit chain's arithmetic: each entry hashes its predecessor."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

GENESIS = "0" * 64
CHAINS = 16


@dataclass
class AuditRecord:
    """What to write: who, their division, which channel, what, whose data."""

    actor_kind: str
    actor_id: str
    actor_division: str
    channel: str
    action: str
    person_id: int | None = None
    subject: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def chain(self) -> int:
        # One person's entries stay on one chain, in order; entries about no
        # person are spread by actor.
        if self.person_id is not None:
            return self.person_id % CHAINS
        return int(hashlib.sha256(self.actor_id.encode()).hexdigest(), 16) % CHAINS

    def tail(self, at: dt.datetime) -> str:
        """What is hashed after chain and sequence number (``hash_tail``)."""
        return hash_tail(
            at=at,
            actor_kind=self.actor_kind,
            actor_id=self.actor_id,
            actor_division=self.actor_division,
            channel=self.channel,
            action=self.action,
            person_id=self.person_id,
            subject=self.subject,
            detail=self.detail,
        )


def tail_around_person(record: AuditRecord, at: dt.datetime) -> tuple[str, str]:
    """``record.tail(at)`` cut where the person id goes, for a writer that
    learns the person inside the database: ``head + str(id) + rest`` is the
    tail of the same record about that person (the id is a JSON number)."""
    fields = [
        at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        record.actor_kind,
        record.actor_id,
        record.actor_division,
        record.channel,
        record.action,
    ]
    head = _dump(fields)[:-1] + ","
    rest = "," + _dump([record.subject, record.detail])[1:]
    return head, rest


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def hash_tail(
    *,
    at: dt.datetime,
    actor_kind: str,
    actor_id: str,
    actor_division: str,
    channel: str,
    action: str,
    person_id: int | None,
    subject: str,
    detail: dict[str, Any],
) -> str:
    """The hashed payload after chain and sequence number, as JSON: what a
    writer knows before it holds the chain head (the database function
    ``yb_audit_append`` completes the hash from it, see migration 0008)."""
    return _dump(
        [
            at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            actor_kind,
            actor_id,
            actor_division,
            channel,
            action,
            person_id,
            subject,
            detail,
        ]
    )


def chained_hash(prev_hash: str, chain: int, seq: int, tail: str) -> str:
    """sha256 of the previous hash and ``[chain,seq,...tail]``."""
    return hashlib.sha256(f"{prev_hash}[{chain},{seq},{tail[1:]}".encode()).hexdigest()


def entry_hash(
    *,
    prev_hash: str,
    chain: int,
    seq: int,
    at: dt.datetime,
    actor_kind: str,
    actor_id: str,
    actor_division: str,
    channel: str,
    action: str,
    person_id: int | None,
    subject: str,
    detail: dict[str, Any],
) -> str:
    tail = hash_tail(
        at=at,
        actor_kind=actor_kind,
        actor_id=actor_id,
        actor_division=actor_division,
        channel=channel,
        action=action,
        person_id=person_id,
        subject=subject,
        detail=detail,
    )
    return chained_hash(prev_hash, chain, seq, tail)
