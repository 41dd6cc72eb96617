"""The telephone-inquiry PIN: six digits, set at the counter or in the portal,
kept hashed; wrong PINs on one day lock it until the next day.

``set_phone_pin`` is a use case; ``check_phone_pin`` is a step of the
telephone dialog's own use case (``services.inquiry.dialog``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from yibao.domain.access import Perm
from yibao.domain.actors import Actor
from yibao.domain.errors import not_found
from yibao.services import security
from yibao.services.cards import cards as card_service
from yibao.services.tx import use_case
from yibao.store.models import Person, PhonePin
from yibao.store.uow import UnitOfWork

# Wrong PINs for one person in one day (over all calls) before the telephone
# PIN is locked until the next day; a call itself ends after three tries.
DAILY_FAILURES = 5


@use_case
def set_phone_pin(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person_id: int,
    pin: str | None = None,
) -> str | None:
    """Set (or reset) a person's telephone PIN; clears the day's failures and
    any lock. Staff need the card-counter permission and the person in their
    area; a person may set only their own. Without ``pin`` a random one is
    made and returned, once."""
    person = uow.session.get(Person, person_id)
    if person is None:
        raise not_found("参保人员", "person", "person.not_found")
    if actor.kind == "staff":
        actor.require(Perm.CARD_COUNTER)
        if not actor.sees(person.division_code):
            raise not_found("参保人员", "person", "person.not_found")
    elif actor.kind == "person":
        if actor.id != str(person.id):
            raise not_found("参保人员", "person", "person.not_found")
    elif actor.kind != "system":
        raise not_found("参保人员", "person", "person.not_found")
    chosen = card_service.check_pin(pin) if pin else None
    new = chosen or security.new_pin()
    row = uow.session.get(PhonePin, person.id, with_for_update=True)
    now = uow.clock.now()
    if row is None:
        row = PhonePin(person_id=person.id)
        uow.session.add(row)
    row.pin_hash = security.hash_secret(new)
    row.failures = 0
    row.failures_on = None
    row.locked_on = None
    row.set_at = now
    row.set_channel = channel
    uow.audit(
        actor.record(
            channel=channel, action="phone_pin.set", person_id=person.id, subject=person.account_no
        )
    )
    return None if chosen else new


def is_locked(row: PhonePin | None, today: dt.date) -> bool:
    return row is not None and row.locked_on == today


def check_phone_pin(
    uow: UnitOfWork, *, person_id: int, pin: str, channel: str, subject: str
) -> str:
    """``ok``, ``wrong``, ``locked`` (today) or ``unset``; counts a wrong PIN
    against the person's day and locks at ``DAILY_FAILURES``."""
    today = uow.clock.today()
    row = uow.session.execute(
        select(PhonePin).where(PhonePin.person_id == person_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        return "unset"
    if is_locked(row, today):
        return "locked"
    person = uow.session.get(Person, person_id)
    actor = Actor("person", str(person_id), person.division_code if person else "")
    if security.verify_secret(row.pin_hash, pin):
        row.failures, row.failures_on = 0, None
        return "ok"
    if row.failures_on != today:
        row.failures, row.failures_on = 0, today
    row.failures += 1
    locked = row.failures >= DAILY_FAILURES
    if locked:
        row.locked_on = today
    uow.audit(
        actor.record(
            channel=channel,
            action="phone_pin.locked" if locked else "phone_pin.failed",
            person_id=person_id,
            subject=subject,
            detail={"failures_today": row.failures},
        )
    )
    return "locked" if locked else "wrong"
