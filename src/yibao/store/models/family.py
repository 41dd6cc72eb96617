"""Family mutual aid (issue 16): who may pay for whom, and what they paid."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.models.base import Base
from yibao.store.types import BigId


class FamilyBinding(Base):
    """A holder's individual account bound to pay for a relative. Pending
    until the relative consents (in their portal, or at the counter with
    their ID checked); ended by either side. One row per holder and
    relative: binding again after an end opens the same row again."""

    __tablename__ = "family_bindings"
    __table_args__ = (
        UniqueConstraint("holder_id", "relative_id", name="uq_family_bindings"),
        Index("ix_family_bindings_relative", "relative_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    relative_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    relation: Mapped[str] = mapped_column(String(10))  # spouse, parent, child
    status: Mapped[str] = mapped_column(String(10))  # pending, active, ended
    # the relative's order of payers: lower pays first
    rank: Mapped[int] = mapped_column(Integer, default=0)
    requested_at: Mapped[dt.datetime]
    requested_via: Mapped[str] = mapped_column(String(20))  # portal, counter
    consented_at: Mapped[dt.datetime | None]
    consented_via: Mapped[str | None] = mapped_column(String(20))
    consented_by: Mapped[str | None] = mapped_column(String(60))
    ended_at: Mapped[dt.datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(60))


class FamilyPayment(Base):
    """What a holder's account paid for a relative: a share of a settlement
    (``reference`` its setl_id) or a resident contribution (the request's
    key). The money moved in ledger entry ``entry_id``; a cancelled
    settlement's share is reversed by ``reversed_entry_id``."""

    __tablename__ = "family_payments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # settlement, contribution
    holder_id: Mapped[int] = mapped_column(BigId, index=True)
    relative_id: Mapped[int] = mapped_column(BigId, index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[int] = mapped_column(BigId, index=True)
    reference: Mapped[str] = mapped_column(String(120))
    institution_code: Mapped[str] = mapped_column(String(20), default="")
    at: Mapped[dt.datetime]
    reversed_at: Mapped[dt.datetime | None]
    reversed_entry_id: Mapped[int | None] = mapped_column(BigId)
