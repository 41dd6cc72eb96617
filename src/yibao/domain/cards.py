"""The card lifecycle: which moves are allowed, and nothing else.

applied -> in_production -> ready (for pickup) -> issued (active)
issued <-> frozen; issued/frozen -> lost; lost -> issued (found again)
any state before cancelled -> cancelled (reissue, emigration, death, transfer)
"""

from __future__ import annotations

from enum import StrEnum

from yibao.domain.errors import conflict


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
