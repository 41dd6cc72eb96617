"""Money is integer fen inside; yuan with two decimals only at the edges."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from yibao.domain.errors import invalid


def yuan_to_fen(value: object, *, field: str = "amount") -> int:
    """Parse a yuan amount (string or number) into fen, refusing sub-fen precision."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise invalid(field, "金额格式错误", "the amount is not a number", "amount") from exc
    if not amount.is_finite():
        raise invalid(field, "金额格式错误", "the amount is not a number", "amount")
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise invalid(field, "金额最多两位小数", "an amount has at most two decimals", "amount")
    return int(fen)


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
