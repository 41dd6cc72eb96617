"""Hostile and careless requests to the three web channels (issue 14): every
field of every form, query and path replaced by something no page sends,
every cookie by garbage. Each answer is a page (HTML, never a stack trace,
never a 5xx): the page of the form with a message naming the field, a
refused CSRF token, or the log-in page.

On PostgreSQL a NUL byte used to reach a query and fail it (500); a
non-ASCII CSRF token or session cookie made ``hmac.compare_digest`` raise
(500); a statement period in the year 9999 overflowed (500)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.channels.test_web_forms import activate_kiosk, counter_login, csrf_of, portal_login

# Values no page sends. Each is refused by the parsing layer, naming the
# field, in every field (a CSRF token aside: refused as no token).
REFUSED = {
    "nul": "12\x0034",
    "newline": "12\n34",
    "long": "1" * 5000,
}
# Values a careless client sends: each must be answered by a page, whatever
# the page then says (some are fine in a name or a reason).
ODD = {
    "non-ascii": "é",
    "superscript": "2026-1²",
    "year-9999": "9999-12-31",
    "year-1": "0001-01-01",
    "full-width": "１３５７９０",
    "negative": "-1",
    "empty": "",
    "spaces": "   ",
    "html": "<script>alert(1)</script>",
}
ALL = {**REFUSED, **ODD}

LABEL = {  # what the page calls each field (forms.LABELS)
    "login_id": "证件号码或医保账号",
    "password": "密码",
    "password2": "确认密码",
    "code": "激活码",
    "start": "开始日期",
    "end": "结束日期",
    "old_password": "原密码",
    "new_password": "新密码",
    "new_password2": "确认新密码",
    "phone_password": "登录密码",
    "phone_pin": "电话查询密码",
    "phone_pin2": "确认电话查询密码",
    "card_no": "卡号",
    "terminal": "终端编号",
    "activation_code": "激活码",
    "pin": "密码",
    "username": "用户名",
    "certno": "公民身份号码",
    "name": "姓名",
    "account_no": "医保账号",
    "document": "证件",
    "path": "办理方式",
    "kind": "卡种",
    "delegate_certno": "受托人身份证号码",
    "delegate_name": "受托人姓名",
    "collector_certno": "领卡人身份证号码",
    "reason": "原因",
    "materials": "材料",
    "view": "视图",
    "employer_uscc": "单位统一社会信用代码",
    "letter_ref": "单位介绍信编号",
    "handler_certno": "经办人身份证号码",
    "handler_name": "经办人姓名",
    "location": "位置",
    "division_code": "行政区划",
}


def is_page(r) -> bool:
    """An answer a person can read: HTML (or the PDF asked for), no trace."""
    kind = r.headers.get("content-type", "")
    return (
        r.status_code < 500
        and (kind.startswith("text/html") or kind == "application/pdf")
        and "Traceback" not in r.text
    )


def names_the_field(r, field: str, labels: dict[str, str] | None = None) -> bool:
    text = re.sub(r"<[^>]+>", "", r.text)
    return f"{(labels or LABEL)[field]}：" in text


def send(client, method, url, data, field, value, files=None):
    fields = {**data, field: value}
    if method == "GET":
        return client.get(url, params=fields)
    return client.post(url, data=fields, files=files)


def try_every_field(client, method, url, data, fields, *, files=None, labels=None):
    """Each field replaced by each hostile value: a page every time; the
    values no page sends refused, naming the field."""
    labels = {**LABEL, **(labels or {})}
    bad = []
    for field in fields:
        for label, value in ALL.items():
            r = send(client, method, url, data, field, value, files)
            if not is_page(r):
                bad.append((url, field, label, r.status_code, r.text[:200]))
            elif label in REFUSED and not (
                r.status_code == 422 and names_the_field(r, field, labels)
            ):
                bad.append((url, field, label, r.status_code, "not refused naming the field"))
        # a file where a text is expected, sent as multipart
        if method == "POST":
            r = client.post(
                url,
                data={k: v for k, v in data.items() if k != field},
                files={**(files or {}), field: ("x.txt", b"x", "text/plain")},
            )
            if not (is_page(r) and r.status_code == 422 and names_the_field(r, field, labels)):
                bad.append((url, field, "a file", r.status_code, r.text[:200]))
    return bad


# ---------------------------------------------------------------- the portal


def test_every_portal_field_hostile_gets_a_page_naming_the_field(client, demo):
    p = demo["persons"][0]
    token = csrf_of(client.get("/portal/login").text)
    bad = try_every_field(
        client,
        "POST",
        "/portal/activate",
        {"login_id": p["certno"], "code": "ABCD", "password": "x", "password2": "x", "csrf": token},
        ["login_id", "code", "password", "password2"],
    )
    # the log-in last among the anonymous forms: its wrong passwords lock
    bad += try_every_field(
        client,
        "POST",
        "/portal/login",
        {"login_id": demo["persons"][3]["certno"], "password": "x", "csrf": token},
        ["login_id", "password"],
    )
    token = csrf_of(portal_login(client, p["certno"], p["password"]).text)
    for url in ("/portal/postings", "/portal/statement.pdf"):
        bad += try_every_field(
            client, "GET", url, {"start": "2026-01-01", "end": "2026-11-23"}, ["start", "end"]
        )
    bad += try_every_field(
        client,
        "POST",
        "/portal/phone-pin",
        {"phone_password": p["password"], "phone_pin": "570913", "phone_pin2": "570913"}
        | {"csrf": token},
        ["phone_pin", "phone_pin2", "phone_password"],
    )
    bad += try_every_field(
        client,
        "POST",
        "/portal/password",
        {"old_password": "wrong", "new_password": "x", "new_password2": "x", "csrf": token},
        ["new_password", "new_password2", "old_password"],
    )
    assert bad == []


@pytest.mark.parametrize("year", ["9999", "0001", "1899", "2101"])
def test_a_period_outside_the_years_people_live_in_is_a_clear_refusal(client, demo, year):
    p = demo["persons"][0]
    portal_login(client, p["certno"], p["password"])
    for url in ("/portal/postings", "/portal/statement.pdf"):
        r = client.get(url, params={"start": "2026-01-01", "end": f"{year}-12-31"})
        assert r.status_code == 422 and is_page(r), (url, r.status_code)
        assert "结束日期：年份应在1900到2100之间" in r.text
        assert 'value="2026-01-01"' in r.text  # the form again, to correct
    r = client.get("/portal/postings", params={"start": f"{year}-01-01", "lang": "en"})
    assert "start date: the year is between 1900 and 2100" in r.text


def test_a_lost_card_report_with_a_hostile_card_number_changes_nothing(client, demo):
    p = demo["persons"][0]
    token = csrf_of(portal_login(client, p["certno"], p["password"]).text)
    for value in ALL.values():
        r = client.post("/portal/lost", data={"card_no": value, "csrf": token})
        assert is_page(r) and r.status_code in (404, 422), (value, r.status_code)
    assert 'data-testid="card-status">正常' in client.get("/portal/").text


def test_an_empty_telephone_pin_is_refused_not_set_to_one_nobody_sees(client, demo, services):
    from tests.channels.test_web_forms import audited

    p = demo["persons"][1]
    token = csrf_of(portal_login(client, p["certno"], p["password"]).text)
    r = client.post(
        "/portal/phone-pin",
        data={"phone_password": p["password"], "phone_pin": "", "phone_pin2": "", "csrf": token},
    )
    assert r.status_code == 422 and "电话查询密码：" in r.text
    assert [a for a in audited(services, "phone_pin.set") if a[2] == "portal"] == []


# ---------------------------------------------------------------- the terminal


def test_every_terminal_field_hostile_gets_a_page_naming_the_field(client, demo, services):
    p = demo["persons"][0]
    page = client.get("/kiosk/")
    token = csrf_of(page.text)
    bad = try_every_field(
        client,
        "POST",
        "/kiosk/activate",
        {"terminal": "T-HZZX-01", "activation_code": "WRONG234", "csrf": token},
        ["terminal", "activation_code"],
    )
    bad += try_every_field(
        client,
        "GET",
        "/kiosk/activate",
        {"terminal": "T-HZZX-01", "code": "X"},
        ["terminal", "code"],
    )
    activate_kiosk(client, services)
    token = csrf_of(client.get("/kiosk/").text)
    bad += try_every_field(client, "POST", "/kiosk/card", {"csrf": token}, ["card_no"])
    client.post("/kiosk/card", data={"card_no": p["card_no"], "csrf": token})
    bad += try_every_field(client, "POST", "/kiosk/pin", {"csrf": token}, ["pin"])
    assert bad == []
    # none of it counted as a wrong PIN: the right one still opens the account
    client.post("/kiosk/card", data={"card_no": p["card_no"], "csrf": token})
    r = client.post("/kiosk/pin", data={"pin": p["pin"], "csrf": token})
    assert 'data-testid="balance"' in r.text


# ---------------------------------------------------------------- the counter


def test_every_counter_field_hostile_gets_a_page_naming_the_field(client, demo):
    inside = demo["persons"][0]
    page = client.get("/counter/login")
    bad = try_every_field(
        client,
        "POST",
        "/counter/login",
        {"username": "nobody", "password": "x", "csrf": csrf_of(page.text)},
        ["username", "password"],
    )
    token = counter_login(client, "wuxing")
    bad += try_every_field(
        client,
        "GET",
        "/counter/search",
        {"certno": "", "card_no": "", "name": inside["name"]},
        ["certno", "card_no", "name"],
    )
    bad += try_every_field(
        client,
        "POST",
        "/counter/visit",
        {"account_no": inside["account_no"], "document": "id_card", "csrf": token},
        ["account_no", "document"],
    )
    client.post(
        "/counter/visit",
        data={"account_no": inside["account_no"], "document": "id_card", "csrf": token},
    )
    base = f"/counter/person/{inside['account_no']}"
    # a card action of someone else's card is refused by the service: the
    # parsing layer's refusals come first, and nothing is done
    other = demo["persons"][1]["card_no"]
    for action, fields in (
        ("apply", ["path", "kind", "pin", "delegate_certno", "delegate_name", "materials"]),
        ("collect", ["card_no", "collector_certno", "pin"]),
        ("reissue", ["card_no", "reason", "pin", "materials"]),
        ("pin", ["card_no", "pin"]),
        ("lost", ["card_no", "reason"]),
    ):
        bad += try_every_field(
            client, "POST", f"{base}/{action}", {"card_no": other, "csrf": token}, fields
        )
    bad += try_every_field(client, "GET", "/counter/applications", {}, ["view"])
    files = {"file": ("list.csv", b"certno,name\n", "text/csv")}
    bad += try_every_field(
        client,
        "POST",
        "/counter/batch",
        {
            "employer_uscc": demo["employers"][0]["uscc"],
            "letter_ref": "L-1",
            "handler_certno": demo["applicants"][0]["certno"],
            "handler_name": "经办人",
            "csrf": token,
        },
        ["employer_uscc", "letter_ref", "handler_certno", "handler_name", "materials"],
        files=files,
    )
    assert bad == []


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"login_id=%FF%FE&password=\xff\xfe&csrf=x", "application/x-www-form-urlencoded"),
        (b'{"login_id": 1, "csrf": "x"}', "application/json"),
        (b"\x00\x01\x02", "multipart/form-data"),  # no boundary
        (
            b"--b\r\nContent-Disposition: form-data; name=csrf\r\n\r\n\xff\r\n--b--",
            "multipart/form-data; boundary=b",
        ),
        (b"a=" + b"x" * 3_000_000, "application/x-www-form-urlencoded"),  # past starlette's limit
    ],
)
def test_a_body_that_is_no_form_of_ours_gets_a_page(client, demo, body, kind):
    for url in ("/portal/login", "/kiosk/activate", "/counter/login"):
        r = client.post(url, content=body, headers={"content-type": kind})
        assert is_page(r) and r.status_code in (403, 422), (url, r.status_code, r.text[:200])


def test_every_terminal_registration_field_hostile_gets_a_page_naming_the_field(client, demo):
    token = counter_login(client, "wuxing_admin")
    bad = try_every_field(
        client,
        "POST",
        "/counter/terminals",
        {"code": "T-NEW", "location": "大厅", "division_code": "330502", "csrf": token},
        ["code", "location", "division_code"],
        labels={"code": "终端编号"},
    )
    assert bad == []


def test_a_batch_without_its_file_or_with_a_bad_form_is_a_page(client, demo):
    token = counter_login(client, "wuxing")
    r = client.post("/counter/batch", data={"csrf": token, "letter_ref": "L-1"})
    assert r.status_code == 422 and is_page(r) and "文件：" in r.text
    assert 'value="L-1"' in r.text  # the form again, to correct
    broken = client.post(
        "/counter/batch",
        content=b'--xx\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n',
        headers={"content-type": "multipart/form-data; boundary=xx"},
    )
    assert is_page(broken) and broken.status_code in (403, 422)


def test_a_choice_that_is_not_one_is_refused_naming_it(client, demo):
    inside = demo["persons"][0]
    token = counter_login(client, "wuxing")
    client.post(
        "/counter/visit",
        data={"account_no": inside["account_no"], "document": "id_card", "csrf": token},
    )
    url = f"/counter/person/{inside['account_no']}/apply"
    # an employer's application goes by batch, never by this form
    r = client.post(url, data={"path": "employer", "csrf": token})
    assert r.status_code == 422 and is_page(r) and "办理方式：" in r.text
    r = client.post(url, data={"kind": "gold", "csrf": token})
    assert r.status_code == 422 and is_page(r) and "卡种：" in r.text


def test_hostile_paths_get_a_page(client, demo):
    token = counter_login(client, "wuxing_admin")
    bad = []
    for label, value in ALL.items():
        if not value.strip():
            continue
        quoted = value.replace("\n", "%0A").replace("\x00", "%00").replace("/", "%2F")
        for method, url, data in (
            ("GET", f"/counter/person/{quoted}", None),
            ("POST", f"/counter/person/{quoted}/lost", {"csrf": token}),
            ("POST", f"/counter/terminals/{quoted}/issue", {"csrf": token}),
        ):
            r = client.request(method, url, data=data)
            if not is_page(r):
                bad.append((label, url, r.status_code, r.text[:200]))
    assert bad == []


def test_a_path_under_a_channel_that_is_no_page_is_a_page_saying_so(client, demo):
    for url in ("/portal/nothing", "/kiosk/nothing/here", "/portal/logout"):
        r = client.get(url)
        assert r.status_code == 404 and is_page(r) and "没有这个页面" in r.text, url
    r = client.get("/counter/nothing")
    assert str(r.url).endswith("/counter/login")  # nobody signed in: to log in first
    counter_login(client, "wuxing")
    r = client.get("/counter/nothing?lang=en")
    assert r.status_code == 404 and is_page(r) and "there is no such page" in r.text


# ---------------------------------------------------------------- CSRF tokens and cookies

NON_ASCII_TOKEN = "é" * 32


def test_a_non_ascii_csrf_token_on_every_form_is_refused_as_an_expired_page(client, demo, services):
    p = demo["persons"][0]
    refused = []

    def expect_403(url, data, files=None):
        r = client.post(url, data={**data, "csrf": NON_ASCII_TOKEN}, files=files)
        if not (r.status_code == 403 and is_page(r) and "页面已过期" in r.text):
            refused.append((url, r.status_code, r.text[:200]))

    client.get("/portal/login")
    expect_403("/portal/login", {"login_id": p["certno"], "password": p["password"]})
    expect_403("/portal/activate", {"login_id": p["certno"], "code": "X", "password": "y"})
    portal_login(client, p["certno"], p["password"])
    for url in ("/portal/password", "/portal/phone-pin", "/portal/lost", "/portal/voucher/code"):
        expect_403(url, {"card_no": p["card_no"]})
    r = client.post("/portal/logout", data={"csrf": NON_ASCII_TOKEN})
    assert r.status_code == 200 and 'data-testid="balance"' in client.get("/portal/").text
    client.cookies.clear()

    client.get("/kiosk/")
    expect_403("/kiosk/activate", {"terminal": "T-HZZX-01", "activation_code": "X"})
    activate_kiosk(client, services)
    token = csrf_of(client.get("/kiosk/").text)
    expect_403("/kiosk/card", {"card_no": p["card_no"]})
    client.post("/kiosk/card", data={"card_no": p["card_no"], "csrf": token})
    r = client.post("/kiosk/pin", data={"pin": p["pin"], "csrf": NON_ASCII_TOKEN})
    assert r.status_code == 403 and is_page(r) and 'data-testid="balance"' not in r.text
    client.cookies.clear()

    client.get("/counter/login")
    expect_403("/counter/login", {"username": "wuxing", "password": "yibao-demo-2026"})
    counter_login(client, "wuxing_admin")
    base = f"/counter/person/{p['account_no']}"
    for url in (
        "/counter/visit",
        f"{base}/lost",
        f"{base}/apply",
        "/counter/terminals",
        "/counter/terminals/T-HZZX-01/issue",
    ):
        expect_403(url, {"account_no": p["account_no"], "document": "id_card"})
    expect_403("/counter/batch", {}, files={"file": ("a.csv", b"certno,name\n", "text/csv")})
    r = client.post("/counter/logout", data={"csrf": NON_ASCII_TOKEN}, follow_redirects=False)
    assert r.status_code == 303 and client.get("/counter/").status_code == 200  # still in
    assert refused == []


GARBAGE_COOKIES = [
    "é",
    "abc\xe9.d\xe9f",  # a non-ASCII byte in what would be the signature
    "e30.\xe9",
    "x" * 5000,
    "a.b",
    "..",
    "=",
    "e30.e30",
    "A" * 43,  # the shape of a session id, of no session
]


@pytest.mark.parametrize("value", GARBAGE_COOKIES)
def test_garbage_session_cookies_get_the_log_in_page(app, demo, value):
    """Any anonymous client can send these: a non-ASCII byte used to be a 500."""
    raw = value.encode("latin-1")
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as c:
        for cookie in ("yb_portal", "yb_portal_session"):
            r = c.get("/portal/", headers={"cookie": b"%s=%s" % (cookie.encode(), raw)})
            assert is_page(r) and str(r.url).endswith("/portal/login"), (cookie, r.status_code)
            r = c.post(
                "/portal/login",
                data={"login_id": "x", "password": "y", "csrf": "z"},
                headers={"cookie": b"%s=%s" % (cookie.encode(), raw)},
            )
            assert is_page(r) and r.status_code == 403
        for cookie in ("yb_kiosk", "yb_kiosk_session", "yb_kiosk_device"):
            r = c.get("/kiosk/home", headers={"cookie": b"%s=%s" % (cookie.encode(), raw)})
            assert is_page(r) and 'data-testid="activate-form"' in r.text, cookie
        r = c.get("/counter/", headers={"cookie": b"yb_counter=" + raw})
        assert is_page(r) and str(r.url).endswith("/counter/login")
        r = c.post("/counter/visit", data={"csrf": "x"}, headers={"cookie": b"yb_counter=" + raw})
        assert is_page(r) and str(r.url).endswith("/counter/login")


def test_a_fault_of_yibao_under_a_page_is_a_page_without_a_trace(caplog):
    """Should a route still fail in a way nobody foresaw, the person gets a
    page with the pages' headers (not JSON, not a trace); operators get the
    trace in the log."""
    from fastapi import APIRouter, FastAPI

    from yibao.channels.web.common import SecurityHeaders, channel_route

    def on_error(request, exc, page, fields):  # a fault is no refusal: never called
        raise AssertionError(exc)

    router = APIRouter(route_class=channel_route(on_error))

    @router.get("/portal/broken")
    def broken() -> None:
        raise ZeroDivisionError("a bug")

    app = FastAPI()
    app.include_router(router)
    app.add_middleware(SecurityHeaders)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/portal/broken")
    assert r.status_code == 500 and r.headers["content-type"].startswith("text/html")
    assert "系统内部错误" in r.text and "ZeroDivisionError" not in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "ZeroDivisionError" in caplog.text
