"""The ASGI application: every channel mounted on one FastAPI app, on the
``Services`` of ``yibao.runtime``."""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from yibao import __version__
from yibao.channels.api import docs as api_docs
from yibao.channels.api import errors as api_errors
from yibao.clock import Clock
from yibao.config import Settings
from yibao.observability.asgi import observe
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
        # every request, the fronts' too, gets its id and is counted
        await observe(self._answer, scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
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

    _operations(app, services)

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


# ---- issue 17: metrics and health -------------------------------------------

# who may scrape /metrics when no token is set: this machine and private networks
_INTERNAL = tuple(
    ipaddress.ip_network(n)
    for n in ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


def _internal(host: str | None) -> bool:
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in net for net in _INTERNAL)


def _operations(app: App, services: Services) -> None:
    """/healthz, /readyz and /metrics: what a load balancer and Prometheus ask."""
    from yibao.channels.his.routes import HANDLERS
    from yibao.observability import health, metrics
    from yibao.store import migrate

    settings, engine = services.settings, services.engine
    heads = migrate.heads()
    metrics.known_infnos(HANDLERS)

    def asyncpg_pools() -> list[Any]:
        fast = app.state.his_fast
        return list(getattr(fast, "_pools", {}).values()) if fast is not None else []

    pools = metrics.Pools(engine.pool, asyncpg_pools)

    def probe() -> None:
        try:
            check_connection(settings.effective_database_url, engine)
        except DatabaseUnreachable as exc:
            raise health.NotReady("database unreachable", str(exc)) from None
        health.schema_current(engine, heads)

    @app.get("/healthz", tags=["ops"], response_model=None)
    def healthz() -> JSONResponse:
        """The process is alive: no database, so a slow database never gets
        a live process restarted (that is /readyz's to report)."""
        return JSONResponse({"status": "ok", "version": __version__})

    @app.get(
        "/readyz",
        tags=["ops"],
        response_model=None,
        responses={503: {"description": "the database is unreachable, slow, or not migrated"}},
    )
    async def readyz() -> JSONResponse:
        try:
            await health.check(probe, settings.readyz_timeout_seconds)
        except health.NotReady as exc:
            # the operator's log names the database and why (one line, no
            # password); the unauthenticated answer names neither
            log.error("readyz: %s", exc.detail)
            return JSONResponse(
                {"status": "not ready", "reason": exc.reason, "version": __version__},
                status_code=503,
            )
        return JSONResponse({"status": "ready", "schema": heads, "version": __version__})

    @app.get("/metrics", tags=["ops"], response_model=None, include_in_schema=False)
    def metrics_endpoint(request: Request) -> Response:
        token = settings.metrics_token
        if token:
            sent = request.headers.get("authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
                return JSONResponse(
                    {"status": "a bearer token is required"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        elif not _internal(request.client.host if request.client else None):
            return JSONResponse({"status": "internal addresses only"}, status_code=403)
        return Response(metrics.scrape(pools), media_type=metrics.CONTENT_TYPE)
