"""Ledger account codes and the rules every entry obeys."""

from __future__ import annotations

from dataclasses import dataclass

from yibao.domain.errors import DomainError

# The pooled fund is split into sub-accounts so that concurrent settlements
# do not all update one row (design.md, "Scale beyond one server").
FUND_SHARDS = 16


def individual(person_id: int) -> str:
    return f"IA:{person_id}"


def fund(area: str, person_id: int) -> str:
    return f"FUND:{area}:{person_id % FUND_SHARDS}"


def ia_pending(area: str) -> str:
    """Individual-account credits received with contributions, not yet posted."""
    return f"IAPEND:{area}"


BANK = "BANK:CLEARING"


def payable_person(person_id: int) -> str:
    return f"PAYP:{person_id}"


def payable_heirs(person_id: int) -> str:
    return f"PAYH:{person_id}"


def payable_area(area: str) -> str:
    return f"PAYA:{area}"


def incoming_area(area: str) -> str:
    """Balances carried in from another area with a transferred relation."""
    return f"INA:{area}"


def institution(code: str) -> str:
    return f"INST:{code}"


def institution_share(code: str, person_id: int) -> str:
    """Every settlement at an institution credits it: sub-accounts, like the
    pooled fund's, so that one hot row does not serialise them (design.md)."""
    return f"{institution(code)}:{person_id % FUND_SHARDS}"


@dataclass(frozen=True)
class Leg:
    """One posting of an entry: the account (made on first use with this
    kind, person and area) and the signed amount in fen."""

    code: str
    amount: int
    kind: str
    person_id: int | None = None
    area: str = ""


def check_balanced(legs: list[tuple[str, int]]) -> None:
    if not legs:
        raise ValueError("an entry needs postings")
    if sum(amount for _, amount in legs) != 0:
        raise ValueError(f"postings do not sum to zero: {legs}")
    if any(not isinstance(amount, int) for _, amount in legs):
        raise TypeError("amounts are integer fen")


def insufficient(balance: int, wanted: int) -> DomainError:
    return DomainError(
        code="account.insufficient_balance",
        zh=f"个人账户余额不足：余额{balance / 100:.2f}元，需要{wanted / 100:.2f}元",
        en=f"individual account balance {balance / 100:.2f} yuan is less than {wanted / 100:.2f}",
        status=409,
    )
