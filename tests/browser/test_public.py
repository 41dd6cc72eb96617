"""The public look-ups in a real browser (issue 16): from the landing page,
without logging in, filtered and paged, in Chinese and English, free of
serious axe-core violations; and the counter's maintenance page."""

from __future__ import annotations

from typing import Any

# the real uvicorn server, Chromium and axe-core of the web pages' browser tests
from tests.browser.test_web_pages import (  # noqa: F401
    DESK,
    browser,
    check,
    live,
    new_context,
    page,
    server,
)


def test_the_look_ups_from_the_landing_page_without_login(server, page):  # noqa: F811
    page.goto(f"{server}/")
    page.click("[data-testid=public-look-ups] a[href='/public/institutions']")
    page.wait_for_selector("[data-testid=institutions]")
    assert page.locator("[data-testid=institutions] tbody tr").count() == 4
    check(page, "public-institutions")
    page.select_option("#kind", "hospital")
    page.select_option("#offsite", "yes")
    page.click("form[role=search] button[type=submit]")
    page.wait_for_url("**/public/institutions?*")
    rows = page.locator("[data-testid=institutions] tbody tr")
    assert rows.count() == 2 and "湖州市中心医院" in rows.first.inner_text()
    check(page)

    page.click("nav.menu a[href='/public/catalogue']")
    page.wait_for_selector("[data-testid=catalogue]")
    assert page.locator("[data-testid=catalogue] tbody tr").count() == 20
    check(page, "public-catalogue")
    page.click("a[rel=next]")
    page.wait_for_selector("a[rel=prev]")
    page.fill("#q", "奥美拉唑")
    page.click("form[role=search] button[type=submit]")
    page.wait_for_selector("[data-testid=catalogue]")
    row = page.locator("[data-testid=catalogue] tbody tr")
    assert row.count() == 1 and "10.00%" in row.inner_text() and "28.60" in row.inner_text()
    # a bad value is shown on the page, naming the field
    page.goto(f"{server}/public/catalogue?category=Z")
    assert "类别" in page.locator("[role=alert]").inner_text()
    check(page)


def test_the_look_ups_in_english(server, new_context):  # noqa: F811
    context = new_context(viewport=DESK, locale="en-US")
    tab = context.new_page()
    tab.goto(f"{server}/public/institutions?lang=en")
    tab.wait_for_selector("[data-testid=institutions]")
    assert tab.locator("html").get_attribute("lang") == "en"
    assert "Designated institutions" in tab.inner_text("h1")
    check(tab, "public-institutions-en")
    tab.goto(f"{server}/public/catalogue?category=B")
    tab.wait_for_selector("[data-testid=catalogue]")
    assert "Category B" in tab.locator("[data-testid=catalogue] tbody tr").first.inner_text()
    check(tab, "public-catalogue-en")


def test_the_counter_keeps_the_directory(server, new_context):  # noqa: F811
    context = new_context(viewport=DESK, locale="zh-CN")
    tab: Any = context.new_page()
    tab.goto(f"{server}/counter/login")
    tab.fill("#username", "admin")
    tab.fill("#password", "yibao-demo-2026")
    tab.click("form button[type=submit].primary")
    tab.wait_for_url(f"{server}/counter/")
    tab.click("nav.menu a[href='/counter/directory/']")
    tab.wait_for_selector("[data-testid=changes]")
    check(tab, "counter-directory")
    tab.fill("#address-H33050300001", "湖州市南浔区浏览器路1号")
    tab.click("form[aria-label=H33050300001] button[type=submit]")
    tab.wait_for_selector("[role=status]")
    assert "湖州市南浔区浏览器路1号" in tab.inner_text("[data-testid=changes]")
    check(tab)
    tab.goto(f"{server}/counter/directory/?lang=en")
    tab.wait_for_selector("[data-testid=changes]")
    check(tab)
