import datetime as dt

import pytest

from tests.helpers import add_person
from yibao.domain.errors import DomainError
from yibao.services.cards import evoucher


def issue(uow, person_id):
    with uow:
        token, expires = evoucher.issue(uow, person_id=person_id, channel="portal")
        uow.commit()
        return token, expires


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
