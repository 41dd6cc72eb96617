"""A catalogue file imported by staff (issue 16), as the employer batch is
(``cards/batches.py``): a CSV (UTF-8 or GB18030) or XLSX file whose first
row names the columns; every good row is written, every bad row is named
with its row number (the header is row 1), its field and the reason, and
nothing of a bad row is written.

Columns (Chinese or English labels): code 项目编码, name 项目名称, category
类别 (A/B/C, 甲/乙/丙), selfpay_pct 先行自付比例 (percent, B items only),
price 参考价格 (yuan)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yibao.domain import catalogue as catalogue_rules
from yibao.domain.access import Perm
from yibao.domain.actors import Actor
from yibao.domain.errors import DomainError, invalid
from yibao.domain.money import yuan_to_fen
from yibao.services.cards.batches import Row, read_table
from yibao.services.directory.directory import catalogue_area, set_item_step
from yibao.services.tx import use_case
from yibao.store.uow import UnitOfWork

HEADERS = {
    "code": {"code", "编码", "项目编码", "目录编码", "医保编码"},
    "name": {"name", "名称", "项目名称", "通用名"},
    "category": {"category", "类别", "目录类别", "甲乙类"},
    "selfpay_pct": {"selfpay_pct", "selfpay", "先行自付比例", "自付比例", "自付比例(%)"},
    "price": {"price", "价格", "参考价格", "单价", "价格(元)", "参考价格(元)"},
}
REQUIRED = ("code", "name", "category", "price")
LABELS = {
    "code": ("项目编码", "code"),
    "name": ("项目名称", "name"),
    "category": ("类别", "category"),
    "price": ("参考价格", "price"),
}
CATEGORY_WORDS = {"甲": "A", "乙": "B", "丙": "C", "甲类": "A", "乙类": "B", "丙类": "C"}


@dataclass(frozen=True)
class ImportResult:
    area: str
    total: int
    accepted: list[dict[str, Any]]
    rejected: list[dict[str, Any]]

    @property
    def rows(self) -> list[dict[str, Any]]:
        return sorted(self.accepted + self.rejected, key=lambda r: r["row"])


def _reject(row: Row, field: str, zh: str, en: str, code: str = "") -> dict[str, Any]:
    # the employer batch's row-error shape, with the item's code
    return {
        "row": row.number,
        "status": "rejected",
        "code": code,
        "field": field,
        "reason": f"{zh} / {en}",
        "zh": zh,
        "en": en,
    }


def _cell(row: Row, key: str) -> str:
    value = row.values.get(key)
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and key == "code":
        value = int(value)  # a code Excel stored as a number
    return str(value).strip()


def _read(row: Row) -> catalogue_rules.Item:
    """The row's item, or the refusal naming its field."""
    for key in REQUIRED:
        if not _cell(row, key):
            zh, en = LABELS[key]
            raise invalid(key, f"{zh}为空", f"the {en} is empty", "missing")
    category = _cell(row, "category").upper()
    category = CATEGORY_WORDS.get(category, category)
    return catalogue_rules.check_item(
        code=_cell(row, "code"),
        name=_cell(row, "name"),
        category=category,
        selfpay_bp=catalogue_rules.share_to_bp(_cell(row, "selfpay_pct")),
        price=yuan_to_fen(_cell(row, "price"), field="price"),
    )


@use_case
def import_catalogue(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    area: str,
    filename: str,
    content: bytes,
) -> ImportResult:
    actor.require(Perm.CATALOGUE_WRITE)
    area = catalogue_area(actor, area)
    rows = read_table(filename, content, HEADERS, REQUIRED)
    accepted: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for row in rows:
        try:
            item = _read(row)
        except DomainError as exc:
            field = exc.field if exc.field in HEADERS or exc.field == "selfpay_bp" else "row"
            if field == "selfpay_bp":
                field = "selfpay_pct"
            rejected.append(_reject(row, field, exc.zh, exc.en, _cell(row, "code")))
            continue
        if item.code in seen:
            rejected.append(
                _reject(
                    row,
                    "code",
                    f"与第{seen[item.code]}行编码重复",
                    f"the same code as row {seen[item.code]}",
                    item.code,
                )
            )
            continue
        seen[item.code] = row.number
        _, changed = set_item_step(uow, actor=actor, channel=channel, area=area, item=item)
        accepted.append(
            {
                "row": row.number,
                "status": "accepted" if changed else "unchanged",
                "code": item.code,
                "name": item.name,
            }
        )
    uow.audit(
        actor.record(
            channel=channel,
            action="catalogue.import",
            subject=area,
            detail={
                "file": filename[:200],
                "rows": len(rows),
                "accepted": len(accepted),
                "rejected": len(rejected),
            },
        )
    )
    return ImportResult(area, len(rows), accepted, rejected)
