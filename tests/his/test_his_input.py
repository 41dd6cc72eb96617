"""Issue 14: bad input to the HIS interface is ``infcode`` -1 with ``err_msg``
naming the field and the reason, never "internal error" (a hospital system
told to retry would retry what can never succeed), and changes nothing.
The examples here are the issue's; ``test_his_hostile_input`` sends the
whole table of fields and faults for every transaction code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from tests.his.client import ENDPOINT, His
from yibao.store.models import FeeDetail, Visit
from yibao.testing import his as signer

INTERNAL = ("internal error", "系统内部错误")


def refused(result: dict[str, Any], field: str) -> str:
    """The refusal's err_msg, which begins with the field's path."""
    assert result["infcode"] == -1, result
    err: str = result["err_msg"]
    assert not any(word in err for word in INTERNAL), err
    assert err.startswith(f"{field}:"), err
    return err


def _visit(his: His, person: dict[str, Any]) -> tuple[str, str]:
    psn_no = his.person(person["card_no"])["baseinfo"]["psn_no"]
    mdtrt_id = his.register(psn_no, person["card_no"])
    his.fees(mdtrt_id, psn_no, [("250101001", "20.00")])
    return psn_no, mdtrt_id


def _line(his: His, mdtrt_id: str, psn_no: str, /, **changed: Any) -> dict[str, Any]:
    return {
        "feedetl_sn": f"L{his.msgid()[-6:]}",
        "mdtrt_id": mdtrt_id,
        "psn_no": psn_no,
        "chrg_bchno": "B1",
        "fee_ocur_time": his.clock.now().strftime("%Y-%m-%d %H:%M:%S"),
        "med_list_codg": "250101001",
        "medins_list_codg": "250101001",
        "det_item_fee_sumamt": "20.00",
        "cnt": 1,
        "pric": "20.00",
        **changed,
    }


def _statement(his: His, **changed: Any) -> dict[str, Any]:
    day = his.clock.now().strftime("%Y-%m-%d")
    return {
        "data": {
            "insutype": "310",
            "clr_type": "11",
            "setl_optins": "330500",
            "stmt_begndate": day,
            "stmt_enddate": day,
            "medfee_sumamt": "0.00",
            "fund_pay_sumamt": "0.00",
            "acct_pay": "0.00",
            "fixmedins_setl_cnt": 0,
            **changed,
        }
    }


# ---------------------------------------------------- the seven causes


def test_the_seven_causes_of_internal_error_name_the_field(his: His, demo: dict[str, Any]) -> None:
    """Before, each of these answered "系统内部错误，请稍后再试 / internal error"."""
    zhang = demo["persons"][0]
    psn_no, mdtrt_id = _visit(his, zhang)
    # a list of diagnoses that is a number
    refused(
        his.call("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": psn_no}, "diseinfo": 5}),
        "input.diseinfo",
    )
    # fee details that are a boolean
    refused(his.call("2204", {"feedetail": True}), "input.feedetail")
    # amounts past any sane size
    for amount in ("1e999999", 1e20, "9999999999999.99"):
        refused(
            his.call(
                "2204", {"feedetail": [_line(his, mdtrt_id, psn_no, det_item_fee_sumamt=amount)]}
            ),
            "input.feedetail.0.det_item_fee_sumamt",
        )
    # a reconciliation ending in the year 9999
    refused(
        his.call("3201", _statement(his, stmt_enddate="9999-12-31 23:59:59")),
        "input.data.stmt_enddate",
    )
    # a visit in the year 1
    reg = {
        "psn_no": psn_no,
        "begntime": "0001-01-01 00:00:00",
        "mdtrt_cert_type": "03",
        "mdtrt_cert_no": zhang["card_no"],
    }
    refused(his.call("2201", {"data": reg}), "input.data.begntime")
    # an electronic voucher's token with a non-ASCII character
    refused(
        his.call("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": "YB1.1.2.3.é"}}),
        "input.data.mdtrt_cert_no",
    )
    # a signature ending in a non-ASCII byte: "signature invalid", not authentic
    body = json.dumps(
        his.envelope("1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": zhang["card_no"]}})
    ).encode()
    headers = his.headers(body)
    headers["x-tif-signature"] = headers["x-tif-signature"][:-1] + "\xe9"
    r = his.client.post(
        ENDPOINT, content=body, headers={k: v.encode("latin-1") for k, v in headers.items()}
    )
    assert r.status_code == 200
    answer = r.json()
    assert answer["infcode"] == -1 and "x-tif-signature does not match" in answer["err_msg"]


def test_an_electronic_voucher_with_a_non_ascii_token_is_refused_by_the_service(
    services: Any, demo: dict[str, Any]
) -> None:
    """The voucher's own reading refuses it too, whoever calls it."""
    from yibao.domain.errors import DomainError
    from yibao.services.cards import evoucher

    with services.uow() as u, pytest.raises(DomainError) as refusal:
        evoucher.redeem(u, token="YB1.1.2.3.é", institution="H33050200001")
    assert refusal.value.field == "mdtrt_cert_no" and "voucher" in refusal.value.en


# ---------------------------------------------------- code tables


@pytest.mark.parametrize("value", [["11"], {"code": "11"}, True, "99", "１１"])
def test_med_type_takes_only_its_codes_and_nothing_is_stored(
    his: His, demo: dict[str, Any], services: Any, value: Any
) -> None:
    """Before, "med_type": ["11"] registered a visit of med_type "['11']"."""
    zhang = demo["persons"][0]
    psn_no = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
    data = {
        "psn_no": psn_no,
        "begntime": his.clock.now().strftime("%Y-%m-%d %H:%M:%S"),
        "mdtrt_cert_type": "03",
        "mdtrt_cert_no": zhang["card_no"],
        "med_type": value,
    }
    err = refused(his.call("2201", {"data": data}), "input.data.med_type")
    assert "11" in err and "41" in err  # the codes it takes
    with services.uow() as u:
        assert u.session.execute(select(Visit.id)).first() is None


@pytest.mark.parametrize(
    ("infno", "field", "value"),
    [
        ("2201", "insutype", "999"),
        ("2201", "insutype", ["310"]),
        ("2201", "mdtrt_cert_type", "04"),
        ("1101", "psn_cert_type", "02"),
        ("2207", "psn_setlway", "03"),
        ("2207", "acct_used_flag", "2"),
        ("2207", "acct_used_flag", True),
        ("3201", "clr_type", "99"),
        ("2203", "diag_type", "9"),
        ("2203", "diag_code", "上呼吸道感染"),
        ("2203", "diag_code", "J06 900"),
        ("2203", "diag_code", "123"),
    ],
)
def test_code_fields_take_only_their_codes(
    his: His, demo: dict[str, Any], infno: str, field: str, value: Any
) -> None:
    zhang = demo["persons"][0]
    psn_no, mdtrt_id = _visit(his, zhang)
    now = his.clock.now().strftime("%Y-%m-%d %H:%M:%S")
    card = {"mdtrt_cert_type": "03", "mdtrt_cert_no": zhang["card_no"]}
    if infno == "2201":
        inp = {"data": {"psn_no": psn_no, "begntime": now, **card, field: value}}
        path = f"input.data.{field}"
    elif infno == "1101":
        inp = {"data": {**card, field: value}}
        path = f"input.data.{field}"
    elif infno == "2207":
        inp = his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "20.00")
        inp["data"][field] = value
        path = f"input.data.{field}"
    elif infno == "3201":
        inp = _statement(his, **{field: value})
        path = f"input.data.{field}"
    else:
        diagnosis = {"diag_type": "1", "diag_code": "J06.900", "diag_name": "急性上呼吸道感染"}
        inp = {
            "mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": psn_no},
            "diseinfo": [{**diagnosis, field: value}],
        }
        path = f"input.diseinfo.0.{field}"
    refused(his.call(infno, inp), path)


def test_a_diagnosis_code_has_the_form_of_its_type(his: His, demo: dict[str, Any]) -> None:
    """ICD-10 for a western medicine diagnosis (1), the TCM classification's
    form for a TCM one (2, 3)."""
    zhang = demo["persons"][0]
    psn_no, mdtrt_id = _visit(his, zhang)
    info = {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "med_type": "11"}
    diagnoses = [
        {"diag_type": "1", "diag_code": "J06.900", "diag_name": "急性上呼吸道感染"},
        {"diag_type": "1", "diag_code": "I10.x00x002", "diag_name": "高血压"},
        {"diag_type": "2", "diag_code": "BNW010", "diag_name": "感冒"},
        {"diag_type": "3", "diag_code": "ZBRGC0", "diag_name": "风寒证"},
    ]
    assert his.call("2203", {"mdtrtinfo": info, "diseinfo": diagnoses})["infcode"] == 0


# ---------------------------------------------------- amounts and 2204


@pytest.mark.parametrize("amount", ["１２３", "１２３.００", "2０.00", "٢٠"])
def test_amounts_take_ascii_digits_only(his: His, demo: dict[str, Any], amount: str) -> None:
    zhang = demo["persons"][0]
    psn_no, mdtrt_id = _visit(his, zhang)
    inp = his.settle_input(mdtrt_id, psn_no, zhang["card_no"], amount)
    refused(his.call("2207", inp), "input.data.medfee_sumamt")
    refused(his.call("3201", _statement(his, acct_pay=amount)), "input.data.acct_pay")
    refused(
        his.call("2204", {"feedetail": [_line(his, mdtrt_id, psn_no, pric=amount)]}),
        "input.feedetail.0.pric",
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pric", "-1.00"),
        ("pric", -1),
        ("det_item_fee_sumamt", "-20.00"),
        ("fee_ocur_time", "2026-13-01 10:00:00"),
        ("fee_ocur_time", "9999-12-31 23:59:59"),
        ("fee_ocur_time", ["2026-11-23 10:00:00"]),
        ("fee_ocur_time", "2026-11-24 10:00:00"),  # tomorrow
        ("cnt", "abc"),
        ("cnt", 0),
        ("cnt", "-1"),
        ("cnt", "1e999999"),
        ("cnt", "１"),
        ("cnt", "0.00001"),
        ("feedetl_sn", ["F1"]),
        ("feedetl_sn", None),
        ("feedetl_sn", "F 1"),
        ("feedetl_sn", "Ｆ１"),
        ("feedetl_sn", "F" * 31),
        ("med_list_codg", {"code": "250101001"}),
        ("med_list_codg", None),
        ("med_list_codg", "２５０１０１００１"),
        ("mdtrt_id", 5.5),
        ("psn_no", "１"),
    ],
)
def test_a_fee_line_is_checked_field_by_field(
    his: His, demo: dict[str, Any], services: Any, field: str, value: Any
) -> None:
    """2204 checks fee_ocur_time, cnt, feedetl_sn and med_list_codg and
    refuses a negative pric; before, a negative pric was stored."""
    zhang = demo["persons"][0]
    psn_no, mdtrt_id = _visit(his, zhang)
    with services.uow() as u:
        before = len(u.session.execute(select(FeeDetail.id)).all())
    r = his.call("2204", {"feedetail": [_line(his, mdtrt_id, psn_no, **{field: value})]})
    refused(r, f"input.feedetail.0.{field}")
    with services.uow() as u:
        assert len(u.session.execute(select(FeeDetail.id)).all()) == before


def test_a_fee_line_of_half_a_box_is_kept_as_its_count(
    his: His, demo: dict[str, Any], services: Any
) -> None:
    zhang = demo["persons"][0]
    psn_no, mdtrt_id = _visit(his, zhang)
    out = his.ok(
        "2204", {"feedetail": [_line(his, mdtrt_id, psn_no, cnt="0.50", feedetl_sn="HALF")]}
    )
    assert out["result"][0]["cnt"] == "0.5"
    with services.uow() as u:
        cnt = u.session.execute(
            select(FeeDetail.cnt).where(FeeDetail.feedetl_sn == "HALF")
        ).scalar_one()
    assert cnt == "0.5"


# ---------------------------------------------------- 3201, 5203


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stmt_begndate", "2026-02-30"),
        ("stmt_begndate", "0001-01-01"),
        ("stmt_enddate", "2026-11-31"),
        ("stmt_enddate", "9999-12-31"),
        ("stmt_enddate", "2026-11-22"),  # before the start
        ("stmt_begndate", "２０２６-11-23"),
        ("stmt_begndate", 20261123),
        ("fixmedins_setl_cnt", 10**30),
        ("fixmedins_setl_cnt", "1e999999"),
        ("fixmedins_setl_cnt", -1),
    ],
)
def test_a_reconciliation_refuses_impossible_dates_and_counts(
    his: His, demo: dict[str, Any], field: str, value: Any
) -> None:
    refused(his.call("3201", _statement(his, **{field: value})), f"input.data.{field}")


def test_a_settlement_query_uses_the_mdtrt_id_it_is_sent(his: His, demo: dict[str, Any]) -> None:
    """Before, 5203 answered with the settlement whatever visit it named."""
    zhang = demo["persons"][0]
    psn_no, mdtrt_id = _visit(his, zhang)
    _, other_visit = _visit(his, zhang)
    setl_id = his.ok("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "20.00"))[
        "setlinfo"
    ]["setl_id"]
    q = {"setl_id": setl_id, "mdtrt_id": other_visit, "psn_no": psn_no}
    r = his.call("5203", {"data": q})
    assert r["infcode"] == -1 and r["err_msg"].startswith("mdtrt_id:"), r
    assert "mdtrt_id does not match" in r["err_msg"]
    refused(
        his.call("5203", {"data": {"setl_id": setl_id, "psn_no": psn_no}}), "input.data.mdtrt_id"
    )
    q["mdtrt_id"] = mdtrt_id
    assert his.ok("5203", {"data": q})["setlinfo"]["setl_id"] == setl_id


# ---------------------------------------------------- the envelope


def _post_env(his: His, infno: str, inp: dict[str, Any], /, **changed: Any) -> dict[str, Any]:
    env = {**his.envelope(infno, inp), **changed}
    body = json.dumps(env, ensure_ascii=False).encode()
    return his.post(body, his.headers(body))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("msgid", ["H33050200001202611231000000001"]),
        ("msgid", {"id": "H33050200001202611231000000001"}),
        ("msgid", "H" * 200_000),
        ("msgid", 330502202611231000000001),
        ("msgid", "H33050200002202611231000000001"),  # another institution's
        ("msgid", "H33050200001202613231000000001"),  # the 13th month
        ("msgid", "H3305020000120261123100000000１"),
        ("msgid", "H3305020000120261123100000001"),  # 29 characters
        ("msgid", "RETRY-1"),
        ("infno", ["1101"]),
        ("infno", "１１０１"),
        ("fixmedins_code", {"code": "H33050200001"}),
        ("fixmedins_code", "H3305020000１"),
        ("mdtrtarea_admvs", "33050"),
        ("mdtrtarea_admvs", "３３０５００"),
        ("insuplc_admdvs", ["330500"]),
        ("opter_type", "9"),
        ("inf_time", "9999-12-31 23:59:59"),
        ("inf_time", "2026-11-23T10:00:00Z"),
        ("opter", "x" * 31),
        ("opter_name", {"name": "收费员"}),
        ("cainfo", "x" * 4097),
        ("dev_safe_info", "x" * 2001),
        ("infver", ["V1.0"]),
        ("sign_no", ["x"]),
        ("sign_no", "签到号"),
        ("fixmedins_name", "医院\u0000"),
        ("input", ["data"]),
        ("input", None),
    ],
)
def test_the_envelope_fields_have_their_documented_types_and_lengths(
    his: His, demo: dict[str, Any], field: str, value: Any
) -> None:
    """Before, a msgid that was an array, an object or 200,000 characters
    was taken as the idempotency key."""
    card = {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": demo["persons"][0]["card_no"]}}
    err = refused(_post_env(his, "1101", card, **{field: value}), field)
    assert len(err) < 300  # the value is not echoed back


def test_a_msgid_of_the_documented_form_is_taken(his: His, demo: dict[str, Any]) -> None:
    card = {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": demo["persons"][0]["card_no"]}}
    msgid = signer.msgid(his.code, his.clock.now())
    assert len(msgid) == 30
    r = _post_env(his, "1101", card, msgid=msgid)
    assert r["infcode"] == 0 and r["inf_refmsgid"].endswith(msgid[-8:])


# ---------------------------------------------------- the gateway headers


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("x-tif-timestamp", "underscored", "x-tif-timestamp"),
        ("x-tif-timestamp", "signed", "x-tif-timestamp"),
        ("x-tif-nonce", "nonce\xe9", "x-tif-nonce"),
        ("x-tif-nonce", "n" * 101, "x-tif-nonce"),
        ("x-tif-paasid", "H" * 41, "x-tif-paasid"),
        ("x-tif-paasid", "H3305020000\xe9", "x-tif-paasid"),
    ],
)
def test_gateway_headers_of_another_form_are_not_authentic(
    his: His, demo: dict[str, Any], header: str, value: str, reason: str
) -> None:
    """Signed as an HIS would sign them: a timestamp that int() reads but
    that is not Unix seconds' digits was taken before, and an access id
    longer than its column was an internal error on PostgreSQL."""
    inp = {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": demo["persons"][0]["card_no"]}}
    body = json.dumps(his.envelope("1101", inp)).encode()
    ts = str(int(his.clock.now().timestamp()))
    # the right time, in digits int() also reads
    value = {"underscored": f"{ts[:4]}_{ts[4:]}", "signed": f"+{ts}"}.get(value, value)
    fields = {"x-tif-paasid": his.access_id, "x-tif-timestamp": ts, "x-tif-nonce": signer.nonce()}
    fields[header] = value
    headers = signer.headers(
        access_id=fields["x-tif-paasid"],
        secret=his.secret,
        timestamp=fields["x-tif-timestamp"],
        nonce=fields["x-tif-nonce"],
    )
    r = his.client.post(
        ENDPOINT, content=body, headers={k: v.encode("latin-1") for k, v in headers.items()}
    )
    assert r.status_code == 200
    answer = r.json()
    assert answer["infcode"] == -1 and reason in answer["err_msg"], answer
    assert not any(word in answer["err_msg"] for word in INTERNAL)


def test_a_malformed_message_is_refused_before_it_is_authenticated(
    his: His, demo: dict[str, Any]
) -> None:
    """The whole message is read first: its nonce stays unused, and the
    corrected message may be signed with it."""
    card = {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": demo["persons"][0]["card_no"]}}
    bad = json.dumps(his.envelope("1101", {"data": {**card["data"], "mdtrt_cert_type": 3.0}}))
    r = his.post(bad.encode(), his.headers(bad.encode(), nonce="n-malformed"))
    refused(r, "input.data.mdtrt_cert_type")
    good = json.dumps(his.envelope("1101", card)).encode()
    assert his.post(good, his.headers(good, nonce="n-malformed"))["infcode"] == 0


def test_a_body_that_is_not_json_is_refused_saying_where(his: His, demo: dict[str, Any]) -> None:
    """An amount of 1e999999 as a JSON number is past any double: the body is
    refused with the parser's reason and position, never the body itself."""
    env = his.envelope("2204", {"feedetail": []})
    body = json.dumps(env).replace('"feedetail": []', '"feedetail": 1e999999').encode()
    r = his.post(body, his.headers(body))
    err = refused(r, "body")
    assert "infinity" in err and "column" in err


def test_no_diagnoses_may_be_null(his: His, demo: dict[str, Any]) -> None:
    zhang = demo["persons"][0]
    psn_no, mdtrt_id = _visit(his, zhang)
    info = {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "med_type": "11"}
    assert his.call("2203", {"mdtrtinfo": info, "diseinfo": None})["infcode"] == 0


def test_the_clearing_type_answered_is_one_3201_takes(his: His, demo: dict[str, Any]) -> None:
    """A visit of med_type 14 (chronic disease) clears as outpatient (11):
    the answer's clr_type is a code of the table 3201 is sent."""
    zhang = demo["persons"][0]
    psn_no = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
    mdtrt_id = his.register(psn_no, zhang["card_no"], med_type="14")
    his.fees(mdtrt_id, psn_no, [("250101001", "20.00")])
    s = his.ok("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "20.00"))["setlinfo"]
    assert s["med_type"] == "14" and s["clr_type"] == "11"
    totals = _statement(
        his,
        clr_type=s["clr_type"],
        medfee_sumamt="20.00",
        fund_pay_sumamt=f"{s['fund_pay_sumamt']:.2f}",
        acct_pay=f"{s['acct_pay']:.2f}",
        fixmedins_setl_cnt=1,
    )
    assert his.ok("3201", totals)["stmtinfo"]["stmt_rslt"] == "0"
