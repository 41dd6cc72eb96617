"""A card opens nothing at the HIS unless it is issued, and it is for its
holder's sole use (seed 000, part three, item 2): 1101, 2201, 2206 and 2207
refuse a lost, frozen, cancelled, replaced or not yet issued card naming its
state, and a card or ID presented with another person's psn_no, certno or
psn_name naming the mismatch; on the general path and on PostgreSQL's fast
path alike (domain.use and domain.settlement decide for both)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.his.apps import his_app
from tests.his.cards import REASONS, STATES, put_card
from tests.his.client import His
from yibao.services.ledger import ledger
from yibao.store import auditlog


@pytest.fixture(params=[True, False], ids=["fast-path", "general-path"])
def hospital(
    request: pytest.FixtureRequest,
    backend: str,
    settings: Any,
    clock: Any,
    demo: dict[str, Any],
) -> Iterator[His]:
    """The level-3 hospital, signed in, on an app with the fast path on or
    off (SQLite has only the general path)."""
    if request.param and backend == "sqlite":
        pytest.skip("SQLite has no fast path")
    with (
        his_app(settings, clock, fast_path=request.param) as app,
        TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as c,
    ):
        assert (app.state.his_fast is not None) == request.param
        h = His(c, demo["institutions"][0], clock)
        h.sign_in()
        yield h


def _ready(his: His, person: dict[str, Any]) -> tuple[str, str]:
    psn_no = his.person(person["card_no"])["baseinfo"]["psn_no"]
    mdtrt_id = his.register(psn_no, person["card_no"])
    his.fees(mdtrt_id, psn_no, [("250101001", "20.00")])
    return psn_no, mdtrt_id


def _register(his: His, psn_no: str, cert_type: str, cert_no: str) -> dict[str, Any]:
    return his.call(
        "2201",
        {
            "data": {
                "psn_no": psn_no,
                "begntime": "2026-11-23 09:00:00",
                "mdtrt_cert_type": cert_type,
                "mdtrt_cert_no": cert_no,
            }
        },
    )


@pytest.mark.parametrize("state", STATES)
def test_a_card_not_issued_to_its_holder_opens_nothing(
    hospital: His, demo: dict[str, Any], services: Any, state: str
) -> None:
    his, zhang = hospital, demo["persons"][0]
    psn_no, mdtrt_id = _ready(his, zhang)
    his.person(zhang["card_no"])  # the institution is known: 1101 in one call
    card_no = put_card(services, zhang["card_no"], state)
    with services.uow() as u:
        balance = ledger.individual_balance(u.session, int(psn_no))
    reason = REASONS[state]
    answers = {
        "1101": his.call("1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": card_no}}),
        "2201": _register(his, psn_no, "03", card_no),
        "2206": his.call("2206", his.settle_input(mdtrt_id, psn_no, card_no, "20.00")),
        "2207": his.call("2207", his.settle_input(mdtrt_id, psn_no, card_no, "20.00")),
    }
    for infno, r in answers.items():
        assert r["infcode"] == -1, (infno, r)
        assert reason in r["err_msg"] and "mdtrt_cert_no" in r["err_msg"], (infno, r["err_msg"])
    with services.uow() as u:
        assert ledger.individual_balance(u.session, int(psn_no)) == balance
        assert ledger.check(u.session).ok
        assert auditlog.verify(u.session).ok


def test_1101_refuses_a_card_presented_with_another_persons_certno_or_name(
    hospital: His, demo: dict[str, Any]
) -> None:
    """Before, 1101 silently answered with the card holder's data."""
    his, zhang, wang = hospital, demo["persons"][0], demo["persons"][1]
    card = {"mdtrt_cert_type": "03", "mdtrt_cert_no": zhang["card_no"]}
    wang_no = his.person(wang["card_no"])["baseinfo"]["psn_no"]
    his.person(zhang["card_no"])  # the institution is known: 1101 in one call
    for field, value in (
        ("certno", wang["certno"]),
        ("psn_name", wang["name"]),
        ("psn_no", wang_no),
    ):
        for _ in range(2):  # the one-call 1101, then with the institution read afresh
            r = his.call("1101", {"data": {**card, field: value}})
            assert r["infcode"] == -1, r
            assert r["err_msg"].startswith(field) and "sole use" in r["err_msg"], r["err_msg"]
    # the holder's own: answered
    own = his.ok("1101", {"data": {**card, "certno": zhang["certno"], "psn_name": zhang["name"]}})
    assert own["baseinfo"]["certno"] == zhang["certno"]
    # an ID number with another person's name
    r = his.call(
        "1101",
        {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": zhang["certno"], "psn_name": "王芳"}},
    )
    assert r["infcode"] == -1 and r["err_msg"].startswith("psn_name"), r["err_msg"]


def test_2201_refuses_a_certificate_presented_with_another_persons_psn_no(
    hospital: His, demo: dict[str, Any]
) -> None:
    his, zhang, wang = hospital, demo["persons"][0], demo["persons"][1]
    wang_no = his.person(wang["card_no"])["baseinfo"]["psn_no"]
    r = _register(his, wang_no, "03", zhang["card_no"])
    assert r["infcode"] == -1 and r["err_msg"].startswith("psn_no") and "sole use" in r["err_msg"]
    r = _register(his, wang_no, "02", zhang["certno"])
    assert r["infcode"] == -1 and r["err_msg"].startswith("psn_no"), r["err_msg"]


def test_a_settlement_refuses_another_persons_card_or_certno(
    hospital: His, demo: dict[str, Any], services: Any
) -> None:
    """王芳's visit settled with 张伟's card, or 张伟's own visit with 王芳's
    ID number beside his card: refused, naming the field, nothing posted."""
    his, zhang, wang = hospital, demo["persons"][0], demo["persons"][1]
    wang_no, wang_visit = _ready(his, wang)
    zhang_no, zhang_visit = _ready(his, zhang)
    inputs = [
        ("psn_no", his.settle_input(wang_visit, wang_no, zhang["card_no"], "20.00")),
        ("certno", his.settle_input(zhang_visit, zhang_no, zhang["card_no"], "20.00")),
    ]
    inputs[1][1]["data"]["certno"] = wang["certno"]
    for field, inp in inputs:
        for infno in ("2206", "2207"):
            r = his.call(infno, inp)
            assert r["infcode"] == -1, r
            assert r["err_msg"].startswith(field) and "sole use" in r["err_msg"], r["err_msg"]
    with services.uow() as u:
        assert ledger.check(u.session).ok
    # the holder's own visit, with his own certificate, settles
    assert his.ok("2207", his.settle_input(zhang_visit, zhang_no, zhang["card_no"], "20.00"))
