"""Portal and terminal sessions kept on the server (services/access/web_sessions),
on SQLite and PostgreSQL: opened at log-in, found by the digest of the
cookie's id, moved on by use, ended at log-out, at a password change, when
idle, and with the terminal's machine."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from sqlalchemy import inspect, select

from yibao.domain.actors import Channel
from yibao.domain.errors import DomainError
from yibao.services.access import person_login as portal
from yibao.services.access import terminals as kiosk
from yibao.services.access import web_sessions
from yibao.store import migrate
from yibao.store.db import make_engine
from yibao.store.models import Person
from yibao.store.models.access import WebSession


def _login(services, p):
    done = portal.login(
        services.uow(), login_id=p["certno"], password=p["password"], channel=Channel.PORTAL
    )
    return done.opened


def _rows(services):
    with services.uow() as uow:
        return list(uow.session.execute(select(WebSession).order_by(WebSession.id)).scalars())


def test_a_session_is_kept_as_the_digest_of_its_id(services, demo):
    p = demo["persons"][0]
    opened = _login(services, p)
    (row,) = _rows(services)
    assert row.token_hash != opened.token and len(row.token_hash) == 64
    assert row.csrf == opened.csrf and row.channel == "portal" and row.revoked_at is None
    assert row.idle_seconds == 30 * 60 and row.expires_at == opened.expires_at
    live = portal.session_of(services.uow(), token=opened.token)
    assert live is not None and live.person.account_no == p["account_no"]
    for wrong in (row.token_hash, opened.token[:-1], opened.token + "A", "", None):
        assert portal.session_of(services.uow(), token=wrong) is None


def test_use_moves_the_idle_time_on_at_most_once_a_twentieth_of_it(services, demo, clock):
    p = demo["persons"][0]
    opened = _login(services, p)
    clock.advance(dt.timedelta(seconds=60))  # less than 30 min / 20: nothing written
    assert portal.session_of(services.uow(), token=opened.token) is not None
    assert _rows(services)[0].expires_at == opened.expires_at
    clock.advance(dt.timedelta(seconds=31))
    assert portal.session_of(services.uow(), token=opened.token) is not None
    (row,) = _rows(services)
    assert row.last_seen_at == clock.now() and row.expires_at == clock.now() + portal.SESSION_IDLE
    clock.advance(portal.SESSION_IDLE)  # exactly the idle time: still live
    assert portal.session_of(services.uow(), token=opened.token) is not None
    clock.advance(portal.SESSION_IDLE + dt.timedelta(seconds=1))
    assert portal.session_of(services.uow(), token=opened.token) is None


def test_log_out_ends_that_session_only_and_a_new_log_in_ends_the_one_it_replaces(services, demo):
    p = demo["persons"][0]
    first, second = _login(services, p), _login(services, p)
    portal.log_out(services.uow(), token=first.token, channel=Channel.PORTAL)
    portal.log_out(services.uow(), token=first.token, channel=Channel.PORTAL)  # twice: no harm
    assert portal.session_of(services.uow(), token=first.token) is None
    assert portal.session_of(services.uow(), token=second.token) is not None
    third = portal.login(
        services.uow(),
        login_id=p["certno"],
        password=p["password"],
        channel=Channel.PORTAL,
        replacing=second.token,
    ).opened
    assert portal.session_of(services.uow(), token=second.token) is None
    assert portal.session_of(services.uow(), token=third.token) is not None


def test_a_password_change_ends_the_persons_sessions_and_no_one_elses(services, demo):
    p, q = demo["persons"][0], demo["persons"][1]
    mine, theirs = _login(services, p), _login(services, q)
    with services.uow() as uow:
        person_id = uow.session.execute(
            select(Person.id).where(Person.certno == p["certno"])
        ).scalar_one()
    opened = portal.change_password(
        services.uow(),
        person_id=person_id,
        channel="portal",
        old=p["password"],
        new="Newpass@2026",
        new2="Newpass@2026",
    )
    assert portal.session_of(services.uow(), token=mine.token) is None
    assert portal.session_of(services.uow(), token=opened.token) is not None
    assert portal.session_of(services.uow(), token=theirs.token) is not None


def test_the_current_password_counts_towards_the_lock_of_the_log_in(services, demo, clock):
    p = demo["persons"][0]
    _login(services, p)
    with services.uow() as uow:
        person_id = uow.session.execute(
            select(Person.id).where(Person.certno == p["certno"])
        ).scalar_one()

    def refused(act, **kw):
        with pytest.raises(DomainError) as exc:
            act(services.uow(), person_id=person_id, channel="portal", **kw)
        return exc.value

    change = portal.change_password
    for _ in range(2):
        assert refused(change, old="wrong", new="a", new2="a").field == "old_password"
    for _ in range(2):
        bad = refused(portal.set_phone_pin, password="wrong", pin="570913", pin2="570913")
        assert bad.field == "phone_password"
    locked = refused(change, old="wrong", new="a", new2="a")
    assert locked.code == "portal.locked" and locked.status == 429
    assert refused(change, old=p["password"], new="a", new2="a").code == "portal.locked"
    with pytest.raises(DomainError) as exc:
        _login(services, p)
    assert exc.value.code == "portal.locked"
    clock.advance(dt.timedelta(minutes=15, seconds=1))
    assert _login(services, p).token


def test_a_terminal_session_is_bound_to_its_terminal_and_card(services, demo, settings, clock):
    p = demo["persons"][0]
    here, there = (t["code"] for t in demo["terminals"][:2])
    done = kiosk.sign_in(services.uow(), terminal_code=here, card_no=p["card_no"], pin=p["pin"])
    token = done.opened.token
    live = kiosk.session_of(services.uow(), token=token, terminal_code=here)
    assert live is not None and live.card_no == p["card_no"] and live.person_id == done.person_id
    assert kiosk.session_of(services.uow(), token=token, terminal_code=there) is None
    # a portal session's id is no terminal session, and the reverse
    assert portal.session_of(services.uow(), token=token) is None
    clock.advance(dt.timedelta(seconds=settings.kiosk_idle_seconds + 1))
    assert kiosk.session_of(services.uow(), token=token, terminal_code=here) is None


def test_signing_out_and_a_revoked_machine_end_terminal_sessions(services, demo):
    from tests.helpers import CITY

    p = demo["persons"][0]
    here = demo["terminals"][0]["code"]

    def sign_in():
        return kiosk.sign_in(
            services.uow(), terminal_code=here, card_no=p["card_no"], pin=p["pin"]
        ).opened.token

    first = sign_in()
    kiosk.sign_out(services.uow(), token=first)
    assert kiosk.session_of(services.uow(), token=first, terminal_code=here) is None
    second = sign_in()
    kiosk.deactivate_terminal(services.uow(), actor=CITY, channel="cli", code=here)
    assert [r.revoked_at is not None for r in _rows(services)] == [True, True]
    assert len(second) == web_sessions.TOKEN_LENGTH


def test_the_web_sessions_migration_goes_down_and_up_again(db_url, demo):
    def tables():
        engine = make_engine(db_url)
        try:
            return set(inspect(engine).get_table_names())
        finally:
            engine.dispose()

    assert "web_sessions" in tables()
    cfg = migrate.alembic_config(db_url)
    command.downgrade(cfg, "0013")
    assert "web_sessions" not in tables()
    command.upgrade(cfg, "head")
    assert "web_sessions" in tables()
