"""The HIS channel only parses, authenticates, calls one use case and
renders: the services own their transactions. The gateway's rule that an
authentic request's nonce stays used even when it is refused lives in the
authentication use case, and one signer signs the tests' and the
benchmark's requests with the platform's formula."""

from __future__ import annotations

import hashlib
import hmac
import inspect
import json
from typing import Any

import pytest

from tests.his.client import His
from yibao.channels.his import routes
from yibao.services.access import institution_auth
from yibao.services.inquiry import person_info
from yibao.services.settlement import equipment, inputs
from yibao.services.settlement import settlement as svc
from yibao.services.tx import UseCase
from yibao.testing import his as signer


def test_the_channel_holds_no_transaction_and_calls_use_cases() -> None:
    source = inspect.getsource(routes)
    for forbidden in (".commit(", ".rollback(", "with uow", ".audit(", ".session", "claim_nonce"):
        assert forbidden not in source, forbidden
    services_called = [
        institution_auth.authenticate,
        person_info.person_info,
        svc.sign_in,
        svc.sign_out,
        svc.register,
        svc.cancel_registration,
        svc.visit_info,
        svc.upload_fees,
        svc.cancel_fees,
        svc.presettle,
        svc.settle,
        svc.cancel_settlement,
        svc.query_settlement,
        svc.reconcile,
        svc.declare_failure,
        equipment.declare_failure,
        equipment.list_failures,
    ]
    assert all(isinstance(fn, UseCase) for fn in services_called)


def test_every_code_has_its_input_model_and_its_use_case() -> None:
    """The parsing layer (services.settlement.inputs) reads every code the
    channel answers, before its use case runs."""
    assert set(routes.HANDLERS) == set(inputs.INPUTS) == set(inputs.INFNOS)


def test_a_use_case_does_not_run_inside_another_transaction(services: Any) -> None:
    with services.uow() as open_one, pytest.raises(RuntimeError):
        svc.sign_out(open_one, None, sign_no="x")  # type: ignore[arg-type]


def _post(his: His, infno: str, inp: dict[str, Any], nonce: str, **env: Any) -> dict[str, Any]:
    body = json.dumps({**his.envelope(infno, inp), **env}).encode()
    return his.post(body, his.headers(body, nonce=nonce))


def test_an_authentic_refused_request_uses_up_its_nonce_a_forged_one_does_not(
    his: His, demo: dict[str, Any]
) -> None:
    zhang = demo["persons"][0]
    card = {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": zhang["card_no"]}}
    refused = {
        # refused by the gateway after the signature: another institution named
        "n-other-inst": (
            "1101",
            card,
            {
                "fixmedins_code": demo["institutions"][1]["code"],
                "msgid": signer.msgid(demo["institutions"][1]["code"], his.clock.now()),
            },
        ),
        # no current sign-in
        "n-no-sign-in": ("1101", card, {"sign_no": "nope"}),
        # refused by the business use case: a total that is not the details'
        "n-business": (
            "2207",
            his.settle_input("MD-NONE", "1", zhang["card_no"], "1.00"),
            {},
        ),
    }
    for nonce, (infno, inp, env) in refused.items():
        assert _post(his, infno, inp, nonce, **env)["infcode"] == -1
        again = _post(his, "1101", card, nonce)
        assert again["infcode"] == -1 and "replayed" in again["err_msg"], nonce
    # a forged signature changes nothing: its nonce is still free for the HIS
    body = json.dumps(his.envelope("1101", card)).encode()
    forged = his.headers(body, nonce="n-forged")
    forged["x-tif-signature"] = "0" * 64
    assert his.post(body, forged)["infcode"] == -1
    assert his.post(body, his.headers(body, nonce="n-forged"))["infcode"] == 0


def test_the_shared_signer_signs_with_the_platforms_formula() -> None:
    """x-tif-signature = hex SHA-256 of timestamp + token + nonce + timestamp
    (his-interface.md), computed here without the server's code."""
    h = signer.headers(
        access_id="H33050200001",
        secret="s3cret",
        timestamp=1_700_000_000,
        nonce="abc",
        body=b'{"infno": "1101"}',
        sign_body=True,
    )
    assert h["x-tif-paasid"] == "H33050200001" and h["x-tif-timestamp"] == "1700000000"
    assert h["x-tif-signature"] == hashlib.sha256(b"1700000000s3cretabc1700000000").hexdigest()
    assert (
        h["x-yb-body-signature"]
        == hmac.new(b"s3cret", b'{"infno": "1101"}', hashlib.sha256).hexdigest()
    )
