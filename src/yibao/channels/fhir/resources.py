"""yibao's answers as FHIR R4 resources, each built with the
``fhir.resources.R4B`` models (which validate it), and the FHIR inputs read
into the services' terms. No rule lives here."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.account import Account
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.claimresponse import ClaimResponse
from fhir.resources.R4B.coverage import Coverage
from fhir.resources.R4B.coverageeligibilityresponse import CoverageEligibilityResponse
from fhir.resources.R4B.explanationofbenefit import ExplanationOfBenefit
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.resource import Resource

from yibao import __version__
from yibao.clock import CHINA
from yibao.domain.errors import DomainError
from yibao.services.fhir import fhir as svc
from yibao.services.fhir.tokens import SCOPES

FHIR_JSON = "application/fhir+json"
BALANCE = "urn:yibao:fhir:StructureDefinition/account-balance"
ACCOUNT_USED = "urn:yibao:fhir:StructureDefinition/account-used"
MED_LIST = "urn:yibao:fhir:CodeSystem/med-list"
INSUTYPE = "urn:yibao:fhir:CodeSystem/insutype"
MED_TYPE = "urn:yibao:fhir:CodeSystem/med-type"
SETTLEMENT = "urn:yibao:fhir:sid/setl-id"
PAYOR = "Organization/yibao"
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
SPLIT = "urn:yibao:fhir:CodeSystem/split"

INSUTYPE_NAMES = {
    "310": "职工基本医疗保险 / employee basic medical insurance",
    "390": "城乡居民基本医疗保险 / urban and rural resident basic medical insurance",
}
# the settlement's amounts, each a ClaimResponse.total / EOB.total category
AMOUNTS = (
    ("medfee_sumamt", "submitted", ADJUDICATION, "医疗费总额 / total"),
    ("fund_pay_sumamt", "benefit", ADJUDICATION, "基金支付 / paid by the fund"),
    ("hifp_pay", "hifp_pay", SPLIT, "统筹基金支付 / pooled fund"),
    ("acct_pay", "acct_pay", SPLIT, "个人账户支付 / individual account"),
    ("psn_cash_pay", "psn_cash_pay", SPLIT, "个人现金支付 / cash"),
    ("psn_part_amt", "psn_part_amt", SPLIT, "个人负担 / personal part"),
    ("act_pay_dedc", "deductible", ADJUDICATION, "起付线 / deductible"),
    ("fulamt_ownpay_amt", "fulamt_ownpay_amt", SPLIT, "全自费 / self-paid in full"),
    ("preselfpay_amt", "preselfpay_amt", SPLIT, "先行自付 / self-paid first"),
    ("inscp_scp_amt", "inscp_scp_amt", SPLIT, "符合范围 / in scope"),
)


def money(fen: int) -> dict[str, Any]:
    return {"value": Decimal(fen) / 100, "currency": "CNY"}


def _fen(value: Any) -> int:
    """A rendered amount (yuan, two decimals) or a fen integer back as fen."""
    if isinstance(value, float):
        return round(value * 100)
    return int(value)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(CHINA).isoformat(timespec="seconds")


def dump(resource: Resource) -> bytes:
    return resource.model_dump_json(exclude_none=True).encode()


# ------------------------------------------------------------- errors

ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 409: "conflict"}


def outcome(exc: DomainError) -> OperationOutcome:
    """A refusal as an OperationOutcome naming the element
    (``expression`` and ``location``)."""
    code = ISSUE_CODES.get(exc.status, "invalid" if exc.status == 422 else "processing")
    if exc.code == "validation.missing":
        code = "required"
    if exc.code.startswith("idempotency.") or exc.code.startswith("ledger.already"):
        code = "duplicate" if exc.code.startswith("idempotency.") else "conflict"
    elif exc.status == 409:
        code = "business-rule"
    elif exc.status == 413:
        code = "too-long"
    problems = exc.problems or []
    issues = []
    listed: list[tuple[str | None, str, str]] = [(p.field, p.zh, p.en) for p in problems]
    for where, zh, en in listed or [(exc.field, exc.zh, exc.en)]:
        issue: dict[str, Any] = {
            "severity": "error",
            "code": code,
            "details": {
                "coding": [{"system": "urn:yibao:fhir:CodeSystem/error", "code": exc.code}],
                "text": f"{zh} / {en}",
            },
            "diagnostics": f"{zh} / {en}",
        }
        if where:
            issue["expression"] = [where]
            issue["location"] = [where]
        issues.append(issue)
    return OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": issues})


def information(text: str) -> OperationOutcome:
    return OperationOutcome.model_validate(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational", "diagnostics": text}],
        }
    )


# ------------------------------------------------------------- resources


def patient(p: svc.PatientView) -> Patient:
    return Patient.model_validate(
        {
            "resourceType": "Patient",
            "id": str(p.id),
            "identifier": [
                {"use": "official", "system": svc.RESIDENT_ID, "value": p.certno},
                {"use": "secondary", "system": svc.ACCOUNT_NO, "value": p.account_no},
            ],
            "active": p.status == "active",
            "name": [{"text": p.name}],
            "gender": {"1": "male", "2": "female"}.get(p.gender, "unknown"),
            "birthDate": p.birth_date.isoformat(),
        }
    )


COVERAGE_STATUS = {"active": "active", "suspended": "active", "terminated": "cancelled"}


def coverage(c: svc.CoverageView) -> Coverage:
    period: dict[str, Any] = {"start": c.start.isoformat()}
    if c.end is not None:
        period["end"] = c.end.isoformat()
    return Coverage.model_validate(
        {
            "resourceType": "Coverage",
            "id": str(c.id),
            "status": COVERAGE_STATUS.get(c.status, "active"),
            "type": {
                "coding": [
                    {
                        "system": INSUTYPE,
                        "code": c.insutype,
                        "display": INSUTYPE_NAMES.get(c.insutype),
                    }
                ],
                "text": f"{c.psn_type} ({c.status})",
            },
            "beneficiary": {"reference": f"Patient/{c.person_id}"},
            "period": period,
            "payor": [
                {
                    "reference": PAYOR,
                    "display": f"医疗保障局 {c.area} / healthcare security administration",
                }
            ],
            "class": [
                {
                    "type": {"text": "plan"},
                    "value": c.area,
                    "name": "参保地 / insured area",
                }
            ],
        }
    )


def account(a: svc.AccountView) -> Account:
    return Account.model_validate(
        {
            "resourceType": "Account",
            "id": str(a.person.id),
            "identifier": [{"system": svc.ACCOUNT_NO, "value": a.person.account_no}],
            "status": "active",
            "name": "个人医疗账户 / individual medical account",
            "subject": [{"reference": f"Patient/{a.person.id}"}],
            "extension": [{"url": BALANCE, "valueMoney": money(a.balance)}],
            "description": f"balance as of {_iso(a.as_of)}",
        }
    )


def postings(a: svc.AccountView) -> list[dict[str, Any]]:
    """The account's postings as ``Account/{id}/$postings``' parameters."""
    return [
        {
            "name": "posting",
            "part": [
                {"name": "entry", "valueString": str(line.entry_id)},
                {"name": "at", "valueDateTime": _iso(line.at)},
                {"name": "kind", "valueString": line.kind},
                {"name": "memo", "valueString": line.memo or "-"},
                {"name": "amount", "valueMoney": money(line.amount)},
                {"name": "balanceAfter", "valueMoney": money(line.balance_after)},
            ],
        }
        for line in a.postings
    ]


def eligibility(
    e: svc.Eligibility, request_id: str | None, institution: str
) -> CoverageEligibilityResponse:
    item: dict[str, Any] = {
        "category": {"text": "个人账户 / individual account"},
        "benefit": [
            {"type": {"text": "account balance"}, "allowedMoney": money(e.balance)},
        ],
    }
    insurance: dict[str, Any] = {
        "coverage": {"reference": f"Coverage/{e.coverage.id}"}
        if e.coverage
        else {"display": "none"},
        "inforce": e.refusal is None,
        "item": [item],
    }
    body: dict[str, Any] = {
        "resourceType": "CoverageEligibilityResponse",
        "status": "active",
        "purpose": ["validation", "benefits"],
        "patient": {"reference": f"Patient/{e.person.id}"},
        "created": _iso(e.at),
        "request": {"reference": f"CoverageEligibilityRequest/{request_id}"}
        if request_id
        else {"display": "the request sent"},
        "requestor": {"reference": f"Organization/{institution}"},
        "outcome": "complete",
        "insurer": {"reference": PAYOR},
        "insurance": [insurance],
        "disposition": "可以结算 / may be settled"
        if e.refusal is None
        else f"{e.refusal.zh} / {e.refusal.en}",
    }
    if e.refusal is not None:
        body["error"] = [
            {
                "code": {
                    "coding": [
                        {"system": "urn:yibao:fhir:CodeSystem/error", "code": e.refusal.code}
                    ],
                    "text": f"{e.refusal.zh} / {e.refusal.en}",
                }
            }
        ]
    return CoverageEligibilityResponse.model_validate(body)


def _totals(info: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "category": {"coding": [{"system": system, "code": code}], "text": text},
            "amount": money(_fen(info[key])),
        }
        for key, code, system, text in AMOUNTS
    ]


def claim_response(
    info: dict[str, Any], institution: str, *, status: str = "active"
) -> ClaimResponse:
    """A settlement (2207's ``setlinfo`` or a stored one) as a ClaimResponse
    whose id is the settlement's id."""
    setl_id = info["setl_id"]
    return ClaimResponse.model_validate(
        {
            "resourceType": "ClaimResponse",
            "id": setl_id,
            "identifier": [{"system": SETTLEMENT, "value": setl_id}],
            "status": status,
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                        "code": "professional",
                    }
                ]
            },
            "use": "claim",
            "patient": {"reference": f"Patient/{info['psn_no']}"},
            "created": _iso(info["at"])
            if "at" in info
            else info["setl_time"].replace(" ", "T") + "+08:00",
            "insurer": {"reference": PAYOR},
            "requestor": {"reference": f"Organization/{institution}"},
            "request": {"reference": f"Claim/{setl_id}"},
            "outcome": "complete",
            "disposition": "已撤销 / cancelled" if status == "cancelled" else "已结算 / settled",
            "preAuthRef": info.get("mdtrt_id"),
            "total": _totals(info),
            "payment": {"type": {"text": "fund"}, "amount": money(_fen(info["fund_pay_sumamt"]))},
            "extension": [{"url": BALANCE, "valueMoney": money(_fen(info["balc"]))}],
        }
    )


def eob(info: dict[str, Any], institution: str) -> ExplanationOfBenefit:
    setl_id = info["setl_id"]
    return ExplanationOfBenefit.model_validate(
        {
            "resourceType": "ExplanationOfBenefit",
            "id": setl_id,
            "identifier": [{"system": SETTLEMENT, "value": setl_id}],
            "status": "cancelled" if info["status"] != "settled" else "active",
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                        "code": "professional",
                    }
                ]
            },
            "use": "claim",
            "patient": {"reference": f"Patient/{info['psn_no']}"},
            "created": _iso(info["setl_at"]),
            "insurer": {"reference": PAYOR},
            "provider": {"reference": f"Organization/{institution}"},
            "claim": {"reference": f"Claim/{setl_id}"},
            "claimResponse": {"reference": f"ClaimResponse/{setl_id}"},
            "outcome": "complete",
            "insurance": [{"focal": True, "coverage": {"display": info["insutype"]}}],
            "total": _totals(info),
        }
    )


def audit_event(a: svc.AuditView) -> AuditEvent:
    body: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(a.id),
        "type": {"system": "urn:yibao:fhir:CodeSystem/audit-channel", "code": a.channel},
        "subtype": [{"system": "urn:yibao:fhir:CodeSystem/audit-action", "code": a.action}],
        "action": "R" if a.action.endswith(("read", "search", "info", "query")) else "E",
        "recorded": _iso(a.at),
        "outcome": "0",
        "agent": [
            {
                "type": {"text": a.actor_kind},
                "who": {
                    "identifier": {
                        "system": f"urn:yibao:fhir:sid/{a.actor_kind}",
                        "value": a.actor_id,
                    }
                },
                "requestor": True,
            }
        ],
        "source": {"observer": {"display": "yibao"}},
    }
    entity = []
    if a.person_id is not None:
        entity.append({"what": {"reference": f"Patient/{a.person_id}"}})
    if a.subject:
        entity.append({"what": {"display": a.subject}})
    if entity:
        body["entity"] = entity
    return AuditEvent.model_validate(body)


def bundle(resources: list[Resource], base: str) -> Bundle:
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(resources),
            "entry": [
                {
                    "fullUrl": f"{base}/{r.get_resource_type()}/{r.id}",
                    "resource": r.model_dump(exclude_none=True),
                    "search": {"mode": "match"},
                }
                for r in resources
            ],
        }
    )


def capability(now: dt.datetime, base: str) -> CapabilityStatement:
    def res(
        kind: str,
        interactions: list[str],
        params: list[tuple[str, str]],
        ops: list[str] | None = None,
    ) -> dict[str, Any]:
        if ops is None:
            ops = []
        out: dict[str, Any] = {"type": kind, "interaction": [{"code": i} for i in interactions]}
        if params:
            out["searchParam"] = [{"name": n, "type": t} for n, t in params]
        if ops:
            out["operation"] = [
                {"name": o, "definition": f"urn:yibao:fhir:OperationDefinition/{o}"} for o in ops
            ]
        return out

    return CapabilityStatement.model_validate(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": _iso(now),
            "kind": "instance",
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "software": {"name": "yibao", "version": __version__},
            "implementation": {"description": "yibao 医保卡服务 FHIR R4", "url": base},
            "rest": [
                {
                    "mode": "server",
                    "security": {
                        "service": [
                            {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                        "code": "SMART-on-FHIR",
                                    }
                                ]
                            }
                        ],
                        "description": f"OAuth2 client credentials at {base}/auth/token; scopes: {' '.join(SCOPES)}",
                    },
                    "resource": [
                        res("Patient", ["read", "search-type"], [("identifier", "token")]),
                        res(
                            "Coverage",
                            ["read", "search-type"],
                            [("patient", "reference"), ("beneficiary", "reference")],
                        ),
                        res(
                            "Account",
                            ["read", "search-type"],
                            [("patient", "reference")],
                            ["postings"],
                        ),
                        res("CoverageEligibilityRequest", [], [], ["eligibility"]),
                        res("Claim", ["create"], [], ["cancel"]),
                        res("ClaimResponse", ["read"], []),
                        res("ExplanationOfBenefit", ["search-type"], [("patient", "reference")]),
                        res(
                            "AuditEvent",
                            ["search-type"],
                            [("date", "date"), ("patient", "reference")],
                        ),
                    ],
                }
            ],
        }
    )
