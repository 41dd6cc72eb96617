"""Equipment failure (seed 000, part three, item 3): the person pays cash and
gets a receipt; after the repair the visit is re-settled at the same
institution, within the window, under the visit date's rules, once."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from tests.his.client import His
from yibao.services.ledger import ledger
from yibao.store.models import Settlement


def _cash_visit(his: His, person: dict[str, Any], invono: str, begntime: str) -> tuple[str, str]:
    psn_no = his.person(person["card_no"])["baseinfo"]["psn_no"]
    mdtrt_id = his.register(
        psn_no, person["card_no"], begntime=begntime, cash_fallback="1", invono=invono
    )
    his.fees(mdtrt_id, psn_no, [("250101001", "500.00")])
    return psn_no, mdtrt_id


def test_a_cash_visit_is_resettled_once_and_the_refund_is_owed(
    his: His, demo: dict[str, Any], services: Any
) -> None:
    zhang = demo["persons"][0]
    psn_no, mdtrt_id = _cash_visit(his, zhang, "INV-0001", "2026-11-10 15:30:00")
    with services.uow() as u:
        before = ledger.individual_balance(u.session, int(psn_no))
    out = his.ok("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "500.00"))
    s = out["setlinfo"]
    assert s["setl_type"] == "resettlement"
    # 500.00: deductible 300.00, 75 % of 200.00 = 150.00 from the fund, 350.00 personal
    assert s["hifp_pay"] == 150.00 and s["act_pay_dedc"] == 300.00
    assert s["acct_pay"] == min(350_00, before) / 100
    assert s["refund_owed"] == round(s["hifp_pay"] + s["acct_pay"], 2)
    with services.uow() as u:
        row = u.session.execute(select(Settlement)).scalar_one()
        assert row.kind == "resettlement" and row.refund_owed == round(s["refund_owed"] * 100)
        assert row.year == 2026
        assert ledger.check(u.session).ok
    # once only: also not after a cancel
    r = his.call("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "500.00"))
    assert r["infcode"] == -1
    his.ok("2208", {"data": {"setl_id": s["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": psn_no}})
    r = his.call("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "500.00"))
    assert r["infcode"] == -1 and "only once" in r["err_msg"]
    # the same receipt cannot be recorded a second time
    r = his.call(
        "2201",
        {
            "data": {
                "psn_no": psn_no,
                "begntime": "2026-11-10 15:30:00",
                "mdtrt_cert_type": "03",
                "mdtrt_cert_no": zhang["card_no"],
                "cash_fallback": "1",
                "invono": "INV-0001",
            }
        },
    )
    assert r["infcode"] == -1 and "receipt" in r["err_msg"]


def test_another_institution_cannot_resettle_the_receipt(
    his: His, pharmacy: His, demo: dict[str, Any]
) -> None:
    zhang = demo["persons"][0]
    psn_no, mdtrt_id = _cash_visit(his, zhang, "INV-0002", "2026-11-20 09:00:00")
    r = pharmacy.call("2207", pharmacy.settle_input(mdtrt_id, psn_no, zhang["card_no"], "500.00"))
    assert r["infcode"] == -1 and "another institution" in r["err_msg"]
    his.ok("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "500.00"))


def test_resettlement_only_within_the_window(his: His, demo: dict[str, Any], clock: Any) -> None:
    zhang = demo["persons"][0]
    old = (clock.now() - dt.timedelta(days=91)).strftime("%Y-%m-%d %H:%M:%S")
    psn_no = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
    r = his.call(
        "2201",
        {
            "data": {
                "psn_no": psn_no,
                "begntime": old,
                "mdtrt_cert_type": "03",
                "mdtrt_cert_no": zhang["card_no"],
                "cash_fallback": "1",
                "invono": "INV-OLD",
            }
        },
    )
    assert r["infcode"] == -1 and "window" in r["err_msg"]
    # recorded in time, re-settled too late
    psn_no, mdtrt_id = _cash_visit(
        his, zhang, "INV-0003", (clock.now() - dt.timedelta(days=89)).strftime("%Y-%m-%d %H:%M:%S")
    )
    clock.advance(dt.timedelta(days=2))
    r = his.call("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "500.00"))
    assert r["infcode"] == -1 and "window" in r["err_msg"]


def test_resettlement_uses_the_rules_of_the_visit_year(
    his: His, demo: dict[str, Any], clock: Any, services: Any
) -> None:
    from yibao.clock import CHINA
    from yibao.domain.actors import Actor, Channel
    from yibao.services.settlement import policy

    # a visit on 28 December, re-settled on 5 January: 2026's policy applies
    clock.set(dt.datetime(2026, 12, 28, 10, 0, tzinfo=CHINA))
    zhang = demo["persons"][0]
    his.sign_in()
    psn_no, mdtrt_id = _cash_visit(his, zhang, "INV-YEAR", "2026-12-28 09:00:00")
    with services.uow() as u:
        policy.set_policy(
            u,
            actor=Actor.system(),
            channel=Channel.CLI,
            insutype="310",
            area="330500",
            year=2027,
            deductible=0,
            fund_cap=10**9,
            ratios={"3": 10000},
        )
        u.commit()
    clock.set(dt.datetime(2027, 1, 5, 10, 0, tzinfo=CHINA))
    his.sign_in()
    out = his.ok("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "500.00"))
    assert out["setlinfo"]["act_pay_dedc"] == 300.00 and out["setlinfo"]["hifp_pay"] == 150.00
