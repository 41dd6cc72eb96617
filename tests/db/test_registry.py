import datetime as dt

import pytest

from tests.helpers import NANXUN, SYSTEM, WUXING, YUEHE, add_person, new_certno
from yibao.domain.actors import Channel
from yibao.domain.errors import DomainError
from yibao.services.registry import registry
from yibao.store.models import AuditEntry, Person


def test_register_person_takes_gender_and_birth_date_from_the_id_number(uow, demo):
    certno = new_certno("330502", dt.date(1970, 6, 15))
    person = registry.register_person(
        uow,
        actor=WUXING,
        channel=Channel.API,
        certno=certno,
        name="孙悦",
        division_code="330502002",
        phone="0572-1234567",
    )
    with uow:
        stored = uow.session.get(Person, person.id)
        assert stored.birth_date == dt.date(1970, 6, 15)
        assert stored.gender == ("1" if int(certno[16]) % 2 else "2")
        assert len(stored.account_no) == 16 and stored.account_no.startswith("330502")


def test_id_number_with_wrong_check_digit_is_refused_and_nothing_is_stored(uow, demo):
    certno = new_certno()
    wrong = certno[:-1] + ("1" if certno[-1] != "1" else "2")
    with pytest.raises(DomainError) as err:
        registry.register_person(
            uow,
            actor=WUXING,
            channel=Channel.API,
            certno=wrong,
            name="错号",
            division_code="330502001",
        )
    assert err.value.field == "certno" and err.value.code == "validation.checksum"
    with uow:
        assert uow.session.query(Person).filter_by(name="错号").count() == 0


def test_a_person_is_registered_once(uow, demo):
    certno = new_certno()
    add_person(uow, certno=certno)
    with pytest.raises(DomainError) as err:
        registry.register_person(
            uow,
            actor=SYSTEM,
            channel=Channel.CLI,
            certno=certno,
            name="重复",
            division_code="330502001",
        )
    assert err.value.code == "person.exists" and err.value.status == 409


def test_staff_register_only_inside_their_area(uow, demo):
    with pytest.raises(DomainError) as err:
        registry.register_person(
            uow,
            actor=NANXUN,
            channel=Channel.API,
            certno=new_certno(),
            name="越界",
            division_code="330502001",
        )
    assert err.value.field == "division_code"


def test_unknown_division_is_refused(uow, demo):
    with pytest.raises(DomainError) as err:
        registry.register_person(
            uow,
            actor=SYSTEM,
            channel=Channel.CLI,
            certno=new_certno(),
            name="无区划",
            division_code="330599",
        )
    assert err.value.field == "division_code" and err.value.code == "validation.unknown"


def test_reading_a_person_is_audited_and_outside_the_area_is_not_found(uow, demo):
    p = demo["persons"][0]  # Wuxing, Yuehe street
    person = registry.get_person(uow, actor=WUXING, channel=Channel.API, account_no=p["account_no"])
    assert person.name == p["name"]
    with uow:
        entry = (
            uow.session.query(AuditEntry).filter_by(action="person.read", person_id=person.id).one()
        )
        assert (entry.actor_id, entry.actor_division, entry.channel) == ("wuxing", "330502", "api")
    with pytest.raises(DomainError) as err:
        registry.get_person(uow, actor=NANXUN, channel=Channel.API, account_no=p["account_no"])
    assert err.value.status == 404


def test_service_point_clerk_sees_only_their_street(uow, demo):
    yuehe_person = demo["persons"][0]
    chaoyang_person = demo["persons"][1]  # 330502002
    found = registry.search_persons(
        uow,
        actor=YUEHE,
        channel=Channel.COUNTER,
        query=registry.PersonQuery(certno=yuehe_person["certno"]),
    )
    assert [p.name for p in found] == [yuehe_person["name"]]
    assert (
        registry.search_persons(
            uow,
            actor=YUEHE,
            channel=Channel.COUNTER,
            query=registry.PersonQuery(certno=chaoyang_person["certno"]),
        )
        == []
    )


def test_search_by_card_number_and_name(uow, demo):
    p = demo["persons"][2]
    by_card = registry.search_persons(
        uow, actor=NANXUN, channel=Channel.API, query=registry.PersonQuery(card_no=p["card_no"])
    )
    by_name = registry.search_persons(
        uow, actor=NANXUN, channel=Channel.API, query=registry.PersonQuery(name=p["name"])
    )
    assert [x.certno for x in by_card] == [p["certno"]] == [x.certno for x in by_name]
    with pytest.raises(DomainError) as err:
        registry.search_persons(
            uow, actor=NANXUN, channel=Channel.API, query=registry.PersonQuery()
        )
    assert err.value.field == "query"


def test_employer_credit_code_is_validated(uow, demo):
    with pytest.raises(DomainError) as err:
        registry.register_employer(
            uow,
            actor=WUXING,
            channel=Channel.API,
            uscc="91330502MA2B3C4D5X",
            name="坏代码公司",
            division_code="330502",
        )
    assert err.value.field == "uscc"


def test_institution_code_and_kind_are_validated(uow, demo):
    from tests.helpers import CITY

    inst, secret = registry.register_institution(
        uow,
        actor=CITY,
        channel=Channel.API,
        code="H33052100001",
        name="德清县人民医院",
        kind="hospital",
        level="2",
        division_code="330521",
    )
    assert inst.access_id == "H33052100001" and len(secret) == 32
    for code, kind, level, field in [
        ("X33052100001", "hospital", "2", "code"),
        ("H33052100002", "clinic", "2", "kind"),
        ("H33052100003", "hospital", "5", "level"),
    ]:
        with pytest.raises(DomainError) as err:
            registry.register_institution(
                uow,
                actor=CITY,
                channel=Channel.API,
                code=code,
                name="x",
                kind=kind,
                level=level,
                division_code="330521",
            )
        assert err.value.field == field
