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


def fen_to_yuan(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def format_yuan(fen: int) -> str:
    return f"{fen_to_yuan(fen):.2f}"
