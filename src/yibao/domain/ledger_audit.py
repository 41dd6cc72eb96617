"""What the audit log keeps of each ledger entry, so that the ledger can be
cross-checked against a log nobody without the audit key can write.

Every ledger entry leaves one audit record (action ``ledger.entry``) in the
transaction that writes it: its key, kind and person, and a digest of its
postings (account code and amount). ``yibao ledger check`` recomputes the
digest of each entry's postings and compares it with the record's: an entry
written, edited or removed behind the application's back, or an account
renamed under its postings, no longer matches a record it cannot forge.

The comparison is made without holding either side in memory: each side is
summed, per bucket of keys, as keyed numbers (``AuditKey.term``); only the
buckets whose sums differ are read again to name the rows.

Ledger entries written before migration 0015 have no record: the migration
wrote one ``ledger.audited_from`` record with their number, the last id and
a digest of them all (``LegacyDigest``), which the check compares instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from yibao.domain.actors import Actor, Channel
from yibao.domain.audit import AuditKey, AuditRecord

ENTRY_ACTION = "ledger.entry"
BOUNDARY_ACTION = "ledger.audited_from"
ACTOR = Actor.system("ledger")
# buckets of keys the two sides are summed in
BUCKETS = 256


def postings_digest(postings: Iterable[tuple[str, int]]) -> str:
    """The digest of an entry's postings, whatever their order: each
    account code with its amount. (Migration 0015 uses it: do not change.)"""
    h = hashlib.sha256()
    for code, amount in sorted((str(c), int(a)) for c, a in postings):
        h.update(f"{code}\t{amount}\n".encode())
    return h.hexdigest()


def entry_record(
    *, key: str, kind: str, person_id: int | None, postings: Iterable[tuple[str, int]]
) -> AuditRecord:
    """The audit record of a new ledger entry."""
    posted = [(str(c), int(a)) for c, a in postings]
    return ACTOR.record(
        channel=Channel.SYSTEM,
        action=ENTRY_ACTION,
        person_id=person_id,
        subject=kind,
        detail={
            "key": key,
            "postings": len(posted),
            "moved": sum(a for _, a in posted if a > 0),
            "digest": postings_digest(posted),
        },
    )


def summary(key: str, kind: str, person_id: int | None, digest: str) -> str:
    """What both sides agree on for one entry."""
    return f"{key}\x1f{kind}\x1f{'' if person_id is None else person_id}\x1f{digest}"


def record_summary(person_id: int | None, subject: str, detail: Any) -> tuple[str, str] | None:
    """The entry's key and summary as its record states them; None for a
    record whose detail is not a ledger entry's."""
    if not isinstance(detail, dict):
        return None
    key, digest = detail.get("key"), detail.get("digest")
    if not isinstance(key, str) or not isinstance(digest, str):
        return None
    return key, summary(key, subject, person_id, digest)


def bucket(key: str) -> int:
    return hashlib.sha256(key.encode()).digest()[0] % BUCKETS


class Sums:
    """One side's keyed sums, per bucket of keys."""

    def __init__(self, key: AuditKey) -> None:
        self.key = key
        self.sums = [0] * BUCKETS
        self.counts = [0] * BUCKETS

    def add(self, entry_key: str, text: str) -> None:
        b = bucket(entry_key)
        self.sums[b] = (self.sums[b] + self.key.term(text)) % (1 << 256)
        self.counts[b] += 1

    def differing(self, other: Sums) -> set[int]:
        return {
            b
            for b in range(BUCKETS)
            if self.sums[b] != other.sums[b] or self.counts[b] != other.counts[b]
        }


# the ledger read entry by entry, each with its postings (account code, amount):
# every entry, also one without postings (a LEFT JOIN), in id order
ENTRIES_SQL = (
    "SELECT e.id, e.idem_key, e.kind, e.person_id, p.id, p.account_id, a.code, p.amount "
    "FROM ledger_entries e LEFT JOIN ledger_postings p ON p.entry_id = e.id "
    "LEFT JOIN ledger_accounts a ON a.id = p.account_id ORDER BY e.id, p.id"
)


@dataclass
class Entry:
    id: int
    key: str
    kind: str
    person_id: int | None
    postings: list[tuple[str, int]] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return postings_digest(self.postings)

    @property
    def summary(self) -> str:
        return summary(self.key, self.kind, self.person_id, self.digest)


def entries(rows: Iterable[Any]) -> Iterator[Entry]:
    """``ENTRIES_SQL``'s rows, entry by entry. A posting on a missing
    account counts under ``#<account id>``, which no account code matches."""
    current: Entry | None = None
    for entry_id, key, kind, person_id, posting_id, account_id, code, amount in rows:
        if current is None or current.id != entry_id:
            if current is not None:
                yield current
            current = Entry(int(entry_id), str(key), str(kind), person_id)
        if posting_id is not None:
            current.postings.append((f"#{account_id}" if code is None else str(code), int(amount)))
    if current is not None:
        yield current


class LegacyDigest:
    """The digest of the ledger entries written before migration 0015, in
    id order. (Migration 0015 uses it: do not change.)"""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.entries = 0

    def add(
        self, entry_id: int, key: str, kind: str, person_id: int | None, postings_digest: str
    ) -> None:
        person = "" if person_id is None else str(person_id)
        self._h.update(f"{entry_id}\t{key}\t{kind}\t{person}\t{postings_digest}\n".encode())
        self.entries += 1

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def boundary_record(*, last_id: int, entries: int, digest: str) -> AuditRecord:
    """Migration 0015's record of the ledger entries written before it."""
    return Actor.system("migration-0015").record(
        channel=Channel.SYSTEM,
        action=BOUNDARY_ACTION,
        detail={"last_id": last_id, "entries": entries, "digest": digest},
    )
