"""Issue 15 at the counter, in Chromium: a service point completes the card
it took and hands it over; a returned card is cancelled there after a
confirmation page; the home page counts the enrolment reviews. Every page
axe-clean in Chinese and in English."""

from __future__ import annotations

import datetime as dt
from typing import Any

# the real uvicorn server and Chromium of the web pages' browser tests
from tests.browser.test_web_pages import (  # noqa: F401
    DESK,
    browser,
    check,
    demo,
    live,
    new_context,
    server,
)
from tests.helpers import FUND_CLERK, new_certno
from yibao.domain.actors import Channel
from yibao.services.contributions import enrolment

ALL = ["id_card", "id_card_copy", "photo", "resignation_papers", "household_register_copy"]
FORM = {"resigned_on": "2026-10-31", "debit_bank": "工商银行", "debit_account": "6222020000000001"}


def counter_login(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/counter/login")
    page.fill("#username", username)
    page.fill("#password", "yibao-demo-2026")
    page.click("form button[type=submit].primary")
    page.wait_for_url(f"{base}/counter/")


def open_person(page: Any, base: str, person: dict[str, Any]) -> None:
    page.fill("#certno", person["certno"])
    page.click("main form button[type=submit]")
    page.wait_for_selector("[data-testid=result]")
    page.select_option("[data-testid=result] select", "id_card")
    page.click("[data-testid=result] button[type=submit]")
    page.wait_for_url(f"{base}/counter/person/{person['account_no']}")


def test_a_service_point_completes_its_card_and_cancels_a_returned_one(
    server: str,  # noqa: F811
    live: Any,  # noqa: F811
    new_context: Any,  # noqa: F811
    demo: dict[str, Any],  # noqa: F811
) -> None:
    enrolment.submit(
        live[1].uow(), actor=FUND_CLERK, channel=Channel.API,
        certno=new_certno("330502", dt.date(1988, 2, 3)), name="吴芳",
        division_code="330502001", materials=ALL, subsidy_form=FORM,
    )  # fmt: skip
    context = new_context(viewport=DESK, locale="zh-CN")
    page = context.new_page()
    counter_login(page, server, "yuehe")
    assert "待审核参保申请" in page.get_by_test_id("review-count").inner_text()
    check(page)
    page.click("nav a[href='/counter/enrolments']")
    page.wait_for_selector("[data-testid=enrolment-row]")
    check(page, "counter-enrolments")
    # the due list: the applicant's card, taken at this service point
    applicant = demo["applicants"][0]
    page.goto(f"{server}/counter/applications?view=due")
    ready = page.locator("form[data-testid^=ready-]").first
    card_no = ready.get_attribute("data-testid").removeprefix("ready-")
    check(page, "counter-due")
    ready.locator("button").click()
    page.wait_for_selector("[data-testid=result]")
    assert "已登记制卡完成" in page.get_by_test_id("result").inner_text()
    check(page)
    # the applicant comes: 发卡 hands it over now
    page.goto(f"{server}/counter/")
    open_person(page, server, applicant)
    assert page.get_by_test_id("card-status").inner_text().startswith("待领取")
    page.fill("#collect_card", card_no)
    page.click(f"form[action='/counter/person/{applicant['account_no']}/collect'] button")
    page.wait_for_selector("[data-testid=result]")
    assert "已领卡" in page.get_by_test_id("result").inner_text()
    assert page.get_by_test_id("card-status").inner_text().startswith("正常")
    # a card handed back is cancelled here, after a confirmation page
    zhang = demo["persons"][0]
    page.goto(f"{server}/counter/")
    open_person(page, server, zhang)
    page.fill("#cancel_reason", "出国定居，卡已交回")
    page.click("[data-testid=cancel-form] button[type=submit]")
    page.wait_for_selector("[data-testid=confirm]")
    assert zhang["card_no"] in page.get_by_test_id("confirm").inner_text()
    check(page, "counter-confirm")
    assert page.get_by_test_id("card-status").count() == 0  # nothing done yet
    page.click("[data-testid=confirm-button]")
    page.wait_for_selector("[data-testid=result]")
    assert page.get_by_test_id("card-status").inner_text().startswith("已注销")
    check(page)
    # the same pages in English
    page.goto(f"{server}/counter/?lang=en")
    assert "Enrolment applications waiting for review" in page.inner_text("main")
    check(page)
    page.goto(f"{server}/counter/enrolments")
    assert "Waiting for review" in page.inner_text("main")
    check(page)
    page.goto(f"{server}/counter/applications?view=due")
    check(page)
    page.goto(f"{server}/counter/person/{zhang['account_no']}")
    assert "Mark ready for pickup" in page.inner_text("main")
    check(page)
    context.close()


def test_closing_an_account_is_confirmed_in_english_too(
    server: str,  # noqa: F811
    new_context: Any,  # noqa: F811
    demo: dict[str, Any],  # noqa: F811
) -> None:
    context = new_context(viewport=DESK, locale="zh-CN")
    page = context.new_page()
    counter_login(page, server, "wuxing")
    page.goto(f"{server}/counter/?lang=en")
    person = demo["persons"][1]
    open_person(page, server, person)
    page.select_option("#close_kind", "transfer_out")
    page.fill("#close_destination", "999999")
    page.click("[data-testid=close-form] button[type=submit]")
    page.wait_for_selector("[role=alert]")
    assert "999999 is not a division code in use" in page.inner_text("main")
    check(page)
    page.select_option("#close_kind", "transfer_out")
    page.fill("#close_destination", "310101")
    page.click("[data-testid=close-form] button[type=submit]")
    page.wait_for_selector("[data-testid=confirm]")
    text = page.get_by_test_id("confirm").inner_text()
    assert "will be carried with the relation to 310101" in text and person["card_no"] in text
    check(page, "counter-confirm-close")
    page.click("[data-testid=confirm-button]")
    page.wait_for_selector("[data-testid=result]")
    assert "Account closed" in page.get_by_test_id("result").inner_text()
    check(page)
    context.close()
