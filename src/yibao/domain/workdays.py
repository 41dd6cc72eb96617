"""Working days: the State Council's holiday arrangement plus a staff table.

The ``holidays`` package carries each year's published arrangement, including
weekend days that become make-up workdays. For a year it does not know yet we
fall back to Monday–Friday and say so, never an error (domain.md, "Working
days"). Staff overrides always win over both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import holidays
from holidays.countries.china import ChinaStaticHolidays

from yibao.domain import values
from yibao.domain.errors import invalid

# The most working days one question may add: ten years' worth. A count
# larger than that is a typo or an attack; the API answers it 422.
MAX_WORKING_DAYS = 3660
# The count gives up this many years after the last year a date may have
# (values.MAX_YEAR): only an override table that closes nearly every day
# could make it run that far.
CALENDAR_SLACK_YEARS = 50


@lru_cache(maxsize=1)
def published_until() -> int:
    """The last year whose arrangement the installed package carries."""
    years = [y for y in ChinaStaticHolidays.special_public_holidays if isinstance(y, int)]
    return max(years) if years else 0


@lru_cache(maxsize=64)
def _package_year(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("CN", years=year)


@lru_cache(maxsize=64)
def _package_exceptions(year: int) -> dict[dt.date, bool]:
    """A published year's days that are not as Monday to Friday would have
    them: holidays on a weekday (False) and make-up workdays at a weekend (True)."""
    cal = _package_year(year)
    found = {d: False for d in cal if d.year == year and d.weekday() < 5}
    found.update({d: True for d in cal.weekend_workdays if d.year == year})
    return found


def _weekdays_until(day: dt.date) -> int:
    """How many Mondays to Fridays there are from 1 January of year 1 to ``day``
    (a Monday) inclusive."""
    elapsed = day.toordinal()  # ordinal 1 is a Monday
    return 5 * (elapsed // 7) + min(elapsed % 7, 5)


def _weekdays_between(after: dt.date, last: dt.date) -> int:
    """Mondays to Fridays in (after, last]."""
    return max(0, _weekdays_until(last) - _weekdays_until(after))


def _add_weekdays(after: dt.date, n: int) -> dt.date:
    """The ``n``-th Monday-to-Friday after ``after`` (n >= 1)."""
    target = _weekdays_until(after) + n - 1  # weekdays before the one we want
    return dt.date.fromordinal(7 * (target // 5) + target % 5 + 1)


@dataclass(frozen=True)
class DayInfo:
    day: dt.date
    workday: bool
    source: str  # "package", "override", "weekday-fallback"
    note: str = ""


@dataclass
class WorkCalendar:
    """Answers "is this a working day" from the package and the override table."""

    overrides: Mapping[dt.date, tuple[bool, str]] = field(default_factory=dict)

    def is_published(self, year: int) -> bool:
        return year <= published_until()

    def info(self, day: dt.date) -> DayInfo:
        if day in self.overrides:
            workday, note = self.overrides[day]
            return DayInfo(day, workday, "override", note)
        if self.is_published(day.year):
            cal = _package_year(day.year)
            name = cal.get(day)
            workday = cal.is_working_day(day)
            if day in cal.weekend_workdays:
                name = "调休上班 make-up workday"
            return DayInfo(day, workday, "package", str(name or ""))
        return DayInfo(day, day.weekday() < 5, "weekday-fallback")

    def is_workday(self, day: dt.date) -> bool:
        return self.info(day).workday

    def add_working_days(self, start: dt.date, days: int) -> tuple[dt.date, list[str]]:
        """The date ``days`` working days after ``start`` (``start`` not counted).

        Returns the date and notes for every year that had to fall back to
        weekdays, so the caller can record them with its result.

        ``days`` is at most ``MAX_WORKING_DAYS``. The answer is computed, not
        counted day by day: whole runs of Monday-to-Friday are counted by
        arithmetic, and only the days that differ from it (holidays on a
        weekday, make-up workdays at a weekend, staff overrides) are visited,
        so a request costs the same for 3 days as for 3,000.
        """
        days = values.count(days, field="days", most=MAX_WORKING_DAYS)
        values.checked_date(start, field="start")
        if days == 0:
            return start, []
        current, remaining = start, days
        due: dt.date | None = None
        for year in range(start.year, values.MAX_YEAR + CALENDAR_SLACK_YEARS):
            year_end = dt.date(year, 12, 31)
            for day, workday in sorted(self._exceptions(year).items()):
                if day <= current:
                    continue
                between = _weekdays_between(current, day - dt.timedelta(days=1))
                if between >= remaining:
                    due = _add_weekdays(current, remaining)
                    break
                remaining -= between
                current = day
                if workday:
                    remaining -= 1
                    if remaining == 0:
                        due = day
                        break
            if due is None:
                left = _weekdays_between(current, year_end)
                if left >= remaining:
                    due = _add_weekdays(current, remaining)
                else:
                    remaining -= left
                    current = year_end
            if due is not None:
                return due, self._fallback_notes(start, due)
        # Only an override table that closes nearly every day for years gets here.
        raise invalid("days", "超出日历范围", "past the end of the calendar", "range")

    def _exceptions(self, year: int) -> dict[dt.date, bool]:
        """The days of ``year`` whose working-day status is not Monday to
        Friday's: the package's holidays and make-up days, then the overrides."""
        found = dict(_package_exceptions(year)) if self.is_published(year) else {}
        for day, (workday, _) in self.overrides.items():
            if day.year == year:
                if workday == (day.weekday() < 5):
                    found.pop(day, None)
                else:
                    found[day] = workday
        return found

    def _fallback_notes(self, start: dt.date, due: dt.date) -> list[str]:
        """A note for every year counted on weekdays alone: a year without a
        published arrangement, unless every day counted in it was overridden."""
        notes = []
        for year in range(start.year, due.year + 1):
            if self.is_published(year):
                continue
            first = max(start + dt.timedelta(days=1), dt.date(year, 1, 1))
            last = min(due, dt.date(year, 12, 31))
            if first > last:
                continue
            overridden = sum(1 for d in self.overrides if first <= d <= last)
            if overridden < (last - first).days + 1:
                notes.append(fallback_note(year))
        return notes

    def special_days(self, year: int) -> list[DayInfo]:
        """Holidays, make-up workdays and overrides of a year, in date order."""
        days: dict[dt.date, DayInfo] = {}
        if self.is_published(year):
            cal = _package_year(year)
            for d in cal:
                if d.year == year and not cal.is_working_day(d) and d.weekday() < 5:
                    days[d] = self.info(d)
            for d in cal.weekend_workdays:
                if d.year == year:
                    days[d] = self.info(d)
        for d in self.overrides:
            if d.year == year:
                days[d] = self.info(d)
        return [days[d] for d in sorted(days)]


def fallback_note(year: int) -> str:
    return (
        f"{year}年节假日安排尚未收录，按周一至周五计算工作日 / "
        f"no published holiday arrangement for {year}; Monday to Friday counted as working days"
    )
