"""Staff log-in, log-out and API tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import Field

from yibao.channels.api import views
from yibao.channels.api.deps import SESSION_COOKIE, Staff, Work
from yibao.channels.api.errors import answers
from yibao.channels.api.fields import Body, Label, Password, TokenDays, Username
from yibao.domain.actors import Channel
from yibao.services.access import staff as access_service

router = APIRouter(prefix="/auth", tags=["auth 登录"])


class LoginIn(Body):
    username: Username
    password: Password


class TokenIn(Body):
    label: Label = Field(description="what the machine client is")
    days: TokenDays = 90


@router.post("/login", responses=answers(401))
def login(body: LoginIn, response: Response, work: Work) -> dict[str, Any]:
    """Log in; sets an HttpOnly, Secure, SameSite=Strict session cookie.

    Changes made with the cookie must carry the returned ``csrf_token`` in the
    ``X-CSRF-Token`` header. An unknown user, a wrong password and a user
    locked after too many wrong passwords are all answered the same 401, so
    that the answer does not tell which usernames exist."""
    settings = work.settings
    result = access_service.login(
        work,
        username=body.username,
        password=body.password,
        channel=Channel.API,
        session_hours=settings.session_hours,
        max_failures=settings.staff_login_max_failures,
        lock_minutes=settings.staff_login_lock_minutes,
    )
    response.set_cookie(
        SESSION_COOKIE,
        result.token,
        max_age=settings.session_hours * 3600,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="strict",
        path="/",
    )
    return {
        "staff": views.staff_user(result.user),
        "csrf_token": result.csrf_token,
        "expires_at": result.expires_at.isoformat(),
    }


@router.post("/logout", status_code=204)
def logout(ctx: Staff, response: Response, work: Work) -> Response:
    access_service.log_out(work, credential_id=ctx.credential_id)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.status_code = 204
    return response


@router.get("/me")
def me(ctx: Staff, work: Work) -> dict[str, Any]:
    user = access_service.staff_user(work, user_id=ctx.user_id)
    return {**views.staff_user(user), "permissions": sorted(p.value for p in ctx.actor.perms)}


@router.post("/tokens", status_code=201)
def create_token(body: TokenIn, ctx: Staff, work: Work) -> dict[str, Any]:
    """An API token for a machine client acting as you; shown once."""
    token, cred = access_service.issue_api_token(
        work, username=ctx.actor.id, channel=Channel.API, label=body.label, days=body.days
    )
    return {"token": token, "label": cred.label, "expires_at": cred.expires_at.isoformat()}
