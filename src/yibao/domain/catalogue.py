"""What an item of the medical catalogue may be (issue 16): category A is
fully covered, B has a self-pay share paid before the fund (先行自付比例),
C is self-paid; the reference price is whole fen, not negative. One rule for
the staff's edit, the API and every row of an imported file."""

from __future__ import annotations

from dataclasses import dataclass

from yibao.domain import values
from yibao.domain.errors import invalid

CATEGORIES = ("A", "B", "C")
CODE_MOST = 50
NAME_MOST = 200
MAX_PRICE = 10**10 * 100  # fen: ten thousand million yuan, far above any item


@dataclass(frozen=True)
class Item:
    code: str
    name: str
    category: str
    selfpay_bp: int
    price: int


def check_item(*, code: str, name: str, category: str, selfpay_bp: int, price: int) -> Item:
    """The item, or a refusal naming the field."""
    code = values.code(code, field="code", most=CODE_MOST)
    name = values.text(name, field="name", most=NAME_MOST)
    category = (category or "").strip().upper()
    if category not in CATEGORIES:
        raise invalid(
            "category", "目录类别应为甲类A、乙类B或丙类C", "the category is A, B or C", "choice"
        )
    if category == "B" and not 0 < selfpay_bp < 10000:
        raise invalid(
            "selfpay_bp",
            "乙类项目须有先行自付比例（大于0%、小于100%）",
            "a B item needs a self-pay share above 0% and below 100%",
            "share",
        )
    if category != "B" and selfpay_bp:
        raise invalid(
            "selfpay_bp",
            "只有乙类项目有先行自付比例",
            "only B items have a self-pay share",
            "share",
        )
    if not 0 <= price <= MAX_PRICE:
        raise invalid(
            "price", "参考价格不能为负或过大", "the price is negative or too large", "price"
        )
    return Item(code, name, category, selfpay_bp, price)


def share_to_bp(value: object, *, field: str = "selfpay_pct") -> int:
    """A self-pay share as people write it, in percent ("10", "7.5", "10%"),
    to basis points; empty is 0."""
    text = str(value if value is not None else "").strip().removesuffix("%").strip()
    if not text:
        return 0
    pct = values.number(
        text, field=field, places=2, most_digits=3, what=("自付比例", "the share"), reason="share"
    )
    if pct > 100:
        raise invalid(field, "自付比例不能超过100%", "the share is at most 100%", "share")
    return int(pct * 100)
