"""Cards, their history and applications (the four ways to apply), employers'
batches, and the electronic voucher that stands in for a card."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from yibao.store.models.base import Base
from yibao.store.models.registry import Employer, Person
from yibao.store.types import BigId


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


class EVoucher(Base):
    """An issued electronic voucher token; only its hash is kept."""

    __tablename__ = "e_vouchers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(BigId, index=True)
    issued_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    channel: Mapped[str] = mapped_column(String(20))
    used_at: Mapped[dt.datetime | None]
    used_by: Mapped[str | None] = mapped_column(String(20))
