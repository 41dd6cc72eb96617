"""Money is integer fen inside; yuan with two decimals only at the edges."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from yibao.domain import values

# At most 999,999,999,999.99 yuan: more is a typo or an attack, and a value
# such as 1e999999 would overflow the decimal arithmetic.
MAX_YUAN_DIGITS = 12


def yuan_to_fen(value: object, *, field: str = "amount") -> int:
    """Parse a yuan amount (a text of ASCII digits with at most two decimals,
    or a JSON number) into fen. Refused, naming the field: another kind of
    digit (full-width "１２３"), an exponent ("1e20"), more than two decimals,
    more than ``MAX_YUAN_DIGITS`` digits before the point."""
    yuan = values.number(
        value,
        field=field,
        places=2,
        most_digits=MAX_YUAN_DIGITS,
        signed=True,
        what=("金额", "the amount"),
        reason="amount",
    )
    return int(yuan * 100)


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
