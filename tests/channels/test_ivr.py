"""Whole telephone calls through the TwiML webhooks and the VoiceXML
documents: each test runs on both platforms and both databases."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.channels.ivr_phone import AGENT, PLATFORMS, ivr_settings
from tests.helpers import SYSTEM, WUXING, add_person, person_id_of
from yibao.domain import ledger as codes
from yibao.domain import speech
from yibao.domain.actors import Channel
from yibao.domain.ids import make_resident_id
from yibao.services.access import phone_pin
from yibao.services.cards import cards
from yibao.services.ledger import ledger
from yibao.store.models import AuditEntry, Person, PhonePin


@pytest.fixture
def settings(db_url, tmp_path):
    return ivr_settings(db_url, tmp_path)


@pytest.fixture(params=sorted(PLATFORMS))
def phone(request, client):
    """A new call on the platform under test."""
    return lambda **kw: PLATFORMS[request.param](client, **kw)


def identify(call, *, lang="1", choice="1", number, pin):
    call.dial()
    assert "普通话服务请按1" in call.text and "For English, please press 2" in call.text
    call.press(lang).press(choice)
    assert "身份证号码" in call.text or "resident ID number" in call.text
    call.press(number + "#")
    assert "电话查询密码" in call.text or "telephone PIN" in call.text
    return call.press(pin)


def person_of(uow, certno):
    with uow:
        return uow.session.execute(select(Person).where(Person.certno == certno)).scalar_one()


def balance_of(uow, person):
    with uow:
        return ledger.individual_balance(uow.session, person.id)


def test_balance_in_mandarin_is_read_in_words_and_audited(phone, demo, uow):
    p = demo["persons"][0]
    call = identify(phone(), number=p["certno"], pin=p["phone_pin"])
    person = person_of(uow, p["certno"])
    fen = balance_of(uow, person)
    assert fen > 0
    assert f"您的个人账户余额{speech.amount_zh(fen)}。" in call.text
    assert "查询个人账户余额请按1" in call.text  # back at the main menu
    with uow:
        reads = (
            uow.session.execute(select(AuditEntry).where(AuditEntry.action == "balance.read"))
            .scalars()
            .all()
        )
    assert [(a.channel, a.subject, a.person_id) for a in reads] == [
        ("telephone", call.call_id, person.id)
    ]


def test_balance_in_english_by_card_number(phone, demo, uow):
    p = demo["persons"][1]
    call = identify(phone(), lang="2", number=p["card_no"], pin=p["phone_pin"])
    fen = balance_of(uow, person_of(uow, p["certno"]))
    assert f"Your individual account balance is {speech.amount_en(fen)}." in call.text
    assert "For your account balance, press 1" in call.text


def test_last_transactions_and_last_contribution(phone, demo, uow):
    p = demo["persons"][0]
    call = identify(phone(), choice="2", number=p["certno"], pin=p["phone_pin"])
    person = person_of(uow, p["certno"])
    with uow:
        lines = ledger.history(uow.session, code=codes.individual(person.id), limit=3)
    assert lines
    assert f"最近{speech.integer_zh(len(lines))}笔账户交易" in call.text
    assert f"余额{speech.amount_zh(lines[0].balance_after)}" in call.text
    assert "最近一次缴费：" in call.text and "个人缴纳" in call.text


def test_reporting_the_card_lost_blocks_it_where_his_and_portal_read_it(phone, demo, uow):
    p = demo["persons"][2]
    call = identify(phone(), choice="3", number=p["certno"], pin=p["phone_pin"])
    tail = speech.digits(p["card_no"][-4:], "zh")
    assert f"您尾号{tail}的卡，状态：正常。" in call.text
    call.press("1")
    assert f"确认挂失尾号{tail}的卡请按1" in call.text
    call.press("1")
    assert "您的卡已挂失" in call.text
    person = person_of(uow, p["certno"])
    with uow:
        card = cards.current_card(uow, person)
        assert card is not None and card.card_no == p["card_no"] and card.status == "lost"
    call.press("3")  # the card menu now only tells the status
    assert "状态：已挂失" in call.text and "挂失请按1" not in call.text


def test_cancelling_the_lost_report_keeps_the_card(phone, demo, uow):
    p = demo["persons"][3]
    call = identify(phone(), lang="2", choice="3", number=p["card_no"], pin=p["phone_pin"])
    call.press("1").press("2")
    assert "Cancelled." in call.text
    person = person_of(uow, p["certno"])
    with uow:
        assert cards.current_card(uow, person).status == "issued"


def test_agent_transfer_dials_the_configured_number_with_the_person_attached(
    phone, demo, uow, client, token_for
):
    p = demo["persons"][0]
    call = identify(phone(), number=p["certno"], pin=p["phone_pin"])
    call.press("0")
    assert "正在为您转接人工服务" in call.text
    assert call.transferred_to == AGENT
    console = client.get(f"/api/v1/ivr/calls/{call.call_id}", headers=token_for("wuxing"))
    assert console.status_code == 200, console.text
    body = console.json()
    assert body["person"]["account_no"] == p["account_no"]
    assert body["state"] == "transferred" and body["agent_number"] == AGENT
    # to an agent of another county the call is not found, like any object there
    other = client.get(f"/api/v1/ivr/calls/{call.call_id}", headers=token_for("nanxun"))
    assert other.status_code == 404 and body["caller"] not in other.text


def test_agent_transfer_before_identifying_attaches_nobody(phone, demo, client, token_for):
    call = phone().dial().press("2").press("0")
    assert "Transferring you to an agent" in call.text and call.transferred_to == AGENT
    body = client.get(f"/api/v1/ivr/calls/{call.call_id}", headers=token_for("wuxing")).json()
    assert body["person"] is None and body["lang"] == "en"


def test_menu_nine_repeats_and_a_wrong_key_says_so(phone, demo):
    call = phone().dial().press("1")
    menu = call.text
    call.press("9")
    assert call.text == menu
    call.press("7")
    assert call.text.startswith("输入有误。") and "重听请按9" in call.text


def test_a_malformed_number_three_times_ends_with_how_to_reset(phone, demo):
    call = phone().dial().press("1").press("1")
    call.press("12345#")
    assert "号码有误" in call.text and "身份证号码或社保卡号" in call.text
    call.press("330502198503120113#")  # check character wrong
    assert "号码有误" in call.text
    call.press("5720001015#")  # Luhn digit wrong
    assert "输入错误次数过多" in call.text and "到医保经办窗口" in call.text
    assert call.hung_up


def test_wrong_pins_end_the_call_and_an_unknown_id_is_not_revealed(phone, demo):
    p = demo["persons"][0]
    unknown = make_resident_id("330502", dt.date(1970, 1, 1), 999)
    call = identify(phone(), number=unknown, pin=p["phone_pin"])
    assert "密码不正确" in call.text  # the same answer as for a registered number
    call.press("111111")
    assert "密码不正确" in call.text
    call.press(p["phone_pin"])
    assert "输入错误次数过多" in call.text and call.hung_up


def test_repeated_wrong_pins_lock_the_telephone_pin_for_the_day(phone, demo, uow, clock):
    p = demo["persons"][4]
    call = identify(phone(), number=p["certno"], pin="000000")
    call.press("111111").press("222222")
    assert call.hung_up and "输入错误次数过多" in call.text
    call = identify(phone(), number=p["certno"], pin="333333")
    call.press("444444")  # the fifth wrong PIN today
    assert "今日已锁定" in call.text and call.hung_up
    call = identify(phone(), number=p["certno"], pin=p["phone_pin"])
    assert "今日已锁定" in call.text and call.hung_up  # even the right PIN, today
    person = person_of(uow, p["certno"])
    with uow:
        row = uow.session.get(PhonePin, person.id)
        assert row.locked_on == clock.today() and row.failures == 5
        locks = (
            uow.session.execute(select(AuditEntry).where(AuditEntry.action == "phone_pin.locked"))
            .scalars()
            .all()
        )
        assert len(locks) == 1 and locks[0].channel == "telephone"
    clock.advance(dt.timedelta(days=1))
    call = identify(phone(), number=p["certno"], pin=p["phone_pin"])
    assert "您的个人账户余额" in call.text


def test_silence_repeats_the_prompt_once_then_ends_politely(phone, demo):
    call = phone().dial()
    first = call.text
    call.silence()
    assert call.text == first and not call.hung_up
    call.press("2").silence()
    assert "For your account balance, press 1" in call.text
    call.silence()
    assert "We did not hear from you" in call.text and call.hung_up


def test_a_final_x_is_keyed_as_star(phone, demo, uow):
    certno = next(
        c
        for c in (make_resident_id("330502", dt.date(1988, 8, 8), s) for s in range(1, 999))
        if c.endswith("X")
    )
    person = add_person(uow, certno=certno, name="星号")
    phone_pin.set_phone_pin(
        uow, actor=SYSTEM, channel=Channel.CLI, person_id=person.id, pin="864213"
    )
    call = identify(phone(), number=certno[:17] + "*", pin="864213")
    assert f"您的个人账户余额{speech.amount_zh(balance_of(uow, person))}" in call.text


def test_a_refusal_from_a_service_is_spoken_never_a_trace(phone, demo, uow):
    p = demo["persons"][0]
    call = identify(phone(), choice="3", number=p["certno"], pin=p["phone_pin"])
    call.press("1")  # asked to confirm ...
    # ... while the counter reports the same card lost
    cards.report_lost(
        uow,
        actor=WUXING,
        channel=Channel.COUNTER,
        person_id=person_id_of(uow, p["certno"]),
        card_no=p["card_no"],
    )
    call.press("1")
    assert "系统暂时无法办理" in call.text and "不能变为" in call.text
    assert "查询个人账户余额请按1" in call.text
    assert not call.hung_up


# ---------------------------------------------------------------- one decision, one inquiry


@pytest.mark.parametrize("state", ["lost", "frozen", "cancelled", "replaced"])
def test_a_card_number_that_may_not_be_used_opens_nothing_on_the_telephone(
    phone, demo, services, uow, state
):
    from tests.channels.states import CARD_SAYS, set_card

    p = demo["persons"][0]
    fen = balance_of(uow, person_of(uow, p["certno"]))
    set_card(services, p["card_no"], state)
    zh, en = CARD_SAYS[state]
    call = identify(phone(), number=p["card_no"], pin=p["phone_pin"])  # the PIN is right
    assert zh in call.text and "您的个人账户余额" not in call.text
    assert "查询个人账户余额请按1" in call.text and not call.hung_up  # the menu, e.g. for an agent
    for choice in ("2", "3"):  # nor the transactions, nor the card menu
        call.press(choice)
        assert zh in call.text and "最近一次缴费：" not in call.text
        assert "笔账户交易" not in call.text and "挂失请按1" not in call.text
    call = identify(phone(), lang="2", number=p["card_no"], pin=p["phone_pin"])
    assert en in call.text and speech.amount_en(fen) not in call.text
    with uow:
        reads = uow.session.execute(
            select(AuditEntry).where(AuditEntry.action.in_(["balance.read", "card.read"]))
        ).scalars()
        assert list(reads) == []


def test_by_the_id_number_the_balance_is_read_whatever_the_card(phone, demo, services, uow):
    """The card opens nothing when it is what the caller presents; identified
    by the ID number and the PIN, the person hears their balance."""
    from tests.channels.states import set_card

    p = demo["persons"][0]
    set_card(services, p["card_no"], "lost")
    fen = balance_of(uow, person_of(uow, p["certno"]))
    call = identify(phone(), number=p["certno"], pin=p["phone_pin"])
    assert f"您的个人账户余额{speech.amount_zh(fen)}。" in call.text
    call.press("3")
    assert "状态：已挂失" in call.text and "挂失请按1" not in call.text


@pytest.mark.parametrize("status", ["deceased", "emigrated", "transferred_out"])
def test_a_person_whose_insurance_ended_is_refused_on_the_telephone(
    phone, demo, services, uow, status
):
    from tests.channels.states import PERSON_SAYS, set_person

    p = demo["persons"][1]
    set_person(services, p["certno"], status)
    zh, en = PERSON_SAYS[status]
    call = identify(phone(), number=p["certno"], pin=p["phone_pin"])
    assert zh in call.text and "您的个人账户余额" not in call.text
    call = identify(phone(), lang="2", choice="2", number=p["card_no"], pin=p["phone_pin"])
    assert en in call.text and "Last contribution" not in call.text


def test_suspended_for_arrears_hears_the_balance_and_the_suspension(phone, demo, services, uow):
    from tests.channels.states import suspend

    p = demo["persons"][0]
    suspend(services, p["certno"])
    fen = balance_of(uow, person_of(uow, p["certno"]))
    call = identify(phone(), number=p["certno"], pin=p["phone_pin"])
    assert f"您的个人账户余额{speech.amount_zh(fen)}。" in call.text
    assert "欠费暂停享受医保待遇" in call.text
    call = identify(phone(), lang="2", choice="2", number=p["card_no"], pin=p["phone_pin"])
    assert "suspended for unpaid contributions" in call.text and "Last contribution" in call.text
