"""Family mutual aid at settlement (issue 16): with ``acct_used_flag`` 1 a
relative's own account pays first, then the bound holders' accounts in the
relative's order, never below zero, exact to the fen; ``acct_mulaid_pay``
says what holders paid, one ledger entry shows whose account paid for whom,
and 2208 reverses it exactly, once. On PostgreSQL the fast path gives such
a settlement to the general path."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.helpers import WUXING
from tests.his.apps import his_app
from tests.his.client import His
from yibao.domain import ledger as codes
from yibao.domain.actors import Channel
from yibao.services.family import family
from yibao.services.ledger import ledger
from yibao.store.models import FamilyPayment, LedgerAccount, LedgerEntry, Person, Posting

# a fully self-paid item (category C): the whole amount is the person's part
SELF_PAID = "C00000000001"


def _id(services: Any, certno: str) -> int:
    with services.uow() as u:
        return int(u.session.execute(select(Person.id).where(Person.certno == certno)).scalar_one())


def _balance(services: Any, person_id: int) -> int:
    with services.uow() as u:
        return ledger.individual_balance(u.session, person_id)


def _bind_at_counter(services: Any, holder: dict[str, Any], relative: dict[str, Any]) -> int:
    return family.bind(
        services.uow(),
        actor=WUXING,
        channel=Channel.COUNTER,
        holder_id=_id(services, holder["certno"]),
        certno=relative["certno"],
        name=relative["name"],
        relation="spouse",
        relative_document="id_card",
    ).id


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _fen(setlinfo: dict[str, Any], *names: str) -> tuple[int, ...]:
    """The answer's amounts (yuan on the wire) in fen."""
    return tuple(round(setlinfo[n] * 100) for n in names)


def _visit(his: His, person: dict[str, Any], psn_no: str, amount: int) -> str:
    mdtrt_id = his.register(psn_no, person["card_no"])
    his.fees(mdtrt_id, psn_no, [(SELF_PAID, _yuan(amount))])
    return mdtrt_id


@pytest.fixture
def family_of_wang(services: Any, demo: dict[str, Any]) -> dict[str, Any]:
    """王芳 (the relative) with two bound holders: 张伟 first, 陈静 second."""
    zhang, wang, chen = demo["persons"][0], demo["persons"][1], demo["persons"][4]
    _bind_at_counter(services, zhang, wang)
    _bind_at_counter(services, chen, wang)
    ids = {
        k: _id(services, p["certno"]) for k, p in (("zhang", zhang), ("wang", wang), ("chen", chen))
    }
    return {"wang": wang, "ids": ids, "before": {k: _balance(services, v) for k, v in ids.items()}}


def test_own_account_first_then_the_holders_in_order(
    his: His, services: Any, app: Any, backend: str, family_of_wang: dict[str, Any]
) -> None:
    wang, ids, before = family_of_wang["wang"], family_of_wang["ids"], family_of_wang["before"]
    psn_no = str(ids["wang"])
    # the own account and 张伟's all, and 12.34 yuan of 陈静's
    amount = before["wang"] + before["zhang"] + 1234
    mdtrt_id = _visit(his, wang, psn_no, amount)
    inp = his.settle_input(mdtrt_id, psn_no, wang["card_no"], _yuan(amount))

    pre = his.ok("2206", inp)["setlinfo"]
    assert _fen(pre, "acct_pay", "acct_mulaid_pay", "psn_cash_pay") == (
        before["wang"],
        before["zhang"] + 1234,
        0,
    )
    assert _balance(services, ids["zhang"]) == before["zhang"]  # 2206 pays nothing

    fast = getattr(app.state, "his_fast", None)
    gave_way = fast.gave_way if fast else 0
    msgid = his.msgid()
    out = his.ok("2207", inp, msgid=msgid)["setlinfo"]
    if backend == "postgresql":
        assert fast is not None and fast.gave_way == gave_way + 1
    assert _fen(out, "acct_pay", "acct_mulaid_pay", "psn_cash_pay", "balc") == (
        before["wang"],
        before["zhang"] + 1234,
        0,
        0,
    )
    assert _fen(out, "psn_part_amt") == (amount,)
    assert [_balance(services, ids[k]) for k in ("wang", "zhang", "chen")] == [
        0,
        0,
        before["chen"] - 1234,
    ]
    # a resend of the same msgid gets the first answer and moves nothing
    assert his.ok("2207", inp, msgid=msgid)["setlinfo"] == out
    assert _balance(services, ids["chen"]) == before["chen"] - 1234

    with services.uow() as u:
        entries = list(
            u.session.execute(
                select(LedgerEntry).where(LedgerEntry.idem_key == f"his:{his.code}:{msgid}")
            ).scalars()
        )
        assert len(entries) == 1
        entry = entries[0]
        assert entry.person_id == ids["wang"] and "家庭共济" in entry.memo
        legs = {
            (code, pid): amount
            for code, pid, amount in u.session.execute(
                select(LedgerAccount.code, Posting.person_id, Posting.amount)
                .join(LedgerAccount, LedgerAccount.id == Posting.account_id)
                .where(Posting.entry_id == entry.id)
            )
        }
        assert legs[(codes.individual(ids["zhang"]), ids["zhang"])] == -before["zhang"]
        assert legs[(codes.individual(ids["chen"]), ids["chen"])] == -1234
        assert legs[(codes.individual(ids["wang"]), ids["wang"])] == -before["wang"]
        paid = [
            (r.holder_id, r.relative_id, r.amount)
            for r in u.session.execute(select(FamilyPayment).order_by(FamilyPayment.id)).scalars()
        ]
        assert paid == [
            (ids["zhang"], ids["wang"], before["zhang"]),
            (ids["chen"], ids["wang"], 1234),
        ]
        assert ledger.check(u.session).ok

    # 2208 reverses it exactly, once
    ref = {"data": {"setl_id": out["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": psn_no}}
    cancel_msgid = his.msgid()
    cancelled = his.ok("2208", ref, msgid=cancel_msgid)["setlinfo"]
    assert _fen(cancelled, "acct_mulaid_pay") == (-(before["zhang"] + 1234),)
    assert {k: _balance(services, v) for k, v in ids.items()} == before
    assert his.ok("2208", ref, msgid=cancel_msgid)["setlinfo"] == cancelled
    again = his.call("2208", ref)
    assert again["infcode"] != 0 and "撤销" in again["err_msg"]
    assert {k: _balance(services, v) for k, v in ids.items()} == before
    with services.uow() as u:
        assert all(
            r.reversed_entry_id is not None
            for r in u.session.execute(select(FamilyPayment)).scalars()
        )
        assert ledger.check(u.session).ok


def test_holders_never_go_below_zero_and_the_rest_is_cash(
    his: His, services: Any, family_of_wang: dict[str, Any]
) -> None:
    wang, ids, before = family_of_wang["wang"], family_of_wang["ids"], family_of_wang["before"]
    psn_no = str(ids["wang"])
    amount = sum(before.values()) + 5_01
    mdtrt_id = _visit(his, wang, psn_no, amount)
    out = his.ok("2207", his.settle_input(mdtrt_id, psn_no, wang["card_no"], _yuan(amount)))[
        "setlinfo"
    ]
    assert _fen(out, "acct_mulaid_pay", "psn_cash_pay") == (before["zhang"] + before["chen"], 5_01)
    assert [_balance(services, v) for v in ids.values()] == [0, 0, 0]
    with services.uow() as u:
        assert ledger.check(u.session).ok


def test_without_the_account_the_holders_do_not_pay(
    his: His, services: Any, family_of_wang: dict[str, Any]
) -> None:
    wang, ids, before = family_of_wang["wang"], family_of_wang["ids"], family_of_wang["before"]
    psn_no = str(ids["wang"])
    mdtrt_id = _visit(his, wang, psn_no, 100_00)
    out = his.ok("2207", his.settle_input(mdtrt_id, psn_no, wang["card_no"], "100.00", acct="0"))[
        "setlinfo"
    ]
    assert _fen(out, "acct_pay", "acct_mulaid_pay", "psn_cash_pay") == (0, 0, 100_00)
    assert {k: _balance(services, v) for k, v in ids.items()} == before


def test_an_unbound_person_pays_from_their_own_account_alone(
    his: His, services: Any, demo: dict[str, Any]
) -> None:
    li = demo["persons"][0]
    psn_no = his.person(li["card_no"])["baseinfo"]["psn_no"]
    mdtrt_id = _visit(his, li, psn_no, 30_00)
    out = his.ok("2207", his.settle_input(mdtrt_id, psn_no, li["card_no"], "30.00"))["setlinfo"]
    assert _fen(out, "acct_mulaid_pay", "acct_pay") == (0, 30_00)


@pytest.mark.postgresql_only
def test_the_general_path_alone_gives_the_same_split(
    settings: Any, clock: Any, services: Any, demo: dict[str, Any], family_of_wang: dict[str, Any]
) -> None:
    """The fast path on and off: the same answer for the same visit."""
    wang, ids, before = family_of_wang["wang"], family_of_wang["ids"], family_of_wang["before"]
    psn_no = str(ids["wang"])
    answers = []
    for fast_path in (True, False):
        with (
            his_app(settings, clock, fast_path=fast_path) as application,
            TestClient(application, base_url="https://testserver") as c,
        ):
            h = His(c, demo["institutions"][0], clock)
            h.sign_in()
            amount = before["wang"] + before["zhang"] + 77
            mdtrt_id = _visit(h, wang, psn_no, amount)
            inp = h.settle_input(mdtrt_id, psn_no, wang["card_no"], _yuan(amount))
            out = h.ok("2207", inp)["setlinfo"]
            answers.append(_fen(out, "acct_pay", "acct_mulaid_pay", "psn_cash_pay"))
            if fast_path:
                assert application.state.his_fast.served == 0
            h.ok(
                "2208",
                {"data": {"setl_id": out["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": psn_no}},
            )
    assert answers[0] == answers[1] == (before["wang"], before["zhang"] + 77, 0)
    assert {k: _balance(services, v) for k, v in ids.items()} == before
