"""The bureau's dashboard in Chromium (issue 17): the charts and tables of a
city administrator and of a county clerk, on a desk and on a phone, in both
languages; axe-core finds no serious or critical violation, the
Content-Security-Policy refuses nothing, and ``make screenshots`` saves them."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.browser.test_web_pages import (  # noqa: F401
    DESK,
    PHONE,
    browser,
    check,
    demo,
    live,
    new_context,
    server,
)
from tests.conftest import START
from tests.db import dashboard_data
from yibao.clock import FixedClock


@pytest.fixture
def with_data(live: tuple[str, Any], demo: dict[str, Any]) -> str:  # noqa: F811
    """The demo server with the dashboard's data set, sent to its HIS
    endpoint over HTTP like a hospital's."""
    base, services = live
    dashboard_data.build(_Http(base), demo, services.uow(), FixedClock(START))
    return str(base)


class _Http:
    """What the tests' HIS client needs of an HTTP client (``post``), over
    the standard library, to the live server."""

    def __init__(self, base: str) -> None:
        self.base = base

    def post(self, path: str, *, content: bytes, headers: dict[str, str]) -> Any:
        request = urllib.request.Request(
            self.base + path,
            data=content,
            headers={**headers, "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = answer.read().decode()
            status = answer.status
        return _Answer(status, body)


class _Answer:
    def __init__(self, status_code: int, text: str) -> None:
        self.status_code, self.text = status_code, text

    def json(self) -> Any:
        return json.loads(self.text)


def _log_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/counter/login")
    page.fill("#username", username)
    page.fill("#password", "yibao-demo-2026")
    page.click("form button[type=submit].primary")
    page.wait_for_url(f"{base}/counter/")


def test_the_city_dashboard_in_both_languages(with_data: str, new_context: Any) -> None:  # noqa: F811
    base = with_data
    page = new_context(viewport=DESK, locale="zh-CN").new_page()
    _log_in(page, base, "admin")
    page.click("nav.menu a[href='/counter/dashboard/']")
    page.wait_for_selector("[data-testid=chart-daily]")
    assert "统计看板 · 湖州市" in page.inner_text("h1")
    # every chart is named for a screen reader, every figure has its table
    for key in ("daily", "hourly", "levels", "refusals", "counties"):
        chart = page.locator(f"[data-testid=chart-{key}]")
        assert chart.get_attribute("role") == "img"
        assert chart.locator("title").first.text_content()
    assert page.locator("section.dash-figure table").count() == 10
    assert page.locator("[data-testid=chart-daily] rect.bar").count() == 30
    check(page, "dashboard-city")
    # one county, chosen from the form
    page.select_option("select[name=area]", "330503")
    page.click("[data-testid=dashboard-query] button[type=submit]")
    page.wait_for_selector("[data-testid=chart-daily]")
    assert "南浔区" in page.inner_text("h1")
    check(page)
    # in English
    page.goto(f"{base}/counter/dashboard/?lang=en")
    page.wait_for_selector("[data-testid=chart-daily]")
    assert "Dashboard · Huzhou" in page.inner_text("h1")
    assert page.locator("#fig-levels-h").inner_text().startswith("Fund, account and cash")
    check(page, "dashboard-city-en")
    # a download from the page is the figure's file
    with page.expect_download() as got:
        page.click("#fig-arrears a[href^='/counter/dashboard/arrears.csv']")
    assert got.value.suggested_filename.startswith("yibao-arrears-330500-")


def test_a_county_clerk_s_dashboard_on_a_phone(with_data: str, new_context: Any) -> None:  # noqa: F811
    base = with_data
    page = new_context(viewport=PHONE, locale="zh-CN", accept_downloads=True).new_page()
    _log_in(page, base, "wuxing")
    page.goto(f"{base}/counter/dashboard/")
    page.wait_for_selector("[data-testid=chart-daily]")
    assert "吴兴区" in page.inner_text("h1")
    assert page.locator("select[name=area]").count() == 0
    check(page, "dashboard-county-phone")
    page.goto(f"{base}/counter/dashboard/?lang=en")
    page.wait_for_selector("[data-testid=chart-daily]")
    check(page)
