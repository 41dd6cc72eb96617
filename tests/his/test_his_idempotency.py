"""msgid is the idempotency key; concurrent settlements never overdraw."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.his.client import His
from yibao.app import create_app
from yibao.services.ledger import ledger
from yibao.store import auditlog
from yibao.store.models import AuditEntry, LedgerEntry, Settlement, Visit


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
