"""domain.family without a database: who may be bound, whose account may
pay, and the split of an account payment, exact to the fen."""

from __future__ import annotations

import pytest

from yibao.domain import family
from yibao.domain.errors import DomainError

OPEN = family.HolderAccount(1, "310", "active", "active", closed=False)


def test_the_own_account_pays_first_then_the_holders_in_order() -> None:
    payers = [family.Payer(7, 300), family.Payer(8, 1_000)]
    share = family.split_payment(1_001, own_balance=500, own_usable=True, payers=payers)
    assert (share.own, share.holders, share.cash) == (500, ((7, 300), (8, 201)), 0)
    assert share.mulaid == 501


def test_never_below_zero_and_the_rest_in_cash() -> None:
    payers = [family.Payer(7, 0), family.Payer(8, -5), family.Payer(9, 40)]
    share = family.split_payment(100, own_balance=10, own_usable=True, payers=payers)
    assert (share.own, share.holders, share.cash) == (10, ((9, 40),), 50)
    # a resident's own account (none) is skipped
    share = family.split_payment(100, own_balance=10, own_usable=False, payers=payers)
    assert (share.own, share.holders, share.cash) == (0, ((9, 40),), 60)


@pytest.mark.parametrize(
    ("account", "code"),
    [
        (family.HolderAccount(1, "310", "suspended", "active", False), "family.holder_suspended"),
        (family.HolderAccount(1, "390", "active", "active", False), "family.holder_not_employee"),
        (family.HolderAccount(1, "310", "active", "deceased", False), "family.holder_closed"),
        (family.HolderAccount(1, "310", "terminated", "active", True), "family.holder_closed"),
    ],
)
def test_only_an_open_employee_account_may_pay(account: family.HolderAccount, code: str) -> None:
    assert not family.may_pay(account)
    with pytest.raises(DomainError) as caught:
        family.check_holder(account)
    assert caught.value.code == code
    assert family.may_pay(OPEN)


def test_binding_refusals_in_order() -> None:
    bind = dict(
        relative_id=2, relation="child", relative_holders=0, already_bound=False, max_holders=3
    )
    family.check_bind(holder=OPEN, **bind)  # type: ignore[arg-type]
    for change, code in [
        ({"relation": "sibling"}, "family.relation_not_allowed"),
        ({"relative_id": 1}, "family.self"),
        ({"already_bound": True}, "family.already_bound"),
        ({"relative_holders": 3}, "family.too_many_holders"),
    ]:
        with pytest.raises(DomainError) as caught:
            family.check_bind(holder=OPEN, **{**bind, **change})  # type: ignore[arg-type]
        assert caught.value.code == code


def test_put_first_keeps_the_others_in_order() -> None:
    assert family.put_first([1, 2, 3], 3) == [3, 1, 2]
    with pytest.raises(DomainError):
        family.put_first([1, 2], 9)
    with pytest.raises(DomainError):
        family.check_order([1, 1], [1, 2])
