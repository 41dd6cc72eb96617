"""Equipment failure (seed 000, part three, item 3): the person pays cash and
gets a receipt; after the repair the institution declares the failure, and
the visit is re-settled at the same institution, within the window, under
the visit date's rules, once. A second institution cannot record the same
cash visit as its own and charge the account again."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tests.his.client import His
from yibao.services.ledger import ledger
from yibao.store import auditlog
from yibao.store.models import AuditEntry, EquipmentFailure, Settlement, Visit

FAILURE = ("2026-11-10 14:00:00", "2026-11-10 18:00:00")


def _cash_visit(his: His, person: dict[str, Any], invono: str, begntime: str) -> tuple[str, str]:
    psn_no = his.person(person["card_no"])["baseinfo"]["psn_no"]
    mdtrt_id = his.register(
        psn_no, person["card_no"], begntime=begntime, cash_fallback="1", invono=invono
    )
    his.fees(mdtrt_id, psn_no, [("250101001", "500.00")])
    return psn_no, mdtrt_id


def _record(his: His, person: dict[str, Any], psn_no: str, begntime: str, invono: str) -> Any:
    return his.call(
        "2201",
        {
            "data": {
                "psn_no": psn_no,
                "begntime": begntime,
                "mdtrt_cert_type": "03",
                "mdtrt_cert_no": person["card_no"],
                "cash_fallback": "1",
                "invono": invono,
            }
        },
    )


def _balance(services: Any, psn_no: str) -> int:
    with services.uow() as u:
        return ledger.individual_balance(u.session, int(psn_no))


def test_a_cash_visit_is_resettled_once_and_the_refund_is_owed(
    his: His, demo: dict[str, Any], services: Any
) -> None:
    zhang = demo["persons"][0]
    his.declare_failure(*FAILURE)
    psn_no, mdtrt_id = _cash_visit(his, zhang, "INV-0001", "2026-11-10 15:30:00")
    before = _balance(services, psn_no)
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
    r = _record(his, zhang, psn_no, "2026-11-10 15:30:00", "INV-0001")
    assert r["infcode"] == -1 and "receipt" in r["err_msg"]


def test_a_cash_visit_is_recorded_only_inside_a_declared_failure_of_its_institution(
    his: His, pharmacy: His, demo: dict[str, Any], services: Any
) -> None:
    zhang = demo["persons"][0]
    psn_no = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
    # no failure declared: refused, naming the time
    r = _record(his, zhang, psn_no, "2026-11-10 15:30:00", "INV-NOFAIL")
    assert r["infcode"] == -1 and "begntime" in r["err_msg"] and "declared" in r["err_msg"]
    # another institution's failure does not count
    pharmacy.declare_failure(*FAILURE)
    r = _record(his, zhang, psn_no, "2026-11-10 15:30:00", "INV-NOFAIL")
    assert r["infcode"] == -1 and "declared" in r["err_msg"]
    # its own, but the visit is outside it
    failure = his.declare_failure(*FAILURE)["data"]
    r = _record(his, zhang, psn_no, "2026-11-10 18:01:00", "INV-NOFAIL")
    assert r["infcode"] == -1 and "declared" in r["err_msg"]
    assert his.ok(
        "2201",
        {
            "data": {
                "psn_no": psn_no,
                "begntime": "2026-11-10 15:30:00",
                "mdtrt_cert_type": "03",
                "mdtrt_cert_no": zhang["card_no"],
                "cash_fallback": "1",
                "invono": "INV-INSIDE",
            }
        },
    )["data"]["mdtrt_id"]
    with services.uow() as u:
        visit = u.session.execute(select(Visit).where(Visit.invono == "INV-INSIDE")).scalar_one()
        assert visit.equipment_failure_id == int(failure["failure_id"])


def test_a_second_institution_cannot_record_and_resettle_the_same_cash_visit(
    his: His, pharmacy: His, demo: dict[str, Any], services: Any
) -> None:
    """The double charge the issue found: a second institution records the
    first one's cash visit as its own (same person, same time, the first
    one's receipt number), even with a failure of its own declared."""
    zhang = demo["persons"][0]
    his.declare_failure(*FAILURE)
    psn_no, mdtrt_id = _cash_visit(his, zhang, "INV-0100", "2026-11-10 15:30:00")
    pharmacy.declare_failure(*FAILURE)
    for begntime in ("2026-11-10 15:30:00", "2026-11-10 15:30:40"):
        r = _record(pharmacy, zhang, psn_no, begntime, "INV-0100")
        assert r["infcode"] == -1 and "begntime" in r["err_msg"] and "at this time" in r["err_msg"]
    # the recording institution's own receipt only, and only it re-settles
    r = pharmacy.call("2207", pharmacy.settle_input(mdtrt_id, psn_no, zhang["card_no"], "500.00"))
    assert r["infcode"] == -1 and "another institution" in r["err_msg"]
    before = _balance(services, psn_no)
    s = his.ok("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "500.00"))["setlinfo"]
    assert _balance(services, psn_no) == before - round(s["acct_pay"] * 100)
    # also after it was settled: the same time is taken
    r = _record(pharmacy, zhang, psn_no, "2026-11-10 15:30:00", "INV-PHARM-1")
    assert r["infcode"] == -1 and "at this time" in r["err_msg"]
    with services.uow() as u:
        assert u.session.execute(select(func.count()).select_from(Settlement)).scalar_one() == 1
        assert ledger.check(u.session).ok


def test_the_database_keeps_one_receipt_and_one_resettlement(
    his: His, demo: dict[str, Any], services: Any
) -> None:
    """The unique indexes behind the rules: a receipt per institution, a
    re-settlement per cash visit (even after its cancel)."""
    zhang = demo["persons"][0]
    his.declare_failure(*FAILURE)
    psn_no, mdtrt_id = _cash_visit(his, zhang, "INV-0200", "2026-11-10 15:30:00")
    s = his.ok("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "500.00"))["setlinfo"]
    his.ok("2208", {"data": {"setl_id": s["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": psn_no}})
    with services.uow() as u:
        visit = u.session.execute(select(Visit).where(Visit.mdtrt_id == mdtrt_id)).scalar_one()
        settled = u.session.execute(select(Settlement)).scalar_one()
        copy = {
            c.name: getattr(settled, c.name) for c in Settlement.__table__.columns if c.name != "id"
        }
        u.session.add(Settlement(**{**copy, "setl_id": "ST-AGAIN", "status": "settled"}))
        with pytest.raises(IntegrityError):
            u.session.flush()
        u.rollback()
        receipt = {
            c.name: getattr(visit, c.name) for c in Visit.__table__.columns if c.name != "id"
        }
        u.session.add(Visit(**{**receipt, "mdtrt_id": "MD-AGAIN"}))
        with pytest.raises(IntegrityError):
            u.session.flush()


def test_an_equipment_failure_is_declared_after_the_repair_once_per_msgid(
    his: His, demo: dict[str, Any], services: Any, clock: Any
) -> None:
    now = clock.now()
    fmt = "%Y-%m-%d %H:%M:%S"
    bad = [
        (("2026-11-10 18:00:00", "2026-11-10 14:00:00", "x"), "input.data.end"),
        ((now.strftime(fmt), (now + dt.timedelta(hours=1)).strftime(fmt), "x"), "future"),
        (("2026-11-10 14:00:00", "2026-11-10 18:00:00", " "), "input.data.reason"),
        (("2026-08-01 14:00:00", "2026-08-01 18:00:00", "x"), "window"),
    ]
    for (start, end, reason), named in bad:
        r = his.call("9901", {"data": {"begntime": start, "endtime": end, "reason": reason}})
        assert r["infcode"] == -1 and named in r["err_msg"], r["err_msg"]
    msgid = his.msgid()
    inp = {"data": {"begntime": FAILURE[0], "endtime": FAILURE[1], "reason": "读卡器故障"}}
    first = his.ok("9901", inp, msgid=msgid)
    assert his.ok("9901", inp, msgid=msgid) == first
    assert first["data"] == {
        "failure_id": first["data"]["failure_id"],
        "begntime": FAILURE[0],
        "endtime": FAILURE[1],
    }
    with services.uow() as u:
        rows = u.session.execute(select(EquipmentFailure)).scalars().all()
        assert [(r.institution_code, r.reason, r.channel) for r in rows] == [
            (his.code, "读卡器故障", "his")
        ]
        assert u.session.execute(
            select(AuditEntry.actor_id).where(AuditEntry.action == "equipment_failure.declare")
        ).scalars().all() == [his.code]


def test_staff_of_the_area_declare_and_list_equipment_failures(
    client: Any, token_for: Any, his: His, demo: dict[str, Any], services: Any
) -> None:
    code = his.code
    url = f"/api/v1/institutions/{code}/equipment-failures"
    body = {
        "start": "2026-11-10T14:00:00+08:00",
        "end": "2026-11-10T18:00:00+08:00",
        "reason": "网络中断",
    }
    # a county clerk may not manage institutions
    r = client.post(url, json=body, headers=token_for("wuxing"))
    assert r.status_code == 403, r.text
    r = client.post(url, json=body, headers=token_for("admin"))
    assert r.status_code == 201, r.text
    declared = r.json()
    assert declared["institution_code"] == code and declared["channel"] == "api"
    assert declared["declared_by"] == "staff:admin"
    # staff of the area see it; another county's staff do not see the institution
    assert client.get(url, headers=token_for("wuxing")).json() == [declared]
    r = client.get(url, headers=token_for("nanxun"))
    assert r.status_code == 404, r.text
    r = client.post(
        url, json={**body, "end": "2026-11-10T13:00:00+08:00"}, headers=token_for("admin")
    )
    assert r.status_code == 422 and r.json()["field"] == "end"
    # a cash visit inside it may now be recorded
    zhang = demo["persons"][0]
    psn_no = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
    assert _record(his, zhang, psn_no, "2026-11-10 16:00:00", "INV-API")["infcode"] == 0
    with services.uow() as u:
        audited = u.session.execute(
            select(AuditEntry.actor_id, AuditEntry.channel, AuditEntry.subject).where(
                AuditEntry.action == "equipment_failure.declare"
            )
        ).all()
        assert [tuple(a) for a in audited] == [("admin", "api", code)]
        assert auditlog.verify(u.session).ok


def test_resettlement_only_within_the_window(his: His, demo: dict[str, Any], clock: Any) -> None:
    zhang = demo["persons"][0]
    old = (clock.now() - dt.timedelta(days=91)).strftime("%Y-%m-%d %H:%M:%S")
    psn_no = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
    r = _record(his, zhang, psn_no, old, "INV-OLD")
    assert r["infcode"] == -1 and "window" in r["err_msg"]
    # recorded in time, re-settled too late
    start = clock.now() - dt.timedelta(days=89, hours=1)
    his.declare_failure(
        start.strftime("%Y-%m-%d %H:%M:%S"),
        (start + dt.timedelta(hours=3)).strftime("%Y-%m-%d %H:%M:%S"),
    )
    psn_no, mdtrt_id = _cash_visit(
        his, zhang, "INV-0003", (clock.now() - dt.timedelta(days=89)).strftime("%Y-%m-%d %H:%M:%S")
    )
    clock.advance(dt.timedelta(days=2))
    his.sign_in()
    r = his.call("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "500.00"))
    assert r["infcode"] == -1 and "window" in r["err_msg"]


def test_resettlement_uses_the_rules_of_the_visit_year(
    his: His, demo: dict[str, Any], clock: Any, services: Any
) -> None:
    from yibao.clock import CHINA
    from yibao.domain.actors import Actor, Channel
    from yibao.services.settlement import policy

    # a visit on 28 December, re-settled on 5 January: 2026's policy applies
    clock.set(dt.datetime(2026, 12, 28, 12, 0, tzinfo=CHINA))
    zhang = demo["persons"][0]
    his.sign_in()
    his.declare_failure("2026-12-28 08:00:00", "2026-12-28 11:00:00")
    psn_no, mdtrt_id = _cash_visit(his, zhang, "INV-YEAR", "2026-12-28 09:00:00")
    policy.set_policy(
        services.uow(),
        actor=Actor.system(),
        channel=Channel.CLI,
        insutype="310",
        area="330500",
        year=2027,
        deductible=0,
        fund_cap=10**9,
        ratios={"3": 10000},
    )
    clock.set(dt.datetime(2027, 1, 5, 10, 0, tzinfo=CHINA))
    his.sign_in()
    out = his.ok("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "500.00"))
    assert out["setlinfo"]["act_pay_dedc"] == 300.00 and out["setlinfo"]["hifp_pay"] == 150.00
