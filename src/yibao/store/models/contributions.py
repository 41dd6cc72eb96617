"""Enrolment and contributions: schemes and rules per area and year, monthly
lines, employers' assessments and payments, individual enrolment (seed 004)
with its voucher and bank debits."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.models.base import Base
from yibao.store.types import BigId


class Enrolment(Base):
    """Enrolment of a person in a scheme (参保登记)."""

    __tablename__ = "enrolments"
    __table_args__ = (
        Index(
            "uq_enrolments_one_open_per_scheme",
            "person_id",
            "insutype",
            unique=True,
            postgresql_where=text("status <> 'terminated'"),
            sqlite_where=text("status <> 'terminated'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    insutype: Mapped[str] = mapped_column(String(3))  # 310 employee, 390 resident
    # employee, flexible (individual employee insurance), retiree, resident
    psn_type: Mapped[str] = mapped_column(String(12))
    employer_id: Mapped[int | None] = mapped_column(ForeignKey("employers.id"), index=True)
    area: Mapped[str] = mapped_column(String(6))  # the insured area (admdvs)
    base: Mapped[int] = mapped_column(BigInteger, default=0)  # monthly contribution base, fen
    status: Mapped[str] = mapped_column(String(12))  # active, suspended, terminated
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    suspended_since: Mapped[dt.date | None] = mapped_column(Date)
    end_reason: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class ContributionRule(Base):
    """Contribution rules of an area and year, kept as data (domain.md)."""

    __tablename__ = "contribution_rules"
    __table_args__ = (UniqueConstraint("area", "year", "insutype", name="uq_contribution_rules"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    area: Mapped[str] = mapped_column(String(6))
    year: Mapped[int] = mapped_column(Integer)
    insutype: Mapped[str] = mapped_column(String(3))
    base_floor: Mapped[int] = mapped_column(BigInteger)  # fen per month
    base_ceiling: Mapped[int] = mapped_column(BigInteger)
    employer_rate_bp: Mapped[int] = mapped_column(Integer)  # basis points: 700 = 7.00 %
    individual_rate_bp: Mapped[int] = mapped_column(Integer)
    # share of the individual part credited to the individual account
    account_share_bp: Mapped[int] = mapped_column(Integer, default=10000)
    retiree_monthly_credit: Mapped[int] = mapped_column(BigInteger, default=0)
    resident_annual_premium: Mapped[int] = mapped_column(BigInteger, default=0)
    # unpaid months after which benefits are suspended
    grace_months: Mapped[int] = mapped_column(Integer, default=3)


class ContributionLine(Base):
    """What is due and paid for one person and one month: the payment record
    a person may inquire (Social Insurance Law art. 4)."""

    __tablename__ = "contribution_lines"
    __table_args__ = (
        UniqueConstraint("person_id", "enrolment_id", "month", name="uq_contribution_lines"),
        Index("ix_contribution_lines_month_status", "month", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # (person_id, enrolment_id, month) is unique: that index serves look-ups by person
    person_id: Mapped[int] = mapped_column(BigId)
    enrolment_id: Mapped[int] = mapped_column(BigId)
    employer_id: Mapped[int | None] = mapped_column(BigId, index=True)
    area: Mapped[str] = mapped_column(String(6))
    month: Mapped[int] = mapped_column(Integer)  # YYYYMM
    base: Mapped[int] = mapped_column(BigInteger)
    employer_amount: Mapped[int] = mapped_column(BigInteger)
    individual_amount: Mapped[int] = mapped_column(BigInteger)
    account_credit: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10))  # due, paid
    paid_at: Mapped[dt.datetime | None]
    payment_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[dt.datetime]


class IaCreditClaim(Base):
    """A paid line credited to its individual account by the monthly batch.

    Its own narrow table rather than a column of the line: the batch claims
    a million lines a month, and inserting narrow rows costs a fraction of
    rewriting wide, many-indexed ones. The primary key is what makes a
    second run, or two runs at once, credit nothing twice.
    """

    __tablename__ = "ia_credit_claims"

    line_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    entry_id: Mapped[int] = mapped_column(BigId)


class Assessment(Base):
    """An employer's monthly assessment: employer and individual parts of all
    its insured employees."""

    __tablename__ = "assessments"
    __table_args__ = (UniqueConstraint("employer_id", "month", name="uq_assessments"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    employer_id: Mapped[int] = mapped_column(ForeignKey("employers.id"), index=True)
    month: Mapped[int] = mapped_column(Integer)
    persons: Mapped[int] = mapped_column(Integer)
    employer_total: Mapped[int] = mapped_column(BigInteger)
    individual_total: Mapped[int] = mapped_column(BigInteger)
    paid_total: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(10))  # due, partial, paid
    due_date: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime]

    @property
    def total(self) -> int:
        return self.employer_total + self.individual_total


class Payment(Base):
    """Money received for contributions, from an employer or a person."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idem_key: Mapped[str] = mapped_column(String(120), unique=True)
    payer_kind: Mapped[str] = mapped_column(String(10))  # employer, person
    employer_id: Mapped[int | None] = mapped_column(BigId, index=True)
    person_id: Mapped[int | None] = mapped_column(BigId, index=True)
    assessment_id: Mapped[int | None] = mapped_column(BigId)
    amount: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(100), default="")
    received_at: Mapped[dt.datetime]
    entry_id: Mapped[int] = mapped_column(BigId)


class EnrolmentApplication(Base):
    """An individual's enrolment application (seed 004): materials checklist,
    the social insurance subsidy form, the same-day review and its outcome."""

    __tablename__ = "enrolment_applications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    app_no: Mapped[str] = mapped_column(String(24), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    division_code: Mapped[str] = mapped_column(String(9))  # the office that took it
    # [{"item", "zh", "en", "checked"}], and the names of what is missing
    materials: Mapped[list[Any]] = mapped_column(JSON, default=list)
    missing: Mapped[list[Any]] = mapped_column(JSON, default=list)
    subsidy_form: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12))  # submitted, approved, rejected
    submitted_at: Mapped[dt.datetime]
    submitted_by: Mapped[str] = mapped_column(String(50))
    reviewed_at: Mapped[dt.datetime | None]
    reviewed_by: Mapped[str | None] = mapped_column(String(50))
    reject_reason: Mapped[str] = mapped_column(String(200), default="")
    enrolment_id: Mapped[int | None] = mapped_column(BigId)
    record_book_no: Mapped[str | None] = mapped_column(String(40))
    record_book_issued_at: Mapped[dt.datetime | None]
    # seed 004: the card and record book brought for continued use (续用)
    renewed_card_no: Mapped[str | None] = mapped_column(String(10))
    record_book_renewed: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )


class PaymentVoucher(Base):
    """The payment voucher issued on approval: what to pay, to which bank
    account, by when; paid month by month by bank debit."""

    __tablename__ = "payment_vouchers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    voucher_no: Mapped[str] = mapped_column(String(24), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    application_id: Mapped[int] = mapped_column(BigId, unique=True)
    enrolment_id: Mapped[int] = mapped_column(BigId)
    # [{"month": 202611, "amount": fen, "due_date": "2026-11-30"}]
    schedule: Mapped[list[Any]] = mapped_column(JSON, default=list)
    total: Mapped[int] = mapped_column(BigInteger)
    payee_bank: Mapped[str] = mapped_column(String(100))
    payee_name: Mapped[str] = mapped_column(String(100))
    payee_account: Mapped[str] = mapped_column(String(40))
    debit_bank: Mapped[str] = mapped_column(String(100), default="")
    debit_account: Mapped[str] = mapped_column(String(40), default="")
    issued_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(10))  # due, paid, cancelled (account closed)


class CollectionAccount(Base):
    """The bureau's collection account (收入户) of a pooling area, printed on
    the payment vouchers of the persons insured there; looked up for the
    area, else its city, else its province."""

    __tablename__ = "collection_accounts"

    area: Mapped[str] = mapped_column(String(6), primary_key=True)
    bank: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    account: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[dt.datetime]


class BankDebit(Base):
    """One row of a bank debit file: an attempt to collect one month of a
    voucher; answered once by a row of the bank's return file."""

    __tablename__ = "bank_debits"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    debit_no: Mapped[str] = mapped_column(String(30), unique=True)
    voucher_id: Mapped[int] = mapped_column(BigId, index=True)
    line_id: Mapped[int] = mapped_column(BigId, index=True)
    month: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    file_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10))  # sent, paid, failed
    reason: Mapped[str] = mapped_column(String(200), default="")
    bank_ref: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[dt.datetime]
    answered_at: Mapped[dt.datetime | None]
    payment_id: Mapped[int | None] = mapped_column(BigId)
