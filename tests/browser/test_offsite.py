"""Care in another area (异地就医备案, issue 16) in a real browser: the
person files and cancels on the portal, a refusal names the field, and the
page is free of serious accessibility violations in Chinese and English."""

from __future__ import annotations

from typing import Any

from tests.browser.test_web_pages import (  # noqa: F401
    browser,
    check,
    demo,
    live,
    new_context,
    page,
    portal_login,
    server,
)


def test_file_and_cancel_on_the_portal_in_both_languages(
    server: str,  # noqa: F811
    page: Any,  # noqa: F811
    demo: dict[str, Any],  # noqa: F811
) -> None:
    p = demo["persons"][2]
    portal_login(page, server, p["account_no"], p["password"])
    page.wait_for_url(f"{server}/portal/")
    page.get_by_test_id("offsite-link").click()
    page.wait_for_url(f"{server}/portal/offsite")
    check(page, "portal-offsite")
    # a referral without its last day: refused, naming it, with what was typed
    page.select_option("#offsite_kind", "referral")
    page.fill("#offsite_area", "310101")
    page.fill("#offsite_start", "2026-11-23")
    page.click("[data-testid=offsite-form] button[type=submit]")
    alert = page.get_by_test_id("error")
    assert "转诊转院备案须填写结束日期" in alert.inner_text()
    assert page.input_value("#offsite_area") == "310101"
    check(page)
    page.fill("#offsite_end", "2026-12-31")
    page.click("[data-testid=offsite-form] button[type=submit]")
    page.get_by_test_id("done").wait_for()
    assert page.get_by_test_id("offsite-state").inner_text() == "有效"
    check(page)
    page.goto(f"{server}/portal/offsite?lang=en")
    assert page.get_by_test_id("offsite-state").inner_text() == "Active"
    assert "Care in another area" in page.inner_text("h1")
    check(page, "portal-offsite-en")
    page.get_by_test_id("offsite-cancel").click()
    page.get_by_test_id("done").wait_for()
    assert page.get_by_test_id("offsite-state").inner_text() == "Cancelled"
    assert page.get_by_test_id("offsite-cancel").count() == 0
    check(page)
    page.goto(f"{server}/portal/offsite?lang=zh")
    assert page.get_by_test_id("offsite-state").inner_text() == "已撤销"
