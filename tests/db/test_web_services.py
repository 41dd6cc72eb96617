"""The services behind the web channels: portal log-in, activation codes and
lockout; terminals, their activation and PIN tries. Run on SQLite and
PostgreSQL."""

import datetime as dt

import pytest

from tests.helpers import NANXUN, WUXING
from yibao.domain.access import Role
from yibao.domain.actors import Actor, Channel
from yibao.domain.errors import DomainError
from yibao.services.access import person_login as portal
from yibao.services.access import terminals as kiosk
from yibao.services.cards.cards import report_lost
from yibao.store.models import Person


def _person(uow, certno):
    from sqlalchemy import select

    return uow.session.execute(select(Person).where(Person.certno == certno)).scalar_one()


def test_login_by_id_number_and_by_account_number(services, demo):
    p = demo["persons"][0]
    for login_id in (p["certno"], p["account_no"], p["certno"].lower()):
        done = portal.login(
            services.uow(), login_id=login_id, password=p["password"], channel=Channel.PORTAL
        )
        assert done.person.account_no == p["account_no"]
        live = portal.session_of(services.uow(), token=done.opened.token)
        assert live is not None and live.person.account_no == p["account_no"]
        assert live.csrf == done.opened.csrf


def test_five_wrong_passwords_lock_for_fifteen_minutes(services, demo, clock):
    p = demo["persons"][1]

    def login(password):
        with pytest.raises(DomainError) as exc:
            portal.login(
                services.uow(), login_id=p["certno"], password=password, channel=Channel.PORTAL
            )
        return exc.value

    for _ in range(4):
        assert login("wrong").code == "portal.bad_credentials"
    locked = login("wrong")
    assert locked.code == "portal.locked" and "15" in locked.zh
    # even the right password is refused while locked
    assert login(p["password"]).code == "portal.locked"
    clock.advance(dt.timedelta(minutes=15, seconds=1))
    portal.login(
        services.uow(), login_id=p["certno"], password=p["password"], channel=Channel.PORTAL
    )


def test_activation_code_sets_the_first_password_once(services, demo):
    a = demo["applicants"][0]  # has no portal password yet
    with services.uow() as uow:
        person = _person(uow, a["certno"])
        assert person.portal_password_hash is None
    with pytest.raises(DomainError):  # outside the clerk's area
        portal.issue_activation_code(
            services.uow(), actor=NANXUN, channel=Channel.COUNTER, person_id=person.id
        )
    code, _ = portal.issue_activation_code(
        services.uow(), actor=WUXING, channel=Channel.COUNTER, person_id=person.id
    )

    def activate(password, again=None, code=code):
        return portal.activate(
            services.uow(),
            login_id=a["certno"],
            code=code,
            password=password,
            password2=again or password,
            channel="portal",
        )

    with pytest.raises(DomainError) as exc:
        activate("short")
    assert exc.value.field == "password"
    with pytest.raises(DomainError) as exc:  # typed twice, the same both times
        activate("Zhaomin@2026", "Zhaomin@2025")
    assert exc.value.field == "password2" and exc.value.code == "validation.mismatch"
    assert activate("Zhaomin@2026").account_no == a["account_no"]
    done = portal.login(
        services.uow(), login_id=a["account_no"], password="Zhaomin@2026", channel="portal"
    )
    assert done.person.account_no == a["account_no"]
    with pytest.raises(DomainError) as exc:  # the code works once
        activate("Another@2026")
    assert exc.value.code == "portal.bad_activation"


def test_change_password_ends_every_session_of_the_person(services, demo):
    p = demo["persons"][0]

    def login():
        done = portal.login(
            services.uow(), login_id=p["certno"], password=p["password"], channel="portal"
        )
        return done.opened.token

    here, there = login(), login()
    person_id = portal.session_of(services.uow(), token=here).person.id

    def change(old, new, new2=None):
        return portal.change_password(
            services.uow(),
            person_id=person_id,
            channel="portal",
            old=old,
            new=new,
            new2=new2 or new,
        )

    with pytest.raises(DomainError) as exc:
        change("nope", "Newpass@2026")
    assert exc.value.field == "old_password"
    with pytest.raises(DomainError) as exc:
        change(p["password"], "Newpass@2026", "Newpass@2027")
    assert exc.value.field == "new_password2"
    assert portal.session_of(services.uow(), token=here) is not None  # refused: nothing ended
    opened = change(p["password"], "Newpass@2026")
    assert portal.session_of(services.uow(), token=here) is None
    assert portal.session_of(services.uow(), token=there) is None
    me = portal.session_of(services.uow(), token=opened.token)
    assert me is not None and me.person.account_no == p["account_no"]
    assert opened.token not in (here, there)


def test_month_end_balances_from_postings():
    from yibao.clock import CHINA
    from yibao.services.inquiry.summary import month_end_balances

    at = lambda y, m, d: dt.datetime(y, m, d, 12, tzinfo=CHINA)  # noqa: E731
    lines = [(at(2026, 10, 5), 300), (at(2026, 9, 5), 200), (at(2026, 3, 5), 100)]
    chart = month_end_balances(lines, today=dt.date(2026, 11, 23))
    assert len(chart) == 12 and chart[0][0] == "2025-12" and chart[-1][0] == "2026-11"
    values = dict(chart)
    assert values["2026-02"] == 0 and values["2026-03"] == 100 and values["2026-08"] == 100
    assert values["2026-09"] == 200 and values["2026-11"] == 300
    # what was there before the first posting read counts, not zero
    opened = dict(month_end_balances(lines[:1], today=dt.date(2026, 11, 23), opening=250))
    assert opened["2025-12"] == 250 and opened["2026-09"] == 250 and opened["2026-10"] == 300


def test_kiosk_three_wrong_pins_block_the_card_on_that_terminal_for_the_day(services, demo, clock):
    from yibao.domain.use import Presenter
    from yibao.services.inquiry.summary import account_summary

    p = demo["persons"][0]
    here, there = (t["code"] for t in demo["terminals"][:2])

    def sign_in(terminal, pin):
        return kiosk.sign_in(services.uow(), terminal_code=terminal, card_no=p["card_no"], pin=pin)

    def refused(act, *args):
        with pytest.raises(DomainError) as exc:
            act(*args)
        return exc.value

    for n in range(2):
        wrong = refused(sign_in, here, "000001")
        assert wrong.code == "kiosk.bad_pin" and str(2 - n) in wrong.en
    assert refused(sign_in, here, "000001").code == "kiosk.blocked"
    assert refused(sign_in, here, p["pin"]).code == "kiosk.blocked"  # the right PIN too, today
    read = refused(
        lambda: kiosk.read_card(services.uow(), terminal_code=here, card_no=p["card_no"])
    )
    assert read.code == "kiosk.blocked"
    person_id = sign_in(there, p["pin"]).person_id  # another terminal still takes it
    clock.advance(dt.timedelta(days=1))
    assert sign_in(here, p["pin"]).person_id == person_id
    with services.uow() as uow:
        actor = kiosk.terminal_actor(kiosk.get_terminal(uow, here))
    account_summary(
        services.uow(),
        actor=actor,
        channel=Channel.KIOSK,
        presenter=Presenter.HOLDER,
        card_no=p["card_no"],
    )
    from sqlalchemy import select

    from yibao.store.models import AuditEntry

    with services.uow() as uow:
        rows = uow.session.execute(select(AuditEntry)).scalars()
        actions = {(r.actor_kind, r.actor_id, r.channel, r.action) for r in rows}
    assert ("terminal", here, "kiosk", "kiosk.pin_failed") in actions
    assert ("terminal", here, "kiosk", "balance.read") in actions


def test_register_terminal_in_scope_only(services, demo):
    from tests.helpers import CITY

    def register(actor, code, division):
        return kiosk.register_terminal(
            services.uow(),
            actor=actor,
            channel="cli",
            code=code,
            location="大厅",
            division_code=division,
        )

    with pytest.raises(DomainError) as exc:  # a clerk does not manage terminals
        register(WUXING, "T-X", "330502")
    assert exc.value.code == "access.forbidden"
    with pytest.raises(DomainError) as exc:  # outside the administrator's area
        register(WUXING_ADMIN, "T-X", "330503")
    assert exc.value.field == "division_code"
    issued = register(CITY, "t-x-1", "330502")
    assert issued.terminal.code == "T-X-1"
    assert len(issued.activation_code) == kiosk.CODE_LENGTH
    assert issued.terminal.activation_hash not in (None, issued.activation_code)
    assert issued.activation_code not in issued.terminal.activation_hash
    assert "T-X-1" in [x.code for x in kiosk.list_terminals(services.uow(), actor=CITY)]


# ---------------------------------------------------------------- terminal activation

WUXING_ADMIN = Actor.staff(username="wuxing_admin", division="330502", role=Role.COUNTY_ADMIN)
HERE = "T-HZZX-01"  # in Wuxing (330502)
THERE = "T-NXRM-01"  # in Nanxun (330503)


# ``uow`` here is a fresh unit of work for each call: these are use cases.


def _issue(uow, code=HERE, actor=WUXING_ADMIN):
    issued = kiosk.issue_code(uow, actor=actor, channel=Channel.COUNTER, code=code)
    return issued.activation_code


def _activate(uow, code, terminal=HERE):
    _, token = kiosk.activate(
        uow, terminal_code=terminal, activation_code=code, channel=Channel.KIOSK, source="t"
    )
    return token


def _refused(uow, code, terminal=HERE):
    with pytest.raises(DomainError) as exc:
        kiosk.activate(uow, terminal_code=terminal, activation_code=code, channel=Channel.KIOSK)
    return exc.value


def _bound(uow, token):
    term = kiosk.terminal_of_device(uow, token)
    return term.code if term else None


def _audit(uow, prefix="kiosk."):
    from sqlalchemy import select

    from yibao.store.models import AuditEntry

    with uow:
        rows = uow.session.execute(
            select(AuditEntry).where(AuditEntry.action.like(f"{prefix}%")).order_by(AuditEntry.id)
        ).scalars()
        return [(r.actor_kind, r.actor_id, r.action, r.subject, r.detail) for r in rows]


def test_activation_binds_the_machine_and_the_code_works_once(uow, demo):
    code = _issue(uow)
    token = _activate(uow, f" {code[:4].lower()}-{code[4:]} ")  # as a reader types it
    assert len(token) >= 43 and _bound(uow, token) == HERE
    with uow:
        t = kiosk.get_terminal(uow, HERE)
        assert t.activation_hash is None and t.activated_at is not None
        assert t.device_hash is not None and token not in t.device_hash
    again = _refused(uow, code)
    assert again.code == "kiosk.bad_activation" and again.field == "activation_code"
    assert _bound(uow, token) == HERE  # a refused try does not unbind the machine
    assert _bound(uow, "forged-token") is None and _bound(uow, "") is None
    actions = [(kind, who, action) for kind, who, action, _, _ in _audit(uow)]
    assert ("staff", "wuxing_admin", "kiosk.issue_code") in actions
    assert ("terminal", HERE, "kiosk.activate") in actions
    assert ("terminal", HERE, "kiosk.activation_refused") in actions


def test_a_code_is_for_its_own_terminal_only(uow, demo):
    from tests.helpers import CITY

    code = _issue(uow, HERE, CITY)
    _issue(uow, THERE, CITY)
    assert _refused(uow, code, THERE).code == "kiosk.bad_activation"
    assert _refused(uow, code, "T-NOWHERE").code == "kiosk.bad_activation"
    assert _refused(uow, "", HERE).field == "activation_code"
    assert _refused(uow, code, " ").field == "terminal"
    assert _bound(uow, _activate(uow, code, HERE)) == HERE


def test_five_wrong_codes_void_the_pending_code(uow, demo):
    code = _issue(uow)
    for n in range(1, kiosk.MAX_ACTIVATION_FAILURES):
        assert _refused(uow, "WRONG" + str(n)).code == "kiosk.bad_activation"
        with uow:
            assert kiosk.get_terminal(uow, HERE).activation_failures == n
    fifth = _refused(uow, "WRONG5")
    assert fifth.code == "kiosk.activation_void" and fifth.status == 429
    assert "5" in fifth.zh and "staff" in fifth.en
    assert _refused(uow, code).code == "kiosk.activation_void"  # even the right one now
    with uow:
        t = kiosk.get_terminal(uow, HERE)
        assert t.activation_hash is None
        assert kiosk.terminal_state(t, uow.clock.now()) == "void"
    refused = [d for _, _, action, _, d in _audit(uow) if action == "kiosk.activation_refused"]
    assert [d["failures"] for d in refused] == [1, 2, 3, 4, 5, 6]
    assert [d["reason"] for d in refused][-2:] == ["voided", "voided"]
    # staff issue a new one: the count starts again
    assert _bound(uow, _activate(uow, _issue(uow))) == HERE


def test_an_expired_code_is_refused(uow, demo, clock, settings):
    code = _issue(uow)
    clock.advance(dt.timedelta(hours=settings.kiosk_activation_hours, seconds=1))
    assert _refused(uow, code).code == "kiosk.bad_activation"
    with uow:
        t = kiosk.get_terminal(uow, HERE)
        assert kiosk.terminal_state(t, uow.clock.now()) == "expired"
    reasons = [d["reason"] for _, _, a, _, d in _audit(uow) if a == "kiosk.activation_refused"]
    assert reasons == ["expired"]


def test_the_activation_hours_are_a_setting(uow, demo, clock, settings):
    settings.kiosk_activation_hours = 2
    issued = kiosk.issue_code(uow, actor=WUXING_ADMIN, channel="cli", code=HERE)
    assert issued.expires_at == clock.now() + dt.timedelta(hours=2)


def test_a_new_code_revokes_the_machine_and_any_earlier_code(uow, demo):
    first = _issue(uow)
    token = _activate(uow, first)
    pending = _issue(uow)
    assert _bound(uow, token) is None  # at once, before the new code is used
    newest = _issue(uow)
    assert _refused(uow, pending).code == "kiosk.bad_activation"
    other = _activate(uow, newest)
    assert _bound(uow, other) == HERE and _bound(uow, token) is None
    issued = [d for _, _, a, _, d in _audit(uow) if a == "kiosk.issue_code"]
    assert [d["device_revoked"] for d in issued][-3:] == [False, True, False]


def test_deactivation_revokes_the_machine_and_the_pending_code(uow, demo):
    from tests.helpers import CITY

    token = _activate(uow, _issue(uow))
    pending = _issue(uow, THERE, CITY)
    kiosk.deactivate_terminal(uow, actor=WUXING_ADMIN, channel=Channel.COUNTER, code=HERE)
    kiosk.deactivate_terminal(uow, actor=CITY, channel=Channel.COUNTER, code=THERE)
    assert _bound(uow, token) is None
    assert _refused(uow, pending, THERE).code == "kiosk.bad_activation"
    with pytest.raises(DomainError) as exc:  # no new code for a deactivated terminal
        kiosk.issue_code(uow, actor=WUXING_ADMIN, channel="cli", code=HERE)
    assert exc.value.code == "kiosk.terminal_inactive"
    issued = kiosk.register_terminal(  # registered again, it needs a new activation
        uow,
        actor=WUXING_ADMIN,
        channel="cli",
        code=HERE,
        location="新大厅",
        division_code="330502001",
    )
    assert _bound(uow, token) is None
    assert _bound(uow, _activate(uow, issued.activation_code)) == HERE
    done = [(who, d) for _, who, a, s, d in _audit(uow) if a == "kiosk.deactivate"]
    assert done == [
        ("wuxing_admin", {"device_revoked": True}),
        ("admin", {"device_revoked": False}),
    ]


def test_staff_manage_only_the_terminals_of_their_area(uow, demo):
    from tests.helpers import CITY

    nanxun_admin = Actor.staff(username="nx", division="330503", role=Role.COUNTY_ADMIN)
    assert [t.code for t in kiosk.list_terminals(uow, actor=WUXING_ADMIN)] == [HERE]
    assert [t.code for t in kiosk.list_terminals(uow, actor=nanxun_admin)] == [THERE]
    assert [t.code for t in kiosk.list_terminals(uow, actor=CITY)] == [HERE, THERE]
    for act in (kiosk.issue_code, kiosk.deactivate_terminal):
        with pytest.raises(DomainError) as exc:
            act(uow, actor=WUXING_ADMIN, channel="cli", code=THERE)
        assert exc.value.status == 404
        with pytest.raises(DomainError) as exc:
            act(uow, actor=WUXING, channel="cli", code=HERE)
        assert exc.value.code == "access.forbidden"
    with pytest.raises(DomainError) as exc:
        kiosk.list_terminals(uow, actor=WUXING)
    assert exc.value.code == "access.forbidden"
    # a registered code is not taken over from another area, nor twice in one
    for actor in (nanxun_admin, WUXING_ADMIN):
        with pytest.raises(DomainError) as exc:
            kiosk.register_terminal(
                uow,
                actor=actor,
                channel="cli",
                code=HERE,
                location="x",
                division_code=actor.division,
            )
        assert exc.value.code == "kiosk.terminal_exists"
    with uow:
        assert kiosk.get_terminal(uow, HERE).division_code == "330502"


def test_person_reports_own_card_lost(uow, demo):
    p = demo["persons"][0]
    # TODO(merge): report_lost is a use case taking the person on the staff branch
    with uow:
        person = _person(uow, p["certno"])
        card = report_lost.step(
            uow,
            actor=portal.person_actor(person),
            channel=Channel.PORTAL,
            person_id=person.id,
            card_no=p["card_no"],
        )
        uow.commit()
        assert card.status == "lost"


@pytest.mark.postgresql_only
def test_two_registrations_of_one_new_code_at_once_give_one_terminal_and_a_clear_refusal(
    services, demo
):
    import threading

    from tests.helpers import CITY, wait_for_lock_waiters

    def register(work):
        # the step, inside a transaction the test holds open across the race
        return kiosk.register_terminal.step(
            work, actor=CITY, channel="cli", code="T-RACE", location="大厅", division_code="330502"
        )

    first = services.uow()
    outcome: list[object] = []

    def second() -> None:
        with services.uow() as work:
            try:
                register(work)  # waits on the first one's uncommitted row
                work.commit()
                outcome.append("registered")
            except DomainError as exc:
                outcome.append(exc)

    with first:
        register(first)  # inserted, not yet committed
        thread = threading.Thread(target=second)
        thread.start()
        # the second waits on the unique key (seen in pg_stat_activity, not by
        # a timed join: no wait here may depend on the wall clock)
        assert wait_for_lock_waiters(services, 1)
        first.commit()
    thread.join()  # lock_timeout bounds the wait should the commit not come
    assert len(outcome) == 1 and isinstance(outcome[0], DomainError)
    assert outcome[0].code == "kiosk.terminal_exists" and outcome[0].field == "code"
