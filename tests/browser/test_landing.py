"""The start page at ``/`` in a real browser (issue 15): in Chinese and in
English, free of serious or critical axe-core violations, under the pages'
Content-Security-Policy, and its links lead to the channels."""

from __future__ import annotations

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


def test_the_start_page_in_both_languages_leads_to_every_channel(page, server):  # noqa: F811
    answer = page.goto(f"{server}/")
    assert answer is not None and answer.status == 200
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "医保卡服务"
    check(page, "landing")
    for name in ("登录网上服务", "工作人员登录", "激活自助终端", "用人单位登录", "打开接口文档"):
        assert page.get_by_role("link", name=name).count() == 1, name
    assert page.get_by_text("yibao phone", exact=True).count() == 1

    page.get_by_role("link", name="English").click()
    page.wait_for_url(f"{server}/?lang=en")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Medical insurance card service"
    check(page, "landing-en")

    page.get_by_role("link", name="Log in to the online service").click()
    page.wait_for_url(f"{server}/portal/login")
    assert page.locator("html").get_attribute("lang") == "en"  # the choice went along
    page.go_back()
    page.get_by_role("link", name="Activate a terminal").click()
    page.wait_for_url(f"{server}/kiosk/activate")
    assert page.locator("#activation_code").count() == 1


def test_the_start_page_on_a_desk_screen(new_context, server):  # noqa: F811
    desk = new_context(viewport=DESK, locale="zh-CN").new_page()
    desk.goto(f"{server}/")
    check(desk, "landing-desk")
    desk.get_by_role("link", name="工作人员登录").click()
    desk.wait_for_url(f"{server}/counter/login")
