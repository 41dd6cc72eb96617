"""``yibao prune``: what is old goes, what can still matter stays."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from tests.helpers import CliRunner
from yibao.cli import app as cli_app
from yibao.clock import CHINA
from yibao.domain.actors import Channel
from yibao.services.access import housekeeping
from yibao.services.access import institution_auth as gateway
from yibao.services.access import staff as access_service
from yibao.services.inquiry import dialog as ivr
from yibao.store import auditlog
from yibao.store.models import (
    AuditEntry,
    HisNonce,
    IvrCall,
    KioskPinTry,
    KioskTerminal,
    StaffCredential,
)


def _count(services, model) -> int:
    with services.uow() as work:
        return work.session.scalar(select(func.count()).select_from(model)) or 0


def _nonce(services, nonce: str) -> None:
    with services.uow() as work:
        gateway.claim_nonce(work, access_id="H33050200001", nonce=nonce)
        work.commit()


def _token(services, days: int) -> str:
    token, _ = access_service.issue_api_token(
        services.uow(), username="admin", channel=Channel.CLI, label="t", days=days
    )
    return token


def _pin_try(services, day: dt.date, card_no: str) -> None:
    with services.uow() as work:
        terminal = work.session.scalars(select(KioskTerminal)).first()
        assert terminal is not None
        work.session.add(
            KioskPinTry(terminal_code=terminal.code, card_no=card_no, day=day, failures=1)
        )
        work.commit()


def _prune(services, **kw):
    return housekeeping.prune(services.uow, ivr_call_days=30, staff_credential_days=90, **kw)


def test_prune_deletes_only_what_can_no_longer_matter(services, clock, demo):
    start = clock.now()
    # two hours ago: nonces, a telephone call, a PIN try, a one-day token
    for n in ("a1", "a2", "a3"):
        _nonce(services, n)
    ivr.start_call(services.uow(), call_id="CA-old", platform="sim")
    _pin_try(services, start.astimezone(CHINA).date() - dt.timedelta(days=1), "C-old")
    _token(services, days=1)
    clock.advance(dt.timedelta(days=40))
    # now: a fresh nonce, a fresh call, today's PIN try, a live token
    _nonce(services, "b1")
    ivr.start_call(services.uow(), call_id="CA-new", platform="sim")
    _pin_try(services, clock.now().astimezone(CHINA).date(), "C-new")
    live = _token(services, days=366)
    clock.advance(dt.timedelta(days=60))  # the one-day token expired 99 days ago
    _nonce(services, "c1")
    ivr.start_call(services.uow(), call_id="CA-newest", platform="sim")
    clock.advance(dt.timedelta(minutes=5))

    before = {m: _count(services, m) for m in (HisNonce, IvrCall, KioskPinTry, StaffCredential)}
    counted = _prune(services, dry_run=True)
    assert {m: _count(services, m) for m in before} == before  # a dry run deletes nothing
    done = _prune(services, batch=2)  # batches smaller than the rows
    assert done == counted
    assert done.his_nonces == 4  # a1-a3 and b1; c1 is five minutes old
    assert done.ivr_calls == 2  # CA-old (100 days) and CA-new (60 days)
    assert done.kiosk_pin_tries == 2  # both are of earlier days
    assert done.staff_credentials >= 1

    assert _count(services, KioskPinTry) == 0
    with services.uow() as work:
        assert list(work.session.scalars(select(HisNonce.nonce))) == ["c1"]
        assert list(work.session.scalars(select(IvrCall.call_id))) == ["CA-newest"]
        # the live token still works; the expired one is gone
        user, _ = access_service.authenticate(work, token=live)
        assert user.username == "admin"
        entry = work.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "housekeeping.prune")
        ).one()
        assert entry.detail["his_nonces"] == 4 and entry.actor_kind == "system"
        assert auditlog.verify(work.session).ok

    # a replayed nonce is still refused while it could matter
    with pytest.raises(Exception, match="nonce"):
        _nonce(services, "c1")
    assert _prune(services) == housekeeping.Pruned()  # nothing old is left


def test_prune_refuses_a_retention_under_a_day(services):
    with pytest.raises(ValueError, match="at least one day"):
        housekeeping.prune(services.uow, ivr_call_days=0, staff_credential_days=90)


def test_the_prune_command(env, demo):
    runner = CliRunner()
    result = runner.invoke(cli_app, ["prune", "--dry-run"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "his_nonces" in result.output and "would delete" in result.output
    result = runner.invoke(cli_app, ["prune", "--ivr-call-days", "0"])
    assert result.exit_code != 0 and "ivr-call-days" in result.output
    result = runner.invoke(cli_app, ["prune"], catch_exceptions=False)
    assert result.exit_code == 0 and "deleted" in result.output


def test_prune_deletes_ended_web_sessions_a_day_later_and_keeps_live_ones(services, clock, demo):
    from yibao.services.access import web_sessions
    from yibao.store.models import Person, WebSession

    with services.uow() as work:
        pid = work.session.scalars(select(Person.id)).first()
        ended = web_sessions.open_session(
            work, channel="portal", person_id=pid, idle=dt.timedelta(minutes=30)
        )
        web_sessions.end(work, channel="portal", token=ended.token)
        expired = web_sessions.open_session(
            work, channel="portal", person_id=pid, idle=dt.timedelta(minutes=30)
        )
        work.commit()
    clock.advance(dt.timedelta(days=1, minutes=31))
    with services.uow() as work:
        live = web_sessions.open_session(
            work, channel="portal", person_id=pid, idle=dt.timedelta(minutes=30)
        )
        work.commit()
    assert _count(services, WebSession) == 3
    assert _prune(services).web_sessions == 2
    with services.uow() as work:
        assert web_sessions.find(work, channel="portal", token=live.token) is not None
        assert web_sessions.find(work, channel="portal", token=expired.token) is None
