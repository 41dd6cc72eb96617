"""Request plumbing for the staff JSON API: the unit of work and the acting staff user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from yibao.domain.actors import Actor
from yibao.domain.errors import unauthorized
from yibao.runtime import Services
from yibao.services.access import staff as access_service
from yibao.store.uow import UnitOfWork

SESSION_COOKIE = "yibao_staff"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def uow(svc: Annotated[Services, Depends(services)]) -> UnitOfWork:
    return svc.uow()


@dataclass
class StaffContext:
    actor: Actor
    user_id: int
    credential_id: int
    credential_kind: str


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
    with svc.uow() as work:
        user, cred = access_service.authenticate(work, token=token)
        # A browser session must prove each change came from our own page;
        # API tokens are not sent by browsers on their own, so they need not.
        if how == "cookie" and request.method not in SAFE_METHODS:
            access_service.check_csrf(cred, request.headers.get("x-csrf-token"))
        now = work.clock.now()
        if cred.last_used_at is None or (now - cred.last_used_at).total_seconds() > 300:
            cred.last_used_at = now
            work.commit()
        return StaffContext(access_service.actor_of(user), user.id, cred.id, cred.kind)


Staff = Annotated[StaffContext, Depends(staff)]
Work = Annotated[UnitOfWork, Depends(uow)]
