"""An employer's roll (issue 15): hires and leavers with their dates, the
rules in the service, the month of leaving still assessed, and every read
and change audited with the employer as the actor. SQLite and PostgreSQL."""

import datetime as dt

import pytest
from sqlalchemy import select

from tests.helpers import WUXING, add_person
from yibao.domain.actors import Actor, Channel
from yibao.domain.errors import DomainError
from yibao.services.access.employer_login import employer_actor
from yibao.services.contributions import contributions as cs
from yibao.services.contributions import roll
from yibao.store.models import AuditEntry, ContributionLine, Employer

E = Channel.EMPLOYER


def _employer(services, demo, index=0) -> Actor:
    with services.uow() as uow:
        employer = uow.session.execute(
            select(Employer).where(Employer.uscc == demo["employers"][index]["uscc"])
        ).scalar_one()
        return employer_actor(employer)


def _hire(services, actor, person, start=dt.date(2026, 11, 1), **kw):
    return roll.hire(
        services.uow(),
        actor=actor,
        channel=E,
        employer_uscc=kw.pop("uscc", actor.id),
        certno=person.certno if hasattr(person, "certno") else person["certno"],
        name=kw.pop("name", person.name if hasattr(person, "name") else person["name"]),
        start=start,
        **kw,
    )


def _refused(call, *args, **kw) -> DomainError:
    with pytest.raises(DomainError) as exc:
        call(*args, **kw)
    return exc.value


def test_a_hire_puts_a_person_on_the_roll_from_its_date(services, demo):
    me = _employer(services, demo)
    person = add_person(services.uow(), name="新员工", paid=False)
    hired = _hire(services, me, person, start=dt.date(2026, 12, 1), base=9_000_00)
    assert (hired.start_date, hired.status, hired.base) == (
        dt.date(2026, 12, 1),
        "active",
        9_000_00,
    )
    found = roll.read_roll(services.uow(), actor=me, channel=E, employer_uscc=me.id)
    assert person.id in {e.person_id for e in found.current}
    # demo's own employees are on it; another employer's are not
    names = {e.name for e in found.current}
    assert {demo["persons"][0]["name"], demo["persons"][1]["name"]} <= names
    assert demo["persons"][2]["name"] not in names
    # not assessed for November, before the start; assessed from December
    nov = cs.assess_employer(
        services.uow(), actor=WUXING, channel=Channel.CLI, employer_uscc=me.id, month=202611
    )
    dec = cs.assess_employer(
        services.uow(), actor=WUXING, channel=Channel.CLI, employer_uscc=me.id, month=202612
    )
    assert dec.persons == nov.persons + 1
    with services.uow() as uow:
        line = uow.session.execute(
            select(ContributionLine).where(ContributionLine.person_id == person.id)
        ).scalar_one()
        assert (line.month, line.base, line.employer_amount) == (202612, 9_000_00, 630_00)
        audit = uow.session.execute(
            select(AuditEntry).where(
                AuditEntry.action.in_(["roll.hire", "roll.read"]),
                AuditEntry.person_id == person.id,
            )
        ).scalars()
        assert {(a.action, a.actor_kind, a.actor_id) for a in audit} == {
            ("roll.hire", "employer", me.id),
            ("roll.read", "employer", me.id),
        }


def test_the_rules_of_a_hire(services, demo):
    me = _employer(services, demo)
    person = add_person(services.uow(), name="规则", paid=False)
    early = _refused(_hire, services, me, person, start=dt.date(2026, 10, 31))
    assert (early.field, early.code) == ("start", "validation.too_early")
    late = _refused(_hire, services, me, person, start=dt.date(2027, 1, 1))
    assert (late.field, late.code) == ("start", "validation.too_late")
    assert _refused(_hire, services, me, person, name="别人").field == "name"
    from tests.helpers import new_certno

    unknown = {"certno": new_certno(), "name": "无名"}
    assert _refused(_hire, services, me, unknown).field == "certno"
    p = demo["persons"]
    assert _refused(_hire, services, me, p[0]).code == "roll.already"
    assert _refused(_hire, services, me, p[2]).code == "roll.elsewhere"  # 南浔木业's
    assert _refused(_hire, services, me, p[3]).code == "roll.insured_otherwise"  # flexible
    # a month assessed already is the county center's business
    cs.assess_employer(
        services.uow(), actor=WUXING, channel=Channel.CLI, employer_uscc=me.id, month=202611
    )
    assessed = _refused(_hire, services, me, person)
    assert assessed.code == "validation.assessed"
    # an employer acts for itself only: another's roll reads as not found
    other = demo["employers"][1]["uscc"]
    assert _refused(_hire, services, me, person, uscc=other).code == "employer.not_found"
    assert (
        _refused(roll.read_roll, services.uow(), actor=me, channel=E, employer_uscc=other).code
        == "employer.not_found"
    )


def test_a_leaver_is_off_the_roll_but_owed_for_the_month_of_leaving(services, demo, clock):
    me = _employer(services, demo)
    person = add_person(services.uow(), name="离职", paid=False)
    _hire(services, me, person, start=dt.date(2026, 11, 1))

    def leave(end, account_no=person.account_no):
        return roll.leave(
            services.uow(), actor=me, channel=E, employer_uscc=me.id, account_no=account_no, end=end
        )

    assert _refused(leave, dt.date(2026, 11, 24)).code == "validation.too_late"  # after today
    assert _refused(leave, dt.date(2026, 10, 31)).code == "validation.too_early"  # before hire
    stranger = demo["persons"][2]["account_no"]
    assert _refused(leave, dt.date(2026, 11, 20), stranger).code == "roll.not_found"
    left = leave(dt.date(2026, 11, 20))
    assert (left.end_date, left.status) == (dt.date(2026, 11, 20), "terminated")
    assert _refused(leave, dt.date(2026, 11, 20)).code == "roll.not_found"  # once
    found = roll.read_roll(services.uow(), actor=me, channel=E, employer_uscc=me.id)
    assert person.id in {e.person_id for e in found.former}
    assert person.id not in {e.person_id for e in found.current}

    def assessed(month):
        cs.assess_employer(
            services.uow(), actor=WUXING, channel=Channel.CLI, employer_uscc=me.id, month=month
        )
        with services.uow() as uow:
            return list(
                uow.session.execute(
                    select(ContributionLine.month)
                    .where(ContributionLine.person_id == person.id)
                    .order_by(ContributionLine.month)
                ).scalars()
            )

    assert assessed(202611) == [202611]
    assert assessed(202612) == [202611]  # gone in December
    # hired again: a new enrolment from the new date, in a month not yet assessed
    clock.advance(dt.timedelta(days=10))
    again = _hire(services, me, person, start=dt.date(2027, 1, 4))
    assert again.start_date == dt.date(2027, 1, 4)


def test_a_county_clerk_keeps_the_roll_for_an_employer_of_the_area(services, demo):
    person = add_person(services.uow(), name="柜台增员", paid=False)
    uscc = demo["employers"][0]["uscc"]
    hired = _hire(services, WUXING, person, uscc=uscc)
    assert hired.status == "active"
    from tests.helpers import NANXUN

    assert _refused(
        roll.read_roll, services.uow(), actor=NANXUN, channel=Channel.COUNTER, employer_uscc=uscc
    ).code == ("employer.not_found")
