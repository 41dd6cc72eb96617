"""The three web channels in a real browser: Debian's Chromium driven by
Playwright against a real uvicorn server on a free port, with the demo city
in a SQLite database (the services under these pages are tested on both
databases in tests/db and tests/channels). Every page is checked with
axe-core: no serious or critical violations. Screenshots of the main pages
go to docs/screenshots/ with ``YIBAO_SCREENSHOTS=1`` (``make screenshots``).

The pages send a Content-Security-Policy that allows scripts and styles
from yibao's own static files only. Every browser context here reports what
the policy blocked (a ``securitypolicyviolation`` event, a console message):
any blocked script or style fails the test, so that an inline script or
style added to a page is found here, not by a user whose page half works.
axe-core is loaded as an init script (which the policy does not govern),
not as a script tag (which it would block)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 900}

sync_api = pytest.importorskip("playwright.sync_api")


def _missing() -> str | None:
    if not shutil.which("chromium"):
        return "chromium is not installed (make system-deps, as root)"
    if not AXE.exists():
        return "node_modules/axe-core is missing (npm ci)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    why = _missing()
    if why:
        warnings.warn(f"BROWSER TESTS SKIPPED: {why}", stacklevel=1)
        pytest.skip(f"BROWSER TESTS SKIPPED: {why}")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def demo() -> dict[str, Any]:
    """The demo city's identifiers (this module's server runs on SQLite only)."""
    from yibao import demo as demo_service

    return demo_service.fixtures()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(sqlite_templates: dict[str, Path], tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A real uvicorn on 127.0.0.1, on a copy of the demo database; and the
    server's services, for what staff do elsewhere (issue a terminal's code)."""
    import uvicorn

    from tests.conftest import START
    from yibao.app import create_app
    from yibao.clock import FixedClock
    from yibao.config import Settings

    db = tmp_path / "yibao.sqlite3"
    shutil.copy(sqlite_templates["demo"], db)
    settings = Settings(
        database_url=f"sqlite:///{db}",
        var_dir=tmp_path / "var",
        secret_key="browser-test",
        argon2_profile="fast",
        kiosk_idle_seconds=3,
    )
    app = create_app(settings, FixedClock(START))
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app.state.services
    srv.should_exit = True
    thread.join(10)
    app.state.services.engine.dispose()


@pytest.fixture
def server(live: tuple[str, Any]) -> str:
    return str(live[0])


@pytest.fixture
def demo_code(live: tuple[str, Any]) -> Any:
    """A fresh activation code for the demo terminal, as ``yibao demo`` issues it."""
    from yibao import demo as demo_service

    def issue() -> str:
        issued = demo_service.terminal_activation(live[1].uow())
        assert issued is not None, "the demo terminal has a machine bound already"
        return issued.activation_code

    return issue


# Run in every document before its own scripts: what the policy blocks is kept.
CSP_WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.effectiveDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


class Contexts:
    """Makes browser contexts with axe-core loaded and the policy's refusals
    watched, in every page: ``refused`` keeps what the console said."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.made: list[Any] = []
        self.refused: list[str] = []

    def _watch(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.refused.append(message.text)

    def __call__(self, **options: Any) -> Any:
        context = self.browser.new_context(**options)
        context.set_default_timeout(10_000)
        context.add_init_script(path=str(AXE))
        context.add_init_script(script=CSP_WATCH)
        context.on("console", self._watch)
        self.made.append(context)
        return context


@pytest.fixture
def new_context(browser: Any) -> Iterator[Contexts]:
    """Browser contexts; at the end, the policy may have refused nothing in
    any of their pages."""
    contexts = Contexts(browser)
    yield contexts
    for context in contexts.made:
        context.close()
    assert contexts.refused == [], contexts.refused


@pytest.fixture
def page(new_context: Contexts) -> Any:
    context = new_context(viewport=PHONE, locale="zh-CN", accept_downloads=True)
    return context.new_page()


def check(page: Any, name: str | None = None) -> None:
    """axe-core on the page as it is: no serious or critical violations, and
    nothing blocked by the Content-Security-Policy; and a screenshot."""
    assert page.evaluate("() => window.__csp") == []
    result = page.evaluate("async () => await axe.run(document)")
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, json.dumps(
        [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
            for v in bad
        ],
        indent=1,
    )
    if name and os.environ.get("YIBAO_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def portal_login(page: Any, base: str, login_id: str, password: str) -> None:
    page.goto(f"{base}/portal/login")
    page.fill("#login_id", login_id)
    page.fill("#password", password)
    page.click("button[type=submit].primary")


def test_portal_by_id_number_and_account_number_balance_statement(
    server: str, page: Any, demo: dict[str, Any]
) -> None:
    p = demo["persons"][0]
    page.goto(f"{server}/portal/login")
    check(page, "portal-login")
    portal_login(page, server, p["certno"], p["password"])
    page.wait_for_url(f"{server}/portal/")
    balance = page.get_by_test_id("balance")
    assert balance.inner_text().startswith("¥")
    # the balance is the first thing in the page, large
    box = balance.bounding_box()
    assert box is not None and box["y"] < 300
    size = page.evaluate("() => getComputedStyle(document.querySelector('.amount')).fontSize")
    assert float(size.rstrip("px")) >= 36
    assert page.get_by_test_id("card-status").inner_text() == "正常"
    check(page, "portal-home")
    for path, name in [
        ("postings", "portal-postings"),
        ("payments", "portal-payments"),
        ("rights", None),
        ("password", None),
        ("statement", None),
    ]:
        page.goto(f"{server}/portal/{path}")
        check(page, name)
    # the period filter swaps the table in place (HTMX)
    page.goto(f"{server}/portal/postings")
    page.fill("#start", "2026-10-01")
    page.fill("#end", "2026-10-31")
    page.click("main form button[type=submit]")
    page.wait_for_selector("caption:has-text('2026-10-01')")
    # a period the wrong way round: the service says so, in the same place
    page.fill("#start", "2026-10-31")
    page.fill("#end", "2026-10-01")
    page.click("main form button[type=submit]")
    page.wait_for_selector("#postings [role=alert]:has-text('开始日期晚于结束日期')")
    check(page)
    page.goto(f"{server}/portal/statement")
    with page.expect_download() as download:
        page.click("main form button[type=submit]")
    path = download.value.path()
    assert Path(path).read_bytes().startswith(b"%PDF")
    page.goto(f"{server}/portal/voucher")
    page.wait_for_selector("#voucher svg")
    check(page, "portal-voucher")
    page.click("nav.menu button[type=submit]")  # log out
    page.wait_for_url(f"{server}/portal/login")
    # by the account number, in English
    portal_login(page, server, p["account_no"], p["password"])
    page.wait_for_url(f"{server}/portal/")
    page.goto(f"{server}/portal/?lang=en")
    assert "Individual account balance" in page.content()
    check(page, "portal-home-en")
    page.goto(f"{server}/portal/activate")
    check(page)


def test_portal_lockout(server: str, page: Any, demo: dict[str, Any]) -> None:
    p = demo["persons"][1]
    for _ in range(5):
        portal_login(page, server, p["certno"], "not-the-password")
    assert "已锁定" in page.locator("[role=alert]").inner_text()
    portal_login(page, server, p["certno"], p["password"])
    assert "15分钟" in page.locator("[role=alert]").inner_text()
    check(page, "portal-locked")


def kiosk_activate(page: Any, base: str, terminal: str, code: str) -> None:
    """The terminal's set-up: staff type the terminal code and the activation code."""
    page.goto(f"{base}/kiosk/")
    page.fill("#terminal", terminal)
    page.fill("#activation_code", code)
    page.click("[data-testid=activate-form] button[type=submit]")
    page.wait_for_selector("#card_no")


def kiosk_sign_in(page: Any, base: str, card_no: str, pin: str) -> None:
    page.goto(f"{base}/kiosk/")
    page.wait_for_selector("#card_no:focus")
    # the card reader is a keyboard: it types the number and Enter
    page.keyboard.type(card_no, delay=10)
    page.keyboard.press("Enter")
    page.wait_for_selector(".keypad")
    for digit in pin:
        page.click(f".keypad button[data-key='{digit}']")
    page.click(".keypad button[data-key='ok']")


def test_kiosk_card_reader_pin_balance_and_idle_timeout(
    server: str, new_context: Any, demo: dict[str, Any], demo_code: Any
) -> None:
    context = new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    p = demo["persons"][0]
    terminal = demo["terminals"][0]["code"]
    page.goto(f"{server}/kiosk/?terminal={terminal}")  # naming a terminal selects none
    assert page.locator("#card_no").count() == 0
    assert page.locator("[data-testid=activate-form]").count() == 1
    assert demo["terminals"][1]["code"] not in page.content()  # and none are listed
    # a wrong code is refused and said so, in Chinese and in English
    page.fill("#terminal", terminal)
    page.fill("#activation_code", "WRONG234")
    page.click("[data-testid=activate-form] button[type=submit]")
    assert "激活码错误" in page.locator("[role=alert]").inner_text()
    check(page)
    page.goto(f"{server}/kiosk/?lang=en")
    check(page)
    page.goto(f"{server}/kiosk/?lang=zh")
    # the link ``yibao demo`` prints fills the form in
    code = demo_code()
    page.goto(f"{server}/kiosk/activate?terminal={terminal}&code={code}")
    assert page.input_value("#activation_code") == code
    page.click("[data-testid=activate-form] button[type=submit]")
    page.wait_for_selector("#card_no")
    cookie = next(c for c in context.cookies() if c["name"] == "yb_kiosk_device")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/kiosk"
    check(page, "kiosk-start")
    page.goto(f"{server}/kiosk/")
    page.keyboard.type(p["card_no"], delay=10)
    page.keyboard.press("Enter")
    page.wait_for_selector(".keypad")
    for digit in "000001":
        page.click(f".keypad button[data-key='{digit}']")
    page.click(".keypad button[data-key='ok']")
    assert "还可尝试2次" in page.locator("[role=alert]").inner_text()
    check(page, "kiosk-pin")
    page.click(".keypad button[data-key='clear']")
    for digit in p["pin"]:
        page.click(f".keypad button[data-key='{digit}']")
    page.click(".keypad button[data-key='ok']")
    page.wait_for_url(f"{server}/kiosk/home")
    assert page.get_by_test_id("balance").inner_text().startswith("¥")
    assert page.locator(".lines li").count() >= 1
    check(page, "kiosk-balance")
    # no touch for the idle time (3 s here, 60 s in service): back to the start
    page.wait_for_selector("#card_no", timeout=10_000)
    assert page.url.rstrip("/").endswith("/kiosk")
    page.goto(f"{server}/kiosk/home")
    assert page.locator("#card_no").count() == 1  # the person is forgotten
    # the logout button (card taken away)
    kiosk_sign_in(page, server, p["card_no"], p["pin"])
    page.wait_for_url(f"{server}/kiosk/home")
    page.click("#logoutform button")
    page.wait_for_selector("#card_no")
    # another browser with the same code: refused, and no terminal
    other = new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    second = other.new_page()
    second.goto(f"{server}/kiosk/activate?terminal={terminal}&code={code}")
    second.click("[data-testid=activate-form] button[type=submit]")
    assert "激活码错误" in second.locator("[role=alert]").inner_text()
    assert second.locator("#card_no").count() == 0
    other.close()
    context.close()


def test_counter_scope_loss_report_seen_by_portal_and_kiosk(
    server: str, new_context: Any, demo: dict[str, Any], demo_code: Any
) -> None:
    context = new_context(viewport=DESK, locale="zh-CN")
    page = context.new_page()
    inside, outside = demo["persons"][0], demo["persons"][2]
    page.goto(f"{server}/counter/login")
    check(page, "counter-login")
    page.fill("#username", "wuxing")
    page.fill("#password", "yibao-demo-2026")
    page.click("form button[type=submit].primary")
    page.wait_for_url(f"{server}/counter/")
    check(page)
    # outside the clerk's area: not found
    page.fill("#certno", outside["certno"])
    page.click("main form button[type=submit]")
    page.wait_for_selector("[data-testid=not-found]")
    # inside: found by ID number
    page.fill("#certno", inside["certno"])
    page.click("main form button[type=submit]")
    page.wait_for_selector("[data-testid=result]")
    check(page, "counter-search")
    page.select_option("[data-testid=result] select", "id_card")
    page.click("[data-testid=result] button[type=submit]")
    page.wait_for_url(f"{server}/counter/person/{inside['account_no']}")
    check(page, "counter-person")
    page.click("[data-testid=lost-form] button[type=submit]")
    page.wait_for_selector("[data-testid=result]")
    assert "已挂失" in page.get_by_test_id("card-status").inner_text()
    for path in ("applications?view=due", "applications?view=overdue", "batch"):
        page.goto(f"{server}/counter/{path}")
        check(page, "counter-batch" if path == "batch" else None)
    context.close()
    # the person sees it on the portal ...
    context = new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    portal_login(page, server, inside["certno"], inside["password"])
    page.wait_for_url(f"{server}/portal/")
    assert page.get_by_test_id("card-status").inner_text() == "已挂失"
    context.close()
    # ... and the terminal opens nothing with it: it says why, in both languages
    context = new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    kiosk_activate(page, server, demo["terminals"][0]["code"], demo_code())
    kiosk_sign_in(page, server, inside["card_no"], inside["pin"])
    page.wait_for_url(f"{server}/kiosk/home")
    assert "该卡已挂失，不能使用" in page.locator("[role=alert]").inner_text()
    assert page.get_by_test_id("balance").count() == 0 and page.locator("#card_no").count() == 1
    check(page)
    page.goto(f"{server}/kiosk/?lang=en")
    kiosk_sign_in(page, server, inside["card_no"], inside["pin"])
    page.wait_for_url(f"{server}/kiosk/home")
    assert "the card is lost; it cannot be used" in page.locator("[role=alert]").inner_text()
    assert page.get_by_test_id("balance").count() == 0
    check(page)
    context.close()


def test_counter_issues_a_terminal_code_and_the_terminal_activates_with_it(
    server: str, new_context: Any, demo: dict[str, Any]
) -> None:
    context = new_context(viewport=DESK, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{server}/counter/login")
    page.fill("#username", "wuxing_admin")
    page.fill("#password", "yibao-demo-2026")
    page.click("form button[type=submit].primary")
    page.wait_for_url(f"{server}/counter/")
    page.click("nav.menu a[href='/counter/terminals']")
    page.wait_for_selector("[data-testid=terminals]")
    rows = page.locator("[data-testid=terminals] tbody tr")
    assert rows.count() == 1 and "T-HZZX-01" in rows.first.inner_text()  # their area only
    check(page)
    page.click("tr[data-terminal='T-HZZX-01'] form[action$='/issue'] button")
    code = page.get_by_test_id("activation-code").inner_text()
    assert len(code) == 8
    check(page)
    kiosk = new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    machine = kiosk.new_page()
    kiosk_activate(machine, server, "T-HZZX-01", code)
    assert "T-HZZX-01" in machine.locator("footer").inner_text()
    page.goto(f"{server}/counter/terminals")
    assert "已激活" in page.locator("tr[data-terminal='T-HZZX-01']").inner_text()
    page.click("tr[data-terminal='T-HZZX-01'] form[action$='/deactivate'] button")
    page.wait_for_selector("text=已停用终端")
    machine.goto(f"{server}/kiosk/")
    assert machine.locator("#card_no").count() == 0
    assert "凭证已失效" in machine.locator("[role=alert]").inner_text()
    kiosk.close()
    context.close()


def test_a_suspended_person_sees_the_balance_and_the_suspension(
    server: str, new_context: Any, live: tuple[str, Any], demo: dict[str, Any], demo_code: Any
) -> None:
    from tests.channels.states import suspend

    p = demo["persons"][0]
    suspend(live[1], p["certno"])
    context = new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    portal_login(page, server, p["certno"], p["password"])
    page.wait_for_url(f"{server}/portal/")
    assert page.get_by_test_id("balance").inner_text().startswith("¥")
    assert "欠费暂停" in page.get_by_test_id("suspended").inner_text()
    check(page)
    page.goto(f"{server}/portal/?lang=en")
    assert "suspended for unpaid contributions" in page.get_by_test_id("suspended").inner_text()
    check(page)
    context.close()
    context = new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    kiosk_activate(page, server, demo["terminals"][0]["code"], demo_code())
    kiosk_sign_in(page, server, p["card_no"], p["pin"])
    page.wait_for_url(f"{server}/kiosk/home")
    assert page.get_by_test_id("balance").inner_text().startswith("¥")
    assert "欠费暂停" in page.get_by_test_id("suspended").inner_text()
    check(page)
    page.goto(f"{server}/kiosk/home?lang=en")
    assert "suspended for unpaid contributions" in page.get_by_test_id("suspended").inner_text()
    check(page)
    context.close()


def test_a_person_whose_insurance_ended_is_told_so_on_the_portal(
    server: str, page: Any, live: tuple[str, Any], demo: dict[str, Any]
) -> None:
    from tests.channels.states import set_person

    p = demo["persons"][1]
    set_person(live[1], p["certno"], "deceased")
    portal_login(page, server, p["certno"], p["password"])
    page.wait_for_url(f"{server}/portal/")
    assert "参保关系已终止" in page.locator("[role=alert]").inner_text()
    assert page.get_by_test_id("balance").count() == 0
    check(page)
    page.goto(f"{server}/portal/postings?lang=en")
    assert "insurance relation has ended" in page.locator("[role=alert]").inner_text()
    check(page)


def test_the_pages_run_no_script_but_yibaos_own(
    server: str, page: Any, new_context: Contexts
) -> None:
    """Markup an attacker got into a page runs nothing: an inline script and
    an inline style are refused by the Content-Security-Policy (and the watch
    the other tests rely on sees it), while htmx from /web-static/ runs."""
    page.goto(f"{server}/portal/login")
    assert page.evaluate("() => typeof htmx") == "object"
    page.evaluate(
        """() => {
        const s = document.createElement("script");
        s.textContent = "window.injected = true";
        document.head.appendChild(s);
        const p = document.createElement("p");
        p.setAttribute("style", "color: rgb(255, 0, 0)");
        p.id = "styled";
        document.body.appendChild(p);
    }"""
    )
    page.wait_for_function("() => window.__csp.length >= 2")
    assert page.evaluate("() => window.injected") is None
    color = page.evaluate("() => getComputedStyle(document.getElementById('styled')).color")
    assert color != "rgb(255, 0, 0)"
    blocked = page.evaluate("() => window.__csp")
    assert any(b.startswith("script-src") for b in blocked), blocked
    assert any(b.startswith("style-src") for b in blocked), blocked
    deadline = time.monotonic() + 10  # the console's copies come after the events
    while len(new_context.refused) < 2:
        assert time.monotonic() < deadline, new_context.refused
        page.wait_for_timeout(20)
    new_context.refused.clear()  # expected here, and only here
    page.evaluate("() => { window.__csp = []; }")
