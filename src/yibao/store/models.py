"""The tables. Person-owned tables carry ``person_id`` as their distribution key
(design.md, "Scale beyond one server"); reference tables are small and shared."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
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


# ------------------------------------------------------------------ ledger


class LedgerAccount(Base):
    """An account of the double-entry ledger.

    Sign convention: postings of one entry sum to zero. Accounts on the
    liability side (a person's individual account, the pooled fund, payables)
    carry positive balances; the bank clearing account, an asset, a negative
    one. ``balance`` is kept for fast, guarded updates and always equals the
    sum of the account's postings (``yibao ledger check`` proves it).
    """

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint("allow_negative OR balance >= 0", name="ck_ledger_accounts_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    # individual, fund, ia_pending, bank, employer, payable_person, payable_heirs,
    # payable_area, institution
    kind: Mapped[str] = mapped_column(String(20))
    person_id: Mapped[int | None] = mapped_column(BigId, index=True)
    area: Mapped[str] = mapped_column(String(9), default="")
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    allow_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime]


class LedgerEntry(Base):
    """One movement of money: a set of postings summing to zero. Never updated
    or deleted; a correction is a new entry that reverses it."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # the request's idempotency key, namespaced by what asked ("settle:H…:msgid")
    idem_key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    person_id: Mapped[int | None] = mapped_column(BigId, index=True)
    memo: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[dt.datetime]
    reverses_id: Mapped[int | None] = mapped_column(BigId, unique=True)
    # the first answer, returned again to a retried request
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Posting(Base):
    __tablename__ = "ledger_postings"
    __table_args__ = (Index("ix_ledger_postings_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigId, index=True)
    account_id: Mapped[int] = mapped_column(BigId)
    person_id: Mapped[int | None] = mapped_column(BigId)
    amount: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[dt.datetime]


# ------------------------------------------------------------ contributions


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


# ---- telephone (issue 6)


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


# ---- settlement (issue 4)


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


class HisMessage(Base):
    """The first answer to a changing message, by institution and ``msgid``:
    the same msgid again gets this answer and changes nothing."""

    __tablename__ = "his_messages"
    __table_args__ = (UniqueConstraint("institution_code", "msgid", name="uq_his_messages"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    institution_code: Mapped[str] = mapped_column(String(20))
    msgid: Mapped[str] = mapped_column(String(60))
    infno: Mapped[str] = mapped_column(String(8))
    output: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[dt.datetime]


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
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mdtrt_id: Mapped[str] = mapped_column(String(40), unique=True)
    person_id: Mapped[int] = mapped_column(BigId, index=True)
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


# ---- enrolment flow and closing (issue 3)


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


class AccountClosure(Base):
    """Closing a person's account: emigration, transfer out or death (seed 000,
    part three, item 4); where the balance went and who received it."""

    __tablename__ = "account_closures"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    closure_no: Mapped[str] = mapped_column(String(24), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), unique=True)
    kind: Mapped[str] = mapped_column(String(12))  # emigration, transfer_out, death
    closed_on: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(200), default="")
    balance: Mapped[int] = mapped_column(BigInteger)
    payable_code: Mapped[str] = mapped_column(String(60))
    destination_area: Mapped[str | None] = mapped_column(String(6))
    card_no: Mapped[str | None] = mapped_column(String(10))
    card_returned_at: Mapped[str | None] = mapped_column(String(9))
    close_entry_id: Mapped[int | None] = mapped_column(BigId)
    certificate: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    paid_out_at: Mapped[dt.datetime | None]
    paid_entry_id: Mapped[int | None] = mapped_column(BigId)
    recipient_name: Mapped[str | None] = mapped_column(String(50))
    recipient_certno: Mapped[str | None] = mapped_column(String(18))
    recipient_relation: Mapped[str | None] = mapped_column(String(20))
    paid_reference: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(String(50))


# ---- web channels (issue 5)


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
