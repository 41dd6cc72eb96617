"""Cards and card applications: the four ways to apply (seed 000, part two)
and every move of a card along its lifecycle, whatever channel asks for it."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from yibao.domain import cards as cards_rules
from yibao.domain import divisions as dv
from yibao.domain.access import Perm
from yibao.domain.actors import Actor
from yibao.domain.cards import LIVE, STATUS_ZH, CardKind, CardStatus, Path, check_move
from yibao.domain.errors import DomainError, conflict, invalid, not_found
from yibao.domain.ids import is_card_no, new_card_no, parse_resident_id
from yibao.domain.use import CardState, PersonState, Presenter, Purpose, decide
from yibao.domain.values import is_digits
from yibao.services import security
from yibao.services.contributions import contributions
from yibao.services.registry import calendar as calendar_service
from yibao.services.registry.registry import find_person_for_update, in_scope
from yibao.services.tx import use_case
from yibao.store.models import Card, CardApplication, CardEvent, Division, Person
from yibao.store.uow import UnitOfWork

MATERIALS: dict[str, tuple[str, str]] = {
    "id_card": ("居民身份证原件", "resident ID card (original)"),
    "id_card_copy": ("居民身份证复印件", "copy of the resident ID card"),
    "household_register": ("户口簿", "household register"),
    "photo": ("一寸照片", "one-inch photo"),
    "delegate_id_card": ("受托人身份证原件", "the delegate's own ID card"),
    "letter_of_introduction": ("单位介绍信", "the employer's letter of introduction"),
    "handler_id_card": ("经办人身份证", "the handler's ID card"),
    "old_card": ("原卡", "the old card"),
}

# ``domain.cards.REQUIRED`` names what each path needs.
REQUIRED = cards_rules.REQUIRED


def check_materials(
    path: Path,
    given: list[str] | None,
    *,
    birth: dt.date | None = None,
    today: dt.date | None = None,
) -> list[dict[str, object]]:
    """Validate the checklist and return it as recorded: item, names, checked.

    With the insured person's birth date, a child under 16 may show the
    household register instead of an ID card (``domain.cards``)."""
    items = [str(m).strip() for m in (given or []) if str(m).strip()]
    cards_rules.require_known(items, MATERIALS)
    missing = cards_rules.missing_materials(
        path, set(items), birth=birth, today=today or dt.date.min
    )
    if missing:

        def names(need: str | tuple[str, ...], lang: int, either: str) -> str:
            if isinstance(need, str):
                return MATERIALS[need][lang]
            return either.join(MATERIALS[m][lang] for m in need)

        raise invalid(
            "materials",
            "缺少材料：" + "、".join(names(m, 0, "或") for m in missing),
            "missing materials: " + ", ".join(names(m, 1, " or ") for m in missing),
            "missing",
        )
    return [
        {"item": m, "zh": MATERIALS[m][0], "en": MATERIALS[m][1], "checked": True}
        for m in dict.fromkeys(items)
    ]


def birth_of(person: Person) -> dt.date | None:
    """The birth date the person's ID number states (the registry checked it)."""
    try:
        return parse_resident_id(person.certno).birth_date
    except DomainError:  # pragma: no cover - registered numbers are valid
        return None


def check_pin(pin: str, *, field: str = "pin") -> str:
    if len(pin) != 6 or not is_digits(pin):
        raise invalid(field, "密码应为6位数字", "a PIN is 6 digits", "format")
    if len(set(pin)) == 1 or pin in "0123456789" or pin in "9876543210":
        raise invalid(field, "密码过于简单", "the PIN is too easy to guess", "weak")
    return pin


@dataclass
class CardResult:
    card: Card
    application: CardApplication | None = None
    # The initial PIN, shown once, when a card was handed over just now
    # without the holder choosing one.
    pin: str | None = None


class Office(StrEnum):
    COUNTY_CENTER = "county_center"
    SERVICE_POINT = "service_point"


def office_of(uow: UnitOfWork, actor: Actor) -> tuple[Office, Division]:
    division = uow.session.get(Division, actor.division)
    if division is None:  # pragma: no cover - staff rows reference divisions
        raise not_found("行政区划", "division")
    level = dv.level_of(division.code)
    if level is dv.Level.COUNTY:
        return Office.COUNTY_CENTER, division
    if level is dv.Level.STREET and division.service_point:
        return Office.SERVICE_POINT, division
    raise DomainError(
        code="card.no_office",
        zh="只有县医保中心和街道（乡镇）服务点可以受理办卡",
        en="cards are handled at a county center or a street/town service point only",
        status=403,
    )


# ---------------------------------------------------------------- helpers


def _event(
    uow: UnitOfWork,
    card: Card,
    *,
    event: str,
    from_status: str | None,
    actor: Actor,
    channel: str,
    reason: str = "",
    detail: dict[str, object] | None = None,
) -> None:
    uow.session.add(
        CardEvent(
            card_id=card.id,
            person_id=card.person_id,
            at=uow.clock.now(),
            event=event,
            from_status=from_status,
            to_status=card.status,
            actor=actor.id,
            channel=channel,
            reason=reason,
        )
    )
    uow.audit(
        actor.record(
            channel=channel,
            action=f"card.{event}",
            person_id=card.person_id,
            subject=card.card_no,
            detail={"from": from_status, "to": card.status, "reason": reason, **(detail or {})},
        )
    )


def _move(
    uow: UnitOfWork,
    card: Card,
    target: CardStatus,
    *,
    event: str,
    actor: Actor,
    channel: str,
    reason: str = "",
    detail: dict[str, object] | None = None,
) -> None:
    current = CardStatus(card.status)
    check_move(current, target)
    card.status = target.value
    card.updated_at = uow.clock.now()
    if target is CardStatus.ISSUED and card.issued_at is None:
        card.issued_at = card.updated_at
    try:
        uow.session.flush()
    except IntegrityError:
        # the partial unique index: a second active card for one person
        raise conflict(
            "card.already_active",
            "该参保人员已有一张正常使用的卡",
            "the person already holds an active card",
        ) from None
    _event(
        uow,
        card,
        event=event,
        from_status=current.value,
        actor=actor,
        channel=channel,
        reason=reason,
        detail=detail,
    )


def _live_card(uow: UnitOfWork, person: Person) -> Card | None:
    return uow.session.execute(
        select(Card)
        .where(Card.person_id == person.id, Card.status.in_([s.value for s in LIVE]))
        .with_for_update()
    ).scalar_one_or_none()


def require_applicable(uow: UnitOfWork, person: Person) -> None:
    # Serialise card applications per person: two clerks applying for the
    # same person at once would otherwise both see "no live card".
    uow.session.execute(select(Person.id).where(Person.id == person.id).with_for_update())
    if person.status != "active":
        raise conflict(
            "person.not_active",
            "该人员参保关系已终止，不能办卡",
            f"the person's insurance has ended ({person.status}); no card can be issued",
        )
    # Seed 004, step 5: the first payment slip is what one brings to apply.
    if not contributions.has_paid(uow.session, person.id):
        raise conflict(
            "card.not_eligible",
            "尚未缴纳医疗保险费，首次缴费后方可申请医保卡",
            "no contribution has been paid yet; the first payment makes the person eligible for a card",
        )
    live = _live_card(uow, person)
    if live is not None:
        status = CardStatus(live.status)
        raise conflict(
            "card.exists",
            f"该参保人员已有一张“{STATUS_ZH[status]}”的卡（{live.card_no}），如需补卡请先挂失",
            f"the person already has a card that is {status.value} ({live.card_no}); "
            "report it lost and reissue instead",
        )


def new_app_no(path: Path, today: dt.date) -> str:
    letter = {
        Path.COUNTY_CENTER: "C",
        Path.SERVICE_POINT: "S",
        Path.DELEGATE: "D",
        Path.EMPLOYER: "E",
    }[path]
    return f"{letter}{today:%Y%m%d}{secrets.token_hex(5).upper()}"


def create_card(
    uow: UnitOfWork,
    *,
    person: Person,
    kind: CardKind,
    application: CardApplication,
    actor: Actor,
    channel: str,
    replaces: Card | None = None,
    card_no: str | None = None,
) -> Card:
    now = uow.clock.now()
    for _ in range(5):
        card = Card(
            card_no=card_no or new_card_no(),
            # the relationship too: the card outlives this transaction (a
            # use case's result) and shows its holder
            person=person,
            kind=kind.value,
            status=CardStatus.APPLIED.value,
            location="production",
            application_id=application.id,
            replaces_card_id=replaces.id if replaces else None,
            created_at=now,
            updated_at=now,
        )
        try:
            with uow.session.begin_nested():
                uow.session.add(card)
        except IntegrityError:
            if card_no:
                raise conflict(
                    "card.number_taken", "该卡号已被使用", "this card number is taken", "card_no"
                ) from None
            continue  # random card number already used: draw again
        break
    else:  # pragma: no cover
        raise RuntimeError("could not draw a free card number")
    _event(
        uow,
        card,
        event="applied",
        from_status=None,
        actor=actor,
        channel=channel,
        reason=f"application {application.app_no} ({application.path})",
    )
    return card


def _issue_on_the_spot(
    uow: UnitOfWork, card: Card, *, actor: Actor, channel: str, pin: str | None, handed_to: str
) -> str | None:
    """County center: produce and hand over the card in the same visit (seed 000, 2.1)."""
    _move(
        uow,
        card,
        CardStatus.IN_PRODUCTION,
        event="production_started",
        actor=actor,
        channel=channel,
    )
    card.location = "county_center"
    card.ready_at = uow.clock.now()
    _move(
        uow,
        card,
        CardStatus.READY,
        event="produced",
        actor=actor,
        channel=channel,
        reason="produced on the spot at the county center",
    )
    return hand_over(uow, card, actor=actor, channel=channel, pin=pin, handed_to=handed_to)


def hand_over(
    uow: UnitOfWork,
    card: Card,
    *,
    actor: Actor,
    channel: str,
    pin: str | None,
    handed_to: str,
    event: str = "issued",
) -> str | None:
    chosen = check_pin(pin) if pin else None
    initial = chosen or security.new_pin()
    card.pin_hash = security.hash_secret(initial)
    card.location = "holder"
    _move(
        uow,
        card,
        CardStatus.ISSUED,
        event=event,
        actor=actor,
        channel=channel,
        reason=f"handed to {handed_to}",
    )
    return None if chosen else initial


def _find_card(uow: UnitOfWork, actor: Actor, card_no: str, *, lock: bool = True) -> Card:
    card_no = (card_no or "").strip()
    if not is_card_no(card_no):
        raise invalid("card_no", "卡号格式错误", "not a valid card number (10 digits)", "format")
    stmt = (
        select(Card)
        .join(Person, Card.person_id == Person.id)
        .where(Card.card_no == card_no, in_scope(Person.division_code, actor))
    )
    if lock:
        stmt = stmt.with_for_update(of=Card)
    card = uow.session.execute(stmt).scalar_one_or_none()
    if card is None:
        raise not_found("卡片", "card", "card.not_found")
    return card


def _person_in_scope(uow: UnitOfWork, actor: Actor, person_id: int) -> Person:
    person = uow.session.execute(
        select(Person).where(Person.id == person_id, in_scope(Person.division_code, actor))
    ).scalar_one_or_none()
    if person is None:
        raise not_found("参保人员", "person", "person.not_found")
    return person


def _persons_card(
    uow: UnitOfWork, actor: Actor, person_id: int, card_no: str, *, lock: bool = True
) -> Card:
    """The card a card action is done on: in the clerk's area and the card of
    the person the action is done for. A clerk visiting one person cannot
    act on another person's card (seed 000: the card is its holder's)."""
    card = _find_card(uow, actor, card_no, lock=lock)
    if card.person_id != person_id:
        raise DomainError(
            code="card.not_holder",
            zh="该卡不属于本次办理业务的参保人",
            en="the card is not the person's own; a card action is done for its holder only",
            field="card_no",
            status=409,
        )
    return card


def check_collectable(card: Card) -> None:
    """Whether a produced card may be handed over (``domain.use``: COLLECTION)."""
    holder = card.person
    decide(
        purpose=Purpose.COLLECTION,
        presenter=Presenter.STAFF,
        person=PersonState(
            id=holder.id, name=holder.name, certno=holder.certno, status=holder.status
        ),
        # a card waiting for pickup was never issued, so no reissue replaced it
        card=CardState(card.card_no, card.status, card.person_id, replaced=False),
    ).require()


def open_application(
    uow: UnitOfWork,
    *,
    path: Path,
    office: Office,
    office_division: Division,
    person: Person,
    kind: str,
    materials: list[dict[str, object]],
    actor: Actor,
    delegate: tuple[str, str] | None = None,
    reissue_of: Card | None = None,
) -> CardApplication:
    """Record an application; a service point's is due a number of working
    days later (seed 000, part two, item 2), a county center's today."""
    today = uow.clock.today()
    due, note = today, ""
    if office is Office.SERVICE_POINT:
        due, notes = calendar_service.load(uow).add_working_days(
            today, uow.settings.service_point_working_days
        )
        note = "; ".join(notes)
    application = CardApplication(
        app_no=new_app_no(path, today),
        path=path.value,
        person=person,
        division_code=office_division.code,
        kind=kind,
        submitted_at=uow.clock.now(),
        due_date=due,
        calendar_note=note,
        materials=materials,
        delegate_certno=delegate[0] if delegate else None,
        delegate_name=delegate[1] if delegate else None,
        reissue_of_card_id=reissue_of.id if reissue_of else None,
        created_by=actor.id,
    )
    uow.session.add(application)
    uow.session.flush()
    return application


# ---------------------------------------------------------------- applying


@use_case
def apply_for_card(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    path: Path,
    certno: str | None = None,
    materials: list[str],
    kind: CardKind = CardKind.SOCIAL_SECURITY,
    pin: str | None = None,
    delegate_certno: str | None = None,
    delegate_name: str | None = None,
    card_no: str | None = None,
    person_id: int | None = None,
) -> CardResult:
    """Take a card application on the county-center, service-point or delegate path,
    for the person with this ID number (or, at the counter's visit, ``person_id``).

    ``card_no`` is the number printed on the blank card taken from the county
    center's stock for an on-the-spot issue; otherwise a number is drawn.

    The employer path takes a whole list at once: see ``services.batches``.
    """
    if path is Path.EMPLOYER:
        raise invalid(
            "path",
            "单位集中办卡请上传人员名单",
            "employer applications are uploaded as a batch (/api/v1/employer-batches)",
        )
    office, office_division = office_of(uow, actor)
    if path is Path.COUNTY_CENTER:
        actor.require(Perm.CARD_APPLY_CENTER)
        if office is not Office.COUNTY_CENTER:
            raise invalid(
                "path", "现场办卡只在县医保中心受理", "on-the-spot issue is at a county center only"
            )
    elif path is Path.SERVICE_POINT:
        actor.require(Perm.CARD_APPLY)
        if office is not Office.SERVICE_POINT:
            raise invalid(
                "path", "代办申请在街道（乡镇）服务点受理", "this path is taken at a service point"
            )
    else:
        actor.require(Perm.CARD_APPLY)
    cards_rules.require_known([str(m).strip() for m in materials or []], MATERIALS)
    if pin:
        check_pin(pin)
    person = (
        _person_in_scope(uow, actor, person_id)
        if person_id is not None
        else find_person_for_update(uow, actor=actor, certno=certno or "")
    )
    # which document identifies the person depends on their age (a child)
    recorded = check_materials(path, materials, birth=birth_of(person), today=uow.clock.today())
    delegate: tuple[str, str] | None = None
    if path is Path.DELEGATE:
        rid = parse_resident_id(delegate_certno, field="delegate_certno", today=uow.clock.today())
        if rid.number == person.certno:
            raise invalid(
                "delegate_certno",
                "受托人不能是参保人本人",
                "the delegate cannot be the insured person",
                "same_person",
            )
        name = (delegate_name or "").strip()
        if not name:
            raise invalid(
                "delegate_name", "受托人姓名不能为空", "the delegate's name is required", "required"
            )
        delegate = (rid.number, name)
    require_applicable(uow, person)

    application = open_application(
        uow,
        path=path,
        office=office,
        office_division=office_division,
        person=person,
        kind=kind.value,
        materials=recorded,
        actor=actor,
        delegate=delegate,
    )
    if card_no is not None and (office is not Office.COUNTY_CENTER or not is_card_no(card_no)):
        raise invalid(
            "card_no",
            "只有现场制卡可指定有效卡号",
            "a card number is given only for an on-the-spot issue, and must be valid",
        )
    card = create_card(
        uow,
        person=person,
        kind=kind,
        application=application,
        actor=actor,
        channel=channel,
        card_no=card_no,
    )
    initial_pin: str | None = None
    if office is Office.COUNTY_CENTER:
        handed_to = f"delegate {delegate[1]}" if delegate else "the insured person"
        initial_pin = _issue_on_the_spot(
            uow, card, actor=actor, channel=channel, pin=pin, handed_to=handed_to
        )
    else:
        card.pickup_division = office_division.code
    return CardResult(card=card, application=application, pin=initial_pin)


# ---------------------------------------------------------------- production


@use_case
def start_production(uow: UnitOfWork, *, actor: Actor, channel: str, card_no: str) -> Card:
    actor.require(Perm.CARD_MANAGE)
    card = _find_card(uow, actor, card_no)
    _move(
        uow,
        card,
        CardStatus.IN_PRODUCTION,
        event="production_started",
        actor=actor,
        channel=channel,
    )
    return card


@use_case
def mark_ready(
    uow: UnitOfWork, *, actor: Actor, channel: str, card_no: str, person_id: int | None = None
) -> Card:
    """The produced card has arrived where it is to be collected: said by the
    county center, or by the service point that took the application and
    receives its card (``domain.cards.require_may_mark_ready``). With
    ``person_id`` (a counter visit), the card must be that person's."""
    if not (actor.can(Perm.CARD_MANAGE) or actor.can(Perm.CARD_RECEIVE)):
        cards_rules.require_may_mark_ready(actor, None)
    card = (
        _find_card(uow, actor, card_no)
        if person_id is None
        else _persons_card(uow, actor, person_id, card_no)
    )
    cards_rules.require_may_mark_ready(actor, card.pickup_division)
    move_to_ready(uow, card, actor=actor, channel=channel)
    return card


def move_to_ready(
    uow: UnitOfWork, card: Card, *, actor: Actor, channel: str, location: str | None = None
) -> None:
    if card.status == CardStatus.APPLIED.value:
        _move(
            uow,
            card,
            CardStatus.IN_PRODUCTION,
            event="production_started",
            actor=actor,
            channel=channel,
        )
    today = uow.clock.today()
    card.ready_at = uow.clock.now()
    if location:
        card.location = location
    elif card.pickup_division and dv.level_of(card.pickup_division) is dv.Level.STREET:
        card.location = "service_point"
        card.pickup_deadline = today + dt.timedelta(days=uow.settings.pickup_window_days)
    else:
        card.location = "county_center"
    _move(
        uow,
        card,
        CardStatus.READY,
        event="produced",
        actor=actor,
        channel=channel,
        reason=f"ready for pickup at {card.location}",
        detail={
            "pickup_deadline": card.pickup_deadline.isoformat() if card.pickup_deadline else None
        },
    )


@use_case
def return_overdue_pickups(uow: UnitOfWork, *, actor: Actor, channel: str) -> list[Card]:
    """Cards left at a service point past the pickup window go back to the county center."""
    today = uow.clock.today()
    cards = list(
        uow.session.execute(
            select(Card)
            .join(Person, Card.person_id == Person.id)
            .where(
                Card.status == CardStatus.READY.value,
                Card.location == "service_point",
                Card.pickup_deadline < today,
                in_scope(Person.division_code, actor),
            )
            .order_by(Card.id)
            .with_for_update(of=Card)
        ).scalars()
    )
    for card in cards:
        previous = card.pickup_division
        card.location = "county_center"
        card.pickup_division = (previous or "")[:6] or None
        card.updated_at = uow.clock.now()
        _event(
            uow,
            card,
            event="returned_to_center",
            from_status=card.status,
            actor=actor,
            channel=channel,
            reason=f"not collected at service point {previous} by {card.pickup_deadline}",
        )
    return cards


# ---------------------------------------------------------------- at the counter


@use_case
def collect_card(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person_id: int,
    card_no: str,
    collector_certno: str | None = None,
    pin: str | None = None,
) -> CardResult:
    """Hand a ready card to the person or to the delegate who applied (without
    ``collector_certno``: the person)."""
    actor.require(Perm.CARD_COUNTER)
    card = _persons_card(uow, actor, person_id, card_no)
    check_collectable(card)
    if (
        card.location == "service_point"
        and card.pickup_deadline
        and card.pickup_deadline < uow.clock.today()
    ):
        return_overdue_pickups.step(uow, actor=actor, channel=channel)
        uow.commit()  # the card's return stands although the pickup is refused
        raise conflict(
            "card.returned",
            "领卡期限已过，卡片已退回县医保中心，请到县医保中心领取",
            "the pickup window has passed; the card went back to the county center, "
            "collect it there",
        )
    here = actor.division
    if card.location == "service_point" and card.pickup_division != here:
        raise conflict(
            "card.elsewhere",
            f"卡片在服务点{card.pickup_division}，请到该服务点领取",
            f"the card waits at service point {card.pickup_division}; collect it there",
        )
    if card.location == "county_center" and dv.level_of(here) is not dv.Level.COUNTY:
        raise conflict(
            "card.elsewhere",
            "卡片在县医保中心，请到县医保中心领取",
            "the card is at the county center; collect it there",
        )
    if card.location == "employer":
        raise conflict(
            "card.with_employer",
            "卡片已交用人单位集中发放",
            "the card went to the employer, who hands it out",
        )
    rid = parse_resident_id(collector_certno or card.person.certno, field="collector_certno")
    application = (
        uow.session.get(CardApplication, card.application_id) if card.application_id else None
    )
    allowed = {card.person.certno}
    if application is not None and application.delegate_certno:
        allowed.add(application.delegate_certno)
    if rid.number not in allowed:
        raise invalid(
            "collector_certno",
            "领卡人须为参保人本人或办理时登记的受托人",
            "the card goes to the insured person or the delegate recorded at application",
            "not_entitled",
        )
    who = "the insured person" if rid.number == card.person.certno else f"delegate {rid.number}"
    initial = hand_over(
        uow, card, actor=actor, channel=channel, pin=pin, handed_to=who, event="collected"
    )
    return CardResult(card=card, application=application, pin=initial)


@use_case
def report_lost(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person_id: int,
    card_no: str,
    reason: str = "",
) -> Card:
    """A card reported lost is blocked at once (domain.md, "Cards"): by staff
    for the person they serve, or by the person for their own card."""
    if actor.kind == "staff":
        actor.require(Perm.CARD_COUNTER)
        card = _persons_card(uow, actor, person_id, card_no)
    else:
        card = _own_card(uow, actor, person_id, card_no)
    _move(
        uow,
        card,
        CardStatus.LOST,
        event="reported_lost",
        actor=actor,
        channel=channel,
        reason=reason or "reported lost",
    )
    return card


def _own_card(uow: UnitOfWork, actor: Actor, person_id: int, card_no: str) -> Card:
    """For a person acting for themselves (portal, telephone): only their own card."""
    card = uow.session.execute(
        select(Card).where(Card.card_no == (card_no or "").strip()).with_for_update()
    ).scalar_one_or_none()
    if (
        card is None
        or actor.kind != "person"
        or actor.id != str(person_id)
        or card.person_id != person_id
    ):
        raise not_found("卡片", "card", "card.not_found")
    return card


@use_case
def report_found(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person_id: int,
    card_no: str,
    reason: str = "",
) -> Card:
    """Undo a loss report (解挂): the holder found the card, which works again.

    A card a reissue replaced is cancelled, not lost, so it cannot come back;
    if the person holds another usable card by now, the partial unique index
    refuses a second one (``_move``). A person undoes their own card's loss
    only through ``access.self_service``, which asks for the password first."""
    if actor.kind == "staff":
        actor.require(Perm.CARD_COUNTER)
        card = _persons_card(uow, actor, person_id, card_no)
    else:
        card = _own_card(uow, actor, person_id, card_no)
    if card.status != CardStatus.LOST.value:
        raise conflict(
            "card.not_lost",
            f"卡片状态为“{STATUS_ZH[CardStatus(card.status)]}”，未挂失，不能解挂",
            f"the card is {card.status}, not reported lost; there is nothing to undo",
            "card_no",
        )
    _move(
        uow,
        card,
        CardStatus.ISSUED,
        event="found",
        actor=actor,
        channel=channel,
        reason=reason or "found again",
    )
    return card


@use_case
def freeze(
    uow: UnitOfWork, *, actor: Actor, channel: str, person_id: int, card_no: str, reason: str
) -> Card:
    actor.require(Perm.CARD_MANAGE)
    if not reason.strip():
        raise invalid("reason", "请填写冻结原因", "give the reason for freezing", "required")
    card = _persons_card(uow, actor, person_id, card_no)
    _move(uow, card, CardStatus.FROZEN, event="frozen", actor=actor, channel=channel, reason=reason)
    return card


@use_case
def unfreeze(
    uow: UnitOfWork, *, actor: Actor, channel: str, person_id: int, card_no: str, reason: str
) -> Card:
    actor.require(Perm.CARD_MANAGE)
    card = _persons_card(uow, actor, person_id, card_no)
    if card.status != CardStatus.FROZEN.value:
        raise conflict("card.not_frozen", "卡片未被冻结", "the card is not frozen")
    _move(
        uow, card, CardStatus.ISSUED, event="unfrozen", actor=actor, channel=channel, reason=reason
    )
    return card


def _cancellable(
    uow: UnitOfWork, actor: Actor, person_id: int, card_no: str, reason: str, *, lock: bool = True
) -> Card:
    actor.require(Perm.CARD_CANCEL)
    if not reason.strip():
        raise invalid(
            "reason", "请填写注销原因", "give the reason for the cancellation", "required"
        )
    card = _persons_card(uow, actor, person_id, card_no, lock=lock)
    check_move(CardStatus(card.status), CardStatus.CANCELLED)
    return card


@use_case
def check_cancel(
    uow: UnitOfWork, *, actor: Actor, channel: str, person_id: int, card_no: str, reason: str
) -> Card:
    """What ``cancel_card`` would do, checked without doing it: the card it
    would cancel, or the refusal it would give (the counter's confirmation)."""
    card = _cancellable(uow, actor, person_id, card_no, reason, lock=False)
    uow.audit(
        actor.record(
            channel=channel, action="card.cancel_checked", person_id=person_id, subject=card_no
        )
    )
    return card


@use_case
def cancel_card(
    uow: UnitOfWork, *, actor: Actor, channel: str, person_id: int, card_no: str, reason: str
) -> Card:
    """Cancel a card (returned on emigration, transfer out or death, or sent
    back after the pickup window; seed 000, 3.4): at the city, district or
    county centers or at a service point (``Perm.CARD_CANCEL``)."""
    card = _cancellable(uow, actor, person_id, card_no, reason)
    _move(
        uow,
        card,
        CardStatus.CANCELLED,
        event="cancelled",
        actor=actor,
        channel=channel,
        reason=reason,
    )
    return card


def _reissue_plan(
    uow: UnitOfWork,
    actor: Actor,
    person_id: int,
    card_no: str,
    materials: list[str],
    reason: str,
    pin: str | None,
    *,
    lock: bool = True,
) -> tuple[Office, Division, Path, list[dict[str, object]], Card]:
    """Everything a reissue checks before it writes: the office and its path,
    the materials as recorded, and the old card."""
    office, office_division = office_of(uow, actor)
    if office is Office.COUNTY_CENTER:
        actor.require(Perm.CARD_APPLY_CENTER)
        path = Path.COUNTY_CENTER
    else:
        actor.require(Perm.CARD_APPLY)
        path = Path.SERVICE_POINT
    cards_rules.require_known([str(m).strip() for m in materials or []], MATERIALS)
    if not reason.strip():
        raise invalid("reason", "请填写补换卡原因", "give the reason for the reissue", "required")
    if pin:
        check_pin(pin)
    old = _persons_card(uow, actor, person_id, card_no, lock=lock)
    recorded = check_materials(path, materials, birth=birth_of(old.person), today=uow.clock.today())
    if old.status not in (CardStatus.ISSUED.value, CardStatus.LOST.value, CardStatus.FROZEN.value):
        raise conflict(
            "card.not_reissuable",
            f"卡片状态为“{STATUS_ZH[CardStatus(old.status)]}”，不能补换",
            f"a card that is {old.status} cannot be reissued",
        )
    if old.person.status != "active":
        raise conflict(
            "person.not_active", "该人员参保关系已终止", "the person's insurance has ended"
        )
    return office, office_division, path, recorded, old


@use_case
def check_reissue(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person_id: int,
    card_no: str,
    materials: list[str],
    reason: str,
    pin: str | None = None,
) -> Card:
    """What ``reissue`` would do, checked without doing it: the card it would
    cancel, or the refusal it would give (the counter's confirmation)."""
    old = _reissue_plan(uow, actor, person_id, card_no, materials, reason, pin, lock=False)[-1]
    uow.audit(
        actor.record(
            channel=channel, action="card.reissue_checked", person_id=person_id, subject=card_no
        )
    )
    return old


@use_case
def reissue(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person_id: int,
    card_no: str,
    materials: list[str],
    reason: str,
    pin: str | None = None,
) -> CardResult:
    """Replace a card: the old one is cancelled and a new one started, with a new number."""
    plan = _reissue_plan(uow, actor, person_id, card_no, materials, reason, pin)
    office, office_division, path, recorded, old = plan
    person = old.person
    _move(
        uow,
        old,
        CardStatus.CANCELLED,
        event="cancelled",
        actor=actor,
        channel=channel,
        reason=f"reissued: {reason}",
    )
    application = open_application(
        uow,
        path=path,
        office=office,
        office_division=office_division,
        person=person,
        kind=old.kind,
        materials=recorded,
        actor=actor,
        reissue_of=old,
    )
    card = create_card(
        uow,
        person=person,
        kind=CardKind(old.kind),
        application=application,
        actor=actor,
        channel=channel,
        replaces=old,
    )
    initial = None
    if office is Office.COUNTY_CENTER:
        initial = _issue_on_the_spot(
            uow, card, actor=actor, channel=channel, pin=pin, handed_to="the insured person"
        )
    else:
        card.pickup_division = office_division.code
    return CardResult(card=card, application=application, pin=initial)


@use_case
def reset_pin(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person_id: int,
    card_no: str,
    pin: str | None = None,
) -> CardResult:
    """Set a new PIN at the counter for the person's own card; without one, a
    random one is returned once."""
    actor.require(Perm.CARD_COUNTER)
    card = _persons_card(uow, actor, person_id, card_no)
    if card.status != CardStatus.ISSUED.value:
        raise conflict(
            "card.not_active", "只能为正常状态的卡重置密码", "only an active card gets a new PIN"
        )
    chosen = check_pin(pin) if pin else None
    new = chosen or security.new_pin()
    card.pin_hash = security.hash_secret(new)
    card.updated_at = uow.clock.now()
    _event(uow, card, event="pin_reset", from_status=card.status, actor=actor, channel=channel)
    return CardResult(card=card, pin=None if chosen else new)


# ---------------------------------------------------------------- reading


@use_case
def get_card(
    uow: UnitOfWork, *, actor: Actor, channel: str, card_no: str
) -> tuple[Card, list[CardEvent]]:
    actor.require(Perm.PERSON_READ)
    card = _find_card(uow, actor, card_no, lock=False)
    events = list(
        uow.session.execute(
            select(CardEvent).where(CardEvent.card_id == card.id).order_by(CardEvent.id)
        ).scalars()
    )
    uow.audit(
        actor.record(
            channel=channel, action="card.read", person_id=card.person_id, subject=card.card_no
        )
    )
    return card, events


def cards_of(uow: UnitOfWork, person: Person) -> list[Card]:
    return list(
        uow.session.execute(
            select(Card).where(Card.person_id == person.id).order_by(Card.id.desc())
        ).scalars()
    )


def current_card(uow: UnitOfWork, person: Person) -> Card | None:
    """The card a channel shows for a person: the live one, else the newest."""
    return current_of(cards_of(uow, person))


def current_of(cards: list[Card]) -> Card | None:
    """Of a person's cards, newest first, the one a channel shows."""
    for card in cards:
        if card.status in {s.value for s in LIVE} or card.status == CardStatus.LOST.value:
            return card
    return cards[0] if cards else None


@dataclass
class ApplicationView:
    application: CardApplication
    card: Card | None
    state: str


def application_state(app: CardApplication, card: Card | None, today: dt.date) -> str:
    if card is None:
        return "cancelled"
    status = CardStatus(card.status)
    if status in (CardStatus.APPLIED, CardStatus.IN_PRODUCTION):
        return "overdue" if app.due_date and today > app.due_date else "in_progress"
    if status is CardStatus.READY:
        if card.location == "service_point":
            if card.pickup_deadline and today > card.pickup_deadline:
                return "pickup_overdue"
            return "awaiting_pickup"
        if card.location == "employer":
            return "with_employer"
        return "returned_to_center" if app.path == Path.SERVICE_POINT.value else "awaiting_pickup"
    if status is CardStatus.CANCELLED and card.issued_at is None:
        return "cancelled"
    return "done"


OPEN_STATES = {
    "in_progress",
    "overdue",
    "awaiting_pickup",
    "pickup_overdue",
    "returned_to_center",
    "with_employer",
}
OVERDUE_STATES = {"overdue", "pickup_overdue", "returned_to_center"}


@use_case
def list_applications(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    view: str = "open",
    limit: int = 500,
    return_overdue: bool = False,
) -> list[ApplicationView]:
    """Applications taken inside the actor's area, with what is due and overdue."""
    actor.require(Perm.PERSON_READ)
    if view not in ("open", "due", "overdue", "all"):
        raise invalid(
            "view", "视图应为open、due、overdue或all", "view is open, due, overdue or all"
        )
    if return_overdue:
        # cards left at a service point past the window go back first, so
        # the list shows where each card is now
        return_overdue_pickups.step(uow, actor=actor, channel=channel)
    today = uow.clock.today()
    rows = uow.session.execute(
        select(CardApplication, Card)
        .outerjoin(Card, Card.application_id == CardApplication.id)
        .where(in_scope(CardApplication.division_code, actor))
        .order_by(CardApplication.due_date, CardApplication.id)
        .limit(limit)
    ).all()
    result = []
    for app, card in rows:
        state = application_state(app, card, today)
        if view == "open" and state not in OPEN_STATES:
            continue
        if view == "due" and state not in {"in_progress", "awaiting_pickup"}:
            continue
        if view == "overdue" and state not in OVERDUE_STATES:
            continue
        result.append(ApplicationView(app, card, state))
        # the list shows each applicant's name and account: that is a look at their data
        uow.audit(
            actor.record(
                channel=channel,
                action="application.list",
                person_id=app.person_id,
                subject=app.app_no,
            )
        )
    return result


@use_case
def get_application(uow: UnitOfWork, *, actor: Actor, channel: str, app_no: str) -> ApplicationView:
    actor.require(Perm.PERSON_READ)
    row = uow.session.execute(
        select(CardApplication, Card)
        .outerjoin(Card, Card.application_id == CardApplication.id)
        .where(CardApplication.app_no == app_no, in_scope(CardApplication.division_code, actor))
    ).first()
    if row is None:
        raise not_found("办卡申请", "application", "application.not_found")
    app, card = row
    uow.audit(
        actor.record(
            channel=channel, action="application.read", person_id=app.person_id, subject=app_no
        )
    )
    return ApplicationView(app, card, application_state(app, card, uow.clock.today()))


def card_state(uow: UnitOfWork, card: Card) -> CardState:
    """The card as ``domain.use`` decides on it. A reissue cancels the card it
    replaces, so only a cancelled card is looked for among its holder's cards
    (the person's index: a seek, not a scan)."""
    replaced = card.status == CardStatus.CANCELLED.value and (
        uow.session.execute(
            select(Card.id).where(
                Card.person_id == card.person_id, Card.replaces_card_id == card.id
            )
        ).first()
        is not None
    )
    return CardState(card.card_no, card.status, card.person_id, replaced)
