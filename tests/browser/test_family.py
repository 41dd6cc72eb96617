"""Family mutual aid in Chromium (issue 16): a holder binds a relative in
the portal, the relative confirms in theirs and sees the payer; every page
axe-clean in both languages."""

from __future__ import annotations

from typing import Any

from tests.browser.test_web_pages import (  # noqa: F401
    PHONE,
    browser,
    check,
    demo,
    live,
    new_context,
    portal_login,
    server,
)


def test_bind_in_the_portal_and_confirm_as_the_relative(
    server: str,  # noqa: F811
    new_context: Any,  # noqa: F811
    demo: dict[str, Any],  # noqa: F811
) -> None:
    holder, relative = demo["persons"][0], demo["persons"][1]
    page = new_context(viewport=PHONE, locale="zh-CN").new_page()
    portal_login(page, server, holder["certno"], holder["password"])
    page.wait_for_url(f"{server}/portal/")
    page.get_by_test_id("family-link").click()
    page.wait_for_url(f"{server}/portal/family")
    check(page, "portal-family")
    page.fill("#family_certno", relative["certno"])
    page.fill("#family_name", relative["name"])
    page.select_option("#family_relation", "spouse")
    page.click("form[action='/portal/family/bind'] button[type=submit]")
    page.wait_for_selector("[data-testid=family-done]")
    assert page.locator("[data-testid=family-relative][data-status=pending]").count() == 1
    check(page)
    page.goto(f"{server}/portal/family?lang=en")
    page.wait_for_selector("html[lang=en]")
    assert "Waiting for the relative's consent" in page.inner_text("main")
    check(page, "portal-family-en")

    other = new_context(viewport=PHONE, locale="zh-CN").new_page()
    portal_login(other, server, relative["certno"], relative["password"])
    other.wait_for_url(f"{server}/portal/")
    other.goto(f"{server}/portal/family")
    pending = other.get_by_test_id("family-pending")
    assert holder["name"] in pending.inner_text()
    check(other)
    pending.locator("form[action='/portal/family/confirm'] button").click()
    other.wait_for_selector("[data-testid=family-done]")
    assert holder["name"] in other.get_by_test_id("family-payer").inner_text()
    check(other, "portal-family-confirmed")
    other.goto(f"{server}/portal/family?lang=en")
    other.wait_for_selector("html[lang=en]")
    assert "Relatives who pay for me" in other.inner_text("main")
    check(other)
