"""The employer batch and the roll (issue 15): a person who is not on the
employer's roll is refused by row, whichever way the list comes in (the
county center with a letter of introduction, or the employer's own
channel); a corrected row after a refused row for the same person is
accepted. SQLite and PostgreSQL."""

from sqlalchemy import select

from tests.db.employees import add_employee
from tests.helpers import WUXING, add_person, new_certno
from yibao.domain.actors import Channel
from yibao.services.access.employer_login import employer_actor
from yibao.services.cards import batches
from yibao.store.models import AuditEntry, Employer

MATERIALS = ["letter_of_introduction", "handler_id_card"]
NOT_ON_ROLL = "not on this employer's roll"


def _actor(services, uscc):
    with services.uow() as uow:
        return employer_actor(
            uow.session.execute(select(Employer).where(Employer.uscc == uscc)).scalar_one()
        )


def _own(services, actor, lines):
    return batches.upload_own_batch(
        services.uow(),
        actor=actor,
        channel=Channel.EMPLOYER,
        handler_certno=new_certno(),
        handler_name="经办人",
        filename="staff.csv",
        content=("certno,name\n" + "\n".join(lines)).encode(),
    )


def _reasons(result):
    return {r["row"]: r for r in result.rejected}


def test_the_county_center_refuses_a_person_who_is_not_on_the_roll(services, demo):
    uscc = demo["employers"][0]["uscc"]
    stranger = add_person(services.uow(), name="路人")  # insured, paid, no employer's
    mine = add_employee(services.uow(), uscc, name="本单位")
    theirs = add_employee(services.uow(), demo["employers"][1]["uscc"], name="他单位")
    result = batches.upload_batch(
        services.uow(),
        actor=WUXING,
        channel=Channel.COUNTER,
        employer_uscc=uscc,
        letter_ref="织里童装〔2026〕13号",
        handler_certno=new_certno(),
        handler_name="经办人",
        materials=MATERIALS,
        filename="staff.csv",
        content=(
            f"certno,name\n{stranger.certno},路人\n{mine.certno},本单位\n{theirs.certno},他单位\n"
        ).encode(),
    )
    assert [r["row"] for r in result.accepted] == [3]
    reasons = _reasons(result)
    assert set(reasons) == {2, 4}
    assert all(NOT_ON_ROLL in r["reason"] and r["field"] == "certno" for r in reasons.values())
    assert reasons[2]["zh"] == "该人员不在本单位参保人员名单中"


def test_the_employer_uploads_its_own_list_and_only_its_roll_gets_cards(services, demo):
    uscc = demo["employers"][0]["uscc"]
    me = _actor(services, uscc)
    mine = [add_employee(services.uow(), uscc, name=f"自助{i}") for i in range(2)]
    # employees of the employer living in another county: on its roll all the same
    away = add_employee(services.uow(), uscc, name="外区员工", division="330503001")
    stranger = add_person(services.uow(), name="陌生人")
    result = _own(
        services,
        me,
        [
            f"{mine[0].certno},自助0",  # row 2
            f"{stranger.certno},陌生人",  # row 3: not on the roll
            f"{new_certno()},未登记",  # row 4: not registered, answered the same
            f"{mine[1].certno},自助1",  # row 5
            f"{away.certno},外区员工",  # row 6
        ],
    )
    assert [r["row"] for r in result.accepted] == [2, 5, 6]
    reasons = _reasons(result)
    assert reasons[3]["reason"] == reasons[4]["reason"] and NOT_ON_ROLL in reasons[3]["en"]
    batch = result.batch
    assert batch.division_code == "330502" and batch.letter_ref == ""
    assert batch.status == "in_production" and batch.uploaded_by == uscc
    # the county center sees it among its batches and makes the cards
    found = batches.read_batch(
        services.uow(), actor=WUXING, channel=Channel.COUNTER, batch_no=batch.batch_no
    )
    assert {c.person_id for c in found.cards} == {mine[0].id, mine[1].id, away.id}
    # the employer sees its batches, and the read is its own
    own = batches.own_batches(services.uow(), actor=me, channel=Channel.EMPLOYER)
    assert [v.batch.batch_no for v in own] == [batch.batch_no]
    with services.uow() as uow:
        actions = {
            (a.action, a.actor_kind, a.actor_id)
            for a in uow.session.execute(
                select(AuditEntry).where(AuditEntry.action.like("employer_batch.%"))
            ).scalars()
        }
    assert ("employer_batch.upload", "employer", uscc) in actions
    assert ("employer_batch.read", "employer", uscc) in actions


def test_a_corrected_row_after_a_refused_row_for_the_same_person_is_accepted(services, demo):
    uscc = demo["employers"][0]["uscc"]
    person = add_employee(services.uow(), uscc, name="改正")
    result = _own(
        services,
        _actor(services, uscc),
        [
            f"{person.certno},写错",  # row 2: the name does not match
            f"{person.certno},改正",  # row 3: the correction
            f"{person.certno},改正",  # row 4: the same person again
        ],
    )
    assert [r["row"] for r in result.accepted] == [3]
    reasons = _reasons(result)
    assert reasons[2]["field"] == "name"
    assert "row 3" in reasons[4]["reason"]


def test_an_employer_of_no_county_brings_its_list_to_a_center(services, demo):
    import pytest

    from yibao.domain.errors import DomainError

    school = _actor(services, demo["employers"][2]["uscc"])  # the city's school
    with pytest.raises(DomainError) as refused:
        _own(services, school, [f"{new_certno()},某人"])
    assert refused.value.field == "employer"


def test_at_the_county_center_too_a_correction_follows_a_refused_row(services, demo):
    uscc = demo["employers"][0]["uscc"]
    person = add_employee(services.uow(), uscc, name="柜台改正")
    result = batches.upload_batch(
        services.uow(),
        actor=WUXING,
        channel=Channel.COUNTER,
        employer_uscc=uscc,
        letter_ref="织里童装〔2026〕14号",
        handler_certno=new_certno(),
        handler_name="经办人",
        materials=MATERIALS,
        filename="staff.csv",
        content=f"certno,name\n{person.certno},写错\n{person.certno},柜台改正\n".encode(),
    )
    assert [r["row"] for r in result.accepted] == [3]
    assert _reasons(result)[2]["field"] == "name"
