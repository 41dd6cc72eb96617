"""Who may set a telephone PIN: counter staff in the person's area, or the
person themself (the portal); stored hashed, and a new PIN lifts the day's lock."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.helpers import NANXUN, WUXING, YUEHE, add_person
from yibao.domain.actors import Actor, Channel
from yibao.domain.errors import DomainError
from yibao.services.access import phone_pin
from yibao.store.models import AuditEntry, PhonePin


def person_actor(person):
    return Actor("person", str(person.id), person.division_code)


def test_a_person_sets_their_own_phone_pin_and_only_theirs(uow, demo):
    me = add_person(uow, name="本人")
    other = add_person(uow, name="他人")
    assert (
        phone_pin.set_phone_pin(
            uow, actor=person_actor(me), channel=Channel.PORTAL, person_id=me.id, pin="975310"
        )
        is None
    )
    with pytest.raises(DomainError) as refused:
        phone_pin.set_phone_pin(
            uow, actor=person_actor(me), channel=Channel.PORTAL, person_id=other.id, pin="975310"
        )
    assert refused.value.status == 404
    with uow:
        row = uow.session.get(PhonePin, me.id)
        assert row is not None and "975310" not in row.pin_hash and row.set_channel == "portal"
        audit = uow.session.execute(
            select(AuditEntry).where(
                AuditEntry.action == "phone_pin.set", AuditEntry.person_id == me.id
            )
        ).scalar_one()
        assert audit.person_id == me.id and audit.channel == "portal"


def test_counter_staff_need_the_person_in_their_area(uow, demo):
    person = add_person(uow, division="330502001")
    made = phone_pin.set_phone_pin(uow, actor=YUEHE, channel=Channel.COUNTER, person_id=person.id)
    assert made is not None and made.isdigit()
    with pytest.raises(DomainError) as outside:
        phone_pin.set_phone_pin(
            uow, actor=NANXUN, channel=Channel.COUNTER, person_id=person.id, pin="975310"
        )
    assert outside.value.status == 404


def test_a_new_pin_lifts_the_days_lock(uow, clock, demo):
    person = add_person(uow)
    phone_pin.set_phone_pin(
        uow, actor=WUXING, channel=Channel.COUNTER, person_id=person.id, pin="975310"
    )
    for _ in range(phone_pin.DAILY_FAILURES):
        with uow:
            result = phone_pin.check_phone_pin(
                uow, person_id=person.id, pin="000000", channel=Channel.TELEPHONE, subject="c1"
            )
            uow.commit()
    assert result == "locked"
    with uow:
        assert (
            phone_pin.check_phone_pin(
                uow, person_id=person.id, pin="975310", channel=Channel.TELEPHONE, subject="c2"
            )
            == "locked"
        )
    phone_pin.set_phone_pin(
        uow, actor=WUXING, channel=Channel.COUNTER, person_id=person.id, pin="864213"
    )
    with uow:
        assert (
            phone_pin.check_phone_pin(
                uow, person_id=person.id, pin="864213", channel=Channel.TELEPHONE, subject="c3"
            )
            == "ok"
        )
