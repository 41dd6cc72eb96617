"""The dashboard's data set, made through the real HIS interface and services
(issue 17): settlements at two institutions of different levels in two
counties, a refused settlement, a reconciliation that differs, a card past
its deadline, an enrolment review past its day, a terminal's and a
telephone call's. The demo city already has an employer in arrears
(南浔木业, three months, 3,240.00 yuan)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from tests.db.test_counter_15 import submit
from tests.his.client import His
from yibao.domain.actors import Actor, Channel
from yibao.domain.use import Presenter
from yibao.services.inquiry import dialog
from yibao.services.inquiry.summary import account_summary
from yibao.store.models import CardApplication

# the lines of every visit: 10.00 + 286.00 + 5.00 + 400.00
LINES = [
    ("001101000010000", "10.00"),
    ("XA02BCA211E001", "286.00"),
    ("C00000000001", "5.00"),
    ("250101001", "400.00"),
]
TOTAL = "701.00"


@dataclass
class Settled:
    institution: str
    level: str
    county: str
    medfee: int
    fund: int
    acct: int
    cash: int


@dataclass
class DataSet:
    settled: list[Settled] = field(default_factory=list)
    refusal_code: str = ""


def fen(value: Any) -> int:
    return round(float(value) * 100)


def open_visit(his: His, person: dict[str, Any]) -> tuple[str, str]:
    psn_no = his.person(person["card_no"])["baseinfo"]["psn_no"]
    mdtrt_id = his.register(psn_no, person["card_no"])
    his.fees(mdtrt_id, psn_no, LINES)
    return psn_no, mdtrt_id


def settle(his: His, person: dict[str, Any], visit: tuple[str, str]) -> dict[str, Any]:
    psn_no, mdtrt_id = visit
    out: dict[str, Any] = his.ok(
        "2207", his.settle_input(mdtrt_id, psn_no, person["card_no"], TOTAL)
    )["setlinfo"]
    return out


def settled(inst: dict[str, Any], out: dict[str, Any]) -> Settled:
    return Settled(
        inst["code"],
        inst["level"],
        inst["division"],
        fen(out["medfee_sumamt"]),
        fen(out["fund_pay_sumamt"]),
        fen(out["acct_pay"]),
        fen(out["psn_cash_pay"]),
    )


def build(client: Any, demo: dict[str, Any], uow: Any, clock: Any) -> DataSet:
    data = DataSet()
    central, nanxun = demo["institutions"][0], demo["institutions"][2]
    # Nanxun's insured are suspended for their employer's arrears: a Wuxing
    # person is treated at Nanxun's hospital (one pool in the city)
    zhang, wang, li = demo["persons"][0], demo["persons"][1], demo["persons"][2]
    his_a, his_b = His(client, central, clock), His(client, nanxun, clock)
    his_a.sign_in()
    his_b.sign_in()
    visit = open_visit(his_a, zhang)
    data.settled.append(settled(central, settle(his_a, zhang, visit)))
    data.settled.append(settled(nanxun, settle(his_b, wang, open_visit(his_b, wang))))
    # the same visit settled again, under another msgid: refused
    again = his_a.call("2207", his_a.settle_input(visit[1], visit[0], zhang["card_no"], TOTAL))
    assert again["infcode"] == -1, again
    assert "已结算" in again["err_msg"]
    data.refusal_code = "visit.settled"
    # the central hospital's statement of the day counts 1.00 more than ours
    a = data.settled[0]
    his_a.ok(
        "3201",
        {
            "data": {
                "insutype": "310",
                "clr_type": "11",
                "setl_optins": "330502",
                "stmt_begndate": "2026-11-23",
                "stmt_enddate": "2026-11-23",
                "medfee_sumamt": f"{(a.medfee + 100) / 100:.2f}",
                "fund_pay_sumamt": f"{a.fund / 100:.2f}",
                "acct_pay": f"{a.acct / 100:.2f}",
                "fixmedins_setl_cnt": 1,
            }
        },
    )
    # an inquiry at the central hospital's terminal, one on the telephone
    terminal = Actor(kind="terminal", id="T-HZZX-01", division="330502")
    account_summary(
        uow,
        actor=terminal,
        channel=Channel.KIOSK,
        presenter=Presenter.HOLDER,
        card_no=zhang["card_no"],
    )
    # a call: 普通话, balance, Li Na's ID number, her telephone PIN
    call_id = f"CA-dashboard-{li['certno'][-4:]}"
    dialog.start_call(uow, call_id=call_id, caller="+8613800000000", platform="sim")
    for keys in ("1", "1", li["certno"].replace("X", "*") + "#", li["phone_pin"] + "#"):
        dialog.step(uow, call_id=call_id, digits=keys)
    # an enrolment application at Wuxing's Yuehe service point, filed today
    submit(uow)
    return data


def card_due(uow: Any) -> dt.date:
    """The due day of the demo applicant's card (applied at the Yuehe service point)."""
    with uow:
        due = uow.session.execute(
            select(CardApplication.due_date).where(CardApplication.division_code == "330502001")
        ).scalar_one()
    assert isinstance(due, dt.date)
    return due
