"""The staff API's errors: every failure is ``application/problem+json``
(RFC 9457) with a stable ``code``; a domain error names its field.

The OpenAPI document declares them: every operation lists the refusals it
can give (400 an unreadable body, 401 no log-in, 403 no permission or no
CSRF token, 404 not found or outside the caller's area, 409 a conflict with
the object's state, 422 a value that does not read, 503 the database failed
and the outcome is unknown) with the problem+json schema, so a generated
client knows them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
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


class FieldError(BaseModel):
    field: str = Field(description="the field, as it stood in the request (a.b for nested)")
    reason: str = Field(description="why it was refused, in Chinese / English")


class Problem(BaseModel):
    """A refusal (RFC 9457 problem details) with yibao's stable ``code``."""

    type: str = Field(description="urn:yibao:problem:<code>")
    title: str
    status: int
    detail: str = Field(description="what went wrong, in Chinese / English")
    code: str = Field(description="stable code, e.g. validation.request, auth.required")
    field: str | None = Field(default=None, description="the (first) field refused")
    errors: list[FieldError] | None = Field(default=None, description="every field refused")


_ANSWERS = {
    400: "请求内容无法解析 the request body cannot be read (not UTF-8, not the declared type)",
    401: "未登录或用户名、密码错误 not logged in, or wrong username or password",
    403: "无此权限，或缺少CSRF令牌 not permitted, or the session's CSRF token is missing",
    404: "未找到，或不在您的管辖区域 not found, or outside your area",
    409: "与对象当前状态冲突 conflicts with the object's current state",
    422: "字段值有误（指出字段） a value does not read; the field is named",
    429: "尝试过于频繁 too many attempts; try again later",
    503: "数据库故障，结果未知；请用相同的幂等键重发 the database failed; send again with the same key",
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these refusals, each a problem+json."""
    return {
        status: {"description": _ANSWERS[status], "content": {PROBLEM: {"schema": _PROBLEM_REF}}}
        for status in statuses
    }


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def declare(route: APIRoute, staff: Any, *, permitted: bool = False) -> None:
    """Add to a route's declared answers the refusals every route like it
    can give: a route behind a staff log-in (``staff``) 401 and 503, and 403
    unless every staff user is ``permitted`` it; a route with parameters 422;
    a route with a body 400. A route declares 404 and 409 itself, where its
    service may give them."""
    statuses = set()
    parts = list(_dependants(route.dependant))
    if any(d.call is staff for d in parts):
        statuses |= {401, 503} if permitted else {401, 403, 503}
    if route.body_field is not None or any(
        d.path_params or d.query_params or d.header_params for d in parts
    ):
        statuses.add(422)
    if route.body_field is not None:
        statuses.add(400)
    route.responses = {**answers(*sorted(statuses)), **route.responses}


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


# pydantic's own refusals, said in Chinese too; the fields layer's readings
# (fields.py) already give both languages.
_REASONS_ZH = {
    "missing": "必填",
    "json_invalid": "不是有效的JSON",
    "json_type": "不是有效的JSON",
    "enum": "不在可选值之内",
    "literal_error": "不在可选值之内",
    "bool_type": "应为true或false",
    "bool_parsing": "应为true或false",
    "model_type": "应为对象",
    "model_attributes_type": "应为对象",
    "dict_type": "应为对象",
    "list_type": "应为列表",
    "string_type": "应为文本",
    "too_long": "项目过多",
    "too_short": "项目过少",
    "timezone_aware": "时间须带时区",
    "datetime_type": "时间格式错误",
    "datetime_parsing": "时间格式错误",
    "datetime_from_date_parsing": "时间格式错误",
}


def _reason(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    if "/" in message and error.get("type", "").startswith("validation."):
        return message  # a reading of fields.py: already "zh / en"
    return f"{_REASONS_ZH.get(str(error.get('type')), '格式错误')} / {message}"


def install(app: FastAPI) -> None:
    """The handlers; the web pages and the HIS interface answer in their own forms."""
    document(app)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        response = domain_problem(exc)
        # a refusal for too many requests says when to come back (RFC 9110)
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, int):
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_of(e.get("loc", ())), "reason": _reason(e)} for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
        return problem(
            422,
            _TITLES[422],
            f"请求内容有误 / invalid request: {detail}",
            "validation.request",
            field=errors[0]["field"] if errors else "body",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = (
            exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
        )
        if exc.status_code == 400:
            detail = f"请求内容无法解析 / {detail}"
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


def document(app: FastAPI) -> None:
    """Put the problem+json schema the routes refer to into the OpenAPI
    document's components, once."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = make()
            found = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(found.pop("$defs", {}))
            schemas["Problem"] = found
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
