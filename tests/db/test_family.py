"""Family mutual aid (issue 16): binding, consent both ways, the refusals
each naming its reason, the relative's order, and a resident contribution
paid from the holder's account once per key, through the ledger."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests import family_builders as fb
from tests.helpers import NANXUN, WUXING, add_person
from yibao.domain.actors import Channel
from yibao.domain.errors import DomainError
from yibao.services.access.person_login import person_actor
from yibao.services.closing import closing
from yibao.services.family import family
from yibao.services.ledger import ledger
from yibao.store.models import AuditEntry, ContributionLine, FamilyPayment, LedgerEntry, Person

# the demo city: its divisions, rules and staff
pytestmark = pytest.mark.usefixtures("demo")

P = Channel.PORTAL
C = Channel.COUNTER


def _bind(services: Any, holder: Person, relative: Person, relation: str = "parent", **kw: Any):  # type: ignore[no-untyped-def]
    actor = kw.pop("actor", person_actor(holder))
    return family.bind(
        services.uow(),
        actor=actor,
        channel=kw.pop("channel", P),
        holder_id=holder.id,
        certno=kw.pop("certno", relative.certno),
        name=kw.pop("name", relative.name),
        relation=relation,
        # at the counter the clerk checks the relative's ID: the consent
        relative_document=kw.pop("relative_document", "id_card" if actor.kind == "staff" else ""),
    )


def _refused(code: str, field: str, call: Any) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    assert caught.value.code == code, caught.value
    assert caught.value.field == field
    assert caught.value.zh and caught.value.en
    return caught.value


def test_portal_binding_waits_for_the_relatives_consent(services: Any) -> None:
    holder = fb.holder(services.uow, name="张共济")
    relative = fb.resident(services.uow, name="张母")
    made = _bind(services, holder, relative)
    assert made.status == "pending" and made.relation_zh == "父母"
    seen = family.family(
        services.uow(), actor=person_actor(relative), channel=P, person_id=relative.id
    )
    assert [b.id for b in seen.pending] == [made.id] and seen.payers == []
    # the holder cannot consent for the relative
    with pytest.raises(DomainError) as caught:
        family.confirm(
            services.uow(),
            actor=person_actor(holder),
            channel=P,
            relative_id=relative.id,
            binding_id=made.id,
        )
    assert caught.value.status == 404
    done = family.confirm(
        services.uow(),
        actor=person_actor(relative),
        channel=P,
        relative_id=relative.id,
        binding_id=made.id,
    )
    assert done.status == "active" and done.consented_via == P
    mine = family.family(services.uow(), actor=person_actor(holder), channel=P, person_id=holder.id)
    assert [(b.relative_name, b.status) for b in mine.relatives] == [("张母", "active")]
    with services.uow() as u:
        actions = set(
            u.session.execute(
                select(AuditEntry.action).where(AuditEntry.person_id == relative.id)
            ).scalars()
        )
    assert {"family.bind", "family.confirm", "family.read"} <= actions


def test_counter_binding_is_consented_there(services: Any) -> None:
    holder = fb.holder(services.uow)
    relative = fb.resident(services.uow)
    made = _bind(services, holder, relative, "child", actor=WUXING, channel=C)
    assert made.status == "active" and made.consented_via == C
    # without the relative's document checked there is no consent at the counter
    _refused(
        "validation.required",
        "relative_document",
        lambda: _bind(
            services,
            holder,
            fb.resident(services.uow),
            actor=WUXING,
            channel=C,
            relative_document="",
        ),
    )
    # staff of another area do not find the holder
    with pytest.raises(DomainError) as caught:
        _bind(services, holder, fb.resident(services.uow), actor=NANXUN, channel=C)
    assert caught.value.status == 404
    # either side ends it
    ended = family.unbind(
        services.uow(),
        actor=person_actor(relative),
        channel=P,
        person_id=relative.id,
        binding_id=made.id,
    )
    assert ended.status == "ended"
    assert (
        family.family(services.uow(), actor=WUXING, channel=C, person_id=holder.id).relatives == []
    )


def test_refusals_name_their_reason(services: Any) -> None:
    holder = fb.holder(services.uow)
    relative = fb.resident(services.uow)
    _refused(
        "family.relation_not_allowed",
        "relation",
        lambda: _bind(services, holder, relative, "cousin"),
    )
    _refused("family.self", "certno", lambda: _bind(services, holder, holder))
    _refused(
        "family.relative_not_found",
        "certno",
        lambda: _bind(services, holder, relative, name="别人"),
    )
    # a relative bound to three holders already
    for i in range(3):
        _bind(services, fb.holder(services.uow, name=f"持有人{i}"), relative, "child")
    _refused("family.too_many_holders", "certno", lambda: _bind(services, holder, relative))
    other = fb.resident(services.uow)
    _bind(services, holder, other)
    _refused("family.already_bound", "certno", lambda: _bind(services, holder, other))
    # the holder's account suspended, or not an employee account at all
    suspended = fb.holder(services.uow)
    fb.suspend(services.uow(), suspended.id)
    _refused(
        "family.holder_suspended",
        "holder",
        lambda: _bind(services, suspended, fb.resident(services.uow)),
    )
    not_employee = fb.resident(services.uow)
    _refused(
        "family.holder_not_employee",
        "holder",
        lambda: _bind(services, not_employee, fb.resident(services.uow)),
    )


def test_a_closed_account_may_not_bind_nor_pay(services: Any) -> None:
    holder = fb.holder(services.uow, balance=500_00)
    relative = fb.resident(services.uow)
    made = _bind(services, holder, relative, actor=WUXING, channel=C)
    with services.uow() as u:
        account_no = u.session.get(Person, holder.id).account_no  # type: ignore[union-attr]
    closing.close_account(
        services.uow(), actor=WUXING, channel=C, account_no=account_no, kind="emigration"
    )
    _refused(
        "family.holder_closed", "holder", lambda: _bind(services, holder, fb.resident(services.uow))
    )
    with services.uow() as u:
        assert family.payers(u, relative.id, lock=False) == []
    assert made.status == "active"


def test_the_relative_orders_the_payers(services: Any) -> None:
    relative = fb.resident(services.uow)
    a, b = fb.holder(services.uow, balance=100), fb.holder(services.uow, balance=200)
    first = _bind(services, a, relative, actor=WUXING, channel=C)
    second = _bind(services, b, relative, actor=WUXING, channel=C)
    with services.uow() as u:
        assert [p.person_id for p in family.payers(u, relative.id, lock=False)] == [a.id, b.id]
    _refused(
        "validation.family_order",
        "order",
        lambda: family.reorder(
            services.uow(),
            actor=person_actor(relative),
            channel=P,
            relative_id=relative.id,
            order=[second.id],
        ),
    )
    family.reorder(
        services.uow(),
        actor=person_actor(relative),
        channel=P,
        relative_id=relative.id,
        order=[second.id, first.id],
    )
    with services.uow() as u:
        assert [p.person_id for p in family.payers(u, relative.id, lock=False)] == [b.id, a.id]
    family.put_first(
        services.uow(),
        actor=person_actor(relative),
        channel=P,
        relative_id=relative.id,
        binding_id=first.id,
    )
    with services.uow() as u:
        assert [p.person_id for p in family.payers(u, relative.id, lock=False)] == [a.id, b.id]


def test_contribution_paid_from_the_holders_account_once(services: Any) -> None:
    holder = fb.holder(services.uow, balance=1_000_00)
    relative = fb.resident(services.uow)
    made = _bind(services, holder, relative, "spouse", actor=WUXING, channel=C)
    pay = dict(
        actor=person_actor(holder), channel=P, holder_id=holder.id, binding_id=made.id, year=2027
    )
    first = family.pay_contribution(services.uow(), key="k1", **pay)  # type: ignore[arg-type]
    # the year's twelve resident lines, as assessed (380 yuan a year, by month)
    assert first.amount == 12 * (380_00 // 12) and first.kind == "contribution"
    again = family.pay_contribution(services.uow(), key="k1", **pay)  # type: ignore[arg-type]
    assert again.id == first.id
    assert fb.balance(services.uow(), holder.id) == 1_000_00 - first.amount
    with services.uow() as u:
        lines = family.contribution_lines(u, relative.id, 2027)
        assert len(lines) == 12 and {line.status for line in lines} == {"paid"}
        assert sum(line.individual_amount for line in lines) == first.amount
        assert u.session.execute(select(FamilyPayment)).scalars().all()
        entry = u.session.execute(
            select(LedgerEntry).where(LedgerEntry.kind == "family_contribution")
        ).scalar_one()
        assert entry.person_id == relative.id and "家庭共济" in entry.memo
        assert ledger.check(u.session).ok
    # the year paid, another key finds nothing due
    _refused(
        "family.nothing_due",
        "year",
        lambda: family.pay_contribution(services.uow(), key="k2", **pay),  # type: ignore[arg-type]
    )
    # the same key for another year is refused, naming the key
    with pytest.raises(DomainError) as caught:
        family.pay_contribution(services.uow(), key="k1", **{**pay, "year": 2026})  # type: ignore[arg-type]
    assert caught.value.field == "key"


def test_contribution_never_takes_the_account_below_zero(services: Any) -> None:
    holder = fb.holder(services.uow, balance=100_00)
    relative = fb.resident(services.uow)
    made = _bind(services, holder, relative, actor=WUXING, channel=C)
    with pytest.raises(DomainError) as caught:
        family.pay_contribution(
            services.uow(),
            actor=person_actor(holder),
            channel=P,
            holder_id=holder.id,
            binding_id=made.id,
            year=2027,
            key="poor",
        )
    assert caught.value.code == "account.insufficient_balance"
    assert fb.balance(services.uow(), holder.id) == 100_00
    with services.uow() as u:
        assert not u.session.execute(
            select(ContributionLine).where(
                ContributionLine.person_id == relative.id, ContributionLine.status == "paid"
            )
        ).first()


def test_an_employee_relative_is_bound_too(services: Any) -> None:
    holder = fb.holder(services.uow)
    relative = add_person(services.uow(), name="职工亲属")
    assert _bind(services, holder, relative, "spouse").status == "pending"
