"""Wrong passwords lock a log-in: the portal's, the employer channel's and
the staff's alike. The fifth wrong one in a row locks it for 15 minutes,
and the count starts again; a right one clears both. A lock running is
extended from the wrong password that ends it, so guessing on does not
shorten it. The services keep the count on their own account rows."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from yibao.domain.errors import DomainError

MAX_FAILURES = 5
LOCK_MINUTES = 15


def after_failure(
    failures: int, now: dt.datetime, *, most: int = MAX_FAILURES, minutes: int = LOCK_MINUTES
) -> tuple[int, dt.datetime | None]:
    """The count after one more wrong password, and the end of the lock it
    starts (None: it starts none)."""
    failures += 1
    if failures >= most:
        return 0, now + dt.timedelta(minutes=minutes)
    return failures, None


def is_locked(locked_until: dt.datetime | None, now: dt.datetime) -> bool:
    return locked_until is not None and locked_until > now


def refusal(locked_until: dt.datetime | None, now: dt.datetime, *, code: str) -> DomainError | None:
    """The refusal of a locked log-in, saying for how many more minutes
    (rounded up), or None when it is not locked."""
    if locked_until is None or not is_locked(locked_until, now):
        return None
    minutes = max(1, -int(-(locked_until - now).total_seconds() // 60))
    return DomainError(
        code=code,
        zh=f"密码错误次数过多，账号已锁定，请{minutes}分钟后再试",
        en=f"too many wrong passwords; locked, try again in {minutes} minutes",
        status=429,
    )


class Lockable(Protocol):
    """An account row that counts wrong passwords (portal, employer, staff)."""

    failed_logins: int
    locked_until: dt.datetime | None


def fail(
    acct: Lockable, now: dt.datetime, *, most: int = MAX_FAILURES, minutes: int = LOCK_MINUTES
) -> bool:
    """Count one more wrong password on ``acct``; True when it locks it now."""
    acct.failed_logins, lock = after_failure(acct.failed_logins, now, most=most, minutes=minutes)
    if lock is not None:
        acct.locked_until = lock
    return lock is not None


def clear(acct: Lockable) -> None:
    """The right password: the count of wrong ones starts again."""
    acct.failed_logins = 0
    acct.locked_until = None
