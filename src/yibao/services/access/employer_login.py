"""An employer signing in to its own channel, /employer/ (issue 15; Social
Insurance Law art. 4): log-in by the unified social credit code and a
password, the session kept on the server (``web_sessions``, kind
``employer``), the activation code issued at the county center that sets the
first (or a forgotten) password, the lock after wrong passwords and the
password change.

It mirrors the persons' portal log-in (``person_login``): five wrong
passwords in a row, wherever given (the log-in, an activation code, the
current password on the password page), lock the account for fifteen
minutes, and a refusal that must still count is committed before it is
raised. The password rules are the persons' (``check_password``).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from yibao.domain import lockout
from yibao.domain.access import Perm
from yibao.domain.actors import Actor
from yibao.domain.errors import DomainError, invalid, not_found, unauthorized
from yibao.domain.ids import validate_credit_code
from yibao.services import security
from yibao.services.access import web_sessions
from yibao.services.access.person_login import check_password, confirm
from yibao.services.access.web_sessions import Opened
from yibao.services.registry.registry import get_employer
from yibao.services.tx import use_case
from yibao.store.models import Employer, EmployerAccount
from yibao.store.uow import UnitOfWork

ACTIVATION_DAYS = 30
# An employer's session ends after this long without a page.
SESSION_IDLE = dt.timedelta(minutes=30)
_BAD = ("统一社会信用代码或密码错误", "wrong credit code or wrong password")
_BAD_CODE = (
    "统一社会信用代码或激活码错误，或激活码已过期",
    "wrong credit code or activation code, or the code has expired",
)


@dataclass(frozen=True)
class EmployerView:
    """The employer behind a session, as the pages show it."""

    id: int
    uscc: str
    name: str
    division_code: str

    @classmethod
    def of(cls, employer: Employer) -> EmployerView:
        return cls(employer.id, employer.uscc, employer.name, employer.division_code)

    @property
    def actor(self) -> Actor:
        """The employer acting for itself: what it reads and changes is audited so."""
        return employer_actor(self)


@dataclass(frozen=True)
class SignedIn:
    employer: EmployerView
    opened: Opened  # the new session: its id goes into the cookie


@dataclass(frozen=True)
class EmployerSession:
    """A live employer session: whose it is and the token its forms carry."""

    employer: EmployerView
    csrf: str


def employer_actor(employer: Employer | EmployerView) -> Actor:
    return Actor.employer(uscc=employer.uscc, division=employer.division_code, name=employer.name)


def _find(uow: UnitOfWork, uscc: str) -> Employer | None:
    code = (uscc or "").strip().upper()
    if not code:
        return None
    return uow.session.execute(select(Employer).where(Employer.uscc == code)).scalar_one_or_none()


def _account(uow: UnitOfWork, employer: Employer) -> EmployerAccount:
    acct = uow.session.get(EmployerAccount, employer.id, with_for_update=True)
    if acct is None:
        acct = EmployerAccount(employer_id=employer.id, failed_logins=0, updated_at=uow.clock.now())
        uow.session.add(acct)
        uow.session.flush()
    return acct


def _locked(acct: EmployerAccount, now: dt.datetime) -> DomainError | None:
    return lockout.refusal(acct.locked_until, now, code="employer.locked")


def _failed(
    uow: UnitOfWork, employer: Employer, acct: EmployerAccount, *, channel: str, action: str
) -> DomainError | None:
    """A wrong password or code: counted, audited and committed before the
    refusal is raised. The fifth in a row locks the account; the lock's
    refusal is returned then."""
    now = uow.clock.now()
    locked = lockout.fail(acct, now)
    acct.updated_at = now
    uow.audit(
        employer_actor(employer).record(channel=channel, action=action, subject=employer.uscc)
    )
    uow.commit()
    return _locked(acct, now) if locked else None


def _right(acct: EmployerAccount, now: dt.datetime) -> None:
    lockout.clear(acct)
    acct.updated_at = now


@use_case
def login(
    uow: UnitOfWork, *, uscc: str, password: str, channel: str, replacing: str | None = None
) -> SignedIn:
    """Check an employer's password and open a session on the server; the
    session the browser held until now (``replacing``) ends."""
    now = uow.clock.now()
    employer = _find(uow, uscc)
    acct = uow.session.get(EmployerAccount, employer.id) if employer is not None else None
    if employer is None or acct is None or acct.password_hash is None:
        security.verify_secret(None, password)  # the same work either way
        raise unauthorized("employer.bad_credentials", *_BAD)
    acct = _account(uow, employer)  # again, locked for the update
    locked = _locked(acct, now)
    if locked is not None:
        raise locked
    if not security.verify_secret(acct.password_hash, password):
        lock = _failed(uow, employer, acct, channel=channel, action="employer.login_failed")
        raise lock or unauthorized("employer.bad_credentials", *_BAD)
    _right(acct, now)
    opened = web_sessions.open_session(
        uow,
        channel=web_sessions.EMPLOYER,
        employer_id=employer.id,
        idle=SESSION_IDLE,
        replacing=replacing,
    )
    uow.audit(
        employer_actor(employer).record(
            channel=channel, action="employer.login", subject=employer.uscc
        )
    )
    return SignedIn(EmployerView.of(employer), opened)


@use_case
def session_of(uow: UnitOfWork, *, token: str | None) -> EmployerSession | None:
    """The employer behind a session cookie, if the session is live."""
    row = web_sessions.find(uow, channel=web_sessions.EMPLOYER, token=token)
    if row is None or row.employer_id is None:
        return None
    employer = uow.session.get(Employer, row.employer_id)
    acct = uow.session.get(EmployerAccount, row.employer_id)
    if employer is None or acct is None or acct.password_hash is None:
        return None
    return EmployerSession(EmployerView.of(employer), row.csrf)


@use_case
def log_out(uow: UnitOfWork, *, token: str | None, channel: str) -> None:
    """End the session behind a cookie; a copy of the cookie stops working with it."""
    row = web_sessions.end(uow, channel=web_sessions.EMPLOYER, token=token)
    if row is None or row.employer_id is None:
        return
    employer = uow.session.get(Employer, row.employer_id)
    if employer is not None:
        uow.audit(
            employer_actor(employer).record(
                channel=channel, action="employer.logout", subject=employer.uscc
            )
        )


@dataclass(frozen=True)
class IssuedCode:
    employer: EmployerView
    code: str  # shown once, kept only as a hash
    expires_at: dt.datetime


@use_case
def issue_activation_code(uow: UnitOfWork, *, actor: Actor, channel: str, uscc: str) -> IssuedCode:
    """A one-time code, issued at the county center, with which the employer
    sets its first (or a forgotten) password. A new code replaces the last."""
    actor.require(Perm.EMPLOYER_WRITE)
    code_text = validate_credit_code((uscc or "").strip().upper())
    employer = get_employer.step(uow, actor=actor, uscc=code_text)  # only in the actor's area
    code = "".join(secrets.choice("23456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(10))
    now = uow.clock.now()
    acct = _account(uow, employer)
    acct.activation_hash = security.hash_secret(code)
    acct.activation_expires_at = now + dt.timedelta(days=ACTIVATION_DAYS)
    acct.updated_at = now
    uow.audit(
        actor.record(channel=channel, action="employer.activation_code", subject=employer.uscc)
    )
    return IssuedCode(EmployerView.of(employer), code, acct.activation_expires_at)


@use_case
def activate(
    uow: UnitOfWork,
    *,
    uscc: str,
    code: str,
    password: str,
    password2: str,
    channel: str,
) -> EmployerView:
    """Set the password with an activation code; the code works once, and
    every session of the employer ends. A wrong code counts towards the lock."""
    confirm(password, password2, field="password2")
    check_password(password)
    now = uow.clock.now()
    employer = _find(uow, uscc)
    if employer is None:
        security.verify_secret(None, code)
        raise unauthorized("employer.bad_activation", *_BAD_CODE)
    acct = _account(uow, employer)
    locked = _locked(acct, now)
    if locked is not None:
        raise locked
    if (
        acct.activation_hash is None
        or acct.activation_expires_at is None
        or acct.activation_expires_at <= now
        or not security.verify_secret(acct.activation_hash, (code or "").strip().upper())
    ):
        lock = _failed(uow, employer, acct, channel=channel, action="employer.activation_failed")
        raise lock or unauthorized("employer.bad_activation", *_BAD_CODE)
    acct.password_hash = security.hash_secret(password)
    acct.activation_hash = None
    acct.activation_expires_at = None
    _right(acct, now)
    web_sessions.end_employer(uow, employer.id)
    uow.audit(
        employer_actor(employer).record(
            channel=channel, action="employer.activate", subject=employer.uscc
        )
    )
    return EmployerView.of(employer)


@use_case
def change_password(
    uow: UnitOfWork, *, employer_id: int, channel: str, old: str, new: str, new2: str
) -> Opened:
    """Change the password. Every session of the employer ends; this browser
    goes on in a new session, which is returned. A wrong current password
    counts towards the lock, as a wrong log-in does."""
    employer = uow.session.get(Employer, employer_id)
    if employer is None:
        raise not_found("用人单位", "employer", "employer.not_found")
    now = uow.clock.now()
    acct = _account(uow, employer)
    locked = _locked(acct, now)
    if locked is not None:
        raise locked
    if not security.verify_secret(acct.password_hash, old):
        lock = _failed(uow, employer, acct, channel=channel, action="employer.password_failed")
        raise lock or invalid(
            "old_password", "原密码错误", "the current password is wrong", "wrong"
        )
    confirm(new, new2, field="new_password2")
    check_password(new, field="new_password")
    acct.password_hash = security.hash_secret(new)
    _right(acct, now)
    web_sessions.end_employer(uow, employer.id)
    opened = web_sessions.open_session(
        uow, channel=web_sessions.EMPLOYER, employer_id=employer.id, idle=SESSION_IDLE
    )
    uow.audit(
        employer_actor(employer).record(
            channel=channel, action="employer.password_changed", subject=employer.uscc
        )
    )
    return opened


def set_password(uow: UnitOfWork, *, employer: Employer, password: str) -> None:
    """Set a password outright, with no code: for the demo city's employers,
    whose passwords ``yibao demo --json`` lists. A step of the loader's use case."""
    check_password(password)
    acct = _account(uow, employer)
    acct.password_hash = security.hash_secret(password)
    acct.updated_at = uow.clock.now()
