"""What a person does to their own card from the portal, composing the
cards' use cases with the portal password asked again.

It lives in ``access`` rather than ``cards``: the password and its lock are
access's, and the services' domains import each other in one direction only
(cards < access)."""

from __future__ import annotations

from yibao.services.access import person_login
from yibao.services.access.person_login import person_actor
from yibao.services.cards import cards as card_service
from yibao.services.tx import use_case
from yibao.store.models import Card
from yibao.store.uow import UnitOfWork


@use_case
def undo_loss(
    uow: UnitOfWork, *, person_id: int, card_no: str, password: str, channel: str
) -> Card:
    """The person found their card again (解挂): with the portal password
    given again (a wrong one counts towards the log-in's lock), the card
    reported lost works again, if the card lifecycle allows it (a card a
    reissue replaced does not come back)."""
    person = person_login.person_of(uow, person_id)
    person_login.confirm_password(uow, person, password, field="password", channel=channel)
    return card_service.report_found.step(
        uow,
        actor=person_actor(person),
        channel=channel,
        person_id=person.id,
        card_no=card_no,
        reason="found again; undone by the holder on the portal",
    )
