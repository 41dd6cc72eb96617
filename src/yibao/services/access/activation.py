"""The portal's activation code issued at the counter, for the visit's person.

TODO(merge): ``person_login.issue_activation_code`` (branch web) takes the
person's row; once it is a use case taking ``person_id``, the counter calls
it directly and this module goes.
"""

from __future__ import annotations

import datetime as dt

from yibao.domain.actors import Actor
from yibao.domain.errors import not_found
from yibao.services.access import person_login
from yibao.services.transition import step_of
from yibao.services.tx import use_case
from yibao.store.models import Person
from yibao.store.uow import UnitOfWork


@use_case
def issue_activation_code(
    uow: UnitOfWork, *, actor: Actor, channel: str, person_id: int
) -> tuple[str, dt.datetime]:
    person = uow.session.get(Person, person_id)
    if person is None:
        raise not_found("参保人员", "person", "person.not_found")
    issued: tuple[str, dt.datetime] = step_of(person_login.issue_activation_code)(
        uow, actor=actor, channel=channel, person=person
    )
    return issued
