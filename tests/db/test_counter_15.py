"""Issue 15, the counter's loops as the services decide them, so that the
staff API and the counter give the same answers: service points complete
their cards, returned cards are cancelled where the seed says, a child
applies with the household register, enrolment reviews are overdue after
their day, seed 004's card and record book continue, and a transfer goes to
a real area."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.helpers import (
    CITY,
    FUND_CLERK,
    NANXUN,
    START,
    WUXING,
    YUEHE,
    add_person,
    new_certno,
    person_id_of,
)
from yibao.domain import areas, reviews
from yibao.domain.actors import Channel
from yibao.domain.cards import CardStatus, Path, identity_documents
from yibao.domain.divisions import national_name
from yibao.domain.errors import DomainError
from yibao.services.cards import cards as card_service
from yibao.services.closing import closing
from yibao.services.contributions import contributions, enrolment
from yibao.services.ledger import ledger
from yibao.services.tx import use_case
from yibao.store.models import Card, CardEvent, Person
from yibao.store.uow import UnitOfWork

C = Channel.API
FORM = {"resigned_on": "2026-10-31", "debit_bank": "工商银行", "debit_account": "6222020000000001"}
ALL = ["id_card", "id_card_copy", "photo", "resignation_papers", "household_register_copy"]


def card_of(uow: UnitOfWork, card_no: str) -> Card:
    with uow:
        card = uow.session.execute(select(Card).where(Card.card_no == card_no)).scalar_one()
        uow.session.expunge(card)
        return card


def applicants_card(uow: UnitOfWork, demo) -> str:
    """The demo applicant's card, applied for at the Yuehe service point."""
    with uow:
        return uow.session.execute(
            select(Card.card_no)
            .join(Person, Person.id == Card.person_id)
            .where(Person.certno == demo["applicants"][0]["certno"])
        ).scalar_one()


# ---------------------------------------------------------------- 1. service-point cards


def test_the_service_point_that_took_the_application_marks_its_card_ready(uow, demo):
    card_no = applicants_card(uow, demo)
    # a contribution clerk produces no cards; another county does not see it
    with pytest.raises(DomainError) as err:
        card_service.mark_ready(uow, actor=FUND_CLERK, channel=C, card_no=card_no)
    assert err.value.status == 403
    with pytest.raises(DomainError) as err:
        card_service.mark_ready(uow, actor=NANXUN, channel=C, card_no=card_no)
    assert err.value.status == 404
    card = card_service.mark_ready(uow, actor=YUEHE, channel=C, card_no=card_no)
    assert (card.status, card.location, card.pickup_division) == (
        "ready",
        "service_point",
        "330502001",
    )
    assert card.pickup_deadline is not None and card.pickup_deadline > START.date()
    # and the service point hands it over: no longer 不能领取
    person_id = person_id_of(uow, demo["applicants"][0]["certno"])
    result = card_service.collect_card(
        uow, actor=YUEHE, channel=C, person_id=person_id, card_no=card_no
    )
    assert result.card.status == CardStatus.ISSUED and result.pin


def test_a_card_sent_back_to_the_county_is_not_marked_ready_twice(uow, demo):
    """Marking ready is a move of the lifecycle: a card already waiting (here
    sent back to the county center after the window) cannot be marked again."""
    person = add_person(uow, division="330502001")
    applied = card_service.apply_for_card(
        uow, actor=YUEHE, channel=C, path=Path.SERVICE_POINT, certno=person.certno,
        materials=["id_card", "photo"],
    )  # fmt: skip
    card_service.mark_ready(uow, actor=WUXING, channel=C, card_no=applied.card.card_no)
    clock = uow.clock
    clock.advance(dt.timedelta(days=40))  # past the pickup window: back to the county
    card_service.return_overdue_pickups(uow, actor=WUXING, channel=C)
    assert card_of(uow, applied.card.card_no).location == "county_center"
    # it is ready already: nothing more to mark
    with pytest.raises(DomainError) as err:
        card_service.mark_ready(uow, actor=WUXING, channel=C, card_no=applied.card.card_no)
    assert err.value.code == "card.bad_transition"


# ---------------------------------------------------------------- 2. returned cards


def test_a_card_handed_back_is_cancelled_at_the_service_point(uow, demo):
    zhang = demo["persons"][0]  # lives in Yuehe street
    person_id = person_id_of(uow, zhang["certno"])
    card = card_service.cancel_card(
        uow, actor=YUEHE, channel=C, person_id=person_id, card_no=zhang["card_no"],
        reason="出国定居，卡已交回",
    )  # fmt: skip
    assert card.status == CardStatus.CANCELLED
    with uow:
        last = (
            uow.session.execute(
                select(CardEvent).where(CardEvent.card_id == card.id).order_by(CardEvent.id.desc())
            )
            .scalars()
            .first()
        )
        assert last is not None and (last.event, last.actor) == ("cancelled", "yuehe")


def test_a_card_sent_back_after_the_pickup_window_is_cancelled_at_the_city_center(uow, demo):
    person = add_person(uow, division="330502001")
    applied = card_service.apply_for_card(
        uow, actor=YUEHE, channel=C, path=Path.SERVICE_POINT, certno=person.certno,
        materials=["id_card", "photo"],
    )  # fmt: skip
    card_service.mark_ready(uow, actor=YUEHE, channel=C, card_no=applied.card.card_no)
    uow.clock.advance(dt.timedelta(days=40))
    card_service.return_overdue_pickups(uow, actor=CITY, channel=C)
    card = card_service.cancel_card(
        uow, actor=CITY, channel=C, person_id=person.id, card_no=applied.card.card_no,
        reason="逾期未领，退回注销",
    )  # fmt: skip
    assert card.status == CardStatus.CANCELLED


def test_a_contribution_clerk_still_cannot_cancel_a_card(uow, demo):
    zhang = demo["persons"][0]
    with pytest.raises(DomainError) as err:
        card_service.cancel_card(
            uow, actor=FUND_CLERK, channel=C, person_id=person_id_of(uow, zhang["certno"]),
            card_no=zhang["card_no"], reason="x",
        )  # fmt: skip
    assert err.value.status == 403
    assert card_of(uow, zhang["card_no"]).status == CardStatus.ISSUED


def test_the_staff_api_lets_the_service_point_cancel_and_mark_ready(client, demo, token_for, uow):
    zhang = demo["persons"][0]
    r = client.post(
        f"/api/v1/persons/{zhang['account_no']}/cards/{zhang['card_no']}/cancel",
        json={"reason": "死亡，家属交回"},
        headers=token_for("yuehe"),
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    card_no = applicants_card(uow, demo)
    r = client.post(f"/api/v1/cards/{card_no}/ready", headers=token_for("yuehe"))
    assert r.status_code == 200 and r.json()["status"] == "ready", r.text


# ---------------------------------------------------------------- 5. a child's application


def test_identity_documents_by_age():
    day = dt.date(2026, 11, 23)
    assert identity_documents(dt.date(2015, 6, 1), day) == ("id_card", "household_register")
    assert identity_documents(dt.date(2010, 11, 23), day) == ("id_card",)  # 16 today
    assert identity_documents(dt.date(2010, 11, 24), day) == ("id_card", "household_register")


def test_a_child_without_an_id_card_applies_with_the_household_register(uow, demo):
    child = add_person(uow, certno=new_certno("330502", dt.date(2016, 4, 9)), name="小明")
    result = card_service.apply_for_card(
        uow, actor=WUXING, channel=C, path=Path.COUNTY_CENTER, certno=child.certno,
        materials=["household_register"],
    )  # fmt: skip
    assert result.card.status == CardStatus.ISSUED
    assert [m["item"] for m in result.application.materials] == ["household_register"]
    # a parent applying at a service point on the child's behalf
    other = add_person(uow, division="330502001", certno=new_certno("330502", dt.date(2019, 1, 2)))
    result = card_service.apply_for_card(
        uow, actor=YUEHE, channel=C, path=Path.DELEGATE, certno=other.certno,
        materials=["household_register", "delegate_id_card"],
        delegate_certno=demo["persons"][0]["certno"], delegate_name="张伟",
    )  # fmt: skip
    assert result.card.status == CardStatus.APPLIED


def test_an_adult_still_needs_the_id_card(uow, demo):
    adult = add_person(uow, certno=new_certno("330502", dt.date(1990, 4, 9)))
    with pytest.raises(DomainError) as err:
        card_service.apply_for_card(
            uow, actor=WUXING, channel=C, path=Path.COUNTY_CENTER, certno=adult.certno,
            materials=["household_register"],
        )  # fmt: skip
    assert (err.value.field, err.value.code) == ("materials", "validation.missing")
    assert "居民身份证原件" in err.value.zh and "户口簿" not in err.value.zh
    # a child with neither document is told either one will do
    child = add_person(uow, certno=new_certno("330502", dt.date(2016, 4, 9)))
    with pytest.raises(DomainError) as err:
        card_service.apply_for_card(
            uow, actor=WUXING, channel=C, path=Path.COUNTY_CENTER, certno=child.certno,
            materials=["photo"],
        )  # fmt: skip
    assert "居民身份证原件或户口簿" in err.value.zh
    assert "resident ID card (original) or household register" in err.value.en


# ---------------------------------------------------------------- 8. a transfer's destination


def test_national_names_come_from_the_gbt2260_table():
    assert national_name("330502", 2026) == "吴兴区"
    assert national_name("310101", 2026) == "黄浦区"
    assert national_name("999999", 2026) is None
    assert national_name("110103", 2026) is None  # 崇文区, merged in 2010
    assert national_name("110103", 2009) == "崇文区"
    with pytest.raises(DomainError) as err:
        areas.check_transfer_destination("710000", "330502001", 2026)
    assert err.value.field == "destination_area"


@pytest.mark.parametrize(
    ("destination", "code"),
    [("999999", "unknown"), ("110103", "unknown"), ("330599", "unknown"), ("820000", "outside_scheme"), ("330503", "same_city")],
)  # fmt: skip
def test_a_transfer_out_goes_to_a_real_area_outside_the_pool(uow, demo, destination, code):
    zhang = demo["persons"][0]
    person_id = person_id_of(uow, zhang["certno"])
    with uow:
        before = ledger.individual_balance(uow.session, person_id)
    with pytest.raises(DomainError) as err:
        closing.close_account(
            uow, actor=WUXING, channel=C, account_no=zhang["account_no"], kind="transfer_out",
            destination_area=destination,
        )  # fmt: skip
    assert (err.value.field, err.value.code) == ("destination_area", f"validation.{code}")
    with uow:
        person = uow.session.get(Person, person_id)
        assert person is not None and person.status == "active"
        assert ledger.individual_balance(uow.session, person_id) == before
    assert card_of(uow, zhang["card_no"]).status == CardStatus.ISSUED


def test_the_closure_check_names_balance_card_and_destination_and_changes_nothing(uow, demo):
    zhang = demo["persons"][0]
    person_id = person_id_of(uow, zhang["certno"])
    plan = closing.check_closure(
        uow, actor=WUXING, channel=C, account_no=zhang["account_no"], kind="transfer_out",
        destination_area="310101",
    )  # fmt: skip
    assert (plan.destination, plan.destination_name, plan.card_no) == (
        "310101",
        "黄浦区",
        zhang["card_no"],
    )
    closure, _ = closing.close_account(
        uow, actor=WUXING, channel=C, account_no=zhang["account_no"], kind="transfer_out",
        destination_area="310101",
    )  # fmt: skip
    assert closure.balance == plan.balance and closure.card_no == plan.card_no
    with uow:
        assert ledger.individual_balance(uow.session, person_id) == 0


# ---------------------------------------------------------------- 3. enrolment reviews


def test_the_review_day_is_the_filing_day_or_the_next_working_day():
    weekdays = lambda d: d.weekday() < 5  # noqa: E731
    monday, saturday = dt.date(2026, 11, 23), dt.date(2026, 11, 28)
    assert reviews.review_due(monday, weekdays) == monday
    assert reviews.review_due(saturday, weekdays) == dt.date(2026, 11, 30)
    assert not reviews.review_overdue(saturday, dt.date(2026, 11, 30), weekdays)
    assert reviews.review_overdue(saturday, dt.date(2026, 12, 1), weekdays)


def submit(uow: UnitOfWork, division: str = "330502001", **kw) -> enrolment.ApplicationFile:
    return enrolment.submit(
        uow, actor=FUND_CLERK, channel=C, certno=new_certno(division[:6], dt.date(1988, 2, 3)),
        name="灵活就业", division_code=division, materials=kw.pop("materials", ALL),
        subsidy_form=FORM, **kw,
    )  # fmt: skip


def test_an_application_not_reviewed_on_its_day_is_overdue(uow, demo):
    filed = submit(uow)  # Monday 23 November
    assert (filed.review_due, filed.overdue) == (dt.date(2026, 11, 23), False)
    counts = enrolment.review_counts(uow, actor=WUXING, channel=C)
    assert (counts.waiting, counts.overdue) == (1, 0)
    uow.clock.advance(dt.timedelta(days=1))
    again = enrolment.get_application(
        uow, actor=FUND_CLERK, channel=C, app_no=filed.application.app_no
    )
    assert again.overdue
    assert [a.overdue for a in enrolment.list_pending(uow, actor=FUND_CLERK, channel=C)] == [True]
    counts = enrolment.review_counts(uow, actor=YUEHE, channel=C)
    assert (counts.waiting, counts.overdue) == (1, 1)
    # another county sees none of it
    assert enrolment.review_counts(uow, actor=NANXUN, channel=C) == enrolment.ReviewCounts(0, 0)
    # reviewed late, it is no longer waiting
    enrolment.approve(uow, actor=FUND_CLERK, channel=C, app_no=filed.application.app_no)
    assert enrolment.review_counts(uow, actor=WUXING, channel=C) == enrolment.ReviewCounts(0, 0)


def test_an_application_filed_on_saturday_is_reviewed_on_monday(uow, demo):
    uow.clock.advance(dt.timedelta(days=5))  # Saturday 28 November
    filed = submit(uow)
    assert filed.review_due == dt.date(2026, 11, 30)
    uow.clock.advance(dt.timedelta(days=2))  # Monday
    assert enrolment.review_counts(uow, actor=WUXING, channel=C).overdue == 0
    uow.clock.advance(dt.timedelta(days=1))  # Tuesday
    assert enrolment.review_counts(uow, actor=WUXING, channel=C).overdue == 1


def test_the_staff_api_reports_the_review_day_and_overdue(client, demo, token_for, clock):
    body = {
        "certno": new_certno("330502", dt.date(1987, 3, 4)),
        "name": "周敏",
        "division_code": "330502001",
        "materials": ALL,
        "subsidy_form": {**FORM, "declared_base": "5000"},
    }
    r = client.post("/api/v1/enrolment-applications", json=body, headers=token_for("wuxing_fund"))
    assert r.status_code == 201, r.text
    assert (r.json()["review_due"], r.json()["overdue"]) == ("2026-11-23", False)
    clock.advance(dt.timedelta(days=1))
    r = client.get(
        f"/api/v1/enrolment-applications/{r.json()['app_no']}", headers=token_for("wuxing_fund")
    )
    assert r.json()["overdue"] is True


# ---------------------------------------------------------------- 7. seed 004: 医保卡及病历续用


@use_case
def _resign(uow: UnitOfWork, person_id: int) -> None:
    for e in contributions.enrolments_of(uow.session, person_id):
        contributions.terminate(uow, e, day=dt.date(2026, 10, 31), reason="resigned")


def test_a_card_holder_brings_the_card_and_records_which_continue(uow, demo):
    """Seed 004, step 1: a person who resigned and holds a card brings it and
    the medical record book; approval continues both, no new card."""
    person = add_person(uow, division="330502001", certno=new_certno("330502", dt.date(1984, 8, 8)))
    card = card_service.apply_for_card(
        uow, actor=WUXING, channel=C, path=Path.COUNTY_CENTER, certno=person.certno,
        materials=["id_card"],
    ).card  # fmt: skip
    _resign(uow, person.id)
    filed = enrolment.submit(
        uow, actor=FUND_CLERK, channel=C, certno=person.certno, materials=ALL, subsidy_form=FORM
    )
    assert [m["item"] for m in filed.application.missing] == ["card_and_records"]
    assert "医保卡及病历（续用）" in [m["zh"] for m in filed.application.missing]
    with pytest.raises(DomainError) as err:
        enrolment.approve(uow, actor=FUND_CLERK, channel=C, app_no=filed.application.app_no)
    assert err.value.code == "enrolment_application.materials_missing"
    filed = enrolment.add_materials(
        uow, actor=FUND_CLERK, channel=C, app_no=filed.application.app_no,
        materials=["card_and_records"],
    )  # fmt: skip
    assert filed.application.missing == []
    done = enrolment.approve(uow, actor=FUND_CLERK, channel=C, app_no=filed.application.app_no)
    assert done.application.renewed_card_no == card.card_no
    assert card_of(uow, card.card_no).status == CardStatus.ISSUED  # the same card goes on
    # the record book brought is recorded as continued, not issued anew
    done = enrolment.issue_record_book(
        uow, actor=FUND_CLERK, channel=C, app_no=filed.application.app_no, number="BL-2019-0042"
    )
    assert (done.application.record_book_no, done.application.record_book_renewed) == (
        "BL-2019-0042",
        True,
    )
    # leaving flexible employment and coming back: the book recorded before
    # goes on with the card, without being entered again
    _resign(uow, person.id)
    again = enrolment.submit(
        uow, actor=FUND_CLERK, channel=C, certno=person.certno,
        materials=[*ALL, "card_and_records"], subsidy_form=FORM,
    )  # fmt: skip
    done = enrolment.approve(uow, actor=FUND_CLERK, channel=C, app_no=again.application.app_no)
    assert (done.application.renewed_card_no, done.application.record_book_no) == (
        card.card_no,
        "BL-2019-0042",
    )
    assert done.application.record_book_renewed is True


def test_a_person_without_a_card_is_not_asked_for_one(uow, demo):
    filed = submit(uow)
    assert filed.application.missing == []
    assert "card_and_records" in [m["item"] for m in filed.application.materials]
    done = enrolment.approve(uow, actor=FUND_CLERK, channel=C, app_no=filed.application.app_no)
    assert done.application.renewed_card_no is None
    done = enrolment.issue_record_book(
        uow, actor=FUND_CLERK, channel=C, app_no=filed.application.app_no, number="BL-2026-0001"
    )
    assert done.application.record_book_renewed is False
