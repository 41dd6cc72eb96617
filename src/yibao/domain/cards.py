"""The card lifecycle: which moves are allowed, and nothing else.

applied -> in_production -> ready (for pickup) -> issued (active)
issued <-> frozen; issued/frozen -> lost; lost -> issued (found again)
any state before cancelled -> cancelled (reissue, emigration, death, transfer)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from enum import StrEnum

from yibao.domain.access import Perm
from yibao.domain.actors import Actor
from yibao.domain.errors import conflict, forbidden, invalid


class CardStatus(StrEnum):
    APPLIED = "applied"
    IN_PRODUCTION = "in_production"
    READY = "ready"
    ISSUED = "issued"
    LOST = "lost"
    FROZEN = "frozen"
    CANCELLED = "cancelled"


class CardKind(StrEnum):
    SOCIAL_SECURITY = "social_security"  # 社会保障卡
    MEDICAL = "medical"  # 医保卡


class Path(StrEnum):
    """The four ways to apply (seed 000, part two)."""

    COUNTY_CENTER = "county_center"
    SERVICE_POINT = "service_point"
    DELEGATE = "delegate"
    EMPLOYER = "employer"


STATUS_ZH = {
    CardStatus.APPLIED: "已申请",
    CardStatus.IN_PRODUCTION: "制卡中",
    CardStatus.READY: "待领取",
    CardStatus.ISSUED: "正常",
    CardStatus.LOST: "已挂失",
    CardStatus.FROZEN: "已冻结",
    CardStatus.CANCELLED: "已注销",
}

S = CardStatus
TRANSITIONS: dict[CardStatus, frozenset[CardStatus]] = {
    S.APPLIED: frozenset({S.IN_PRODUCTION, S.CANCELLED}),
    S.IN_PRODUCTION: frozenset({S.READY, S.CANCELLED}),
    S.READY: frozenset({S.ISSUED, S.CANCELLED}),
    S.ISSUED: frozenset({S.LOST, S.FROZEN, S.CANCELLED}),
    S.FROZEN: frozenset({S.ISSUED, S.LOST, S.CANCELLED}),
    S.LOST: frozenset({S.ISSUED, S.CANCELLED}),
    S.CANCELLED: frozenset(),
}

# A person may hold at most one card in these states at once: a new
# application while one is under way or usable would make two live cards.
LIVE = frozenset({S.APPLIED, S.IN_PRODUCTION, S.READY, S.ISSUED, S.FROZEN})


def check_move(current: CardStatus, target: CardStatus) -> None:
    if target not in TRANSITIONS[current]:
        raise conflict(
            "card.bad_transition",
            f"卡片状态为“{STATUS_ZH[current]}”，不能变为“{STATUS_ZH[target]}”",
            f"a card that is {current.value} cannot become {target.value}",
            "status",
        )


def require_may_mark_ready(actor: Actor, pickup_division: str | None) -> None:
    """Who says a card is produced and ready for pickup (seed 000, part two):
    the county center, which produces the cards; and the service point that
    took the application, which receives its card and completes it there
    within the working days promised."""
    if actor.can(Perm.CARD_MANAGE):
        return
    if actor.can(Perm.CARD_RECEIVE) and pickup_division == actor.division:
        return
    raise forbidden(
        "access.forbidden",
        "只有县医保中心或受理申请的服务点可以登记制卡完成",
        "only the county center, or the service point that took the application, "
        "marks the card produced and ready",
    )


# ---------------------------------------------------------------- materials

# What must have been checked on each path before anything is done. "id"
# stands for the insured person's own identity document (below).
REQUIRED: dict[Path, frozenset[str]] = {
    Path.COUNTY_CENTER: frozenset({"id"}),
    Path.SERVICE_POINT: frozenset({"id", "photo"}),
    Path.DELEGATE: frozenset({"id", "delegate_id_card"}),
    Path.EMPLOYER: frozenset({"letter_of_introduction", "handler_id_card"}),
}

# A resident ID card is compulsory from 16 (Resident Identity Card Law,
# art. 2); a younger child may have none, and the household register that
# lists the child is their valid document (seed 000, 2.1: "ID card,
# household register, etc.").
ID_CARD_AGE = 16


def age_on(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def identity_documents(birth: dt.date | None, today: dt.date) -> tuple[str, ...]:
    """The documents that identify the insured person: the ID card, or for a
    child under 16 the household register as well."""
    if birth is not None and age_on(birth, today) < ID_CARD_AGE:
        return ("id_card", "household_register")
    return ("id_card",)


def missing_materials(
    path: Path, given: set[str], *, birth: dt.date | None, today: dt.date
) -> list[str | tuple[str, ...]]:
    """What is missing for this path: an item, or a tuple of items any one
    of which would do."""
    missing: list[str | tuple[str, ...]] = []
    for need in sorted(REQUIRED[path]):
        if need == "id":
            ids = identity_documents(birth, today)
            if not given & set(ids):
                missing.append(ids if len(ids) > 1 else ids[0])
        elif need not in given:
            missing.append(need)
    return missing


def require_known(items: list[str], known: Collection[str]) -> None:
    unknown = sorted({m for m in items if m not in known})
    if unknown:
        raise invalid(
            "materials",
            f"未知的材料：{', '.join(unknown)}",
            f"unknown materials: {', '.join(unknown)}; known: {', '.join(known)}",
            "unknown",
        )
