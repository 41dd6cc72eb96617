"""How the cost of a visit splits between the pooled fund, the individual
account and cash: pure integer arithmetic in fen, no I/O.

The order follows the national interface (his-interface.md, "How the money
splits"): items fully self-paid (category C, or outside the catalogue) come
off first, then the self-pay share of category B items, then the open part
of the annual deductible; the fund pays its ratio of the rest up to what is
left of the annual cap; the personal part is paid from the individual
account when the HIS asks for it and the balance allows, the rest in cash.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from yibao.domain.areas import nearest
from yibao.domain.errors import DomainError
from yibao.domain.money import portion

__all__ = ["Item", "Policy", "Split", "Terms", "choose_policy", "portion", "split"]

CATEGORIES = ("A", "B", "C")


@dataclass(frozen=True)
class Policy:
    """A scheme's benefit policy for an area and year: the annual deductible,
    the annual fund cap and the fund's ratio by institution level (bp)."""

    insutype: str
    area: str
    year: int
    deductible: int
    fund_cap: int
    ratios: dict[str, int]

    def ratio(self, level: str) -> int:
        return int(self.ratios.get(level, self.ratios.get("0", 0)))


def choose_policy(rows: Iterable[Policy], *, insutype: str, area: str, year: int) -> Policy:
    """The area's own policy, else its city's, else its province's."""
    found = nearest({r.area: r for r in rows if r.insutype == insutype and r.year == year}, area)
    if found is not None:
        return found
    raise DomainError(
        code="policy.missing",
        zh=f"{area}地区{year}年没有险种{insutype}的待遇政策",
        en=f"no benefit policy for area {area}, year {year}, insutype {insutype}",
        status=409,
    )


def pool_prop_selfpay(inscp_scp_amt: int, act_pay_dedc: int, hifp_pay: int) -> int:
    """The person's share of the pooled part: the in-scope amount less the
    deductible and the fund's payment (2207's answer and 5203's alike)."""
    return inscp_scp_amt - act_pay_dedc - hifp_pay


@dataclass(frozen=True)
class Item:
    amount: int  # fen
    category: str | None  # A, B, C; None: not in the catalogue
    selfpay_bp: int = 0  # category B: the self-pay share taken first


@dataclass(frozen=True)
class ItemSplit:
    amount: int
    fulamt_ownpay_amt: int
    preselfpay_amt: int
    inscp_scp_amt: int


def split_item(item: Item) -> ItemSplit:
    if item.amount < 0:
        raise ValueError("an item's amount is not negative")
    if item.category == "A":
        return ItemSplit(item.amount, 0, 0, item.amount)
    if item.category == "B":
        pre = portion(item.amount, item.selfpay_bp)
        return ItemSplit(item.amount, 0, pre, item.amount - pre)
    return ItemSplit(item.amount, item.amount, 0, 0)


@dataclass(frozen=True)
class Terms:
    """What the policy and the person's year so far allow for this visit."""

    deductible_left: int  # the annual deductible not yet met
    fund_ratio_bp: int  # fund payment ratio for the institution level
    fund_cap_left: int  # what is left of the annual fund cap
    balance: int  # individual account balance before
    use_account: bool  # acct_used_flag


@dataclass(frozen=True)
class Split:
    medfee_sumamt: int
    fulamt_ownpay_amt: int
    preselfpay_amt: int
    inscp_scp_amt: int
    act_pay_dedc: int
    hifp_pay: int
    pool_prop_selfpay: int  # the person's share of the pooled part
    fund_pay_sumamt: int
    psn_part_amt: int
    acct_pay: int
    psn_cash_pay: int
    balc: int
    # what bound holders' accounts paid for the person (family mutual aid,
    # domain.family); 0 unless the settlement adds it
    acct_mulaid_pay: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def check(self) -> None:
        """The parts add up exactly."""
        assert self.medfee_sumamt == (
            self.fulamt_ownpay_amt + self.preselfpay_amt + self.inscp_scp_amt
        )
        assert self.inscp_scp_amt == self.act_pay_dedc + self.hifp_pay + self.pool_prop_selfpay
        assert self.psn_part_amt == self.medfee_sumamt - self.fund_pay_sumamt
        assert self.psn_part_amt == self.acct_pay + self.acct_mulaid_pay + self.psn_cash_pay
        assert (
            min(self.acct_pay, self.acct_mulaid_pay, self.psn_cash_pay, self.hifp_pay, self.balc)
            >= 0
        )


def split(items: Sequence[Item], terms: Terms) -> Split:
    parts = [split_item(i) for i in items]
    total = sum(p.amount for p in parts)
    ownpay = sum(p.fulamt_ownpay_amt for p in parts)
    pre = sum(p.preselfpay_amt for p in parts)
    inscp = total - ownpay - pre
    dedc = min(inscp, max(terms.deductible_left, 0))
    hifp = min(portion(inscp - dedc, terms.fund_ratio_bp), max(terms.fund_cap_left, 0))
    fund = hifp
    person = total - fund
    acct = min(person, max(terms.balance, 0)) if terms.use_account else 0
    result = Split(
        medfee_sumamt=total,
        fulamt_ownpay_amt=ownpay,
        preselfpay_amt=pre,
        inscp_scp_amt=inscp,
        act_pay_dedc=dedc,
        hifp_pay=hifp,
        pool_prop_selfpay=pool_prop_selfpay(inscp, dedc, hifp),
        fund_pay_sumamt=fund,
        psn_part_amt=person,
        acct_pay=acct,
        psn_cash_pay=person - acct,
        balc=terms.balance - acct,
    )
    result.check()
    return result
