"""The working-day calendar."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from yibao.channels.api.deps import Staff, Work
from yibao.channels.api.fields import Body, Day, Note, WorkingDays, Year
from yibao.domain.actors import Channel
from yibao.domain.workdays import MAX_WORKING_DAYS
from yibao.services.registry import calendar as calendar_service

router = APIRouter(prefix="/calendar", tags=["calendar 工作日"])


class DayIn(Body):
    workday: bool | None
    note: Note = ""


@router.get("/{year}")
def show_year(year: Year, ctx: Staff, work: Work) -> dict[str, Any]:
    cal = calendar_service.current(work)
    return {
        "year": year,
        "published": cal.is_published(year),
        "days": [
            {"day": d.day.isoformat(), "workday": d.workday, "source": d.source, "note": d.note}
            for d in cal.special_days(year)
        ],
    }


@router.get(
    "/add-working-days/{start}/{days}",
    description=f"The date ``days`` working days after ``start`` (not counted); "
    f"``days`` is at most {MAX_WORKING_DAYS} (ten years), more is answered 422.",
)
def add_working_days(start: Day, days: WorkingDays, ctx: Staff, work: Work) -> dict[str, Any]:
    due, notes = calendar_service.current(work).add_working_days(start, days)
    return {"start": start.isoformat(), "days": days, "date": due.isoformat(), "notes": notes}


@router.put("/days/{day}")
def set_day(day: Day, body: DayIn, ctx: Staff, work: Work) -> dict[str, Any]:
    info = calendar_service.set_day(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        day=day,
        workday=body.workday,
        note=body.note,
    )
    return {
        "day": day.isoformat(),
        "workday": info.workday,
        "source": info.source,
        "note": info.note,
    }
