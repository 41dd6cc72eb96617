"""The working-day calendar."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from yibao.channels.api.deps import Staff, Work
from yibao.domain.actors import Channel
from yibao.services.registry import calendar as calendar_service

router = APIRouter(prefix="/calendar", tags=["calendar 工作日"])


class DayIn(BaseModel):
    workday: bool | None
    note: str = ""


@router.get("/{year}")
def show_year(year: int, ctx: Staff, work: Work) -> dict[str, Any]:
    cal = calendar_service.current(work)
    return {
        "year": year,
        "published": cal.is_published(year),
        "days": [
            {"day": d.day.isoformat(), "workday": d.workday, "source": d.source, "note": d.note}
            for d in cal.special_days(year)
        ],
    }


@router.get("/add-working-days/{start}/{days}")
def add_working_days(start: dt.date, days: int, ctx: Staff, work: Work) -> dict[str, Any]:
    due, notes = calendar_service.current(work).add_working_days(start, days)
    return {"start": start.isoformat(), "days": days, "date": due.isoformat(), "notes": notes}


@router.put("/days/{day}")
def set_day(day: dt.date, body: DayIn, ctx: Staff, work: Work) -> dict[str, Any]:
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
