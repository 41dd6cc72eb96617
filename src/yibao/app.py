"""The ASGI application: every channel mounted on one FastAPI app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from yibao import __version__
from yibao.clock import Clock
from yibao.config import Settings, get_settings
from yibao.domain.errors import DomainError
from yibao.services import security
from yibao.store.db import make_engine, make_session_factory
from yibao.store.uow import UnitOfWork

log = logging.getLogger("yibao")

PROBLEM = "application/problem+json"


@dataclass
class Services:
    """What every request needs: the database, the clock and the settings."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    clock: Clock

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory, self.clock, self.settings)


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
}


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        extra: dict[str, Any] = {}
        if exc.problems:
            extra["errors"] = [p.as_dict() for p in exc.problems]
        if exc.field:
            extra["field"] = exc.field
        return problem(exc.status, _TITLES.get(exc.status, "Error"), exc.message, exc.code, **extra)

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


Front = Callable[[Any, Scope, Receive, Send], Awaitable[bool]]


class App(FastAPI):
    """FastAPI, with bare ASGI handlers tried first (``fronts``) for the few
    endpoints whose volume makes the middleware stack and routing a cost of
    their own (the HIS interface); each answers whether it took the request."""

    fronts: list[Front]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        for handler in self.fronts:
            if await handler(self, scope, receive, send):
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> App:
    settings = settings or get_settings()
    security.configure(settings.argon2_profile)
    engine = make_engine(settings.effective_database_url)
    services = Services(settings, engine, make_session_factory(engine), clock or Clock())
    his_fast = None
    if settings.his_fast_path and engine.dialect.name == "postgresql":
        from yibao.services.his_fast import FastPath

        his_fast = FastPath(
            engine, services.clock, acct_in_fund=settings.his_fund_pay_includes_acct
        )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if his_fast is not None:
            await his_fast.close()

    app = App(
        lifespan=lifespan,
        title="yibao 医保卡服务",
        version=__version__,
        description=(
            "医疗保险卡服务：参保登记、办卡、个人账户、结算与查询。\n\n"
            "Medical insurance card service: registry, cards, individual accounts, settlement "
            "and inquiry. Errors are `application/problem+json` (RFC 9457)."
        ),
        openapi_url="/api/v1/openapi.json",
    )
    app.state.services = services
    app.state.his_fast = his_fast
    install_error_handlers(app)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    from yibao.channels.api import router as api_router

    app.include_router(api_router, prefix="/api/v1")

    from yibao.channels.ivr import router as ivr_router

    app.include_router(ivr_router)

    from yibao.channels.his import ROUTES as HIS_ROUTES
    from yibao.channels.his import front as his_front

    app.fronts = [his_front]
    app.router.routes[0:0] = HIS_ROUTES
    from yibao.channels import web

    web.mount(app)
    return app
