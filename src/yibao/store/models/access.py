"""Who may act, and the trail they leave: staff and their credentials, persons'
portal and telephone credentials, terminals, institutions' gateway nonces and
sign-ins, telephone calls in progress, and the hash-chained audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from yibao.store.models.base import Base
from yibao.store.models.registry import Division
from yibao.store.types import BigId


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(50))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(30))
    division_code: Mapped[str] = mapped_column(ForeignKey("divisions.code"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]

    division: Mapped[Division] = relationship(lazy="joined", innerjoin=True)


class StaffCredential(Base):
    """A browser session or an API token; only a hash of the secret is kept."""

    __tablename__ = "staff_credentials"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_hash: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(10))  # session, api
    label: Mapped[str] = mapped_column(String(100), default="")
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]

    staff: Mapped[StaffUser] = relationship(lazy="joined", innerjoin=True)


class AuditEntry(Base):
    """Append-only, hash-chained audit log. Entries are spread over a few
    chains (by person) so that concurrent writers do not all queue on one
    chain head; each chain is verified on its own."""

    __tablename__ = "audit_log"
    __table_args__ = (UniqueConstraint("chain", "seq", name="uq_audit_chain_seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    chain: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    actor_kind: Mapped[str] = mapped_column(String(20))  # staff, institution, terminal, ...
    actor_id: Mapped[str] = mapped_column(String(60))
    actor_division: Mapped[str] = mapped_column(String(9), default="")
    channel: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(60))
    person_id: Mapped[int | None] = mapped_column(BigId, index=True)
    subject: Mapped[str] = mapped_column(String(100), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    __tablename__ = "audit_chain_heads"

    chain: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class PortalAccount(Base):
    """A person's portal log-in state: wrong passwords, lockout, activation code."""

    __tablename__ = "portal_accounts"

    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None]
    activation_hash: Mapped[str | None] = mapped_column(String(200))
    activation_expires_at: Mapped[dt.datetime | None]
    # bumped on every password change: older portal sessions stop working
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime]


class KioskTerminal(Base):
    """A self-service terminal in a lobby, registered with its location.

    The machine proves it is this terminal with a device token that it got by
    activating itself with a one-time code from staff; both are kept only as
    SHA-256 digests."""

    __tablename__ = "kiosk_terminals"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    location: Mapped[str] = mapped_column(String(200))
    division_code: Mapped[str] = mapped_column(ForeignKey("divisions.code"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime]
    device_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    activation_hash: Mapped[str | None] = mapped_column(String(64))
    activation_expires: Mapped[dt.datetime | None]
    activation_failures: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    activated_at: Mapped[dt.datetime | None]


class KioskPinTry(Base):
    """Wrong PINs of a card on one terminal on one day (3 block the card there)."""

    __tablename__ = "kiosk_pin_tries"

    terminal_code: Mapped[str] = mapped_column(ForeignKey("kiosk_terminals.code"), primary_key=True)
    card_no: Mapped[str] = mapped_column(String(20), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)


class PhonePin(Base):
    """A person's telephone-inquiry PIN (hashed) and its daily failure count."""

    __tablename__ = "phone_pins"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id"), primary_key=True, autoincrement=False
    )
    pin_hash: Mapped[str] = mapped_column(String(200))
    # wrong PINs keyed on one China date; a new day starts from zero
    failures: Mapped[int] = mapped_column(Integer, default=0)
    failures_on: Mapped[dt.date | None] = mapped_column(Date)
    locked_on: Mapped[dt.date | None] = mapped_column(Date)
    set_at: Mapped[dt.datetime]
    set_channel: Mapped[str] = mapped_column(String(20))


class IvrCall(Base):
    """One telephone call's dialog state: app servers are stateless, so every
    keypad step reads and writes this row."""

    __tablename__ = "ivr_calls"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True)
    platform: Mapped[str] = mapped_column(String(10))  # twiml, vxml, sim
    caller: Mapped[str] = mapped_column(String(40), default="")
    state: Mapped[str] = mapped_column(String(20))
    lang: Mapped[str] = mapped_column(String(2), default="zh")
    # what the caller asked for before being identified (menu key)
    pending: Mapped[str] = mapped_column(String(10), default="")
    tries: Mapped[int] = mapped_column(Integer, default=0)
    silences: Mapped[int] = mapped_column(Integer, default=0)
    # the person keyed in (not yet proven) and the person proven by the PIN
    candidate_id: Mapped[int | None] = mapped_column(BigId)
    person_id: Mapped[int | None] = mapped_column(BigId, index=True)
    # the last turn spoken, for "9 repeat" and a silence
    last_turn: Mapped[dict[str, Any]] = mapped_column(default=dict)
    agent_number: Mapped[str | None] = mapped_column(String(40))
    transferred_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None]


class HisNonce(Base):
    """Gateway nonces seen within the timestamp window: a replayed request is
    refused by the unique key, whichever app server it reaches."""

    __tablename__ = "his_nonces"
    __table_args__ = (UniqueConstraint("access_id", "nonce", name="uq_his_nonces"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    access_id: Mapped[str] = mapped_column(String(40))
    nonce: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(index=True)


class HisSignIn(Base):
    """A sign-in (9001) of an operator at an institution; business codes carry its number."""

    __tablename__ = "his_sign_ins"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sign_no: Mapped[str] = mapped_column(String(40), unique=True)
    institution_code: Mapped[str] = mapped_column(String(20), index=True)
    opter_no: Mapped[str] = mapped_column(String(50), default="")
    signed_in_at: Mapped[dt.datetime]
    signed_out_at: Mapped[dt.datetime | None]


class WebSession(Base):
    """A person's signed-in session on the portal or at a self-service
    terminal (issue 14), kept on the server so that it can be ended.

    The browser's cookie holds a random id, of which only the SHA-256 is kept
    here: a copy of this table opens no session. A session ends at log-out,
    at a password change (every session of the person), when idle past
    ``expires_at`` (moved on by its requests, on the injected clock), or, at a
    terminal, when the terminal's machine is revoked."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(10))  # portal, kiosk, employer
    # whose session: a person's (portal, terminal) or an employer's (issue 15).
    # The person is NULL only in an employer's session, which the portal and
    # the terminal never find (each looks up its own channel's sessions), so
    # their code reads it as an int.
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True, nullable=True)
    employer_id: Mapped[int | None] = mapped_column(ForeignKey("employers.id"), index=True)
    # at a terminal: the terminal and the card whose PIN opened the session
    terminal_code: Mapped[str | None] = mapped_column(
        ForeignKey("kiosk_terminals.code"), index=True
    )
    card_no: Mapped[str | None] = mapped_column(String(20))
    # the token every form of the session carries; it is shown in the pages,
    # so it is no secret from the person and needs no digest
    csrf: Mapped[str] = mapped_column(String(64))
    idle_seconds: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    revoked_at: Mapped[dt.datetime | None]


class EmployerAccount(Base):
    """An employer's log-in to its own channel (issue 15): the password,
    wrong passwords and lockout, and the activation code issued at the
    county center. Secrets are kept only as hashes."""

    __tablename__ = "employer_accounts"

    employer_id: Mapped[int] = mapped_column(
        ForeignKey("employers.id"), primary_key=True, autoincrement=False
    )
    password_hash: Mapped[str | None] = mapped_column(String(200))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None]
    activation_hash: Mapped[str | None] = mapped_column(String(200))
    activation_expires_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime]
