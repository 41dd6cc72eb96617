"""Care in another area (异地就医备案): which filings a person may make, and
which filing covers a visit in another pooling area on a day.

A person insured in one pooling area is settled by a designated institution
of another only under a filing for that area (``domain.use`` refuses
otherwise, with the refusal made here). A filing is

- a long stay (长期异地): retired elsewhere (异地安置退休), living elsewhere
  (异地长期居住) or working elsewhere (常驻异地工作); it may be open-ended;
- or a temporary referral (转诊转院), which always has an end.

Its destination is a real GB/T 2260 code outside the insured person's own
pool (``areas.check_destination``, the transfers' check). It covers the
destination and the divisions under it from its first day to its last,
until it is cancelled; a cancelled filing covers nothing any more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from yibao.domain.areas import areas_up, check_destination, same_pool
from yibao.domain.errors import DomainError, conflict, invalid


class Kind(StrEnum):
    RETIRED = "retired"  # 异地安置退休
    LIVING = "living"  # 异地长期居住
    WORKING = "working"  # 常驻异地工作
    REFERRAL = "referral"  # 转诊转院


KIND_ZH = {
    Kind.RETIRED: "异地安置退休",
    Kind.LIVING: "异地长期居住",
    Kind.WORKING: "常驻异地工作",
    Kind.REFERRAL: "转诊转院",
}
KIND_EN = {
    Kind.RETIRED: "retired elsewhere",
    Kind.LIVING: "living elsewhere",
    Kind.WORKING: "working elsewhere",
    Kind.REFERRAL: "referral",
}
LONG_STAY = frozenset({Kind.RETIRED, Kind.LIVING, Kind.WORKING})


class State(StrEnum):
    ACTIVE = "active"  # covers today
    FUTURE = "future"  # starts later
    EXPIRED = "expired"  # its last day is past
    CANCELLED = "cancelled"


STATE_ZH = {
    State.ACTIVE: "有效",
    State.FUTURE: "未生效",
    State.EXPIRED: "已过期",
    State.CANCELLED: "已撤销",
}


@dataclass(frozen=True)
class Filing:
    """A filing as the rules see it."""

    id: int
    kind: str
    visit_area: str
    start: dt.date
    end: dt.date | None
    cancelled: bool = False


@dataclass(frozen=True)
class Request:
    """A filing asked for, checked by ``check``."""

    kind: Kind
    visit_area: str
    start: dt.date
    end: dt.date | None


def state(filing: Filing, today: dt.date) -> State:
    if filing.cancelled:
        return State.CANCELLED
    if filing.end is not None and filing.end < today:
        return State.EXPIRED
    if today < filing.start:
        return State.FUTURE
    return State.ACTIVE


def check(
    *,
    kind: str | None,
    destination: str | None,
    home: str | None,
    start: dt.date | None,
    end: dt.date | None,
    today: dt.date,
    existing: Sequence[Filing] = (),
) -> Request:
    """A new filing, or the refusal naming its field: the kind, the
    destination (a real code outside the insured pool ``home``), the period
    (a referral ends; nothing ends before it starts or before today), and no
    live filing for the same destination pool over the same days."""
    try:
        chosen = Kind(kind or "")
    except ValueError:
        raise invalid(
            "kind",
            "请选择备案类型：异地安置退休、异地长期居住、常驻异地工作或转诊转院",
            "choose the kind: retired, living or working elsewhere, or referral",
            "choice",
        ) from None
    if not home:
        raise conflict(
            "offsite.not_insured",
            "未参保，不能办理异地就医备案",
            "the person is not enrolled; there is no insured area to file from",
            "person",
        )
    code = check_destination(
        destination,
        home,
        today.year,
        field="visit_area",
        what_zh="就医地",
        what_en="destination",
    )
    if start is None:
        raise invalid("start", "请填写备案开始日期", "give the first day", "required")
    if chosen is Kind.REFERRAL and end is None:
        raise invalid(
            "end",
            "转诊转院备案须填写结束日期",
            "a referral has a last day",
            "required",
        )
    if end is not None and end < start:
        raise invalid("end", "结束日期早于开始日期", "the last day is before the first", "order")
    if end is not None and end < today:
        raise invalid("end", "结束日期已过", "the last day is already past", "past")
    for f in existing:
        if state(f, today) in (State.CANCELLED, State.EXPIRED):
            continue
        if not same_pool(f.visit_area, code):
            continue
        if _overlap(f.start, f.end, start, end):
            raise conflict(
                "offsite.overlap",
                f"已有{f.start.isoformat()}起到{_end_zh(f.end)}的{code[:4]}00备案，期间重叠",
                f"a filing for this area from {f.start.isoformat()} "
                f"to {f.end.isoformat() if f.end else 'open-ended'} overlaps",
                "start",
            )
    return Request(chosen, code, start, end)


def _overlap(a0: dt.date, a1: dt.date | None, b0: dt.date, b1: dt.date | None) -> bool:
    return (a1 is None or b0 <= a1) and (b1 is None or a0 <= b1)


def _end_zh(end: dt.date | None) -> str:
    return end.isoformat() if end else "长期"


def check_cancel(filing: Filing, today: dt.date) -> None:
    """Only a filing that covers now or later can be cancelled."""
    now = state(filing, today)
    if now in (State.CANCELLED, State.EXPIRED):
        raise conflict(
            f"offsite.{now.value}",
            f"该备案{STATE_ZH[now]}，不能撤销",
            f"the filing is {now.value}; it cannot be cancelled",
            "filing_id",
        )


def applies(filing: Filing, visit_area: str) -> bool:
    """The filing's destination is the visit's area or a division above it."""
    return filing.visit_area in areas_up(visit_area)


@dataclass(frozen=True)
class Cover:
    """Whether a visit area and day are covered, and if not, why."""

    filing: Filing | None
    # none: no filing for the area; cancelled, expired, future: the nearest one's state
    reason: str = ""

    @property
    def covered(self) -> bool:
        return self.filing is not None


def cover(filings: Sequence[Filing], *, visit_area: str, day: dt.date) -> Cover:
    """The filing that covers a visit in ``visit_area`` on ``day``; else why
    none does, from the area's own filings (a live one first)."""
    mine = [f for f in filings if applies(f, visit_area)]
    for f in mine:
        if state(f, day) is State.ACTIVE:
            return Cover(f)
    for why in (State.FUTURE, State.EXPIRED, State.CANCELLED):
        if any(state(f, day) is why for f in mine):
            return Cover(None, why.value)
    return Cover(None, "none")


HOW_TO_FILE_ZH = "请在参保地网上服务大厅“异地就医备案”页面或医保经办柜台办理备案"
HOW_TO_FILE_EN = (
    "file one (异地就医备案) on the insured area's portal page “Care in another area” "
    "or at its counter"
)
WHY_ZH = {
    "none": "未办理本地的异地就医备案",
    "future": "异地就医备案尚未生效",
    "expired": "异地就医备案已过期",
    "cancelled": "异地就医备案已撤销",
}
WHY_EN = {
    "none": "no cross-area filing for this area",
    "future": "the cross-area filing for this area has not started yet",
    "expired": "the cross-area filing for this area has expired",
    "cancelled": "the cross-area filing for this area was cancelled",
}


def not_covered(insured_area: str, reason: str, field: str | None) -> DomainError:
    """The refusal of a person insured elsewhere without a filing that
    covers: the reason, and how to file one."""
    why = reason if reason in WHY_ZH else "none"
    return conflict(
        "offsite.not_covered",
        f"参保地{insured_area}不在本统筹区，{WHY_ZH[why]}；{HOW_TO_FILE_ZH}",
        f"insured in area {insured_area}: {WHY_EN[why]}; {HOW_TO_FILE_EN}",
        field,
    )
