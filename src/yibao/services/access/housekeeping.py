"""Rows that only mattered for a while, deleted once they cannot matter.

Run ``yibao prune`` daily (cron or a systemd timer). Every kind of row it
deletes has a reason it is safe to:

- ``his_nonces``: a gateway nonce is kept to refuse a replayed request, and
  a request whose timestamp is more than the window off is refused as stale
  anyway; a nonce claimed at *t* can only be replayed while *t* - the claim's
  timestamp ≤ window and now - timestamp ≤ window, so after twice the window
  (an hour is kept) its row guards nothing. Two are written per settlement.
- ``kiosk_pin_tries``: wrong PINs count per card, terminal and China day;
  the rows of earlier days block nothing.
- ``ivr_calls``: a telephone call's dialog state, and who the caller proved
  to be for the agent's console during a transfer. Kept ``ivr_call_days``
  after the call's last step; who heard which balance stays in the audit log.
- ``staff_credentials``: sessions and API tokens that expired or were
  revoked ``staff_credential_days`` ago; a live credential is never touched.
- ``web_sessions``: portal and terminal sessions that expired or were ended
  a day ago: an ended session opens nothing, and an unknown id says the same.

The deletes run in batches of ``batch`` rows, each its own transaction, so
that a first run on a large table neither holds locks for long nor builds
one huge transaction. One audit entry records what was deleted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, delete, func, or_, select

from yibao.clock import CHINA
from yibao.domain.actors import Actor, Channel
from yibao.services.access.institution_auth import WINDOW
from yibao.services.tx import use_case
from yibao.store.models import HisNonce, IvrCall, KioskPinTry, StaffCredential, WebSession
from yibao.store.uow import UnitOfWork

# an ended web session's row is kept a day, for whoever looks into a complaint
SESSION_KEEP = dt.timedelta(days=1)
# a nonce's row guards nothing after twice the timestamp window; an hour is kept
NONCE_KEEP = max(dt.timedelta(hours=1), 2 * WINDOW)


@dataclass(frozen=True)
class Pruned:
    his_nonces: int = 0
    kiosk_pin_tries: int = 0
    ivr_calls: int = 0
    staff_credentials: int = 0
    web_sessions: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _conditions(
    now: dt.datetime, *, ivr_call_days: int, staff_credential_days: int
) -> dict[str, tuple[Any, Any, ColumnElement[bool]]]:
    """For each table: the model, the key deleted by (None: the old rows are
    few, deleted in one statement) and what makes a row old."""
    cred_before = now - dt.timedelta(days=staff_credential_days)
    return {
        "his_nonces": (HisNonce, HisNonce.id, HisNonce.at < now - NONCE_KEEP),
        "kiosk_pin_tries": (KioskPinTry, None, KioskPinTry.day < now.astimezone(CHINA).date()),
        "ivr_calls": (
            IvrCall,
            IvrCall.id,
            IvrCall.updated_at < now - dt.timedelta(days=ivr_call_days),
        ),
        "staff_credentials": (
            StaffCredential,
            StaffCredential.id,
            or_(StaffCredential.expires_at < cred_before, StaffCredential.revoked_at < cred_before),
        ),
        # an ended portal or terminal session opens nothing; its row only says
        # so, and an unknown id says the same
        "web_sessions": (
            WebSession,
            WebSession.id,
            or_(
                WebSession.expires_at < now - SESSION_KEEP,
                WebSession.revoked_at < now - SESSION_KEEP,
            ),
        ),
    }


@use_case
def _count(uow: UnitOfWork, *, model: Any, old: ColumnElement[bool]) -> int:
    return uow.session.scalar(select(func.count()).select_from(model).where(old)) or 0


@use_case
def _delete_some(
    uow: UnitOfWork,
    *,
    model: Any,
    key: Any,
    old: ColumnElement[bool],
    batch: int,
) -> int:
    """One batch, in a transaction of its own: a long prune never holds a
    lock for long."""
    if key is None:
        done = uow.session.execute(delete(model).where(old))
        return cast(CursorResult[Any], done).rowcount
    ids = list(uow.session.scalars(select(key).where(old).limit(batch)))
    if ids:
        uow.session.execute(delete(model).where(key.in_(ids)))
    return len(ids)


@use_case
def _record(uow: UnitOfWork, *, actor: Actor, detail: dict[str, object]) -> None:
    uow.audit(actor.record(channel=Channel.CLI, action="housekeeping.prune", detail=detail))


def prune(
    uow_factory: Callable[[], UnitOfWork],
    *,
    ivr_call_days: int,
    staff_credential_days: int,
    batch: int = 5000,
    dry_run: bool = False,
    actor: Actor | None = None,
) -> Pruned:
    """Delete what is old (or, with ``dry_run``, count it); see the module's
    text. Each batch is a use case of its own, on a fresh unit of work."""
    if ivr_call_days < 1 or staff_credential_days < 1:
        raise ValueError("the retention periods are at least one day")
    now = uow_factory().clock.now()
    tables = _conditions(
        now, ivr_call_days=ivr_call_days, staff_credential_days=staff_credential_days
    )
    counts: dict[str, int] = {}
    for name, (model, key, old) in tables.items():
        if dry_run:
            counts[name] = _count(uow_factory(), model=model, old=old)
            continue
        counts[name] = 0
        while True:
            gone = _delete_some(uow_factory(), model=model, key=key, old=old, batch=batch)
            counts[name] += gone
            if key is None or gone < batch:
                break
    pruned = Pruned(**counts)
    if not dry_run and any(counts.values()):
        _record(
            uow_factory(),
            actor=actor or Actor.system("prune"),
            detail={
                **pruned.as_dict(),
                "ivr_call_days": ivr_call_days,
                "staff_credential_days": staff_credential_days,
            },
        )
    return pruned
