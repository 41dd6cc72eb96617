"""The FHIR interface driven by the ``fhirclient`` package against a real
uvicorn server, as a hospital's client would: the token by POST, set on the
client's session, then Patient search and read, Coverage, Account,
$eligibility, a Claim and its cancel (both databases)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from fhirclient import client as fhir_client
from fhirclient.models.account import Account
from fhirclient.models.coverage import Coverage
from fhirclient.models.patient import Patient

from tests.fhir.fhirtools import claim, valid


@pytest.fixture
def live_url(app: Any, demo: dict[str, Any]) -> Iterator[str]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/fhir/R4"
    srv.should_exit = True
    thread.join(10)


def test_a_fhir_client_session(live_url: str, demo: dict[str, Any]) -> None:
    hosp, zhang = demo["institutions"][0], demo["persons"][0]
    smart = fhir_client.FHIRClient(settings={"app_id": "his", "api_base": live_url})
    server = smart.server
    got = server.post_as_form(
        f"{live_url}/auth/token",
        {
            "grant_type": "client_credentials",
            "client_id": hosp["code"],
            "client_secret": hosp["secret"],
        },
    ).json()
    assert got["token_type"] == "Bearer" and "system/Claim.write" in got["scope"].split()
    server.session.headers["Authorization"] = f"Bearer {got['access_token']}"

    found = list(
        Patient.where(
            {"identifier": f"urn:oid:2.16.156.10011.1.1|{zhang['certno']}"}
        ).perform_resources_iter(server)
    )
    assert len(found) == 1 and found[0].name[0].text == zhang["name"]
    pid = found[0].id
    assert Patient.read(pid, server).birthDate.isostring
    coverages = list(Coverage.where({"patient": pid}).perform_resources_iter(server))
    assert coverages and coverages[0].payor[0].reference == "Organization/yibao"
    account = Account.read(pid, server)
    assert account.extension[0].valueMoney.currency == "CNY"

    eligibility = server.post_json(
        "CoverageEligibilityRequest/$eligibility",
        {
            "resourceType": "CoverageEligibilityRequest",
            "status": "active",
            "purpose": ["validation"],
            "patient": {"reference": f"Patient/{pid}"},
            "created": "2026-11-23",
            "insurer": {"reference": "Organization/yibao"},
        },
    ).json()
    assert valid(eligibility).insurance[0].inforce is True

    response = server.post_json(
        "Claim", claim(pid, hosp["code"], [("250101001", "400.00")], identifier="LIVE-1")
    ).json()
    settled = valid(response)
    assert settled.status == "active" and settled.outcome == "complete"
    cancelled = valid(server.post_json(f"Claim/{settled.id}/$cancel", {}).json())
    assert cancelled.status == "cancelled"
    with pytest.raises(requests.HTTPError) as second:
        server.post_json(f"Claim/{settled.id}/$cancel", {})
    assert second.value.response.status_code == 409
    assert valid(second.value.response.json()).issue[0].code == "conflict"
