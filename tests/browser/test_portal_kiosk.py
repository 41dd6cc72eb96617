"""Issue 15 in Chromium: the terminal's language per card session, its PIN
field with a hardware PIN pad and with nothing keyed, and the portal's
first screen, visit list, payment rows and chart on a 390-pixel phone,
every page axe-clean in both languages."""

from __future__ import annotations

from typing import Any

from tests.browser.test_web_pages import (  # noqa: F401
    PHONE,
    browser,
    check,
    demo,
    demo_code,
    kiosk_activate,
    live,
    new_context,
    portal_login,
    server,
)

KIOSK = {"width": 1280, "height": 800}


def test_the_next_card_gets_chinese_and_a_pin_pad_types_into_the_pin_field(
    server: str,  # noqa: F811
    new_context: Any,  # noqa: F811
    demo: dict[str, Any],  # noqa: F811
    demo_code: Any,  # noqa: F811
) -> None:
    context = new_context(viewport=KIOSK, locale="zh-CN")
    page = context.new_page()
    p = demo["persons"][0]
    kiosk_activate(page, server, demo["terminals"][0]["code"], demo_code())
    # the person switches to English
    page.click("nav.langs a")
    page.wait_for_selector("html[lang=en]")
    page.wait_for_selector("#card_no:focus")
    page.keyboard.type(p["card_no"], delay=10)
    page.keyboard.press("Enter")
    page.wait_for_selector(".keypad")
    assert page.locator("html").get_attribute("lang") == "en"
    # 确定 with nothing keyed: said so, and no try used
    page.click(".keypad button[data-key='ok']")
    assert "enter 6 digits" in page.locator("[role=alert]").inner_text()
    check(page)
    # a hardware PIN pad: digits typed into the focused field, then Enter
    page.wait_for_selector("#pin:focus")
    page.keyboard.type("12", delay=10)
    page.keyboard.press("Enter")
    assert "enter 6 digits" in page.locator("[role=alert]").inner_text()
    page.click(".keypad button[data-key='clear']")
    page.click(".keypad button[data-key='1']")  # a touch on the screen keeps the field's focus
    page.keyboard.press("Backspace")
    page.keyboard.type(p["pin"], delay=10)
    assert page.input_value("#pin") == p["pin"]
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/kiosk/home")
    assert page.get_by_test_id("balance").inner_text().startswith("¥")
    assert "Hello" in page.locator("h1").inner_text()
    check(page)
    # 退卡: the next person is greeted in Chinese
    page.click("#logoutform button")
    page.wait_for_selector("#card_no")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert "请插入或刷医保卡" in page.locator("h1").inner_text()
    # English left idle on the start page: back to Chinese by itself (3 s here)
    page.goto(f"{server}/kiosk/?lang=en")
    page.wait_for_selector("html[lang=en]")
    page.wait_for_selector("html[lang=zh-CN]", timeout=10_000)
    check(page)
    context.close()


def _phone(contexts: Any, base: str, person: dict[str, Any]) -> Any:
    """A phone signed in to the portal as ``person``, on the first page."""
    tab = contexts(viewport=PHONE, locale="zh-CN").new_page()
    portal_login(tab, base, person["certno"], person["password"])
    tab.wait_for_url(f"{base}/portal/")
    return tab


def test_the_chart_has_a_value_axis_and_labels_readable_on_a_phone(
    server: str,  # noqa: F811
    new_context: Any,  # noqa: F811
    demo: dict[str, Any],  # noqa: F811
) -> None:
    page = _phone(new_context, server, demo["persons"][0])
    chart = page.locator("svg.chart")
    assert chart.locator("text.axis").count() == 3
    sizes = page.evaluate(
        """() => {
        const svg = document.querySelector("svg.chart");
        const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
        return [...svg.querySelectorAll("text")].map(
            t => parseFloat(getComputedStyle(t).fontSize) * scale);
    }"""
    )
    assert sizes and min(sizes) >= 12, sizes
    check(page)


def test_the_payment_status_is_in_view_on_a_390_pixel_phone(
    server: str,  # noqa: F811
    new_context: Any,  # noqa: F811
    demo: dict[str, Any],  # noqa: F811
) -> None:
    page = _phone(new_context, server, demo["persons"][0])
    page.goto(f"{server}/portal/payments")
    cell = page.locator("tbody tr").first.locator("td").filter(has_text="已缴").first
    box = cell.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    check(page, "portal-payments")
    page.goto(f"{server}/portal/payments?lang=en")
    check(page)


def test_the_first_screen_visits_reset_and_a_loss_report_undone(
    server: str,  # noqa: F811
    new_context: Any,  # noqa: F811
    demo: dict[str, Any],  # noqa: F811
) -> None:
    p = demo["persons"][2]  # the employer is in arrears: benefits suspended
    page = _phone(new_context, server, p)
    assert page.get_by_test_id("card-status").inner_text() == "正常"
    assert page.get_by_test_id("benefit-status").inner_text() == "暂停（欠费）"
    assert "南浔木业股份有限公司" in page.get_by_test_id("arrears").inner_text()
    check(page, "portal-home-suspended")
    page.goto(f"{server}/portal/?lang=en")
    check(page)
    for path in ("visits", "reset"):
        page.goto(f"{server}/portal/{path}?lang=zh")
        check(page)
        page.goto(f"{server}/portal/{path}?lang=en")
        check(page)
    # a loss report, confirmed, and undone with the password
    q = demo["persons"][1]
    page = _phone(new_context, server, q)
    page.click("details.card summary")
    page.click("[data-testid=lost-form] button[type=submit]")
    assert "挂失成功" in page.get_by_test_id("done").inner_text()
    assert page.get_by_test_id("card-status").inner_text() == "已挂失"
    check(page, "portal-lost")
    page.fill("#found_password", "not-the-password1")
    page.click("[data-testid=found-form] button[type=submit]")
    assert "登录密码错误" in page.locator("[role=alert]").inner_text()
    check(page)
    page.fill("#found_password", q["password"])
    page.click("[data-testid=found-form] button[type=submit]")
    assert "解挂成功" in page.get_by_test_id("done").inner_text()
    assert page.get_by_test_id("card-status").inner_text() == "正常"
    check(page)
