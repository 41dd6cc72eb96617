"""The FHIR endpoints under ``/fhir/R4``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from fhir.resources.R4B.parameters import Parameters
from fhir.resources.R4B.resource import Resource
from starlette.concurrency import run_in_threadpool

from yibao.channels.fhir import inputs
from yibao.channels.fhir import resources as out
from yibao.domain.errors import DomainError, invalid
from yibao.runtime import Services
from yibao.services.access import staff
from yibao.services.access.institution_auth import Caller
from yibao.services.fhir import fhir as svc
from yibao.services.fhir import tokens

log = logging.getLogger("yibao.fhir")
router = APIRouter(include_in_schema=False)


def _reply(resource: Resource, status: int = 200) -> Response:
    return Response(out.dump(resource), status_code=status, media_type=out.FHIR_JSON)


def _refused(exc: DomainError) -> Response:
    status = exc.status if exc.status in (400, 401, 403, 404, 409, 413, 422) else 400
    headers = {"WWW-Authenticate": 'Bearer realm="yibao-fhir"'} if status == 401 else None
    return Response(
        out.dump(out.outcome(exc)), status_code=status, media_type=out.FHIR_JSON, headers=headers
    )


async def _body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > inputs.MAX_BODY:
            raise inputs.too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir/R4"


async def _serve(
    request: Request, scope: str, work: Callable[[Services, Caller], Resource], status: int = 200
) -> Response:
    """Authenticate the token for ``scope``, then ``work``; every refusal an
    OperationOutcome, never a stack trace."""
    services: Services = request.app.state.services

    def run() -> Resource:
        caller = tokens.authenticate(
            services.uow(), authorization=request.headers.get("authorization"), scope=scope
        )
        return work(services, caller)

    try:
        return _reply(await run_in_threadpool(run), status)
    except DomainError as exc:
        return _refused(exc)
    except Exception:
        return _internal(request)


def _internal(request: Request) -> Response:
    """A fault of yibao itself: logged for the operator, an outcome without
    a stack trace for the client."""
    log.exception("FHIR %s %s failed", request.method, request.url.path[:100])
    return Response(
        out.dump(
            out.outcome(
                DomainError(
                    code="internal",
                    zh="系统内部错误，请稍后再试",
                    en="internal error; please try again later",
                    status=500,
                )
            )
        ),
        status_code=500,
        media_type=out.FHIR_JSON,
    )


def _param(request: Request, *names: str) -> str | None:
    for name in names:
        value = request.query_params.get(name)
        if value is not None:
            return value
    return None


def _patient_param(request: Request, *names: str) -> int:
    value = _param(request, *names)
    if value is None:
        raise invalid(
            names[0],
            f"缺少查询参数{names[0]}",
            f"the search parameter {names[0]} is required",
            "missing",
        )
    return inputs.patient_id(value, names[0])


def _id(value: str, kind: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise DomainError(
            code="fhir.not_found",
            zh="未找到该资源",
            en=f"no such {kind}/{value[:40]}",
            field=f"{kind}.id",
            status=404,
        )
    return int(value)


# ------------------------------------------------------------- endpoints


@router.get("/metadata")
def metadata(request: Request) -> Response:
    services: Services = request.app.state.services
    return _reply(out.capability(services.clock.now(), _base(request)))


@router.post("/auth/token")
async def token(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        raw = await _body(request)
        try:
            form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), strict_parsing=False).items()}
        except UnicodeDecodeError:
            raise invalid("body", "表单应为UTF-8", "the form is UTF-8") from None
        issued = await run_in_threadpool(
            tokens.issue,
            services.uow(),
            grant_type=form.get("grant_type"),
            client_id=form.get("client_id"),
            client_secret=form.get("client_secret"),
            scope=form.get("scope"),
        )
    except DomainError as exc:
        return _refused(exc)
    except Exception:
        return _internal(request)
    return Response(
        orjson.dumps(
            {
                "access_token": issued.access_token,
                "token_type": "Bearer",
                "expires_in": issued.expires_in,
                "scope": " ".join(issued.scopes),
            }
        ),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/Patient/{pid}")
async def patient_read(request: Request, pid: str) -> Response:
    return await _serve(
        request,
        "system/Patient.read",
        lambda s, c: out.patient(svc.read_patient(s.uow(), c, person_id=_id(pid, "Patient"))),
    )


@router.get("/Patient")
async def patient_search(request: Request) -> Response:
    def work(s: Services, c: Caller) -> Resource:
        system, value = inputs.search_identifier(_param(request, "identifier"))
        found = svc.search_patients(s.uow(), c, system=system, value=value)
        return out.bundle([out.patient(p) for p in found], _base(request))

    return await _serve(request, "system/Patient.read", work)


@router.get("/Coverage/{cid}")
async def coverage_read(request: Request, cid: str) -> Response:
    return await _serve(
        request,
        "system/Coverage.read",
        lambda s, c: out.coverage(svc.read_coverage(s.uow(), c, coverage_id=_id(cid, "Coverage"))),
    )


@router.get("/Coverage")
async def coverage_search(request: Request) -> Response:
    def work(s: Services, c: Caller) -> Resource:
        pid = _patient_param(request, "patient", "beneficiary")
        return out.bundle(
            [out.coverage(x) for x in svc.coverages(s.uow(), c, person_id=pid)], _base(request)
        )

    return await _serve(request, "system/Coverage.read", work)


@router.get("/Account/{aid}")
async def account_read(request: Request, aid: str) -> Response:
    return await _serve(
        request,
        "system/Account.read",
        lambda s, c: out.account(svc.account(s.uow(), c, person_id=_id(aid, "Account"))),
    )


@router.get("/Account")
async def account_search(request: Request) -> Response:
    def work(s: Services, c: Caller) -> Resource:
        pid = _patient_param(request, "patient", "subject")
        return out.bundle(
            [out.account(svc.account(s.uow(), c, person_id=pid, element="patient"))], _base(request)
        )

    return await _serve(request, "system/Account.read", work)


@router.get("/Account/{aid}/$postings")
async def account_postings(request: Request, aid: str) -> Response:
    def work(s: Services, c: Caller) -> Resource:
        a = svc.account(s.uow(), c, person_id=_id(aid, "Account"))
        return Parameters.model_validate(
            {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "balance", "valueMoney": out.money(a.balance)},
                    *out.postings(a),
                ],
            }
        )

    return await _serve(request, "system/Account.read", work)


@router.post("/CoverageEligibilityRequest/$eligibility")
@router.post("/CoverageEligibilityRequest")
async def eligibility(request: Request) -> Response:
    try:
        data = inputs.body_json(await _body(request))
    except DomainError as exc:
        return _refused(exc)

    def work(s: Services, c: Caller) -> Resource:
        pid, rid = inputs.eligibility_request(data)
        return out.eligibility(svc.eligibility(s.uow(), c, person_id=pid), rid, c.code)

    return await _serve(request, "system/CoverageEligibilityRequest.write", work)


@router.post("/Claim/$submit")
@router.post("/Claim")
async def claim(request: Request) -> Response:
    try:
        data = inputs.body_json(await _body(request))
    except DomainError as exc:
        return _refused(exc)

    def work(s: Services, c: Caller) -> Resource:
        given = inputs.claim(data, s.clock.now())
        answer = svc.submit_claim(s.uow(), c, claim=given)
        return out.claim_response(answer["setlinfo"], c.code)

    return await _serve(request, "system/Claim.write", work)


@router.post("/Claim/{claim_id}/$cancel")
async def claim_cancel(request: Request, claim_id: str) -> Response:
    def work(s: Services, c: Caller) -> Resource:
        answer = svc.cancel_claim(s.uow(), c, claim_id=claim_id)
        return out.claim_response(answer["setlinfo"], c.code, status="cancelled")

    return await _serve(request, "system/Claim.write", work)


@router.get("/ClaimResponse/{claim_id}")
async def claim_response_read(request: Request, claim_id: str) -> Response:
    def work(s: Services, c: Caller) -> Resource:
        info = svc.claim_response(s.uow(), c, claim_id=claim_id)
        return out.claim_response(
            info, c.code, status="active" if info["status"] == "settled" else "cancelled"
        )

    return await _serve(request, "system/ExplanationOfBenefit.read", work)


@router.get("/ExplanationOfBenefit")
async def eob_search(request: Request) -> Response:
    def work(s: Services, c: Caller) -> Resource:
        pid = _patient_param(request, "patient")
        return out.bundle(
            [out.eob(x, c.code) for x in svc.explanations(s.uow(), c, person_id=pid)],
            _base(request),
        )

    return await _serve(request, "system/ExplanationOfBenefit.read", work)


@router.get("/AuditEvent")
async def audit_search(request: Request) -> Response:
    """For an institution's token its own entries; for a staff API token
    (``yibao`` staff with ``audit.read``) those of the staff's area."""
    authorization = request.headers.get("authorization") or ""
    staff_token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
    if staff_token and not staff_token.startswith(tokens.PREFIX + "."):
        return await _serve_staff(request, staff_token)

    def work(s: Services, c: Caller) -> Resource:
        start, end, pid = _audit_params(request)
        rows = svc.audit_events(s.uow(), c, start=start, end=end, person_id=pid)
        return out.bundle([out.audit_event(r) for r in rows], _base(request))

    return await _serve(request, "system/AuditEvent.read", work)


def _audit_params(request: Request) -> tuple[Any, Any, int | None]:
    start, end = inputs.search_date(request.query_params.getlist("date"))
    given = _param(request, "patient", "entity")
    return start, end, inputs.patient_id(given, "patient") if given is not None else None


async def _serve_staff(request: Request, token: str) -> Response:
    services: Services = request.app.state.services

    def run() -> Resource:
        session = staff.authenticate_request(services.uow(), token=token)
        start, end, pid = _audit_params(request)
        rows = svc.staff_audit_events(
            services.uow(), session.actor, start=start, end=end, person_id=pid
        )
        return out.bundle([out.audit_event(r) for r in rows], _base(request))

    try:
        return _reply(await run_in_threadpool(run))
    except DomainError as exc:
        return _refused(exc)
    except Exception:
        return _internal(request)


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown(rest: str) -> Response:
    return _refused(
        DomainError(
            code="fhir.not_supported",
            zh="不支持的FHIR资源或操作",
            en=f"not supported here: {rest[:80]}; see metadata",
            field="url",
            status=404,
        )
    )
