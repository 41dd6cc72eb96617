"""Staff users, their log-in sessions and API tokens."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from yibao.domain import divisions as dv
from yibao.domain import lockout
from yibao.domain.access import ROLE_LEVEL, Perm, Role
from yibao.domain.actors import Actor
from yibao.domain.errors import DomainError, conflict, invalid, not_found, unauthorized
from yibao.services import security
from yibao.services.registry.registry import in_scope, require_division
from yibao.services.tx import use_case
from yibao.store.models import StaffCredential, StaffUser
from yibao.store.uow import UnitOfWork

MIN_PASSWORD = 10


def actor_of(user: StaffUser) -> Actor:
    return Actor.staff(
        username=user.username, division=user.division_code, role=Role(user.role), name=user.name
    )


@use_case
def create_staff(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    username: str,
    name: str,
    password: str,
    role: str,
    division_code: str,
) -> StaffUser:
    """Add a staff user. Admins create users only inside their own area."""
    actor.require(Perm.STAFF_MANAGE)
    username = (username or "").strip()
    if (
        not username
        or len(username) > 50
        or not username.replace("_", "").replace(".", "").isalnum()
    ):
        raise invalid(
            "username",
            "用户名只能包含字母、数字、点和下划线",
            "a username has letters, digits, dots and underscores only",
        )
    try:
        role_ = Role(role)
    except ValueError:
        raise invalid(
            "role", "岗位不存在", f"unknown role; one of {', '.join(r.value for r in Role)}"
        ) from None
    division = require_division(uow, division_code)
    level = dv.level_of(division.code)
    if ROLE_LEVEL[role_] is not level:
        raise invalid(
            "division_code",
            f"该岗位应设在{ROLE_LEVEL[role_].value}级行政区划",
            f"a {role_.value} belongs to a division of level {ROLE_LEVEL[role_].value}",
            "level",
        )
    if role_ is Role.SERVICE_POINT_CLERK and not division.service_point:
        raise invalid(
            "division_code",
            "该街道或乡镇没有医保服务点",
            "this street or town has no service point",
            "service_point",
        )
    if not actor.sees(division.code):
        raise invalid(
            "division_code",
            "不能在您的管辖区域以外设立用户",
            "you may create users only inside your own area",
            "scope",
        )
    if len(password or "") < MIN_PASSWORD:
        raise invalid(
            "password",
            f"密码至少{MIN_PASSWORD}个字符",
            f"a password has at least {MIN_PASSWORD} characters",
            "length",
        )
    if uow.session.execute(select(StaffUser.id).where(StaffUser.username == username)).first():
        raise conflict("staff.exists", "用户名已被使用", "the username is taken", "username")
    user = StaffUser(
        username=username,
        name=name.strip() or username,
        password_hash=security.hash_secret(password),
        role=role_.value,
        division_code=division.code,
        active=True,
        failed_logins=0,
        created_at=uow.clock.now(),
    )
    uow.session.add(user)
    uow.session.flush()
    uow.audit(
        actor.record(
            channel=channel,
            action="staff.create",
            subject=username,
            detail={"role": role_.value, "division": division.code},
        )
    )
    return user


@use_case
def list_staff(uow: UnitOfWork, *, actor: Actor) -> list[StaffUser]:
    actor.require(Perm.STAFF_MANAGE)
    return list(
        uow.session.execute(
            select(StaffUser)
            .where(in_scope(StaffUser.division_code, actor))
            .order_by(StaffUser.username)
        ).scalars()
    )


@dataclass
class Login:
    user: StaffUser
    token: str
    csrf_token: str
    expires_at: dt.datetime


# One answer for an unknown user, an inactive one, a wrong password and a
# user locked after too many wrong passwords: a different answer for any of
# them would tell an outsider which usernames exist.
_BAD_LOGIN = (
    "用户名或密码错误；多次输错后账号将暂时锁定",
    "wrong username or password; after too many wrong passwords the user is locked for a while",
)


@use_case
def login(
    uow: UnitOfWork,
    *,
    username: str,
    password: str,
    channel: str,
    session_hours: int,
    max_failures: int,
    lock_minutes: int,
) -> Login:
    """Check a password and open a session; too many failures lock the user for a while.

    Every refusal is the same ``auth.bad_credentials`` (401), whether the
    user is unknown, inactive, locked or the password wrong, and costs the
    same password hashing. While a user is locked even the right password is
    refused; a wrong one still counts and is audited, as is every refusal of
    a known user.
    """
    now = uow.clock.now()
    user = uow.session.execute(
        select(StaffUser).where(StaffUser.username == (username or "").strip()).with_for_update()
    ).scalar_one_or_none()
    if user is None or not user.active:
        security.verify_secret(None, password)  # same work either way
        raise unauthorized("auth.bad_credentials", *_BAD_LOGIN)
    right = security.verify_secret(user.password_hash, password)
    locked = lockout.is_locked(user.locked_until, now)
    if locked or not right:
        if not right:
            lockout.fail(user, now, most=max_failures, minutes=lock_minutes)
        uow.audit(
            actor_of(user).record(
                channel=channel,
                action="staff.login_failed",
                subject=user.username,
                detail={"locked": True} if locked else None,
            )
        )
        uow.commit()  # the failure counts even though the log-in is refused
        raise unauthorized("auth.bad_credentials", *_BAD_LOGIN)
    lockout.clear(user)
    token = security.new_token("ybs")
    csrf = security.new_token("csrf")
    expires = now + dt.timedelta(hours=session_hours)
    uow.session.add(
        StaffCredential(
            token_hash=security.token_digest(token),
            csrf_hash=security.token_digest(csrf),
            kind="session",
            staff_id=user.id,
            created_at=now,
            expires_at=expires,
        )
    )
    uow.audit(actor_of(user).record(channel=channel, action="staff.login", subject=user.username))
    return Login(user=user, token=token, csrf_token=csrf, expires_at=expires)


@use_case
def issue_api_token(
    uow: UnitOfWork, *, username: str, channel: str, label: str, days: int
) -> tuple[str, StaffCredential]:
    """An API token for a machine client acting as this staff user."""
    if not 1 <= days <= 366:
        raise invalid("days", "有效期应为1至366天", "a token lives 1 to 366 days")
    user = get_staff.step(uow, username=username)
    now = uow.clock.now()
    token = security.new_token("ybt")
    cred = StaffCredential(
        token_hash=security.token_digest(token),
        kind="api",
        label=label[:100],
        staff_id=user.id,
        created_at=now,
        expires_at=now + dt.timedelta(days=days),
    )
    uow.session.add(cred)
    uow.session.flush()
    uow.audit(
        actor_of(user).record(
            channel=channel,
            action="staff.token_issued",
            subject=user.username,
            detail={"label": label},
        )
    )
    return token, cred


def authenticate(uow: UnitOfWork, *, token: str) -> tuple[StaffUser, StaffCredential]:
    """The staff user behind a session cookie or API token, if it is live."""
    now = uow.clock.now()
    cred = uow.session.execute(
        select(StaffCredential).where(StaffCredential.token_hash == security.token_digest(token))
    ).scalar_one_or_none()
    if (
        cred is None
        or cred.revoked_at is not None
        or cred.expires_at <= now
        or not cred.staff.active
    ):
        raise unauthorized("auth.required", "请先登录", "log in first")
    return cred.staff, cred


def check_csrf(cred: StaffCredential, given: str | None) -> None:
    if cred.kind != "session":
        return
    if not given or cred.csrf_hash != security.token_digest(given):
        raise DomainError(
            code="auth.csrf",
            zh="缺少或错误的CSRF令牌",
            en="missing or wrong CSRF token (header X-CSRF-Token)",
            status=403,
        )


# A credential's last use is written at most this often: a busy console does
# not write a row on every request.
TOUCH_SECONDS = 300


@dataclass(frozen=True)
class StaffSession:
    """Who is behind a live session cookie or API token."""

    actor: Actor
    user_id: int
    credential_id: int
    credential_kind: str  # session (a browser) or api (a machine client's token)


@use_case
def authenticate_request(
    uow: UnitOfWork, *, token: str, csrf: str | None = None, change: bool = False
) -> StaffSession:
    """The staff user behind a session cookie or API token, for one request.

    A change (``change``) made with a browser session must carry the
    session's CSRF token: a browser sends the cookie on its own, an API
    token it never sends by itself. The credential's last use is recorded.
    """
    user, cred = authenticate(uow, token=token)
    if change:
        check_csrf(cred, csrf)
    now = uow.clock.now()
    if cred.last_used_at is None or (now - cred.last_used_at).total_seconds() > TOUCH_SECONDS:
        cred.last_used_at = now
    return StaffSession(actor_of(user), user.id, cred.id, cred.kind)


def revoke(uow: UnitOfWork, *, cred: StaffCredential) -> None:
    cred.revoked_at = uow.clock.now()


@use_case
def log_out(uow: UnitOfWork, *, credential_id: int) -> None:
    """End a session or withdraw a token (its holder, already authenticated)."""
    cred = uow.session.get(StaffCredential, credential_id)
    if cred is not None and cred.revoked_at is None:
        revoke(uow, cred=cred)


@use_case
def staff_user(uow: UnitOfWork, *, user_id: int) -> StaffUser:
    user = uow.session.get(StaffUser, user_id)
    if user is None:
        raise not_found("用户", "staff user", "staff.not_found")
    return user


@use_case
def get_staff(uow: UnitOfWork, *, username: str) -> StaffUser:
    user = uow.session.execute(
        select(StaffUser).where(StaffUser.username == username)
    ).scalar_one_or_none()
    if user is None:
        raise not_found("用户", "staff user", "staff.not_found")
    return user
