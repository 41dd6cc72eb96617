"""The telephone line's dialog (issue 6; seed 000, the second way): one state
machine over (call id, state, digits), independent of any telephony platform.

A platform adapter (TwiML, VoiceXML, the terminal simulator) calls
``start_call`` when a call comes in and ``step`` with each keypad entry
(``None`` or ``""`` for silence) and renders the ``Turn`` it gets back. The
state lives in ``ivr_calls`` because app servers are stateless: each step may
land on a different one.

Flow: language (1 Mandarin, 2 English) → main menu (1 balance, 2 last
transactions and last contribution, 3 card status and reporting a lost card,
9 repeat, 0 an agent). 1-3 need the caller identified first: a resident ID
number (``*`` for the final X) or a card number, ended with ``#``, then the
6-digit telephone PIN. Three wrong entries end the call with how to reset the
PIN; wrong PINs on one day lock the telephone PIN until the next day. A first
silence repeats the prompt, a second ends the call politely.

``start_call`` and ``step`` are use cases: each keypad entry is one
transaction. What a proven caller hears comes from the services: the
balance, the last transactions and the card from the account summary
(``summary.summarize``), which refuses a lost, frozen, cancelled or replaced
card the caller identified with, and a person whose insurance has ended,
naming why; the loss report from the cards service.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select

from yibao.domain import ids, speech
from yibao.domain.access import Perm
from yibao.domain.actors import Actor, Channel
from yibao.domain.cards import CardStatus
from yibao.domain.errors import DomainError, not_found
from yibao.domain.use import Named, Presenter
from yibao.services.access import phone_pin
from yibao.services.access.person_login import person_actor
from yibao.services.cards import cards as card_service
from yibao.services.contributions import contributions
from yibao.services.inquiry import records, summary
from yibao.services.tx import use_case
from yibao.store.models import Card, IvrCall, Person
from yibao.store.uow import UnitOfWork

LANGS = ("zh", "en")
MAX_TRIES = 3
# Seconds a platform waits for a key before it reports silence.
TIMEOUT = 6

# Every fixed prompt, in both languages: the adapters speak them with
# text-to-speech or play the recordings `yibao ivr prompts` renders.
PROMPTS: dict[str, tuple[str, str]] = {
    "welcome": (
        "您好，欢迎致电医保服务热线。普通话服务请按1。",
        "For English, please press 2.",
    ),
    "menu": (
        "查询个人账户余额请按1；查询最近交易和最近一次缴费请按2；"
        "查询社保卡状态或挂失请按3；重听请按9；人工服务请按0。",
        "For your account balance, press 1. For your last transactions and last "
        "contribution, press 2. For your card status or to report a lost card, press 3. "
        "To hear this again, press 9. To speak to an agent, press 0.",
    ),
    "ident": (
        "请输入您的身份证号码或社保卡号，以井号键结束。身份证号码最后一位是X的，请按星号键。",
        "Please enter your resident ID number or your card number, followed by the hash key. "
        "For a final X in an ID number, press star.",
    ),
    "pin": ("请输入六位电话查询密码。", "Please enter your six-digit telephone PIN."),
    "bad_id": ("号码有误。", "That number is not valid."),
    "wrong_pin": ("密码不正确。", "That PIN is not correct."),
    "too_many": (
        "输入错误次数过多。如忘记或未设置电话查询密码，请携带身份证到医保经办窗口办理，"
        "或登录网上服务大厅设置。感谢您的来电，再见。",
        "Too many wrong entries. If you have forgotten or not yet set your telephone PIN, "
        "please set it at a medical insurance service counter with your ID card, or in the "
        "online portal. Thank you for calling. Goodbye.",
    ),
    "locked": (
        "您的电话查询密码今日已锁定，请明天再试，或携带身份证到医保经办窗口重置。再见。",
        "Your telephone PIN is locked for today. Please try again tomorrow, or reset it at a "
        "service counter with your ID card. Goodbye.",
    ),
    "invalid_key": ("输入有误。", "Sorry, that key is not valid."),
    "silence_bye": (
        "没有收到您的按键，感谢您的来电，再见。",
        "We did not hear from you. Thank you for calling. Goodbye.",
    ),
    "transfer": ("正在为您转接人工服务，请稍候。", "Transferring you to an agent, please hold."),
    "no_agent": ("人工服务暂不可用。", "No agent is available at the moment."),
    "no_history": ("暂无账户交易记录。", "There are no account transactions."),
    "no_contribution": ("暂无缴费记录。", "There is no contribution on record."),
    "no_card": ("您名下暂无社保卡。", "There is no card in your name."),
    "card_menu": (
        "挂失请按1，返回主菜单请按9。",
        "To report it lost, press 1. For the main menu, press 9.",
    ),
    "lost_done": (
        "您的卡已挂失，医院和药店将不能再使用此卡。补办新卡请携带身份证到医保经办窗口。",
        "Your card is now reported lost; hospitals and pharmacies can no longer use it. "
        "For a new card, please visit a service counter with your ID card.",
    ),
    "cancelled": ("已取消。", "Cancelled."),
    "suspended": (
        "您因欠费暂停享受医保待遇，补缴后恢复。",
        "Your benefits are suspended for unpaid contributions until they are paid.",
    ),
    "error": (
        "系统暂时无法办理，请稍后再试。",
        "Sorry, we cannot do that right now. Please try again later.",
    ),
    "failure": (
        "系统暂时无法办理，请稍后再拨。再见。",
        "Sorry, the service is not available right now. Please call again later. Goodbye.",
    ),
}

_CARD_STATUS = {
    "applied": ("已申请", "applied for"),
    "in_production": ("制作中", "being produced"),
    "ready": ("已制好待领取", "ready for collection"),
    "issued": ("正常", "active"),
    "lost": ("已挂失", "reported lost"),
    "frozen": ("已冻结", "frozen"),
    "cancelled": ("已注销", "cancelled"),
}


@dataclass
class Speech:
    lang: str
    text: str
    key: str = ""  # a fixed prompt (has a recording), else spoken by text-to-speech


@dataclass
class Gather:
    """Wait for keys: exactly ``digits`` of them, or up to ``max_digits`` ended by ``#``."""

    digits: int = 0
    max_digits: int = 1
    timeout: int = TIMEOUT


@dataclass
class Turn:
    speech: list[Speech] = field(default_factory=list)
    gather: Gather | None = None
    transfer: str = ""
    hangup: bool = False
    state: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        gather = data.get("gather")
        return cls(
            speech=[Speech(**s) for s in data.get("speech", [])],
            gather=Gather(**gather) if gather else None,
            transfer=data.get("transfer", ""),
            hangup=data.get("hangup", False),
            state=data.get("state", ""),
        )

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.speech)


def prompt(key: str, lang: str) -> Speech:
    zh, en = PROMPTS[key]
    return Speech(lang, zh if lang == "zh" else en, key)


def _say(lang: str, zh: str, en: str) -> Speech:
    return Speech(lang, zh if lang == "zh" else en)


ONE_KEY = Gather(digits=1, max_digits=1)
PIN_KEYS = Gather(digits=6, max_digits=6)
ID_KEYS = Gather(digits=0, max_digits=19)


# ---------------------------------------------------------------- the engine


def _load(uow: UnitOfWork, call_id: str) -> IvrCall | None:
    return uow.session.execute(
        select(IvrCall).where(IvrCall.call_id == call_id).with_for_update()
    ).scalar_one_or_none()


# What the call remembers beside its state, kept in the last turn's JSON (no
# column of its own): the card number the caller identified with, whose state
# decides what the call may read, and the card the card menu spoke of.
_MEMO = "memo"


def _memo(call: IvrCall) -> dict[str, str]:
    memo = (call.last_turn or {}).get(_MEMO) or {}
    return dict(memo)


def _set_memo(call: IvrCall, **values: str | None) -> None:
    memo = {k: v for k, v in {**_memo(call), **values}.items() if v}
    call.last_turn = {**(call.last_turn or {}), _MEMO: memo}


@use_case
def start_call(uow: UnitOfWork, *, call_id: str, caller: str = "", platform: str) -> Turn:
    """A call comes in (or the platform starts it again): the language choice."""
    now = uow.clock.now()
    call = _load(uow, call_id)
    if call is None:
        call = IvrCall(call_id=call_id, platform=platform, started_at=now)
        uow.session.add(call)
    call.caller = caller[:40]
    call.state, call.lang, call.pending = "lang", "zh", ""
    call.tries = call.silences = 0
    call.candidate_id = call.person_id = None
    call.updated_at, call.ended_at = now, None
    call.last_turn = {}
    return _remember(call, _lang_turn())


@use_case
def step(uow: UnitOfWork, *, call_id: str, digits: str | None) -> Turn:
    """The caller keyed ``digits`` (``None`` or empty: silence) in the call's state."""
    call = _load(uow, call_id)
    if call is None or call.state == "ended":
        return Turn([prompt("silence_bye", call.lang if call else "zh")], hangup=True)
    call.updated_at = uow.clock.now()
    keys = (digits or "").strip().rstrip("#")
    if not keys:
        call.silences += 1
        if call.silences >= 2:
            return _end(call, uow, Turn([prompt("silence_bye", call.lang)], hangup=True))
        return Turn.from_dict(call.last_turn)
    call.silences = 0
    try:
        turn = _HANDLERS[call.state](uow, call, keys)
    except DomainError as exc:
        # a refusal from a service becomes a spoken prompt, never a trace;
        # what the step did before it is undone
        uow.rollback()
        call = _load(uow, call_id)
        assert call is not None
        call.state = "menu"
        said = _say(call.lang, exc.zh.rstrip("。") + "。", exc.en.rstrip(".") + ".")
        turn = _menu_turn(call.lang, [prompt("error", call.lang), said])
    if turn.hangup:
        _end(call, uow, turn)
    elif turn.transfer:
        call.state = "transferred"
    elif turn.state:
        call.state = turn.state
    return _remember(call, turn)


def _remember(call: IvrCall, turn: Turn) -> Turn:
    call.last_turn = {**turn.as_dict(), _MEMO: _memo(call)}
    return turn


def _end(call: IvrCall, uow: UnitOfWork, turn: Turn) -> Turn:
    call.state = "ended"
    call.ended_at = uow.clock.now()
    return turn


def _lang_turn() -> Turn:
    return Turn([prompt("welcome", "zh"), prompt("welcome", "en")], ONE_KEY, state="lang")


def failure_turn() -> Turn:
    """What the line says when the system fails under a step (the database
    gone), the language not known: sorry, in both, and goodbye."""
    return Turn([prompt("failure", "zh"), prompt("failure", "en")], hangup=True)


def _menu_turn(lang: str, before: list[Speech] | None = None) -> Turn:
    return Turn([*(before or []), prompt("menu", lang)], ONE_KEY, state="menu")


def _on_lang(uow: UnitOfWork, call: IvrCall, keys: str) -> Turn:
    if keys not in ("1", "2"):
        return Turn([prompt("invalid_key", "zh"), *_lang_turn().speech], ONE_KEY, state="lang")
    call.lang = LANGS[int(keys) - 1]
    return _menu_turn(call.lang)


def _on_menu(uow: UnitOfWork, call: IvrCall, keys: str) -> Turn:
    lang = call.lang
    if keys == "9":
        return Turn.from_dict(call.last_turn) if call.last_turn else _menu_turn(lang)
    if keys == "0":
        return _transfer(uow, call)
    if keys in ("1", "2", "3"):
        if call.person_id is None:
            call.pending = keys
            return Turn([prompt("ident", lang)], ID_KEYS, state="ident")
        return _serve(uow, call, keys)
    return _menu_turn(lang, [prompt("invalid_key", lang)])


def _transfer(uow: UnitOfWork, call: IvrCall) -> Turn:
    number = uow.settings.ivr_agent_number
    if not number:
        return _menu_turn(call.lang, [prompt("no_agent", call.lang)])
    call.agent_number = number
    call.transferred_at = uow.clock.now()
    return Turn([prompt("transfer", call.lang)], transfer=number)


def _fail_try(call: IvrCall, what: str, retry: Turn) -> Turn:
    call.tries += 1
    if call.tries >= MAX_TRIES:
        return Turn([prompt("too_many", call.lang)], hangup=True)
    return Turn([prompt(what, call.lang), *retry.speech], retry.gather, state=retry.state)


def _on_ident(uow: UnitOfWork, call: IvrCall, keys: str) -> Turn:
    lang = call.lang
    number = keys.replace("*", "X")
    person_id: int | None = None
    keyed_card: str | None = None
    if len(number) == 18:
        try:
            rid = ids.parse_resident_id(number, today=uow.clock.today())
        except DomainError:
            return _fail_try(call, "bad_id", Turn([prompt("ident", lang)], ID_KEYS, state="ident"))
        person_id = uow.session.execute(
            select(Person.id).where(Person.certno == rid.number)
        ).scalar_one_or_none()
    elif ids.is_card_no(number):
        person_id = uow.session.execute(
            select(Card.person_id).where(Card.card_no == number)
        ).scalar_one_or_none()
        keyed_card = number
    else:
        return _fail_try(call, "bad_id", Turn([prompt("ident", lang)], ID_KEYS, state="ident"))
    # A well-formed number nobody holds goes on to the PIN like any other, so
    # that the line does not tell a caller whose numbers are registered.
    call.candidate_id = person_id
    _set_memo(call, keyed_card=keyed_card if person_id is not None else None, card=None)
    return Turn([prompt("pin", lang)], PIN_KEYS, state="pin")


def _on_pin(uow: UnitOfWork, call: IvrCall, keys: str) -> Turn:
    lang = call.lang
    retry = Turn([prompt("pin", lang)], PIN_KEYS, state="pin")
    if call.candidate_id is None:
        return _fail_try(call, "wrong_pin", retry)
    result = phone_pin.check_phone_pin(
        uow,
        person_id=call.candidate_id,
        pin=keys,
        channel=Channel.TELEPHONE,
        subject=call.call_id,
    )
    if result == "locked":
        return Turn([prompt("locked", lang)], hangup=True)
    if result != "ok":
        return _fail_try(call, "wrong_pin", retry)
    call.person_id, call.tries = call.candidate_id, 0
    pending, call.pending = call.pending or "1", ""
    return _serve(uow, call, pending)


def _actor(uow: UnitOfWork, call: IvrCall) -> Actor:
    """The proven caller, acting for themselves."""
    person = uow.session.get(Person, call.person_id)
    if person is None:
        raise not_found("参保人员", "person", "person.not_found")
    return person_actor(person)


def _summary(
    uow: UnitOfWork,
    call: IvrCall,
    *,
    recent: int,
    action: str = "balance.read",
    detail: dict[str, object] | None = None,
) -> summary.AccountSummary:
    """The caller's account summary: by the card they keyed in, if they did
    (so that its state decides), else by the person the PIN proved."""
    keyed = _memo(call).get("keyed_card")
    return summary.summarize(
        uow,
        actor=_actor(uow, call),
        channel=Channel.TELEPHONE,
        presenter=Presenter.HOLDER,
        person_id=None if keyed else call.person_id,
        card_no=keyed,
        named=Named(person_id=call.person_id) if keyed else None,
        recent=recent,
        action=action,
        subject=call.call_id,
        detail=detail,
    )


def _serve(uow: UnitOfWork, call: IvrCall, choice: str) -> Turn:
    try:
        if choice == "1":
            return _menu_turn(call.lang, read_balance(uow, call))
        if choice == "2":
            return _menu_turn(call.lang, read_records(uow, call))
        return _card_turn(uow, call)
    except DomainError as refused:
        # the card keyed in or the person may not be used for an inquiry:
        # say why (the card's state, the relation ended), and nothing else
        said = _say(call.lang, refused.zh.rstrip("。") + "。", refused.en.rstrip(".") + ".")
        return _menu_turn(call.lang, [said])


def _suspension(call: IvrCall, s: summary.AccountSummary) -> list[Speech]:
    return [prompt("suspended", call.lang)] if s.suspended else []


def read_balance(uow: UnitOfWork, call: IvrCall) -> list[Speech]:
    s = _summary(uow, call, recent=0)
    fen = s.balance
    return [
        _say(
            call.lang,
            f"您的个人账户余额{speech.amount_zh(fen)}。",
            f"Your individual account balance is {speech.amount_en(fen)}.",
        ),
        *_suspension(call, s),
    ]


def read_records(uow: UnitOfWork, call: IvrCall, *, limit: int = 3) -> list[Speech]:
    s = _summary(uow, call, recent=limit, detail={"read": "transactions"})
    lang = call.lang
    lines = s.recent
    out: list[Speech] = []
    if not lines:
        out.append(prompt("no_history", lang))
    else:
        out.append(
            _say(
                lang,
                f"最近{speech.integer_zh(len(lines))}笔账户交易。",
                f"Your last {speech.integer_en(len(lines))} account transactions.",
            )
        )
    for line in lines:
        day = uow.clock.local(line.at).date()
        zh_cause, en_cause = records.cause(line.kind)
        amount_zh, amount_en = (
            speech.amount_zh(abs(line.amount)),
            speech.amount_en(abs(line.amount)),
        )
        out.append(
            _say(
                lang,
                f"{speech.date_zh(day)}，{zh_cause}"
                + (f"{amount_zh}" if line.amount >= 0 else f"，支出{amount_zh}")
                + f"，余额{speech.amount_zh(line.balance_after)}。",
                f"{speech.date_en(day)}, {en_cause}, {amount_en}"
                + ("" if line.amount >= 0 else " paid out")
                + f", balance {speech.amount_en(line.balance_after)}.",
            )
        )
    out.extend(_family_lines(uow, lang, s))
    paid = contributions.payment_records(uow.session, s.person_id)
    if not paid:
        out.append(prompt("no_contribution", lang))
    else:
        last = paid[0]
        if last.paid_at is not None:
            on = uow.clock.local(last.paid_at).date()
            state_zh, state_en = f"已于{speech.date_zh(on)}缴费", f"paid on {speech.date_en(on)}"
        else:
            state_zh, state_en = "尚未缴费", "not yet paid"
        out.append(
            _say(
                lang,
                f"最近一次缴费：{speech.month_zh(last.month)}，个人缴纳"
                f"{speech.amount_zh(last.individual_amount)}，单位缴纳"
                f"{speech.amount_zh(last.employer_amount)}，{state_zh}。",
                f"Last contribution: {speech.month_en(last.month)}, your part "
                f"{speech.amount_en(last.individual_amount)}, employer part "
                f"{speech.amount_en(last.employer_amount)}, {state_en}.",
            )
        )
    return [*out, *_suspension(call, s)]


def _family_lines(uow: UnitOfWork, lang: str, s: summary.AccountSummary) -> list[Speech]:
    """The latest family mutual aid payments, both ways: whose account paid
    for whom (issue 16)."""
    out = []
    for p in s.family:
        day = uow.clock.local(p.at).date()
        amount_zh, amount_en = speech.amount_zh(p.amount), speech.amount_en(p.amount)
        purpose_zh, purpose_en = p.purpose
        undone_zh, undone_en = ("，已撤销", ", cancelled") if p.reversed else ("", "")
        if p.role_of(s.person_id) == "paid":
            zh = f"{speech.date_zh(day)}，家庭共济，您的账户为{p.relative_name}支付{purpose_zh}{amount_zh}"
            en = f"{speech.date_en(day)}, family aid: your account paid {amount_en} of {p.relative_name}'s {purpose_en}"
        else:
            zh = f"{speech.date_zh(day)}，家庭共济，{p.holder_name}的账户为您支付{purpose_zh}{amount_zh}"
            en = f"{speech.date_en(day)}, family aid: {p.holder_name}'s account paid {amount_en} of your {purpose_en}"
        out.append(_say(lang, f"{zh}{undone_zh}。", f"{en}{undone_en}."))
    return out


def _tail(card_no: str, lang: str) -> str:
    return speech.digits(card_no[-4:], lang)


def _card_turn(uow: UnitOfWork, call: IvrCall) -> Turn:
    lang = call.lang
    s = _summary(uow, call, recent=0, action="card.read")
    if s.card is None:
        return _menu_turn(lang, [prompt("no_card", lang)])
    zh_status, en_status = _CARD_STATUS.get(s.card.status, (s.card.status, s.card.status))
    said = _say(
        lang,
        f"您尾号{_tail(s.card.card_no, 'zh')}的卡，状态：{zh_status}。",
        f"Your card ending in {_tail(s.card.card_no, 'en')} is {en_status}.",
    )
    if s.card.status != CardStatus.ISSUED.value:
        return _menu_turn(lang, [said])
    _set_memo(call, card=s.card.card_no)  # the card a loss report is about
    return Turn([said, prompt("card_menu", lang)], ONE_KEY, state="card")


def _on_card(uow: UnitOfWork, call: IvrCall, keys: str) -> Turn:
    lang = call.lang
    card_no = _memo(call).get("card")
    if keys != "1" or not card_no:
        return _menu_turn(lang)
    return Turn(
        [
            _say(
                lang,
                f"确认挂失尾号{_tail(card_no, 'zh')}的卡请按1，取消请按2。",
                f"To confirm reporting the card ending in {_tail(card_no, 'en')} lost, "
                "press 1. To cancel, press 2.",
            )
        ],
        ONE_KEY,
        state="lost",
    )


def _on_lost(uow: UnitOfWork, call: IvrCall, keys: str) -> Turn:
    lang = call.lang
    card_no = _memo(call).get("card")
    if keys != "1" or not card_no:
        return _menu_turn(lang, [prompt("cancelled", lang)])
    assert call.person_id is not None  # the menu is reached only once identified
    card_service.report_lost.step(
        uow,
        actor=_actor(uow, call),
        channel=Channel.TELEPHONE,
        person_id=call.person_id,
        card_no=card_no,
        reason=f"reported lost by telephone, call {call.call_id}",
    )
    return _menu_turn(lang, [prompt("lost_done", lang)])


def _on_over(uow: UnitOfWork, call: IvrCall, keys: str) -> Turn:
    return Turn([prompt("silence_bye", call.lang)], hangup=True)


_HANDLERS = {
    "lang": _on_lang,
    "menu": _on_menu,
    "ident": _on_ident,
    "pin": _on_pin,
    "card": _on_card,
    "lost": _on_lost,
    "transferred": _on_over,
}


# ---------------------------------------------------------------- the agent's console


@dataclass
class CallView:
    call: IvrCall
    person: Person | None


@use_case
def get_call(uow: UnitOfWork, *, actor: Actor, channel: str, call_id: str) -> CallView:
    """A call as the agent's console shows it: state, language, the caller's
    number and the person the caller proved to be.

    A call is in the area of the person proven on it: to staff of another
    area it is not found, like any other object there (the caller's number
    and the call's times are the person's too). A call where nobody was
    proven belongs to no area; it is shown once it was transferred to the
    agents, who must see who is waiting, and not before."""
    actor.require(Perm.PERSON_READ)
    call = uow.session.execute(
        select(IvrCall).where(IvrCall.call_id == call_id)
    ).scalar_one_or_none()
    person = uow.session.get(Person, call.person_id) if call and call.person_id else None
    if (
        call is None
        or (person is not None and not actor.sees(person.division_code))
        or (person is None and call.transferred_at is None)
    ):
        raise not_found("通话", "call", "call.not_found")
    uow.audit(
        actor.record(
            channel=channel,
            action="ivr.call.read",
            person_id=person.id if person else None,
            subject=call_id,
        )
    )
    return CallView(call, person)
