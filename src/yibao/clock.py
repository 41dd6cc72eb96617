"""One clock for the whole service, so that tests can set the date."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")


class Clock:
    """Wall-clock time, always timezone-aware; business dates are China dates."""

    def __init__(self, tz: dt.tzinfo = CHINA) -> None:
        self.tz = tz

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def today(self) -> dt.date:
        return self.now().astimezone(self.tz).date()

    def local(self, moment: dt.datetime) -> dt.datetime:
        return moment.astimezone(self.tz)


class FixedClock(Clock):
    """A clock that stands still until told to move; for tests and demos."""

    def __init__(self, moment: dt.datetime, tz: dt.tzinfo = CHINA) -> None:
        super().__init__(tz)
        if moment.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._moment = moment

    def now(self) -> dt.datetime:
        return self._moment

    def set(self, moment: dt.datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._moment = moment

    def advance(self, delta: dt.timedelta) -> None:
        self._moment += delta
