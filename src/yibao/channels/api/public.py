"""The public look-ups' JSON (issue 16): designated institutions and the
medical catalogue, for anyone, without a log-in, in pages of a bounded size
and at a bounded rate per client address; and the staff's maintenance of
both (an institution's public fields, a catalogue item, a catalogue file,
the change history).

The rate is a moving window per client address (``settings.public_rate_limit``,
``limits`` in memory: each server process counts its own clients). Over it,
the answer is 429 problem+json with ``Retry-After`` in seconds.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import Field

from yibao.channels.api.deps import Staff, Work
from yibao.channels.api.errors import answers
from yibao.channels.api.fields import (
    Address,
    AreaCode,
    Body,
    Code,
    DivisionCode,
    ItemCode,
    Label,
    PageNo,
    PageSize,
    Percent,
    Price,
    Query,
    Short,
    Text,
    Word,
)
from yibao.domain import values
from yibao.domain.actors import Channel
from yibao.domain.errors import DomainError
from yibao.domain.money import format_yuan
from yibao.services.directory import catalogue_import, directory
from yibao.store.models import CatalogueItem

router = APIRouter(tags=["public look-ups 公开查询"])


# ---------------------------------------------------------------- the rate limit


@dataclass
class RateLimited(DomainError):
    """Too many look-ups from one address; ``retry_after`` seconds to wait."""

    retry_after: int = 1


class Limiter:
    def __init__(self, rate: str) -> None:
        self.item: RateLimitItem = parse(rate)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, client: str) -> None:
        if self.limiter.hit(self.item, "public", client):
            return
        reset, _ = self.limiter.get_window_stats(self.item, "public", client)
        wait = max(1, math.ceil(reset - time.time()))
        raise RateLimited(
            code="rate.limited",
            zh=f"查询过于频繁，请{wait}秒后再试",
            en=f"too many look-ups; try again in {wait} seconds",
            status=429,
            retry_after=wait,
        )


def limiter_of(request: Request) -> Limiter:
    """The application's one limiter, made from its settings on first use."""
    state = request.app.state
    found: Limiter | None = getattr(state, "public_limiter", None)
    if found is None:
        found = Limiter(state.services.settings.public_rate_limit)
        state.public_limiter = found
    return found


def rate_limited(request: Request) -> None:
    limiter_of(request).hit(request.client.host if request.client else "unknown")


Limited = Depends(rate_limited)
REFUSALS = answers(429)


# ---------------------------------------------------------------- views


def institution(i: directory.InstitutionView) -> dict[str, Any]:
    return {
        "code": i.code,
        "name": i.name,
        "kind": i.kind,
        "level": i.level,
        "division_code": i.division_code,
        "division_name": i.division_name,
        "address": i.address,
        "telephone": i.telephone,
        "offsite": i.offsite,
    }


def item(c: CatalogueItem) -> dict[str, Any]:
    return {
        "area": c.area,
        "code": c.code,
        "name": c.name,
        "category": c.category,
        "selfpay_bp": c.selfpay_bp,
        "selfpay_pct": f"{c.selfpay_bp / 100:.2f}",
        "price": format_yuan(c.price),
    }


def paged(page: directory.Page[Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "total": page.total,
        "page": page.page,
        "size": page.size,
        "pages": page.pages,
        "items": items,
    }


# ---------------------------------------------------------------- public reads


@router.get(
    "/public/institutions",
    dependencies=[Limited],
    responses=REFUSALS,
    description="Active designated institutions (no log-in). ``area`` takes the division "
    "and every division below it; ``offsite`` true: those that settle visits of persons "
    "insured in another area. Ordered by code; ``total`` counts every match.",
)
def public_institutions(
    work: Work,
    area: DivisionCode | None = None,
    kind: Word | None = None,
    level: Word | None = None,
    offsite: bool | None = None,
    name: Query | None = None,
    page: PageNo = 1,
    size: PageSize = directory.DEFAULT_SIZE,
) -> dict[str, Any]:
    found = directory.find_institutions(
        work,
        area=area or "",
        kind=kind or "",
        level=level or "",
        offsite=offsite,
        name=name or "",
        page=page,
        size=size,
    )
    return paged(found, [institution(i) for i in found.items])


@router.get(
    "/public/catalogue",
    dependencies=[Limited],
    responses=REFUSALS,
    description="The medical catalogue (no log-in): items whose code begins with ``q`` "
    "or whose name holds it; with ``area``, those that apply there (its own, its city's, "
    "its province's). ``selfpay_pct``: the share a B item's price is self-paid before "
    "the fund; ``price``: the reference price in yuan.",
)
def public_catalogue(
    work: Work,
    q: Query | None = None,
    area: DivisionCode | None = None,
    category: Word | None = None,
    page: PageNo = 1,
    size: PageSize = directory.DEFAULT_SIZE,
) -> dict[str, Any]:
    found = directory.find_catalogue(
        work, q=q or "", area=area or "", category=category or "", page=page, size=size
    )
    return paged(found, [item(c) for c in found.items])


# ---------------------------------------------------------------- staff maintenance


class InstitutionPublicIn(Body):
    """The public fields to set; a field left out stays as it is."""

    name: Text | None = None
    level: Word | None = Field(default=None, description="0 pharmacy, 1-3 hospital grade")
    address: Address | None = None
    telephone: Short | None = None
    offsite: bool | None = Field(default=None, description="settles off-site visits")


class CatalogueItemIn(Body):
    name: Label
    category: Word = Field(description="A, B or C")
    selfpay_bp: Percent = 0
    price: Price = 0


@router.put("/institutions/{code}/public", responses=answers(404))
def change_institution(
    code: Code, body: InstitutionPublicIn, ctx: Staff, work: Work
) -> dict[str, Any]:
    """An institution's public fields (institution.write; in the caller's area)."""
    view = directory.change_institution(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        code=code,
        name=body.name,
        level=body.level,
        address=body.address,
        telephone=body.telephone,
        offsite=body.offsite,
    )
    return institution(view)


@router.put("/catalogue/{area}/{code}", responses=answers(404))
def set_catalogue_item(
    area: AreaCode, code: ItemCode, body: CatalogueItemIn, ctx: Staff, work: Work
) -> dict[str, Any]:
    """Create or change an item of an area's catalogue (catalogue.write)."""
    found = directory.set_catalogue_item(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        area=area,
        code=code,
        name=body.name,
        category=body.category,
        selfpay_bp=body.selfpay_bp,
        price=body.price,
    )
    return item(found)


@router.post("/catalogue/{area}/import", responses=answers(404))
def import_catalogue(
    area: AreaCode,
    ctx: Staff,
    work: Work,
    file: Annotated[
        UploadFile,
        File(
            description="CSV or XLSX: 项目编码 code, 项目名称 name, 类别 category, "
            "先行自付比例 selfpay_pct (percent), 参考价格 price (yuan)"
        ),
    ],
) -> dict[str, Any]:
    """A catalogue file: good rows written, bad rows listed with row, field and reason."""
    content = values.upload(file.file.read, most=work.settings.upload_max_bytes)
    result = catalogue_import.import_catalogue(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        area=area,
        filename=file.filename or "upload",
        content=content,
    )
    return {
        "area": result.area,
        "total": result.total,
        "accepted": len(result.accepted),
        "rejected": len(result.rejected),
        "rows": result.rows,
    }


@router.get("/directory/changes")
def changes(
    ctx: Staff,
    work: Work,
    kind: Word | None = None,
    subject: Query | None = None,
) -> list[dict[str, Any]]:
    """The change history of institutions and the catalogue in the caller's area."""
    found = directory.history(work, actor=ctx.actor, kind=kind or "", subject=subject or "")
    return [{**row, "at": row["at"].isoformat()} for row in directory.item_history(found)]
