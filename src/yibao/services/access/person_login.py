"""A person signing in on the web portal: log-in by ID number or account
number, the session kept on the server (``web_sessions``), activation codes
handed out at the counter, lockout, password changes and the telephone PIN
set from the portal.

Every place that takes the portal password (the log-in, the password page's
current password, the telephone PIN's confirmation) counts a wrong one
towards the same lock: five in a row lock the account for fifteen minutes,
and the lock refuses all three. Otherwise the pages would be a way round
the lock to guess a password.

Each function a channel calls is a use case: it opens the unit of work,
decides, writes, audits and commits once. A refusal that must still count
(a wrong password, a wrong activation code) is committed before it is raised.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import or_, select

from yibao.domain import lockout
from yibao.domain.access import Perm
from yibao.domain.actors import Actor
from yibao.domain.errors import DomainError, invalid, not_found, unauthorized
from yibao.services import security
from yibao.services.access import phone_pin, web_sessions
from yibao.services.access.web_sessions import Opened
from yibao.services.tx import use_case
from yibao.store.models import Person, PortalAccount
from yibao.store.uow import UnitOfWork

MIN_PASSWORD = 8
ACTIVATION_DAYS = 30
# A portal session ends after this long without a page.
SESSION_IDLE = dt.timedelta(minutes=30)
_BAD = ("证件号码/医保账号或密码错误", "wrong ID or account number, or wrong password")


class _Someone(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def division_code(self) -> str: ...
    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class PersonView:
    """The person behind a portal session, as the pages show them."""

    id: int
    name: str
    account_no: str
    division_code: str

    @classmethod
    def of(cls, person: Person) -> PersonView:
        return cls(person.id, person.name, person.account_no, person.division_code)


@dataclass(frozen=True)
class SignedIn:
    person: PersonView
    opened: Opened  # the new session: its id goes into the cookie


@dataclass(frozen=True)
class PortalSession:
    """A live portal session: whose it is and the token its forms carry."""

    person: PersonView
    csrf: str


def person_actor(person: _Someone) -> Actor:
    """The person acting for themselves."""
    return Actor(kind="person", id=str(person.id), division=person.division_code, name=person.name)


def confirm(first: str, second: str, *, field: str, en: str = "the two passwords differ") -> None:
    """A new secret is typed twice, the same both times."""
    if first != second:
        raise invalid(field, "两次输入的密码不一致", en, "mismatch")


def _person(uow: UnitOfWork, person_id: int) -> Person:
    person = uow.session.get(Person, person_id)
    if person is None:
        raise not_found("参保人员", "person", "person.not_found")
    return person


def _account(uow: UnitOfWork, person: Person) -> PortalAccount:
    acct = uow.session.get(PortalAccount, person.id, with_for_update=True)
    if acct is None:
        acct = PortalAccount(person_id=person.id, failed_logins=0, updated_at=uow.clock.now())
        uow.session.add(acct)
        uow.session.flush()
    return acct


def _find(uow: UnitOfWork, login_id: str) -> Person | None:
    login_id = (login_id or "").strip().upper()
    if not login_id:
        return None
    return uow.session.execute(
        select(Person).where(or_(Person.certno == login_id, Person.account_no == login_id))
    ).scalar_one_or_none()


def _locked(acct: PortalAccount, now: dt.datetime) -> DomainError | None:
    return lockout.refusal(acct.locked_until, now, code="portal.locked")


def check_password(password: str, *, field: str = "password") -> str:
    if len(password or "") < MIN_PASSWORD:
        raise invalid(
            field,
            f"密码至少{MIN_PASSWORD}个字符",
            f"a password has at least {MIN_PASSWORD} characters",
            "length",
        )
    if password.isdigit() or password.isalpha():
        raise invalid(field, "密码须同时包含字母和数字", "use letters and digits", "weak")
    return password


def _failed(
    uow: UnitOfWork,
    person: Person,
    acct: PortalAccount,
    now: dt.datetime,
    *,
    channel: str,
    action: str,
) -> DomainError | None:
    """A wrong password, wherever it was given: counted, audited and committed
    before the refusal is raised. The fifth in a row locks the account; the
    lock's refusal is returned then."""
    locked = lockout.fail(acct, now)
    acct.updated_at = now
    uow.audit(
        person_actor(person).record(
            channel=channel, action=action, person_id=person.id, subject=person.account_no
        )
    )
    uow.commit()
    return _locked(acct, now) if locked else None


def _right(acct: PortalAccount, now: dt.datetime) -> None:
    """The right password: the count of wrong ones starts again."""
    lockout.clear(acct)
    acct.updated_at = now


@use_case
def login(
    uow: UnitOfWork, *, login_id: str, password: str, channel: str, replacing: str | None = None
) -> SignedIn:
    """Check a person's password and open a session on the server; the
    session the browser held until now (``replacing``) ends.

    Five wrong passwords in a row lock the log-in for fifteen minutes; a
    wrong password is committed here, before the refusal is raised."""
    now = uow.clock.now()
    person = _find(uow, login_id)
    if person is None or person.portal_password_hash is None:
        security.verify_secret(None, password)  # same work either way
        raise unauthorized("portal.bad_credentials", *_BAD)
    acct = _account(uow, person)
    locked = _locked(acct, now)
    if locked is not None:
        raise locked
    if not security.verify_secret(person.portal_password_hash, password):
        lock = _failed(uow, person, acct, now, channel=channel, action="portal.login_failed")
        raise lock or unauthorized("portal.bad_credentials", *_BAD)
    _right(acct, now)
    opened = web_sessions.open_session(
        uow,
        channel=web_sessions.PORTAL,
        person_id=person.id,
        idle=SESSION_IDLE,
        replacing=replacing,
    )
    uow.audit(
        person_actor(person).record(
            channel=channel, action="portal.login", person_id=person.id, subject=person.account_no
        )
    )
    return SignedIn(PersonView.of(person), opened)


@use_case
def session_of(uow: UnitOfWork, *, token: str | None) -> PortalSession | None:
    """The person behind a portal session cookie, if the session is live
    (not ended, not idle too long, the person still has a password)."""
    row = web_sessions.find(uow, channel=web_sessions.PORTAL, token=token)
    if row is None:
        return None
    person = uow.session.get(Person, row.person_id)
    if person is None or person.portal_password_hash is None:
        return None
    return PortalSession(PersonView.of(person), row.csrf)


@use_case
def log_out(uow: UnitOfWork, *, token: str | None, channel: str) -> None:
    """End the portal session behind a cookie; a copy of the cookie stops
    working with it."""
    row = web_sessions.end(uow, channel=web_sessions.PORTAL, token=token)
    if row is None:
        return
    person = _person(uow, row.person_id)
    uow.audit(
        person_actor(person).record(
            channel=channel, action="portal.logout", person_id=person.id, subject=person.account_no
        )
    )


@use_case
def issue_activation_code(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person_id: int,
) -> tuple[str, dt.datetime]:
    """A one-time code the person uses to set the first (or a forgotten) password."""
    actor.require(Perm.CARD_COUNTER)
    person = _person(uow, person_id)
    if not actor.sees(person.division_code):
        raise invalid("person", "不在您的管辖区域内", "outside your area", "scope")
    code = "".join(secrets.choice("23456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(10))
    now = uow.clock.now()
    acct = _account(uow, person)
    acct.activation_hash = security.hash_secret(code)
    acct.activation_expires_at = now + dt.timedelta(days=ACTIVATION_DAYS)
    acct.updated_at = now
    uow.audit(
        actor.record(
            channel=channel,
            action="portal.activation_code",
            person_id=person.id,
            subject=person.account_no,
        )
    )
    return code, acct.activation_expires_at


@use_case
def activate(
    uow: UnitOfWork,
    *,
    login_id: str,
    code: str,
    password: str,
    password2: str,
    channel: str,
) -> PersonView:
    """Set the password with an activation code; the code works once. A wrong
    code counts towards the lockout and is committed before the refusal."""
    confirm(password, password2, field="password2")
    check_password(password)
    now = uow.clock.now()
    person = _find(uow, login_id)
    bad = unauthorized(
        "portal.bad_activation",
        "证件号码或激活码错误，或激活码已过期",
        "wrong ID number or activation code, or the code has expired",
    )
    if person is None:
        security.verify_secret(None, code)
        raise bad
    acct = _account(uow, person)
    locked = _locked(acct, now)
    if locked is not None:
        raise locked
    if (
        acct.activation_hash is None
        or acct.activation_expires_at is None
        or acct.activation_expires_at <= now
        or not security.verify_secret(acct.activation_hash, (code or "").strip().upper())
    ):
        lockout.fail(acct, now)
        acct.updated_at = now
        uow.commit()
        raise bad
    person.portal_password_hash = security.hash_secret(password)
    person.updated_at = now
    acct.activation_hash = None
    acct.activation_expires_at = None
    lockout.clear(acct)
    acct.session_epoch += 1
    acct.updated_at = now
    # a forgotten password set anew: whoever held a session holds it no more
    web_sessions.end_person(uow, person.id)
    uow.audit(
        person_actor(person).record(
            channel=channel,
            action="portal.activate",
            person_id=person.id,
            subject=person.account_no,
        )
    )
    return PersonView.of(person)


def _current_password(
    uow: UnitOfWork,
    person: Person,
    password: str,
    *,
    field: str,
    channel: str,
    wrong: tuple[str, str] = ("原密码错误", "the current password is wrong"),
) -> PortalAccount:
    """The portal password given again on a signed-in page, checked like a
    log-in: refused while locked, a wrong one counted towards the lock."""
    now = uow.clock.now()
    acct = _account(uow, person)
    locked = _locked(acct, now)
    if locked is not None:
        raise locked
    if not security.verify_secret(person.portal_password_hash, password):
        lock = _failed(uow, person, acct, now, channel=channel, action="portal.password_failed")
        raise lock or invalid(field, *wrong, "wrong")
    _right(acct, now)
    return acct


def confirm_password(
    uow: UnitOfWork, person: Person, password: str, *, field: str, channel: str
) -> None:
    """The portal password given again before a signed-in person changes
    something of theirs (undoing a card's loss report): checked like a
    log-in, a wrong one counted towards the same lock."""
    _current_password(
        uow,
        person,
        password,
        field=field,
        channel=channel,
        wrong=("登录密码错误", "the portal password is wrong"),
    )


def person_of(uow: UnitOfWork, person_id: int) -> Person:
    return _person(uow, person_id)


@use_case
def reset_with_phone_pin(
    uow: UnitOfWork,
    *,
    certno: str,
    pin: str,
    password: str,
    password2: str,
    channel: str,
) -> PersonView:
    """A forgotten password set anew with the ID number and the telephone
    PIN (the other way is an activation code from the counter). A wrong PIN
    counts against the telephone PIN's daily lock, as on the telephone, and
    against the portal's lock, as a wrong password would; both are committed
    before the refusal. Every session of the person ends."""
    confirm(password, password2, field="password2")
    check_password(password)
    now = uow.clock.now()
    bad = unauthorized(
        "portal.bad_reset",
        "公民身份号码或电话查询密码错误，或电话查询密码未设置、今日已锁定",
        "wrong ID number or telephone PIN, or the PIN is not set or locked for today",
    )
    person = uow.session.execute(
        select(Person).where(Person.certno == (certno or "").strip().upper())
    ).scalar_one_or_none()
    if person is None:
        security.verify_secret(None, pin)  # same work either way
        raise bad
    acct = _account(uow, person)
    locked = _locked(acct, now)
    if locked is not None:
        raise locked
    said = phone_pin.check_phone_pin(
        uow,
        person_id=person.id,
        pin=(pin or "").strip(),
        channel=channel,
        subject=person.account_no,
    )
    if said != "ok":
        lock = _failed(uow, person, acct, now, channel=channel, action="portal.reset_failed")
        raise lock or bad
    person.portal_password_hash = security.hash_secret(password)
    person.updated_at = now
    _right(acct, now)
    acct.activation_hash = None
    acct.activation_expires_at = None
    acct.session_epoch += 1
    acct.updated_at = now
    web_sessions.end_person(uow, person.id)
    uow.audit(
        person_actor(person).record(
            channel=channel,
            action="portal.password_reset",
            person_id=person.id,
            subject=person.account_no,
            detail={"with": "phone_pin"},
        )
    )
    return PersonView.of(person)


@use_case
def change_password(
    uow: UnitOfWork, *, person_id: int, channel: str, old: str, new: str, new2: str
) -> Opened:
    """Change the password. Every session of the person ends, copies of this
    browser's cookie among them; this browser goes on in a new session,
    which is returned."""
    person = _person(uow, person_id)
    acct = _current_password(uow, person, old, field="old_password", channel=channel)
    confirm(new, new2, field="new_password2")
    check_password(new, field="new_password")
    now = uow.clock.now()
    person.portal_password_hash = security.hash_secret(new)
    person.updated_at = now
    acct.session_epoch += 1
    acct.updated_at = now
    web_sessions.end_person(uow, person.id)
    opened = web_sessions.open_session(
        uow, channel=web_sessions.PORTAL, person_id=person.id, idle=SESSION_IDLE
    )
    uow.audit(
        person_actor(person).record(
            channel=channel,
            action="portal.password_changed",
            person_id=person.id,
            subject=person.account_no,
        )
    )
    return opened


@use_case
def set_phone_pin(
    uow: UnitOfWork, *, person_id: int, channel: str, password: str, pin: str, pin2: str
) -> None:
    """The person sets the telephone-inquiry PIN (issue 6) from the portal,
    confirming it with the portal password (counted like a log-in) and
    typing it twice."""
    person = _person(uow, person_id)
    _current_password(
        uow,
        person,
        password,
        field="phone_password",
        channel=channel,
        wrong=("登录密码错误", "the portal password is wrong"),
    )
    if not pin:  # a PIN the person never saw would be no PIN of theirs
        raise invalid("phone_pin", "请输入6位数字密码", "give a PIN of 6 digits", "required")
    confirm(pin, pin2, field="phone_pin2", en="the two PINs differ")
    phone_pin.set_phone_pin.step(
        uow, actor=person_actor(person), channel=channel, person_id=person.id, pin=pin
    )
