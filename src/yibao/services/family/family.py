"""Family mutual aid (家庭共济): an employee's individual account pays for a
spouse, a parent or a child.

Use cases every channel calls (the portal, the counter, the staff API):
``bind``, ``confirm``, ``unbind``, ``reorder``, ``pay_contribution`` and the
read both sides need, ``family``. The rules are ``domain.family``'s; the
settlement (``services.settlement``) reads the payers with ``payers`` and
records what they paid with ``record_settlement`` / ``reverse_settlement``;
the records (``services.inquiry``) read ``payments_of``.

A person acts for themselves (the portal); staff act for a person of their
own area (the counter: a person outside it is not found), and a binding made
at the counter is consented to there, the relative's ID checked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from yibao.domain import family as rules
from yibao.domain import ledger as codes
from yibao.domain.access import Perm
from yibao.domain.actors import Actor
from yibao.domain.errors import DomainError, invalid, not_found
from yibao.domain.ids import mask_certno
from yibao.domain.visits import DOCUMENTS
from yibao.services import idempotency
from yibao.services.contributions import contributions
from yibao.services.ledger import ledger
from yibao.services.tx import use_case
from yibao.store.models import (
    AccountClosure,
    ContributionLine,
    FamilyBinding,
    FamilyPayment,
    LedgerAccount,
    Payment,
    Person,
)
from yibao.store.uow import UnitOfWork

OPEN = ("pending", "active")


# ---------------------------------------------------------------- views


@dataclass(frozen=True)
class BindingView:
    id: int
    holder_id: int
    holder_name: str
    holder_certno: str  # masked
    relative_id: int
    relative_name: str
    relative_certno: str  # masked
    relation: str
    relation_zh: str
    relation_en: str
    status: str
    rank: int
    requested_at: dt.datetime
    requested_via: str
    consented_at: dt.datetime | None
    consented_via: str | None


@dataclass(frozen=True)
class PaymentView:
    id: int
    kind: str  # settlement, contribution
    holder_id: int
    holder_name: str
    relative_id: int
    relative_name: str
    amount: int
    reference: str
    institution_code: str
    at: dt.datetime
    reversed: bool
    entry_id: int

    @property
    def purpose(self) -> tuple[str, str]:
        if self.kind == "contribution":
            return (f"{self.reference}年度居民医保费", f"resident contribution {self.reference}")
        return ("医疗费用结算", "medical costs")

    def role_of(self, person_id: int) -> str:
        """``paid`` when the person's account paid, ``received`` when it paid for them."""
        return "paid" if person_id == self.holder_id else "received"


@dataclass(frozen=True)
class FamilyView:
    person_id: int
    name: str
    account_no: str
    relatives: list[BindingView]  # whom this person's account pays for (pending or active)
    payers: list[BindingView]  # who pays for this person, in their order (active)
    pending: list[BindingView]  # requests waiting for this person's consent
    payments: list[PaymentView]  # both sides, newest first
    max_holders: int


def _view(b: FamilyBinding, names: dict[int, Person]) -> BindingView:
    holder, relative = names[b.holder_id], names[b.relative_id]
    zh, en = rules.RELATIONS.get(b.relation, (b.relation, b.relation))
    return BindingView(
        id=b.id,
        holder_id=b.holder_id,
        holder_name=holder.name,
        holder_certno=mask_certno(holder.certno),
        relative_id=b.relative_id,
        relative_name=relative.name,
        relative_certno=mask_certno(relative.certno),
        relation=b.relation,
        relation_zh=zh,
        relation_en=en,
        status=b.status,
        rank=b.rank,
        requested_at=b.requested_at,
        requested_via=b.requested_via,
        consented_at=b.consented_at,
        consented_via=b.consented_via,
    )


def _persons(uow: UnitOfWork | Session, ids: set[int]) -> dict[int, Person]:
    if not ids:
        return {}
    session = uow if isinstance(uow, Session) else uow.session
    rows = session.execute(select(Person).where(Person.id.in_(sorted(ids)))).scalars()
    return {p.id: p for p in rows}


def _views(uow: UnitOfWork, rows: Sequence[FamilyBinding]) -> list[BindingView]:
    names = _persons(uow, {b.holder_id for b in rows} | {b.relative_id for b in rows})
    return [_view(b, names) for b in rows]


# ---------------------------------------------------------------- who may act


def _person(uow: UnitOfWork, actor: Actor, person_id: int, *, write: bool) -> Person:
    """The person acted for: oneself, or for staff a person of their area
    (another's is not found, as everywhere)."""
    person = uow.session.get(Person, person_id)
    if person is None:
        raise not_found("参保人员", "person", "person.not_found")
    if actor.kind == "person":
        if actor.id != str(person.id):
            raise not_found("参保人员", "person", "person.not_found")
        return person
    actor.require(Perm.PERSON_WRITE if write else Perm.PERSON_READ)
    if not actor.sees(person.division_code):
        raise not_found("参保人员", "person", "person.not_found")
    return person


def _binding(uow: UnitOfWork, binding_id: int) -> FamilyBinding:
    row = uow.session.get(FamilyBinding, binding_id, with_for_update=True)
    if row is None:
        raise not_found("共济绑定", "family binding", "family.not_found")
    return row


def holder_account(uow: UnitOfWork, person: Person) -> rules.HolderAccount:
    enrolment = contributions.current_enrolment(uow.session, person.id)
    closed = (
        uow.session.execute(
            select(AccountClosure.id).where(AccountClosure.person_id == person.id)
        ).first()
        is not None
    )
    return rules.HolderAccount(
        person_id=person.id,
        insutype=enrolment.insutype if enrolment else None,
        enrolment_status=enrolment.status if enrolment else None,
        person_status=person.status,
        closed=closed,
    )


def _next_rank(uow: UnitOfWork, relative_id: int) -> int:
    top = uow.session.execute(
        select(func.max(FamilyBinding.rank)).where(
            FamilyBinding.relative_id == relative_id, FamilyBinding.status == "active"
        )
    ).scalar()
    return int(top or 0) + 1


# ---------------------------------------------------------------- bind and consent


def _audit_both(
    uow: UnitOfWork,
    actor: Actor,
    channel: str,
    action: str,
    people: tuple[int, int],
    subject: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """A family change is the holder's and the relative's data alike: one
    audit entry in each one's history."""
    for person_id in people:
        uow.audit(
            actor.record(
                channel=channel,
                action=action,
                person_id=person_id,
                subject=subject,
                detail=detail,
            )
        )


@use_case
def bind(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    holder_id: int,
    certno: str,
    name: str,
    relation: str,
    relative_document: str = "",
) -> BindingView:
    """The holder binds a relative by ID number, name and relation. From
    the portal it waits for the relative's consent; at the counter the
    clerk checks the relative's document (``relative_document``, one of
    ``domain.visits.DOCUMENTS``), which is the consent."""
    holder = _person(uow, actor, holder_id, write=True)
    rules.check_relation(relation)
    at_counter = actor.kind == "staff"
    if at_counter:
        check_document(relative_document, field="relative_document")
    relative = uow.session.execute(
        select(Person).where(Person.certno == certno.strip().upper())
    ).scalar_one_or_none()
    if relative is None or relative.name != name.strip():
        raise DomainError(
            code="family.relative_not_found",
            zh="未找到该身份证号和姓名的参保人员",
            en="no insured person has this ID number and name",
            field="certno",
            status=409,
        )
    existing = uow.session.execute(
        select(FamilyBinding)
        .where(FamilyBinding.holder_id == holder.id, FamilyBinding.relative_id == relative.id)
        .with_for_update()
    ).scalar_one_or_none()
    others = uow.session.execute(
        select(func.count(FamilyBinding.id)).where(
            FamilyBinding.relative_id == relative.id,
            FamilyBinding.holder_id != holder.id,
            FamilyBinding.status.in_(OPEN),
        )
    ).scalar_one()
    rules.check_bind(
        holder=holder_account(uow, holder),
        relative_id=relative.id,
        relation=relation,
        relative_holders=int(others),
        already_bound=existing is not None and existing.status in OPEN,
        max_holders=uow.settings.family_max_holders,
    )
    now = uow.clock.now()
    row = existing or FamilyBinding(holder_id=holder.id, relative_id=relative.id)
    row.relation = relation
    row.status = "active" if at_counter else "pending"
    row.rank = _next_rank(uow, relative.id) if at_counter else 0
    row.requested_at, row.requested_via = now, channel
    row.consented_at = now if at_counter else None
    row.consented_via = channel if at_counter else None
    row.consented_by = actor.id if at_counter else None
    row.ended_at = row.ended_by = None
    if existing is None:
        uow.session.add(row)
    uow.session.flush()
    _audit_both(
        uow,
        actor,
        channel,
        "family.bind",
        (holder.id, relative.id),
        str(row.id),
        {
            "holder": holder.id,
            "relative": relative.id,
            "relation": relation,
            "consented": at_counter,
            "relative_document": relative_document if at_counter else "",
        },
    )
    return _views(uow, [row])[0]


@use_case
def confirm(
    uow: UnitOfWork, *, actor: Actor, channel: str, relative_id: int, binding_id: int
) -> BindingView:
    """The relative consents to a pending binding; the holder's account
    must still be one that may pay."""
    relative = _person(uow, actor, relative_id, write=True)
    row = _binding(uow, binding_id)
    if row.relative_id != relative.id or row.status != "pending":
        raise not_found("待确认的共济绑定", "pending family binding", "family.not_found")
    holder = uow.session.get(Person, row.holder_id)
    assert holder is not None
    rules.check_holder(holder_account(uow, holder))
    now = uow.clock.now()
    row.status, row.rank = "active", _next_rank(uow, relative.id)
    row.consented_at, row.consented_via, row.consented_by = now, channel, actor.id
    uow.session.flush()
    _audit_both(
        uow, actor, channel, "family.confirm", (row.holder_id, row.relative_id), str(row.id)
    )
    return _views(uow, [row])[0]


@use_case
def unbind(
    uow: UnitOfWork, *, actor: Actor, channel: str, person_id: int, binding_id: int
) -> BindingView:
    """Either side ends a binding (a pending request declined, too); a
    settlement already made stays as it was."""
    person = _person(uow, actor, person_id, write=True)
    row = _binding(uow, binding_id)
    if person.id not in (row.holder_id, row.relative_id) or row.status not in OPEN:
        raise not_found("共济绑定", "family binding", "family.not_found")
    row.status, row.ended_at, row.ended_by = "ended", uow.clock.now(), actor.id
    uow.session.flush()
    _audit_both(uow, actor, channel, "family.unbind", (row.holder_id, row.relative_id), str(row.id))
    return _views(uow, [row])[0]


@use_case
def reorder(
    uow: UnitOfWork, *, actor: Actor, channel: str, relative_id: int, order: Sequence[int]
) -> list[BindingView]:
    """The relative's order of payers: the first pays first."""
    relative = _person(uow, actor, relative_id, write=True)
    rows = list(
        uow.session.execute(
            select(FamilyBinding)
            .where(FamilyBinding.relative_id == relative.id, FamilyBinding.status == "active")
            .with_for_update()
        ).scalars()
    )
    rules.check_order(list(order), [r.id for r in rows])
    by_id = {r.id: r for r in rows}
    for rank, binding_id in enumerate(order, start=1):
        by_id[binding_id].rank = rank
    uow.session.flush()
    uow.audit(
        actor.record(
            channel=channel,
            action="family.reorder",
            person_id=relative.id,
            detail={"order": list(order)},
        )
    )
    return _views(uow, _active_payers(uow, relative.id))


@use_case
def put_first(
    uow: UnitOfWork, *, actor: Actor, channel: str, relative_id: int, binding_id: int
) -> list[BindingView]:
    """The relative's payer who is to pay first; the others keep their order."""
    current = [b.id for b in _active_payers(uow, relative_id)]
    return reorder.step(
        uow,
        actor=actor,
        channel=channel,
        relative_id=relative_id,
        order=rules.put_first(current, binding_id),
    )


def check_document(document: str, *, field: str) -> str:
    """The document the clerk checked for the relative (the consent at the counter)."""
    if document not in DOCUMENTS:
        raise invalid(
            field,
            "请核验家庭成员本人的证件",
            "check the relative's own document (their consent at the counter)",
            "required",
        )
    return document


def _active_payers(uow: UnitOfWork, relative_id: int) -> list[FamilyBinding]:
    return list(
        uow.session.execute(
            select(FamilyBinding)
            .where(FamilyBinding.relative_id == relative_id, FamilyBinding.status == "active")
            .order_by(FamilyBinding.rank, FamilyBinding.id)
        ).scalars()
    )


# ---------------------------------------------------------------- the read


def payments_of(
    session: Session,
    person_id: int,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = 200,
) -> list[PaymentView]:
    """What this person's account paid for relatives and what holders paid
    for them, newest first (not audited: the caller's read is)."""
    stmt = (
        select(FamilyPayment)
        .where(or_(FamilyPayment.holder_id == person_id, FamilyPayment.relative_id == person_id))
        .order_by(FamilyPayment.at.desc(), FamilyPayment.id.desc())
        .limit(limit)
    )
    if start is not None:
        stmt = stmt.where(FamilyPayment.at >= start)
    if end is not None:
        stmt = stmt.where(FamilyPayment.at < end)
    rows = list(session.execute(stmt).scalars())
    names = _persons(session, {r.holder_id for r in rows} | {r.relative_id for r in rows})
    return [
        PaymentView(
            id=r.id,
            kind=r.kind,
            holder_id=r.holder_id,
            holder_name=names[r.holder_id].name if r.holder_id in names else "",
            relative_id=r.relative_id,
            relative_name=names[r.relative_id].name if r.relative_id in names else "",
            amount=r.amount,
            reference=r.reference,
            institution_code=r.institution_code,
            at=r.at,
            reversed=r.reversed_entry_id is not None,
            entry_id=r.entry_id,
        )
        for r in rows
    ]


@use_case
def family(uow: UnitOfWork, *, actor: Actor, channel: str, person_id: int) -> FamilyView:
    """Both sides of a person's family mutual aid: whom they pay for, who
    pays for them (in their order), the requests waiting for their consent
    and the payments made."""
    person = _person(uow, actor, person_id, write=False)
    relatives = list(
        uow.session.execute(
            select(FamilyBinding)
            .where(FamilyBinding.holder_id == person.id, FamilyBinding.status.in_(OPEN))
            .order_by(FamilyBinding.id)
        ).scalars()
    )
    pending = list(
        uow.session.execute(
            select(FamilyBinding)
            .where(FamilyBinding.relative_id == person.id, FamilyBinding.status == "pending")
            .order_by(FamilyBinding.id)
        ).scalars()
    )
    uow.audit(actor.record(channel=channel, action="family.read", person_id=person.id))
    return FamilyView(
        person_id=person.id,
        name=person.name,
        account_no=person.account_no,
        relatives=_views(uow, relatives),
        payers=_views(uow, _active_payers(uow, person.id)),
        pending=_views(uow, pending),
        payments=payments_of(uow.session, person.id),
        max_holders=uow.settings.family_max_holders,
    )


# ---------------------------------------------------------------- contributions


@use_case
def pay_contribution(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    holder_id: int,
    binding_id: int,
    year: int,
    key: str,
) -> PaymentView:
    """The holder pays a bound relative's yearly resident contribution from
    the individual account, through the ledger, once per key: the same key
    again gets the first payment."""
    holder = _person(uow, actor, holder_id, write=True)
    if not key or len(key) > 80:
        raise invalid(
            "key",
            "请提供幂等键（80个字符以内）",
            "an idempotency key of at most 80 characters is needed",
        )
    if not 1900 < year < 2200:
        raise invalid("year", "年度无效", "not a valid year")

    def work() -> dict[str, Any]:
        row = _binding(uow, binding_id)
        if row.holder_id != holder.id or row.status != "active":
            raise not_found("已确认的共济绑定", "confirmed family binding", "family.not_found")
        rules.check_holder(holder_account(uow, holder))
        relative = uow.session.get(Person, row.relative_id)
        assert relative is not None
        enrolment = contributions.current_enrolment(uow.session, relative.id)
        if enrolment is None or enrolment.insutype != contributions.RESIDENT:
            raise DomainError(
                code="family.not_resident",
                zh="该家庭成员未参加城乡居民医保，无需缴纳居民保费",
                en="the relative is not enrolled in resident insurance",
                field="binding",
                status=409,
            )
        lines = contributions.assess_person(
            uow,
            actor=actor,
            channel=channel,
            enrolment=enrolment,
            months=[year * 100 + m for m in range(1, 13)],
        )
        due = [line for line in lines if line.status == "due"]
        amount = sum(line.employer_amount + line.individual_amount for line in due)
        if not due or amount == 0:
            raise DomainError(
                code="family.nothing_due",
                zh=f"该家庭成员{year}年度居民保费已缴清",
                en=f"the relative's resident contribution for {year} is paid already",
                field="year",
                status=409,
            )
        now = uow.clock.now()
        holding = ledger.Leg(f"PSNPAY:{relative.id}", 0, "payer", relative.id)
        posted = ledger.post(
            uow,
            key=f"family:{holder.id}:{key}",
            kind="family_contribution",
            person_id=relative.id,
            legs=[
                ledger.Leg(codes.individual(holder.id), -amount, "individual", holder.id),
                ledger.Leg(holding.code, amount, holding.kind, relative.id),
            ],
            memo=f"家庭共济 family aid: {holder.id} pays {relative.id}'s resident contribution {year}",
        )
        payment = Payment(
            idem_key=f"pay:family:{holder.id}:{key}",
            payer_kind="family",
            person_id=relative.id,
            amount=amount,
            reference=f"family:{holder.id}:{year}",
            received_at=now,
            entry_id=posted.entry.id,
        )
        uow.session.add(payment)
        uow.session.flush()
        contributions.settle_lines(
            uow, lines=due, payment=payment, holding=holding, key=f"alloc:family:{holder.id}:{key}"
        )
        paid = FamilyPayment(
            kind="contribution",
            holder_id=holder.id,
            relative_id=relative.id,
            amount=amount,
            entry_id=posted.entry.id,
            reference=f"{year}",
            institution_code="",
            at=now,
        )
        uow.session.add(paid)
        uow.session.flush()
        _audit_both(
            uow,
            actor,
            channel,
            "family.contribution",
            (holder.id, relative.id),
            str(paid.id),
            {"holder": holder.id, "relative": relative.id, "year": year, "amount": amount},
        )
        return {"family_payment_id": paid.id}

    done = idempotency.once(
        uow,
        scope=f"family:{holder.id}",
        key=key,
        fingerprint=idempotency.fingerprint(
            "family_contribution", {"binding": binding_id, "year": year}
        ),
        work=work,
        field="key",
    )
    found = uow.session.get(FamilyPayment, done["family_payment_id"])
    assert found is not None
    return next(p for p in payments_of(uow.session, holder.id, limit=1000) if p.id == found.id)


# ---------------------------------------------------------------- settlement


def payers(uow: UnitOfWork, relative_id: int, *, lock: bool) -> list[rules.Payer]:
    """The bound holders who may pay for this relative now, in the
    relative's order, with their balances. ``lock``: the holders' ledger
    accounts are locked (in ascending id, as the ledger locks them), so that
    the balances the decision sees hold until the write."""
    rows = _active_payers(uow, relative_id)
    if not rows:
        return []
    holders = _persons(uow, {r.holder_id for r in rows})
    may = [r.holder_id for r in rows if rules.may_pay(holder_account(uow, holders[r.holder_id]))]
    if not may:
        return []
    stmt = (
        select(LedgerAccount.code, LedgerAccount.balance)
        .where(LedgerAccount.code.in_([codes.individual(h) for h in may]))
        .order_by(LedgerAccount.id)
    )
    if lock:
        stmt = stmt.with_for_update()
    balances = {code: int(bal) for code, bal in uow.session.execute(stmt)}
    found = [rules.Payer(h, balances.get(codes.individual(h), 0)) for h in may]
    return [p for p in found if p.balance > 0]


def record_settlement(
    uow: UnitOfWork,
    *,
    relative_id: int,
    mulaid: Sequence[tuple[int, int]],
    entry_id: int,
    setl_id: str,
    institution_code: str,
) -> None:
    """What each holder paid of a settlement, beside its one ledger entry."""
    now = uow.clock.now()
    for holder_id, amount in mulaid:
        uow.session.add(
            FamilyPayment(
                kind="settlement",
                holder_id=holder_id,
                relative_id=relative_id,
                amount=amount,
                entry_id=entry_id,
                reference=setl_id,
                institution_code=institution_code,
                at=now,
            )
        )
    uow.session.flush()


def mulaid_of(uow: UnitOfWork, setl_id: str) -> int:
    """What holders paid of this settlement (``acct_mulaid_pay``)."""
    total = uow.session.execute(
        select(func.coalesce(func.sum(FamilyPayment.amount), 0)).where(
            FamilyPayment.kind == "settlement", FamilyPayment.reference == setl_id
        )
    ).scalar_one()
    return int(total)


def reverse_settlement(uow: UnitOfWork, *, setl_id: str, reversal_entry_id: int) -> None:
    """A cancelled settlement's holders' shares, reversed with its entry."""
    now = uow.clock.now()
    for row in uow.session.execute(
        select(FamilyPayment).where(
            FamilyPayment.kind == "settlement",
            FamilyPayment.reference == setl_id,
            FamilyPayment.reversed_entry_id.is_(None),
        )
    ).scalars():
        row.reversed_at, row.reversed_entry_id = now, reversal_entry_id
    uow.session.flush()


def contribution_lines(uow: UnitOfWork, relative_id: int, year: int) -> list[ContributionLine]:
    """The relative's contribution lines of a year (the tests and pages read them)."""
    return list(
        uow.session.execute(
            select(ContributionLine)
            .where(
                ContributionLine.person_id == relative_id,
                ContributionLine.month >= year * 100 + 1,
                ContributionLine.month <= year * 100 + 12,
            )
            .order_by(ContributionLine.month)
        ).scalars()
    )


# the kinds a holder's account postings show for what they paid for relatives
AID = "mutual_aid"
AID_REVERSED = "reversal:mutual_aid"


def relabel(session: Session, person_id: int, lines: Sequence[ledger.Line]) -> None:
    """A holder's postings for a relative's settlement read as family mutual
    aid (and its reversal as such), not as the holder's own visit: the
    entry is the relative's, the posting the holder's (``ledger.Line``s,
    changed in place). Only a line whose entry is another person's can be
    one: a line that says its entry is this person's own, or nobody's, is
    not asked about."""
    ids = {line.entry_id for line in lines if line.entry_person_id not in (None, person_id)}
    if not ids:
        return
    paid: set[int] = set()
    back: set[int] = set()
    for entry_id, reversed_id in session.execute(
        select(FamilyPayment.entry_id, FamilyPayment.reversed_entry_id).where(
            FamilyPayment.holder_id == person_id,
            FamilyPayment.kind == "settlement",
            or_(FamilyPayment.entry_id.in_(ids), FamilyPayment.reversed_entry_id.in_(ids)),
        )
    ):
        paid.add(entry_id)
        if reversed_id is not None:
            back.add(reversed_id)
    for line in lines:
        if line.entry_id in paid:
            line.kind = AID
        elif line.entry_id in back:
            line.kind = AID_REVERSED
