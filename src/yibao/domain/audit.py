"""The audit chain's arithmetic: each entry is linked to its predecessor,
keyed with a secret the database does not hold, and anchored outside the
database by signed checkpoints.

An entry's hash (``audit_log.hash``) is, since migration 0015,

    link = HMAC(s, prev_hash + "[chain,seq,person]")
    s    = HMAC(K, "yibao audit entry" + the record's payload but the person)

where ``K`` is the audit key (``YIBAO_AUDIT_KEY``, or ``var/audit_key``)
and the payload is ``tail_around_person``'s two pieces. ``s`` is what the
writer sends a server-side function that completes the link under the chain
head's lock (``store/sql/yb_audit_append.sql``), as HMAC's inner and outer
keys (``AuditKey.pads``): the database sees a secret good for that one entry
only, never ``K``, and the person, which the database may be the one to
learn, is bound by the link. Without ``K`` nobody can write an entry that
verifies, nor change an entry's content, position or predecessor.

Entries written before 0015 keep their plain SHA-256 hash (``chained_hash``):
verified as before, accepted only as a chain's beginning, before its first
keyed entry, and up to its newest checkpoint.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

GENESIS = "0" * 64
CHAINS = 16
# the shortest audit key accepted (YIBAO_AUDIT_KEY): 256 bits of a random text
MIN_KEY_BYTES = 32


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
        """What is hashed after chain and sequence number, as JSON (the
        payload of an entry written before migration 0015)."""
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
    """sha256 of the previous hash and ``[chain,seq,...tail]``: the hash of
    an entry written before migration 0015, which anyone can recompute."""
    return hashlib.sha256(f"{prev_hash}[{chain},{seq},{tail[1:]}".encode()).hexdigest()


def entry_hash(*, prev_hash: str, chain: int, seq: int, at: dt.datetime, **fields: Any) -> str:
    """The plain hash of a stored entry (before 0015): ``fields`` are an AuditRecord's."""
    return chained_hash(prev_hash, chain, seq, AuditRecord(**fields).tail(at))


def link_message(prev_hash: str, chain: int, seq: int, person_id: int | None) -> bytes:
    """What an entry's keyed link covers besides its content: its place
    (``store/sql/yb_audit_append.sql`` builds the same text)."""
    person = "null" if person_id is None else str(int(person_id))
    return f"{prev_hash}[{chain},{seq},{person}]".encode()


def keyed_hash(
    entry_secret: bytes, prev_hash: str, chain: int, seq: int, person_id: int | None
) -> str:
    return hmac.new(
        entry_secret, link_message(prev_hash, chain, seq, person_id), hashlib.sha256
    ).hexdigest()


# HMAC's inner and outer pads (RFC 2104), for a database that has SHA-256
# but no HMAC: HMAC(s, m) = sha256((s ^ opad) + sha256((s ^ ipad) + m))
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


def hmac_pads(secret: bytes) -> tuple[bytes, bytes]:
    """The inner and outer keys of HMAC-SHA-256 with this (short) key."""
    if len(secret) > 64:
        raise ValueError("an HMAC-SHA-256 key longer than a block is hashed first")
    block = secret.ljust(64, b"\0")
    return block.translate(_IPAD), block.translate(_OPAD)


class AuditKey:
    """The audit key: held by yibao's processes, never by the database.

    Derived from it, each for one purpose: an entry's secret, the
    checkpoints' signature, the ledger cross-check's sums, and a short
    public id that names the key in a checkpoint (HMAC is one-way: the id
    tells nothing of the key)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_KEY_BYTES:
            raise ValueError(f"an audit key has at least {MIN_KEY_BYTES} bytes")
        self._secret = secret
        self.id = self._derive(b"yibao audit key id").hex()[:16]
        self._checkpoint_key = self._derive(b"yibao audit checkpoint")
        self._ledger_key = self._derive(b"yibao audit ledger cross-check")

    def __repr__(self) -> str:
        return f"AuditKey(id={self.id})"  # never the secret

    def _derive(self, purpose: bytes) -> bytes:
        return hmac.new(self._secret, purpose, hashlib.sha256).digest()

    def entry_secret(self, record: AuditRecord, at: dt.datetime) -> bytes:
        """``s``: the record's content but the person, keyed."""
        head, rest = tail_around_person(record, at)
        return hmac.new(
            self._secret,
            b"yibao audit entry\n" + head.encode() + b"\n" + rest.encode(),
            hashlib.sha256,
        ).digest()

    def pads(self, record: AuditRecord, at: dt.datetime) -> tuple[bytes, bytes]:
        """What a server-side function needs to link the record
        (``yb_audit_append``'s ``p_ikey`` and ``p_okey``)."""
        return hmac_pads(self.entry_secret(record, at))

    def function_args(self, record: AuditRecord, at: dt.datetime) -> list[Any]:
        """The record as ``yb_his_person`` and ``yb_his_settle`` take it, in
        their arguments' order: who, the channel, the action, the subject,
        the detail as JSON, and HMAC's inner and outer keys of its secret;
        the chain and the person are the function's to find."""
        return [
            record.actor_kind,
            record.actor_id,
            record.actor_division,
            record.channel,
            record.action,
            record.subject,
            json.dumps(record.detail, ensure_ascii=False),
            *self.pads(record, at),
        ]

    def link(
        self, record: AuditRecord, at: dt.datetime, *, prev_hash: str, chain: int, seq: int
    ) -> str:
        """The stored hash of this record at this place in its chain."""
        return keyed_hash(self.entry_secret(record, at), prev_hash, chain, seq, record.person_id)

    def sign(self, body: bytes) -> str:
        return hmac.new(self._checkpoint_key, body, hashlib.sha256).hexdigest()

    def term(self, text: str) -> int:
        """A keyed 256-bit number of ``text``: summed, an order-free digest
        of a set nobody without the key can balance (``ledger_audit``)."""
        return int.from_bytes(hmac.new(self._ledger_key, text.encode(), hashlib.sha256).digest())


# ----------------------------------------------------------- checkpoints

CHECKPOINT_FORMAT = "yibao-audit-checkpoint/1"


@dataclass(frozen=True)
class Anchor:
    """A chain's last entry when a checkpoint was made (seq 0: no entry yet)."""

    chain: int
    seq: int
    id: int | None
    hash: str


@dataclass(frozen=True)
class Checkpoint:
    name: str  # the file it was read from
    made_at: str
    anchors: tuple[Anchor, ...]


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: the message says which and why."""


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=True, sort_keys=True, separators=(",", ":")).encode()


def checkpoint_text(key: AuditKey, made_at: dt.datetime, anchors: Iterable[Anchor]) -> str:
    """A signed checkpoint: each chain's last entry (id, seq, hash), to be
    kept where the database's users cannot write."""
    body: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "made_at": made_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "key_id": key.id,
        "chains": [
            {"chain": a.chain, "seq": a.seq, "id": a.id, "hash": a.hash}
            for a in sorted(anchors, key=lambda a: a.chain)
        ],
    }
    signed = {**body, "signature": key.sign(_canonical(body))}
    return json.dumps(signed, ensure_ascii=True, sort_keys=True, indent=1) + "\n"


def read_checkpoint(key: AuditKey, name: str, text: str) -> Checkpoint:
    """The checkpoint in ``text``, its signature checked; ``CheckpointError``
    names what is wrong with it."""
    try:
        body = json.loads(text)
    except ValueError:
        raise CheckpointError(f"checkpoint {name}: not JSON") from None
    if not isinstance(body, dict) or body.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {name}: not a {CHECKPOINT_FORMAT} file")
    if body.get("key_id") != key.id:
        raise CheckpointError(
            f"checkpoint {name}: made with another audit key (id {body.get('key_id')!s:.20}, "
            f"this one is {key.id})"
        )
    signature = body.pop("signature", None)
    if not isinstance(signature, str) or not hmac.compare_digest(
        signature, key.sign(_canonical(body))
    ):
        raise CheckpointError(
            f"checkpoint {name}: its signature does not match: the file was changed"
        )
    try:
        anchors = tuple(
            Anchor(
                int(c["chain"]),
                int(c["seq"]),
                None if c["id"] is None else int(c["id"]),
                str(c["hash"]),
            )
            for c in body["chains"]
        )
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"checkpoint {name}: its chains are not readable") from None
    return Checkpoint(name=name, made_at=str(body["made_at"]), anchors=anchors)
