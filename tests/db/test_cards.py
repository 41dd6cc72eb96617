import datetime as dt

import pytest
from sqlalchemy import select

from tests.helpers import NANXUN, WUXING, YUEHE, add_person, person_id_of
from yibao.clock import CHINA
from yibao.domain.actors import Channel
from yibao.domain.cards import CardStatus, Path
from yibao.domain.errors import DomainError
from yibao.services import security
from yibao.services.cards import cards as card_service
from yibao.store.models import AuditEntry, Card, CardEvent

C = Channel.COUNTER


def apply(uow, actor, path, certno, **kw):
    result = card_service.apply_for_card(
        uow, actor=actor, channel=C, path=path, certno=certno, **kw
    )
    return result


def events(uow, card_no):
    with uow:
        card = uow.session.execute(select(Card).where(Card.card_no == card_no)).scalar_one()
        return [
            e.event
            for e in uow.session.execute(
                select(CardEvent).where(CardEvent.card_id == card.id).order_by(CardEvent.id)
            ).scalars()
        ]


def test_county_center_issues_the_card_on_the_spot(uow, demo):
    person = add_person(uow)
    result = apply(
        uow, WUXING, Path.COUNTY_CENTER, person.certno, materials=["id_card", "household_register"]
    )
    assert result.card.status == CardStatus.ISSUED
    assert result.application.due_date == dt.date(2026, 11, 23)
    assert result.pin is not None and len(result.pin) == 6
    with uow:
        card = uow.session.get(Card, result.card.id)
        assert security.verify_secret(card.pin_hash, result.pin)
    assert events(uow, result.card.card_no) == [
        "applied",
        "production_started",
        "produced",
        "issued",
    ]
    assert result.application.materials[0]["item"] == "id_card"


def test_chosen_pin_is_not_echoed_and_weak_pins_are_refused(uow, demo):
    person = add_person(uow)
    with pytest.raises(DomainError) as err:
        card_service.apply_for_card(
            uow,
            actor=WUXING,
            channel=C,
            path=Path.COUNTY_CENTER,
            certno=person.certno,
            materials=["id_card"],
            pin="111111",
        )
    assert err.value.field == "pin"
    result = apply(
        uow, WUXING, Path.COUNTY_CENTER, person.certno, materials=["id_card"], pin="480213"
    )
    assert result.pin is None


def test_missing_materials_are_named(uow, demo):
    person = add_person(uow)
    with pytest.raises(DomainError) as err:
        card_service.apply_for_card(
            uow,
            actor=YUEHE,
            channel=C,
            path=Path.SERVICE_POINT,
            certno=person.certno,
            materials=["id_card"],
        )
    assert err.value.field == "materials"
    assert "photo" in err.value.message and "照片" in err.value.message


def test_service_point_application_across_national_day_is_due_three_working_days_later(
    uow, clock, demo
):
    clock.set(dt.datetime(2026, 9, 30, 9, 30, tzinfo=CHINA))
    person = add_person(uow)
    result = apply(uow, YUEHE, Path.SERVICE_POINT, person.certno, materials=["id_card", "photo"])
    assert result.card.status == CardStatus.APPLIED
    assert result.application.due_date == dt.date(2026, 10, 10)  # make-up Saturday
    assert result.application.calendar_note == ""
    assert result.application.division_code == "330502001"


def test_service_point_application_in_an_unpublished_year_records_the_fallback(uow, clock, demo):
    from yibao.domain.workdays import published_until

    year = published_until() + 1
    clock.set(dt.datetime(year, 3, 1, 9, 0, tzinfo=CHINA))
    person = add_person(uow)
    result = apply(uow, YUEHE, Path.SERVICE_POINT, person.certno, materials=["id_card", "photo"])
    assert str(year) in result.application.calendar_note
    assert "Monday to Friday" in result.application.calendar_note


def test_service_point_card_is_collected_at_the_point_within_the_window(uow, clock, demo):
    person = add_person(uow)
    result = apply(uow, YUEHE, Path.SERVICE_POINT, person.certno, materials=["id_card", "photo"])
    card_no = result.card.card_no
    card_service.start_production(uow, actor=WUXING, channel=C, card_no=card_no)
    card = card_service.mark_ready(uow, actor=WUXING, channel=C, card_no=card_no)
    assert card.location == "service_point"
    assert card.pickup_deadline == dt.date(2026, 11, 23) + dt.timedelta(days=30)
    # a county clerk cannot hand out a card that waits at the service point
    with pytest.raises(DomainError) as err:
        card_service.collect_card(
            uow,
            actor=WUXING,
            channel=C,
            person_id=person.id,
            card_no=card_no,
            collector_certno=person.certno,
        )
    assert err.value.code == "card.elsewhere"
    done = card_service.collect_card(
        uow,
        actor=YUEHE,
        channel=C,
        person_id=person.id,
        card_no=card_no,
        collector_certno=person.certno,
    )
    assert done.card.status == CardStatus.ISSUED and done.pin


def test_uncollected_card_goes_back_to_the_county_center_after_the_window(uow, clock, demo):
    person = add_person(uow)
    result = apply(uow, YUEHE, Path.SERVICE_POINT, person.certno, materials=["id_card", "photo"])
    card_service.mark_ready(uow, actor=WUXING, channel=C, card_no=result.card.card_no)
    clock.advance(dt.timedelta(days=31))
    views = card_service.list_applications(uow, actor=YUEHE, channel=C, view="overdue")
    mine = [v.state for v in views if v.application.person_id == person.id]
    assert mine == ["pickup_overdue"]
    # the demo applicant's card was never produced: late production, also overdue
    assert "overdue" in {v.state for v in views}
    returned = card_service.return_overdue_pickups(uow, actor=WUXING, channel=C)
    assert [c.card_no for c in returned] == [result.card.card_no]
    assert "returned_to_center" in events(uow, result.card.card_no)
    with pytest.raises(DomainError):
        card_service.collect_card(
            uow,
            actor=YUEHE,
            channel=C,
            person_id=person.id,
            card_no=result.card.card_no,
            collector_certno=person.certno,
        )
    done = card_service.collect_card(
        uow,
        actor=WUXING,
        channel=C,
        person_id=person.id,
        card_no=result.card.card_no,
        collector_certno=person.certno,
    )
    assert done.card.status == CardStatus.ISSUED


def test_due_and_overdue_lists(uow, clock, demo):
    a = add_person(uow)
    apply(uow, YUEHE, Path.SERVICE_POINT, a.certno, materials=["id_card", "photo"])
    due = card_service.list_applications(uow, actor=YUEHE, channel=C, view="due")
    assert a.id in {v.application.person_id for v in due}
    assert all(v.state in ("in_progress", "awaiting_pickup") for v in due)
    with uow:
        listed = (
            uow.session.execute(
                select(AuditEntry).where(
                    AuditEntry.action == "application.list", AuditEntry.person_id == a.id
                )
            )
            .scalars()
            .all()
        )
        assert [e.actor_id for e in listed] == ["yuehe"]
    clock.advance(dt.timedelta(days=10))
    overdue = card_service.list_applications(uow, actor=YUEHE, channel=C, view="overdue")
    assert a.id in {v.application.person_id for v in overdue}
    # another county's clerk sees none of them
    others = card_service.list_applications(uow, actor=NANXUN, channel=C, view="all")
    assert others and all(v.application.division_code.startswith("330503") for v in others)


def test_delegate_documents_are_recorded_and_the_delegate_cannot_be_the_person(uow, demo):
    person = add_person(uow)
    delegate = add_person(uow, name="受托人")
    with pytest.raises(DomainError) as err:
        card_service.apply_for_card(
            uow,
            actor=YUEHE,
            channel=C,
            path=Path.DELEGATE,
            certno=person.certno,
            materials=["id_card", "delegate_id_card"],
            delegate_certno=person.certno,
            delegate_name="本人",
        )
    assert err.value.field == "delegate_certno" and err.value.code == "validation.same_person"
    with pytest.raises(DomainError) as err:
        card_service.apply_for_card(
            uow,
            actor=YUEHE,
            channel=C,
            path=Path.DELEGATE,
            certno=person.certno,
            materials=["id_card"],
            delegate_certno=delegate.certno,
            delegate_name="x",
        )
    assert err.value.field == "materials"
    result = apply(
        uow,
        YUEHE,
        Path.DELEGATE,
        person.certno,
        materials=["id_card", "delegate_id_card"],
        delegate_certno=delegate.certno,
        delegate_name="受托人",
    )
    assert result.application.delegate_certno == delegate.certno
    assert result.application.due_date is not None
    card_service.mark_ready(uow, actor=WUXING, channel=C, card_no=result.card.card_no)
    stranger = add_person(uow, name="路人")
    with pytest.raises(DomainError) as err:
        card_service.collect_card(
            uow,
            actor=YUEHE,
            channel=C,
            person_id=person.id,
            card_no=result.card.card_no,
            collector_certno=stranger.certno,
        )
    assert err.value.field == "collector_certno"
    done = card_service.collect_card(
        uow,
        actor=YUEHE,
        channel=C,
        person_id=person.id,
        card_no=result.card.card_no,
        collector_certno=delegate.certno,
    )
    assert done.card.status == CardStatus.ISSUED


def test_at_most_one_live_card_and_reissue_cancels_the_old_one(uow, demo):
    p = demo["persons"][0]
    with pytest.raises(DomainError) as err:
        card_service.apply_for_card(
            uow,
            actor=WUXING,
            channel=C,
            path=Path.COUNTY_CENTER,
            certno=p["certno"],
            materials=["id_card"],
        )
    assert err.value.code == "card.exists"
    lost = card_service.report_lost(
        uow,
        actor=YUEHE,
        channel=C,
        person_id=person_id_of(uow, p["certno"]),
        card_no=p["card_no"],
        reason="丢失",
    )
    assert lost.status == CardStatus.LOST
    new = card_service.reissue(
        uow,
        actor=WUXING,
        channel=C,
        person_id=person_id_of(uow, p["certno"]),
        card_no=p["card_no"],
        materials=["id_card"],
        reason="lost",
    )
    assert new.card.card_no != p["card_no"] and new.card.status == CardStatus.ISSUED
    with uow:
        old = uow.session.execute(select(Card).where(Card.card_no == p["card_no"])).scalar_one()
        assert old.status == CardStatus.CANCELLED
        assert new.card.replaces_card_id == old.id
        live = (
            uow.session.execute(
                select(Card).where(Card.person_id == old.person_id, Card.status == "issued")
            )
            .scalars()
            .all()
        )
        assert len(live) == 1


def test_database_refuses_a_second_active_card(uow, demo):
    from sqlalchemy.exc import IntegrityError

    p = demo["persons"][1]
    with uow:
        first = uow.session.execute(select(Card).where(Card.card_no == p["card_no"])).scalar_one()
        clone = Card(
            card_no="1234567897",
            person_id=first.person_id,
            kind=first.kind,
            status="issued",
            location="holder",
            created_at=first.created_at,
            updated_at=first.updated_at,
        )
        uow.session.add(clone)
        with pytest.raises(IntegrityError):
            uow.session.flush()


def test_lifecycle_refusals_are_clear(uow, demo):
    p = demo["persons"][2]
    with pytest.raises(DomainError) as err:
        card_service.collect_card(
            uow,
            actor=NANXUN,
            channel=C,
            person_id=person_id_of(uow, p["certno"]),
            card_no=p["card_no"],
            collector_certno=p["certno"],
        )
    assert err.value.code == "card.not_ready"
    card_service.freeze(
        uow,
        actor=NANXUN,
        channel=C,
        person_id=person_id_of(uow, p["certno"]),
        card_no=p["card_no"],
        reason="可疑交易",
    )
    card_service.unfreeze(
        uow,
        actor=NANXUN,
        channel=C,
        person_id=person_id_of(uow, p["certno"]),
        card_no=p["card_no"],
        reason="核实无误",
    )
    card_service.cancel_card(
        uow,
        actor=NANXUN,
        channel=C,
        person_id=person_id_of(uow, p["certno"]),
        card_no=p["card_no"],
        reason="死亡",
    )
    with pytest.raises(DomainError) as err:
        card_service.report_lost(
            uow,
            actor=NANXUN,
            channel=C,
            person_id=person_id_of(uow, p["certno"]),
            card_no=p["card_no"],
        )
    assert err.value.code == "card.bad_transition"
    assert events(uow, p["card_no"])[-3:] == ["frozen", "unfrozen", "cancelled"]


def test_a_service_point_clerk_may_not_manage_production(uow, demo):
    p = demo["persons"][0]
    with pytest.raises(DomainError) as err:
        card_service.freeze(
            uow,
            actor=YUEHE,
            channel=C,
            person_id=person_id_of(uow, p["certno"]),
            card_no=p["card_no"],
            reason="x",
        )
    assert err.value.status == 403


def test_pin_reset_at_the_counter(uow, demo):
    p = demo["persons"][0]
    result = card_service.reset_pin(
        uow, actor=YUEHE, channel=C, person_id=person_id_of(uow, p["certno"]), card_no=p["card_no"]
    )
    with uow:
        card = uow.session.execute(select(Card).where(Card.card_no == p["card_no"])).scalar_one()
        assert security.verify_secret(card.pin_hash, result.pin)
        assert not security.verify_secret(card.pin_hash, p["pin"])


# ---------------------------------------------------------------- a card action is about the person's own card

OTHERS_CARD_ACTIONS = {
    "report_lost": lambda uow, **k: card_service.report_lost(uow, actor=WUXING, channel=C, **k),
    "report_found": lambda uow, **k: card_service.report_found(uow, actor=WUXING, channel=C, **k),
    "freeze": lambda uow, **k: card_service.freeze(uow, actor=WUXING, channel=C, reason="x", **k),
    "unfreeze": lambda uow, **k: card_service.unfreeze(
        uow, actor=WUXING, channel=C, reason="x", **k
    ),
    "cancel_card": lambda uow, **k: card_service.cancel_card(
        uow, actor=WUXING, channel=C, reason="x", **k
    ),
    "reissue": lambda uow, **k: card_service.reissue(
        uow, actor=WUXING, channel=C, materials=["id_card"], reason="x", **k
    ),
    "reset_pin": lambda uow, **k: card_service.reset_pin(uow, actor=WUXING, channel=C, **k),
    "collect_card": lambda uow, **k: card_service.collect_card(uow, actor=WUXING, channel=C, **k),
}


@pytest.mark.parametrize("action", sorted(OTHERS_CARD_ACTIONS))
def test_a_card_action_for_one_person_on_anothers_card_is_refused(uow, demo, action):
    """A clerk serving 张伟 cannot reset, report, freeze, cancel, reissue or
    hand over 陈静's card: the service names the mismatch and changes nothing."""
    zhang, other = demo["persons"][0], demo["persons"][1]
    before = events(uow, other["card_no"])
    with pytest.raises(DomainError) as err:
        OTHERS_CARD_ACTIONS[action](
            uow, person_id=person_id_of(uow, zhang["certno"]), card_no=other["card_no"]
        )
    assert (err.value.code, err.value.field, err.value.status) == (
        "card.not_holder",
        "card_no",
        409,
    )
    assert events(uow, other["card_no"]) == before
    with uow:
        card = uow.session.execute(
            select(Card).where(Card.card_no == other["card_no"])
        ).scalar_one()
        assert card.status == CardStatus.ISSUED
        assert security.verify_secret(card.pin_hash, other["pin"])


def test_a_found_card_works_again_and_the_undo_is_a_card_event_and_audited(uow, demo):
    p = demo["persons"][0]
    pid = person_id_of(uow, p["certno"])
    with pytest.raises(DomainError) as err:
        card_service.report_found(uow, actor=YUEHE, channel=C, person_id=pid, card_no=p["card_no"])
    assert err.value.code == "card.not_lost"  # nothing to undo
    card_service.report_lost(uow, actor=YUEHE, channel=C, person_id=pid, card_no=p["card_no"])
    card = card_service.report_found(
        uow, actor=YUEHE, channel=C, person_id=pid, card_no=p["card_no"], reason="找到了"
    )
    assert card.status == CardStatus.ISSUED
    assert events(uow, p["card_no"])[-2:] == ["reported_lost", "found"]
    with uow:
        entry = uow.session.execute(
            select(AuditEntry).where(AuditEntry.action == "card.found")
        ).scalar_one()
        assert (entry.person_id, entry.subject, entry.actor_id) == (pid, p["card_no"], "yuehe")
        assert entry.detail["from"] == "lost" and entry.detail["reason"] == "找到了"


def test_a_card_a_reissue_replaced_cannot_be_found_again(uow, demo):
    p = demo["persons"][0]
    pid = person_id_of(uow, p["certno"])
    card_service.report_lost(uow, actor=YUEHE, channel=C, person_id=pid, card_no=p["card_no"])
    card_service.reissue(
        uow,
        actor=WUXING,
        channel=C,
        person_id=pid,
        card_no=p["card_no"],
        materials=["id_card"],
        reason="丢失补卡",
    )
    with pytest.raises(DomainError) as err:
        card_service.report_found(uow, actor=WUXING, channel=C, person_id=pid, card_no=p["card_no"])
    assert err.value.code == "card.not_lost"


def test_a_person_reports_only_their_own_card_lost(uow, demo):
    from yibao.domain.actors import Actor

    zhang, other = demo["persons"][0], demo["persons"][1]
    zid, oid = person_id_of(uow, zhang["certno"]), person_id_of(uow, other["certno"])
    me = Actor("person", str(zid), "330502001")
    for person_id, card_no in ((zid, other["card_no"]), (oid, other["card_no"])):
        with pytest.raises(DomainError) as err:
            card_service.report_lost(
                uow, actor=me, channel=Channel.PORTAL, person_id=person_id, card_no=card_no
            )
        assert err.value.status == 404
    card = card_service.report_lost(
        uow, actor=me, channel=Channel.PORTAL, person_id=zid, card_no=zhang["card_no"]
    )
    assert card.status == CardStatus.LOST


def test_a_ready_card_of_a_person_whose_insurance_ended_is_not_handed_over(uow, demo):
    """Collection is decided by domain.use (purpose COLLECTION, presenter STAFF)."""
    from yibao.store.models import Person

    person = add_person(uow)
    result = apply(uow, YUEHE, Path.SERVICE_POINT, person.certno, materials=["id_card", "photo"])
    card_service.mark_ready(uow, actor=WUXING, channel=C, card_no=result.card.card_no)
    with uow:
        uow.session.get(Person, person.id).status = "deceased"
        uow.commit()
    with pytest.raises(DomainError) as err:
        card_service.collect_card(
            uow, actor=YUEHE, channel=C, person_id=person.id, card_no=result.card.card_no
        )
    assert err.value.code == "person.deceased"
    assert events(uow, result.card.card_no)[-1] == "produced"
