"""Whether a card, or a person reached without a card, may be used for a
purpose: one decision for every channel.

The HIS (1101, 2201, 2206, 2207), the self-service terminal, the telephone,
the portal, the counter and the staff API each read the facts and call
``decide``; none of them decides on its own. So a lost card opens nothing
anywhere, and a rule changed here changes for every channel.

- A presented card opens something only while it is issued (正常): a lost,
  frozen, cancelled or replaced card, or one still being made, is refused,
  naming its state. Collecting a card needs it ready for pickup instead.
- The card is for the insured person's sole use (seed 000, part three, item
  2): a request that names another person beside the card is refused,
  naming the mismatch.
- A person whose insurance relation has ended (death, emigration, transfer
  out) is refused, naming why; staff still see them.
- Benefits are paid (``SETTLEMENT``) only on an active enrolment, in the
  insured person's pooling area or with a cross-area arrangement; an
  inquiry needs neither, and shows the suspension instead.
- Staff at the counter or on the staff API see the person whatever the
  card's or the person's state: they are shown the states, not refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from yibao.domain import offsite
from yibao.domain.cards import STATUS_ZH, CardStatus
from yibao.domain.errors import DomainError


class Purpose(StrEnum):
    INQUIRY = "inquiry"  # balance, transactions, person information (HIS 1101)
    SETTLEMENT = "settlement"  # registration, pre-settlement, settlement at an institution
    COLLECTION = "collection"  # handing a produced card over


class Presenter(StrEnum):
    HOLDER = "holder"  # the person: card and PIN, password, telephone PIN
    INSTITUTION = "institution"  # a designated institution's HIS
    STAFF = "staff"  # a clerk, who checked a document, or the staff API


@dataclass(frozen=True)
class CardState:
    card_no: str
    status: str
    holder_id: int
    replaced: bool = False  # a reissue replaced it


@dataclass(frozen=True)
class PersonState:
    id: int
    name: str
    certno: str
    status: str  # active, deceased, emigrated, transferred_out
    enrolment: str | None = None  # active, suspended, terminated; None: never enrolled
    insured_area: str = ""
    # insured in the pooling area of the place of use, or with a cross-area filing there
    arrangement: bool = True
    # without an arrangement, why no filing covers (``domain.offsite.cover``)
    offsite: str = "none"


@dataclass(frozen=True)
class Named:
    """Who the request says the person is, beside the card it presents (the
    HIS's ``psn_no``, ``certno``, ``psn_name``); None where it does not say."""

    person_id: int | None = None
    certno: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    refusal: DomainError | None = None

    def require(self) -> None:
        """Raise the refusal, if any."""
        if self.refusal is not None:
            raise self.refusal


ALLOWED = Decision(True)

CARD_STATE_ZH = {
    CardStatus.LOST.value: "该卡已挂失，不能使用",
    CardStatus.FROZEN.value: "该卡已冻结，不能使用",
    CardStatus.CANCELLED.value: "该卡已注销，不能使用",
}
PERSON_STATE_ZH = {
    "deceased": "该参保人已死亡，参保关系已终止",
    "emigrated": "该参保人已出国定居，参保关系已终止",
    "transferred_out": "该参保人医保关系已转出",
}
PERSON_STATE_EN = {
    "deceased": "the person has died; the insurance relation has ended",
    "emigrated": "the person has emigrated; the insurance relation has ended",
    "transferred_out": "the person's insurance relation was transferred out",
}


def card_state_code(card: CardState) -> str:
    """The card's state as the refusals name it: lost, frozen, cancelled,
    replaced, not_issued (applied, in production, ready), or issued."""
    if card.status == CardStatus.CANCELLED.value and card.replaced:
        return "replaced"
    if card.status in (CardStatus.LOST.value, CardStatus.FROZEN.value):
        return card.status
    if card.status == CardStatus.CANCELLED.value:
        return "cancelled"
    if card.status == CardStatus.ISSUED.value:
        return "issued"
    return "not_issued"


def _refuse(code: str, zh: str, en: str, field: str | None, status: int = 409) -> Decision:
    return Decision(False, DomainError(code=code, zh=zh, en=en, field=field, status=status))


def _card_refusal(card: CardState, purpose: Purpose, field: str) -> Decision | None:
    if purpose is Purpose.COLLECTION:
        if card.status == CardStatus.READY.value:
            return None
        state = STATUS_ZH.get(CardStatus(card.status), card.status)
        return _refuse(
            "card.not_ready",
            f"卡片状态为“{state}”，不能领取",
            f"a card that is {card.status} cannot be collected",
            field,
        )
    state = card_state_code(card)
    if state == "issued":
        return None
    if state == "replaced":
        return _refuse(
            "card.replaced",
            "该卡已补换新卡，旧卡不能使用",
            "this card was replaced by a reissued card; it cannot be used",
            field,
        )
    if state == "not_issued":
        return _refuse(
            "card.not_issued",
            "该卡尚未发放，不能使用",
            f"the card is {card.status}, not yet issued; it cannot be used",
            field,
        )
    return _refuse(
        f"card.{state}", CARD_STATE_ZH[state], f"the card is {state}; it cannot be used", field
    )


def _sole_use(card: CardState, person: PersonState, named: Named | None) -> Decision | None:
    """The card belongs to the person the request names (seed 000, part three, item 2)."""
    if card.holder_id != person.id:
        return _refuse(
            "card.not_holder",
            "卡片不属于所述参保人，医保卡仅限本人使用",
            "the card is not the named person's; a card is for its holder's sole use",
            "mdtrt_cert_no",
        )
    if named is None:
        return None
    mismatch = None
    if named.person_id is not None and named.person_id != person.id:
        mismatch = ("psn_no", "人员编号")
    elif named.certno and named.certno.strip().upper() != person.certno.upper():
        mismatch = ("certno", "身份证号")
    elif named.name and named.name.strip() != person.name:
        mismatch = ("psn_name", "姓名")
    if mismatch is None:
        return None
    field, zh = mismatch
    return _refuse(
        "card.not_holder",
        f"{zh}与卡片持有人不符，医保卡仅限本人使用",
        f"{field} is not the card holder's; a card is for its holder's sole use",
        field,
    )


def _named_another(person: PersonState, named: Named) -> Decision | None:
    """Without a card (an ID number presented): the person the request names
    beside it is the certificate's, else it is refused naming the field
    (the same sole-use rule as a card's)."""
    if named.person_id is not None and named.person_id != person.id:
        return _refuse(
            "person.mismatch",
            "人员编号与凭证不符",
            "psn_no does not match the certificate",
            "psn_no",
        )
    for field, zh, given, own in (
        ("certno", "身份证号", (named.certno or "").strip().upper(), person.certno.upper()),
        ("psn_name", "姓名", (named.name or "").strip(), person.name),
    ):
        if given and given != own:
            return _refuse(
                "person.mismatch",
                f"{zh}与凭证不符，医保卡仅限本人使用",
                f"{field} does not match the certificate's person; "
                "a card is for its holder's sole use",
                field,
            )
    return None


def decide(
    *,
    purpose: Purpose,
    presenter: Presenter,
    person: PersonState | None,
    card: CardState | None = None,
    named: Named | None = None,
    card_field: str = "card_no",
) -> Decision:
    """May this card (or, without one, this person) be used for ``purpose``?"""
    if person is None:
        return _refuse(
            "person.not_found", "未找到该参保人员", "no such insured person", card_field, 404
        )
    if presenter is Presenter.STAFF and purpose is Purpose.INQUIRY:
        return ALLOWED  # staff are shown the card's and the person's states
    if card is not None:
        refused = _card_refusal(card, purpose, card_field) or _sole_use(card, person, named)
        if refused is not None:
            return refused
    elif named is not None:
        refused = _named_another(person, named)
        if refused is not None:
            return refused
    if person.status != "active":
        return _refuse(
            f"person.{person.status}",
            PERSON_STATE_ZH.get(person.status, "参保关系已终止"),
            PERSON_STATE_EN.get(person.status, f"the person is {person.status}; insurance ended"),
            card_field,
        )
    if purpose is not Purpose.SETTLEMENT:
        return ALLOWED
    if person.enrolment is None or person.enrolment == "terminated":
        return _refuse(
            "enrolment.terminated", "参保关系已终止", "the person's insurance has ended", None
        )
    if person.enrolment == "suspended":
        return _refuse(
            "enrolment.suspended",
            "欠费暂停，暂停享受医保待遇",
            "benefits are suspended for unpaid contributions",
            None,
        )
    if not person.arrangement:
        return Decision(
            False, offsite.not_covered(person.insured_area, person.offsite, "insuplc_admdvs")
        )
    return ALLOWED
