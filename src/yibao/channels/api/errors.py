"""The staff API's errors: every failure is ``application/problem+json``
(RFC 9457) with a stable ``code``; a domain error names its field."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from yibao.domain.errors import DomainError

log = logging.getLogger("yibao")

PROBLEM = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(status: int, title: str, detail: str, code: str, **extra: Any) -> JSONResponse:
    body = {
        "type": f"urn:yibao:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def domain_problem(exc: DomainError) -> JSONResponse:
    extra: dict[str, Any] = {}
    if exc.problems:
        extra["errors"] = [p.as_dict() for p in exc.problems]
    if exc.field:
        extra["field"] = exc.field
    return problem(exc.status, _TITLES.get(exc.status, "Error"), exc.message, exc.code, **extra)


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    """The handlers; the web pages and the HIS interface answer in their own forms."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return domain_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_of(e.get("loc", ())), "reason": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
        return problem(
            422,
            _TITLES[422],
            f"请求内容有误 / invalid request: {detail}",
            "validation.request",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = (
            exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
        )
        return problem(
            exc.status_code,
            _TITLES.get(exc.status_code, "Error"),
            detail,
            f"http.{exc.status_code}",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Logged with its trace for operators; the client sees no internals.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500,
            _TITLES[500],
            "系统内部错误，请稍后再试 / internal error; please try again later",
            "internal",
        )
