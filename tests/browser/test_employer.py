"""The employer's channel in Chromium (issue 15): the county center issues
the activation code, the employer sets its password and signs in, keeps its
roll, reads its contributions, arrears and each employee's months, and
uploads a batch; every page free of serious or critical axe-core
violations in Chinese and in English, and nothing refused by the
Content-Security-Policy."""

from __future__ import annotations

from typing import Any

from tests.browser.test_web_pages import (  # noqa: F401
    browser,
    check,
    demo,
    live,
    new_context,
    page,
    server,
)
from tests.db.employees import add_employee
from tests.helpers import add_person, new_certno


def employer_login(tab: Any, base: str, uscc: str, password: str) -> None:
    tab.goto(f"{base}/employer/login")
    tab.fill("#uscc", uscc)
    tab.fill("#password", password)
    tab.click("button[type=submit].primary")


def both_languages(tab: Any, url: str, name: str | None = None) -> None:
    """The page checked in English, then in Chinese, which it is left in."""
    tab.goto(url + ("&" if "?" in url else "?") + "lang=en")
    check(tab)
    tab.goto(url + ("&" if "?" in url else "?") + "lang=zh")
    check(tab, name)


def test_the_county_center_issues_the_code_and_the_employer_sets_its_password(
    server: str,  # noqa: F811
    page: Any,  # noqa: F811
    demo: dict[str, Any],  # noqa: F811
) -> None:
    e = demo["employers"][0]
    page.goto(f"{server}/counter/login")
    page.fill("#username", "wuxing")
    page.fill("#password", "yibao-demo-2026")
    page.click("button[type=submit].primary")
    page.click("text=单位激活码")
    page.fill("#employer_uscc", e["uscc"])
    page.click("button[type=submit].primary")
    code = page.inner_text("[data-testid=employer-code]").strip()
    assert len(code) == 10
    both_languages(page, f"{server}/counter/employer-code")
    page.context.clear_cookies()
    page.goto(f"{server}/employer/activate")
    check(page)
    page.fill("#uscc", e["uscc"])
    page.fill("#code", code)
    page.fill("#password", "Zhili@2027")
    page.fill("#password2", "Zhili@2027")
    page.click("button[type=submit].primary")
    assert "密码已设置" in page.inner_text("main")
    both_languages(page, f"{server}/employer/login", "employer-login")
    employer_login(page, server, e["uscc"], "Zhili@2027")
    assert page.url.endswith("/employer/") and e["name"] in page.inner_text("main")


def test_the_employer_keeps_its_roll_reads_its_money_and_uploads_a_batch(
    live: tuple[str, Any],  # noqa: F811
    page: Any,  # noqa: F811
    demo: dict[str, Any],  # noqa: F811
) -> None:
    base, services = live
    e = demo["employers"][1]  # 南浔木业, three months in arrears
    newcomer = add_person(services.uow(), name="浏览器新人", division="330503001", paid=False)
    employee = add_employee(services.uow(), e["uscc"], name="浏览器员工", division="330503001")
    stranger = add_person(services.uow(), name="浏览器路人", division="330503001")
    employer_login(page, base, e["uscc"], e["password"])
    assert page.inner_text("[data-testid=roll-count]").startswith("3")
    assert "2026-08、2026-09、2026-10" in page.inner_text("main")
    both_languages(page, f"{base}/employer/", "employer-home")

    # a hire, refused before the month and taken from it
    page.goto(f"{base}/employer/roll")
    page.fill("#certno", newcomer.certno)
    page.fill("#name", "浏览器新人")
    page.fill("#start", "2026-10-01")
    page.click("#hire-h ~ form button[type=submit]")
    assert "入职日期不能早于本月1日" in page.inner_text("[role=alert]")
    assert page.input_value("#certno") == newcomer.certno
    check(page)
    page.fill("#start", "2026-11-02")
    page.click("#hire-h ~ form button[type=submit]")
    assert "已增员" in page.inner_text("[role=status]")
    assert "浏览器新人" in page.inner_text("[data-testid=roll]")
    both_languages(page, f"{base}/employer/roll", "employer-roll")
    # a leaver
    page.select_option("#account_no", newcomer.account_no)
    page.fill("#end", "2026-11-20")
    page.click("#leave-h ~ form button[type=submit]")
    assert "已减员" in page.inner_text("[role=status]")
    assert "浏览器新人" in page.inner_text("[data-testid=former]")
    check(page)

    # the money: each month, the arrears, and one employee's months
    page.goto(f"{base}/employer/contributions")
    assert "欠缴3个月" in page.inner_text("[data-testid=arrears]")
    both_languages(page, f"{base}/employer/contributions", "employer-contributions")
    li_na = demo["persons"][2]
    page.goto(f"{base}/employer/roll")
    page.click(f"a[href='/employer/roll/{li_na['account_no']}']")
    months = page.inner_text("[data-testid=employee-months]")
    assert "已缴" in months and "欠缴" in months
    both_languages(page, f"{base}/employer/roll/{li_na['account_no']}")

    # the batch: the stranger refused by row, the employee accepted
    page.goto(f"{base}/employer/batch")
    check(page)
    page.fill("#handler_certno", new_certno("330503"))
    page.fill("#handler_name", "浏览器经办")
    page.set_input_files(
        "#file",
        files=[
            {
                "name": "list.csv",
                "mimeType": "text/csv",
                "buffer": (
                    f"身份证号码,姓名\n{stranger.certno},浏览器路人\n{employee.certno},浏览器员工\n"
                ).encode(),
            }
        ],
    )
    page.click("form[action='/employer/batch'] button[type=submit]")
    rows = page.inner_text("[data-testid=batch-rows]")
    assert "该人员不在本单位参保人员名单中" in rows and "浏览器员工" in rows
    both_languages(page, f"{base}/employer/batch", "employer-batch")
    page.goto(f"{base}/employer/batch?lang=en")
    assert "not on this employer's roll" in page.inner_text("main")
    page.goto(f"{base}/employer/password?lang=zh")
    both_languages(page, f"{base}/employer/password")
