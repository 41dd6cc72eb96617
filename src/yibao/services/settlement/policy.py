"""The benefit policy as data: per scheme, area and year, and the catalogue
of items of an area. Looked up for the area, else its city, else its
province, like the contribution rules."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.domain.actors import Actor
from yibao.domain.areas import areas_up
from yibao.domain.benefit import Policy as Policy
from yibao.domain.benefit import choose_policy as choose_policy
from yibao.domain.errors import invalid
from yibao.services.tx import use_case
from yibao.store.models import BenefitPolicy, CatalogueItem
from yibao.store.uow import UnitOfWork

LEVELS = ("0", "1", "2", "3")


@use_case
def set_policy(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    insutype: str,
    area: str,
    year: int,
    deductible: int,
    fund_cap: int,
    ratios: dict[str, int],
) -> BenefitPolicy:
    """Keep a scheme's benefit policy for an area and year; a second call replaces it."""
    if deductible < 0 or fund_cap < 0:
        raise invalid("deductible", "起付线和封顶线不能为负", "amounts are not negative")
    for level, bp in ratios.items():
        if level not in LEVELS or not 0 <= int(bp) <= 10000:
            raise invalid("ratios", "支付比例按机构等级0至3、以基点表示", "ratios are bp by level")
    row = uow.session.execute(
        select(BenefitPolicy).where(
            BenefitPolicy.insutype == insutype,
            BenefitPolicy.area == area,
            BenefitPolicy.year == year,
        )
    ).scalar_one_or_none()
    if row is None:
        row = BenefitPolicy(insutype=insutype, area=area, year=year)
        uow.session.add(row)
    row.deductible, row.fund_cap = deductible, fund_cap
    row.ratios = {k: int(v) for k, v in ratios.items()}
    row.updated_at = uow.clock.now()
    uow.session.flush()
    uow.audit(
        actor.record(
            channel=channel, action="benefit_policy.set", subject=f"{area}/{year}/{insutype}"
        )
    )
    return row


def candidates(session: Session, *, insutype: str, area: str, year: int) -> list[Policy]:
    """The scheme's policies of the year for the area, its city and its
    province: ``domain.benefit.choose_policy`` takes the nearest."""
    return [
        Policy(r.insutype, r.area, r.year, r.deductible, r.fund_cap, dict(r.ratios))
        for r in session.execute(
            select(BenefitPolicy).where(
                BenefitPolicy.insutype == insutype,
                BenefitPolicy.year == year,
                BenefitPolicy.area.in_(areas_up(area)),
            )
        ).scalars()
    ]


def catalogue_lookup(session: Session, *, area: str, codes: list[str]) -> dict[str, CatalogueItem]:
    """The catalogue items for the codes, the nearest area's entry winning."""
    found: dict[str, CatalogueItem] = {}
    if not codes:
        return found
    rows = session.execute(
        select(CatalogueItem).where(
            CatalogueItem.code.in_(set(codes)), CatalogueItem.area.in_(areas_up(area))
        )
    ).scalars()
    order = {a: i for i, a in enumerate(areas_up(area))}
    for row in sorted(rows, key=lambda r: order[r.area], reverse=True):
        found[row.code] = row
    return found
