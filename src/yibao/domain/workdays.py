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


@lru_cache(maxsize=1)
def published_until() -> int:
    """The last year whose arrangement the installed package carries."""
    years = [y for y in ChinaStaticHolidays.special_public_holidays if isinstance(y, int)]
    return max(years) if years else 0


@lru_cache(maxsize=64)
def _package_year(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("CN", years=year)


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
        """
        if days < 0:
            raise ValueError("days must not be negative")
        notes: set[str] = set()
        current = start
        counted = 0
        while counted < days:
            current += dt.timedelta(days=1)
            info = self.info(current)
            if info.source == "weekday-fallback":
                notes.add(fallback_note(current.year))
            if info.workday:
                counted += 1
        return current, sorted(notes)

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
