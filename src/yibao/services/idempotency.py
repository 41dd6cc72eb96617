"""Idempotency in one layer: a changing request is done once per key, and
the same request again gets the first answer.

The key (a ``scope``, such as the HIS institution, and a ``key`` within it,
such as the ``msgid``) is claimed first, through the unique index of
``request_keys``, before anything is read or decided. Whether a request is a
replay is decided only after that claim:

- the claim succeeds: this is the first; the work runs and its answer is
  kept with the key, in the same transaction;
- the key was claimed by a transaction still running: the database makes
  this claim wait for it (the unique index), then it either committed (its
  answer is given) or rolled back (this one claims it and does the work).
  Two overlapping sends of one msgid so both get the first answer, never a
  refusal about the first one's own effect;
- the key is taken by another request (another kind or input: the
  ``fingerprint`` differs): refused, naming the key. A retry is the same
  request sent again, not a new one under an old id.

A refused request's transaction rolls its claim back: the same request may
be sent again and is decided again. Generic on purpose (scope, key,
fingerprint, work): the HIS's 2201/2202, 2203, 2204/2205, 2207 and 2208, the
payments (an employer's, with its Idempotency-Key; a person's, by bank debit)
and the closing of an account use it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, select, text, update

from yibao.domain.errors import DomainError
from yibao.store.models import RequestKey
from yibao.store.types import UTCDateTime
from yibao.store.uow import UnitOfWork

# rows written before this layer remember only what kind of request they were
LEGACY = "legacy:"

_CLAIM = text(
    "INSERT INTO request_keys (scope, key, fingerprint, output, at) "
    "VALUES (:scope, :key, :fingerprint, '{}', :at) "
    "ON CONFLICT (scope, key) DO NOTHING RETURNING id"
).bindparams(bindparam("at", type_=UTCDateTime()))


def canonical(payload: Any) -> str:
    """The payload as one text whatever its key order or spacing."""
    return json.dumps(
        payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )


def fingerprint(kind: str, payload: Any) -> str:
    """What a request asks: its kind (the HIS's infno) and a digest of its input."""
    return f"{kind}:{hashlib.sha256(canonical(payload).encode()).hexdigest()}"


def _same(stored: str, given: str) -> bool:
    if stored.startswith(LEGACY):
        return stored[len(LEGACY) :] == given.split(":", 1)[0]
    return stored == given


def key_reused(key: str, field: str) -> DomainError:
    if field == "msgid":
        return DomainError(
            code="idempotency.key_reused",
            zh=f"报文ID(msgid){key}已用于另一笔不同的请求，新请求须使用新的msgid",
            en=f"msgid {key} was used for another request (another infno or input); "
            "a new request needs a new msgid",
            field=field,
            status=409,
        )
    return DomainError(
        code="idempotency.key_reused",
        zh=f"幂等键({field}){key}已用于另一笔不同的请求，新请求须使用新的幂等键",
        en=f"{field} {key} was used for another request; a new request needs a new {field}",
        field=field,
        status=409,
    )


def once(
    uow: UnitOfWork,
    *,
    scope: str,
    key: str,
    fingerprint: str,
    work: Callable[[], dict[str, Any]],
    field: str = "msgid",
    reused: Callable[[dict[str, Any]], DomainError] | None = None,
) -> dict[str, Any]:
    """``work()``'s answer, done once per (scope, key); inside the caller's
    use case, whose transaction keeps the answer with the key. ``reused``
    makes the refusal of a key taken by another request, from the first
    request's answer, where the key has a meaning of its own (a person's
    account is closed once)."""
    claimed = uow.session.execute(
        _CLAIM, {"scope": scope, "key": key, "fingerprint": fingerprint, "at": uow.clock.now()}
    ).scalar()
    if claimed is None:
        first = uow.session.execute(
            select(RequestKey.fingerprint, RequestKey.output).where(
                RequestKey.scope == scope, RequestKey.key == key
            )
        ).one()
        if not _same(first.fingerprint, fingerprint):
            raise reused(dict(first.output)) if reused else key_reused(key, field)
        return dict(first.output)
    output = work()
    uow.session.execute(update(RequestKey).where(RequestKey.id == claimed).values(output=output))
    return output
