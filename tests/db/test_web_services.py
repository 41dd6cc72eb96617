"""The services behind the web channels: portal log-in, activation codes and
lockout; terminals and PIN tries. Run on SQLite and PostgreSQL."""

import datetime as dt

import pytest

from tests.helpers import NANXUN, WUXING
from yibao.domain.errors import DomainError
from yibao.services import kiosk, portal
from yibao.services.cards import report_lost
from yibao.services.context import Channel
from yibao.store.models import Person, PortalAccount


def _person(uow, certno):
    from sqlalchemy import select

    return uow.session.execute(select(Person).where(Person.certno == certno)).scalar_one()


def test_login_by_id_number_and_by_account_number(uow, demo):
    p = demo["persons"][0]
    for login_id in (p["certno"], p["account_no"], p["certno"].lower()):
        with uow:
            person, epoch = portal.login(
                uow, login_id=login_id, password=p["password"], channel=Channel.PORTAL
            )
            uow.commit()
            assert person.certno == p["certno"] and epoch == 0


def test_five_wrong_passwords_lock_for_fifteen_minutes(uow, demo, clock):
    p = demo["persons"][1]
    for _ in range(4):
        with uow, pytest.raises(DomainError) as exc:
            portal.login(uow, login_id=p["certno"], password="wrong", channel=Channel.PORTAL)
        assert exc.value.code == "portal.bad_credentials"
    with uow, pytest.raises(DomainError) as exc:
        portal.login(uow, login_id=p["certno"], password="wrong", channel=Channel.PORTAL)
    assert exc.value.code == "portal.locked" and "15" in exc.value.zh
    # even the right password is refused while locked
    with uow, pytest.raises(DomainError) as exc:
        portal.login(uow, login_id=p["certno"], password=p["password"], channel=Channel.PORTAL)
    assert exc.value.code == "portal.locked"
    clock.advance(dt.timedelta(minutes=15, seconds=1))
    with uow:
        portal.login(uow, login_id=p["certno"], password=p["password"], channel=Channel.PORTAL)
        uow.commit()


def test_activation_code_sets_the_first_password_once(uow, demo):
    a = demo["applicants"][0]  # has no portal password yet
    with uow:
        person = _person(uow, a["certno"])
        assert person.portal_password_hash is None
        with pytest.raises(DomainError):  # outside the clerk's area
            portal.issue_activation_code(uow, actor=NANXUN, channel=Channel.COUNTER, person=person)
        code, _ = portal.issue_activation_code(
            uow, actor=WUXING, channel=Channel.COUNTER, person=person
        )
        uow.commit()
    with uow, pytest.raises(DomainError) as exc:
        portal.activate(uow, login_id=a["certno"], code=code, password="short", channel="portal")
    assert exc.value.field == "password"
    with uow:
        portal.activate(
            uow, login_id=a["certno"], code=code, password="Zhaomin@2026", channel="portal"
        )
        uow.commit()
    with uow:
        person, epoch = portal.login(
            uow, login_id=a["account_no"], password="Zhaomin@2026", channel="portal"
        )
        assert epoch == 1
    with uow, pytest.raises(DomainError) as exc:  # the code works once
        portal.activate(
            uow, login_id=a["certno"], code=code, password="Another@2026", channel="portal"
        )
    assert exc.value.code == "portal.bad_activation"


def test_change_password_ends_other_sessions(uow, demo):
    p = demo["persons"][0]
    with uow:
        person = _person(uow, p["certno"])
        with pytest.raises(DomainError):
            portal.change_password(
                uow, person=person, channel="portal", old="nope", new="Newpass@2026"
            )
        epoch = portal.change_password(
            uow, person=person, channel="portal", old=p["password"], new="Newpass@2026"
        )
        uow.commit()
    with uow:
        assert portal.session_person(uow, person_id=person.id, epoch=0) is None
        assert portal.session_person(uow, person_id=person.id, epoch=epoch) is not None
        assert uow.session.get(PortalAccount, person.id).session_epoch == epoch


def test_month_end_balances_from_postings():
    from yibao.clock import CHINA

    at = lambda y, m, d: dt.datetime(y, m, d, 12, tzinfo=CHINA)  # noqa: E731
    lines = [(at(2026, 10, 5), 300), (at(2026, 9, 5), 200), (at(2026, 3, 5), 100)]
    chart = portal.month_end_balances(lines, today=dt.date(2026, 11, 23))
    assert len(chart) == 12 and chart[0][0] == "2025-12" and chart[-1][0] == "2026-11"
    values = dict(chart)
    assert values["2026-02"] == 0 and values["2026-03"] == 100 and values["2026-08"] == 100
    assert values["2026-09"] == 200 and values["2026-11"] == 300


def test_kiosk_three_wrong_pins_block_the_card_on_that_terminal_for_the_day(uow, demo, clock):
    p = demo["persons"][0]
    codes = [t["code"] for t in demo["terminals"]]
    with uow:
        here, there = kiosk.get_terminal(uow, codes[0]), kiosk.get_terminal(uow, codes[1])
        assert here.location
    for n in range(2):
        with uow, pytest.raises(DomainError) as exc:
            kiosk.sign_in(uow, terminal=here, card_no=p["card_no"], pin="000001")
        assert exc.value.code == "kiosk.bad_pin" and str(2 - n) in exc.value.en
    with uow, pytest.raises(DomainError) as exc:
        kiosk.sign_in(uow, terminal=here, card_no=p["card_no"], pin="000001")
    assert exc.value.code == "kiosk.blocked"
    with uow, pytest.raises(DomainError) as exc:  # the right PIN too, here, today
        kiosk.read_card(uow, terminal=here, card_no=p["card_no"])
    assert exc.value.code == "kiosk.blocked"
    with uow:  # another terminal still takes it
        assert kiosk.sign_in(uow, terminal=there, card_no=p["card_no"], pin=p["pin"]).certno
        uow.commit()
    clock.advance(dt.timedelta(days=1))
    with uow:
        person = kiosk.sign_in(uow, terminal=here, card_no=p["card_no"], pin=p["pin"])
        kiosk.inquire(uow, terminal=here, person=person, action="kiosk.balance")
        uow.commit()
    from sqlalchemy import select

    from yibao.store.models import AuditEntry

    with uow:
        rows = uow.session.execute(
            select(AuditEntry).where(AuditEntry.action.like("kiosk.%"))
        ).scalars()
        actions = {(r.actor_kind, r.actor_id, r.action) for r in rows}
    assert ("terminal", codes[0], "kiosk.pin_failed") in actions
    assert ("terminal", codes[0], "kiosk.balance") in actions


def test_register_terminal_in_scope_only(uow, demo):
    from tests.helpers import CITY

    with uow:
        with pytest.raises(DomainError):
            kiosk.register_terminal(
                uow, actor=WUXING, channel="cli", code="T-X", location="x", division_code="330502"
            )
        t = kiosk.register_terminal(
            uow, actor=CITY, channel="cli", code="T-X-1", location="大厅", division_code="330502"
        )
        uow.commit()
        assert t.code in [x.code for x in kiosk.list_terminals(uow)]


def test_person_reports_own_card_lost(uow, demo):
    p = demo["persons"][0]
    with uow:
        person = _person(uow, p["certno"])
        card = report_lost(
            uow,
            actor=portal.person_actor(person),
            channel=Channel.PORTAL,
            card_no=p["card_no"],
        )
        uow.commit()
        assert card.status == "lost"
