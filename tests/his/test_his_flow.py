"""The HIS interface end to end: every transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.his.client import His
from yibao.app import create_app
from yibao.services.ledger import ledger


def _visit(his: His, person: dict[str, Any], lines: list[tuple[str, str]]) -> tuple[str, str]:
    info = his.person(person["card_no"])
    psn_no = info["baseinfo"]["psn_no"]
    mdtrt_id = his.register(psn_no, person["card_no"])
    his.fees(mdtrt_id, psn_no, lines)
    return psn_no, mdtrt_id


def test_person_information_shows_the_balance_and_status(
    his: His, demo: dict[str, Any], services: Any
) -> None:
    zhang = demo["persons"][0]
    out = his.person(zhang["card_no"])
    assert out["baseinfo"]["certno"] == zhang["certno"]
    assert out["baseinfo"]["psn_name"] == zhang["name"]
    insu = out["insuinfo"][0]
    assert insu["insutype"] == "310" and insu["psn_insu_stas"] == "1"
    with services.uow() as u:
        balance = ledger.individual_balance(u.session, int(out["baseinfo"]["psn_no"]))
    assert balance > 0
    assert insu["balc"] == balance / 100


def test_a_visit_settles_and_the_account_pays_the_personal_part(
    his: His, demo: dict[str, Any], services: Any
) -> None:
    zhang = demo["persons"][0]
    psn_no, mdtrt_id = _visit(
        his,
        zhang,
        [
            ("001101000010000", "10.00"),
            ("XA02BCA211E001", "286.00"),
            ("C00000000001", "5.00"),
            ("250101001", "400.00"),
        ],
    )
    his.ok(
        "2203",
        {
            "mdtrtinfo": {
                "mdtrt_id": mdtrt_id,
                "psn_no": psn_no,
                "med_type": "11",
                "begntime": "2026-11-23 10:00:00",
            },
            "diseinfo": [
                {"diag_type": "1", "diag_code": "J06.900", "diag_name": "急性上呼吸道感染"}
            ],
        },
    )
    with services.uow() as u:
        before = ledger.individual_balance(u.session, int(psn_no))
    pre = his.ok("2206", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "701.00"))
    with services.uow() as u:
        assert ledger.individual_balance(u.session, int(psn_no)) == before  # 2206 posts nothing
    out = his.ok("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "701.00"))
    s = out["setlinfo"]
    # total 701.00: C 5.00 self-paid; B 286.00 with 10 % first = 28.60; in scope 667.40;
    # deductible 300.00; level-3 ratio 75 % of 367.40 = 275.55; personal part 425.45
    assert s["medfee_sumamt"] == 701.00
    assert s["fulamt_ownpay_amt"] == 5.00
    assert s["preselfpay_amt"] == 28.60
    assert s["inscp_scp_amt"] == 667.40
    assert s["act_pay_dedc"] == 300.00
    assert s["hifp_pay"] == 275.55
    assert s["fund_pay_sumamt"] == 275.55
    assert s["psn_part_amt"] == 425.45
    expected_acct = min(42545, before)
    assert s["acct_pay"] == expected_acct / 100
    assert round(s["acct_pay"] + s["psn_cash_pay"], 2) == 425.45
    assert s["balc"] == (before - expected_acct) / 100
    assert pre["setlinfo"]["hifp_pay"] == s["hifp_pay"]
    with services.uow() as u:
        assert ledger.individual_balance(u.session, int(psn_no)) == before - expected_acct
        assert ledger.check(u.session).ok
    q = his.ok("5203", {"data": {"psn_no": psn_no, "setl_id": s["setl_id"], "mdtrt_id": mdtrt_id}})
    assert q["setlinfo"]["hifp_pay"] == 275.55

    # a second visit in the same year: the deductible is met already
    psn_no, second = _visit(his, zhang, [("250101001", "100.00")])
    out2 = his.ok("2207", his.settle_input(second, psn_no, zhang["card_no"], "100.00", acct="0"))
    assert out2["setlinfo"]["act_pay_dedc"] == 0
    assert out2["setlinfo"]["hifp_pay"] == 75.00
    assert out2["setlinfo"]["acct_pay"] == 0 and out2["setlinfo"]["psn_cash_pay"] == 25.00

    # reconciliation of the day's totals
    day = his.clock.now().strftime("%Y-%m-%d")
    rec = his.ok(
        "3201",
        {
            "data": {
                "insutype": "310",
                "clr_type": "11",
                "setl_optins": "330500",
                "stmt_begndate": day,
                "stmt_enddate": day,
                "medfee_sumamt": "801.00",
                "fund_pay_sumamt": "350.55",
                "acct_pay": f"{expected_acct / 100:.2f}",
                "fixmedins_setl_cnt": 2,
            }
        },
    )
    assert rec["stmtinfo"]["stmt_rslt"] == "0", rec
    bad = his.ok(
        "3201",
        {
            "data": {
                "insutype": "310",
                "clr_type": "11",
                "setl_optins": "330500",
                "stmt_begndate": day,
                "stmt_enddate": day,
                "medfee_sumamt": "800.00",
                "fund_pay_sumamt": "350.55",
                "acct_pay": f"{expected_acct / 100:.2f}",
                "fixmedins_setl_cnt": 2,
            }
        },
    )
    assert (
        bad["stmtinfo"]["stmt_rslt"] == "1" and "medfee_sumamt" in bad["stmtinfo"]["stmt_rslt_dscr"]
    )

    # cancel: reversed exactly once, the deductible given back
    cancel = his.ok(
        "2208", {"data": {"setl_id": s["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": psn_no}}
    )
    assert cancel["setlinfo"]["hifp_pay"] == -275.55
    with services.uow() as u:
        assert ledger.individual_balance(u.session, int(psn_no)) == before
        assert ledger.check(u.session).ok
    again = his.call(
        "2208", {"data": {"setl_id": s["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": psn_no}}
    )
    assert again["infcode"] == -1 and "cancelled" in again["err_msg"]
    q = his.ok("5203", {"data": {"psn_no": psn_no, "setl_id": s["setl_id"], "mdtrt_id": mdtrt_id}})
    assert q["setlinfo"]["setl_stas"] == "0"


def test_registration_and_fee_cancels(his: His, demo: dict[str, Any]) -> None:
    wang = demo["persons"][1]
    psn_no, mdtrt_id = _visit(his, wang, [("250101001", "20.00"), ("XJ01CAA040A001", "12.50")])
    his.ok(
        "2205",
        {
            "data": {
                "chrg_bchno": "B1",
                "feedetl_sn": "0000",
                "mdtrt_id": mdtrt_id,
                "psn_no": psn_no,
            }
        },
    )
    # with the details cancelled there is nothing to settle
    r = his.call("2207", his.settle_input(mdtrt_id, psn_no, wang["card_no"], "32.50"))
    assert r["infcode"] == -1 and "fee details" in r["err_msg"]
    his.ok("2202", {"data": {"psn_no": psn_no, "mdtrt_id": mdtrt_id, "ipt_otp_no": ""}})
    r = his.call(
        "2204",
        {
            "feedetail": [
                {
                    "feedetl_sn": "X1",
                    "mdtrt_id": mdtrt_id,
                    "psn_no": psn_no,
                    "med_list_codg": "250101001",
                    "det_item_fee_sumamt": "1.00",
                }
            ]
        },
    )
    assert r["infcode"] == -1


def test_sign_out_ends_the_sign_in(his: His, demo: dict[str, Any]) -> None:
    his.ok("9002", {"signOut": {"sign_no": his.sign_no, "opter_no": "001"}})
    r = his.call(
        "1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": demo["persons"][0]["card_no"]}}
    )
    assert r["infcode"] == -1 and "sign_no" in r["err_msg"]


def test_the_electronic_voucher_identifies_the_person_for_the_visit(
    his: His, pharmacy: His, demo: dict[str, Any], services: Any
) -> None:
    from yibao.services.cards import evoucher

    zhang = demo["persons"][0]
    psn = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
    token, _ = evoucher.issue(services.uow(), person_id=int(psn), channel="portal")
    out = his.ok("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": token}})
    assert out["baseinfo"]["certno"] == zhang["certno"]
    # the same institution may present it again within the visit; another may not
    again = his.ok("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": token}})
    assert again["baseinfo"]["psn_no"] == psn
    r = pharmacy.call("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": token}})
    assert r["infcode"] == -1 and "already used" in r["err_msg"]
    r = his.call("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": "YB1.forged"}})
    assert r["infcode"] == -1 and "voucher" in r["err_msg"]


def test_an_expired_electronic_voucher_is_refused(
    his: His, demo: dict[str, Any], services: Any, clock: Any
) -> None:
    import datetime as dt

    from yibao.services.cards import evoucher

    zhang = demo["persons"][0]
    psn = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
    token, _ = evoucher.issue(services.uow(), person_id=int(psn), channel="portal")
    clock.advance(dt.timedelta(minutes=2, seconds=1))  # valid for two minutes
    r = his.call("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": token}})
    assert r["infcode"] == -1 and "expired" in r["err_msg"]


def test_a_province_that_counts_the_account_in_the_fund_total(
    settings: Any, clock: Any, demo: dict[str, Any], services: Any
) -> None:
    """``his_fund_pay_includes_acct``: 2206, 2207, 5203 and 2208 report
    fund_pay_sumamt with the account payment added, 3201 compares the
    institution's total so, and nothing else of the split or the ledger moves."""
    app = create_app(settings.model_copy(update={"his_fund_pay_includes_acct": True}), clock)
    zhang = demo["persons"][0]
    with TestClient(app, base_url="https://testserver") as client:
        his = His(client, demo["institutions"][0], clock)
        his.sign_in()
        psn_no, mdtrt_id = _visit(his, zhang, [("250101001", "400.00")])
        with services.uow() as u:
            before = ledger.individual_balance(u.session, int(psn_no))
        inp = his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "400.00")
        pre = his.ok("2206", inp)["setlinfo"]
        s = his.ok("2207", inp)["setlinfo"]
        # in scope 400.00, deductible 300.00, 75 % of 100.00 = 75.00 from the fund
        assert s["hifp_pay"] == 75.00
        acct = min(325_00, before)
        assert s["acct_pay"] == acct / 100
        assert s["fund_pay_sumamt"] == round(75.00 + acct / 100, 2)
        assert s["psn_part_amt"] == 325.00  # the total less the fund's own payment
        assert round(s["acct_pay"] + s["psn_cash_pay"], 2) == 325.00
        assert pre["fund_pay_sumamt"] == s["fund_pay_sumamt"]
        q = his.ok(
            "5203", {"data": {"psn_no": psn_no, "setl_id": s["setl_id"], "mdtrt_id": mdtrt_id}}
        )["setlinfo"]
        assert q["fund_pay_sumamt"] == s["fund_pay_sumamt"]
        day = clock.now().strftime("%Y-%m-%d")
        totals = {
            "insutype": "310",
            "clr_type": "11",
            "setl_optins": "330500",
            "stmt_begndate": day,
            "stmt_enddate": day,
            "medfee_sumamt": "400.00",
            "fund_pay_sumamt": f"{s['fund_pay_sumamt']:.2f}",
            "acct_pay": f"{s['acct_pay']:.2f}",
            "fixmedins_setl_cnt": 1,
        }
        assert his.ok("3201", {"data": totals})["stmtinfo"]["stmt_rslt"] == "0"
        national = {**totals, "fund_pay_sumamt": "75.00"}
        assert his.ok("3201", {"data": national})["stmtinfo"]["stmt_rslt"] == "1"
        back = his.ok(
            "2208", {"data": {"setl_id": s["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": psn_no}}
        )
        assert back["setlinfo"]["fund_pay_sumamt"] == -s["fund_pay_sumamt"]
    with services.uow() as u:
        assert ledger.individual_balance(u.session, int(psn_no)) == before
        assert ledger.check(u.session).ok
    app.state.services.engine.dispose()
