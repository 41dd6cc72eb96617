"""The web pages through a plain TestClient: CSRF, lockout, scope, the
document check before a person is shown, the terminal's flow."""

import re

import pytest
from fastapi.testclient import TestClient


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def portal_login(client, login_id, password):
    token = csrf_of(client.get("/portal/login").text)
    return client.post(
        "/portal/login", data={"login_id": login_id, "password": password, "csrf": token}
    )


def counter_login(client, username="wuxing"):
    token = csrf_of(client.get("/counter/login").text)
    r = client.post(
        "/counter/login",
        data={"username": username, "password": "yibao-demo-2026", "csrf": token},
    )
    assert r.status_code == 200 and str(r.url).endswith("/counter/"), r.text
    return csrf_of(r.text)


def test_portal_login_balance_first_and_cookie_flags(client, demo):
    p = demo["persons"][0]
    r = client.get("/portal/")
    assert str(r.url).endswith("/portal/login")
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    r = portal_login(client, p["account_no"], p["password"])
    assert str(r.url).endswith("/portal/") and r.status_code == 200
    main = r.text[r.text.index("<main") :]
    # the balance comes first in the page body, with its date and the card status
    assert main.index('data-testid="balance"') < main.index("<svg")
    assert "截至" in main and 'data-testid="card-status">正常' in main
    assert client.get("/portal/?lang=en").text.count("Individual account balance") == 1
    assert "Paid" in client.get("/portal/payments").text  # the choice is kept
    client.get("/portal/?lang=zh")
    pdf = client.get("/portal/statement.pdf", params={"start": "2026-01-01", "end": "2026-11-23"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert "已缴" in client.get("/portal/payments").text
    r = client.get("/portal/postings", params={"start": "2026-11-30", "end": "2026-01-01"})
    assert "开始日期晚于结束日期" in r.text
    r = client.get("/portal/postings", headers={"HX-Request": "true"})
    assert "<html" not in r.text and "<table>" in r.text


def test_portal_refuses_a_form_without_its_csrf_token(client, demo):
    p = demo["persons"][0]
    client.get("/portal/login")
    r = client.post(
        "/portal/login", data={"login_id": p["certno"], "password": p["password"], "csrf": "x"}
    )
    assert r.status_code == 403 and "页面已过期" in r.text
    r = portal_login(client, p["certno"], p["password"])
    r = client.post("/portal/voucher/code", data={"csrf": "forged"})
    assert r.status_code == 403
    r = client.post(
        "/portal/voucher/code", data={"csrf": csrf_of(client.get("/portal/voucher").text)}
    )
    assert r.status_code == 200 and "<svg" in r.text


def test_portal_lockout_says_so(client, demo):
    p = demo["persons"][2]
    for _ in range(4):
        assert portal_login(client, p["certno"], "wrong-one").status_code == 401
    r = portal_login(client, p["certno"], "wrong-one")
    assert r.status_code == 429 and "已锁定" in r.text and "15分钟" in r.text
    assert portal_login(client, p["certno"], p["password"]).status_code == 429


def test_counter_scope_document_check_and_loss_report(client, demo):
    token = counter_login(client, "wuxing")
    inside, outside = demo["persons"][0], demo["persons"][2]
    r = client.get("/counter/search", params={"certno": outside["certno"]})
    assert 'data-testid="not-found"' in r.text and outside["name"] not in r.text
    r = client.get("/counter/search", params={"name": inside["name"]})
    assert inside["account_no"] in r.text
    # nothing is shown before a document is recorded
    r = client.get(f"/counter/person/{inside['account_no']}")
    assert r.status_code == 403 and inside["certno"] not in r.text
    r = client.post(
        "/counter/visit", data={"account_no": inside["account_no"], "document": "", "csrf": token}
    )
    assert r.status_code == 422
    r = client.post(
        "/counter/visit",
        data={"account_no": outside["account_no"], "document": "id_card", "csrf": token},
    )
    assert r.status_code == 404
    r = client.post(
        "/counter/visit",
        data={"account_no": inside["account_no"], "document": "id_card", "csrf": token},
    )
    assert r.status_code == 200 and inside["certno"] in r.text
    url = f"/counter/person/{inside['account_no']}/lost"
    assert client.post(url, data={"card_no": inside["card_no"], "csrf": "x"}).status_code == 403
    r = client.post(url, data={"card_no": inside["card_no"], "csrf": token})
    assert 'data-testid="card-status">已挂失' in r.text
    r = client.post(f"/counter/person/{inside['account_no']}/activation", data={"csrf": token})
    assert re.search(r'activation-code">[A-Z0-9]{10}<', r.text)
    r = client.get("/counter/applications", params={"view": "due"})
    assert r.status_code == 200


def test_counter_apply_and_batch_results(client, demo):
    token = counter_login(client, "yuehe")
    a = demo["applicants"][0]
    r = client.get("/counter/search", params={"certno": a["certno"]})
    assert a["account_no"] in r.text
    client.post(
        "/counter/visit",
        data={"account_no": a["account_no"], "document": "id_card", "csrf": token},
    )
    r = client.post(
        f"/counter/person/{a['account_no']}/apply",
        data={"path": "service_point", "materials": ["id_card"], "csrf": token},
    )
    assert "缺少材料" in r.text  # the photo was not checked; said on the page, no trace
    r = client.get("/counter/batch")
    assert r.status_code == 200
    r = client.post(
        "/counter/batch",
        data={
            "employer_uscc": demo["employers"][0]["uscc"],
            "letter_ref": "L-1",
            "handler_certno": a["certno"],
            "handler_name": "经办人",
            "materials": ["letter_of_introduction", "handler_id_card"],
            "csrf": token,
        },
        files={"file": ("list.csv", b"certno,name\n123,nobody\n", "text/csv")},
    )
    assert r.status_code == 403 and "无权" in r.text, r.text  # a service point takes no batches


@pytest.fixture
def quick_kiosk(settings):
    settings.kiosk_idle_seconds = 1
    return settings


def issue_code(services, terminal="T-HZZX-01"):
    """A new activation code for a terminal, as staff would issue it."""
    from tests.helpers import CITY
    from yibao.services.access import terminals as kiosk

    issued = kiosk.issue_code(services.uow(), actor=CITY, channel="counter", code=terminal)
    return issued.activation_code


def activate_kiosk(client, services, terminal="T-HZZX-01"):
    """This client becomes the terminal: the set-up form with a fresh code."""
    code = issue_code(services, terminal)
    page = client.get("/kiosk/activate", params={"terminal": terminal, "code": code})
    assert page.status_code == 200 and f'value="{code}"' in page.text
    r = client.post(
        "/kiosk/activate",
        data={"terminal": terminal, "activation_code": code, "csrf": csrf_of(page.text)},
    )
    assert r.status_code == 200 and 'id="card_no"' in r.text, r.text
    return code


def is_setup(r):
    return 'data-testid="activate-form"' in r.text and 'id="card_no"' not in r.text


def test_kiosk_card_pin_balance_and_idle(quick_kiosk, client, demo, services, clock):
    import datetime as dt

    p = demo["persons"][0]
    terminal = demo["terminals"][0]["code"]
    assert is_setup(client.get("/kiosk/"))
    activate_kiosk(client, services, terminal)
    r = client.get("/kiosk/")
    assert terminal in r.text  # the footer names the terminal
    token = csrf_of(r.text)
    r = client.post("/kiosk/card", data={"card_no": p["card_no"], "csrf": token})
    assert "keypad" in r.text
    r = client.post("/kiosk/pin", data={"pin": "000001", "csrf": token})
    assert r.status_code == 401 and "还可尝试2次" in r.text
    r = client.post("/kiosk/pin", data={"pin": p["pin"], "csrf": token})
    assert str(r.url).endswith("/kiosk/home") and 'data-testid="balance"' in r.text
    assert client.get("/kiosk/receipt.pdf").content.startswith(b"%PDF")
    # the idle time is measured on the service's clock, not the wall clock
    clock.advance(dt.timedelta(seconds=1))
    assert 'data-testid="balance"' in client.get("/kiosk/home").text  # a touch: seen again
    clock.advance(dt.timedelta(seconds=1, milliseconds=200))
    r = client.get("/kiosk/home")
    assert 'id="card_no"' in r.text  # forgotten: back at the start


def test_kiosk_activation_sets_the_device_cookie_and_the_code_works_once(client, demo, services):
    code = issue_code(services)
    page = client.get("/kiosk/")
    assert is_setup(page)
    for t in demo["terminals"]:  # no list of terminals to pick from any more
        assert t["code"] not in page.text
    form = {"terminal": "T-HZZX-01", "activation_code": code, "csrf": csrf_of(page.text)}
    r = client.post("/kiosk/activate", data={**form, "csrf": "forged"})
    assert r.status_code == 403 and is_setup(r)
    r = client.post("/kiosk/activate", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/kiosk/"
    device = [c for c in r.headers.get_list("set-cookie") if c.startswith("yb_kiosk_device=")]
    assert len(device) == 1
    flags = device[0].lower()
    assert "httponly" in flags and "samesite=strict" in flags and "secure" in flags
    assert "path=/kiosk" in flags and "max-age=" in flags
    assert 'id="card_no"' in client.get("/kiosk/").text
    # the same code in another browser: refused, and that browser is no terminal
    from fastapi.testclient import TestClient

    with TestClient(client.app, base_url="https://testserver") as other:
        page = other.get("/kiosk/")
        r = other.post("/kiosk/activate", data={**form, "csrf": csrf_of(page.text)})
        assert r.status_code == 401 and is_setup(r) and "激活码错误" in r.text
        assert "yb_kiosk_device" not in other.cookies
        assert is_setup(other.get("/kiosk/"))


def test_kiosk_without_a_device_cannot_reach_the_card_pin_or_home_pages(client, demo, services):
    from yibao.channels.web.common import sign

    p = demo["persons"][0]

    class Req:  # sign() needs only the app's settings from the request
        app = client.app

    def refused_everywhere(device=None, session=None):
        def get(url, **kw):
            put_cookies()
            return client.get(url, **kw)

        def post(url, data):
            put_cookies()
            return client.post(url, data=data)

        def put_cookies():
            if device:
                client.cookies.set(
                    "yb_kiosk_device", device, domain="testserver.local", path="/kiosk"
                )
            if session:
                client.cookies.set("yb_kiosk", session, domain="testserver.local", path="/kiosk")

        r = get("/kiosk/", params={"terminal": "T-HZZX-01"})  # naming it is not enough
        assert is_setup(r)
        token = csrf_of(r.text)
        r = post("/kiosk/card", {"card_no": p["card_no"], "csrf": token})
        assert is_setup(r) and "keypad" not in r.text
        r = post("/kiosk/pin", {"pin": p["pin"], "csrf": token})
        assert is_setup(r) and 'data-testid="balance"' not in r.text
        assert is_setup(get("/kiosk/home"))
        assert is_setup(get("/kiosk/receipt.pdf"))
        return r

    refused_everywhere()
    # a made-up device token
    r = refused_everywhere(device="forged-device-token")
    assert "凭证已失效" in r.text
    # a real machine's token with one character changed
    activate_kiosk(client, services)
    real = client.cookies.get("yb_kiosk_device", domain="testserver.local", path="/kiosk")
    assert real and 'id="card_no"' in client.get("/kiosk/").text
    refused_everywhere(device=real[:-1] + ("A" if real[-1] != "A" else "B"))
    client.cookies.clear()
    # the old session key naming a terminal, even with a person in it, selects nothing
    forged = {"term": "T-HZZX-01", "card": p["card_no"], "pid": 1, "exp": 4e9, "csrf": "c"}
    refused_everywhere(session=sign(Req, "yb_kiosk", forged))


def test_kiosk_wrong_codes_are_counted_and_the_fifth_voids_the_code(client, demo, services):
    from sqlalchemy import select

    from yibao.store.models import AuditEntry, KioskTerminal

    code = issue_code(services)
    token = csrf_of(client.get("/kiosk/").text)
    for n in range(1, 5):
        r = client.post(
            "/kiosk/activate",
            data={"terminal": "T-HZZX-01", "activation_code": f"WRONG{n}", "csrf": token},
        )
        assert r.status_code == 401 and "激活码错误" in r.text
        assert 'aria-invalid="true"' in r.text and f"WRONG{n}" not in r.text
    r = client.post(
        "/kiosk/activate",
        data={"terminal": "T-HZZX-01", "activation_code": "WRONG5", "csrf": token},
    )
    assert r.status_code == 429 and "已作废" in r.text
    r = client.post(
        "/kiosk/activate",
        data={"terminal": "T-HZZX-01", "activation_code": code, "csrf": token},
    )
    assert r.status_code == 429 and is_setup(r)
    r = client.post(
        "/kiosk/activate?lang=en",
        data={"terminal": "T-HZZX-01", "activation_code": code, "csrf": token},
    )
    assert "staff must issue a new one" in r.text and "Traceback" not in r.text
    with services.uow() as work:
        term = work.session.get(KioskTerminal, "T-HZZX-01")
        assert term.activation_failures == 7 and term.device_hash is None
        refused = work.session.execute(
            select(AuditEntry).where(AuditEntry.action == "kiosk.activation_refused")
        ).scalars()
        assert [e.detail["failures"] for e in refused] == [1, 2, 3, 4, 5, 6, 7]


def test_kiosk_an_expired_code_is_refused(client, demo, services, clock, settings):
    import datetime as dt

    code = issue_code(services)
    clock.advance(dt.timedelta(hours=settings.kiosk_activation_hours, minutes=1))
    r = client.get("/kiosk/activate", params={"terminal": "T-HZZX-01", "code": code})
    r = client.post(
        "/kiosk/activate",
        data={"terminal": "T-HZZX-01", "activation_code": code, "csrf": csrf_of(r.text)},
    )
    assert r.status_code == 401 and "已过期" in r.text and is_setup(r)


def test_kiosk_a_new_code_or_deactivation_sends_the_machine_back_to_set_up(client, demo, services):
    from tests.helpers import CITY
    from yibao.services.access import terminals as kiosk

    p = demo["persons"][0]
    activate_kiosk(client, services)
    token = csrf_of(client.get("/kiosk/").text)
    client.post("/kiosk/card", data={"card_no": p["card_no"], "csrf": token})
    assert "balance" in client.post("/kiosk/pin", data={"pin": p["pin"], "csrf": token}).text
    issue_code(services)  # e.g. the machine was stolen: staff issue a new code
    r = client.get("/kiosk/home")
    assert is_setup(r) and 'data-testid="balance"' not in r.text
    assert "凭证已失效" in r.text
    assert "yb_kiosk_device" not in client.cookies  # the dead cookie is dropped
    activate_kiosk(client, services)  # the replacement machine
    kiosk.deactivate_terminal(services.uow(), actor=CITY, channel="counter", code="T-HZZX-01")
    assert is_setup(client.get("/kiosk/"))


def test_counter_staff_manage_the_terminals_of_their_area(client, demo, services):
    from sqlalchemy import select

    from yibao.store.models import AuditEntry

    token = counter_login(client, "wuxing")  # a clerk: no terminal management
    assert 'href="/counter/terminals"' not in client.get("/counter/").text
    r = client.get("/counter/terminals")
    assert r.status_code == 403 and "无权" in r.text and "T-HZZX-01" not in r.text
    client.post("/counter/logout", data={"csrf": token})

    token = counter_login(client, "wuxing_admin")
    r = client.get("/counter/")
    assert 'href="/counter/terminals"' in r.text
    r = client.get("/counter/terminals")
    assert r.status_code == 200 and "自助终端" in r.text
    assert "T-HZZX-01" in r.text and "T-NXRM-01" not in r.text  # Nanxun's is not theirs
    assert 'value="330503"' not in r.text and 'value="330502001"' in r.text
    form = {"code": "T-YH-01", "location": "月河街道服务点", "division_code": "330503"}
    r = client.post("/counter/terminals", data={**form, "csrf": token})
    assert r.status_code == 422 and "不在您的管辖区域内" in r.text
    r = client.post("/counter/terminals", data={**form, "division_code": "330502001"})
    assert r.status_code == 403  # no CSRF token
    r = client.post(
        "/counter/terminals", data={**form, "division_code": "330502001", "csrf": token}
    )
    assert r.status_code == 200, r.text
    code = re.search(r'activation-code">([A-Z0-9]{8})<', r.text).group(1)
    assert "有效至" in r.text and "T-YH-01" in r.text
    assert code not in client.get("/counter/terminals").text  # shown once
    # the terminal's machine activates itself with it
    from fastapi.testclient import TestClient

    with TestClient(client.app, base_url="https://testserver") as machine:
        page = machine.get("/kiosk/")
        r = machine.post(
            "/kiosk/activate",
            data={"terminal": "T-YH-01", "activation_code": code, "csrf": csrf_of(page.text)},
        )
        assert 'id="card_no"' in r.text and "月河街道服务点" in r.text
        assert "已激活" in client.get("/counter/terminals").text
        r = client.post("/counter/terminals/T-YH-01/issue", data={"csrf": token})
        new = re.search(r'activation-code">([A-Z0-9]{8})<', r.text).group(1)
        assert new != code and is_setup(machine.get("/kiosk/"))
        r = client.post("/counter/terminals/T-NXRM-01/issue", data={"csrf": token})
        assert r.status_code == 404 and "activation-code" not in r.text
        r = client.post("/counter/terminals/T-NXRM-01/deactivate", data={"csrf": token})
        assert r.status_code == 404
        r = client.post("/counter/terminals/T-YH-01/deactivate", data={"csrf": "x"})
        assert r.status_code == 403
        r = client.post("/counter/terminals/T-YH-01/deactivate", data={"csrf": token})
        assert r.status_code == 200 and "已停用" in r.text
        page = machine.get("/kiosk/")
        r = machine.post(
            "/kiosk/activate",
            data={"terminal": "T-YH-01", "activation_code": new, "csrf": csrf_of(page.text)},
        )
        assert r.status_code == 401 and is_setup(r)
    with services.uow() as work:
        rows = work.session.execute(
            select(AuditEntry).where(AuditEntry.subject == "T-YH-01").order_by(AuditEntry.id)
        ).scalars()
        trail = [(e.actor_id, e.channel, e.action) for e in rows]
    assert trail == [
        ("wuxing_admin", "counter", "kiosk.register"),
        ("wuxing_admin", "counter", "kiosk.issue_code"),
        ("T-YH-01", "kiosk", "kiosk.activate"),
        ("wuxing_admin", "counter", "kiosk.issue_code"),
        ("wuxing_admin", "counter", "kiosk.deactivate"),
        ("T-YH-01", "kiosk", "kiosk.activation_refused"),
    ]


def test_terminals_through_the_api(client, demo, token_for):
    admin = token_for("wuxing_admin")
    r = client.get("/api/v1/kiosk-terminals", headers=admin)
    assert [t["code"] for t in r.json()] == ["T-HZZX-01"]
    r = client.post(
        "/api/v1/kiosk-terminals",
        headers=admin,
        json={"code": "T-API-1", "location": "大厅", "division_code": "330502"},
    )
    assert r.status_code == 201 and len(r.json()["activation_code"]) == 8
    r = client.post("/api/v1/kiosk-terminals/T-NXRM-01/activation-code", headers=admin)
    assert r.status_code == 404
    r = client.post("/api/v1/kiosk-terminals/T-API-1/activation-code", headers=admin)
    assert r.status_code == 201 and r.json()["state"] == "pending"
    r = client.post("/api/v1/kiosk-terminals/T-API-1/deactivate", headers=admin)
    assert r.json()["active"] is False
    r = client.get("/api/v1/kiosk-terminals", headers=token_for("wuxing"))
    assert r.status_code == 403


def test_person_reports_the_card_lost_on_the_portal(client, demo):
    p = demo["persons"][4]
    r = portal_login(client, p["certno"], p["password"])
    assert 'action="/portal/lost"' in r.text
    r = client.post("/portal/lost", data={"card_no": p["card_no"], "csrf": "forged"})
    assert r.status_code == 403
    token = csrf_of(client.get("/portal/").text)
    other = demo["persons"][0]["card_no"]  # not theirs: refused as not found
    r = client.post("/portal/lost", data={"card_no": other, "csrf": token})
    assert r.status_code == 404
    r = client.post("/portal/lost", data={"card_no": p["card_no"], "csrf": token})
    assert 'data-testid="card-status">已挂失' in r.text
    # after a posted form, the language link goes to the channel's first page
    assert 'href="/portal/?lang=en"' in client.post("/portal/lost", data={}).text


def test_counter_batch_upload_shows_each_row(client, demo, uow):
    from tests.db.employees import add_employee

    # on the employer's roll: a batch refuses anyone else (issue 15)
    good = add_employee(uow, demo["employers"][0]["uscc"], name="批量员工")
    token = counter_login(client, "wuxing")
    csv = f"certno,name\n{good.certno},批量员工\n{demo['persons'][2]['certno']},李娜\n"
    r = client.post(
        "/counter/batch",
        data={
            "employer_uscc": demo["employers"][0]["uscc"],
            "letter_ref": "织里童装〔2026〕12号",
            "handler_certno": demo["applicants"][0]["certno"],
            "handler_name": "经办人",
            "materials": ["letter_of_introduction", "handler_id_card"],
            "csrf": token,
        },
        files={"file": ("list.csv", csv.encode(), "text/csv")},
    )
    assert r.status_code == 200, r.text
    rows = r.text[r.text.index('data-testid="batch-rows"') :]
    assert "批量员工" in rows and rows.count("<tr>") == 3  # header and two rows
    assert "受理 1" in r.text and "退回 1" in r.text


def test_counter_visit_is_audited_with_the_document(client, demo, uow):
    from sqlalchemy import select

    from yibao.store.models import AuditEntry

    p = demo["persons"][0]
    token = counter_login(client, "wuxing")
    client.post(
        "/counter/visit",
        data={"account_no": p["account_no"], "document": "passport", "csrf": token},
    )
    with uow:
        rows = list(
            uow.session.execute(
                select(AuditEntry).where(AuditEntry.action.in_(["counter.visit", "person.read"]))
            ).scalars()
        )
    visit = [r for r in rows if r.action == "counter.visit"]
    # the detail is the document, and the request's id (issue 17, its log line's)
    assert visit and visit[0].detail.pop("request_id") and visit[0].actor_id == "wuxing"
    assert visit[0].detail == {"document": "passport"}
    assert any(r.action == "person.read" and r.channel == "counter" for r in rows)


def test_person_sets_the_telephone_pin_on_the_portal(client, demo, uow):
    from sqlalchemy import select

    from yibao.services.access import phone_pin
    from yibao.store.models import Person

    p = demo["persons"][1]
    home = portal_login(client, p["account_no"], p["password"])
    token = csrf_of(home.text)
    page = client.get("/portal/password")
    assert "电话查询密码" in page.text
    form = {
        "phone_password": p["password"],
        "phone_pin": "570913",
        "phone_pin2": "570913",
        "csrf": token,
    }
    wrong = client.post("/portal/phone-pin", data={**form, "phone_password": "not-it"})
    assert wrong.status_code == 422 and "登录密码错误" in wrong.text
    weak = client.post(
        "/portal/phone-pin", data={**form, "phone_pin": "111111", "phone_pin2": "111111"}
    )
    assert weak.status_code == 422 and "过于简单" in weak.text
    assert client.post("/portal/phone-pin", data={**form, "csrf": "forged"}).status_code == 403
    ok = client.post("/portal/phone-pin", data=form)
    assert ok.status_code == 200 and "电话查询密码已设置" in ok.text
    with uow:
        person = uow.session.execute(
            select(Person).where(Person.certno == p["certno"])
        ).scalar_one()
        check = phone_pin.check_phone_pin
        assert (
            check(uow, person_id=person.id, pin=p["phone_pin"], channel="telephone", subject="t1")
            == "wrong"
        )
        assert (
            check(uow, person_id=person.id, pin="570913", channel="telephone", subject="t2") == "ok"
        )


# ---------------------------------------------------------------- one decision, one inquiry


def kiosk_pin(client, services, p, *, follow=True):
    """An activated terminal, the card read and its (right) PIN keyed."""
    activate_kiosk(client, services)
    token = csrf_of(client.get("/kiosk/").text)
    r = client.post("/kiosk/card", data={"card_no": p["card_no"], "csrf": token})
    assert "keypad" in r.text, r.text
    return client.post("/kiosk/pin", data={"pin": p["pin"], "csrf": token}, follow_redirects=follow)


def balance_of(services, p):
    from sqlalchemy import select

    from yibao.services.ledger import ledger
    from yibao.store.models import Person

    with services.uow() as uow:
        person = uow.session.execute(
            select(Person).where(Person.certno == p["certno"])
        ).scalar_one()
        return ledger.individual_balance(uow.session, person.id)


def audited(services, action):
    from sqlalchemy import select

    from yibao.store.models import AuditEntry

    with services.uow() as uow:
        rows = uow.session.execute(select(AuditEntry).where(AuditEntry.action == action))
        return [(e.actor_kind, e.actor_id, e.channel, e.subject) for e in rows.scalars()]


@pytest.mark.parametrize("state", ["lost", "frozen", "cancelled", "replaced"])
def test_a_card_that_may_not_be_used_opens_nothing_at_the_terminal(client, demo, services, state):
    from tests.channels.states import CARD_SAYS, set_card
    from yibao.services.documents import yuan

    p = demo["persons"][0]
    shown = f"¥ {yuan(balance_of(services, p))}"
    set_card(services, p["card_no"], state)
    r = kiosk_pin(client, services, p)  # the PIN is right ...
    zh, en = CARD_SAYS[state]
    # ... and the card opens nothing: no balance, no transactions; the state is named
    assert r.status_code == 409 and zh in r.text and 'role="alert"' in r.text
    assert 'data-testid="balance"' not in r.text and shown not in r.text
    assert 'class="lines"' not in r.text and 'id="card_no"' in r.text  # back at the start
    r = kiosk_pin(client, services, p)
    assert 'data-testid="balance"' not in r.text
    english = client.get("/kiosk/home?lang=en")  # the person was forgotten with the refusal
    assert 'id="card_no"' in english.text
    r = kiosk_pin(client, services, p, follow=False)  # straight to the receipt, in English
    receipt = client.get("/kiosk/receipt.pdf?lang=en")
    assert receipt.status_code == 409 and not receipt.content.startswith(b"%PDF")
    assert en in receipt.text and "Traceback" not in receipt.text
    assert audited(services, "balance.read") == []
    assert audited(services, "balance.receipt") == []


def test_a_card_lost_while_signed_in_at_the_terminal_closes_its_pages(client, demo, services):
    from tests.channels.states import set_card

    p = demo["persons"][0]
    r = kiosk_pin(client, services, p)
    assert 'data-testid="balance"' in r.text
    set_card(services, p["card_no"], "lost")  # e.g. reported on the telephone meanwhile
    r = client.get("/kiosk/home")
    assert r.status_code == 409 and "该卡已挂失" in r.text and 'data-testid="balance"' not in r.text
    assert not client.get("/kiosk/receipt.pdf").content.startswith(b"%PDF")


@pytest.mark.parametrize("status", ["deceased", "emigrated", "transferred_out"])
def test_a_person_whose_insurance_ended_is_refused_at_the_terminal_and_on_the_portal(
    client, demo, services, status
):
    from tests.channels.states import PERSON_SAYS, set_person

    p = demo["persons"][0]
    set_person(services, p["certno"], status)
    zh, en = PERSON_SAYS[status]
    r = kiosk_pin(client, services, p)
    assert r.status_code == 409 and zh in r.text and 'data-testid="balance"' not in r.text
    client.cookies.clear()
    r = portal_login(client, p["certno"], p["password"])
    assert r.status_code == 409 and zh in r.text and 'data-testid="balance"' not in r.text
    assert 'href="/portal/postings"' in r.text  # with the menu, no trace
    for page in ("postings", "payments", "rights"):
        r = client.get(f"/portal/{page}?lang=en")
        assert r.status_code == 409 and en in r.text and "<table>" not in r.text, page
    r = client.get("/portal/statement.pdf")
    assert r.status_code == 409 and not r.content.startswith(b"%PDF")


def test_suspended_for_arrears_still_sees_the_balance_with_the_suspension_shown(
    client, demo, services
):
    from tests.channels.states import suspend
    from yibao.services.documents import yuan

    p = demo["persons"][0]
    shown = f"¥ {yuan(balance_of(services, p))}"
    suspend(services, p["certno"])
    r = kiosk_pin(client, services, p)
    assert r.status_code == 200 and shown in r.text and 'data-testid="suspended"' in r.text
    assert "欠费暂停" in r.text and "2026-10-01" in r.text
    assert "suspended for unpaid contributions" in client.get("/kiosk/home?lang=en").text
    r = portal_login(client, p["certno"], p["password"])
    assert shown in r.text and 'data-testid="suspended"' in r.text


def test_the_terminal_shows_the_card_presented_and_the_portal_the_current_card(
    client, demo, services
):
    """A reissue's new card at the terminal is itself; the portal shows the
    person's current card, not the replaced one."""
    from tests.channels.states import set_card

    p = demo["persons"][0]
    new_no = set_card(services, p["card_no"], "replaced")
    r = kiosk_pin(client, services, {**p, "card_no": new_no})
    assert 'data-testid="balance"' in r.text and 'card-status">正常' in r.text
    client.cookies.clear()
    r = portal_login(client, p["certno"], p["password"])
    assert new_no in r.text and p["card_no"] not in r.text


def test_the_receipt_prints_china_time(client, demo, services, clock):
    """At 01:30 on 24 November in China it is still the 23rd in UTC."""
    import datetime as dt
    import subprocess

    from yibao.clock import CHINA

    p = demo["persons"][0]
    clock.set(dt.datetime(2026, 11, 23, 17, 30, tzinfo=dt.UTC))  # a clock that speaks UTC
    kiosk_pin(client, services, p)
    r = client.get("/kiosk/receipt.pdf")
    assert r.content.startswith(b"%PDF")
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=r.content, capture_output=True, check=True
    ).stdout.decode()
    assert "2026-11-24 01:30" in text and "UTC" not in text and "2026-11-23 17:30" not in text
    from sqlalchemy import select

    from yibao.domain import ledger as codes
    from yibao.services.ledger import ledger
    from yibao.store.models import Person

    with services.uow() as uow:
        person = uow.session.execute(
            select(Person).where(Person.certno == p["certno"])
        ).scalar_one()
        lines = ledger.history(uow.session, code=codes.individual(person.id), limit=10)
    assert lines
    for line in lines:  # each posting on its China date
        assert line.at.astimezone(CHINA).strftime("%Y-%m-%d") in text


def test_the_portal_session_ends_on_the_services_clock(client, demo, clock):
    import datetime as dt

    p = demo["persons"][0]
    assert 'data-testid="balance"' in portal_login(client, p["certno"], p["password"]).text
    clock.advance(dt.timedelta(minutes=29))
    assert 'data-testid="balance"' in client.get("/portal/").text
    clock.advance(dt.timedelta(minutes=31))  # 30 minutes after the last page
    r = client.get("/portal/")
    assert str(r.url).endswith("/portal/login") and 'data-testid="balance"' not in r.text


def test_every_inquiry_is_audited_by_its_service(client, demo, services):
    p = demo["persons"][0]
    portal_login(client, p["certno"], p["password"])
    for page in ("postings", "payments", "rights"):
        client.get(f"/portal/{page}")
    client.get("/portal/statement.pdf", params={"start": "2026-01-01", "end": "2026-11-23"})
    token = csrf_of(client.get("/portal/voucher").text)
    assert client.post("/portal/voucher/code", data={"csrf": token}).status_code == 200
    for action in (
        "balance.read",
        "records.postings.read",
        "records.payment.read",
        "records.rights.read",
        "records.statement",
        "voucher.issue",
    ):
        rows = audited(services, action)
        assert [(kind, channel) for kind, _, channel, _ in rows] == [("person", "portal")], action
    client.cookies.clear()
    kiosk_pin(client, services, p)
    client.get("/kiosk/receipt.pdf")
    assert [(k, w, c) for k, w, c, _ in audited(services, "balance.receipt")] == [
        ("terminal", "T-HZZX-01", "kiosk")
    ]


def test_the_portal_asks_for_a_new_password_twice_in_the_service(client, demo):
    p = demo["persons"][0]
    token = csrf_of(portal_login(client, p["certno"], p["password"]).text)
    r = client.post(
        "/portal/password",
        data={
            "old_password": p["password"],
            "new_password": "Newpass@2026",
            "new_password2": "Newpass@2027",
            "csrf": token,
        },
    )
    assert r.status_code == 422 and "两次输入的密码不一致" in r.text
    r = client.post(
        "/portal/password?lang=en",
        data={"old_password": "nope", "new_password": "x", "new_password2": "x", "csrf": token},
    )
    assert r.status_code == 422 and "the current password is wrong" in r.text


def test_the_period_of_the_postings_is_checked_by_the_service(client, demo):
    p = demo["persons"][0]
    portal_login(client, p["certno"], p["password"])
    r = client.get("/portal/postings", params={"start": "2026-11-30", "end": "2026-01-01"})
    assert r.status_code == 422 and "开始日期晚于结束日期" in r.text
    assert 'value="2026-11-30"' in r.text  # the form as it was sent, to correct
    r = client.get(
        "/portal/postings", params={"start": "2026-13-01"}, headers={"HX-Request": "true"}
    )
    # read by the one reading of dates (domain.values), naming what is wrong
    assert r.status_code == 422 and "<html" not in r.text and "日期不存在" in r.text


def test_the_web_channels_and_the_telephone_only_parse_call_and_render():
    """No commit, no audit entry, no query of their own: the services do that."""
    import ast
    from pathlib import Path

    import yibao.channels.ivr as ivr
    import yibao.channels.web as web

    pages = ("common.py", "forms.py", "portal.py", "kiosk.py", "counter.py")
    files = [Path(web.__file__).parent / f for f in pages]
    files += sorted(Path(ivr.__file__).parent.glob("*.py"))
    found = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in (
                "commit",
                "audit",
                "session",
                "rollback",
            ):
                found.append(f"{path.name}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.With) and "uow" in ast.unparse(node):
                found.append(f"{path.name}:{node.lineno} with uow")
    assert found == []


def test_when_the_database_fails_a_page_says_the_outcome_is_unknown(
    request, client, app, db_url, demo, services
):
    from tests.channels.states import lose_the_database

    p = demo["persons"][0]
    token = csrf_of(portal_login(client, p["certno"], p["password"]).text)
    kiosk = TestClient(client.app, base_url="https://testserver")
    kiosk_pin(kiosk, services, p)
    lose_the_database(request, app, db_url)
    r = client.post("/portal/lost", data={"card_no": p["card_no"], "csrf": token})
    assert r.status_code == 503 and "是否完成未知" in r.text and "Traceback" not in r.text
    r = client.get("/portal/?lang=en")
    assert r.status_code == 503 and "whether this was done is unknown" in r.text
    r = kiosk.get("/kiosk/home")
    assert (
        r.status_code == 503 and "是否完成未知" in r.text and 'data-testid="balance"' not in r.text
    )
