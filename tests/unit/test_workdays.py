import datetime as dt

from yibao.domain.workdays import WorkCalendar, published_until

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
