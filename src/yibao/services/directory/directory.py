"""Public look-ups of institutions and the catalogue, and the staff's
changes to them.

The look-ups read no person's data and need no log-in: they show only what
is public (an active institution's name, kind, level, area, address,
telephone and whether it settles off-site visits; a catalogue item's
category, self-pay share and reference price), in pages of a bounded size.

Every change staff make is one use case that checks the role and the area
(outside it: not found), writes the change, keeps its old and new values in
``directory_changes`` and appends an audit record, in one transaction. This
is the catalogue's only writer: the settlement's benefit split reads the
items it keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, or_, select

from yibao.domain import catalogue as catalogue_rules
from yibao.domain import divisions as dv
from yibao.domain import values
from yibao.domain.access import Perm
from yibao.domain.actors import Actor
from yibao.domain.areas import areas_up
from yibao.domain.errors import invalid, not_found
from yibao.services.registry.registry import in_scope
from yibao.services.tx import use_case
from yibao.store.models import CatalogueItem, DirectoryChange, Division, Institution
from yibao.store.uow import UnitOfWork

T = TypeVar("T")

DEFAULT_SIZE = 20
MAX_SIZE = 100
MAX_PAGE = 10_000
KINDS = ("hospital", "pharmacy")
LEVELS = ("0", "1", "2", "3")
ADDRESS_MOST = 200
TELEPHONE_MOST = 30
QUERY_MOST = 50


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def _paging(page: int, size: int) -> tuple[int, int]:
    if not 1 <= page <= MAX_PAGE:
        raise invalid("page", f"页码应为1至{MAX_PAGE}", f"page is 1 to {MAX_PAGE}", "range")
    if not 1 <= size <= MAX_SIZE:
        raise invalid("size", f"每页条数应为1至{MAX_SIZE}", f"size is 1 to {MAX_SIZE}", "range")
    return page, size


def _page(uow: UnitOfWork, stmt: Select[Any], page: int, size: int) -> Page[Any]:
    page, size = _paging(page, size)
    total = uow.session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    items = list(uow.session.execute(stmt.limit(size).offset((page - 1) * size)).scalars())
    return Page(items, int(total), page, size)


def _area(area: str) -> str:
    """A division code (a province, city, county or street), checked."""
    code = values.digits(area, field="area", most=9)
    if len(code) not in (6, 9):
        raise invalid(
            "area", "地区应为6位或9位行政区划代码", "the area is a 6- or 9-digit division code"
        )
    return code


# ---------------------------------------------------------------- public reads


@dataclass(frozen=True)
class InstitutionView:
    code: str
    name: str
    kind: str
    level: str
    division_code: str
    division_name: str
    address: str
    telephone: str
    offsite: bool


@use_case
def find_institutions(
    uow: UnitOfWork,
    *,
    area: str = "",
    kind: str = "",
    level: str = "",
    offsite: bool | None = None,
    name: str = "",
    page: int = 1,
    size: int = DEFAULT_SIZE,
) -> Page[InstitutionView]:
    """Active designated institutions, by area (the area and every division
    below it), kind, level, whether they settle off-site visits, and a part
    of the name; ordered by code."""
    stmt = (
        select(Institution, Division.name)
        .join(Division, Division.code == Institution.division_code)
        .where(Institution.status == "active")
        .order_by(Institution.code)
    )
    if area:
        stmt = stmt.where(
            Institution.division_code.startswith(dv.scope_prefix(_area(area)), autoescape=True)
        )
    if kind:
        if kind not in KINDS:
            raise invalid(
                "kind", "机构类型应为医院或药店", "kind is hospital or pharmacy", "choice"
            )
        stmt = stmt.where(Institution.kind == kind)
    if level:
        if level not in LEVELS:
            raise invalid("level", "机构等级应为0至3", "level is 0 (pharmacy) to 3", "choice")
        stmt = stmt.where(Institution.level == level)
    if offsite is not None:
        stmt = stmt.where(Institution.offsite.is_(offsite))
    if name:
        stmt = stmt.where(
            Institution.name.contains(
                values.text(name, field="name", most=QUERY_MOST), autoescape=True
            )
        )
    page, size = _paging(page, size)
    total = uow.session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = uow.session.execute(stmt.limit(size).offset((page - 1) * size)).all()
    return Page([_institution_view(i, d) for i, d in rows], int(total), page, size)


def _institution_view(i: Institution, division_name: str) -> InstitutionView:
    return InstitutionView(
        code=i.code,
        name=i.name,
        kind=i.kind,
        level=i.level,
        division_code=i.division_code,
        division_name=division_name,
        address=i.address,
        telephone=i.telephone,
        offsite=i.offsite,
    )


def _catalogue_filter(q: str) -> ColumnElement[bool]:
    q = values.text(q, field="q", most=QUERY_MOST)
    return or_(
        CatalogueItem.code.startswith(q, autoescape=True),
        CatalogueItem.name.contains(q, autoescape=True),
    )


@use_case
def find_catalogue(
    uow: UnitOfWork,
    *,
    q: str = "",
    area: str = "",
    category: str = "",
    page: int = 1,
    size: int = DEFAULT_SIZE,
) -> Page[CatalogueItem]:
    """Catalogue items whose code begins with ``q`` or whose name holds it;
    with an area, the items that apply there (its own, its city's and its
    province's); ordered by area and code."""
    stmt = select(CatalogueItem).order_by(CatalogueItem.area, CatalogueItem.code)
    if q.strip():
        stmt = stmt.where(_catalogue_filter(q))
    if area:
        stmt = stmt.where(CatalogueItem.area.in_(areas_up(_area(area)[:6])))
    if category:
        if category not in catalogue_rules.CATEGORIES:
            raise invalid(
                "category", "目录类别应为甲类A、乙类B或丙类C", "the category is A, B or C", "choice"
            )
        stmt = stmt.where(CatalogueItem.category == category)
    return _page(uow, stmt, page, size)


# ---------------------------------------------------------------- history


def _record(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    kind: str,
    subject: str,
    division_code: str,
    action: str,
    changes: dict[str, list[Any]],
) -> None:
    """One change kept with its old and new values, and its audit record."""
    uow.session.add(
        DirectoryChange(
            subject_kind=kind,
            subject=subject,
            division_code=division_code,
            action=action,
            changes=changes,
            actor_kind=actor.kind,
            actor_id=actor.id,
            channel=channel,
            changed_at=uow.clock.now(),
        )
    )
    uow.audit(
        actor.record(
            channel=channel,
            action=f"{kind}.{action}",
            subject=subject,
            detail={"changes": changes},
        )
    )


def _diff(obj: object, wanted: dict[str, Any]) -> dict[str, list[Any]]:
    """field -> [old, new] for each field whose value changes; sets them."""
    changes: dict[str, list[Any]] = {}
    for field, new in wanted.items():
        old = getattr(obj, field)
        if old != new:
            changes[field] = [old, new]
            setattr(obj, field, new)
    return changes


@use_case
def history(
    uow: UnitOfWork,
    *,
    actor: Actor,
    kind: str = "",
    subject: str = "",
    limit: int = 50,
) -> list[DirectoryChange]:
    """The changes in the actor's area, newest first: of one kind
    (``institution``, ``catalogue``) and one subject if given."""
    if not (actor.can(Perm.INSTITUTION_WRITE) or actor.can(Perm.CATALOGUE_WRITE)):
        actor.require(Perm.CATALOGUE_WRITE)
    stmt = (
        select(DirectoryChange)
        .where(in_scope(DirectoryChange.division_code, actor))
        .order_by(DirectoryChange.changed_at.desc(), DirectoryChange.id.desc())
        .limit(max(1, min(limit, 500)))
    )
    if kind:
        stmt = stmt.where(DirectoryChange.subject_kind == kind)
    if subject:
        stmt = stmt.where(DirectoryChange.subject == subject)
    return list(uow.session.execute(stmt).scalars())


# ---------------------------------------------------------------- institutions


@use_case
def change_institution(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    code: str,
    name: str | None = None,
    level: str | None = None,
    address: str | None = None,
    telephone: str | None = None,
    offsite: bool | None = None,
) -> InstitutionView:
    """Change an institution's public fields (those given); an institution
    outside the actor's area is not found."""
    actor.require(Perm.INSTITUTION_WRITE)
    row = uow.session.execute(
        select(Institution, Division.name)
        .join(Division, Division.code == Institution.division_code)
        .where(Institution.code == code.strip().upper(), in_scope(Institution.division_code, actor))
        .with_for_update(of=Institution)
    ).one_or_none()
    if row is None:
        raise not_found("定点医药机构", "institution", "institution.not_found")
    institution, division_name = row
    wanted: dict[str, Any] = {}
    if name is not None:
        wanted["name"] = values.text(name, field="name", most=200)
    if level is not None:
        if level not in LEVELS or (institution.kind == "pharmacy") != (level == "0"):
            raise invalid(
                "level",
                "医院等级为1至3，药店为0",
                "a hospital's level is 1 to 3, a pharmacy's 0",
                "choice",
            )
        wanted["level"] = level
    if address is not None:
        wanted["address"] = values.text(address, field="address", most=ADDRESS_MOST, required=False)
    if telephone is not None:
        wanted["telephone"] = values.text(
            telephone, field="telephone", most=TELEPHONE_MOST, required=False
        )
    if offsite is not None:
        wanted["offsite"] = bool(offsite)
    changes = _diff(institution, wanted)
    if changes:
        uow.session.flush()
        _record(
            uow,
            actor=actor,
            channel=channel,
            kind="institution",
            subject=institution.code,
            division_code=institution.division_code,
            action="change",
            changes=changes,
        )
    return _institution_view(institution, division_name)


# ---------------------------------------------------------------- the catalogue


def catalogue_area(actor: Actor, area: str) -> str:
    code = values.digits(area, field="area", length=6)
    if not actor.sees(code):
        raise not_found("目录所属统筹区", "catalogue area", "catalogue.area_not_found")
    return code


def set_item_step(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    area: str,
    item: catalogue_rules.Item,
) -> tuple[CatalogueItem, bool]:
    """Create or change one checked item; returns it and whether it changed."""
    found = uow.session.execute(
        select(CatalogueItem).where(CatalogueItem.area == area, CatalogueItem.code == item.code)
    ).scalar_one_or_none()
    wanted = {
        "name": item.name,
        "category": item.category,
        "selfpay_bp": item.selfpay_bp,
        "price": item.price,
    }
    if found is None:
        found = CatalogueItem(area=area, code=item.code, **wanted)
        uow.session.add(found)
        changes = {k: [None, v] for k, v in wanted.items()}
        action = "create"
    else:
        changes = _diff(found, wanted)
        action = "change"
    uow.session.flush()
    if changes:
        _record(
            uow,
            actor=actor,
            channel=channel,
            kind="catalogue",
            subject=f"{area}/{item.code}",
            division_code=area,
            action=action,
            changes=changes,
        )
    return found, bool(changes)


@use_case
def set_catalogue_item(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    area: str,
    code: str,
    name: str,
    category: str,
    selfpay_bp: int = 0,
    price: int = 0,
) -> CatalogueItem:
    """Create or change an item of an area's catalogue: the only writer of
    the catalogue."""
    actor.require(Perm.CATALOGUE_WRITE)
    area = catalogue_area(actor, area)
    item = catalogue_rules.check_item(
        code=code, name=name, category=category, selfpay_bp=selfpay_bp, price=price
    )
    found, _ = set_item_step(uow, actor=actor, channel=channel, area=area, item=item)
    return found


def item_history(changes: Sequence[DirectoryChange]) -> list[dict[str, Any]]:
    """The changes as plain rows for a page or a JSON answer."""
    return [
        {
            "kind": c.subject_kind,
            "subject": c.subject,
            "action": c.action,
            "changes": c.changes,
            "by": c.actor_id,
            "channel": c.channel,
            "at": c.changed_at,
        }
        for c in changes
    ]
