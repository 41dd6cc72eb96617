"""The bureau's dashboard (issue 17): every figure against a data set made
through the HIS interface and the services, scoped to the staff member's
area, audited, and read from one snapshot (REPEATABLE READ on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from tests.db import dashboard_data
from tests.db.dashboard_data import DataSet
from tests.his.client import His
from yibao.domain.access import Role
from yibao.domain.actors import Actor, Channel
from yibao.domain.errors import DomainError
from yibao.services.reporting import dashboard as reporting
from yibao.store.models import AuditEntry, Reconciliation, SettlementRefusal

CITY = Actor.staff(username="admin", division="330500", role=Role.CITY_ADMIN)
WUXING = Actor.staff(username="wuxing", division="330502", role=Role.COUNTY_CLERK)
NANXUN = Actor.staff(username="nanxun", division="330503", role=Role.COUNTY_CLERK)
DEQING = Actor.staff(username="deqing", division="330521", role=Role.COUNTY_CLERK)
YUEHE = Actor.staff(username="yuehe", division="330502001", role=Role.SERVICE_POINT_CLERK)
FUND = Actor.staff(username="wuxing_fund", division="330502", role=Role.CONTRIBUTION_CLERK)
C = Channel.COUNTER


def view(uow: Any, actor: Actor, **kw: Any) -> reporting.Dashboard:
    return reporting.dashboard(uow, actor=actor, channel=C, **kw)


def rows(d: reporting.Dashboard, key: str) -> dict[Any, tuple[Any, ...]]:
    """A figure's rows by their first column."""
    return {r[0]: r[1:] for r in d.figures[key].rows}


@pytest.fixture
def data(client: Any, demo: dict[str, Any], uow: Any, clock: Any) -> DataSet:
    made = dashboard_data.build(client, demo, uow, clock)
    # the next day, at noon: the review filed yesterday is overdue, and the
    # demo applicant's card is past its deadline (its due day moved before)
    due = dashboard_data.card_due(uow)
    clock.set(
        dt.datetime.combine(
            max(due, clock.today()) + dt.timedelta(days=1), dt.time(12), clock.now().tzinfo
        )
    )
    return made


def test_the_city_sees_every_figure_of_both_counties(uow: Any, data: DataSet) -> None:
    a, b = data.settled  # level 3 in Wuxing (330502), level 2 in Nanxun (330503)
    assert (a.level, a.county, b.level, b.county) == ("3", "330502", "2", "330503")
    d = view(uow, CITY)
    assert d.area == "330500" and d.area_zh == "湖州市"
    assert d.period.end == uow.clock.today()
    assert d.period.start == uow.clock.today() - dt.timedelta(days=29)
    # per day: both on 23 November, with their amounts
    daily = rows(d, "daily")
    assert daily["2026-11-23"] == (
        2,
        a.medfee + b.medfee,
        a.fund + b.fund,
        a.acct + b.acct,
        a.cash + b.cash,
    )
    assert d.figures["daily"].total("count") == 2
    assert a.medfee == b.medfee == 70100
    # per hour of day (China time): both at 10:00
    hourly = rows(d, "hourly")
    assert hourly["10:00"][0] == 2 and d.figures["hourly"].total("count") == 2
    # fund, account and cash by institution level
    levels = rows(d, "levels")
    assert levels["3"] == (1, a.medfee, a.fund, a.acct, a.cash)
    assert levels["2"] == (1, b.medfee, b.fund, b.acct, b.cash)
    assert levels["0"] == levels["1"] == (0, 0, 0, 0, 0)
    # the refused second settlement of one visit
    assert list(d.figures["refusals"].rows) == [(data.refusal_code, 1)]
    # the central hospital's reconciliation counted 1.00 more
    recon = rows(d, "reconciliation")
    assert recon == {
        "H33050200001": ("湖州市中心医院", 1, 1, "2026-11-23~2026-11-23", 0, 100, 0, 0)
    }
    # the Yuehe service point's card is past its deadline
    assert rows(d, "cards") == {"330502001": (("月河街道", "Yuehe Subdistrict"), 0, 1, 0)}
    # the enrolment application waiting in Wuxing, past its day
    assert rows(d, "reviews") == {"330502": (("吴兴区", "Wuxing District"), 1, 1)}
    # the demo's employer in arrears: three months, 3,240.00 yuan
    assert rows(d, "arrears") == {
        "91330503MA2E6F7G8Q": ("南浔木业股份有限公司", "330503", 3, "202608", 324000)
    }
    # a terminal's inquiry; a call whose caller heard the balance
    use = {(r[0], r[1]): r[2:] for r in d.figures["channels"].rows}
    assert use == {("kiosk", "T-HZZX-01"): (1, 1, None), ("telephone", ""): (1, 1, 1)}
    # the per-county breakdown
    counties = rows(d, "counties")
    assert counties["330502"][1:] == (1, a.medfee, 1, 1, 1, 1, 0, 0)
    assert counties["330503"][1:] == (1, b.medfee, 0, 0, 0, 0, 1, 324000)
    assert counties["330521"][1:] == (0, 0, 0, 0, 0, 0, 0, 0)
    assert d.figures["counties"].total("settlements") == d.figures["daily"].total("count")


def test_a_county_clerk_sees_their_county_only(uow: Any, data: DataSet) -> None:
    a = data.settled[0]
    d = view(uow, WUXING)
    assert d.area == "330502"
    assert rows(d, "daily")["2026-11-23"] == (1, a.medfee, a.fund, a.acct, a.cash)
    assert rows(d, "levels")["2"] == (0, 0, 0, 0, 0)
    assert list(d.figures["refusals"].rows) == [(data.refusal_code, 1)]
    assert list(rows(d, "reconciliation")) == ["H33050200001"]
    assert rows(d, "arrears") == {}
    assert {(r[0], r[1]) for r in d.figures["channels"].rows} == {("kiosk", "T-HZZX-01")}
    assert list(rows(d, "counties")) == ["330502"]
    # Nanxun's clerk: the other settlement, the employer, the telephone
    n = view(uow, NANXUN)
    assert n.figures["daily"].total("count") == 1
    assert n.figures["refusals"].rows == [] and n.figures["reconciliation"].rows == []
    assert list(rows(n, "arrears")) == ["91330503MA2E6F7G8Q"]
    assert {(r[0], r[1]) for r in n.figures["channels"].rows} == {("telephone", "")}


def test_a_clerk_of_another_county_sees_none_of_it(uow: Any, data: DataSet) -> None:
    d = view(uow, DEQING)
    assert d.area == "330521"
    for key in ("daily", "hourly", "levels"):
        assert d.figures[key].total("count") == 0
    for key in ("refusals", "cards", "reviews", "arrears", "channels", "reconciliation"):
        assert d.figures[key].rows == [], key
    assert rows(d, "counties") == {"330521": (("德清县", "Deqing County"), 0, 0, 0, 0, 0, 0, 0, 0)}
    # nor may they name another county, nor a street, nor the city above them
    for area in ("330502", "330500", "330521001"):
        with pytest.raises(DomainError) as refused:
            view(uow, DEQING, area=area)
        assert refused.value.status in (404, 422)
    # the city may narrow its view to one county
    assert view(uow, CITY, area="330503").figures["daily"].total("count") == 1


def test_service_points_and_contribution_clerks_may_not_read_the_dashboard(
    uow: Any, demo: dict[str, Any]
) -> None:
    for actor in (YUEHE, FUND):
        with pytest.raises(DomainError) as refused:
            view(uow, actor)
        assert refused.value.status == 403


def test_the_period_is_bounded(uow: Any, demo: dict[str, Any]) -> None:
    today = uow.clock.today()
    with pytest.raises(DomainError) as refused:
        view(uow, CITY, end=today + dt.timedelta(days=1))
    assert refused.value.field == "end"
    with pytest.raises(DomainError) as refused:
        view(uow, CITY, start=today - dt.timedelta(days=366))
    assert refused.value.field == "start"
    with pytest.raises(DomainError) as refused:
        view(uow, CITY, start=today, end=today - dt.timedelta(days=1))
    assert refused.value.field == "start"
    d = view(uow, CITY, start=today - dt.timedelta(days=365), end=today)
    assert len(d.figures["daily"].rows) == 366


def test_every_view_and_download_is_audited_once(uow: Any, data: DataSet) -> None:
    view(uow, WUXING)
    view(uow, CITY, area="330503", download=("arrears", "xlsx"))
    with pytest.raises(DomainError):
        view(uow, CITY, download=("nothing", "csv"))
    with uow:
        entries = (
            uow.session.execute(
                select(AuditEntry).where(AuditEntry.action.like("report.%")).order_by(AuditEntry.id)
            )
            .scalars()
            .all()
        )
        got = [(e.actor_id, e.action, e.subject, e.detail.get("figure")) for e in entries]
    assert got == [
        ("wuxing", "report.view", "330502", None),
        ("admin", "report.download", "330503", "arrears"),
    ]


def test_refusals_and_reconciliations_are_kept_by_the_settlement_service(
    uow: Any, data: DataSet
) -> None:
    with uow:
        refusals = uow.session.execute(select(SettlementRefusal)).scalars().all()
        recons = uow.session.execute(select(Reconciliation)).scalars().all()
        kept = [(r.institution_code, r.area, r.infno, r.code) for r in refusals]
        recon = [(r.institution_code, r.balanced, r.given_medfee - r.our_medfee) for r in recons]
    assert kept == [("H33050200001", "330502", "2207", data.refusal_code)]
    assert recon == [("H33050200001", False, 100)]


@pytest.mark.postgresql_only
def test_a_settlement_committed_during_the_read_does_not_split_the_totals(
    client: Any, demo: dict[str, Any], uow: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-day totals are read by one statement, the per-county totals by
    another; a settlement committed between them is in neither."""
    central = demo["institutions"][0]
    zhang, chen = demo["persons"][0], demo["persons"][4]
    his = His(client, central, clock)
    his.sign_in()
    dashboard_data.settle(his, zhang, dashboard_data.open_visit(his, zhang))
    pending = dashboard_data.open_visit(his, chen)
    committed: list[dict[str, Any]] = []

    def settle_meanwhile() -> None:
        committed.append(dashboard_data.settle(his, chen, pending))

    monkeypatch.setattr(reporting, "between_reads", settle_meanwhile)
    d = view(uow, CITY)
    assert committed, "the settlement was committed during the read"
    assert d.isolation == "repeatable read"
    assert d.figures["daily"].total("count") == 1
    assert d.figures["counties"].total("settlements") == 1
    assert d.figures["counties"].total("medfee") == d.figures["daily"].total("medfee")
    monkeypatch.setattr(reporting, "between_reads", None)
    after = view(uow, CITY)
    assert after.figures["daily"].total("count") == 2
    assert after.figures["counties"].total("settlements") == 2
