"""The settlement decision: one pure function for 2206, 2207, the general
path and the PostgreSQL fast path alike.

A reader finds here, in order, every check a settlement passes and what it
decides: the visit is the institution's own, the named person's, still open;
the card or ID may be used for a settlement (``domain.use.decide``, presenter
an institution: card state, sole use, the person's and the enrolment's state,
the pooling area or a cross-area filing); a cash visit after an equipment
failure (seed 000, part three, item 3) is re-settled within the window and
once; the fee details add up to the total sent; then the benefit policy of
the insured area and year, the year's usage so far and the balance give the
split (``domain.benefit``), the ledger's legs, the year's usage after it and
what the institution owes the person back.

The facts are read by the caller, through the ORM (``services.settlement``)
or from ``yb_his_read`` (``services.settlement.fast_path``); nothing here
reads or writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from yibao.domain import family
from yibao.domain import ledger as codes
from yibao.domain.benefit import Item, Policy, Split, Terms, choose_policy, pool_prop_selfpay, split
from yibao.domain.errors import DomainError, invalid
from yibao.domain.ledger import Leg
from yibao.domain.use import CardState, Named, PersonState, Presenter, Purpose
from yibao.domain.use import decide as decide_use

RESIDENT = "390"  # urban and rural resident insurance: no individual account (domain.md)


class Kind(StrEnum):
    ORDINARY = "settlement"
    RESETTLEMENT = "resettlement"  # a cash visit after an equipment failure


@dataclass(frozen=True)
class Institution:
    code: str
    level: str  # 0..3: the fund's ratio depends on it
    division: str


@dataclass(frozen=True)
class Visit:
    id: int
    mdtrt_id: str
    person_id: int
    institution_code: str
    status: str  # registered, settled, cancelled
    cash_fallback: bool
    day: dt.date  # the visit's day in China: its year's policy and usage apply
    med_type: str = "11"


@dataclass(frozen=True)
class Enrolment:
    insutype: str
    psn_type: str
    area: str  # the insured area: its policy applies (异地就医: 参保地政策)
    status: str


@dataclass(frozen=True)
class Usage:
    """What a person used of a year's deductible and fund cap."""

    deductible_used: int = 0
    fund_used: int = 0

    def plus(self, other: Usage, sign: int = 1) -> Usage:
        return Usage(
            self.deductible_used + sign * other.deductible_used,
            self.fund_used + sign * other.fund_used,
        )


@dataclass(frozen=True)
class Facts:
    """Everything a settlement is decided from, as read for one request."""

    institution: Institution
    psn_no: str  # the person the request names
    visit: Visit | None
    person: PersonState | None  # the certificate's person, with the enrolment's state
    card: CardState | None  # the card presented (certificate type 03)
    enrolment: Enrolment | None
    medfee_sumamt: int  # the total the HIS sends
    fees: Sequence[Item]  # the visit's active fee details
    policies: Sequence[Policy]  # candidates: the insured area's, its city's, province's
    usage: Usage  # the year's so far
    balance: int  # the individual account's, before
    use_account: bool  # acct_used_flag
    today: dt.date  # the clock's day: the re-settlement window counts from the visit
    window_days: int  # Settings.his_resettle_window_days
    resettled_before: bool = False  # a settlement of this cash visit exists, cancelled or not
    named: Named | None = None  # certno and psn_name beside the certificate, when sent
    # family mutual aid: the bound holders who may pay now, in the person's
    # order, with their balances (domain.family); used with acct_used_flag 1
    family: Sequence[family.Payer] = ()


@dataclass(frozen=True)
class Decision:
    kind: Kind
    person_id: int
    visit: Visit
    enrolment: Enrolment
    year: int
    split: Split
    legs: tuple[Leg, ...]
    usage_seen: Usage
    usage_delta: Usage
    refund_owed: int
    balance_seen: int
    amounts: dict[str, int] = field(default_factory=dict)  # the answer's numbers, in fen
    # family mutual aid: (holder's person id, amount) in the order they paid
    mulaid: tuple[tuple[int, int], ...] = ()


def _refuse(code: str, zh: str, en: str, field_name: str | None, status: int = 409) -> DomainError:
    return DomainError(code=code, zh=zh, en=en, field=field_name, status=status)


def refund_owed(kind: Kind | str, split_: Split) -> int:
    """A re-settled cash visit: the person paid everything in cash; the
    account and the fund now pay their part, which the institution owes the
    person back (seed 000, part three, item 3). An ordinary visit: nothing."""
    if kind != Kind.RESETTLEMENT:
        return 0
    return split_.acct_pay + split_.acct_mulaid_pay + split_.fund_pay_sumamt


# The clearing type (clr_type) of a settlement's medical type (med_type):
# outpatient visits clear as outpatient, a pharmacy's sale as a pharmacy's.
CLEARING_TYPES = {"11": "11", "12": "11", "14": "11", "21": "21", "41": "41"}


def clearing_type(med_type: str) -> str:
    """The national dictionary's clearing type a settlement reports (and
    3201 is sent), from its medical type."""
    return CLEARING_TYPES.get(med_type, "11")


def wire_fund_pay(fund_pay_sumamt: int, acct_pay: int, *, includes_acct: bool) -> int:
    """``fund_pay_sumamt`` as the province reports it: the fund's payments,
    with the account's added where the province counts it in
    (``Settings.his_fund_pay_includes_acct``)."""
    return fund_pay_sumamt + acct_pay if includes_acct else fund_pay_sumamt


def legs(
    split_: Split,
    *,
    person_id: int,
    area: str,
    institution_code: str,
    mulaid: Sequence[tuple[int, int]] = (),
) -> tuple[Leg, ...]:
    """The ledger entry of a settlement: the account, the bound holders'
    accounts (family mutual aid: each leg carries the holder's person id,
    the entry the person's) and the fund pay the institution (zero legs
    left out, one kept so that an entry exists)."""
    all_legs = (
        Leg(codes.individual(person_id), -split_.acct_pay, "individual", person_id),
        *(
            Leg(codes.individual(holder), -amount, "individual", holder)
            for holder, amount in mulaid
        ),
        Leg(codes.fund(area, person_id), -split_.hifp_pay, "fund", None, area),
        Leg(
            codes.institution_share(institution_code, person_id),
            split_.acct_pay + split_.acct_mulaid_pay + split_.hifp_pay,
            "institution",
        ),
    )
    return tuple(leg for leg in all_legs if leg.amount) or (all_legs[-1],)


def check_window(visit_day: dt.date, today: dt.date, window_days: int, field_name: str) -> None:
    """A cash visit is recorded and re-settled at most ``window_days`` after it."""
    age = (today - visit_day).days
    if age > window_days:
        raise _refuse(
            "resettle.window_passed",
            f"已超过{window_days}天的重新结算期限",
            f"the re-settlement window of {window_days} days has passed",
            field_name,
        )
    if age < 0:
        raise invalid(field_name, "就诊时间晚于当前时间", "begntime is in the future")


def check_fees(items: Sequence[Item], total: int) -> None:
    """The visit has fee details, and they add up to the total the HIS sends."""
    if not items:
        raise _refuse(
            "fee.none",
            "未上传费用明细",
            "no fee details uploaded for this visit (2204)",
            "mdtrt_id",
        )
    uploaded = sum(i.amount for i in items)
    if uploaded != total:
        raise _refuse(
            "fee.total_mismatch",
            "医疗费总额与费用明细合计不符",
            f"medfee_sumamt differs from the fee details' total {uploaded / 100:.2f}",
            "medfee_sumamt",
        )


def check_visit(visit: Visit | None, institution: Institution, psn_no: str) -> Visit:
    """The visit exists, is the asking institution's (another's is refused,
    changing nothing) and the named person's."""
    if visit is None:
        raise _refuse("visit.not_found", "就诊记录不存在", "no such visit (mdtrt_id)", "mdtrt_id")
    if visit.institution_code != institution.code:
        raise _refuse(
            "visit.foreign",
            "该就诊记录不属于本机构",
            "this visit belongs to another institution",
            "mdtrt_id",
            403,
        )
    if str(visit.person_id) != psn_no:
        raise _refuse(
            "visit.person_mismatch",
            "人员编号与就诊记录不符",
            "psn_no does not match the visit",
            "psn_no",
        )
    return visit


def decide(facts: Facts) -> Decision:
    """Settle this visit, and how; or raise the refusal (a ``DomainError``)."""
    visit = check_visit(facts.visit, facts.institution, facts.psn_no)
    if visit.status != "registered":
        raise _refuse(
            "visit.settled",
            "该就诊已结算或已撤销",
            "this visit is already settled or cancelled",
            "mdtrt_id",
        )
    named = facts.named or Named()
    decide_use(
        purpose=Purpose.SETTLEMENT,
        presenter=Presenter.INSTITUTION,
        person=facts.person,
        card=facts.card,
        named=Named(person_id=visit.person_id, certno=named.certno, name=named.name),
        card_field="mdtrt_cert_no",
    ).require()
    # decide_use refused a certificate of another person than the visit's
    # (the visit's person is the one named), and a person without an
    # enrolment, so both are here and the visit's
    person, enrolment = facts.person, facts.enrolment
    assert person is not None and enrolment is not None
    kind = Kind.ORDINARY
    if visit.cash_fallback:
        kind = Kind.RESETTLEMENT
        check_window(visit.day, facts.today, facts.window_days, "begntime")
        if facts.resettled_before:
            raise _refuse(
                "resettle.once",
                "该现金收据已重新结算过，只能重新结算一次",
                "this cash receipt was re-settled already; only once",
                "mdtrt_id",
            )
    check_fees(facts.fees, facts.medfee_sumamt)
    year = visit.day.year
    # the visit area's catalogue (in the fee details), the insured area's
    # policy of the visit's year (异地就医: 就医地目录、参保地政策)
    policy = choose_policy(
        facts.policies, insutype=enrolment.insutype, area=enrolment.area, year=year
    )
    terms = Terms(
        deductible_left=policy.deductible - facts.usage.deductible_used,
        fund_ratio_bp=policy.ratio(facts.institution.level),
        fund_cap_left=policy.fund_cap - facts.usage.fund_used,
        balance=facts.balance,
        # a resident (390) has no individual account (domain.md)
        use_account=facts.use_account and enrolment.insutype != RESIDENT,
    )
    result = split(facts.fees, terms)
    mulaid: tuple[tuple[int, int], ...] = ()
    if facts.use_account and facts.family:
        # family mutual aid: the own account paid first (in split), the
        # bound holders' accounts pay what is left, in the person's order
        mulaid = family.cover(result.psn_cash_pay, facts.family)
        paid = sum(amount for _, amount in mulaid)
        result = replace(result, acct_mulaid_pay=paid, psn_cash_pay=result.psn_cash_pay - paid)
        result.check()
    owed = refund_owed(kind, result)
    return Decision(
        kind=kind,
        person_id=person.id,
        visit=visit,
        enrolment=enrolment,
        year=year,
        split=result,
        legs=legs(
            result,
            person_id=person.id,
            area=enrolment.area,
            institution_code=facts.institution.code,
            mulaid=mulaid,
        ),
        usage_seen=facts.usage,
        usage_delta=Usage(result.act_pay_dedc, result.hifp_pay),
        refund_owed=owed,
        balance_seen=facts.balance,
        amounts={**result.as_dict(), "refund_owed": owed},
        mulaid=mulaid,
    )


@dataclass(frozen=True)
class SettlementWrite:
    """What a settlement writes, in one transaction, whichever implementation
    writes it (``store.backend.Backend.settle``): one ledger entry under the
    request's key, the settlement row, the visit closed, the year's usage
    moved, each only if it is still what the decision saw."""

    key: str  # the ledger entry's idempotency key
    kind: str
    person_id: int
    memo: str
    at: dt.datetime
    legs: tuple[Leg, ...]
    visit_id: int
    insutype: str
    year: int
    usage_seen: Usage
    usage_delta: Usage
    balance_seen: int
    settlement: dict[str, Any]  # the settlements row, but its entry_id


def settlement_amounts(row: Any, sign: int = 1) -> dict[str, int]:
    """The answer's numbers of a stored settlement (5203, and 2208 negated)."""
    names = (
        "medfee_sumamt",
        "fulamt_ownpay_amt",
        "preselfpay_amt",
        "inscp_scp_amt",
        "act_pay_dedc",
        "hifp_pay",
        "fund_pay_sumamt",
        "psn_part_amt",
        "acct_pay",
        "psn_cash_pay",
        "refund_owed",
    )
    out = {name: sign * int(getattr(row, name)) for name in names}
    out["pool_prop_selfpay"] = sign * pool_prop_selfpay(
        int(row.inscp_scp_amt), int(row.act_pay_dedc), int(row.hifp_pay)
    )
    return out
