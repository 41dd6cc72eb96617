"""Self-service terminals: registration by staff, a one-time activation code
with which the machine in the lobby binds itself to its terminal, and a
card-and-PIN inquiry with three wrong PINs blocking the card on that terminal
for the day.

The PIN tries are counted per terminal, so a terminal must be the machine it
claims to be: a browser is a terminal only through the device token it got
by activating itself, never by naming the terminal.

A right PIN opens a session on the server (``web_sessions``): the
terminal, the card and its holder, ended by the card taken out (sign-out),
by the terminal's idle time on the injected clock, or by the terminal's
machine being revoked.

What the terminal then shows (the balance, the last transactions, the
receipt) is the account summary (``services.inquiry``), which decides whether
the card presented may be used for an inquiry at all."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from yibao.domain.access import Perm
from yibao.domain.actors import Actor
from yibao.domain.errors import (
    DomainError,
    FieldProblem,
    conflict,
    invalid,
    not_found,
    unauthorized,
)
from yibao.domain.values import is_digits
from yibao.services import security
from yibao.services.access import web_sessions
from yibao.services.access.web_sessions import Opened
from yibao.services.registry.registry import in_scope, require_division
from yibao.services.tx import use_case
from yibao.store.models import Card, KioskPinTry, KioskTerminal
from yibao.store.uow import UnitOfWork

MAX_PIN_TRIES = 3
# Wrong activation codes a terminal takes before its pending code is void.
MAX_ACTIVATION_FAILURES = 5
# Read off a screen or a slip and typed on the terminal: no 0/O or 1/I.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 8


@dataclass(frozen=True)
class IssuedCode:
    """A terminal's new activation code: shown once, stored only as a digest."""

    terminal: KioskTerminal
    activation_code: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class TerminalView:
    """A terminal in service, as its pages show it."""

    code: str
    location: str
    division_code: str

    @classmethod
    def of(cls, terminal: KioskTerminal) -> TerminalView:
        return cls(terminal.code, terminal.location, terminal.division_code)


@dataclass(frozen=True)
class KioskSignIn:
    """A right PIN: the card holder and the session opened for them."""

    person_id: int
    opened: Opened


@dataclass(frozen=True)
class KioskSession:
    """A live session at a terminal: the card presented, its holder, and the
    token its forms carry."""

    person_id: int
    card_no: str
    csrf: str


class _Terminal(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def division_code(self) -> str: ...


def terminal_actor(terminal: _Terminal) -> Actor:
    return Actor(kind="terminal", id=terminal.code, division=terminal.division_code)


def _terminal_code(code: str | None) -> str:
    return (code or "").strip().upper()


def _code_digest(terminal_code: str, activation_code: str) -> str:
    # Bound to the terminal: a code read off one terminal's slip is no code
    # for any other.
    return hashlib.sha256(f"{terminal_code}:{activation_code}".encode()).hexdigest()


def _normal_code(given: str | None) -> str:
    """The code as typed, without the spaces or dashes a reader adds."""
    return "".join((given or "").split()).replace("-", "").upper()


@use_case
def register_terminal(
    uow: UnitOfWork, *, actor: Actor, channel: str, code: str, location: str, division_code: str
) -> IssuedCode:
    """Register a terminal in the actor's area (or register a deactivated one
    again) and issue its first activation code."""
    actor.require(Perm.STAFF_MANAGE)
    code = _terminal_code(code)
    if not code or len(code) > 40 or not (code.isascii() and code.replace("-", "").isalnum()):
        raise invalid("code", "终端编号格式错误", "a terminal code has letters, digits and '-'")
    if not (location or "").strip():
        raise invalid("location", "请填写终端位置", "give the terminal's location", "required")
    if len(location.strip()) > 200:
        raise invalid("location", "终端位置过长", "the location is too long", "length")
    division = require_division(uow, division_code)
    if not actor.sees(division.code):
        raise invalid("division_code", "不在您的管辖区域内", "outside your area", "scope")
    terminal = uow.session.get(KioskTerminal, code, with_for_update=True)
    exists = conflict(
        "kiosk.terminal_exists",
        f"终端编号{code}已登记；更换终端机器请签发新激活码",
        f"terminal {code} is already registered; to replace its machine, "
        "issue a new activation code",
        "code",
    )
    if terminal is not None and (terminal.active or not actor.sees(terminal.division_code)):
        raise exists
    if terminal is None:
        terminal = KioskTerminal(
            code=code,
            location=location.strip(),
            division_code=division.code,
            active=True,
            created_at=uow.clock.now(),
            activation_failures=0,
        )
        try:
            with uow.session.begin_nested():  # registered at the same moment elsewhere
                uow.session.add(terminal)
        except IntegrityError:
            raise exists from None
    else:
        terminal.location = location.strip()
        terminal.division_code = division.code
        terminal.active = True
    uow.session.flush()
    uow.audit(
        actor.record(
            channel=channel,
            action="kiosk.register",
            subject=code,
            detail={"location": terminal.location, "division": division.code},
        )
    )
    return _issue(uow, actor=actor, channel=channel, terminal=terminal)


def _issue(uow: UnitOfWork, *, actor: Actor, channel: str, terminal: KioskTerminal) -> IssuedCode:
    """A new code; the machine bound so far and any earlier code stop working."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    now = uow.clock.now()
    expires = now + dt.timedelta(hours=uow.settings.kiosk_activation_hours)
    revoked = terminal.device_hash is not None
    terminal.device_hash = None
    terminal.activated_at = None
    web_sessions.end_terminal(uow, terminal.code)
    terminal.activation_hash = _code_digest(terminal.code, code)
    terminal.activation_expires = expires
    terminal.activation_failures = 0
    uow.session.flush()
    uow.audit(
        actor.record(
            channel=channel,
            action="kiosk.issue_code",
            subject=terminal.code,
            detail={"expires": expires.isoformat(), "device_revoked": revoked},
        )
    )
    return IssuedCode(terminal, code, expires)


def _managed(uow: UnitOfWork, actor: Actor, code: str) -> KioskTerminal:
    """A terminal in the actor's area, locked; outside it, not found."""
    actor.require(Perm.STAFF_MANAGE)
    terminal = uow.session.execute(
        select(KioskTerminal)
        .where(
            KioskTerminal.code == _terminal_code(code),
            in_scope(KioskTerminal.division_code, actor),
        )
        .with_for_update()
    ).scalar_one_or_none()
    if terminal is None:
        raise not_found("终端", "terminal", "kiosk.terminal_not_found")
    return terminal


@use_case
def issue_code(uow: UnitOfWork, *, actor: Actor, channel: str, code: str) -> IssuedCode:
    """A new activation code for a registered terminal, e.g. for a replaced
    machine; the machine bound so far stops being the terminal at once."""
    terminal = _managed(uow, actor, code)
    if not terminal.active:
        raise conflict(
            "kiosk.terminal_inactive",
            "终端已停用，请重新登记",
            "the terminal is deactivated; register it again",
            "code",
        )
    return _issue(uow, actor=actor, channel=channel, terminal=terminal)


def _bind(terminal: KioskTerminal, device_hash: str | None, at: dt.datetime | None) -> None:
    """The terminal's machine is this one (or none), and no code is pending."""
    terminal.device_hash = device_hash
    terminal.activated_at = at
    terminal.activation_hash = None
    terminal.activation_expires = None
    terminal.activation_failures = 0


@use_case
def deactivate_terminal(uow: UnitOfWork, *, actor: Actor, channel: str, code: str) -> KioskTerminal:
    """Take a terminal out of service: its machine and any pending code stop working."""
    terminal = _managed(uow, actor, code)
    revoked = terminal.device_hash is not None
    terminal.active = False
    _bind(terminal, None, None)
    web_sessions.end_terminal(uow, terminal.code)
    uow.session.flush()
    uow.audit(
        actor.record(
            channel=channel,
            action="kiosk.deactivate",
            subject=terminal.code,
            detail={"device_revoked": revoked},
        )
    )
    return terminal


@use_case
def list_terminals(uow: UnitOfWork, *, actor: Actor) -> list[KioskTerminal]:
    """The terminals in the actor's area, deactivated ones too."""
    actor.require(Perm.STAFF_MANAGE)
    return list(
        uow.session.execute(
            select(KioskTerminal)
            .where(in_scope(KioskTerminal.division_code, actor))
            .order_by(KioskTerminal.code)
        ).scalars()
    )


def terminal_state(terminal: KioskTerminal, now: dt.datetime) -> str:
    """What staff see of a terminal: inactive, activated (a machine is bound),
    pending (a code waits), void (five wrong codes), expired, or none."""
    if not terminal.active:
        return "inactive"
    if terminal.device_hash is not None:
        return "activated"
    if terminal.activation_hash is not None:
        expires = terminal.activation_expires
        return "pending" if expires is not None and expires > now else "expired"
    if terminal.activation_failures >= MAX_ACTIVATION_FAILURES:
        return "void"
    return "none"


def get_terminal(uow: UnitOfWork, code: str) -> KioskTerminal:
    terminal = uow.session.get(KioskTerminal, _terminal_code(code))
    if terminal is None or not terminal.active:
        raise not_found("终端", "terminal", "kiosk.terminal_not_found")
    return terminal


# ---------------------------------------------------------------- the machine


def _bad_activation() -> DomainError:
    zh = "终端编号或激活码错误，或激活码已过期"
    en = "wrong terminal code or activation code, or the code has expired"
    return DomainError(
        code="kiosk.bad_activation",
        zh=zh,
        en=en,
        field="activation_code",
        status=401,
        problems=[FieldProblem("activation_code", zh, en)],
    )


def _void_activation() -> DomainError:
    zh = f"激活码错误已达{MAX_ACTIVATION_FAILURES}次，激活码已作废，请工作人员重新签发"
    en = (
        f"{MAX_ACTIVATION_FAILURES} wrong activation codes; the code is void, "
        "staff must issue a new one"
    )
    return DomainError(
        code="kiosk.activation_void",
        zh=zh,
        en=en,
        field="activation_code",
        status=429,
        problems=[FieldProblem("activation_code", zh, en)],
    )


@use_case
def activate(
    uow: UnitOfWork, *, terminal_code: str, activation_code: str, channel: str, source: str = ""
) -> tuple[TerminalView, str]:
    """Bind the machine that gives a terminal's pending code to that terminal.

    Returns the terminal and the device token the machine keeps (the terminal
    keeps its SHA-256 digest). The code works once. Wrong codes are counted
    on the terminal; the fifth voids the pending code. A refusal is committed
    here, before it is raised. ``source`` (the client's address) goes into
    the audit entries."""
    code = _terminal_code(terminal_code)
    if not code:
        raise invalid("terminal", "请填写终端编号", "give the terminal code", "required")
    given = _normal_code(activation_code)
    if not given:
        raise invalid("activation_code", "请填写激活码", "give the activation code", "required")
    terminal = uow.session.get(KioskTerminal, code, with_for_update=True)
    if terminal is None:
        # Nothing to count the try on; terminal codes are no secret (they are
        # on the machines), so saying less would protect nothing either.
        raise _bad_activation()
    now = uow.clock.now()
    reason = ""
    if not terminal.active:
        reason = "inactive"
    elif terminal.activation_hash is None:
        voided = terminal.activation_failures >= MAX_ACTIVATION_FAILURES
        reason = "voided" if voided else "no_code"
    elif terminal.activation_expires is None or terminal.activation_expires <= now:
        reason = "expired"
    elif not hmac.compare_digest(terminal.activation_hash, _code_digest(terminal.code, given)):
        reason = "wrong"
    actor = terminal_actor(terminal)
    if reason:
        terminal.activation_failures += 1
        if reason == "wrong" and terminal.activation_failures >= MAX_ACTIVATION_FAILURES:
            reason = "voided"
            terminal.activation_hash = None
            terminal.activation_expires = None
        uow.audit(
            actor.record(
                channel=channel,
                action="kiosk.activation_refused",
                subject=terminal.code,
                detail={
                    "reason": reason,
                    "failures": terminal.activation_failures,
                    "source": source,
                },
            )
        )
        uow.commit()
        raise _void_activation() if reason == "voided" else _bad_activation()
    token = secrets.token_urlsafe(32)
    _bind(terminal, security.token_digest(token), now)
    uow.session.flush()
    uow.audit(
        actor.record(
            channel=channel,
            action="kiosk.activate",
            subject=terminal.code,
            detail={"source": source},
        )
    )
    return TerminalView.of(terminal), token


@use_case
def terminal_of_device(uow: UnitOfWork, token: str | None) -> TerminalView | None:
    """The active terminal a machine's device token binds it to, if any."""
    if not token:
        return None
    terminal = uow.session.execute(
        select(KioskTerminal).where(
            KioskTerminal.device_hash == security.token_digest(token), KioskTerminal.active
        )
    ).scalar_one_or_none()
    return TerminalView.of(terminal) if terminal else None


def _blocked() -> DomainError:
    return DomainError(
        code="kiosk.blocked",
        zh="密码错误次数过多，此卡今日在本终端已锁定",
        en="too many wrong PINs; this card is blocked on this terminal for today",
        status=429,
    )


def _tries(uow: UnitOfWork, terminal: KioskTerminal, card_no: str) -> KioskPinTry:
    day = uow.clock.today()
    row = uow.session.get(KioskPinTry, (terminal.code, card_no, day), with_for_update=True)
    if row is None:
        row = KioskPinTry(terminal_code=terminal.code, card_no=card_no, day=day, failures=0)
        uow.session.add(row)
        uow.session.flush()
    return row


def _read(uow: UnitOfWork, terminal: KioskTerminal, card_no: str) -> Card:
    card_no = (card_no or "").strip()
    card = uow.session.execute(select(Card).where(Card.card_no == card_no)).scalar_one_or_none()
    if card is None:
        raise not_found("卡片", "card", "card.not_found")
    row = uow.session.get(KioskPinTry, (terminal.code, card_no, uow.clock.today()))
    if row is not None and row.failures >= MAX_PIN_TRIES:
        raise _blocked()
    return card


@use_case
def read_card(uow: UnitOfWork, *, terminal_code: str, card_no: str) -> str:
    """The card the reader typed in, before the PIN: refused if unknown or
    blocked on this terminal today; returns its number.

    Whether the card may be used for an inquiry at all (lost, frozen, ...) is
    decided where its data is read, by the account summary: this step says
    nothing about a card to whoever holds it before the PIN is right."""
    return _read(uow, get_terminal(uow, terminal_code), card_no).card_no


PIN_LENGTH = 6


def check_pin_shape(pin: str | None, *, field: str = "pin") -> str:
    """A card PIN as keyed: six ASCII digits."""
    text = (pin or "").strip()
    if len(text) != PIN_LENGTH or not is_digits(text):
        raise invalid(field, "请输入6位密码", "enter 6 digits", "length")
    return text


def _idle(uow: UnitOfWork) -> dt.timedelta:
    return dt.timedelta(seconds=uow.settings.kiosk_idle_seconds)


@use_case
def sign_in(
    uow: UnitOfWork, *, terminal_code: str, card_no: str, pin: str, replacing: str | None = None
) -> KioskSignIn:
    """Check the card's PIN at the terminal; returns the card holder and the
    session opened for them (the one the terminal held until now,
    ``replacing``, ends). The third wrong PIN blocks the card here until
    tomorrow. Every attempt is audited with the terminal's id; a wrong one
    is committed before the refusal is raised."""
    terminal = get_terminal(uow, terminal_code)
    card = _read(uow, terminal, card_no)
    # A PIN that cannot be right (nothing keyed, too few digits) is a slip
    # of the finger, not a guess: refused before the try is counted, so an
    # empty press of 确定 costs none of the three, on every channel.
    check_pin_shape(pin)
    actor = terminal_actor(terminal)
    row = _tries(uow, terminal, card.card_no)
    if card.pin_hash is None or not security.verify_secret(card.pin_hash, pin or ""):
        row.failures += 1
        uow.audit(
            actor.record(
                channel="kiosk",
                action="kiosk.pin_failed",
                person_id=card.person_id,
                subject=card.card_no,
                detail={"failures": row.failures},
            )
        )
        uow.commit()
        if row.failures >= MAX_PIN_TRIES:
            raise _blocked()
        left = MAX_PIN_TRIES - row.failures
        raise unauthorized(
            "kiosk.bad_pin", f"密码错误，还可尝试{left}次", f"wrong PIN; {left} tries left"
        )
    row.failures = 0
    opened = web_sessions.open_session(
        uow,
        channel=web_sessions.KIOSK,
        person_id=card.person_id,
        idle=_idle(uow),
        terminal_code=terminal.code,
        card_no=card.card_no,
        replacing=replacing,
    )
    uow.audit(
        actor.record(
            channel="kiosk", action="kiosk.sign_in", person_id=card.person_id, subject=card.card_no
        )
    )
    return KioskSignIn(card.person_id, opened)


@use_case
def session_of(uow: UnitOfWork, *, token: str | None, terminal_code: str) -> KioskSession | None:
    """The live session behind a terminal's session cookie, on this terminal only."""
    row = web_sessions.find(uow, channel=web_sessions.KIOSK, token=token)
    if row is None or row.terminal_code != terminal_code or row.card_no is None:
        return None
    return KioskSession(row.person_id, row.card_no, row.csrf)


@use_case
def sign_out(uow: UnitOfWork, *, token: str | None) -> None:
    """The card is taken out (or the terminal went back to its start): the
    session ends, and a copy of its cookie with it."""
    row = web_sessions.end(uow, channel=web_sessions.KIOSK, token=token)
    terminal = uow.session.get(KioskTerminal, row.terminal_code) if row else None
    if row is None or terminal is None:
        return
    uow.audit(
        terminal_actor(terminal).record(
            channel="kiosk",
            action="kiosk.sign_out",
            person_id=row.person_id,
            subject=row.card_no or "",
        )
    )
