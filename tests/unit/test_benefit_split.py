"""The split of a visit's cost, exact to the fen, on a table of cases."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yibao.domain.benefit import Item, Terms, portion, split

A, B, C = "A", "B", "C"

# items, (deductible left, ratio bp, cap left, balance, use account) ->
# (total, ownpay, preself, inscope, deductible, fund, personal, account, cash, balance after)
CASES = [
    # everything in scope, no deductible left, 80 %
    (
        [Item(100_00, A)],
        (0, 8000, 10**9, 50_00, True),
        (100_00, 0, 0, 100_00, 0, 80_00, 20_00, 20_00, 0, 30_00),
    ),
    # the account does not cover the personal part: the rest is cash
    (
        [Item(100_00, A)],
        (0, 8000, 10**9, 5_00, True),
        (100_00, 0, 0, 100_00, 0, 80_00, 20_00, 5_00, 15_00, 0),
    ),
    # acct_used_flag 0: all cash
    (
        [Item(100_00, A)],
        (0, 8000, 10**9, 50_00, False),
        (100_00, 0, 0, 100_00, 0, 80_00, 20_00, 0, 20_00, 50_00),
    ),
    # deductible larger than the in-scope part: the fund pays nothing
    (
        [Item(200_00, A)],
        (300_00, 8000, 10**9, 0, True),
        (200_00, 0, 0, 200_00, 200_00, 0, 200_00, 0, 200_00, 0),
    ),
    # deductible partly open
    (
        [Item(500_00, A)],
        (300_00, 7500, 10**9, 1000_00, True),
        (500_00, 0, 0, 500_00, 300_00, 150_00, 350_00, 350_00, 0, 650_00),
    ),
    # category B: 10 % first, rounded half up per item: 0.33 x 10 % = 0.033 -> 0.03
    ([Item(33, B, 1000)], (0, 10000, 10**9, 0, True), (33, 0, 3, 30, 0, 30, 3, 0, 3, 0)),
    # 0.35 x 10 % = 0.035 -> 0.04 (half up)
    ([Item(35, B, 1000)], (0, 10000, 10**9, 0, True), (35, 0, 4, 31, 0, 31, 4, 0, 4, 0)),
    # category C and items outside the catalogue are fully self-paid
    (
        [Item(5_00, C), Item(7_00, None), Item(10_00, A)],
        (0, 9000, 10**9, 0, True),
        (22_00, 12_00, 0, 10_00, 0, 9_00, 13_00, 0, 13_00, 0),
    ),
    # the fund ratio rounds half up to the fen: 0.01 x 75 % = 0.0075 -> 0.01
    ([Item(1, A)], (0, 7500, 10**9, 0, True), (1, 0, 0, 1, 0, 1, 0, 0, 0, 0)),
    # 3.33 x 85 % = 2.8305 -> 2.83
    ([Item(333, A)], (0, 8500, 10**9, 10, True), (333, 0, 0, 333, 0, 283, 50, 10, 40, 0)),
    # the annual cap: only 10.00 left
    (
        [Item(1000_00, A)],
        (0, 9000, 10_00, 0, True),
        (1000_00, 0, 0, 1000_00, 0, 10_00, 990_00, 0, 990_00, 0),
    ),
    # cap used up
    ([Item(100_00, A)], (0, 9000, 0, 0, True), (100_00, 0, 0, 100_00, 0, 0, 100_00, 0, 100_00, 0)),
    # the demo visit: 701.00 at a level-3 hospital, 300.00 deductible, 75 %
    (
        [Item(10_00, A), Item(286_00, B, 1000), Item(5_00, C), Item(400_00, A)],
        (300_00, 7500, 200_000_00, 10_000_00, True),
        (701_00, 5_00, 28_60, 667_40, 300_00, 275_55, 425_45, 425_45, 0, 9_574_55),
    ),
    # nothing at all
    ([Item(0, A)], (300_00, 7500, 10**9, 10_00, True), (0, 0, 0, 0, 0, 0, 0, 0, 0, 10_00)),
]


@pytest.mark.parametrize(("items", "terms", "expected"), CASES)
def test_split_is_exact_to_the_fen(
    items: list[Item], terms: tuple[int, int, int, int, bool], expected: tuple[int, ...]
) -> None:
    s = split(items, Terms(*terms))
    got = (
        s.medfee_sumamt,
        s.fulamt_ownpay_amt,
        s.preselfpay_amt,
        s.inscp_scp_amt,
        s.act_pay_dedc,
        s.hifp_pay,
        s.psn_part_amt,
        s.acct_pay,
        s.psn_cash_pay,
        s.balc,
    )
    assert got == expected


def test_portion_rounds_half_up() -> None:
    assert portion(5, 1000) == 1  # 0.5 fen -> 1
    assert portion(4, 1000) == 0
    assert portion(-5, 1000) == -1


NEGATIVE = [
    # amount, bp, share: half a fen away from zero, like Decimal's ROUND_HALF_UP
    (-5, 1000, -1),  # -0.5 -> -1 (floor division alone gave 0)
    (-15, 1000, -2),  # -1.5 -> -2 (floor division alone gave -1)
    (-4, 1000, 0),  # -0.4 -> 0
    (-6, 1000, -1),  # -0.6 -> -1
    (-333, 8500, -283),  # -2.8305 -> -2.83
    (-1, 7500, -1),  # -0.75 -> -1
]


@pytest.mark.parametrize(("amount", "bp", "share"), NEGATIVE)
def test_one_rounding_for_every_share_negative_amounts_mirror_positive_ones(
    amount: int, bp: int, share: int
) -> None:
    """The benefit split and the contributions round a share the same way,
    and a negative amount (a reversal, a correction) is the exact mirror of
    the positive one. Before, the contributions' copy rounded -0.5 fen to 0
    where the split's rounded it to -1."""
    from yibao.domain import money
    from yibao.services.contributions import contributions

    assert contributions.portion is money.portion is portion
    assert portion(amount, bp) == share
    assert portion(-amount, bp) == -share
    exact = Decimal(amount) * bp / 10000
    assert share == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@given(st.integers(-(10**12), 10**12), st.integers(0, 10000))
def test_a_share_of_a_negative_amount_is_the_negated_share(amount: int, bp: int) -> None:
    assert portion(-amount, bp) == -portion(amount, bp)
    exact = Decimal(amount) * bp / 10000
    assert portion(amount, bp) == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@given(
    st.lists(
        st.tuples(st.integers(0, 10**7), st.sampled_from([A, B, C, None]), st.integers(0, 10000)),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 10**6),
    st.integers(0, 10000),
    st.integers(0, 10**8),
    st.integers(0, 10**7),
    st.booleans(),
)
def test_the_parts_always_add_up(
    raw: list[tuple[int, str | None, int]], dedc: int, ratio: int, cap: int, bal: int, use: bool
) -> None:
    items = [Item(a, c, bp if c == B else 0) for a, c, bp in raw]
    s = split(items, Terms(dedc, ratio, cap, bal, use))
    s.check()  # raises if any part is off by a fen
    assert s.medfee_sumamt == sum(a for a, _, _ in raw)
    assert s.hifp_pay <= cap and s.acct_pay <= bal
