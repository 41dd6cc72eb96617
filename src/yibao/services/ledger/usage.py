"""The year's benefit usage (what a person used of the annual deductible and
fund cap): read, moved by a settlement, given back by its cancel. It moves
with the settlement's ledger entry, in the same transaction, so it lives
beside the ledger; ``yb_settle`` and ``yb_his_read`` are the SQL
implementation's write and read of the same row.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yibao.domain.settlement import Usage
from yibao.store.models import BenefitUsage


def read(session: Session, *, person_id: int, insutype: str, year: int) -> Usage:
    row = session.execute(
        select(BenefitUsage.deductible_used, BenefitUsage.fund_used).where(
            BenefitUsage.person_id == person_id,
            BenefitUsage.insutype == insutype,
            BenefitUsage.year == year,
        )
    ).first()
    return Usage(int(row[0]), int(row[1])) if row else Usage()


def move(
    session: Session, *, person_id: int, insutype: str, year: int, seen: Usage, delta: Usage
) -> bool:
    """From what a decision saw, by its delta; False (nothing changed) when
    the usage is no longer what was seen."""
    after = seen.plus(delta)
    found = session.execute(
        select(BenefitUsage.id).where(
            BenefitUsage.person_id == person_id,
            BenefitUsage.insutype == insutype,
            BenefitUsage.year == year,
        )
    ).scalar_one_or_none()
    if found is None:
        if seen != Usage():
            return False
        try:
            with session.begin_nested():
                session.add(
                    BenefitUsage(
                        person_id=person_id,
                        insutype=insutype,
                        year=year,
                        deductible_used=after.deductible_used,
                        fund_used=after.fund_used,
                    )
                )
        except IntegrityError:  # made by a concurrent settlement just now
            return False
        return True
    moved = session.execute(  # type: ignore[attr-defined]
        update(BenefitUsage)
        .where(
            BenefitUsage.id == found,
            BenefitUsage.deductible_used == seen.deductible_used,
            BenefitUsage.fund_used == seen.fund_used,
        )
        .values(deductible_used=after.deductible_used, fund_used=after.fund_used)
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(moved == 1)


def give_back(session: Session, *, person_id: int, insutype: str, year: int, delta: Usage) -> None:
    """A cancelled settlement's usage is open again (under the row's lock)."""
    session.execute(
        update(BenefitUsage)
        .where(
            BenefitUsage.person_id == person_id,
            BenefitUsage.insutype == insutype,
            BenefitUsage.year == year,
        )
        .values(
            deductible_used=BenefitUsage.deductible_used - delta.deductible_used,
            fund_used=BenefitUsage.fund_used - delta.fund_used,
        )
        .execution_options(synchronize_session=False)
    )
