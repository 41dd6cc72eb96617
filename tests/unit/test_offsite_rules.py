"""domain.offsite without a database: a filing's state on a day, which
filing covers a visit (and why none does), and the refusal that says how
to file."""

from __future__ import annotations

import datetime as dt

import pytest

from yibao.domain import offsite
from yibao.domain.errors import DomainError

DAY = dt.date(2026, 11, 23)


def filing(**kw: object) -> offsite.Filing:
    fields: dict[str, object] = {
        "id": 1,
        "kind": "referral",
        "visit_area": "320500",
        "start": DAY,
        "end": DAY + dt.timedelta(days=10),
        **kw,
    }
    return offsite.Filing(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("f", "day", "state"),
    [
        (filing(), DAY, "active"),
        (filing(), DAY + dt.timedelta(days=10), "active"),
        (filing(), DAY + dt.timedelta(days=11), "expired"),
        (filing(), DAY - dt.timedelta(days=1), "future"),
        (filing(cancelled=True), DAY, "cancelled"),
        (filing(end=None, kind="living"), DAY + dt.timedelta(days=3650), "active"),
    ],
)
def test_the_state_on_a_day(f: offsite.Filing, day: dt.date, state: str) -> None:
    assert offsite.state(f, day).value == state


def test_a_live_filing_wins_over_a_cancelled_one_and_covers_the_counties_under_it() -> None:
    old = filing(id=1, cancelled=True)
    new = filing(id=2)
    cover = offsite.cover([old, new], visit_area="320508", day=DAY)
    assert cover.covered and cover.filing == new
    assert offsite.cover([new], visit_area="310101", day=DAY).reason == "none"
    assert offsite.cover([old], visit_area="320508", day=DAY).reason == "cancelled"


def test_the_refusal_names_the_reason_and_how_to_file() -> None:
    refusal = offsite.not_covered("320508", "expired", "insuplc_admdvs")
    assert refusal.code == "offsite.not_covered" and refusal.field == "insuplc_admdvs"
    assert "已过期" in refusal.zh and "异地就医备案" in refusal.zh and "柜台" in refusal.zh
    assert "expired" in refusal.en and "file one" in refusal.en and "counter" in refusal.en


def test_a_long_stay_may_be_open_ended_a_referral_may_not() -> None:
    asked = offsite.check(
        kind="retired", destination="320500", home="330502", start=DAY, end=None, today=DAY
    )
    assert asked.kind is offsite.Kind.RETIRED and asked.end is None
    with pytest.raises(DomainError) as err:
        offsite.check(
            kind="referral", destination="320500", home="330502", start=DAY, end=None, today=DAY
        )
    assert err.value.field == "end"
