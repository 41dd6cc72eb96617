"""The individual accounts' double-entry ledger, and the closing of an account."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.models.base import Base
from yibao.store.types import BigId


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
