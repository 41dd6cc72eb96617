"""msgid is the idempotency key; concurrent settlements never overdraw."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from tests.helpers import wait_for_lock_waiters
from tests.his.apps import his_app, send_in_thread
from tests.his.client import His
from yibao.app import create_app
from yibao.services.ledger import ledger
from yibao.store import auditlog
from yibao.store.models import AuditEntry, FeeDetail, LedgerEntry, Settlement, Visit


def test_the_same_msgid_gets_the_first_answer_and_posts_nothing(
    his: His, demo: dict[str, Any], services: Any
) -> None:
    zhang = demo["persons"][0]
    psn_no = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
    reg_msgid = his.msgid()
    first_reg = his.ok(
        "2201",
        {
            "data": {
                "psn_no": psn_no,
                "begntime": "2026-11-23 09:00:00",
                "mdtrt_cert_type": "03",
                "mdtrt_cert_no": zhang["card_no"],
            }
        },
        msgid=reg_msgid,
    )
    again_reg = his.ok(
        "2201",
        {
            "data": {
                "psn_no": psn_no,
                "begntime": "2026-11-23 09:00:00",
                "mdtrt_cert_type": "03",
                "mdtrt_cert_no": zhang["card_no"],
            }
        },
        msgid=reg_msgid,
    )
    assert first_reg == again_reg
    with services.uow() as u:
        assert u.session.execute(select(func.count()).select_from(Visit)).scalar_one() == 1
    mdtrt_id = first_reg["data"]["mdtrt_id"]
    his.fees(mdtrt_id, psn_no, [("250101001", "400.00")])
    msgid = his.msgid()
    first = his.ok(
        "2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "400.00"), msgid=msgid
    )
    with services.uow() as u:
        balance = ledger.individual_balance(u.session, int(psn_no))
        entries = u.session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
    again = his.ok(
        "2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "400.00"), msgid=msgid
    )
    assert again == first
    with services.uow() as u:
        assert ledger.individual_balance(u.session, int(psn_no)) == balance
        assert (
            u.session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one() == entries
        )
        assert u.session.execute(select(func.count()).select_from(Settlement)).scalar_one() == 1
    # a new msgid for the settled visit is refused
    r = his.call("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "400.00"))
    assert r["infcode"] == -1 and "already settled" in r["err_msg"]
    # a cancel retried with its msgid answers the same and reverses once
    cmsg = his.msgid()
    c1 = his.ok(
        "2208",
        {"data": {"setl_id": first["setlinfo"]["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": psn_no}},
        msgid=cmsg,
    )
    c2 = his.ok(
        "2208",
        {"data": {"setl_id": first["setlinfo"]["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": psn_no}},
        msgid=cmsg,
    )
    assert c1 == c2
    with services.uow() as u:
        assert (
            u.session.execute(
                select(func.count())
                .select_from(LedgerEntry)
                .where(LedgerEntry.reverses_id.is_not(None))
            ).scalar_one()
            == 1
        )
        assert ledger.check(u.session).ok


@pytest.mark.postgresql_only
@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "general-path"])
def test_concurrent_settlements_never_overdraw_the_account(
    backend: str,
    fast_path: bool,
    settings: Any,
    demo: dict[str, Any],
    clock: Any,
    services: Any,
) -> None:
    """Eight settlements at once on one account: the losers of each race
    recompute (the database function refuses a split computed from a balance
    or a year's usage that moved, and undoes its first writes), so that the
    account pays exactly its balance and the audit chain stays whole."""
    app = create_app(settings.model_copy(update={"his_fast_path": fast_path}), clock)
    assert (app.state.his_fast is not None) == fast_path
    wang = demo["persons"][1]
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        his = His(client, demo["institutions"][2], clock)  # a level-2 hospital
        his.sign_in()
        psn_no = his.person(wang["card_no"])["baseinfo"]["psn_no"]
        with services.uow() as u:
            balance = ledger.individual_balance(u.session, int(psn_no))
        assert balance > 0
        # each visit's personal part is about a third of the balance: at most
        # three can be paid in full from the account
        per_visit = balance // 3 + 1
        total_yuan = f"{(per_visit + 300_00) / 100:.2f}"  # deductible first, then A items at 80 %
        visits = []
        for _ in range(8):
            mdtrt_id = his.register(psn_no, wang["card_no"])
            his.fees(mdtrt_id, psn_no, [("C00000000001", total_yuan)])  # self-paid: all personal
            visits.append(mdtrt_id)
        results: list[dict[str, Any]] = []
        lock = threading.Lock()

        def settle(mdtrt_id: str) -> None:
            with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as c:
                h = His(c, demo["institutions"][2], clock)
                h.sign_no = his.sign_no
                r = h.call("2207", h.settle_input(mdtrt_id, psn_no, wang["card_no"], total_yuan))
                with lock:
                    results.append(r)

        threads = [threading.Thread(target=settle, args=(v,)) for v in visits]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert all(r["infcode"] == 0 for r in results), [r["err_msg"] for r in results]
    paid = sum(round(r["output"]["setlinfo"]["acct_pay"] * 100) for r in results)
    assert paid == balance  # the whole balance, not a fen more
    with services.uow() as u:
        assert ledger.individual_balance(u.session, int(psn_no)) == 0
        assert ledger.check(u.session).ok
        assert auditlog.verify(u.session).problems == []
        settled = u.session.execute(
            select(func.count()).select_from(Settlement).where(Settlement.person_id == int(psn_no))
        ).scalar_one()
        audited = u.session.execute(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.person_id == int(psn_no), AuditEntry.action == "his.settlement")
        ).scalar_one()
    assert settled == audited == len(visits)
    app.state.services.engine.dispose()


def test_a_msgid_reused_for_another_request_is_refused_naming_it(
    his: His, demo: dict[str, Any], services: Any
) -> None:
    """Before, a 2204 sent with a 2201's msgid got the 2201's answer with
    success, and stored nothing."""
    zhang = demo["persons"][0]
    psn_no = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
    msgid = his.msgid()
    reg = {
        "data": {
            "psn_no": psn_no,
            "begntime": "2026-11-23 09:00:00",
            "mdtrt_cert_type": "03",
            "mdtrt_cert_no": zhang["card_no"],
        }
    }
    first = his.ok("2201", reg, msgid=msgid)
    mdtrt_id = first["data"]["mdtrt_id"]
    fee = {
        "feedetail": [
            {
                "feedetl_sn": "R1",
                "mdtrt_id": mdtrt_id,
                "psn_no": psn_no,
                "med_list_codg": "250101001",
                "det_item_fee_sumamt": "10.00",
            }
        ]
    }
    r = his.call("2204", fee, msgid=msgid)
    assert r["infcode"] == -1 and r["err_msg"].startswith("msgid") and msgid in r["err_msg"]
    # the same infno with another input
    other = {"data": {**reg["data"], "begntime": "2026-11-23 09:30:00"}}
    r = his.call("2201", other, msgid=msgid)
    assert r["infcode"] == -1 and msgid in r["err_msg"]
    with services.uow() as u:
        assert u.session.execute(select(func.count()).select_from(FeeDetail)).scalar_one() == 0
        assert u.session.execute(select(func.count()).select_from(Visit)).scalar_one() == 1
    # the request itself, resent, still gets its first answer
    assert his.ok("2201", reg, msgid=msgid) == first
    # and the fee details under a msgid of their own are stored
    his.ok("2204", fee)
    with services.uow() as u:
        assert u.session.execute(select(func.count()).select_from(FeeDetail)).scalar_one() == 1


def test_a_refused_request_leaves_its_msgid_unused(
    his: His, demo: dict[str, Any], services: Any
) -> None:
    """A refusal changes nothing, its claim on the msgid included: the
    corrected request may use it."""
    zhang = demo["persons"][0]
    psn_no = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
    mdtrt_id = his.register(psn_no, zhang["card_no"])
    his.fees(mdtrt_id, psn_no, [("250101001", "40.00")])
    msgid = his.msgid()
    r = his.call("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "41.00"), msgid=msgid)
    assert r["infcode"] == -1 and "medfee_sumamt" in r["err_msg"]
    settled = his.ok(
        "2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "40.00"), msgid=msgid
    )
    assert settled["setlinfo"]["medfee_sumamt"] == 40.00


@pytest.mark.postgresql_only
@pytest.mark.parametrize(
    ("infno", "fast_path"),
    [("2208", False), ("2207", True), ("2207", False)],
    ids=["2208", "2207-fast-path", "2207-general-path"],
)
def test_overlapping_sends_of_one_msgid_both_get_the_first_answer(
    backend: str,
    infno: str,
    fast_path: bool,
    settings: Any,
    demo: dict[str, Any],
    clock: Any,
    services: Any,
) -> None:
    """The first send waits on a row the test holds; the resend of the same
    msgid overlaps it. Before, an overlapping 2208 resend answered -1
    "already cancelled" about its own cancel: the replay was decided before
    the lock. Now the msgid is claimed first, the resend waits on that claim
    and then gives the first answer."""
    inst = demo["institutions"][0]
    zhang = demo["persons"][0]
    with (
        his_app(settings, clock, fast_path=fast_path) as app,
        TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client,
    ):
        his = His(client, inst, clock)
        his.sign_in()
        psn_no = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
        mdtrt_id = his.register(psn_no, zhang["card_no"])
        his.fees(mdtrt_id, psn_no, [("250101001", "400.00")])
        settle_inp = his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "400.00")
        if infno == "2208":
            setl_id = his.ok("2207", settle_inp)["setlinfo"]["setl_id"]
            inp = {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": psn_no}}
            held = "SELECT 1 FROM settlements WHERE setl_id = :k FOR UPDATE"
            key = setl_id
        else:
            inp = settle_inp
            held = "SELECT 1 FROM visits WHERE mdtrt_id = :k FOR UPDATE"
            key = mdtrt_id
        msgid = his.msgid()
        with services.engine.connect() as holder:
            holder.execute(text(held), {"k": key})
            first, first_out = send_in_thread(app, inst, clock, his.sign_no, infno, inp, msgid)
            assert wait_for_lock_waiters(services, 1)
            again, again_out = send_in_thread(app, inst, clock, his.sign_no, infno, inp, msgid)
            assert wait_for_lock_waiters(services, 2)
            holder.rollback()
        first.join(60)
        again.join(60)
    assert first_out and again_out
    assert first_out[0]["infcode"] == 0, first_out[0]["err_msg"]
    assert again_out[0]["infcode"] == 0, again_out[0]["err_msg"]
    assert again_out[0]["output"] == first_out[0]["output"]
    with services.uow() as u:
        assert ledger.check(u.session).ok
        reversals = u.session.execute(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.reverses_id.is_not(None))
        ).scalar_one()
        settled = u.session.execute(select(func.count()).select_from(Settlement)).scalar_one()
    assert (reversals, settled) == ((1, 1) if infno == "2208" else (0, 1))
