"""The same-day review of an enrolment application (seed 004, step 3: "the
staff will review the information provided, and the day can be ended")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

# a year of days off in a row is more than any calendar has
_MAX_DAYS_OFF = 366


def review_due(submitted_on: dt.date, is_workday: Callable[[dt.date], bool]) -> dt.date:
    """The day an application is to be reviewed: the day it was filed, or,
    filed on a day off, the next working day."""
    day = submitted_on
    for _ in range(_MAX_DAYS_OFF):
        if is_workday(day):
            return day
        day += dt.timedelta(days=1)
    return day


def review_overdue(
    submitted_on: dt.date, today: dt.date, is_workday: Callable[[dt.date], bool]
) -> bool:
    """Whether an application still waiting for review has outlived its day."""
    return today > review_due(submitted_on, is_workday)
