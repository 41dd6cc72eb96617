"""Request plumbing for the staff JSON API: a fresh unit of work for the one
use case a route calls, and the acting staff user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from yibao.channels.api.fields import AccountNo
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


# The two ways to authenticate, declared so the OpenAPI document (and the
# "Authorize" button of /docs) knows them; ``staff`` reads both itself.
_bearer = HTTPBearer(
    auto_error=False, description="an API token from POST /api/v1/auth/tokens (ybt_...)"
)
_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="the session cookie set by POST /api/v1/auth/login; "
    "a change made with it also sends the X-CSRF-Token header",
)


def staff(
    request: Request,
    svc: Annotated[Services, Depends(services)],
    _bearer_token: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _session_cookie: Annotated[str | None, Depends(_cookie)],
) -> StaffContext:
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


def holder(account_no: AccountNo, ctx: Staff, svc: Annotated[Services, Depends(services)]) -> int:
    """The person a ``/persons/{account_no}/...`` route acts for, in the
    caller's area (else 404)."""
    return registry.person_id_of(svc.uow(), actor=ctx.actor, account_no=account_no)


Holder = Annotated[int, Depends(holder)]
