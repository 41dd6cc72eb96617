"""The registry: administrative divisions, insured persons, employers,
designated institutions, and the working-day calendar's amendments."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.models.base import Base
from yibao.store.types import BigId


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
    # ---- issue 16: what the public look-ups show, kept by staff (services/directory)
    address: Mapped[str] = mapped_column(String(200), default="", server_default=text("''"))
    telephone: Mapped[str] = mapped_column(String(30), default="", server_default=text("''"))
    # whether it settles visits of persons insured in another area (异地就医直接结算)
    offsite: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


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
