"""Signed-in sessions of the portal and the self-service terminals, kept on
the server (issue 14).

They used to be signed cookies only, so a copy taken before log-out kept
working until the cookie's own expiry. Now a session is a row: the browser's
cookie carries a random id (256 bits), the row keeps its SHA-256 with the
person (at a terminal also the terminal and the card), the CSRF token of its
forms, when it was opened and last seen, when it expires and whether it was
revoked. A session ends

- at log-out (``end``);
- at a password change or a password set with an activation code: every
  session of the person (``end_person``);
- when idle for its idle time, measured on the injected clock: each request
  moves ``expires_at`` on, written at most once per twentieth of the idle
  time so that a busy page does not write a row on every request;
- at a terminal, when the terminal's machine is revoked (``end_terminal``).

These are steps of the use cases in ``person_login`` (the portal) and
``terminals`` (the terminal), called inside their transactions.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select, update

from yibao.services import security
from yibao.store.models.access import WebSession
from yibao.store.uow import UnitOfWork

PORTAL = "portal"
KIOSK = "kiosk"
# an employer's own channel (issue 15): the session is the employer's, no person's
EMPLOYER = "employer"
# secrets.token_urlsafe(32): 43 URL-safe characters. A cookie of another
# shape is no session of ours and is refused before any query.
TOKEN_BYTES = 32
TOKEN_LENGTH = 43


@dataclass(frozen=True)
class Opened:
    """A new session: the id goes into the browser's cookie and nowhere else."""

    token: str
    csrf: str
    expires_at: dt.datetime


def open_session(
    uow: UnitOfWork,
    *,
    channel: str,
    person_id: int | None = None,
    employer_id: int | None = None,
    idle: dt.timedelta,
    terminal_code: str | None = None,
    card_no: str | None = None,
    replacing: str | None = None,
) -> Opened:
    """Open a session for a person who just proved who they are. The session
    the browser held until now (``replacing``), if any, ends: a new log-in is
    a new id and a new CSRF token."""
    if replacing:
        end(uow, channel=channel, token=replacing)
    now = uow.clock.now()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    csrf = secrets.token_urlsafe(24)
    row = WebSession(
        token_hash=security.token_digest(token),
        channel=channel,
        person_id=person_id,
        employer_id=employer_id,
        terminal_code=terminal_code,
        card_no=card_no,
        csrf=csrf,
        idle_seconds=int(idle.total_seconds()),
        created_at=now,
        last_seen_at=now,
        expires_at=now + idle,
    )
    uow.session.add(row)
    uow.session.flush()
    return Opened(token, csrf, row.expires_at)


def _row(uow: UnitOfWork, channel: str, token: str | None) -> WebSession | None:
    if not token or len(token) != TOKEN_LENGTH:
        return None
    return uow.session.execute(
        select(WebSession).where(
            WebSession.token_hash == security.token_digest(token), WebSession.channel == channel
        )
    ).scalar_one_or_none()


def find(uow: UnitOfWork, *, channel: str, token: str | None) -> WebSession | None:
    """The live session behind a cookie, its idle time moved on; else None."""
    row = _row(uow, channel, token)
    now = uow.clock.now()
    if row is None or row.revoked_at is not None or row.expires_at < now:
        return None
    idle = dt.timedelta(seconds=row.idle_seconds)
    if now - row.last_seen_at >= idle / 20:
        row.last_seen_at = now
        row.expires_at = now + idle
    return row


def end(uow: UnitOfWork, *, channel: str, token: str | None) -> WebSession | None:
    """End the session behind a cookie (log-out); the row, if it was live."""
    row = _row(uow, channel, token)
    if row is None or row.revoked_at is not None:
        return None
    row.revoked_at = uow.clock.now()
    return row


def _end_where(uow: UnitOfWork, condition: ColumnElement[bool]) -> int:
    now = uow.clock.now()
    result = uow.session.execute(
        update(WebSession)
        .where(WebSession.revoked_at.is_(None), WebSession.expires_at >= now, condition)
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def end_person(uow: UnitOfWork, person_id: int) -> int:
    """End every session of a person (a password change); how many were live."""
    return _end_where(uow, WebSession.person_id == person_id)


def end_employer(uow: UnitOfWork, employer_id: int) -> int:
    """End every session of an employer (a password change or a new one set)."""
    return _end_where(uow, WebSession.employer_id == employer_id)


def end_terminal(uow: UnitOfWork, terminal_code: str) -> int:
    """End every session at a terminal whose machine was revoked."""
    return _end_where(uow, WebSession.terminal_code == terminal_code)
