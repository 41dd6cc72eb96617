"""The dashboard's pages and downloads at the counter (issue 17): the same
numbers on the page, in the CSV and in the XLSX; only staff who may."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import load_workbook

from tests.channels.test_web_forms import counter_login
from tests.db import dashboard_data
from tests.db.dashboard_data import DataSet


@pytest.fixture
def data(client: Any, demo: dict[str, Any], uow: Any, clock: Any) -> DataSet:
    return dashboard_data.build(client, demo, uow, clock)


def _csv(client: Any, url: str) -> list[list[str]]:
    r = client.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    text = r.content.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def _fen(yuan: Any) -> int:
    return int(Decimal(str(yuan)) * 100)


def _xlsx(client: Any, url: str) -> list[tuple[Any, ...]]:
    r = client.get(url)
    assert r.status_code == 200, r.text
    book = load_workbook(io.BytesIO(r.content), read_only=True)
    sheet = book.worksheets[0]
    found = [tuple(row) for row in sheet.iter_rows(values_only=True)]
    book.close()
    return found


def test_the_city_administrator_sees_the_charts_tables_and_both_counties(
    client: Any, data: DataSet
) -> None:
    counter_login(client, "admin")
    home = client.get("/counter/")
    assert 'href="/counter/dashboard/"' in home.text
    page = client.get("/counter/dashboard/")
    assert page.status_code == 200
    html = page.text
    assert "统计看板 · 湖州市" in html
    for key in ("daily", "hourly", "levels", "refusals", "counties"):
        assert f'data-testid="chart-{key}"' in html, key
    for key in ("cards", "reviews", "arrears", "channels", "reconciliation"):
        assert f'data-testid="figure-{key}"' in html, key
        assert f'href="/counter/dashboard/{key}.csv?' in html
        assert f'href="/counter/dashboard/{key}.xlsx?' in html
    # both counties in the breakdown and in the area's choice
    assert '<option value="330502">吴兴区 (330502)</option>' in html
    assert '<option value="330503">南浔区 (330503)</option>' in html
    # the amounts as yuan, the 1.00 the central hospital's statement differed by
    assert "1,402.00" in html and "visit.settled" in html
    # no inline script or style: the Content-Security-Policy would refuse it
    assert "<script>" not in html and "style=" not in html
    english = client.get("/counter/dashboard/?lang=en").text
    assert "Dashboard · Huzhou" in english and "Settlements per day" in english
    assert "Wuxing District" in english
    assert not re.search(r"[\u4e00-\u9fff]", _visible_chrome(english)), "Chinese left"


def _visible_chrome(html: str) -> str:
    """The page without the data the bureau keeps in Chinese only (the names
    of institutions and employers) and without the language switch."""
    body = html.split('<main id="main">', 1)[1]
    for name in ("湖州市中心医院", "南浔木业股份有限公司", "中文"):
        body = body.replace(name, "")
    return body


def test_downloads_hold_the_page_s_numbers(client: Any, data: DataSet) -> None:
    a, b = data.settled
    counter_login(client, "admin")
    daily = _csv(client, "/counter/dashboard/daily.csv")
    assert daily[0] == [
        "日期",
        "结算笔数",
        "医疗费总额(元)",
        "基金支付(元)",
        "个人账户支付(元)",
        "现金支付(元)",
    ]
    day = next(r for r in daily if r[0] == "2026-11-23")
    assert day == [
        "2026-11-23",
        "2",
        f"{(a.medfee + b.medfee) / 100:.2f}",
        f"{(a.fund + b.fund) / 100:.2f}",
        f"{(a.acct + b.acct) / 100:.2f}",
        f"{(a.cash + b.cash) / 100:.2f}",
    ]
    levels = _xlsx(client, "/counter/dashboard/levels.xlsx")
    assert levels[0][0] == "机构级别"
    # a spreadsheet keeps numbers as doubles: back to yuan and fen
    by_level = {r[0]: (r[1], *(_fen(v) for v in r[2:])) for r in levels[1:]}
    assert by_level["3"] == (
        1,
        a.medfee,
        a.fund,
        a.acct,
        a.cash,
    )
    assert by_level["2"][0] == 1 and by_level["2"][2] == b.fund
    arrears = _xlsx(client, "/counter/dashboard/arrears.xlsx?lang=en")
    assert arrears == [
        (
            "credit code",
            "employer",
            "county code",
            "months in arrears",
            "oldest month",
            "owed (yuan)",
        ),
        ("91330503MA2E6F7G8Q", "南浔木业股份有限公司", "330503", 3, "202608", 3240),
    ]
    counties = _csv(client, "/counter/dashboard/counties.csv?area=330503&lang=en")
    assert counties[0][:3] == ["county code", "county", "settlements"]
    assert counties[1:] == [
        [
            "330503",
            "Nanxun District",
            "1",
            f"{b.medfee / 100:.2f}",
            "0",
            "0",
            "0",
            "0",
            "1",
            "3240.00",
        ]
    ]
    recon = _csv(client, "/counter/dashboard/reconciliation.csv")
    assert recon[1][:4] == ["H33050200001", "湖州市中心医院", "1", "1"] and recon[1][6] == "1.00"


def test_a_county_clerk_downloads_their_county_only(client: Any, data: DataSet) -> None:
    counter_login(client, "wuxing")
    page = client.get("/counter/dashboard/")
    assert page.status_code == 200 and "统计看板 · 吴兴区" in page.text
    assert '<option value="330503">' not in page.text
    daily = _csv(client, "/counter/dashboard/daily.csv")
    assert sum(int(r[1]) for r in daily[1:]) == 1
    assert _csv(client, "/counter/dashboard/arrears.csv")[1:] == []
    # another county's figures: not found, on the page and as a file
    assert client.get("/counter/dashboard/?area=330503").status_code == 404
    assert client.get("/counter/dashboard/daily.csv?area=330503").status_code == 404


def test_others_are_refused_or_sent_to_log_in(client: Any, demo: dict[str, Any]) -> None:
    r = client.get("/counter/dashboard/", follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"].endswith("/counter/login")
    r = client.get("/counter/dashboard/daily.csv", follow_redirects=False)
    assert r.status_code in (302, 303)
    counter_login(client, "yuehe")  # a service point clerk
    assert 'href="/counter/dashboard/"' not in client.get("/counter/").text
    page = client.get("/counter/dashboard/")
    assert page.status_code == 403 and "您的岗位无权办理此项业务" in page.text
    assert client.get("/counter/dashboard/daily.xlsx").status_code == 403


def test_a_bad_query_or_file_is_refused_with_the_field(client: Any, demo: dict[str, Any]) -> None:
    counter_login(client, "admin")
    r = client.get("/counter/dashboard/?start=2026-12-01&end=2026-11-01")
    assert r.status_code == 422 and "开始日期应不晚于结束日期" in r.text
    r = client.get("/counter/dashboard/?end=2027-01-01")
    assert r.status_code == 422
    r = client.get("/counter/dashboard/?start=not-a-day")
    assert r.status_code == 422
    assert client.get("/counter/dashboard/daily.pdf").status_code == 404
    assert client.get("/counter/dashboard/nothing.csv").status_code == 404
