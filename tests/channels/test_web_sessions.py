"""Sessions kept on the server (issue 14): a copy of a session cookie taken
before log-out, before a password change or before the card was taken out
of a terminal opens nothing afterwards; the password page counts wrong
passwords towards the log-in's lock; every page sends the security headers.

Before, portal and terminal sessions were signed cookies only: a copy kept
working for up to 30 minutes (a day at a terminal), and ten wrong current
passwords on the password page each got 422 with the right one still
working."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.channels.test_web_forms import (
    activate_kiosk,
    audited,
    counter_login,
    csrf_of,
    kiosk_pin,
    portal_login,
)


def copy_of(client, app, names):
    """Another browser holding a copy of ``client``'s cookies ``names``."""
    other = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    for cookie in client.cookies.jar:
        if cookie.name in names:
            other.cookies.set(cookie.name, cookie.value, domain=cookie.domain, path=cookie.path)
    return other


def signed_in_portal(r) -> bool:
    return r.status_code == 200 and 'data-testid="balance"' in r.text


# ---------------------------------------------------------------- the portal


def test_a_copied_portal_cookie_stops_working_at_log_out(client, app, demo, services):
    p = demo["persons"][0]
    token = csrf_of(portal_login(client, p["certno"], p["password"]).text)
    thief = copy_of(client, app, {"yb_portal", "yb_portal_session"})
    assert signed_in_portal(thief.get("/portal/"))
    # a log-out without the page's token is refused: nothing ends
    client.post("/portal/logout", data={"csrf": "forged"})
    assert signed_in_portal(thief.get("/portal/"))
    r = client.post("/portal/logout", data={"csrf": token})
    assert str(r.url).endswith("/portal/login")
    for browser in (client, thief):
        r = browser.get("/portal/")
        assert str(r.url).endswith("/portal/login") and 'data-testid="balance"' not in r.text
    assert thief.get("/portal/statement.pdf").headers["content-type"].startswith("text/html")
    assert [(kind, channel) for kind, _, channel, _ in audited(services, "portal.logout")] == [
        ("person", "portal")
    ]


def test_a_copied_portal_cookie_stops_working_at_a_password_change(client, app, demo):
    p = demo["persons"][0]
    token = csrf_of(portal_login(client, p["certno"], p["password"]).text)
    thief = copy_of(client, app, {"yb_portal", "yb_portal_session"})
    elsewhere = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    portal_login(elsewhere, p["account_no"], p["password"])
    assert signed_in_portal(thief.get("/portal/")) and signed_in_portal(elsewhere.get("/portal/"))
    r = client.post(
        "/portal/password",
        data={
            "old_password": p["password"],
            "new_password": "Newpass@2026",
            "new_password2": "Newpass@2026",
            "csrf": token,
        },
    )
    assert r.status_code == 200 and "密码已修改" in r.text
    # every session of the person ended, the copy of this one too ...
    for browser in (thief, elsewhere):
        assert str(browser.get("/portal/").url).endswith("/portal/login")
    # ... and this browser goes on in a new session, with a new token
    assert signed_in_portal(client.get("/portal/"))
    new_token = csrf_of(r.text)
    assert new_token != token
    r = client.post("/portal/voucher/code", data={"csrf": token})
    assert r.status_code == 403
    assert client.post("/portal/voucher/code", data={"csrf": new_token}).status_code == 200


def test_a_forgotten_password_set_with_an_activation_code_ends_every_session(
    client, app, demo, services
):
    from tests.helpers import WUXING
    from yibao.services.access import person_login

    p = demo["persons"][0]
    portal_login(client, p["certno"], p["password"])
    with services.uow() as uow:
        from yibao.store.models import Person

        person_id = uow.session.execute(
            select(Person.id).where(Person.certno == p["certno"])
        ).scalar_one()
    code, _ = person_login.issue_activation_code(
        services.uow(), actor=WUXING, channel="counter", person_id=person_id
    )
    other = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    page = other.get("/portal/activate")
    r = other.post(
        "/portal/activate",
        data={
            "login_id": p["certno"],
            "code": code,
            "password": "Another@2026",
            "password2": "Another@2026",
            "csrf": csrf_of(page.text),
        },
    )
    assert r.status_code == 200, r.text
    assert str(client.get("/portal/").url).endswith("/portal/login")


def test_the_cookie_carries_only_the_session_id_and_the_server_only_its_digest(
    client, demo, services
):
    from yibao.store.models.access import WebSession

    p = demo["persons"][0]
    r = portal_login(client, p["certno"], p["password"])
    value = client.cookies.get("yb_portal_session", domain="testserver.local", path="/portal")
    assert value is not None and len(value) == 43 and p["certno"] not in value
    set_cookie = [
        c for c in r.history[0].headers.get_list("set-cookie") if "yb_portal_session" in c
    ]
    flags = set_cookie[0].lower()
    assert "httponly" in flags and "samesite=strict" in flags and "secure" in flags
    with services.uow() as uow:
        rows = list(uow.session.execute(select(WebSession)).scalars())
    assert len(rows) == 1 and rows[0].channel == "portal"
    assert rows[0].token_hash == hashlib.sha256(value.encode()).hexdigest()
    assert value not in {rows[0].token_hash, rows[0].csrf}


def test_a_portal_session_ends_after_thirty_idle_minutes_on_the_services_clock(
    client, app, demo, clock
):
    p = demo["persons"][0]
    portal_login(client, p["certno"], p["password"])
    thief = copy_of(client, app, {"yb_portal", "yb_portal_session"})
    clock.advance(dt.timedelta(minutes=29))
    assert signed_in_portal(client.get("/portal/"))  # a page: the idle time starts again
    clock.advance(dt.timedelta(minutes=29))
    assert signed_in_portal(thief.get("/portal/"))
    clock.advance(dt.timedelta(minutes=31))
    for browser in (client, thief):
        assert str(browser.get("/portal/").url).endswith("/portal/login")


# ---------------------------------------------------------------- the password page and the lock


def test_wrong_current_passwords_on_the_password_page_count_towards_the_lock(
    client, demo, clock, services
):
    p = demo["persons"][0]
    token = csrf_of(portal_login(client, p["certno"], p["password"]).text)

    def change(old):
        return client.post(
            "/portal/password",
            data={
                "old_password": old,
                "new_password": "Newpass@2026",
                "new_password2": "Newpass@2026",
                "csrf": token,
            },
        )

    for _ in range(4):
        r = change("not-the-password")
        assert r.status_code == 422 and "原密码错误" in r.text
    r = change("not-the-password")  # the fifth: locked, like a log-in
    assert r.status_code == 429 and "已锁定" in r.text and "15分钟" in r.text
    # the lock refuses the right password, here and at the log-in
    r = change(p["password"])
    assert r.status_code == 429 and "已锁定" in r.text
    other = TestClient(client.app, base_url="https://testserver", raise_server_exceptions=False)
    assert portal_login(other, p["certno"], p["password"]).status_code == 429
    r = client.post(
        "/portal/phone-pin",
        data={
            "phone_password": p["password"],
            "phone_pin": "570913",
            "phone_pin2": "570913",
            "csrf": token,
        },
    )
    assert r.status_code == 429
    failed = audited(services, "portal.password_failed")
    assert len(failed) == 5 and {c for _, _, c, _ in failed} == {"portal"}
    # the pages of the session still open: the lock is on the password
    assert signed_in_portal(client.get("/portal/"))
    clock.advance(dt.timedelta(minutes=15, seconds=1))
    r = change(p["password"])
    assert r.status_code == 200 and "密码已修改" in r.text


def test_log_in_failures_and_password_page_failures_are_one_count(client, demo):
    p = demo["persons"][0]
    other = TestClient(client.app, base_url="https://testserver", raise_server_exceptions=False)
    for _ in range(3):
        assert portal_login(other, p["certno"], "not-the-password").status_code == 401
    token = csrf_of(portal_login(client, p["certno"], p["password"]).text)  # right: count reset
    for _ in range(3):
        assert portal_login(other, p["certno"], "not-the-password").status_code == 401
    r = client.post(
        "/portal/phone-pin",
        data={
            "phone_password": "not-the-password",
            "phone_pin": "570913",
            "phone_pin2": "570913",
            "csrf": token,
        },
    )
    assert r.status_code == 422 and "登录密码错误" in r.text
    r = client.post(
        "/portal/password",
        data={"old_password": "wrong", "new_password": "x", "new_password2": "x", "csrf": token},
    )
    assert r.status_code == 429  # the fifth wrong password in a row, wherever it was typed
    assert portal_login(other, p["certno"], p["password"]).status_code == 429


# ---------------------------------------------------------------- the terminal


def test_a_copied_terminal_session_stops_working_when_the_card_is_taken_out(
    client, app, demo, services
):
    p = demo["persons"][0]
    assert 'data-testid="balance"' in kiosk_pin(client, services, p).text
    # the copy is taken on the terminal itself (it needs the machine's device cookie)
    thief = copy_of(client, app, {"yb_kiosk_session", "yb_kiosk_device", "yb_kiosk"})
    assert 'data-testid="balance"' in thief.get("/kiosk/home").text
    r = client.post("/kiosk/logout")
    assert 'id="card_no"' in r.text
    for browser in (client, thief):
        r = browser.get("/kiosk/home")
        assert 'data-testid="balance"' not in r.text and 'id="card_no"' in r.text
        assert not browser.get("/kiosk/receipt.pdf").content.startswith(b"%PDF")
    assert [(k, w, c) for k, w, c, _ in audited(services, "kiosk.sign_out")] == [
        ("terminal", "T-HZZX-01", "kiosk")
    ]


def test_a_terminal_session_ends_at_the_start_page_on_idle_and_with_the_machine(
    client, app, demo, services, clock, settings
):
    from tests.channels.test_web_forms import issue_code
    from yibao.store.models.access import WebSession

    p = demo["persons"][0]
    kiosk_pin(client, services, p)
    thief = copy_of(client, app, {"yb_kiosk_session", "yb_kiosk_device"})
    client.get("/kiosk/")  # the start page: the next card's
    assert 'data-testid="balance"' not in thief.get("/kiosk/home").text
    # the idle time, on the services' clock
    kiosk_pin(client, services, p)
    thief = copy_of(client, app, {"yb_kiosk_session", "yb_kiosk_device"})
    clock.advance(dt.timedelta(seconds=settings.kiosk_idle_seconds + 1))
    assert 'data-testid="balance"' not in thief.get("/kiosk/home").text
    # a new code for the terminal: its machine and its sessions end
    kiosk_pin(client, services, p)

    def newest():
        with services.uow() as uow:
            return uow.session.execute(
                select(WebSession).order_by(WebSession.id.desc()).limit(1)
            ).scalar_one()

    assert newest().revoked_at is None and newest().terminal_code == "T-HZZX-01"
    issue_code(services)
    assert newest().revoked_at is not None


def test_a_terminal_session_opens_nothing_at_another_terminal(client, app, demo, services):
    p = demo["persons"][0]
    kiosk_pin(client, services, p)
    session = client.cookies.get("yb_kiosk_session", domain="testserver.local", path="/kiosk")
    there = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    activate_kiosk(there, services, "T-NXRM-01")
    there.cookies.set("yb_kiosk_session", session, domain="testserver.local", path="/kiosk")
    r = there.get("/kiosk/home")
    assert 'data-testid="balance"' not in r.text and 'id="card_no"' in r.text


# ---------------------------------------------------------------- the counter


def test_a_copied_counter_cookie_stops_working_at_log_out(client, app, demo):
    token = counter_login(client, "wuxing")
    thief = copy_of(client, app, {"yb_counter"})
    assert thief.get("/counter/").status_code == 200
    assert not str(thief.get("/counter/").url).endswith("/counter/login")
    r = client.post("/counter/logout", data={"csrf": token})
    assert str(r.url).endswith("/counter/login")
    for browser in (client, thief):
        r = browser.get("/counter/search", params={"name": demo["persons"][0]["name"]})
        assert str(r.url).endswith("/counter/login")
        assert demo["persons"][0]["account_no"] not in r.text


# ---------------------------------------------------------------- headers


CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def has_security_headers(r) -> bool:
    h = r.headers
    return (
        h.get("content-security-policy") == CSP
        and h.get("x-content-type-options") == "nosniff"
        and h.get("x-frame-options") == "DENY"
        and h.get("referrer-policy") == "same-origin"
    )


def test_every_page_refusal_redirect_and_file_sends_the_security_headers(client, demo, services):
    p = demo["persons"][0]
    answers = {}

    def get(label, url, **kw):
        answers[label] = client.get(url, follow_redirects=False, **kw)

    get("portal redirect", "/portal/")
    get("portal login", "/portal/login")
    get("portal 404", "/portal/nothing")
    answers["portal csrf 403"] = client.post("/portal/login", data={"csrf": "x"})
    token = csrf_of(portal_login(client, p["certno"], p["password"]).text)
    get("portal home", "/portal/")
    get("portal 422", "/portal/postings?start=9999-01-01")
    get("portal htmx fragment", "/portal/postings", headers={"HX-Request": "true"})
    get("portal pdf", "/portal/statement.pdf")
    answers["portal 429"] = client.post(
        "/portal/password",
        data={"old_password": "x", "new_password": "y", "new_password2": "y", "csrf": token},
    )
    get("kiosk setup", "/kiosk/")
    activate_kiosk(client, services)
    get("kiosk start", "/kiosk/")
    get("kiosk redirect", "/kiosk/home")
    get("counter redirect", "/counter/")
    get("counter login", "/counter/login")
    counter_login(client, "wuxing")
    get("counter search", "/counter/search?name=x")
    get("counter 404", "/counter/person/nobody")
    get("static script", "/web-static/htmx.min.js")
    get("static 404", "/web-static/nothing.js")
    missing = [label for label, r in answers.items() if not has_security_headers(r)]
    assert missing == []
    # pages show personal data: never cached; the static files may be
    assert all(
        r.headers.get("cache-control") == "no-store"
        for label, r in answers.items()
        if not label.startswith("static")
    )
    assert answers["static script"].headers.get("cache-control") != "no-store"
    # the staff API and the HIS interface are not pages
    assert "content-security-policy" not in client.get("/healthz").headers


@pytest.mark.parametrize("secure", [True, False])
def test_the_language_cookie_follows_the_secure_setting(settings, clock, db_url, secure):
    from yibao.app import create_app

    settings.cookie_secure = secure
    app = create_app(settings, clock)
    try:
        with TestClient(app, base_url="https://testserver") as c:
            for url in ("/portal/login?lang=en", "/kiosk/?lang=en", "/counter/login?lang=en"):
                cookies = c.get(url).headers.get_list("set-cookie")
                lang = [x.lower() for x in cookies if x.startswith("yb_lang=")]
                assert len(lang) == 1, url
                assert ("secure" in lang[0].split("; ")) is secure, lang
                others = [x.lower() for x in cookies if not x.startswith("yb_lang=")]
                assert all(("secure" in x.split("; ")) is secure for x in others), others
    finally:
        app.state.services.engine.dispose()
