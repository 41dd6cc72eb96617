"""The settlement decision (domain.settlement.decide), with no database: one
table of facts and what is decided, the refusal's code and field or the
split, the ledger's legs, the usage moved and what is owed back."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from yibao.domain import settlement as rules
from yibao.domain.benefit import Item, Policy
from yibao.domain.errors import DomainError
from yibao.domain.use import CardState, Named, PersonState

TODAY = dt.date(2026, 11, 23)
HOSPITAL = rules.Institution("H33050200001", "3", "330502")
ZHANG = PersonState(
    7, "张伟", "330502198503120112", "active", "active", insured_area="330502", arrangement=True
)
CARD = CardState("5720001014", "issued", 7)
POLICY = Policy("310", "330500", 2026, 300_00, 1_000_00, {"3": 7500})


def facts(**changes: Any) -> rules.Facts:
    base = rules.Facts(
        institution=HOSPITAL,
        psn_no="7",
        visit=rules.Visit(1, "MD1", 7, HOSPITAL.code, "registered", False, TODAY),
        person=ZHANG,
        card=CARD,
        enrolment=rules.Enrolment("310", "employee", "330502", "active"),
        medfee_sumamt=500_00,
        fees=[Item(500_00, "A")],
        policies=[POLICY],
        usage=rules.Usage(),
        balance=200_00,
        use_account=True,
        today=TODAY,
        window_days=90,
    )
    return dataclasses.replace(base, **changes)


def visit(**changes: Any) -> rules.Visit:
    return dataclasses.replace(facts().visit, **changes)  # type: ignore[type-var]


REFUSALS = [
    ("no visit", {"visit": None}, "visit.not_found", "mdtrt_id"),
    ("another institution's visit", {"visit": visit(institution_code="H1")}, "visit.foreign", None),
    ("another person's visit", {"psn_no": "8"}, "visit.person_mismatch", "psn_no"),
    ("a settled visit", {"visit": visit(status="settled")}, "visit.settled", "mdtrt_id"),
    ("a lost card", {"card": dataclasses.replace(CARD, status="lost")}, "card.lost", None),
    (
        "a replaced card",
        {"card": dataclasses.replace(CARD, status="cancelled", replaced=True)},
        "card.replaced",
        "mdtrt_cert_no",
    ),
    (
        "a card not yet issued",
        {"card": dataclasses.replace(CARD, status="in_production")},
        "card.not_issued",
        "mdtrt_cert_no",
    ),
    (
        "another person's card",
        {"card": dataclasses.replace(CARD, holder_id=8)},
        "card.not_holder",
        "mdtrt_cert_no",
    ),
    (
        "the card with another person's certno",
        {"named": Named(certno="330502199007210228")},
        "card.not_holder",
        "certno",
    ),
    (
        "an ID number with another person's name",
        {"card": None, "named": Named(name="王芳")},
        "person.mismatch",
        "psn_name",
    ),
    ("no such person", {"person": None}, "person.not_found", "mdtrt_cert_no"),
    (
        "a deceased person",
        {"person": dataclasses.replace(ZHANG, status="deceased")},
        "person.deceased",
        None,
    ),
    (
        "benefits suspended",
        {"person": dataclasses.replace(ZHANG, enrolment="suspended")},
        "enrolment.suspended",
        None,
    ),
    (
        "another area without a filing",
        {"person": dataclasses.replace(ZHANG, insured_area="320500", arrangement=False)},
        "offsite.not_covered",
        "insuplc_admdvs",
    ),
    (
        "a cash visit past the window",
        {"visit": visit(cash_fallback=True, day=TODAY - dt.timedelta(days=91))},
        "resettle.window_passed",
        "begntime",
    ),
    (
        "a cash visit re-settled before",
        {"visit": visit(cash_fallback=True), "resettled_before": True},
        "resettle.once",
        "mdtrt_id",
    ),
    ("no fee details", {"fees": []}, "fee.none", "mdtrt_id"),
    ("a total that is not the details'", {"medfee_sumamt": 499_99}, "fee.total_mismatch", None),
    ("no policy for the year", {"policies": []}, "policy.missing", None),
]


@pytest.mark.parametrize(
    ("changes", "code", "field"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_a_settlement_is_refused_naming_why(
    changes: dict[str, Any], code: str, field: str | None
) -> None:
    with pytest.raises(DomainError) as refused:
        rules.decide(facts(**changes))
    assert refused.value.code == code
    if field is not None:
        assert refused.value.field == field


def test_an_ordinary_settlement_splits_posts_and_moves_the_usage() -> None:
    d = rules.decide(facts())
    # 500.00 in scope: 300.00 deductible, 75 % of 200.00 = 150.00 from the fund,
    # 350.00 personal: 200.00 from the account, 150.00 cash
    s = d.split
    assert (s.act_pay_dedc, s.hifp_pay, s.acct_pay, s.psn_cash_pay, s.balc) == (
        300_00,
        150_00,
        200_00,
        150_00,
        0,
    )
    assert d.kind is rules.Kind.ORDINARY and d.refund_owed == 0 and d.year == 2026
    assert d.usage_delta == rules.Usage(300_00, 150_00) and d.usage_seen == rules.Usage()
    assert [(leg.code, leg.amount) for leg in d.legs] == [
        ("IA:7", -200_00),
        ("FUND:330502:7", -150_00),
        ("INST:H33050200001:7", 350_00),
    ]
    assert sum(leg.amount for leg in d.legs) == 0
    assert d.amounts["pool_prop_selfpay"] == s.inscp_scp_amt - s.act_pay_dedc - s.hifp_pay == 50_00


def test_the_years_usage_so_far_meets_the_deductible_and_the_cap() -> None:
    d = rules.decide(facts(usage=rules.Usage(300_00, 900_00)))
    assert d.split.act_pay_dedc == 0
    assert d.split.hifp_pay == 100_00  # 75 % of 500.00 is 375.00, but 100.00 of the cap is left
    assert d.usage_seen == rules.Usage(300_00, 900_00)


def test_a_resident_pays_nothing_from_an_account() -> None:
    d = rules.decide(
        facts(
            enrolment=rules.Enrolment("390", "resident", "330502", "active"),
            policies=[dataclasses.replace(POLICY, insutype="390")],
        )
    )
    assert d.split.acct_pay == 0 and d.legs[0].code.startswith("FUND")


def test_nothing_paid_by_the_account_or_the_fund_still_posts_one_leg() -> None:
    d = rules.decide(facts(fees=[Item(100_00, "C")], medfee_sumamt=100_00, use_account=False))
    assert [(leg.code, leg.amount) for leg in d.legs] == [("INST:H33050200001:7", 0)]


def test_a_cash_visit_is_resettled_and_its_cover_owed_back() -> None:
    d = rules.decide(facts(visit=visit(cash_fallback=True, day=TODAY - dt.timedelta(days=90))))
    assert d.kind is rules.Kind.RESETTLEMENT
    assert d.refund_owed == d.split.acct_pay + d.split.fund_pay_sumamt == 350_00
    assert rules.refund_owed(rules.Kind.ORDINARY, d.split) == 0


def test_the_province_may_count_the_account_in_the_fund_total() -> None:
    assert rules.wire_fund_pay(150_00, 200_00, includes_acct=False) == 150_00
    assert rules.wire_fund_pay(150_00, 200_00, includes_acct=True) == 350_00
