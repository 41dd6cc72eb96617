"""What the bureau's dashboard counts that no other table keeps (issue 17):
the settlements the HIS was refused, with the reason's code, and the
results of the institutions' reconciliations (3201)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.models.base import Base
from yibao.store.types import BigId


class SettlementRefusal(Base):
    """A settlement (2207) refused: which institution, its area, the code of
    the reason, when. No person's data: the dashboard counts reasons."""

    __tablename__ = "settlement_refusals"
    __table_args__ = (Index("ix_settlement_refusals_area_at", "area", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    institution_code: Mapped[str] = mapped_column(String(20))
    # the institution's division (6 or 9 digits): whose staff see it
    area: Mapped[str] = mapped_column(String(9))
    infno: Mapped[str] = mapped_column(String(10))
    code: Mapped[str] = mapped_column(String(60))
    at: Mapped[dt.datetime]


class Reconciliation(Base):
    """One reconciliation (3201): the institution's totals for its period and
    ours, as they were answered."""

    __tablename__ = "reconciliations"
    __table_args__ = (Index("ix_reconciliations_area_at", "area", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    institution_code: Mapped[str] = mapped_column(String(20))
    area: Mapped[str] = mapped_column(String(9))
    begin_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    insutype: Mapped[str] = mapped_column(String(3), default="")
    # fen: the institution's (given) and ours; fund as answered on the wire
    given_medfee: Mapped[int] = mapped_column(BigInteger)
    our_medfee: Mapped[int] = mapped_column(BigInteger)
    given_fund: Mapped[int] = mapped_column(BigInteger)
    our_fund: Mapped[int] = mapped_column(BigInteger)
    given_acct: Mapped[int] = mapped_column(BigInteger)
    our_acct: Mapped[int] = mapped_column(BigInteger)
    given_count: Mapped[int] = mapped_column(Integer)
    our_count: Mapped[int] = mapped_column(Integer)
    balanced: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[dt.datetime]
