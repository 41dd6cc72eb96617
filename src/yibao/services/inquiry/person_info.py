"""Person information for a designated institution's HIS (1101): the
account summary every channel reads (``summary.summarize``, presenter an
institution, so that a lost, frozen, cancelled, replaced or not yet issued
card, or another person named beside it, opens nothing), as the national
interface shows it. The fast path on PostgreSQL answers the same
(``settlement.fast_path``, on the same ``domain.use`` decision)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from yibao.domain.actors import Channel
from yibao.domain.errors import invalid
from yibao.domain.use import Presenter
from yibao.services.access.institution_auth import Caller
from yibao.services.cards import evoucher
from yibao.services.inquiry.summary import summarize
from yibao.services.settlement import settlement
from yibao.services.tx import use_case
from yibao.store.models import Person
from yibao.store.uow import UnitOfWork


@use_case
def person_info(
    uow: UnitOfWork, caller: Caller, *, cert_type: str, cert_no: str, data: dict[str, Any]
) -> dict[str, Any]:
    """1101: base information, and the insurance information with the balance."""
    card_no: str | None = None
    person_id: int | None = None
    if cert_type == "03":
        card_no = cert_no
    elif cert_type == "02":
        person_id = uow.session.execute(
            select(Person.id).where(Person.certno == cert_no.upper())
        ).scalar_one_or_none()
    elif cert_type == "01":
        person_id = evoucher.redeem(uow, token=cert_no, institution=caller.code)
    else:
        raise invalid(
            "mdtrt_cert_type", "就诊凭证类型应为01、02或03", "mdtrt_cert_type is 01, 02 or 03"
        )
    summary = summarize(
        uow,
        actor=caller.actor,
        channel=Channel.HIS,
        presenter=Presenter.INSTITUTION,
        person_id=person_id,
        card_no=card_no,
        named=settlement.named(data),
        recent=0,
        action="his.person_info",
        card_field="mdtrt_cert_no",
    )
    person = uow.session.get(Person, summary.person_id)
    assert person is not None
    e = summary.enrolment
    return settlement.person_info_output(
        settlement.holder(person),
        e,
        balance=summary.balance,
        emp_name=settlement.employer_name(uow, e.employer_id if e else None),
        today=uow.clock.today(),
    )
