"""Server-rendered pages: the person's portal, the self-service terminal,
the staff counter console (issue 5), the employer's channel and the start
page at ``/`` (issue 15)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    from yibao.channels.web import (
        counter,
        counter_directory,
        dashboard,
        employer,
        kiosk,
        landing,
        portal,
        public,
    )
    from yibao.channels.web.common import SecurityHeaders

    app.mount("/web-static", StaticFiles(directory=STATIC), name="web-static")
    root = APIRouter(include_in_schema=False)
    root.include_router(portal.router, prefix="/portal")
    root.include_router(kiosk.router, prefix="/kiosk")
    # before the counter's own routes, whose last one takes every other path
    root.include_router(counter_directory.router, prefix="/counter/directory")
    root.include_router(dashboard.router, prefix="/counter/dashboard")
    root.include_router(counter.router, prefix="/counter")
    root.include_router(employer.router, prefix="/employer")
    root.include_router(public.router, prefix="/public")
    root.include_router(landing.router)
    app.include_router(root)
    # the pages' security headers, on every answer under their paths only
    app.add_middleware(SecurityHeaders)
