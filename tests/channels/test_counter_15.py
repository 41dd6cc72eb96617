"""Issue 15 at the counter console: what cannot be undone is confirmed on a
second submit that one post cannot skip; service points complete their
cards from the due list and the person's page; the home page counts the
enrolment reviews overdue; a child applies with the household register."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from tests.channels.test_web_forms import counter_login, csrf_of
from tests.helpers import FUND_CLERK, add_person, new_certno
from yibao.domain.actors import Channel
from yibao.services.contributions import enrolment
from yibao.store.models import AccountClosure, Card, Person

FORM = {"resigned_on": "2026-10-31", "debit_bank": "工商银行", "debit_account": "6222020000000001"}
ALL = ["id_card", "id_card_copy", "photo", "resignation_papers", "household_register_copy"]


def visit(client, token, person, document="id_card"):
    r = client.post(
        "/counter/visit",
        data={"account_no": person["account_no"], "document": document, "csrf": token},
    )
    assert r.status_code == 200 and person["name"] in r.text, r.text[:300]
    return r


def status_of(uow, card_no):
    with uow:
        return uow.session.execute(select(Card.status).where(Card.card_no == card_no)).scalar_one()


def confirm_token(html):
    m = re.search(r'name="confirm" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


# ---------------------------------------------------------------- 4. confirming what cannot be undone


def test_cancelling_a_card_needs_a_second_submit_that_one_post_cannot_fake(client, demo, uow):
    token = counter_login(client, "wuxing")
    zhang = demo["persons"][0]
    visit(client, token, zhang)
    url = f"/counter/person/{zhang['account_no']}/cancel"
    fields = {"card_no": zhang["card_no"], "reason": "出国定居", "csrf": token}
    r = client.post(url, data=fields)
    assert r.status_code == 200 and 'data-testid="confirm"' in r.text
    assert zhang["card_no"] in r.text and "不能恢复" in r.text
    assert status_of(uow, zhang["card_no"]) == "issued"  # nothing done yet
    good = confirm_token(r.text)
    # a made-up token, or the real one with other fields, only asks again
    for forged in ({**fields, "reason": "别的", "confirm": good}, {**fields, "confirm": "x" * 32}):
        r = client.post(url, data=forged)
        assert r.status_code == 200 and 'data-testid="confirm"' in r.text
        assert status_of(uow, zhang["card_no"]) == "issued"
    # each time it asks again with a new token: the last page's one does it
    r = client.post(url, data={**fields, "confirm": confirm_token(r.text)})
    assert r.status_code == 200 and 'data-testid="result"' in r.text and "已注销" in r.text
    assert status_of(uow, zhang["card_no"]) == "cancelled"
    # a token is used once: replayed, the service refuses the cancelled card
    r = client.post(url, data={**fields, "confirm": good})
    assert r.status_code == 409 and status_of(uow, zhang["card_no"]) == "cancelled"


def test_a_refused_cancellation_is_refused_before_any_confirmation(client, demo, uow):
    token = counter_login(client, "wuxing")
    zhang, other = demo["persons"][0], demo["persons"][1]
    visit(client, token, zhang)
    r = client.post(
        f"/counter/person/{zhang['account_no']}/cancel",
        data={"card_no": other["card_no"], "reason": "x", "csrf": token},
    )
    assert r.status_code == 409 and "该卡不属于本次办理业务的参保人" in r.text
    assert 'data-testid="confirm"' not in r.text


def test_a_reissue_is_confirmed_before_the_old_card_is_cancelled(client, demo, uow):
    token = counter_login(client, "wuxing")
    zhang = demo["persons"][0]
    visit(client, token, zhang)
    url = f"/counter/person/{zhang['account_no']}/reissue"
    fields = {
        "card_no": zhang["card_no"],
        "reason": "卡片损坏",
        "materials": ["id_card", "photo"],
        "csrf": token,
    }
    r = client.post(url, data=fields)
    assert r.status_code == 200 and "将注销原卡" in r.text
    assert status_of(uow, zhang["card_no"]) == "issued"
    r = client.post(url, data={**fields, "confirm": confirm_token(r.text)})
    assert r.status_code == 200 and "已受理补换卡" in r.text
    assert status_of(uow, zhang["card_no"]) == "cancelled"


def test_closing_an_account_at_the_counter_names_the_balance_and_is_confirmed(client, demo, uow):
    token = counter_login(client, "wuxing")
    zhang = demo["persons"][0]
    visit(client, token, zhang)
    url = f"/counter/person/{zhang['account_no']}/close"
    # a destination that is no area is refused, naming the field, at once
    r = client.post(url, data={"kind": "transfer_out", "destination_area": "999999", "csrf": token})
    assert r.status_code == 422 and "999999不是现行的行政区划代码" in r.text
    fields = {
        "kind": "transfer_out",
        "destination_area": "310101",
        "reason": "调往上海",
        "csrf": token,
    }
    r = client.post(url, data=fields)
    assert r.status_code == 200 and "黄浦区" in r.text and zhang["card_no"] in r.text
    shown = re.search(r'data-testid="confirm-balance">([^<]+)<', r.text).group(1)
    with uow:
        assert uow.session.execute(select(AccountClosure)).first() is None
    r = client.post(url, data={**fields, "confirm": confirm_token(r.text)})
    assert r.status_code == 200 and "已注销医保账户" in r.text
    with uow:
        closure = uow.session.execute(select(AccountClosure)).scalar_one()
        person = uow.session.get(Person, closure.person_id)
        assert person is not None and person.status == "transferred_out"
        assert closure.destination_area == "310101" and closure.card_no == zhang["card_no"]
        assert shown.replace("¥", "").strip() == f"{closure.balance / 100:,.2f}"


# ---------------------------------------------------------------- 1. service-point cards


def test_a_service_point_marks_its_card_ready_from_the_due_list_then_hands_it_over(
    client, demo, uow
):
    token = counter_login(client, "yuehe")
    applicant = demo["applicants"][0]
    with uow:
        card_no = uow.session.execute(
            select(Card.card_no)
            .join(Person, Person.id == Card.person_id)
            .where(Person.certno == applicant["certno"])
        ).scalar_one()
    r = client.get("/counter/applications", params={"view": "due"})
    assert f'data-testid="ready-{card_no}"' in r.text
    r = client.post(f"/counter/cards/{card_no}/ready", data={"view": "due", "csrf": token})
    assert r.status_code == 200 and "已登记制卡完成" in r.text
    assert status_of(uow, card_no) == "ready"
    visit(client, token, applicant)
    r = client.post(
        f"/counter/person/{applicant['account_no']}/collect",
        data={"card_no": card_no, "collector_certno": applicant["certno"], "csrf": token},
    )
    assert r.status_code == 200 and "已领卡" in r.text, r.text[:400]
    assert status_of(uow, card_no) == "issued"


def test_a_service_point_marks_the_card_ready_from_the_persons_page(client, demo, uow):
    token = counter_login(client, "yuehe")
    applicant = demo["applicants"][0]
    page = visit(client, token, applicant)
    card_no = re.search(r'id="ready_card" name="card_no" value="(\d+)"', page.text).group(1)
    r = client.post(
        f"/counter/person/{applicant['account_no']}/ready",
        data={"card_no": card_no, "csrf": token},
    )
    assert r.status_code == 200 and "已登记制卡完成" in r.text
    assert status_of(uow, card_no) == "ready"
    # on somebody else's page the card is refused as not theirs
    zhang = demo["persons"][0]
    visit(client, token, zhang)
    r = client.post(
        f"/counter/person/{zhang['account_no']}/ready", data={"card_no": card_no, "csrf": token}
    )
    assert r.status_code == 409


# ---------------------------------------------------------------- 2. returned cards


def test_a_service_point_clerk_cancels_a_returned_card_at_the_counter(client, demo, uow):
    token = counter_login(client, "yuehe")
    zhang = demo["persons"][0]
    visit(client, token, zhang)
    url = f"/counter/person/{zhang['account_no']}/cancel"
    fields = {"card_no": zhang["card_no"], "reason": "死亡，家属交回", "csrf": token}
    r = client.post(url, data=fields)
    assert r.status_code == 200, r.text[:300]  # was 403: only county clerks
    r = client.post(url, data={**fields, "confirm": confirm_token(r.text)})
    assert r.status_code == 200 and status_of(uow, zhang["card_no"]) == "cancelled"


# ---------------------------------------------------------------- 3. enrolment reviews


def test_the_counter_home_counts_the_reviews_overdue(client, demo, services, clock):
    enrolment.submit(
        services.uow(), actor=FUND_CLERK, channel=Channel.API,
        certno=new_certno("330502", dt.date(1988, 2, 3)), name="吴芳",
        division_code="330502001", materials=ALL, subsidy_form=FORM,
    )  # fmt: skip
    counter_login(client, "wuxing")
    r = client.get("/counter/")
    assert 'data-testid="review-count"' in r.text and 'data-testid="overdue-count"' not in r.text
    clock.advance(dt.timedelta(days=1))  # the next morning: a new log-in
    counter_login(client, "wuxing")
    r = client.get("/counter/")
    assert re.search(r'data-testid="overdue-count">1<', r.text)
    r = client.get("/counter/enrolments")
    assert r.status_code == 200 and "吴芳" in r.text and 'data-testid="overdue"' in r.text


# ---------------------------------------------------------------- 5. a child's application


def test_a_child_applies_at_the_service_point_with_the_household_register(client, demo, services):
    child = add_person(
        services.uow(), division="330502001", name="小红",
        certno=new_certno("330502", dt.date(2017, 9, 1)),
    )  # fmt: skip
    token = counter_login(client, "yuehe")
    person = {"account_no": child.account_no, "name": "小红"}
    visit(client, token, person, document="household_register")
    r = client.post(
        f"/counter/person/{child.account_no}/apply",
        data={"path": "service_point", "materials": ["household_register", "photo"], "csrf": token},
    )
    assert r.status_code == 200 and "已受理办卡申请" in r.text, r.text[:400]
    assert csrf_of(r.text) == token
