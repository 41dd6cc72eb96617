"""Hostile input to the FHIR interface: control characters, overlong
values, a total that is not the items' sum, a broken token form. Each is
an OperationOutcome with a 4xx status, never a 500, on both databases."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fhir.fhirtools import BASE, claim, patient_id, token, valid


@pytest.fixture
def ctx(client: Any, demo: dict[str, Any]) -> tuple[dict[str, str], str, str]:
    hosp = demo["institutions"][0]
    h = token(client, hosp)
    return h, patient_id(client, h, demo["persons"][0]["certno"]), hosp["code"]


def _refused(r: Any, element: str | None = None) -> None:
    assert 400 <= r.status_code < 500, r.text
    oo = valid(r.json())
    assert oo.get_resource_type() == "OperationOutcome"
    if element is not None:
        assert element in (oo.issue[0].expression or []), r.text


def test_control_characters_and_overlong_values(client: Any, ctx: Any) -> None:
    h, pid, code = ctx
    for value in ("A\x00B", "x" * 65):
        body = claim(pid, code, [("250101001", "10.00")], identifier=value)
        _refused(client.post(f"{BASE}/Claim", json=body, headers=h), "Claim.identifier")
    body = claim(pid, code, [("2501\x0001", "10.00")], identifier="NUL-CODE")
    _refused(client.post(f"{BASE}/Claim", json=body, headers=h), "Claim.item[0].productOrService")
    for given in ("urn:oid:2.16.156.10011.1.1|33\x00", "urn:oid:2.16.156.10011.1.1|" + "9" * 5000):
        r = client.get(f"{BASE}/Patient", params={"identifier": given}, headers=h)
        _refused(r, "identifier")
    _refused(
        client.get(f"{BASE}/Coverage", params={"patient": "Patient/1\x00"}, headers=h), "patient"
    )
    _refused(client.get(f"{BASE}/Coverage", headers=h), "patient")
    _refused(client.get(f"{BASE}/Patient/{'9' * 40}", headers=h))


def test_a_total_that_is_not_the_items_sum(client: Any, ctx: Any) -> None:
    h, pid, code = ctx
    body = claim(pid, code, [("250101001", "10.00")], identifier="SUM", total="20.00")
    _refused(client.post(f"{BASE}/Claim", json=body, headers=h), "Claim.total")


def test_a_huge_amount_and_a_huge_quantity(client: Any, ctx: Any) -> None:
    h, pid, code = ctx
    body = claim(pid, code, [("250101001", "99999999999.00")], identifier="BIG")
    _refused(client.post(f"{BASE}/Claim", json=body, headers=h), "Claim.item[0].net.value")
    body = claim(pid, code, [("250101001", "10.00")], identifier="QTY")
    body["item"][0]["quantity"] = {"value": 1e300}
    _refused(client.post(f"{BASE}/Claim", json=body, headers=h))


def test_broken_token_requests(client: Any) -> None:
    _refused(
        client.post(
            f"{BASE}/auth/token",
            content=b"\xff\xfe",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    )
    _refused(
        client.post(
            f"{BASE}/auth/token",
            data={"grant_type": "client_credentials", "client_id": "X" * 500, "client_secret": "s"},
        ),
        "client_secret",
    )
    _refused(
        client.post(
            f"{BASE}/auth/token",
            data={"grant_type": "client_credentials", "client_id": "H1\x00", "client_secret": "s"},
        ),
        "client_secret",
    )
    _refused(client.get(f"{BASE}/Patient/1", headers={"Authorization": "Bearer " + "a" * 5000}))
    _refused(client.get(f"{BASE}/Patient/1", headers={"Authorization": "Bearer yb1.!!!.???"}))
