"""Family mutual aid on the pages (issue 16): the counter binds with the
relative's document checked there (the consent), the portal binds and the
relative confirms and orders the payers, a holder pays a resident
contribution once; and both sides see the payments in the portal's
postings, the statement PDF, the telephone's recent transactions and the
counter."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from tests.channels.ivr_phone import PLATFORMS, ivr_settings
from tests.channels.test_counter_15 import visit
from tests.channels.test_enrolment_api import pdf_text
from tests.channels.test_ivr import identify
from tests.channels.test_web_forms import counter_login, csrf_of, portal_login
from tests.his.client import His
from yibao.services.ledger import ledger
from yibao.store.models import FamilyBinding, FamilyPayment, Person


@pytest.fixture
def settings(db_url, tmp_path):  # type: ignore[no-untyped-def]
    return ivr_settings(db_url, tmp_path)


def _id(services: Any, certno: str) -> int:
    with services.uow() as u:
        return int(u.session.execute(select(Person.id).where(Person.certno == certno)).scalar_one())


def _balance(services: Any, person_id: int) -> int:
    with services.uow() as u:
        return ledger.individual_balance(u.session, person_id)


def _portal(client: Any, person: dict[str, Any]) -> str:
    client.cookies.clear()
    r = portal_login(client, person["certno"], person["password"])
    assert r.status_code == 200, r.text[:300]
    page = client.get("/portal/family")
    assert page.status_code == 200
    return csrf_of(page.text)


def _counter_bind(client: Any, holder: dict[str, Any], relative: dict[str, Any], **extra: str):  # type: ignore[no-untyped-def]
    client.cookies.clear()
    token = counter_login(client)
    person_page = visit(client, token, holder)
    assert f'href="/counter/family/{holder["account_no"]}"' in person_page.text
    page = client.get(f"/counter/family/{holder['account_no']}")
    assert page.status_code == 200
    data = {
        "certno": relative["certno"],
        "name": relative["name"],
        "relation": "spouse",
        "relative_document": "id_card",
        "csrf": csrf_of(page.text),
        **extra,
    }
    return client.post(f"/counter/family/{holder['account_no']}/bind", data=data)


def _settle(client: Any, demo: dict[str, Any], clock: Any, person: dict[str, Any], fen: int) -> str:
    his = His(client, demo["institutions"][0], clock)
    his.sign_in()
    psn_no = his.person(person["card_no"])["baseinfo"]["psn_no"]
    mdtrt_id = his.register(psn_no, person["card_no"])
    total = f"{fen // 100}.{fen % 100:02d}"
    his.fees(mdtrt_id, psn_no, [("C00000000001", total)])
    out = his.ok("2207", his.settle_input(mdtrt_id, psn_no, person["card_no"], total))
    return str(out["setlinfo"]["setl_id"])


def test_the_counter_binds_with_the_relatives_document_checked(client, demo, services):  # type: ignore[no-untyped-def]
    zhang, wang = demo["persons"][0], demo["persons"][1]
    refused = _counter_bind(client, zhang, wang, relative_document="")
    assert refused.status_code == 422 and 'data-testid="family-error"' in refused.text
    assert "请核验家庭成员本人的证件" in refused.text
    done = _counter_bind(client, zhang, wang)
    assert done.status_code == 200 and 'data-testid="family-done"' in done.text
    assert re.search(r'data-testid="family-relative" data-status="active"', done.text)
    # the relation not allowed is refused, naming it
    refused = _counter_bind(client, zhang, demo["persons"][4], relation="cousin")
    assert refused.status_code == 422 and "关系" in refused.text
    # unbinding at the counter
    with services.uow() as u:
        binding = u.session.execute(select(FamilyBinding.id)).scalar_one()
    page = client.get(f"/counter/family/{zhang['account_no']}")
    ended = client.post(
        f"/counter/family/{zhang['account_no']}/unbind",
        data={"binding": str(binding), "csrf": csrf_of(page.text)},
    )
    assert ended.status_code == 200 and "已解除绑定" in ended.text
    # without a document checked for the holder, the counter shows nothing
    client.cookies.clear()
    counter_login(client)
    assert client.get(f"/counter/family/{zhang['account_no']}").status_code == 403


def test_portal_bind_confirm_order_and_the_records_of_both_sides(
    client, demo, services, clock, phone
):  # type: ignore[no-untyped-def]
    zhang, wang, chen = demo["persons"][0], demo["persons"][1], demo["persons"][4]
    assert _counter_bind(client, zhang, wang).status_code == 200
    # 陈静 asks in the portal; 王芳 confirms in hers
    token = _portal(client, chen)
    home = client.get("/portal/")
    assert 'href="/portal/family"' in home.text
    asked = client.post(
        "/portal/family/bind",
        data={"certno": wang["certno"], "name": wang["name"], "relation": "spouse", "csrf": token},
    )
    assert asked.status_code == 200 and 'data-status="pending"' in asked.text
    wrong = client.post(
        "/portal/family/bind",
        data={"certno": chen["certno"], "name": chen["name"], "relation": "spouse", "csrf": token},
    )
    assert wrong.status_code == 409 and "不能绑定本人" in wrong.text

    token = _portal(client, wang)
    page = client.get("/portal/family")
    assert page.text.count('data-testid="family-pending"') == 1
    with services.uow() as u:
        pending = u.session.execute(
            select(FamilyBinding.id).where(FamilyBinding.status == "pending")
        ).scalar_one()
    done = client.post("/portal/family/confirm", data={"binding": str(pending), "csrf": token})
    assert done.status_code == 200 and 'data-testid="family-pending"' not in done.text
    payers = re.findall(r'data-testid="family-payer"><span>\d\. (\S+?) \(', done.text)
    assert payers == [zhang["name"], chen["name"]]
    first = client.post("/portal/family/first", data={"binding": str(pending), "csrf": token})
    payers = re.findall(r'data-testid="family-payer"><span>\d\. (\S+?) \(', first.text)
    assert payers == [chen["name"], zhang["name"]]

    # a settlement of 王芳's beyond her own balance: 陈静 pays first now
    ids = {
        k: _id(services, p["certno"]) for k, p in (("zhang", zhang), ("wang", wang), ("chen", chen))
    }
    own, chen_before = _balance(services, ids["wang"]), _balance(services, ids["chen"])
    _settle(client, demo, clock, wang, own + 55_55)
    assert _balance(services, ids["chen"]) == chen_before - 55_55

    # the relative's side: the portal's postings, the statement, the telephone
    _portal(client, wang)
    postings = client.get("/portal/postings")
    assert 'data-role="received"' in postings.text and "55.55" in postings.text
    statement = client.get("/portal/statement.pdf?start=2026-01-01&end=2026-12-31")
    assert statement.status_code == 200
    text = pdf_text_of(statement.content)
    assert "家庭共济" in text and chen["name"] in text and "55.55" in text
    call = identify(phone(), choice="2", number=wang["certno"], pin=wang["phone_pin"])
    assert f"{chen['name']}的账户为您支付" in call.text

    # the holder's side: the posting reads as family aid, everywhere
    _portal(client, chen)
    postings = client.get("/portal/postings")
    assert 'data-role="paid"' in postings.text and "家庭共济支付" in postings.text
    text = pdf_text_of(client.get("/portal/statement.pdf?start=2026-01-01&end=2026-12-31").content)
    assert "家庭共济" in text and wang["name"] in text
    call = identify(phone(), choice="2", number=chen["certno"], pin=chen["phone_pin"])
    assert f"您的账户为{wang['name']}支付" in call.text
    client.cookies.clear()
    token = counter_login(client)
    visit(client, token, chen)
    counter = client.get(f"/counter/family/{chen['account_no']}")
    assert 'data-testid="family-payment" data-role="paid"' in counter.text
    person_page = client.get(f"/counter/person/{chen['account_no']}")
    assert "家庭共济支付" in person_page.text
    # in English, English throughout but for the names
    names = {zhang["name"], wang["name"], chen["name"]}
    english(client.get(f"/counter/family/{chen['account_no']}?lang=en").text, names)
    _portal(client, wang)
    english(client.get("/portal/family?lang=en").text, names)
    english(client.get("/portal/postings?lang=en").text, names)


def test_a_holder_pays_a_residents_contribution_once(client, demo, services):  # type: ignore[no-untyped-def]
    zhang, zhao = demo["persons"][0], demo["applicants"][0]
    assert _counter_bind(client, zhang, zhao).status_code == 200
    holder = _id(services, zhang["certno"])
    before = _balance(services, holder)
    token = _portal(client, zhang)
    page = client.get("/portal/family")
    key = re.search(r'name="key" value="([^"]+)"', page.text)
    assert key
    with services.uow() as u:
        binding = u.session.execute(select(FamilyBinding.id)).scalar_one()
    form = {"binding": str(binding), "year": "2027", "key": key.group(1), "csrf": token}
    paid = client.post("/portal/family/contribution", data=form)
    assert paid.status_code == 200 and 'data-testid="family-done"' in paid.text
    again = client.post("/portal/family/contribution", data=form)
    assert again.status_code == 200
    with services.uow() as u:
        rows = u.session.execute(select(FamilyPayment.amount)).scalars().all()
    assert len(rows) == 1 and _balance(services, holder) == before - rows[0]
    # a malformed year is refused by the form, naming it
    bad = client.post("/portal/family/contribution", data={**form, "year": "20x7"})
    assert bad.status_code == 422 and "年度" in bad.text


CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


def english(html: str, names: set[str]) -> None:
    # the page's main part: the header names the clerk's office and offers 中文
    text = re.sub(r"<[^>]+>", " ", html.split('<main id="main"', 1)[1])
    for name in names:
        text = text.replace(name, "")
    assert not CJK.search(text), CJK.findall(text)[:20]


def pdf_text_of(content: bytes) -> str:
    import pathlib
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return pdf_text(pathlib.Path(tmp), content)


@pytest.fixture(params=sorted(PLATFORMS))
def phone(request, client):  # type: ignore[no-untyped-def]
    return lambda **kw: PLATFORMS[request.param](client, **kw)
