"""An employer's log-in to its own channel (issue 15): the demo's passwords,
activation codes issued at the county center, the lock after wrong
passwords, sessions kept on the server. SQLite and PostgreSQL."""

import datetime as dt

import pytest
from sqlalchemy import select

from tests.helpers import CITY, NANXUN, WUXING, YUEHE
from yibao.domain.actors import Channel
from yibao.domain.errors import DomainError
from yibao.services.access import employer_login
from yibao.store.models import AuditEntry

E = Channel.EMPLOYER


def _login(services, uscc, password):
    return employer_login.login(services.uow(), uscc=uscc, password=password, channel=E)


def _refused(call, *args, **kw):
    with pytest.raises(DomainError) as exc:
        call(*args, **kw)
    return exc.value


def test_a_demo_employer_signs_in_with_its_credit_code_and_password(services, demo):
    e = demo["employers"][0]
    done = _login(services, e["uscc"].lower(), e["password"])
    assert done.employer.uscc == e["uscc"] and done.employer.name == e["name"]
    live = employer_login.session_of(services.uow(), token=done.opened.token)
    assert live is not None and live.employer.uscc == e["uscc"]
    assert live.csrf == done.opened.csrf
    # one employer's password opens no other
    other = demo["employers"][1]
    assert _refused(_login, services, other["uscc"], e["password"]).code == (
        "employer.bad_credentials"
    )
    employer_login.log_out(services.uow(), token=done.opened.token, channel=E)
    assert employer_login.session_of(services.uow(), token=done.opened.token) is None


def test_five_wrong_passwords_lock_for_fifteen_minutes(services, demo, clock):
    e = demo["employers"][1]
    for _ in range(4):
        assert _refused(_login, services, e["uscc"], "Wrong@2026").code == (
            "employer.bad_credentials"
        )
    locked = _refused(_login, services, e["uscc"], "Wrong@2026")
    assert locked.code == "employer.locked" and locked.status == 429 and "15" in locked.zh
    assert _refused(_login, services, e["uscc"], e["password"]).code == "employer.locked"
    clock.advance(dt.timedelta(minutes=15, seconds=1))
    assert _login(services, e["uscc"], e["password"]).employer.uscc == e["uscc"]
    with services.uow() as uow:
        failed = uow.session.execute(
            select(AuditEntry).where(AuditEntry.action == "employer.login_failed")
        ).scalars()
        assert {(a.actor_kind, a.actor_id) for a in failed} == {("employer", e["uscc"])}


def test_the_county_center_issues_an_activation_code_that_sets_a_password_once(services, demo):
    e = demo["employers"][0]
    issued = employer_login.issue_activation_code(
        services.uow(), actor=WUXING, channel=Channel.COUNTER, uscc=e["uscc"]
    )
    assert len(issued.code) == 10 and issued.employer.uscc == e["uscc"]
    old = _login(services, e["uscc"], e["password"])  # the old password works until then
    employer_login.activate(
        services.uow(),
        uscc=e["uscc"],
        code=issued.code.lower(),
        password="NewPass@2026",
        password2="NewPass@2026",
        channel=E,
    )
    # the sessions of before end; the new password opens, the old does not
    assert employer_login.session_of(services.uow(), token=old.opened.token) is None
    assert _refused(_login, services, e["uscc"], e["password"]).code == "employer.bad_credentials"
    assert _login(services, e["uscc"], "NewPass@2026").employer.uscc == e["uscc"]
    again = _refused(
        employer_login.activate,
        services.uow(),
        uscc=e["uscc"],
        code=issued.code,
        password="Other@20266",
        password2="Other@20266",
        channel=E,
    )
    assert again.code == "employer.bad_activation"


def test_an_employer_with_no_password_yet_activates_and_wrong_codes_count(services, demo):
    e = demo["employers"][2]  # a city-level school: outside every county clerk's area
    refused = _refused(
        employer_login.issue_activation_code,
        services.uow(),
        actor=WUXING,
        channel=Channel.COUNTER,
        uscc=e["uscc"],
    )
    assert refused.code == "employer.not_found"  # outside Wuxing's area: not found
    assert (
        _refused(
            employer_login.issue_activation_code,
            services.uow(),
            actor=CITY,
            channel=Channel.COUNTER,
            uscc=e["uscc"],
        ).status
        == 403
    )  # an administrator issues no codes
    e = demo["employers"][1]
    assert (
        _refused(
            employer_login.issue_activation_code,
            services.uow(),
            actor=YUEHE,
            channel=Channel.COUNTER,
            uscc=e["uscc"],
        ).status
        == 403
    )  # a service point issues none either
    issued = employer_login.issue_activation_code(
        services.uow(), actor=NANXUN, channel=Channel.COUNTER, uscc=e["uscc"]
    )

    def activate(code, password="Fresh@2026", password2="Fresh@2026"):
        return employer_login.activate(
            services.uow(),
            uscc=e["uscc"],
            code=code,
            password=password,
            password2=password2,
            channel=E,
        )

    assert _refused(activate, issued.code, password2="Other@2026").field == "password2"
    assert _refused(activate, issued.code, "abcdefgh", "abcdefgh").field == "password"
    for _ in range(4):
        assert _refused(activate, "WRONGCODE0").code == "employer.bad_activation"
    assert _refused(activate, "WRONGCODE0").code == "employer.locked"
    assert _refused(activate, issued.code).code == "employer.locked"


def test_a_password_change_ends_every_other_session(services, demo):
    e = demo["employers"][0]
    first = _login(services, e["uscc"], e["password"])
    second = _login(services, e["uscc"], e["password"])
    wrong = _refused(
        employer_login.change_password,
        services.uow(),
        employer_id=first.employer.id,
        channel=E,
        old="Wrong@2026",
        new="Changed@2026",
        new2="Changed@2026",
    )
    assert wrong.field == "old_password"
    opened = employer_login.change_password(
        services.uow(),
        employer_id=first.employer.id,
        channel=E,
        old=e["password"],
        new="Changed@2026",
        new2="Changed@2026",
    )
    for ended in (first, second):
        assert employer_login.session_of(services.uow(), token=ended.opened.token) is None
    assert employer_login.session_of(services.uow(), token=opened.token) is not None
    assert _login(services, e["uscc"], "Changed@2026").employer.uscc == e["uscc"]


def test_a_person_session_cookie_opens_no_employer_session(services, demo):
    from yibao.services.access import person_login

    p = demo["persons"][0]
    done = person_login.login(
        services.uow(), login_id=p["certno"], password=p["password"], channel=Channel.PORTAL
    )
    assert employer_login.session_of(services.uow(), token=done.opened.token) is None
    e = demo["employers"][0]
    mine = _login(services, e["uscc"], e["password"])
    assert person_login.session_of(services.uow(), token=mine.opened.token) is None
