import datetime as dt

import pytest

from tests.helpers import add_person
from yibao.domain.errors import DomainError
from yibao.services.cards import evoucher


def issue(uow, person_id):
    return evoucher.issue(uow, person_id=person_id, channel="portal")


def test_voucher_is_single_use_across_institutions(uow, demo):
    person = add_person(uow)
    token, expires = issue(uow, person.id)
    assert expires - uow.clock.now() == dt.timedelta(minutes=2)
    with uow:
        assert evoucher.redeem(uow, token=token, institution="H33050200001") == person.id
        uow.commit()
    with uow:  # the same visit at the same institution may present it again
        assert evoucher.redeem(uow, token=token, institution="H33050200001") == person.id
    with uow, pytest.raises(DomainError) as err:
        evoucher.redeem(uow, token=token, institution="H33050200002")
    assert err.value.code == "voucher.used" and err.value.field == "mdtrt_cert_no"


def test_voucher_expires_after_two_minutes(uow, clock, demo):
    person = add_person(uow)
    token, _ = issue(uow, person.id)
    clock.advance(dt.timedelta(minutes=2, seconds=1))
    with uow, pytest.raises(DomainError) as err:
        evoucher.redeem(uow, token=token, institution="H33050200001")
    assert err.value.code == "voucher.expired"


@pytest.mark.parametrize(
    "mangle", [lambda t: t[:-2] + "xx", lambda t: t.replace("YB1", "YB2"), lambda t: "junk"]
)
def test_forged_vouchers_are_refused(uow, demo, mangle):
    person = add_person(uow)
    token, _ = issue(uow, person.id)
    with uow, pytest.raises(DomainError) as err:
        evoucher.redeem(uow, token=mangle(token), institution="H33050200001")
    assert err.value.code == "voucher.invalid"


def test_a_person_makes_a_voucher_for_themselves_only_and_it_is_audited(services, demo):
    from sqlalchemy import select

    from yibao.domain.actors import Actor
    from yibao.store.models import AuditEntry

    me, other = add_person(services.uow()), add_person(services.uow())
    actor = Actor("person", str(me.id), me.division_code)
    with pytest.raises(DomainError) as err:
        evoucher.issue(services.uow(), actor=actor, channel="portal", person_id=other.id)
    assert err.value.code == "voucher.not_own" and err.value.status == 403
    evoucher.issue(services.uow(), actor=actor, channel="portal", person_id=me.id)
    with services.uow() as uow:
        rows = uow.session.execute(
            select(AuditEntry).where(AuditEntry.action == "voucher.issue")
        ).scalars()
        assert [(r.actor_id, r.channel, r.person_id) for r in rows] == [
            (str(me.id), "portal", me.id)
        ]
