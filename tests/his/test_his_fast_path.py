"""The PostgreSQL fast path for 1101 and 2207 (services/settlement/fast_path.py): it
answers exactly what the general path answers, audits in the same verifiable
chain, and hands every refusal and unusual case to the general path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.his.client import His
from yibao.app import create_app
from yibao.services.ledger import ledger
from yibao.store import auditlog
from yibao.store.models import AuditEntry, Card, HisNonce, Institution

pytestmark = pytest.mark.postgresql_only

LINES = [
    ("001101000010000", "10.00"),
    ("XA02BCA211E001", "286.00"),
    ("C00000000001", "5.00"),
    ("250101001", "400.00"),
]
TOTAL = "701.00"
# what differs between two settlements of equal visits
OWN = {"setl_id", "mdtrt_id", "setl_time"}


@pytest.fixture
def general(settings: Any, clock: Any) -> Iterator[TestClient]:
    """The same database served with the fast path switched off."""
    application = create_app(settings.model_copy(update={"his_fast_path": False}), clock)
    assert application.state.his_fast is None
    with TestClient(application, base_url="https://testserver") as c:
        yield c
    application.state.services.engine.dispose()


def test_fast_and_general_paths_answer_alike(
    his: His, general: TestClient, app: Any, demo: dict[str, Any], clock: Any, services: Any
) -> None:
    fast = app.state.his_fast
    slow = His(general, demo["institutions"][0], clock)
    slow.sign_no = his.sign_no
    zhang = demo["persons"][0]

    served = fast.served
    info_fast = his.person(zhang["card_no"])
    assert fast.served == served + 1
    info_slow = slow.person(zhang["card_no"])
    assert info_fast == info_slow
    psn_no = info_fast["baseinfo"]["psn_no"]

    first = his.register(psn_no, zhang["card_no"])
    his.fees(first, psn_no, LINES)
    served = fast.served
    settled = his.ok("2207", his.settle_input(first, psn_no, zhang["card_no"], TOTAL))
    assert fast.served == served + 1
    assert settled["setlinfo"]["acct_pay"] > 0 and settled["setlinfo"]["hifp_pay"] > 0
    # cancel it, so that the year's usage and the balance are as before
    his.ok(
        "2208",
        {
            "data": {
                "setl_id": settled["setlinfo"]["setl_id"],
                "mdtrt_id": first,
                "psn_no": psn_no,
            }
        },
    )
    second = his.register(psn_no, zhang["card_no"])
    his.fees(second, psn_no, LINES)
    again = slow.ok("2207", slow.settle_input(second, psn_no, zhang["card_no"], TOTAL))
    assert {k: v for k, v in settled["setlinfo"].items() if k not in OWN} == {
        k: v for k, v in again["setlinfo"].items() if k not in OWN
    }
    assert settled["setldetail"] == again["setldetail"]

    with services.uow() as u:
        assert ledger.check(u.session).ok
        assert auditlog.verify(u.session).ok
        actions = list(
            u.session.execute(
                select(AuditEntry.action, AuditEntry.actor_id).where(
                    AuditEntry.person_id == int(psn_no)
                )
            )
        )
    assert ("his.person_info", his.code) in actions
    assert ("his.settlement", his.code) in actions


def test_a_retried_msgid_gets_the_first_answer(
    his: His, app: Any, demo: dict[str, Any], services: Any
) -> None:
    li = demo["persons"][0]
    psn_no = his.person(li["card_no"])["baseinfo"]["psn_no"]
    mdtrt_id = his.register(psn_no, li["card_no"])
    his.fees(mdtrt_id, psn_no, LINES)
    inp = his.settle_input(mdtrt_id, psn_no, li["card_no"], TOTAL)
    msgid = his.msgid()
    first = his.ok("2207", inp, msgid=msgid)
    with services.uow() as u:
        balance = ledger.individual_balance(u.session, int(psn_no))
    assert his.ok("2207", inp, msgid=msgid) == first
    with services.uow() as u:
        assert ledger.individual_balance(u.session, int(psn_no)) == balance


def test_refusals_take_the_general_path_and_change_nothing(
    his: His, app: Any, demo: dict[str, Any], services: Any
) -> None:
    fast = app.state.his_fast
    zhang = demo["persons"][0]
    before = fast.gave_way
    # a card number nobody holds
    result = his.call("1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": "0000000000"}})
    assert result["infcode"] == -1 and "未找到" in result["err_msg"]
    # not signed in
    sign_no, his.sign_no = his.sign_no, "nope"
    result = his.call(
        "1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": zhang["card_no"]}}
    )
    his.sign_no = sign_no
    assert result["infcode"] == -1 and "9001" in result["err_msg"]
    assert fast.gave_way == before + 2

    # a replayed request (same nonce) is refused, though the first was served fast
    body = his.envelope(
        "1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": zhang["card_no"]}}
    )
    raw = json.dumps(body).encode()
    headers = his.headers(raw, nonce="fast-replay-1")
    assert his.post(raw, headers)["infcode"] == 0
    replay = his.post(raw, headers)
    assert replay["infcode"] == -1 and "nonce" in replay["err_msg"]

    # a wrong total settles nothing
    psn_no = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
    mdtrt_id = his.register(psn_no, zhang["card_no"])
    his.fees(mdtrt_id, psn_no, LINES)
    with services.uow() as u:
        balance = ledger.individual_balance(u.session, int(psn_no))
    result = his.call("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "700.00"))
    assert result["infcode"] == -1 and "medfee_sumamt" in result["err_msg"]
    with services.uow() as u:
        assert ledger.individual_balance(u.session, int(psn_no)) == balance


def test_1101_takes_one_call_once_the_institution_is_known(
    his: His, general: TestClient, app: Any, demo: dict[str, Any], clock: Any, services: Any
) -> None:
    """After the first 1101 of an institution, 1101 is one database call
    (``yb_his_person``) that writes only while the institution is as it was
    read; a refusal after that write is the general path's refusal."""
    fast = app.state.his_fast
    slow = His(general, demo["institutions"][0], clock)
    slow.sign_no = his.sign_no
    zhang, wang = demo["persons"][0], demo["persons"][1]
    his.person(zhang["card_no"])  # two calls: the institution is read
    single = fast.single
    info = his.person(zhang["card_no"])
    assert fast.single == single + 1
    assert info == slow.person(zhang["card_no"])

    # a lost card: refused after the nonce was claimed, as the general path refuses
    with services.uow() as u:
        u.session.execute(update(Card).where(Card.card_no == wang["card_no"]).values(status="lost"))
        u.commit()
    inp = {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": wang["card_no"]}}
    body = json.dumps(his.envelope("1101", inp)).encode()
    refused = his.post(body, his.headers(body, nonce="one-call-lost-1"))
    assert refused["infcode"] == -1
    assert refused["err_msg"] == slow.call("1101", inp)["err_msg"]
    with services.uow() as u:
        assert u.session.execute(
            select(HisNonce.id).where(HisNonce.nonce == "one-call-lost-1")
        ).one_or_none()
        assert auditlog.verify(u.session).ok

    # a new secret: the request signed with it is served, the institution read afresh
    with services.uow() as u:
        u.session.execute(
            update(Institution).where(Institution.code == his.code).values(access_secret="new")
        )
        u.commit()
    his.secret = "new"
    assert his.person(zhang["card_no"]) == info
    single = fast.single
    assert his.person(zhang["card_no"]) == info
    assert fast.single == single + 1

    # suspended since it was read: refused, and its nonce stays unused
    with services.uow() as u:
        u.session.execute(
            update(Institution).where(Institution.code == his.code).values(status="suspended")
        )
        u.commit()
    body = json.dumps(
        his.envelope("1101", {"data": inp["data"] | {"mdtrt_cert_no": zhang["card_no"]}})
    ).encode()
    refused = his.post(body, his.headers(body, nonce="one-call-suspended-1"))
    assert refused["infcode"] == -1 and "suspended" in refused["err_msg"]
    with services.uow() as u:
        assert (
            u.session.execute(
                select(HisNonce.id).where(HisNonce.nonce == "one-call-suspended-1")
            ).one_or_none()
            is None
        )
