"""Self-service terminals: registration, and a card-and-PIN inquiry with
three wrong PINs blocking the card on that terminal for the day."""

from __future__ import annotations

from sqlalchemy import select

from yibao.domain.access import Perm
from yibao.domain.errors import DomainError, invalid, not_found, unauthorized
from yibao.services import security
from yibao.services.cards import cards_of
from yibao.services.context import Actor
from yibao.services.registry import require_division
from yibao.store.models import Card, KioskPinTry, KioskTerminal, Person
from yibao.store.uow import UnitOfWork

MAX_PIN_TRIES = 3


def terminal_actor(terminal: KioskTerminal) -> Actor:
    return Actor(kind="terminal", id=terminal.code, division=terminal.division_code)


def register_terminal(
    uow: UnitOfWork, *, actor: Actor, channel: str, code: str, location: str, division_code: str
) -> KioskTerminal:
    actor.require(Perm.STAFF_MANAGE)
    code = (code or "").strip()
    if not code or len(code) > 40 or not code.replace("-", "").isalnum():
        raise invalid("code", "终端编号格式错误", "a terminal code has letters, digits and '-'")
    if not (location or "").strip():
        raise invalid("location", "请填写终端位置", "give the terminal's location", "required")
    division = require_division(uow, division_code)
    if not actor.sees(division.code):
        raise invalid("division_code", "不在您的管辖区域内", "outside your area", "scope")
    terminal = uow.session.get(KioskTerminal, code)
    if terminal is None:
        terminal = KioskTerminal(
            code=code,
            location=location.strip(),
            division_code=division.code,
            active=True,
            created_at=uow.clock.now(),
        )
        uow.session.add(terminal)
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
    return terminal


def list_terminals(uow: UnitOfWork) -> list[KioskTerminal]:
    return list(
        uow.session.execute(
            select(KioskTerminal).where(KioskTerminal.active).order_by(KioskTerminal.code)
        ).scalars()
    )


def get_terminal(uow: UnitOfWork, code: str) -> KioskTerminal:
    terminal = uow.session.get(KioskTerminal, (code or "").strip())
    if terminal is None or not terminal.active:
        raise not_found("终端", "terminal", "kiosk.terminal_not_found")
    return terminal


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


def read_card(uow: UnitOfWork, *, terminal: KioskTerminal, card_no: str) -> Card:
    """The card the reader typed in, before the PIN: refused if unknown or blocked here."""
    card_no = (card_no or "").strip()
    card = uow.session.execute(select(Card).where(Card.card_no == card_no)).scalar_one_or_none()
    if card is None:
        raise not_found("卡片", "card", "card.not_found")
    row = uow.session.get(KioskPinTry, (terminal.code, card_no, uow.clock.today()))
    if row is not None and row.failures >= MAX_PIN_TRIES:
        raise _blocked()
    return card


def sign_in(uow: UnitOfWork, *, terminal: KioskTerminal, card_no: str, pin: str) -> Person:
    """Check the card's PIN at the terminal; the third wrong one blocks the card
    here until tomorrow. Every attempt is audited with the terminal's id."""
    card = read_card(uow, terminal=terminal, card_no=card_no)
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
    uow.audit(
        actor.record(
            channel="kiosk", action="kiosk.sign_in", person_id=card.person_id, subject=card.card_no
        )
    )
    return card.person


def inquire(uow: UnitOfWork, *, terminal: KioskTerminal, person: Person, action: str) -> None:
    """Audit a look at the person's data from this terminal."""
    cards = cards_of(uow, person)
    uow.audit(
        terminal_actor(terminal).record(
            channel="kiosk",
            action=action,
            person_id=person.id,
            subject=cards[0].card_no if cards else person.account_no,
        )
    )
