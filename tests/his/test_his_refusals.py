"""Refusals: bad card and person states, foreign visits, other areas,
unknown infno and missing fields. Every one is infcode -1 with the reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from tests.helpers import SYSTEM, WUXING, add_person
from tests.his.client import His
from yibao import demo as demo_service
from yibao.domain.actors import Channel
from yibao.services.cards import cards
from yibao.services.contributions import contributions
from yibao.services.ledger import ledger
from yibao.services.settlement import offsite, policy
from yibao.store.models import Person


def _settle_ready(his: His, person: dict[str, Any]) -> tuple[str, str]:
    psn_no = his.person(person["card_no"])["baseinfo"]["psn_no"]
    mdtrt_id = his.register(psn_no, person["card_no"])
    his.fees(mdtrt_id, psn_no, [("250101001", "20.00")])
    return psn_no, mdtrt_id


@pytest.mark.parametrize(
    ("action", "reason"),
    [("lost", "lost"), ("frozen", "frozen"), ("cancelled", "cancelled")],
)
def test_a_card_that_is_not_active_is_refused(
    his: His, demo: dict[str, Any], services: Any, action: str, reason: str
) -> None:
    zhang = demo["persons"][0]
    psn_no, mdtrt_id = _settle_ready(his, zhang)
    u = services.uow()
    holder = {"person_id": int(psn_no), "card_no": zhang["card_no"]}
    if action == "lost":
        cards.report_lost(u, actor=WUXING, channel=Channel.COUNTER, **holder)
    elif action == "frozen":
        cards.freeze(u, actor=WUXING, channel=Channel.COUNTER, reason="可疑", **holder)
    else:
        cards.cancel_card(u, actor=WUXING, channel=Channel.COUNTER, reason="注销", **holder)
    r = his.call("1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": zhang["card_no"]}})
    assert r["infcode"] == -1 and f"the card is {reason}" in r["err_msg"]
    r = his.call("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "20.00"))
    assert r["infcode"] == -1 and f"the card is {reason}" in r["err_msg"]
    with services.uow() as u:
        assert ledger.check(u.session).ok


@pytest.mark.parametrize(
    ("status", "reason"),
    [("deceased", "has died"), ("emigrated", "emigrated"), ("transferred_out", "transferred out")],
)
def test_a_person_whose_insurance_ended_is_refused(
    his: His, demo: dict[str, Any], services: Any, status: str, reason: str
) -> None:
    zhang = demo["persons"][0]
    with services.uow() as u:
        person = u.session.execute(
            select(Person).where(Person.certno == zhang["certno"])
        ).scalar_one()
        person.status = status
        u.commit()
    r = his.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": zhang["certno"]}})
    assert r["infcode"] == -1 and reason in r["err_msg"]


def test_a_terminated_enrolment_is_refused(his: His, demo: dict[str, Any], services: Any) -> None:
    zhang = demo["persons"][0]
    psn_no, mdtrt_id = _settle_ready(his, zhang)
    with services.uow() as u:
        e = contributions.current_enrolment(u.session, int(psn_no))
        assert e is not None
        contributions.terminate(u, e, day=dt.date(2026, 11, 22), reason="test")
        u.commit()
    r = his.call("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "20.00"))
    assert r["infcode"] == -1 and "insurance has ended" in r["err_msg"]


def test_a_suspended_person_is_refused(his: His, demo: dict[str, Any]) -> None:
    # 李娜's employer is three months in arrears: her benefits are suspended
    li = demo["persons"][2]
    info = his.person(li["card_no"])
    assert info["insuinfo"][0]["psn_insu_stas"] == "2"
    r = his.call(
        "2201",
        {
            "data": {
                "psn_no": info["baseinfo"]["psn_no"],
                "begntime": "2026-11-23 09:00:00",
                "mdtrt_cert_type": "03",
                "mdtrt_cert_no": li["card_no"],
            }
        },
    )
    assert r["infcode"] == -1 and "suspended" in r["err_msg"]


def test_a_person_of_another_area_needs_a_cross_area_filing(
    his: His, demo: dict[str, Any], services: Any
) -> None:
    with services.uow() as u:
        contributions.set_rule(
            u,
            actor=SYSTEM,
            channel=Channel.CLI,
            area="320500",
            year=2026,
            insutype="310",
            **demo_service.RULE,
        )
        u.commit()
    suzhou = add_person(services.uow(), division="320508", name="苏州人")
    data = {
        "psn_no": str(suzhou.id),
        "begntime": "2026-11-23 09:00:00",
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": suzhou.certno,
    }
    r = his.call("2201", {"data": data})
    assert r["infcode"] == -1 and "cross-area filing" in r["err_msg"]
    offsite.file(
        services.uow(),
        actor=SYSTEM,
        channel=Channel.CLI,
        person_id=suzhou.id,
        kind="living",
        visit_area="330500",
        start=dt.date(2026, 11, 1),
    )
    policy.set_policy(
        services.uow(),
        actor=SYSTEM,
        channel=Channel.CLI,
        insutype="310",
        area="320500",
        year=2026,
        deductible=0,
        fund_cap=10**9,
        ratios={"3": 9000},
    )
    mdtrt_id = his.ok("2201", {"data": data})["data"]["mdtrt_id"]
    his.fees(mdtrt_id, str(suzhou.id), [("250101001", "100.00")])
    inp = his.settle_input(mdtrt_id, str(suzhou.id), suzhou.certno, "100.00")
    inp["data"]["mdtrt_cert_type"] = "02"
    out = his.ok("2207", inp)
    # the insured area's policy (Suzhou, 90 %), the visit area's catalogue
    assert out["setlinfo"]["hifp_pay"] == 90.00


def test_another_institutions_visit_is_refused_and_unchanged(
    his: His, pharmacy: His, demo: dict[str, Any], services: Any
) -> None:
    zhang = demo["persons"][0]
    psn_no, mdtrt_id = _settle_ready(his, zhang)
    r = pharmacy.call("2207", pharmacy.settle_input(mdtrt_id, psn_no, zhang["card_no"], "20.00"))
    assert r["infcode"] == -1 and "another institution" in r["err_msg"]
    r = pharmacy.call("2202", {"data": {"psn_no": psn_no, "mdtrt_id": mdtrt_id}})
    assert r["infcode"] == -1 and "another institution" in r["err_msg"]
    out = his.ok("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "20.00"))
    setl_id = out["setlinfo"]["setl_id"]
    for infno in ("5203", "2208"):
        r = pharmacy.call(
            infno, {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": psn_no}}
        )
        assert r["infcode"] == -1 and "another institution" in r["err_msg"]
    his.ok("5203", {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": psn_no}})


def test_the_total_must_match_the_fee_details(his: His, demo: dict[str, Any]) -> None:
    zhang = demo["persons"][0]
    psn_no, mdtrt_id = _settle_ready(his, zhang)
    r = his.call("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "21.00"))
    assert r["infcode"] == -1 and "medfee_sumamt" in r["err_msg"]


def test_unknown_infno_and_missing_fields_are_named(his: His, demo: dict[str, Any]) -> None:
    r = his.call("9999", {"data": {}})
    assert r["infcode"] == -1 and "9999" in r["err_msg"]
    r = his.call("1101", {"data": {"mdtrt_cert_type": "03"}})
    assert r["infcode"] == -1 and "mdtrt_cert_no" in r["err_msg"]
    r = his.call("2207", {"nodata": 1})
    assert r["infcode"] == -1 and "input.data" in r["err_msg"]
    import json

    env = his.envelope("1101", {"data": {}})
    del env["msgid"]
    body = json.dumps(env).encode()
    r = his.post(body, his.headers(body))
    assert r["infcode"] == -1 and "msgid" in r["err_msg"]
    r = his.post(b"not json", his.headers(b"not json"))
    assert r["infcode"] == -1 and "JSON" in r["err_msg"]


def test_the_infno_may_be_appended_to_the_path(his: His, demo: dict[str, Any]) -> None:
    from tests.his.client import ENDPOINT

    r = his.call(
        "1101",
        {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": demo["persons"][0]["card_no"]}},
        path=f"{ENDPOINT}/1101",
    )
    assert r["infcode"] == 0


def test_business_codes_need_a_sign_in(client: Any, demo: dict[str, Any], clock: Any) -> None:
    h = His(client, demo["institutions"][1], clock)
    r = h.call(
        "1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": demo["persons"][0]["card_no"]}}
    )
    assert r["infcode"] == -1 and "sign_no" in r["err_msg"]
    other = His(client, demo["institutions"][0], clock)
    h.sign_no = other.sign_in()  # another institution's sign-in does not count
    r = h.call(
        "1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": demo["persons"][0]["card_no"]}}
    )
    assert r["infcode"] == -1 and "sign_no" in r["err_msg"]
