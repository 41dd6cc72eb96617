"""Care in another area (异地就医备案, issue 16) as the services decide it:
each refusal names its field, a filing is listed with its state, a
cancelled or expired filing covers nothing, staff see only their area,
and every change and read is audited."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from tests.helpers import NANXUN, START, WUXING, add_person
from yibao.domain.actors import Actor, Channel
from yibao.domain.errors import DomainError
from yibao.services.access.person_login import person_actor
from yibao.services.settlement import offsite
from yibao.store.models import AuditEntry, CrossAreaFiling

TODAY = START.date()
SUZHOU = "320500"  # a city outside Huzhou's pool


def _file(services: Any, actor: Actor, person_id: int, **given: Any) -> offsite.FilingView:
    fields: dict[str, Any] = {
        "kind": "living",
        "visit_area": SUZHOU,
        "start": TODAY,
        "end": None,
        **given,
    }
    return offsite.file(
        services.uow(), actor=actor, channel=Channel.PORTAL, person_id=person_id, **fields
    )


@pytest.fixture
def person(services: Any, demo: dict[str, Any]) -> Any:
    return add_person(services.uow(), name="异地人")


@pytest.mark.parametrize(
    ("given", "field", "code"),
    [
        ({"kind": "holiday"}, "kind", "validation.choice"),
        ({"kind": None}, "kind", "validation.choice"),
        ({"visit_area": "32050"}, "visit_area", "validation.required"),
        ({"visit_area": "329999"}, "visit_area", "validation.unknown"),
        ({"visit_area": "810000"}, "visit_area", "validation.outside_scheme"),
        ({"visit_area": "330503"}, "visit_area", "validation.same_city"),
        ({"visit_area": "330500"}, "visit_area", "validation.same_city"),
        ({"start": None}, "start", "validation.required"),
        ({"end": TODAY - dt.timedelta(days=1)}, "end", "validation.order"),
        (
            {"start": TODAY - dt.timedelta(days=30), "end": TODAY - dt.timedelta(days=1)},
            "end",
            "validation.past",
        ),
        ({"kind": "referral", "end": None}, "end", "validation.required"),
    ],
)
def test_a_bad_filing_is_refused_naming_its_field(
    services: Any, person: Any, given: dict[str, Any], field: str, code: str
) -> None:
    with pytest.raises(DomainError) as err:
        _file(services, person_actor(person), person.id, **given)
    assert err.value.field == field and err.value.code == code
    assert err.value.zh and err.value.en
    with services.uow() as u:
        assert u.session.execute(select(CrossAreaFiling)).first() is None


def test_a_person_not_enrolled_has_no_area_to_file_from(
    services: Any, demo: dict[str, Any]
) -> None:
    someone = add_person(services.uow(), paid=False)
    with pytest.raises(DomainError) as err:
        _file(services, person_actor(someone), someone.id)
    assert err.value.code == "offsite.not_insured"


def test_filing_and_listing_with_states(services: Any, person: Any, clock: Any) -> None:
    me = person_actor(person)
    living = _file(services, me, person.id)
    assert (living.kind, living.visit_area, living.state, living.end) == (
        "living",
        SUZHOU,
        "active",
        None,
    )
    referral = _file(
        services,
        me,
        person.id,
        kind="referral",
        visit_area="310101",
        start=TODAY + dt.timedelta(days=10),
        end=TODAY + dt.timedelta(days=40),
    )
    assert referral.state == "future" and referral.kind_zh == "转诊转院"
    listed = offsite.filings(services.uow(), actor=me, channel=Channel.PORTAL, person_id=person.id)
    assert [(f.id, f.state) for f in listed] == [(referral.id, "future"), (living.id, "active")]
    # the clock, not today's date, makes the referral active and then expired
    clock.set(START + dt.timedelta(days=20))
    states = {
        f.id: f.state
        for f in offsite.filings(
            services.uow(), actor=me, channel=Channel.PORTAL, person_id=person.id
        )
    }
    assert states == {referral.id: "active", living.id: "active"}
    clock.set(START + dt.timedelta(days=41))
    states = {
        f.id: f.state
        for f in offsite.filings(
            services.uow(), actor=me, channel=Channel.PORTAL, person_id=person.id
        )
    }
    assert states == {referral.id: "expired", living.id: "active"}
    with services.uow() as u:
        actions = [
            a
            for (a,) in u.session.execute(
                select(AuditEntry.action).where(AuditEntry.person_id == person.id)
            )
            if a.startswith("offsite.")
        ]
    assert actions.count("offsite.file") == 2 and actions.count("offsite.list") == 3


def test_an_overlapping_filing_for_the_same_pool_is_refused(services: Any, person: Any) -> None:
    me = person_actor(person)
    _file(services, me, person.id)
    with pytest.raises(DomainError) as err:
        _file(services, me, person.id, visit_area="320508", start=TODAY + dt.timedelta(days=5))
    assert err.value.code == "offsite.overlap" and err.value.field == "start"
    # another pool is another filing
    assert _file(services, me, person.id, visit_area="310101").state == "active"


def test_cancel_ends_the_cover_and_is_once(services: Any, person: Any) -> None:
    me = person_actor(person)
    filing = _file(services, me, person.id)
    with services.uow() as u:
        assert offsite.covering(u.session, person_id=person.id, visit_area="320508", day=TODAY)
        assert offsite.has_filing(u.session, person_id=person.id, visit_area="320508", day=TODAY)
    done = offsite.cancel(
        services.uow(), actor=me, channel=Channel.PORTAL, person_id=person.id, filing_id=filing.id
    )
    assert done.state == "cancelled" and done.cancelled_at is not None
    with services.uow() as u:
        cover = offsite.covering(u.session, person_id=person.id, visit_area="320508", day=TODAY)
        row = u.session.get(CrossAreaFiling, filing.id)
        assert row is not None and row.cancelled_by == f"person:{person.id}"
    assert not cover.covered and cover.reason == "cancelled"
    with pytest.raises(DomainError) as err:
        offsite.cancel(
            services.uow(),
            actor=me,
            channel=Channel.PORTAL,
            person_id=person.id,
            filing_id=filing.id,
        )
    assert err.value.code == "offsite.cancelled" and err.value.field == "filing_id"
    # a cancelled filing no longer stands in the way of a new one
    assert _file(services, me, person.id).state == "active"


def test_an_expired_filing_covers_nothing_and_cannot_be_cancelled(
    services: Any, person: Any, clock: Any
) -> None:
    me = person_actor(person)
    filing = _file(services, me, person.id, kind="referral", end=TODAY + dt.timedelta(days=3))
    clock.set(START + dt.timedelta(days=4))
    day = clock.today()
    with services.uow() as u:
        cover = offsite.covering(u.session, person_id=person.id, visit_area=SUZHOU, day=day)
    assert (cover.covered, cover.reason) == (False, "expired")
    with pytest.raises(DomainError) as err:
        offsite.cancel(
            services.uow(),
            actor=me,
            channel=Channel.PORTAL,
            person_id=person.id,
            filing_id=filing.id,
        )
    assert err.value.code == "offsite.expired"


def test_a_filing_covers_its_area_and_the_divisions_under_it(services: Any, person: Any) -> None:
    _file(services, person_actor(person), person.id, visit_area=SUZHOU)
    with services.uow() as u:
        s = u.session
        assert offsite.covering(s, person_id=person.id, visit_area="320508", day=TODAY).covered
        other = offsite.covering(s, person_id=person.id, visit_area="310101", day=TODAY)
        before = offsite.covering(
            s, person_id=person.id, visit_area=SUZHOU, day=TODAY - dt.timedelta(days=1)
        )
    assert (other.covered, other.reason) == (False, "none")
    assert (before.covered, before.reason) == (False, "future")


def test_staff_file_in_their_area_only_and_a_person_for_themselves_only(
    services: Any, person: Any
) -> None:
    filed = offsite.file(
        services.uow(),
        actor=WUXING,
        channel=Channel.COUNTER,
        person_id=person.id,
        kind="working",
        visit_area=SUZHOU,
        start=TODAY,
    )
    with services.uow() as u:
        row = u.session.get(CrossAreaFiling, filed.id)
        assert row is not None and (row.channel, row.filed_by) == ("counter", "staff:wuxing")
    for actor in (NANXUN, person_actor(add_person(services.uow(), name="别人"))):
        with pytest.raises(DomainError) as err:
            offsite.filings(
                services.uow(), actor=actor, channel=Channel.COUNTER, person_id=person.id
            )
        assert err.value.status == 404
        with pytest.raises(DomainError) as err:
            offsite.cancel(
                services.uow(),
                actor=actor,
                channel=Channel.COUNTER,
                person_id=person.id,
                filing_id=filed.id,
            )
        assert err.value.status == 404
