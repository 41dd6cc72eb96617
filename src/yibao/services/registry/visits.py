"""The counter's visit: which document the clerk checked, recorded before the
person is shown (``domain.visits``)."""

from __future__ import annotations

from yibao.domain.actors import Actor
from yibao.domain.visits import Visit, check_document
from yibao.services.registry import registry
from yibao.services.tx import use_case
from yibao.store.uow import UnitOfWork


@use_case
def record_visit(
    uow: UnitOfWork, *, actor: Actor, channel: str, account_no: str, document: str
) -> Visit:
    """Record the document checked for a person in the clerk's area; the
    person's file opens only for the visit this returns."""
    check_document(document)
    person = registry.get_person.step(
        uow,
        actor=actor,
        channel=channel,
        account_no=account_no,
        audit_action="counter.document_checked",
    )
    uow.audit(
        actor.record(
            channel=channel,
            action="counter.visit",
            person_id=person.id,
            subject=person.account_no,
            detail={"document": document},
        )
    )
    return Visit(person.account_no, person.id, document)
