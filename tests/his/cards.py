"""Putting a demo person's card into a state, for the HIS tests: the rows
as the card lifecycle leaves them (the lifecycle itself is tested with the
cards service)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from yibao.store.models import Card

STATES = ("lost", "frozen", "cancelled", "replaced", "not_issued")

# what the refusal says of each state (domain.use)
REASONS = {
    "lost": "the card is lost",
    "frozen": "the card is frozen",
    "cancelled": "the card is cancelled",
    "replaced": "replaced by a reissued card",
    "not_issued": "not yet issued",
}


def put_card(services: Any, card_no: str, state: str) -> str:
    """Put the card in ``state``; the card number to present (for
    ``not_issued`` a second card of the holder, still in production)."""
    with services.uow() as u:
        card = u.session.execute(select(Card).where(Card.card_no == card_no)).scalar_one()
        now = u.clock.now()
        presented = card_no
        if state in ("lost", "frozen", "cancelled"):
            u.session.execute(update(Card).where(Card.id == card.id).values(status=state))
        elif state == "replaced":
            u.session.execute(update(Card).where(Card.id == card.id).values(status="cancelled"))
            u.session.add(
                Card(
                    card_no=f"9{card_no[1:]}",
                    person_id=card.person_id,
                    kind=card.kind,
                    status="issued",
                    location="holder",
                    replaces_card_id=card.id,
                    created_at=now,
                    updated_at=now,
                )
            )
        elif state == "not_issued":
            presented = f"8{card_no[1:]}"
            u.session.add(
                Card(
                    card_no=presented,
                    person_id=card.person_id,
                    kind=card.kind,
                    status="in_production",
                    location="production",
                    created_at=now,
                    updated_at=now,
                )
            )
        else:
            raise ValueError(state)
        u.commit()
    return presented
