"""``domain.use.decide``: one decision for every channel, as a table."""

import pytest

from yibao.domain.use import CardState, Named, PersonState, Presenter, Purpose, decide

HOLDER = PersonState(
    id=1, name="张伟", certno="330502199005060011", status="active", enrolment="active"
)


def card(status, replaced=False, holder=1):
    return CardState("A00000001", status, holder, replaced)


@pytest.mark.parametrize(
    ("status", "replaced", "code"),
    [
        ("issued", False, None),
        ("lost", False, "card.lost"),
        ("frozen", False, "card.frozen"),
        ("cancelled", False, "card.cancelled"),
        ("cancelled", True, "card.replaced"),
        ("in_production", False, "card.not_issued"),
        ("applied", False, "card.not_issued"),
        ("ready", False, "card.not_issued"),
    ],
)
@pytest.mark.parametrize("purpose", [Purpose.INQUIRY, Purpose.SETTLEMENT])
@pytest.mark.parametrize("presenter", [Presenter.HOLDER, Presenter.INSTITUTION])
def test_a_card_opens_nothing_unless_issued(status, replaced, code, purpose, presenter):
    d = decide(purpose=purpose, presenter=presenter, person=HOLDER, card=card(status, replaced))
    assert (d.refusal.code if d.refusal else None) == code
    if d.refusal:
        assert d.refusal.field == "card_no"


@pytest.mark.parametrize("status", ["lost", "cancelled", "frozen"])
def test_staff_see_the_person_whatever_the_card(status):
    d = decide(purpose=Purpose.INQUIRY, presenter=Presenter.STAFF, person=HOLDER, card=card(status))
    assert d.allowed


@pytest.mark.parametrize(
    ("named", "field"),
    [
        (Named(person_id=2), "psn_no"),
        (Named(certno="330502199005060022"), "certno"),
        (Named(name="陈静"), "psn_name"),
    ],
)
def test_a_card_with_another_persons_name_or_number_is_refused(named, field):
    d = decide(
        purpose=Purpose.INQUIRY,
        presenter=Presenter.INSTITUTION,
        person=HOLDER,
        card=card("issued"),
        named=named,
    )
    assert d.refusal.code == "card.not_holder" and d.refusal.field == field


def test_the_holders_own_number_and_name_pass():
    named = Named(person_id=1, certno="330502199005060011", name=" 张伟 ")
    d = decide(
        purpose=Purpose.SETTLEMENT,
        presenter=Presenter.INSTITUTION,
        person=HOLDER,
        card=card("issued"),
        named=named,
    )
    assert d.allowed


@pytest.mark.parametrize(
    ("person", "inquiry", "settlement"),
    [
        (HOLDER, None, None),
        (
            PersonState(1, "张伟", "x", "active", "suspended"),
            None,
            "enrolment.suspended",
        ),
        (
            PersonState(1, "张伟", "x", "deceased", "terminated"),
            "person.deceased",
            "person.deceased",
        ),
        (PersonState(1, "张伟", "x", "emigrated", None), "person.emigrated", "person.emigrated"),
        (
            PersonState(1, "张伟", "x", "active", "active", "320100", arrangement=False),
            None,
            "offsite.not_covered",
        ),
        (PersonState(1, "张伟", "x", "active", None), None, "enrolment.terminated"),
    ],
)
def test_the_persons_state(person, inquiry, settlement):
    for purpose, code in ((Purpose.INQUIRY, inquiry), (Purpose.SETTLEMENT, settlement)):
        d = decide(purpose=purpose, presenter=Presenter.HOLDER, person=person, card=card("issued"))
        assert (d.refusal.code if d.refusal else None) == code, purpose


def test_the_other_area_refusal_says_how_to_file():
    person = PersonState(1, "张伟", "x", "active", "active", "320100", arrangement=False)
    d = decide(purpose=Purpose.SETTLEMENT, presenter=Presenter.INSTITUTION, person=person)
    assert "异地就医备案" in d.refusal.zh and "file one" in d.refusal.en


def test_collecting_needs_a_ready_card():
    ready = decide(
        purpose=Purpose.COLLECTION, presenter=Presenter.STAFF, person=HOLDER, card=card("ready")
    )
    assert ready.allowed
    issued = decide(
        purpose=Purpose.COLLECTION, presenter=Presenter.STAFF, person=HOLDER, card=card("issued")
    )
    assert issued.refusal.code == "card.not_ready"


def test_no_person_is_not_found():
    assert (
        decide(purpose=Purpose.INQUIRY, presenter=Presenter.HOLDER, person=None).refusal.status
        == 404
    )
