"""The web pages through a plain TestClient: CSRF, lockout, scope, the
document check before a person is shown, the terminal's flow."""

import re

import pytest


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


def test_kiosk_card_pin_balance_and_idle(quick_kiosk, client, demo):
    import time

    p = demo["persons"][0]
    terminal = demo["terminals"][0]["code"]
    r = client.get("/kiosk/")
    assert terminal in r.text  # set-up: choose a registered terminal
    r = client.get("/kiosk/", params={"terminal": terminal})
    token = csrf_of(r.text)
    r = client.post("/kiosk/card", data={"card_no": p["card_no"], "csrf": token})
    assert "keypad" in r.text
    r = client.post("/kiosk/pin", data={"pin": "000001", "csrf": token})
    assert r.status_code == 401 and "还可尝试2次" in r.text
    r = client.post("/kiosk/pin", data={"pin": p["pin"], "csrf": token})
    assert str(r.url).endswith("/kiosk/home") and 'data-testid="balance"' in r.text
    assert client.get("/kiosk/receipt.pdf").content.startswith(b"%PDF")
    time.sleep(1.2)
    r = client.get("/kiosk/home")
    assert 'id="card_no"' in r.text  # forgotten: back at the start


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
    from tests.helpers import add_person

    good = add_person(uow, name="批量员工")
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
    assert visit and visit[0].detail == {"document": "passport"} and visit[0].actor_id == "wuxing"
    assert any(r.action == "person.read" and r.channel == "counter" for r in rows)


def test_person_sets_the_telephone_pin_on_the_portal(client, demo, uow):
    from sqlalchemy import select

    from yibao.services import phone_pin
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
