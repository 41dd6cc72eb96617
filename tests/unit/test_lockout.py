"""The one lock of wrong passwords (domain.lockout) that the portal, the
employer channel and the staff log-in share."""

from __future__ import annotations

import datetime as dt

from yibao.domain import lockout

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


def test_the_fifth_wrong_password_in_a_row_locks_for_fifteen_minutes_and_restarts_the_count():
    failures, lock = 0, None
    for expected in (1, 2, 3, 4):
        failures, lock = lockout.after_failure(failures, NOW)
        assert (failures, lock) == (expected, None)
    failures, lock = lockout.after_failure(failures, NOW)
    assert (failures, lock) == (0, NOW + dt.timedelta(minutes=15))
    assert lockout.after_failure(2, NOW, most=3, minutes=1) == (0, NOW + dt.timedelta(minutes=1))


def test_a_lock_is_refused_with_the_minutes_left_rounded_up():
    until = NOW + dt.timedelta(minutes=14, seconds=1)
    refused = lockout.refusal(until, NOW, code="portal.locked")
    assert refused is not None and refused.status == 429 and refused.code == "portal.locked"
    assert "15分钟" in refused.message and "15 minutes" in refused.message
    last = lockout.refusal(NOW + dt.timedelta(seconds=5), NOW, code="portal.locked")
    assert last is not None and "1 minutes" in last.message
    assert lockout.refusal(NOW, NOW, code="portal.locked") is None
    assert lockout.refusal(None, NOW, code="portal.locked") is None
    assert lockout.is_locked(until, NOW) and not lockout.is_locked(NOW, NOW)


class _Account:
    def __init__(self) -> None:
        self.failed_logins = 0
        self.locked_until: dt.datetime | None = None


def test_an_account_row_is_counted_locked_and_cleared_in_place():
    acct = _Account()
    assert [lockout.fail(acct, NOW) for _ in range(5)] == [False] * 4 + [True]
    assert (acct.failed_logins, acct.locked_until) == (0, NOW + dt.timedelta(minutes=15))
    lockout.clear(acct)
    assert (acct.failed_logins, acct.locked_until) == (0, None)
    assert lockout.fail(acct, NOW, most=1, minutes=2) and acct.locked_until == NOW + dt.timedelta(
        minutes=2
    )
