"""The one working-day calendar of the service: package plus staff table."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from yibao.domain.access import Perm
from yibao.domain.actors import Actor
from yibao.domain.errors import invalid
from yibao.domain.workdays import DayInfo, WorkCalendar
from yibao.services.tx import use_case
from yibao.store.models import CalendarOverride
from yibao.store.uow import UnitOfWork


def load(uow: UnitOfWork) -> WorkCalendar:
    """The calendar, read inside the caller's transaction (a step)."""
    rows = uow.session.execute(select(CalendarOverride)).scalars()
    return WorkCalendar({r.day: (r.is_workday, r.note) for r in rows})


# The calendar for a channel: a pure object, usable after the transaction.
current = use_case(load)


@use_case
def set_day(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    day: dt.date,
    workday: bool | None,
    note: str = "",
) -> DayInfo:
    """Mark a day as a working day or a holiday; ``workday=None`` removes the
    override. Returns the day as the calendar now has it."""
    actor.require(Perm.CALENDAR_WRITE)
    if not (2000 <= day.year <= 2100):
        raise invalid("day", "日期超出范围", "the date is out of range (2000-2100)")
    row = uow.session.get(CalendarOverride, day)
    if workday is None:
        if row is not None:
            uow.session.delete(row)
        uow.audit(actor.record(channel=channel, action="calendar.clear", subject=day.isoformat()))
        uow.session.flush()
        return load(uow).info(day)
    if row is None:
        row = CalendarOverride(
            day=day, is_workday=workday, note=note, set_by=actor.id, set_at=uow.clock.now()
        )
        uow.session.add(row)
    else:
        row.is_workday = workday
        row.note = note
        row.set_by = actor.id
        row.set_at = uow.clock.now()
    uow.audit(
        actor.record(
            channel=channel,
            action="calendar.set",
            subject=day.isoformat(),
            detail={"workday": workday, "note": note},
        )
    )
    uow.session.flush()
    return load(uow).info(day)
