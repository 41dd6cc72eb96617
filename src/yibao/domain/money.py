"""Money is integer fen inside; yuan with two decimals only at the edges."""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal

from yibao.domain.errors import invalid

# At most 999,999,999,999.99 yuan: more is a typo or an attack, and a value
# such as 1e999999 would overflow the decimal arithmetic.
MAX_YUAN_DIGITS = 12
_AMOUNT = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


def yuan_to_fen(value: object, *, field: str = "amount") -> int:
    """Parse a yuan amount (a text of ASCII digits with at most two decimals,
    or a JSON number) into fen. Refused, naming the field: another kind of
    digit (full-width "１２３"), an exponent ("1e20"), more than two decimals,
    more than ``MAX_YUAN_DIGITS`` digits before the point."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise invalid(field, "金额格式错误", "the amount is not a number", "amount")
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) >= 10**MAX_YUAN_DIGITS:
            raise invalid(field, "金额过大或不是数字", "the amount is too large", "amount")
        text = format(Decimal(repr(value)), "f")
    else:
        text = str(value).strip()
    m = _AMOUNT.fullmatch(text)
    if m is None:
        raise invalid(field, "金额格式错误", "the amount is not a number", "amount")
    sign, whole, decimals = m.group(1), m.group(2), m.group(3) or ""
    if len(whole.lstrip("0")) > MAX_YUAN_DIGITS:
        raise invalid(
            field,
            f"金额过大(整数部分最多{MAX_YUAN_DIGITS}位)",
            f"the amount has more than {MAX_YUAN_DIGITS} digits before the point",
            "amount",
        )
    decimals = decimals.rstrip("0")
    if len(decimals) > 2:
        raise invalid(field, "金额最多两位小数", "an amount has at most two decimals", "amount")
    fen = int(whole) * 100 + int(decimals.ljust(2, "0"))
    return -fen if sign else fen


def portion(amount: int, bp: int) -> int:
    """``amount`` x ``bp`` / 10000 in integer fen, rounded half up (四舍五入):
    a half fen goes away from zero, for a negative amount too.

    The one rounding of a share of an amount: the benefit split's category B
    self-pay share and fund payment, and the contributions' rates and account
    share. Rounding the magnitude makes ``portion(-a, bp) == -portion(a, bp)``,
    so a reversal or a correction (a negative amount) is the exact mirror of
    what it reverses, and it rounds as ``fen_to_yuan`` (Decimal's ROUND_HALF_UP)
    does. Floor division alone (``(a * bp + 5000) // 10000``) would round a
    negative half towards zero instead: -0.5 fen to 0, while +0.5 fen gives 1.
    """
    if amount < 0:
        return -portion(-amount, bp)
    return (amount * bp + 5000) // 10000


def fen_to_yuan(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def format_yuan(fen: int) -> str:
    return f"{fen_to_yuan(fen):.2f}"
