import datetime as dt
import random
import time

import pytest

from yibao.domain.errors import DomainError
from yibao.domain.workdays import MAX_WORKING_DAYS, WorkCalendar, fallback_note, published_until

D = dt.date


def test_service_point_due_date_skips_national_day():
    # Applied on Wednesday 30 September 2026: 1-7 October are holidays,
    # Thursday 8 and Friday 9 October are working days, and Saturday
    # 10 October is a make-up working day under the 2026 arrangement.
    due, notes = WorkCalendar().add_working_days(D(2026, 9, 30), 3)
    assert due == D(2026, 10, 10)
    assert notes == []


def test_make_up_workday_counts_and_spring_festival_does_not():
    cal = WorkCalendar()
    assert cal.is_workday(D(2026, 2, 14))  # Saturday, make-up workday
    assert not cal.is_workday(D(2026, 2, 17))  # Spring Festival
    # Friday 13 February 2026 + 3 working days: Sat 14 (make-up), then the
    # holiday runs to Monday 23, so Tuesday 24 and Wednesday 25.
    due, _ = cal.add_working_days(D(2026, 2, 13), 3)
    assert due == D(2026, 2, 25)


def test_plain_week_counts_weekdays():
    due, _ = WorkCalendar().add_working_days(D(2026, 11, 20), 3)  # a Friday
    assert due == D(2026, 11, 25)


def test_unpublished_year_falls_back_to_weekdays_and_says_so():
    year = published_until() + 1
    cal = WorkCalendar()
    assert not cal.is_published(year)
    start = D(year, 9, 29)
    due, notes = cal.add_working_days(start, 3)
    expected = start
    counted = 0
    while counted < 3:
        expected += dt.timedelta(days=1)
        if expected.weekday() < 5:
            counted += 1
    assert due == expected
    assert len(notes) == 1 and str(year) in notes[0] and "Monday to Friday" in notes[0]


def test_staff_overrides_win_over_package_and_fallback():
    year = published_until() + 1
    overrides = {D(year, 10, 1): (False, "National Day"), D(2026, 10, 8): (False, "local closure")}
    cal = WorkCalendar(overrides)
    assert not cal.is_workday(D(year, 10, 1))
    assert cal.info(D(year, 10, 1)).source == "override"
    assert not cal.is_workday(D(2026, 10, 8))
    due, _ = cal.add_working_days(D(2026, 9, 30), 3)
    assert due == D(2026, 10, 11) or due == D(2026, 10, 12)
    # 9 Oct (Fri), 10 Oct (make-up Sat), then Monday 12 Oct
    assert due == D(2026, 10, 12)


def test_special_days_lists_holidays_and_make_up_days():
    days = {d.day: d for d in WorkCalendar().special_days(2026)}
    assert days[D(2026, 10, 1)].workday is False
    assert days[D(2026, 10, 10)].workday is True


# ---------------------------------------------------------------- counting without a loop over days


def day_by_day(cal: WorkCalendar, start: dt.date, days: int) -> tuple[dt.date, list[str]]:
    """The obvious count, one day at a time: what the arithmetic must agree with."""
    notes: set[str] = set()
    current, counted = start, 0
    while counted < days:
        current += dt.timedelta(days=1)
        info = cal.info(current)
        if info.source == "weekday-fallback":
            notes.add(fallback_note(current.year))
        if info.workday:
            counted += 1
    return current, sorted(notes)


def test_the_count_agrees_with_counting_day_by_day_for_many_starts_and_counts():
    rng = random.Random(20261123)
    last = published_until()
    overrides = {
        D(2026, 10, 8): (False, "local closure"),
        D(2026, 10, 11): (True, "Sunday worked"),
        D(2026, 10, 12): (True, "a Monday marked a workday: no change"),
        D(last + 1, 1, 1): (False, "New Year, not yet published"),
        D(last + 1, 2, 6): (True, "a Saturday worked"),
        D(last + 3, 5, 1): (False, "Labour Day"),
    }
    for cal in (WorkCalendar(), WorkCalendar(overrides)):
        cases = [(D(2026, 9, 30), 3), (D(2026, 2, 13), 3), (D(last, 12, 31), 1), (D(2026, 1, 1), 0)]
        for _ in range(120):
            start = D(2019, 1, 1) + dt.timedelta(days=rng.randrange(365 * 12))
            days = rng.choice([rng.randrange(1, 30), rng.randrange(1, 400), rng.randrange(3661)])
            cases.append((start, days))
        for start, days in cases:
            assert cal.add_working_days(start, days) == day_by_day(cal, start, days), (start, days)


def test_a_year_of_overrides_is_not_noted_as_counted_on_weekdays():
    year = published_until() + 1
    start = D(year, 3, 1)  # a few days all overridden: no weekday fallback was used
    overrides = {start + dt.timedelta(days=i): (True, "worked") for i in range(1, 6)}
    cal = WorkCalendar(overrides)
    assert cal.add_working_days(start, 5) == (start + dt.timedelta(days=5), [])
    assert day_by_day(cal, start, 5) == (start + dt.timedelta(days=5), [])


def test_the_largest_count_is_answered_at_once_and_one_more_is_refused():
    cal = WorkCalendar()
    begun = time.perf_counter()
    due, notes = cal.add_working_days(D(2100, 12, 31), MAX_WORKING_DAYS)
    assert time.perf_counter() - begun < 0.5
    assert (due, notes) == day_by_day(cal, D(2100, 12, 31), MAX_WORKING_DAYS)
    assert due == D(2115, 1, 11) and len(notes) == 15  # 2101 to 2115, weekdays only
    for bad in (MAX_WORKING_DAYS + 1, -1, 100_000_000_000):
        with pytest.raises(DomainError) as refused:
            cal.add_working_days(D(2026, 1, 1), bad)
        assert refused.value.field == "days" and refused.value.status == 422


def test_a_start_outside_the_years_people_live_in_is_refused():
    with pytest.raises(DomainError) as refused:
        WorkCalendar().add_working_days(D(9999, 12, 30), 1)
    assert refused.value.field == "start" and refused.value.status == 422


def test_a_calendar_that_never_works_again_is_refused_not_counted_for_ever():
    closed = {D(2030, 1, 1) + dt.timedelta(days=i): (False, "closed") for i in range(366 * 150)}
    with pytest.raises(DomainError) as refused:
        WorkCalendar(closed).add_working_days(D(2030, 1, 1), 1)
    assert refused.value.field == "days"
