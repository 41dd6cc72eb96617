"""Family mutual aid (家庭共济): an employee's individual account pays for
close relatives (national policy since 2021). Pure rules, no I/O.

- Who may be bound: a spouse, a parent or a child, not oneself, and a
  relative is bound to at most ``Settings.family_max_holders`` holders.
- Whose account may pay: an employee individual account (310), open and
  not suspended, of a person whose account was not closed.
- How an account payment splits: the relative's own account first, then
  each bound holder's in the order the relative chose, each never below
  zero, exact to the fen; what is left is paid in cash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from yibao.domain.errors import DomainError, invalid

EMPLOYEE = "310"

# relation code -> (Chinese, English)
RELATIONS: dict[str, tuple[str, str]] = {
    "spouse": ("配偶", "spouse"),
    "parent": ("父母", "parent"),
    "child": ("子女", "child"),
}


def _refuse(code: str, zh: str, en: str, field: str) -> DomainError:
    return DomainError(code=f"family.{code}", zh=zh, en=en, field=field, status=409)


def check_relation(relation: str) -> str:
    if relation not in RELATIONS:
        raise DomainError(
            code="family.relation_not_allowed",
            zh="共济关系只能是配偶、父母或子女",
            en="the relation must be spouse, parent or child",
            field="relation",
            status=422,
        )
    return relation


@dataclass(frozen=True)
class HolderAccount:
    """The holder's account as the binding rule sees it."""

    person_id: int
    insutype: str | None  # the current enrolment's scheme; None: not enrolled
    enrolment_status: str | None  # active, suspended, terminated
    person_status: str  # active, or a closure's kind
    closed: bool  # the account was closed (emigration, transfer out, death)


def may_pay(account: HolderAccount) -> bool:
    """Whether this account may pay for a relative now: an employee
    individual account, open and not suspended."""
    return (
        account.insutype == EMPLOYEE
        and account.enrolment_status == "active"
        and account.person_status == "active"
        and not account.closed
    )


def check_holder(account: HolderAccount) -> None:
    if account.closed or account.person_status != "active":
        raise _refuse(
            "holder_closed",
            "您的个人账户已注销，不能为家庭成员共济",
            "the holder's individual account is closed",
            "holder",
        )
    if account.insutype != EMPLOYEE or account.enrolment_status is None:
        raise _refuse(
            "holder_not_employee",
            "只有职工医保个人账户可以家庭共济",
            "only an employee insurance individual account may pay for relatives",
            "holder",
        )
    if account.enrolment_status != "active":
        raise _refuse(
            "holder_suspended",
            "您的职工医保已暂停，个人账户不能共济",
            "the holder's employee insurance is suspended",
            "holder",
        )


def check_bind(
    *,
    holder: HolderAccount,
    relative_id: int,
    relation: str,
    relative_holders: int,
    already_bound: bool,
    max_holders: int,
) -> None:
    """May this holder bind this relative? Each refusal names its reason
    and the field it is about."""
    check_relation(relation)
    if relative_id == holder.person_id:
        raise _refuse(
            "self", "不能绑定本人为共济家庭成员", "the relative cannot be the holder", "certno"
        )
    check_holder(holder)
    if already_bound:
        raise _refuse(
            "already_bound",
            "该家庭成员已绑定或正在等待确认",
            "this relative is already bound to you or waits to confirm",
            "certno",
        )
    if relative_holders >= max_holders:
        raise _refuse(
            "too_many_holders",
            f"该家庭成员已绑定{max_holders}个共济账户，不能再绑定",
            f"the relative is already bound to {max_holders} holders, the most allowed",
            "certno",
        )


@dataclass(frozen=True)
class Payer:
    """A bound holder who may pay now, with the balance before."""

    person_id: int
    balance: int


@dataclass(frozen=True)
class Share:
    """Who pays what of an account payment."""

    own: int  # the relative's own account
    holders: tuple[tuple[int, int], ...]  # (holder's person id, amount), in order, none zero
    cash: int

    @property
    def mulaid(self) -> int:
        return sum(amount for _, amount in self.holders)


def cover(need: int, payers: Sequence[Payer]) -> tuple[tuple[int, int], ...]:
    """What each holder pays of ``need``, in order, each at most their
    balance (never below zero); holders who pay nothing are left out."""
    if need < 0:
        raise ValueError("the amount to cover is not negative")
    out: list[tuple[int, int]] = []
    left = need
    for payer in payers:
        if left == 0:
            break
        amount = min(left, max(payer.balance, 0))
        if amount:
            out.append((payer.person_id, amount))
            left -= amount
    return tuple(out)


def split_payment(
    need: int, *, own_balance: int, own_usable: bool, payers: Sequence[Payer]
) -> Share:
    """``need`` (fen) paid from the relative's own account first (when it
    may be used), then the holders' in order, the rest in cash."""
    own = min(need, max(own_balance, 0)) if own_usable else 0
    holders = cover(need - own, payers)
    paid = own + sum(a for _, a in holders)
    return Share(own, holders, need - paid)


def order(ranked: Sequence[tuple[int, int]]) -> list[int]:
    """Binding ids by the relative's rank (then by id: the older first)."""
    return [bid for _, bid in sorted((rank, bid) for bid, rank in ranked)]


def put_first(order_: Sequence[int], binding_id: int) -> list[int]:
    """The order with this binding first, the others as they were."""
    if binding_id not in order_:
        raise invalid(
            "binding",
            "该共济账户不在您的排序中",
            "not one of your confirmed payers",
            "family_order",
        )
    return [binding_id, *(b for b in order_ if b != binding_id)]


def check_order(given: Sequence[int], bindings: Sequence[int]) -> None:
    """A new order names each of the relative's active bindings once."""
    if sorted(given) != sorted(bindings) or len(set(given)) != len(given):
        raise invalid(
            "order",
            "排序须包含每个已确认的共济账户各一次",
            "the order must name each of your confirmed payers once",
            "family_order",
        )
