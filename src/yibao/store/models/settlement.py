"""Settlement at designated institutions: the benefit policy and catalogue,
cross-area filings, equipment failures, visits, fee details, the year's usage,
settlements and the changing requests' keys (idempotency)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.models.base import Base
from yibao.store.types import BigId


class BenefitPolicy(Base):
    """The benefit policy of a scheme, area and year, kept as data: the annual
    deductible, the fund payment ratio by institution level and the annual
    fund cap. Looked up for the area, else its city, else its province."""

    __tablename__ = "benefit_policies"
    __table_args__ = (UniqueConstraint("insutype", "area", "year", name="uq_benefit_policies"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    insutype: Mapped[str] = mapped_column(String(3))
    area: Mapped[str] = mapped_column(String(6))
    year: Mapped[int] = mapped_column(Integer)
    deductible: Mapped[int] = mapped_column(BigInteger)  # fen per year
    fund_cap: Mapped[int] = mapped_column(BigInteger)  # fen per year
    # fund payment ratio in basis points by institution level: {"0": 8000, "1": 9000, ...}
    ratios: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[dt.datetime]


class CatalogueItem(Base):
    """An item of an area's catalogue of drugs, services and materials:
    category A fully covered, B with a self-pay share first, C self-paid."""

    __tablename__ = "catalogue_items"
    __table_args__ = (UniqueConstraint("area", "code", name="uq_catalogue_items"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    area: Mapped[str] = mapped_column(String(6))
    code: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(1))  # A, B, C
    selfpay_bp: Mapped[int] = mapped_column(Integer, default=0)
    price: Mapped[int] = mapped_column(BigInteger, default=0)  # fen, a reference price


class CrossAreaFiling(Base):
    """A filing for medical treatment in another area (异地就医备案): a person
    insured in one pooling area may settle at institutions of ``visit_area``."""

    __tablename__ = "cross_area_filings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(BigId, index=True)
    visit_area: Mapped[str] = mapped_column(String(6))  # a city (xxxx00) or county code
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime]
    # domain.offsite.Kind: retired, living, working (long stays), referral
    kind: Mapped[str] = mapped_column(String(10), default="living", server_default="living")
    # active or cancelled as recorded; future and expired follow from the dates
    state: Mapped[str] = mapped_column(String(10), default="active", server_default="active")
    cancelled_at: Mapped[dt.datetime | None]
    # how and by whom (kind:id, as the audit names actors) it was filed and cancelled
    channel: Mapped[str | None] = mapped_column(String(20))
    filed_by: Mapped[str | None] = mapped_column(String(80))
    cancelled_by: Mapped[str | None] = mapped_column(String(80))


class RequestKey(Base):
    """A changing request's key, claimed before its work (services.idempotency):
    by institution and ``msgid`` for the HIS (scope ``his:<institution>``).
    The first answer is kept and given again to the same request; the same
    key with another request (another infno or input: ``fingerprint``) is
    refused."""

    __tablename__ = "request_keys"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_request_keys"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scope: Mapped[str] = mapped_column(String(60))
    key: Mapped[str] = mapped_column(String(120))
    # what was asked: the kind (the HIS's infno) and a SHA-256 of the canonical input
    fingerprint: Mapped[str] = mapped_column(String(90))
    output: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[dt.datetime]


class EquipmentFailure(Base):
    """An institution's declared equipment failure (seed 000, part three,
    item 3): while it lasted its cards could not be read, so visits were paid
    in cash; a cash visit is recorded only inside one of the recording
    institution's declared failures."""

    __tablename__ = "equipment_failures"
    __table_args__ = (Index("ix_equipment_failures_institution", "institution_code", "start_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    institution_code: Mapped[str] = mapped_column(String(20))
    start_at: Mapped[dt.datetime]
    end_at: Mapped[dt.datetime]
    reason: Mapped[str] = mapped_column(String(200))
    declared_at: Mapped[dt.datetime]
    # who declared it: the institution's HIS, or a staff user (kind:id), and how
    declared_by: Mapped[str] = mapped_column(String(80))
    channel: Mapped[str] = mapped_column(String(20))


class Visit(Base):
    """An outpatient visit (就诊) registered by an institution (2201), or a
    cash visit recorded after an equipment failure, with its invoice number."""

    __tablename__ = "visits"
    __table_args__ = (
        # a cash receipt is recorded (and so re-settled) at most once per institution
        Index(
            "uq_visits_cash_receipt",
            "institution_code",
            "invono",
            unique=True,
            postgresql_where=text("cash_fallback"),
            sqlite_where=text("cash_fallback"),
        ),
        # a person's visits by time: a cash visit at a time the person was
        # seen elsewhere is refused
        Index("ix_visits_person_begntime", "person_id", "begntime"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mdtrt_id: Mapped[str] = mapped_column(String(40), unique=True)
    person_id: Mapped[int] = mapped_column(BigId)
    institution_code: Mapped[str] = mapped_column(String(20), index=True)
    insutype: Mapped[str] = mapped_column(String(3))
    med_type: Mapped[str] = mapped_column(String(6), default="11")
    begntime: Mapped[dt.datetime]
    ipt_otp_no: Mapped[str] = mapped_column(String(50), default="")
    dept_name: Mapped[str] = mapped_column(String(100), default="")
    dr_name: Mapped[str] = mapped_column(String(50), default="")
    diagnoses: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # registered, cancelled, settled
    status: Mapped[str] = mapped_column(String(12), default="registered")
    cash_fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    invono: Mapped[str | None] = mapped_column(String(50))
    # a cash visit: the recording institution's declared failure it fell in
    equipment_failure_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[dt.datetime]


class FeeDetail(Base):
    """A fee detail line uploaded for a visit (2204)."""

    __tablename__ = "fee_details"
    __table_args__ = (UniqueConstraint("visit_id", "feedetl_sn", name="uq_fee_details"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    visit_id: Mapped[int] = mapped_column(BigId, index=True)
    person_id: Mapped[int] = mapped_column(BigId)
    feedetl_sn: Mapped[str] = mapped_column(String(50))
    chrg_bchno: Mapped[str] = mapped_column(String(50), default="")
    list_code: Mapped[str] = mapped_column(String(50))
    cnt: Mapped[str] = mapped_column(String(20))
    pric: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    category: Mapped[str | None] = mapped_column(String(1))
    selfpay_bp: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(10), default="active")  # active, cancelled
    created_at: Mapped[dt.datetime]


class BenefitUsage(Base):
    """What a person used of a year's deductible and fund cap. The row is
    also the per-person lock of a settlement (taken before the ledger's)."""

    __tablename__ = "benefit_usage"
    __table_args__ = (UniqueConstraint("person_id", "insutype", "year", name="uq_benefit_usage"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(BigId)
    insutype: Mapped[str] = mapped_column(String(3))
    year: Mapped[int] = mapped_column(Integer)
    deductible_used: Mapped[int] = mapped_column(BigInteger, default=0)
    fund_used: Mapped[int] = mapped_column(BigInteger, default=0)


class Settlement(Base):
    """A settlement (2207) or a re-settlement of a cash visit: one ledger entry."""

    __tablename__ = "settlements"
    __table_args__ = (
        Index("ix_settlements_institution_at", "institution_code", "setl_time"),
        # a visit is settled at most once (a cancelled one frees it, except a cash visit)
        Index(
            "uq_settlements_visit_open",
            "visit_id",
            unique=True,
            postgresql_where=text("status = 'settled'"),
            sqlite_where=text("status = 'settled'"),
        ),
        # a cash visit is re-settled once, even after that settlement's cancel
        Index(
            "uq_settlements_resettled_once",
            "visit_id",
            unique=True,
            postgresql_where=text("kind = 'resettlement'"),
            sqlite_where=text("kind = 'resettlement'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    setl_id: Mapped[str] = mapped_column(String(40), unique=True)
    person_id: Mapped[int] = mapped_column(BigId, index=True)
    institution_code: Mapped[str] = mapped_column(String(20))
    visit_id: Mapped[int] = mapped_column(BigId)
    mdtrt_id: Mapped[str] = mapped_column(String(40))
    msgid: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(14))  # settlement, resettlement
    insutype: Mapped[str] = mapped_column(String(3))
    psn_type: Mapped[str] = mapped_column(String(12))
    med_type: Mapped[str] = mapped_column(String(6))
    year: Mapped[int] = mapped_column(Integer)
    setl_time: Mapped[dt.datetime]
    medfee_sumamt: Mapped[int] = mapped_column(BigInteger)
    fulamt_ownpay_amt: Mapped[int] = mapped_column(BigInteger)
    preselfpay_amt: Mapped[int] = mapped_column(BigInteger)
    inscp_scp_amt: Mapped[int] = mapped_column(BigInteger)
    act_pay_dedc: Mapped[int] = mapped_column(BigInteger)
    hifp_pay: Mapped[int] = mapped_column(BigInteger)
    fund_pay_sumamt: Mapped[int] = mapped_column(BigInteger)
    psn_part_amt: Mapped[int] = mapped_column(BigInteger)
    acct_pay: Mapped[int] = mapped_column(BigInteger)
    psn_cash_pay: Mapped[int] = mapped_column(BigInteger)
    balc: Mapped[int] = mapped_column(BigInteger)
    # a re-settlement: what the institution owes the person back from the cash paid
    refund_owed: Mapped[int] = mapped_column(BigInteger, default=0)
    entry_id: Mapped[int | None] = mapped_column(BigId)
    status: Mapped[str] = mapped_column(String(10), default="settled")  # settled, cancelled
    cancelled_at: Mapped[dt.datetime | None]
    cancel_entry_id: Mapped[int | None] = mapped_column(BigId)
