"""Request plumbing for the staff JSON API: a fresh unit of work for the one
use case a route calls, and the acting staff user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from yibao.domain.errors import unauthorized
from yibao.runtime import Services
from yibao.services.access import staff as access_service
from yibao.services.registry import registry
from yibao.store.uow import UnitOfWork

SESSION_COOKIE = "yibao_staff"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def uow(svc: Annotated[Services, Depends(services)]) -> UnitOfWork:
    return svc.uow()


# Who is calling: the staff user behind the cookie or token.
StaffContext = access_service.StaffSession


def _token_of(request: Request) -> tuple[str | None, str]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), "bearer"
    return request.cookies.get(SESSION_COOKIE), "cookie"


def staff(request: Request, svc: Annotated[Services, Depends(services)]) -> StaffContext:
    token, how = _token_of(request)
    if not token:
        raise unauthorized(
            "auth.required", "请先登录", "log in first (session cookie or Bearer token)"
        )
    return access_service.authenticate_request(
        svc.uow(),
        token=token,
        csrf=request.headers.get("x-csrf-token"),
        change=how == "cookie" and request.method not in SAFE_METHODS,
    )


Staff = Annotated[StaffContext, Depends(staff)]
Work = Annotated[UnitOfWork, Depends(uow)]


def holder(account_no: str, ctx: Staff, svc: Annotated[Services, Depends(services)]) -> int:
    """The person a ``/persons/{account_no}/...`` route acts for, in the
    caller's area (else 404)."""
    return registry.person_id_of(svc.uow(), actor=ctx.actor, account_no=account_no)


Holder = Annotated[int, Depends(holder)]
