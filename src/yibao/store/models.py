"""The tables. Person-owned tables carry ``person_id`` as their distribution key
(design.md, "Scale beyond one server"); reference tables are small and shared."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from yibao.store.types import BigId, UTCDateTime


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Division(Base):
    __tablename__ = "divisions"

    code: Mapped[str] = mapped_column(String(9), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100), default="")
    level: Mapped[str] = mapped_column(String(10))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("divisions.code"), index=True)
    # a street or town division that runs a medical insurance service point
    service_point: Mapped[bool] = mapped_column(Boolean, default=False)


class Person(Base):
    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    certno: Mapped[str] = mapped_column(String(18), unique=True)
    account_no: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(50), index=True)
    gender: Mapped[str] = mapped_column(String(1))
    birth_date: Mapped[dt.date] = mapped_column(Date)
    division_code: Mapped[str] = mapped_column(ForeignKey("divisions.code"), index=True)
    phone: Mapped[str] = mapped_column(String(20), default="")
    # active, deceased, emigrated, transferred_out
    status: Mapped[str] = mapped_column(String(20), default="active")
    portal_password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class Employer(Base):
    __tablename__ = "employers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    division_code: Mapped[str] = mapped_column(ForeignKey("divisions.code"), index=True)
    contact_phone: Mapped[str] = mapped_column(String(20), default="")
    created_at: Mapped[dt.datetime]


class Institution(Base):
    """A designated hospital or pharmacy (定点医药机构)."""

    __tablename__ = "institutions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))  # hospital, pharmacy
    level: Mapped[str] = mapped_column(String(10))  # 1, 2, 3 (hospital grade); 0 pharmacy
    division_code: Mapped[str] = mapped_column(ForeignKey("divisions.code"), index=True)
    # the gateway token the HIS signs with; kept retrievable because the
    # gateway signature is a hash over it, not a password check
    access_id: Mapped[str] = mapped_column(String(40), unique=True)
    access_secret: Mapped[str] = mapped_column(String(100))
    require_body_signature: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="active")  # active, suspended
    created_at: Mapped[dt.datetime]


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


class Card(Base):
    __tablename__ = "cards"
    __table_args__ = (
        # At most one active card per person, enforced by the database itself.
        Index(
            "uq_cards_one_active_per_person",
            "person_id",
            unique=True,
            postgresql_where=text("status = 'issued'"),
            sqlite_where=text("status = 'issued'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    card_no: Mapped[str] = mapped_column(String(20), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    # where the physical card is: production, service_point, county_center, employer, holder
    location: Mapped[str] = mapped_column(String(20), default="production")
    pickup_division: Mapped[str | None] = mapped_column(String(9))
    ready_at: Mapped[dt.datetime | None]
    pickup_deadline: Mapped[dt.date | None]
    issued_at: Mapped[dt.datetime | None]
    application_id: Mapped[int | None] = mapped_column(ForeignKey("card_applications.id"))
    replaces_card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    person: Mapped[Person] = relationship(lazy="joined", innerjoin=True)


class CardEvent(Base):
    """Every move of a card along its lifecycle, with who did it and why."""

    __tablename__ = "card_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), index=True)
    person_id: Mapped[int] = mapped_column(BigId, index=True)
    at: Mapped[dt.datetime]
    event: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(60))
    channel: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")


class CardApplication(Base):
    __tablename__ = "card_applications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    app_no: Mapped[str] = mapped_column(String(32), unique=True)
    path: Mapped[str] = mapped_column(String(20))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    # the office that took it: a county center (6 digits) or a service point (9)
    division_code: Mapped[str] = mapped_column(ForeignKey("divisions.code"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    submitted_at: Mapped[dt.datetime]
    due_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    calendar_note: Mapped[str] = mapped_column(Text, default="")
    materials: Mapped[list[Any]] = mapped_column(JSON, default=list)
    delegate_certno: Mapped[str | None] = mapped_column(String(18))
    delegate_name: Mapped[str | None] = mapped_column(String(50))
    employer_batch_id: Mapped[int | None] = mapped_column(ForeignKey("employer_batches.id"))
    reissue_of_card_id: Mapped[int | None] = mapped_column(BigId)
    created_by: Mapped[str] = mapped_column(String(60))

    person: Mapped[Person] = relationship(lazy="joined", innerjoin=True)


class EmployerBatch(Base):
    __tablename__ = "employer_batches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_no: Mapped[str] = mapped_column(String(32), unique=True)
    employer_id: Mapped[int] = mapped_column(ForeignKey("employers.id"), index=True)
    division_code: Mapped[str] = mapped_column(ForeignKey("divisions.code"), index=True)
    letter_ref: Mapped[str] = mapped_column(String(100))
    handler_certno: Mapped[str] = mapped_column(String(18))
    handler_name: Mapped[str] = mapped_column(String(50))
    filename: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[dt.datetime]
    uploaded_by: Mapped[str] = mapped_column(String(60))
    total_rows: Mapped[int] = mapped_column(Integer)
    accepted_rows: Mapped[int] = mapped_column(Integer)
    rejected_rows: Mapped[int] = mapped_column(Integer)
    results: Mapped[list[Any]] = mapped_column(JSON, default=list)
    materials: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # in_production, delivered (cards with the employer), completed
    status: Mapped[str] = mapped_column(String(20))
    delivered_at: Mapped[dt.datetime | None]

    employer: Mapped[Employer] = relationship(lazy="joined", innerjoin=True)


class CalendarOverride(Base):
    __tablename__ = "calendar_overrides"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(Text, default="")
    set_by: Mapped[str] = mapped_column(String(60))
    set_at: Mapped[dt.datetime]


class DemoMarker(Base):
    """Records that the demo city was loaded, so that it is loaded once."""

    __tablename__ = "demo_marker"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    loaded_at: Mapped[dt.datetime]
