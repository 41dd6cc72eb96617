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
        """What is hashed after chain and sequence number, as JSON: what a
        writer knows before it holds the chain head (the database function
        ``yb_audit_append`` completes the hash from it, see migration 0008)."""
        head, rest = tail_around_person(self, at)
        return head + _dump(self.person_id) + rest


def tail_around_person(record: AuditRecord, at: dt.datetime) -> tuple[str, str]:
    """``record.tail(at)`` cut where the person id goes, for a writer that
    learns the person inside the database: ``head + str(id) + rest`` is the
    tail of the same record about that person (the id is a JSON number).
    The one place that lays the hashed payload out."""
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


def chained_hash(prev_hash: str, chain: int, seq: int, tail: str) -> str:
    """sha256 of the previous hash and ``[chain,seq,...tail]``."""
    return hashlib.sha256(f"{prev_hash}[{chain},{seq},{tail[1:]}".encode()).hexdigest()


def entry_hash(*, prev_hash: str, chain: int, seq: int, at: dt.datetime, **fields: Any) -> str:
    """The hash of a stored entry: ``fields`` are an AuditRecord's."""
    return chained_hash(prev_hash, chain, seq, AuditRecord(**fields).tail(at))
