"""The FHIR tests' helpers: a token as a client gets one, a Claim, and the
check that an answer is a valid R4 resource."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class

BASE = "/fhir/R4"
FHIR_JSON = "application/fhir+json"


def valid(body: dict[str, Any]) -> Any:
    """The answer parsed back with its fhir.resources R4B model (raises if invalid)."""
    return get_fhir_model_class(body["resourceType"]).model_validate(body)


def token(client: Any, inst: dict[str, Any], scope: str | None = None) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": inst["code"],
        "client_secret": inst["secret"],
    }
    if scope is not None:
        form["scope"] = scope
    r = client.post(f"{BASE}/auth/token", data=form)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def claim(
    person_id: int | str,
    institution: str,
    lines: list[tuple[str, str]],
    *,
    identifier: str = "C-0001",
    total: str | None = None,
    created: str = "2026-11-23T10:00:00+08:00",
) -> dict[str, Any]:
    return {
        "resourceType": "Claim",
        "identifier": [{"system": f"urn:his:{institution}:claim", "value": identifier}],
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "professional",
                }
            ]
        },
        "use": "claim",
        "patient": {"reference": f"Patient/{person_id}"},
        "created": created,
        "provider": {"reference": f"Organization/{institution}"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/1"}}],
        "item": [
            {
                "sequence": i + 1,
                "productOrService": {
                    "coding": [{"system": "urn:yibao:fhir:CodeSystem/med-list", "code": code}]
                },
                "unitPrice": {"value": amount, "currency": "CNY"},
                "net": {"value": amount, "currency": "CNY"},
            }
            for i, (code, amount) in enumerate(lines)
        ],
        **({"total": {"value": total, "currency": "CNY"}} if total is not None else {}),
    }


def patient_id(client: Any, headers: dict[str, str], certno: str) -> str:
    r = client.get(
        f"{BASE}/Patient",
        params={"identifier": f"urn:oid:2.16.156.10011.1.1|{certno}"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    bundle = valid(r.json())
    assert bundle.total == 1
    return str(bundle.entry[0].resource.id)
