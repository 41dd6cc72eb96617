"""The FHIR R4 interface through the app (both databases): every answer
validates with fhir.resources R4B; a Claim splits as 2207 does and is
settled once per identifier; cancel once; scopes, another institution's
claims and persons it may not serve; bad resources get an OperationOutcome
naming the element, never a 500; reads are audited and exported."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from tests.fhir.fhirtools import BASE, claim, patient_id, token, valid
from tests.his.client import His
from yibao.services.ledger import ledger
from yibao.store.models import AuditEntry, LedgerEntry, Settlement

LINES = [
    ("001101000010000", "10.00"),
    ("XA02BCA211E001", "286.00"),
    ("C00000000001", "5.00"),
    ("250101001", "400.00"),
]


@pytest.fixture
def hosp(demo: dict[str, Any]) -> dict[str, Any]:
    return dict(demo["institutions"][0])


@pytest.fixture
def auth(client: Any, hosp: dict[str, Any]) -> dict[str, str]:
    return token(client, hosp)


def _outcome(r: Any, status: int, element: str | None = None) -> Any:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    oo = valid(r.json())
    assert oo.get_resource_type() == "OperationOutcome"
    if element is not None:
        assert element in (oo.issue[0].expression or []), r.text
        assert element in (oo.issue[0].location or []), r.text
    return oo


def test_metadata_is_a_capability_statement(client: Any) -> None:
    r = client.get(f"{BASE}/metadata")
    assert r.status_code == 200
    cs = valid(r.json())
    assert cs.fhirVersion == "4.0.1"
    kinds = {res.type for res in cs.rest[0].resource}
    assert {
        "Patient",
        "Coverage",
        "Account",
        "Claim",
        "ExplanationOfBenefit",
        "AuditEvent",
    } <= kinds


def test_patient_coverage_account_and_postings(
    client: Any, demo: dict[str, Any], auth: dict[str, str], services: Any
) -> None:
    zhang = demo["persons"][0]
    pid = patient_id(client, auth, zhang["certno"])
    by_account = client.get(
        f"{BASE}/Patient",
        params={"identifier": f"urn:yibao:fhir:account-no|{zhang['account_no']}"},
        headers=auth,
    )
    assert valid(by_account.json()).entry[0].resource.id == pid
    p = valid(client.get(f"{BASE}/Patient/{pid}", headers=auth).json())
    assert p.name[0].text == zhang["name"]
    cov = valid(
        client.get(f"{BASE}/Coverage", params={"patient": f"Patient/{pid}"}, headers=auth).json()
    )
    assert cov.total >= 1
    c = cov.entry[0].resource
    assert c.status == "active" and c.payor[0].reference == "Organization/yibao" and c.period.start
    assert valid(client.get(f"{BASE}/Coverage/{c.id}", headers=auth).json()).id == c.id
    acct = valid(client.get(f"{BASE}/Account/{pid}", headers=auth).json())
    with services.uow() as u:
        balance = ledger.individual_balance(u.session, int(pid))
    assert acct.extension[0].valueMoney.value * 100 == balance
    post = valid(client.get(f"{BASE}/Account/{pid}/$postings", headers=auth).json())
    assert post.parameter[0].valueMoney.value * 100 == balance and len(post.parameter) > 1


def test_unknown_patient_and_wrong_system(client: Any, auth: dict[str, str]) -> None:
    _outcome(client.get(f"{BASE}/Patient/999999", headers=auth), 404)
    _outcome(client.get(f"{BASE}/Patient/abc", headers=auth), 404)
    _outcome(
        client.get(f"{BASE}/Patient", params={"identifier": "urn:other|1"}, headers=auth),
        422,
        "identifier",
    )
    empty = client.get(
        f"{BASE}/Patient",
        params={"identifier": "urn:oid:2.16.156.10011.1.1|110101199001011234"},
        headers=auth,
    )
    assert valid(empty.json()).total == 0


def test_eligibility_answers_with_the_same_decision(
    client: Any, demo: dict[str, Any], auth: dict[str, str]
) -> None:
    pid = patient_id(client, auth, demo["persons"][0]["certno"])
    req = {
        "resourceType": "CoverageEligibilityRequest",
        "id": "q1",
        "status": "active",
        "purpose": ["validation", "benefits"],
        "patient": {"reference": f"Patient/{pid}"},
        "created": "2026-11-23",
        "insurer": {"reference": "Organization/yibao"},
    }
    r = client.post(f"{BASE}/CoverageEligibilityRequest/$eligibility", json=req, headers=auth)
    assert r.status_code == 200, r.text
    resp = valid(r.json())
    assert resp.insurance[0].inforce is True
    assert resp.insurance[0].item[0].benefit[0].allowedMoney.value > 0


def test_eligibility_says_why_not_for_a_person_insured_elsewhere(
    client: Any, demo: dict[str, Any], services: Any
) -> None:
    """A person insured in Suzhou, with no cross-area filing for Huzhou, is
    refused naming the filing, as 2201 would refuse them."""
    from tests.helpers import SYSTEM, add_person
    from yibao import demo as demo_service
    from yibao.domain.actors import Channel
    from yibao.services.contributions import contributions

    with services.uow() as u:
        contributions.set_rule(
            u,
            actor=SYSTEM,
            channel=Channel.CLI,
            area="320500",
            year=2026,
            insutype="310",
            **demo_service.RULE,
        )
        u.commit()
    other = add_person(services.uow(), division="320508", name="苏州人")
    h = token(client, demo["institutions"][0])
    req = {
        "resourceType": "CoverageEligibilityRequest",
        "status": "active",
        "purpose": ["validation"],
        "patient": {"reference": f"Patient/{other.id}"},
        "created": "2026-11-23",
        "insurer": {"reference": "Organization/yibao"},
    }
    resp = valid(
        client.post(f"{BASE}/CoverageEligibilityRequest/$eligibility", json=req, headers=h).json()
    )
    assert resp.insurance[0].inforce is False
    assert resp.error[0].code.coding[0].code == "offsite.not_covered"
    assert resp.insurance[0].item[0].benefit[0].allowedMoney.value == 0
    # and the reads of a person it may not serve are "not found"
    _outcome(client.get(f"{BASE}/Patient/{other.id}", headers=h), 404)


def _split(resp: Any) -> dict[str, int]:
    return {t.category.coding[0].code: int(t.amount.value * 100) for t in resp.total}


def test_a_claim_splits_as_2207_settled_once_and_cancelled_once(
    client: Any,
    demo: dict[str, Any],
    hosp: dict[str, Any],
    auth: dict[str, str],
    services: Any,
    clock: Any,
) -> None:
    zhang = demo["persons"][0]
    pid = patient_id(client, auth, zhang["certno"])
    with services.uow() as u:
        before = ledger.individual_balance(u.session, int(pid))
        entries = u.session.execute(select(func.count(LedgerEntry.id))).scalar_one()
    # the HIS first: 2201, 2204, 2207, then 2208 puts the person back as they were
    his = His(client, hosp, clock)
    his.sign_in()
    psn_no = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
    mdtrt_id = his.register(psn_no, zhang["card_no"])
    his.fees(mdtrt_id, psn_no, LINES)
    s = his.ok("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "701.00"))["setlinfo"]
    his.ok("2208", {"data": {"setl_id": s["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": psn_no}})
    with services.uow() as u:
        assert ledger.individual_balance(u.session, int(pid)) == before

    body = claim(pid, hosp["code"], LINES, identifier="CLM-1", total="701.00")
    with services.uow() as u:
        audited = u.session.execute(select(func.max(AuditEntry.id))).scalar_one()
    r = client.post(f"{BASE}/Claim", json=body, headers=auth)
    assert r.status_code == 200, r.text
    resp = valid(r.json())
    split = _split(resp)
    for key, code in (
        ("hifp_pay", "hifp_pay"),
        ("acct_pay", "acct_pay"),
        ("psn_cash_pay", "psn_cash_pay"),
        ("fund_pay_sumamt", "benefit"),
        ("psn_part_amt", "psn_part_amt"),
        ("medfee_sumamt", "submitted"),
        ("act_pay_dedc", "deductible"),
    ):
        assert split[code] == round(s[key] * 100), key
    assert split["hifp_pay"] == 27555 and split["acct_pay"] + split["psn_cash_pay"] == 42545

    # the same Claim again: the same answer, one ledger entry
    again = client.post(f"{BASE}/Claim", json=body, headers=auth)
    assert again.json() == r.json()
    with services.uow() as u:
        assert ledger.individual_balance(u.session, int(pid)) == before - split["acct_pay"]
        # the HIS visit's settlement and its reversal, and the claim's
        assert u.session.execute(select(func.count(LedgerEntry.id))).scalar_one() == entries + 3
        rows = (
            u.session.execute(select(Settlement).where(Settlement.setl_id == resp.id))
            .scalars()
            .all()
        )
        assert len(rows) == 1
        # the HIS steps the Claim ran are audited as the FHIR channel's
        channels = set(
            u.session.execute(
                select(AuditEntry.channel).where(
                    AuditEntry.id > audited,
                    AuditEntry.actor_id == hosp["code"],
                    AuditEntry.action.in_(("his.register", "his.fee_upload", "his.settlement")),
                )
            ).scalars()
        )
        assert channels == {"fhir"}, channels  # and there were such entries
    # the identifier of another Claim
    changed = claim(pid, hosp["code"], [("250101001", "100.00")], identifier="CLM-1")
    _outcome(client.post(f"{BASE}/Claim", json=changed, headers=auth), 409, "Claim.identifier")

    eob = valid(
        client.get(f"{BASE}/ExplanationOfBenefit", params={"patient": pid}, headers=auth).json()
    )
    assert resp.id in {e.resource.id for e in eob.entry}

    # another institution neither sees nor cancels it
    other = token(client, demo["institutions"][1])
    _outcome(client.post(f"{BASE}/Claim/{resp.id}/$cancel", headers=other), 404)
    _outcome(client.get(f"{BASE}/ClaimResponse/{resp.id}", headers=other), 404)

    cancelled = client.post(f"{BASE}/Claim/{resp.id}/$cancel", headers=auth)
    assert cancelled.status_code == 200, cancelled.text
    assert valid(cancelled.json()).status == "cancelled"
    _outcome(client.post(f"{BASE}/Claim/{resp.id}/$cancel", headers=auth), 409, "Claim.id")
    with services.uow() as u:
        assert ledger.individual_balance(u.session, int(pid)) == before
        assert u.session.execute(select(func.count(LedgerEntry.id))).scalar_one() == entries + 4
        assert ledger.check(u.session).ok


def test_a_claim_for_another_provider_is_forbidden(
    client: Any, demo: dict[str, Any], auth: dict[str, str]
) -> None:
    pid = patient_id(client, auth, demo["persons"][0]["certno"])
    body = claim(pid, demo["institutions"][1]["code"], [("250101001", "100.00")])
    _outcome(client.post(f"{BASE}/Claim", json=body, headers=auth), 403, "Claim.provider")


def _mutate(kind: str, body: dict[str, Any]) -> Any:
    if kind == "missing patient":
        del body["patient"]
    elif kind == "missing item code":
        del body["item"][0]["productOrService"]
    elif kind == "no identifier":
        del body["identifier"]
    elif kind == "negative amount":
        body["item"][0]["net"]["value"] = "-1.00"
    elif kind == "fractional fen":
        body["item"][0]["net"]["value"] = "1.005"
    elif kind == "not a number":
        body["item"][0]["net"]["value"] = "ten"
    elif kind == "wrong currency":
        body["item"][0]["net"]["currency"] = "USD"
    elif kind == "unknown patient":
        body["patient"]["reference"] = "Patient/99999999"
    elif kind == "bad reference":
        body["patient"]["reference"] = "Group/1"
    elif kind == "wrong resourceType":
        body["resourceType"] = "Patient"
    elif kind == "negative total":
        body["total"] = {"value": -5, "currency": "CNY"}
    return body


BAD = [
    ("missing patient", 422, "Claim.patient"),
    ("missing item code", 422, "Claim.item[0].productOrService"),
    ("no identifier", 422, "Claim.identifier"),
    ("negative amount", 422, "Claim.item[0].net.value"),
    ("fractional fen", 422, "Claim.item[0].net.value"),
    ("not a number", 422, "Claim.item[0].net.value"),
    ("wrong currency", 422, "Claim.item[0].net.currency"),
    ("unknown patient", 404, "Claim.patient"),
    ("bad reference", 422, "Claim.patient"),
    ("wrong resourceType", 422, "Claim.resourceType"),
    ("negative total", 422, "Claim.total.value"),
]


def test_bad_resources_get_an_outcome_naming_the_element(
    client: Any, demo: dict[str, Any], hosp: dict[str, Any], auth: dict[str, str], services: Any
) -> None:
    pid = patient_id(client, auth, demo["persons"][0]["certno"])
    with services.uow() as u:
        entries = u.session.execute(select(func.count(LedgerEntry.id))).scalar_one()
    for kind, status, element in BAD:
        body = _mutate(kind, claim(pid, hosp["code"], [("250101001", "100.00")], identifier=kind))
        r = client.post(f"{BASE}/Claim", json=body, headers=auth)
        _outcome(r, status, element)
    _outcome(client.post(f"{BASE}/Claim", content=b"{not json", headers=auth), 422, "body")
    _outcome(client.post(f"{BASE}/Claim", content=b"[1, 2]", headers=auth), 422, "body")
    _outcome(
        client.post(f"{BASE}/Claim", content=b" " * (1024 * 1024 + 1), headers=auth), 413, "body"
    )
    with services.uow() as u:
        assert u.session.execute(select(func.count(LedgerEntry.id))).scalar_one() == entries


def test_tokens_and_scopes(
    client: Any, demo: dict[str, Any], hosp: dict[str, Any], clock: Any
) -> None:
    bad = client.post(
        f"{BASE}/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": hosp["code"],
            "client_secret": "wrong",
        },
    )
    _outcome(bad, 401, "client_secret")
    _outcome(client.post(f"{BASE}/auth/token", data={"grant_type": "password"}), 400, "grant_type")
    _outcome(
        client.post(
            f"{BASE}/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": hosp["code"],
                "client_secret": hosp["secret"],
                "scope": "system/*.*",
            },
        ),
        400,
        "scope",
    )
    _outcome(client.get(f"{BASE}/Patient/1"), 401)
    _outcome(
        client.get(f"{BASE}/Patient/1", headers={"Authorization": "Bearer yb1.e30.forged"}), 401
    )
    narrow = token(client, hosp, scope="system/Patient.read")
    pid = patient_id(client, narrow, demo["persons"][0]["certno"])
    _outcome(client.get(f"{BASE}/Account/{pid}", headers=narrow), 403)
    body = claim(pid, hosp["code"], [("250101001", "100.00")])
    _outcome(client.post(f"{BASE}/Claim", json=body, headers=narrow), 403)
    # the token is short-lived, on the injected clock
    import datetime as dt

    clock.advance(dt.timedelta(minutes=16))
    _outcome(client.get(f"{BASE}/Patient/{pid}", headers=narrow), 401)


def test_reads_are_audited_and_exported_as_audit_events(
    client: Any, demo: dict[str, Any], hosp: dict[str, Any], auth: dict[str, str], services: Any
) -> None:
    pid = patient_id(client, auth, demo["persons"][0]["certno"])
    client.get(f"{BASE}/Account/{pid}", headers=auth)
    with services.uow() as u:
        actions = set(
            u.session.execute(
                select(AuditEntry.action).where(
                    AuditEntry.channel == "fhir",
                    AuditEntry.actor_id == hosp["code"],
                    AuditEntry.person_id == int(pid),
                )
            ).scalars()
        )
    assert {"fhir.patient_search", "fhir.account_read"} <= actions
    r = client.get(
        f"{BASE}/AuditEvent", params={"date": "ge2026-11-23", "patient": pid}, headers=auth
    )
    assert r.status_code == 200, r.text
    events = valid(r.json())
    assert {e.resource.subtype[0].code for e in events.entry} >= {
        "fhir.patient_search",
        "fhir.account_read",
    }
    assert all(e.resource.agent[0].who.identifier.value == hosp["code"] for e in events.entry)
    # another institution's export holds none of these
    other = token(client, demo["institutions"][1])
    theirs = valid(client.get(f"{BASE}/AuditEvent", params={"patient": pid}, headers=other).json())
    assert theirs.total == 0
    _outcome(
        client.get(f"{BASE}/AuditEvent", params={"date": "ge20261"}, headers=auth), 422, "date"
    )


def test_unknown_paths_are_outcomes(client: Any, auth: dict[str, str]) -> None:
    _outcome(client.get(f"{BASE}/Observation", headers=auth), 404, "url")


def test_staff_export_the_audit_log_of_their_area(
    client: Any, demo: dict[str, Any], auth: dict[str, str], token_for: Any
) -> None:
    pid = patient_id(client, auth, demo["persons"][0]["certno"])
    admin = next(s for s in demo["staff"] if s["role"] == "city_admin")
    r = client.get(
        f"{BASE}/AuditEvent", params={"patient": pid}, headers=token_for(admin["username"])
    )
    assert r.status_code == 200, r.text
    events = valid(r.json())
    assert "fhir.patient_search" in {e.resource.subtype[0].code for e in events.entry}
    # a clerk without audit.read is refused; a token that is no one's is a 401
    clerk = next(s for s in demo["staff"] if s["role"] == "county_clerk")
    _outcome(client.get(f"{BASE}/AuditEvent", headers=token_for(clerk["username"])), 403)
    _outcome(client.get(f"{BASE}/AuditEvent", headers={"Authorization": "Bearer nonsense"}), 401)


def test_a_missing_element_is_required_and_a_future_claim_names_created(
    client: Any, demo: dict[str, Any], hosp: dict[str, Any], auth: dict[str, str]
) -> None:
    pid = patient_id(client, auth, demo["persons"][0]["certno"])
    body = claim(pid, hosp["code"], [("250101001", "100.00")], identifier="NOPAT")
    del body["patient"]
    oo = _outcome(client.post(f"{BASE}/Claim", json=body, headers=auth), 422, "Claim.patient")
    assert oo.issue[0].code == "required"
    future = claim(
        pid,
        hosp["code"],
        [("250101001", "100.00")],
        identifier="LATER",
        created="2026-11-24T10:00:00+08:00",
    )
    _outcome(client.post(f"{BASE}/Claim", json=future, headers=auth), 422, "Claim.created")
