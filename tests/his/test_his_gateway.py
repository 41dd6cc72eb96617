"""The gateway signature: unsigned, badly signed, stale, replayed, unknown
or suspended institutions, and the optional body signature."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import func, select, update

from tests.his.client import His
from yibao.channels.his.routes import ENDPOINT
from yibao.store import auditlog
from yibao.store.models import AuditEntry, HisNonce, HisSignIn, Institution


def _body(his: His) -> bytes:
    return json.dumps(his.envelope("9001", {"signIn": {"opter_no": "001"}})).encode()


def _sign_ins(services: Any) -> int:
    with services.uow() as u:
        return int(u.session.execute(select(func.count()).select_from(HisSignIn)).scalar_one())


def test_unsigned_and_badly_signed_requests_change_nothing(
    client: Any, demo: dict[str, Any], clock: Any, services: Any
) -> None:
    his = His(client, demo["institutions"][0], clock)
    body = _body(his)
    r = his.post(body, {"content-type": "application/json"})
    assert r["infcode"] == -1 and "x-tif-signature" in r["err_msg"]
    headers = his.headers(body)
    headers["x-tif-signature"] = "0" * 64
    r = his.post(body, headers)
    assert r["infcode"] == -1 and "does not match" in r["err_msg"]
    wrong = His(client, {**demo["institutions"][0], "secret": "guessed"}, clock)
    r = wrong.post(body, wrong.headers(body))
    assert r["infcode"] == -1 and "does not match" in r["err_msg"]
    assert _sign_ins(services) == 0
    with services.uow() as u:
        assert u.session.execute(select(func.count()).select_from(HisNonce)).scalar_one() == 0


def test_a_stale_timestamp_is_refused(client: Any, demo: dict[str, Any], clock: Any) -> None:
    his = His(client, demo["institutions"][0], clock)
    body = _body(his)
    old = int((clock.now() - dt.timedelta(minutes=6)).timestamp())
    r = his.post(body, his.headers(body, ts=old))
    assert r["infcode"] == -1 and "5 minutes" in r["err_msg"]
    ahead = int((clock.now() + dt.timedelta(minutes=6)).timestamp())
    r = his.post(body, his.headers(body, ts=ahead))
    assert r["infcode"] == -1 and "5 minutes" in r["err_msg"]
    r = his.post(
        body, his.headers(body, ts=int((clock.now() - dt.timedelta(minutes=4)).timestamp()))
    )
    assert r["infcode"] == 0


def test_a_replayed_nonce_is_refused(
    client: Any, demo: dict[str, Any], clock: Any, services: Any
) -> None:
    his = His(client, demo["institutions"][0], clock)
    body = _body(his)
    headers = his.headers(body, nonce="same-nonce-1")
    assert his.post(body, headers)["infcode"] == 0
    r = his.post(body, headers)
    assert r["infcode"] == -1 and "replayed" in r["err_msg"]
    assert _sign_ins(services) == 1


def test_a_refused_business_request_still_uses_up_its_nonce(his: His, demo: dict[str, Any]) -> None:
    body = json.dumps(
        his.envelope("1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": "nope"}})
    ).encode()
    headers = his.headers(body, nonce="n-refused")
    assert his.post(body, headers)["infcode"] == -1
    r = his.post(body, headers)
    assert r["infcode"] == -1 and "replayed" in r["err_msg"]


def test_unknown_and_suspended_institutions_are_refused(
    client: Any, demo: dict[str, Any], clock: Any, services: Any
) -> None:
    ghost = His(client, {"code": "H99999999999", "name": "x", "secret": "s"}, clock)
    r = ghost.call("9001", {"signIn": {}})
    assert r["infcode"] == -1 and "unknown" in r["err_msg"]
    with services.uow() as u:
        u.session.execute(
            update(Institution)
            .where(Institution.code == demo["institutions"][1]["code"])
            .values(status="suspended")
        )
        u.commit()
    his = His(client, demo["institutions"][1], clock)
    r = his.call("9001", {"signIn": {}})
    assert r["infcode"] == -1 and "suspended" in r["err_msg"]
    assert _sign_ins(services) == 0


def test_the_envelope_must_name_the_signing_institution(
    client: Any, demo: dict[str, Any], clock: Any
) -> None:
    his = His(client, demo["institutions"][0], clock)
    env = his.envelope("9001", {"signIn": {}})
    env["fixmedins_code"] = demo["institutions"][1]["code"]
    body = json.dumps(env).encode()
    r = his.post(body, his.headers(body))
    assert r["infcode"] == -1 and "fixmedins_code" in r["err_msg"]


def test_a_required_body_signature_is_checked(
    client: Any, demo: dict[str, Any], clock: Any, services: Any
) -> None:
    code = demo["institutions"][0]["code"]
    with services.uow() as u:
        u.session.execute(
            update(Institution).where(Institution.code == code).values(require_body_signature=True)
        )
        u.commit()
    his = His(client, demo["institutions"][0], clock)
    r = his.call("9001", {"signIn": {}})
    assert r["infcode"] == -1 and "x-yb-body-signature" in r["err_msg"]
    his.body_signature = True
    body = _body(his)
    headers = his.headers(body)
    tampered = body.replace(b'"001"', b'"002"')
    r = his.post(tampered, headers)
    assert r["infcode"] == -1 and "x-yb-body-signature" in r["err_msg"]
    assert his.call("9001", {"signIn": {}})["infcode"] == 0


def test_the_endpoint_answers_envelopes_not_http_errors(
    client: Any, demo: dict[str, Any], clock: Any, services: Any
) -> None:
    """The endpoint is served ahead of the application's routing
    (``routes.front``): an oversized body, a body that is not JSON, and an
    unknown path under it still get the platform's envelope or the
    framework's plain answer, and none of them changes anything."""
    his = His(client, demo["institutions"][0], clock)
    huge = b'{"pad": "' + b"x" * (16 * 1024 * 1024 + 1) + b'"}'
    r = his.post(huge, his.headers(huge))
    assert r["infcode"] == -1 and r["err_msg"].startswith("body") and "16 MB" in r["err_msg"]
    broken = b'{"infno": "9001",'
    r = his.post(broken, his.headers(broken))
    assert r["infcode"] == -1 and "not UTF-8 JSON" in r["err_msg"]
    # another path below the endpoint and another method are the router's
    assert client.post(ENDPOINT + "/9001/extra", content=_body(his)).status_code == 404
    assert client.get(ENDPOINT).status_code == 405
    # the infno in the path must agree with the body's
    body = _body(his)
    r = client.post(ENDPOINT + "/1101", content=body, headers=his.headers(body)).json()
    assert r["infcode"] == -1 and "infno" in r["err_msg"]
    assert _sign_ins(services) == 0


def test_cainfo_and_signtype_are_recorded_with_the_audit_entries(
    his: His, demo: dict[str, Any], services: Any
) -> None:
    """A province's SM2 signature of the body (``cainfo``, ``signtype``) is
    kept with every audit entry the request writes, 1101 and 2207 included
    (on PostgreSQL their fast path, the one-call 1101 too); an envelope
    without them adds nothing to the entries."""
    zhang = demo["persons"][0]
    his.person(zhang["card_no"])  # unsigned by the province
    his.ca = ("MEUCIQDsm2signature==", "SM2")
    psn_no = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
    his.person(zhang["card_no"])
    mdtrt_id = his.register(psn_no, zhang["card_no"])
    his.fees(mdtrt_id, psn_no, [("250101001", "100.00")])
    his.ok("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "100.00"))
    with services.uow() as u:
        rows = u.session.execute(
            select(AuditEntry.action, AuditEntry.detail)
            .where(AuditEntry.person_id == int(psn_no), AuditEntry.actor_id == his.code)
            .order_by(AuditEntry.id)
        ).all()
        assert auditlog.verify(u.session).ok
    actions = [a for a, _ in rows]
    assert actions.count("his.person_info") == 3 and "his.settlement" in actions
    assert "cainfo" not in rows[0].detail
    signed = rows[1:]
    assert signed and all(
        d.get("cainfo") == "MEUCIQDsm2signature==" and d.get("signtype") == "SM2" for _, d in signed
    ), signed
