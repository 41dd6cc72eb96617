"""Issue 15, the self-service terminal and the portal's first screen, end to
end through the pages (FastAPI's TestClient, on SQLite and PostgreSQL):
each card session at a terminal starts in Chinese; a malformed PIN costs no
try; a suspension names the unpaid months; the visit list, the payment
rows, the card application's progress, the loss report and its undoing, a
forgotten password reset with the telephone PIN, and English pages with no
Chinese left in them."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.channels.test_web_forms import (
    activate_kiosk,
    audited,
    csrf_of,
    portal_login,
)
from tests.his.client import His
from yibao.store.models import Card, KioskPinTry, Person

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


def person_id(services: Any, certno: str) -> int:
    with services.uow() as uow:
        return int(
            uow.session.execute(select(Person.id).where(Person.certno == certno)).scalar_one()
        )


def card_status(services: Any, card_no: str) -> str:
    with services.uow() as uow:
        return str(
            uow.session.execute(select(Card.status).where(Card.card_no == card_no)).scalar_one()
        )


# ---------------------------------------------------------------- the terminal


def read_card(client: TestClient, card_no: str) -> str:
    token = csrf_of(client.get("/kiosk/").text)
    r = client.post("/kiosk/card", data={"card_no": card_no, "csrf": token})
    assert "keypad" in r.text, r.text
    return token


def test_each_card_session_at_a_terminal_starts_in_chinese(client, demo, services, clock, settings):
    p = demo["persons"][0]
    activate_kiosk(client, services)
    # the person before switches to English and signs in
    r = client.get("/kiosk/?lang=en")
    assert 'lang="en"' in r.text
    token = csrf_of(r.text)
    r = client.post("/kiosk/card", data={"card_no": p["card_no"], "csrf": token})
    assert "Enter your 6-digit PIN" in r.text
    r = client.post("/kiosk/pin", data={"pin": p["pin"], "csrf": token})
    assert str(r.url).endswith("/kiosk/home") and "Individual account balance" in r.text
    # ... and takes the card out (退卡): the next person gets Chinese
    r = client.post("/kiosk/logout")
    assert (
        str(r.url).endswith("/kiosk/") and 'lang="zh-CN"' in r.text and "请插入或刷医保卡" in r.text
    )
    token = csrf_of(r.text)
    r = client.post("/kiosk/card", data={"card_no": demo["persons"][1]["card_no"], "csrf": token})
    assert "请输入6位卡密码" in r.text
    # English left behind and the terminal left idle: Chinese again
    client.get("/kiosk/?lang=en")
    clock.advance(dt.timedelta(seconds=settings.kiosk_idle_seconds + 1))
    token = csrf_of(client.get("/kiosk/").text)
    r = client.post("/kiosk/card", data={"card_no": p["card_no"], "csrf": token})
    assert "请输入6位卡密码" in r.text and 'lang="zh-CN"' in r.text
    # even read straight after the idle time, without the start page in between
    client.get("/kiosk/?lang=en")
    clock.advance(dt.timedelta(seconds=settings.kiosk_idle_seconds + 1))
    r = client.post("/kiosk/card", data={"card_no": p["card_no"], "csrf": token})
    assert 'lang="zh-CN"' in r.text
    # the portal's language cookie, set elsewhere in this browser, is not the terminal's
    client.get("/portal/login?lang=en")
    assert 'lang="zh-CN"' in client.get("/kiosk/").text


@pytest.mark.parametrize("pin", ["", "1", "12345", " "])
def test_an_empty_or_short_pin_costs_no_try(client, demo, services, pin):
    p = demo["persons"][0]
    activate_kiosk(client, services)
    token = read_card(client, p["card_no"])
    for _ in range(4):  # more than the three tries
        r = client.post("/kiosk/pin", data={"pin": pin, "csrf": token})
        assert r.status_code == 422 and "请输入6位密码" in r.text and "keypad" in r.text
    assert audited(services, "kiosk.pin_failed") == []
    with services.uow() as uow:
        tries = uow.session.execute(select(KioskPinTry.failures)).scalars().all()
    assert all(n == 0 for n in tries)
    r = client.post("/kiosk/pin?lang=en", data={"pin": pin, "csrf": token})
    assert "enter 6 digits" in r.text
    # the right PIN still opens the account
    r = client.post("/kiosk/pin", data={"pin": p["pin"], "csrf": token})
    assert 'data-testid="balance"' in r.text


def test_the_service_refuses_a_malformed_pin_before_counting(services, demo):
    from yibao.domain.errors import DomainError
    from yibao.services.access import terminals

    p = demo["persons"][0]
    for pin in ("", "123", "1234567", "12345a"):
        with pytest.raises(DomainError) as refused:
            terminals.sign_in(
                services.uow(), terminal_code="T-HZZX-01", card_no=p["card_no"], pin=pin
            )
        assert refused.value.code == "validation.length" and refused.value.field == "pin"
        assert refused.value.en == "enter 6 digits"
    assert audited(services, "kiosk.pin_failed") == []
    # a wrong PIN of the right shape still counts
    with pytest.raises(DomainError) as wrong:
        terminals.sign_in(
            services.uow(), terminal_code="T-HZZX-01", card_no=p["card_no"], pin="000001"
        )
    assert wrong.value.code == "kiosk.bad_pin"


def test_the_pin_field_takes_typed_digits(client, demo, services):
    p = demo["persons"][0]
    activate_kiosk(client, services)
    token = csrf_of(client.get("/kiosk/").text)
    r = client.post("/kiosk/card", data={"card_no": p["card_no"], "csrf": token})
    field = re.search(r'<input id="pin"[^>]*>', r.text)
    assert field is not None and "readonly" not in field.group(0) and "autofocus" in field.group(0)


# ---------------------------------------------------------------- the portal's first screen


def test_a_suspension_names_the_employers_unpaid_months(client, demo, services):
    # 李娜's employer stopped paying three months ago (the demo city)
    p = demo["persons"][2]
    r = portal_login(client, p["certno"], p["password"])
    assert r.status_code == 200
    page = r.text
    assert 'data-testid="suspended"' in page
    assert "南浔木业股份有限公司" in page
    assert re.search(r"未缴费月份：2026-08、2026-09、2026-10", page), page
    # the card works; the benefits do not: both are said
    assert re.search(r'data-testid="card-status">正常<', page)
    assert re.search(r'data-testid="benefit-status">暂停（欠费）<', page)
    en = client.get("/portal/?lang=en").text
    assert "unpaid months: 2026-08, 2026-09, 2026-10" in en
    # someone whose employer pays: benefits normal
    other = TestClient(client.app, base_url="https://testserver", raise_server_exceptions=False)
    q = demo["persons"][0]
    r = portal_login(other, q["certno"], q["password"])
    assert re.search(r'data-testid="benefit-status">正常享受<', r.text)
    assert 'data-testid="suspended"' not in r.text


def settle_a_visit(client, demo, clock, person, total: str, *, cancel: bool = False) -> str:
    his = His(client, demo["institutions"][0], clock)
    his.sign_in()
    info = his.person(person["card_no"])
    psn_no = info["baseinfo"]["psn_no"]
    mdtrt_id = his.register(psn_no, person["card_no"])
    his.fees(mdtrt_id, psn_no, [("250101001", total)])
    out = his.ok("2207", his.settle_input(mdtrt_id, psn_no, person["card_no"], total))
    setl_id: str = out["setlinfo"]["setl_id"]
    if cancel:
        his.ok("2208", {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": psn_no}})
    return setl_id


def test_the_visit_list_shows_each_settlement_and_its_parts(client, demo, services, clock):
    from yibao.store.models import Settlement

    p = demo["persons"][0]
    settle_a_visit(client, demo, clock, p, "400.00")
    clock.advance(dt.timedelta(hours=1))
    settle_a_visit(client, demo, clock, p, "58.60", cancel=True)
    with services.uow() as uow:
        rows = list(uow.session.execute(select(Settlement).order_by(Settlement.id)).scalars())
    assert len(rows) == 2
    portal_login(client, p["certno"], p["password"])
    r = client.get("/portal/visits")
    assert r.status_code == 200
    visits = r.text.split('data-testid="visit"')[1:]
    assert len(visits) == 2
    newest, oldest = visits
    assert "湖州市中心医院" in oldest and "2026-11-23 10:00" in oldest
    first = rows[0]
    for testid, fen in (
        ("visit-total", first.medfee_sumamt),
        ("visit-fund", first.fund_pay_sumamt),
        ("visit-account", first.acct_pay),
        ("visit-cash", first.psn_cash_pay),
    ):
        assert f'data-testid="{testid}">{fen // 100}.{fen % 100:02d}<' in oldest, testid
    assert first.fund_pay_sumamt > 0 and first.medfee_sumamt == 400_00
    assert 'data-testid="visit-cancelled"' in newest and "58.60" in newest
    assert 'data-testid="visit-cancelled"' not in oldest
    assert [a for _, _, _, a in audited(services, "records.visits.read")] == [p["account_no"]]
    assert "Fund paid" in client.get("/portal/visits?lang=en").text


def visible(page: str) -> str:
    """The text a person reads in the page's main part."""
    return re.sub(r"<[^>]+>", " ", page.split('<main id="main">')[1])


def test_payment_rows_say_who_pays_and_show_no_english_in_chinese(client, demo, services):
    # a retiree pays nothing: said so, with what the account was credited
    retiree = demo["persons"][4]
    portal_login(client, retiree["certno"], retiree["password"])
    page = client.get("/portal/payments").text
    rows = page.split('data-testid="payment-row"')[1:]
    assert rows and all('data-kind="retiree"' in r for r in rows)
    assert "退休人员个人不缴费" in rows[0] and "无需缴费" in rows[0] and "80.00" in rows[0]
    assert "已缴" not in page
    assert not re.search(r"[A-Za-z]{3,}", visible(page)), "English in the Chinese page"
    # an employee: the employer named, no English word
    emp = demo["persons"][0]
    other = TestClient(client.app, base_url="https://testserver", raise_server_exceptions=False)
    portal_login(other, emp["certno"], emp["password"])
    page = other.get("/portal/payments").text
    assert "湖州织里童装有限公司" in page and "self" not in visible(page)
    # a flexible worker pays themselves
    flex = demo["persons"][3]
    third = TestClient(client.app, base_url="https://testserver", raise_server_exceptions=False)
    portal_login(third, flex["certno"], flex["password"])
    page = third.get("/portal/payments").text
    assert "本人缴费" in page and "self" not in visible(page)


def test_a_resident_sees_the_yearly_payment(services, demo):
    from yibao.domain.actors import Actor
    from yibao.services.inquiry import records

    a = demo["applicants"][0]
    pid = person_id(services, a["certno"])
    rows = records.payment_list(
        services.uow(),
        actor=Actor(kind="person", id=str(pid), division=a["division"]),
        channel="portal",
        person_id=pid,
    )
    assert [(r.period, r.kind, r.status) for r in rows] == [("2026", "resident", "paid")]
    # the whole yearly premium of the demo's rule (380 yuan) for the months assessed so far
    assert rows[0].individual_amount == 380_00 // 12 * 10


def test_card_application_progress_with_the_pickup_place_and_last_day(
    client, demo, services, clock
):
    from tests.helpers import WUXING
    from yibao.domain.actors import Actor
    from yibao.services.cards import cards as card_service
    from yibao.services.inquiry import records

    a = demo["applicants"][0]
    pid = person_id(services, a["certno"])
    me = Actor(kind="person", id=str(pid), division=a["division"])
    (p,) = records.card_progress(services.uow(), actor=me, channel="portal", person_id=pid)
    assert p.state == "in_progress" and p.path == "service_point"
    assert p.due_date is not None and p.pickup_place == "月河街道"
    assert (
        p.pickup_deadline is None and p.pickup_window_days == services.settings.pickup_window_days
    )
    # the card arrives at the service point: the last day to collect it
    with services.uow() as uow:
        card_no = uow.session.execute(
            select(Card.card_no).where(Card.person_id == pid)
        ).scalar_one()
    card_service.mark_ready(services.uow(), actor=WUXING, channel="counter", card_no=card_no)
    (p,) = records.card_progress(services.uow(), actor=me, channel="portal", person_id=pid)
    assert p.state == "awaiting_pickup"
    assert p.pickup_deadline == clock.today() + dt.timedelta(
        days=services.settings.pickup_window_days
    )
    assert p.pickup_window_days is None


def test_the_portal_home_shows_the_application_in_progress(client, demo, services):
    from tests.helpers import WUXING
    from yibao.services.access import person_login

    a = demo["applicants"][0]
    pid = person_id(services, a["certno"])
    code, _ = person_login.issue_activation_code(
        services.uow(), actor=WUXING, channel="counter", person_id=pid
    )
    page = client.get("/portal/activate")
    client.post(
        "/portal/activate",
        data={
            "login_id": a["certno"],
            "code": code,
            "password": "Zhaomin@2026",
            "password2": "Zhaomin@2026",
            "csrf": csrf_of(page.text),
        },
    )
    r = portal_login(client, a["certno"], "Zhaomin@2026")
    assert 'data-testid="card-progress"' in r.text
    assert re.search(
        r'data-testid="progress-state">制卡中|data-testid="progress-state">办理中', r.text
    )
    assert 'data-testid="progress-place">月河街道<' in r.text
    assert "30天内领取" in r.text
    assert 'data-testid="progress-place">Yuehe Subdistrict<' in client.get("/portal/?lang=en").text


def test_a_loss_report_is_confirmed_and_undone_with_the_password(client, demo, services):
    p = demo["persons"][0]
    token = csrf_of(portal_login(client, p["certno"], p["password"]).text)
    r = client.post("/portal/lost", data={"card_no": p["card_no"], "csrf": token})
    assert r.status_code == 200 and 'data-testid="done"' in r.text and "挂失成功" in r.text
    assert p["card_no"] in r.text and card_status(services, p["card_no"]) == "lost"
    assert 'data-testid="found-form"' in r.text
    # a wrong password: refused at the form, the card stays lost, the try counted
    r = client.post(
        "/portal/found", data={"card_no": p["card_no"], "password": "wrong-1234", "csrf": token}
    )
    assert r.status_code == 422 and "登录密码错误" in r.text
    assert card_status(services, p["card_no"]) == "lost"
    assert len(audited(services, "portal.password_failed")) == 1
    # the right one: the card works again
    r = client.post(
        "/portal/found", data={"card_no": p["card_no"], "password": p["password"], "csrf": token}
    )
    assert r.status_code == 200 and "解挂成功" in r.text
    assert card_status(services, p["card_no"]) == "issued"
    assert re.search(r'data-testid="card-status">正常<', r.text)
    # nothing to undo any more
    r = client.post(
        "/portal/found", data={"card_no": p["card_no"], "password": p["password"], "csrf": token}
    )
    assert r.status_code == 409 and "不能解挂" in r.text


def test_someone_elses_or_a_replaced_card_is_not_undone(client, demo, services):
    from tests.channels.states import set_card

    p, q = demo["persons"][0], demo["persons"][1]
    set_card(services, q["card_no"], "lost")
    token = csrf_of(portal_login(client, p["certno"], p["password"]).text)
    r = client.post(
        "/portal/found", data={"card_no": q["card_no"], "password": p["password"], "csrf": token}
    )
    assert r.status_code == 404 and card_status(services, q["card_no"]) == "lost"
    # a card a reissue replaced is cancelled: the lifecycle does not bring it back
    set_card(services, p["card_no"], "replaced")
    r = client.post(
        "/portal/found", data={"card_no": p["card_no"], "password": p["password"], "csrf": token}
    )
    assert r.status_code == 409 and card_status(services, p["card_no"]) == "cancelled"


def test_a_forgotten_password_is_reset_with_the_telephone_pin(client, app, demo, services):
    p = demo["persons"][0]
    elsewhere = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    portal_login(elsewhere, p["certno"], p["password"])
    page = client.get("/portal/login")
    assert 'href="/portal/reset"' in page.text
    page = client.get("/portal/reset")
    assert 'href="/portal/activate"' in page.text
    token = csrf_of(page.text)
    form = {"certno": p["certno"], "password": "Brandnew@2026", "password2": "Brandnew@2026"}
    r = client.post("/portal/reset", data={**form, "phone_pin": "000001", "csrf": token})
    assert r.status_code == 401 and "电话查询密码错误" in r.text
    assert len(audited(services, "phone_pin.failed")) == 1
    r = client.post("/portal/reset", data={**form, "phone_pin": p["phone_pin"], "csrf": token})
    assert r.status_code == 200 and "密码已设置" in r.text
    assert portal_login(client, p["certno"], "Brandnew@2026").status_code == 200
    assert 'data-testid="balance"' in client.get("/portal/").text
    # the sessions opened with the old password ended
    assert str(elsewhere.get("/portal/").url).endswith("/portal/login")
    assert [a for _, _, _, a in audited(services, "portal.password_reset")] == [p["account_no"]]


def test_every_portal_and_terminal_page_in_english_has_no_chinese(
    client, app, demo, services, clock
):
    p = demo["persons"][2]  # suspended for arrears: every part of the first page shows
    data = {p["name"], "南浔木业股份有限公司", "湖州市中心医院", "中文"}

    def english(html: str, where: str) -> None:
        text = re.sub(r"<[^>]+>", " ", html.split("<body", 1)[1])
        for word in sorted(data, key=len, reverse=True):  # a place named after a hospital
            text = text.replace(word, "")
        assert not CJK.search(text), f"{where}: {CJK.findall(text)[:20]} in {text[:3000]}"

    for path in ("/portal/login", "/portal/activate", "/portal/reset"):
        english(client.get(f"{path}?lang=en").text, path)
    portal_login(client, p["certno"], p["password"])
    for path in (
        "/portal/",
        "/portal/postings",
        "/portal/payments",
        "/portal/visits",
        "/portal/rights",
        "/portal/statement",
        "/portal/voucher",
        "/portal/password",
        "/portal/nowhere",
    ):
        english(client.get(f"{path}?lang=en").text, path)
    token = csrf_of(client.get("/portal/?lang=en").text)
    r = client.post("/portal/voucher/code", data={"csrf": token})
    english(r.text.replace("<svg", "<body><svg", 1), "voucher code")
    # a visit (settled and cancelled) and a loss report, by someone whose benefits run
    q = demo["persons"][0]
    settle_a_visit(client, demo, clock, q, "120.00", cancel=True)
    data.add(q["name"])
    other = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    token = csrf_of(portal_login(other, q["certno"], q["password"]).text)
    english(other.get("/portal/visits?lang=en").text, "/portal/visits with a visit")
    r = other.post("/portal/lost?lang=en", data={"card_no": q["card_no"], "csrf": token})
    english(r.text, "/portal/lost")
    r = other.post(
        "/portal/found?lang=en", data={"card_no": q["card_no"], "password": "x", "csrf": token}
    )
    english(r.text, "/portal/found refused")
    terminal = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    english(terminal.get("/kiosk/?lang=en").text, "/kiosk/ set-up")
    activate_kiosk(terminal, services)
    location = demo["terminals"][0]["location"]
    data.add(location)
    r = terminal.get("/kiosk/?lang=en")
    english(r.text, "/kiosk/")
    token = csrf_of(r.text)
    english(terminal.post("/kiosk/card", data={"card_no": p["card_no"], "csrf": token}).text, "pin")
    english(terminal.post("/kiosk/pin", data={"pin": "1", "csrf": token}).text, "pin refused")
    r = terminal.post("/kiosk/pin", data={"pin": p["pin"], "csrf": token})
    assert 'data-testid="balance"' in r.text
    english(r.text, "/kiosk/home")
