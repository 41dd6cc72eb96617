"""The ASGI application: every channel mounted on one FastAPI app, on the
``Services`` of ``yibao.runtime``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from yibao import __version__
from yibao.channels.api import docs as api_docs
from yibao.channels.api import errors as api_errors
from yibao.clock import Clock
from yibao.config import Settings
from yibao.runtime import Services
from yibao.store.db import DatabaseUnreachable, check_connection

log = logging.getLogger("yibao")

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
    services = Services.from_settings(settings, clock=clock)
    settings, engine = services.settings, services.engine
    his_fast = None
    if settings.his_fast_path and services.backend.server_functions:
        from yibao.services.settlement.fast_path import FastPath

        his_fast = FastPath(
            engine,
            services.clock,
            audit_key=services.backend.audit_key,
            acct_in_fund=settings.his_fund_pay_includes_acct,
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
        # /docs is yibao's own page with vendored assets (channels/api/docs.py);
        # FastAPI's would load Swagger UI and ReDoc from a public CDN
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    app.state.his_fast = his_fast
    api_errors.install(app)
    api_docs.install(app)

    @app.get(
        "/healthz",
        tags=["ops"],
        response_model=None,
        responses={503: {"description": "the database cannot be reached"}},
    )
    def healthz() -> JSONResponse:
        try:
            check_connection(settings.effective_database_url, engine)
        except DatabaseUnreachable as exc:
            # the operator's log names the database and why (one line, no
            # password); the unauthenticated answer names neither
            log.error("healthz: %s", exc)
            return JSONResponse(
                {"status": "database unreachable", "version": __version__}, status_code=503
            )
        return JSONResponse({"status": "ok", "version": __version__})

    from yibao.channels.api import router as api_router

    app.include_router(api_router, prefix="/api/v1")

    from yibao.channels.fhir import router as fhir_router

    app.include_router(fhir_router, prefix="/fhir/R4")

    from yibao.channels.ivr import router as ivr_router

    app.include_router(ivr_router)

    from yibao.channels.his import ROUTES as HIS_ROUTES
    from yibao.channels.his import front as his_front

    app.fronts = [his_front]
    app.router.routes[0:0] = HIS_ROUTES
    from yibao.channels import web

    web.mount(app)
    return app
