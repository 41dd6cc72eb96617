"""Closing a person's account (seed 000, part three, item 4): emigration,
transfer of the insurance relation out of the city, death; and a transfer in
from another area. Every fen of the balance ends in a named account, and
every money move has its idempotency key."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, select

from yibao.clock import CHINA
from yibao.domain import areas
from yibao.domain import divisions as dv
from yibao.domain import ledger as codes
from yibao.domain.access import Perm
from yibao.domain.actors import Actor
from yibao.domain.cards import LIVE, CardStatus
from yibao.domain.errors import DomainError, conflict, invalid, not_found
from yibao.domain.ids import mask_certno, parse_resident_id
from yibao.domain.schemes import PSN_TYPE_ZH, STATUS_ZH
from yibao.domain.values import is_digits
from yibao.services import idempotency
from yibao.services.cards import cards as card_service
from yibao.services.contributions import contributions
from yibao.services.documents import Document, yuan
from yibao.services.ledger import ledger
from yibao.services.registry import registry
from yibao.services.tx import use_case
from yibao.store.models import (
    AccountClosure,
    Card,
    ContributionLine,
    IaCreditClaim,
    PaymentVoucher,
    Person,
)
from yibao.store.uow import UnitOfWork

# kind: (person status, ledger entry kind, payable account, Chinese name)
KINDS: dict[str, tuple[str, str, str]] = {
    "emigration": ("emigrated", "payout", "出国（境）定居注销户籍"),
    "transfer_out": ("transferred_out", "transfer_out", "医保关系转出"),
    "death": ("deceased", "inheritance", "死亡"),
}


def _payable(kind: str, person: Person, destination: str | None) -> tuple[str, str]:
    if kind == "emigration":
        return codes.payable_person(person.id), "payable_person"
    if kind == "death":
        return codes.payable_heirs(person.id), "payable_heirs"
    assert destination is not None
    return codes.payable_area(destination), "payable_area"


def post_pending_credits(uow: UnitOfWork, person: Person) -> int:
    """Credit the account now with contributions already received for it but
    not yet posted by the monthly run, so that they are not left behind."""
    lines = list(
        uow.session.execute(
            select(ContributionLine)
            .where(
                ContributionLine.person_id == person.id,
                ContributionLine.status == "paid",
                ~exists().where(IaCreditClaim.line_id == ContributionLine.id),
                ContributionLine.account_credit > 0,
            )
            .order_by(ContributionLine.id)
            .with_for_update()
        ).scalars()
    )
    if not lines:
        return 0
    by_area: dict[str, int] = {}
    for line in lines:
        by_area[line.area] = by_area.get(line.area, 0) + line.account_credit
    total = sum(by_area.values())
    legs = [ledger.Leg(codes.individual(person.id), total, "individual", person.id)]
    legs += [
        ledger.Leg(codes.ia_pending(area), -amount, "ia_pending", area=area)
        for area, amount in sorted(by_area.items())
    ]
    posted = ledger.post(
        uow,
        key=f"closecredit:{person.id}:{lines[0].id}-{lines[-1].id}",
        kind="ia_credit",
        legs=legs,
        person_id=person.id,
        memo="account credit before closing",
    )
    uow.session.add_all(IaCreditClaim(line_id=line.id, entry_id=posted.entry.id) for line in lines)
    return total


def _find(uow: UnitOfWork, actor: Actor, account_no: str) -> Person:
    person = uow.session.execute(
        select(Person)
        .where(Person.account_no == account_no, registry.in_scope(Person.division_code, actor))
        .with_for_update()
    ).scalar_one_or_none()
    if person is None:
        raise not_found("参保人员", "person", "person.not_found")
    return person


@use_case
def close_account(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    account_no: str,
    kind: str,
    reason: str = "",
    destination_area: str | None = None,
    card_returned: bool = True,
) -> tuple[AccountClosure, Person]:
    """Close the account: enrolments terminated, the balance moved to what is
    payable (to the person, the heirs or the destination area), the card
    cancelled as returned here, the person's status updated. A retry of the
    same closing returns the first answer."""
    actor.require(Perm.PERSON_WRITE)
    actor.require(Perm.CARD_MANAGE)
    if kind not in KINDS:
        raise invalid("kind", "注销类型错误", f"kind is one of {', '.join(KINDS)}")
    person = _find(uow, actor, account_no)

    def closed_already(kind_before: str) -> DomainError:
        return conflict(
            "account.closed",
            f"该账户已注销（{KINDS[kind_before][2]}）",
            f"the account was already closed ({kind_before})",
        )

    def work() -> dict[str, Any]:
        previous = uow.session.execute(
            select(AccountClosure).where(AccountClosure.person_id == person.id)
        ).scalar_one_or_none()
        if previous is not None:  # closed before the request keys kept closings
            if previous.kind != kind or (
                kind == "transfer_out" and previous.destination_area != destination_area
            ):
                raise closed_already(previous.kind)
            return {"closure_no": previous.closure_no, "kind": previous.kind}
        closure = _close(
            uow,
            actor=actor,
            channel=channel,
            person=person,
            kind=kind,
            reason=reason,
            destination_area=destination_area,
            card_returned=card_returned,
        )
        return {"closure_no": closure.closure_no, "kind": kind}

    # An account is closed once: the person is the key, claimed before
    # anything is read, so that two overlapping requests give one closing.
    done = idempotency.once(
        uow,
        scope="closure",
        key=str(person.id),
        fingerprint=idempotency.fingerprint(
            "closure",
            {"kind": kind, "destination": destination_area if kind == "transfer_out" else None},
        ),
        work=work,
        reused=lambda first: closed_already(str(first.get("kind") or kind)),
    )
    closure = uow.session.execute(
        select(AccountClosure).where(AccountClosure.closure_no == done["closure_no"])
    ).scalar_one()
    return closure, person


def _close(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person: Person,
    kind: str,
    reason: str,
    destination_area: str | None,
    card_returned: bool,
) -> AccountClosure:
    if person.status != "active":
        raise conflict(
            "person.not_active", "该人员参保关系已终止", "the person's insurance has ended"
        )
    destination = _destination(uow, person, kind, destination_area)
    today = uow.clock.today()
    now = uow.clock.now()
    status, entry_kind, kind_zh = KINDS[kind]
    for enrolment in contributions.enrolments_of(uow.session, person.id):
        if enrolment.status != "terminated":
            contributions.terminate(uow, enrolment, day=today, reason=kind)
    certificate = certificate_data(uow, person, destination) if kind == "transfer_out" else {}
    # no more bank debits for a closed account
    for voucher in uow.session.execute(
        select(PaymentVoucher).where(
            PaymentVoucher.person_id == person.id, PaymentVoucher.status == "due"
        )
    ).scalars():
        voucher.status = "cancelled"
    post_pending_credits(uow, person)
    balance = ledger.individual_balance(uow.session, person.id)
    payable, payable_kind = _payable(kind, person, destination)
    closure = AccountClosure(
        closure_no=f"AC{today:%Y%m%d}{secrets.randbelow(10**8):08d}",
        person_id=person.id,
        kind=kind,
        closed_on=today,
        reason=(reason or kind_zh).strip()[:200],
        balance=balance,
        payable_code=payable,
        destination_area=destination,
        created_at=now,
        created_by=actor.id,
    )
    if balance > 0:
        posted = ledger.post(
            uow,
            key=f"close:{person.id}",
            kind=entry_kind,
            person_id=person.id,
            legs=[
                ledger.Leg(codes.individual(person.id), -balance, "individual", person.id),
                ledger.Leg(
                    payable,
                    balance,
                    payable_kind,
                    None if kind == "transfer_out" else person.id,
                    area=destination or "",
                ),
            ],
            memo=f"{kind}: balance to {payable}",
        )
        closure.close_entry_id = posted.entry.id
    if certificate:
        certificate["balance"] = balance
        certificate["balance_yuan"] = yuan(balance)
    closure.certificate = certificate
    card = _live_or_lost_card(uow, person)
    if card is not None:
        card_service.cancel_card.step(
            uow,
            actor=actor,
            channel=channel,
            person_id=person.id,
            card_no=card.card_no,
            reason=f"{kind_zh}，卡已交回 card returned ({kind})",
        )
        closure.card_no = card.card_no
        closure.card_returned_at = actor.division if card_returned else None
    person.status = status
    person.updated_at = now
    uow.session.add(closure)
    uow.session.flush()
    if certificate:
        closure.certificate = {**certificate, "certificate_no": closure.closure_no}
    uow.audit(
        actor.record(
            channel=channel,
            action=f"account.close.{kind}",
            person_id=person.id,
            subject=closure.closure_no,
            detail={"balance": balance, "payable": payable, "card": closure.card_no},
        )
    )
    return closure


def _destination(
    uow: UnitOfWork, person: Person, kind: str, destination_area: str | None
) -> str | None:
    """A transfer out's destination: a real GB/T 2260 area outside the
    person's pooling area (``domain.areas``); None for the other kinds."""
    if kind != "transfer_out":
        return None
    return areas.check_transfer_destination(
        destination_area, person.division_code, uow.clock.today().year
    )


@dataclass(frozen=True)
class ClosurePlan:
    """What closing an account would do, before it is done."""

    person: Person
    kind: str
    kind_zh: str
    balance: int  # fen: the balance with the credits still to post
    destination: str | None
    destination_name: str | None
    card_no: str | None  # the card it would cancel


def _pending_credit(uow: UnitOfWork, person: Person) -> int:
    """What ``post_pending_credits`` would credit, read without posting."""
    total = uow.session.execute(
        select(func.coalesce(func.sum(ContributionLine.account_credit), 0)).where(
            ContributionLine.person_id == person.id,
            ContributionLine.status == "paid",
            ~exists().where(IaCreditClaim.line_id == ContributionLine.id),
            ContributionLine.account_credit > 0,
        )
    ).scalar_one()
    return int(total)


@use_case
def check_closure(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    account_no: str,
    kind: str,
    destination_area: str | None = None,
) -> ClosurePlan:
    """What ``close_account`` would do, checked without doing it: the balance
    that would be paid out or carried, the card that would be cancelled; or
    the refusal it would give (the counter's confirmation)."""
    actor.require(Perm.PERSON_WRITE)
    actor.require(Perm.CARD_MANAGE)
    if kind not in KINDS:
        raise invalid("kind", "注销类型错误", f"kind is one of {', '.join(KINDS)}")
    person = uow.session.execute(
        select(Person).where(
            Person.account_no == account_no, registry.in_scope(Person.division_code, actor)
        )
    ).scalar_one_or_none()
    if person is None:
        raise not_found("参保人员", "person", "person.not_found")
    if person.status != "active":
        raise conflict(
            "person.not_active", "该人员参保关系已终止", "the person's insurance has ended"
        )
    destination = _destination(uow, person, kind, destination_area)
    balance = ledger.individual_balance(uow.session, person.id) + _pending_credit(uow, person)
    card = _live_or_lost_card(uow, person)
    uow.audit(
        actor.record(
            channel=channel,
            action="account.close_checked",
            person_id=person.id,
            subject=person.account_no,
            detail={"kind": kind, "balance": balance},
        )
    )
    return ClosurePlan(
        person=person,
        kind=kind,
        kind_zh=KINDS[kind][2],
        balance=balance,
        destination=destination,
        destination_name=(
            dv.national_name(destination, uow.clock.today().year) if destination else None
        ),
        card_no=card.card_no if card else None,
    )


def _live_or_lost_card(uow: UnitOfWork, person: Person) -> Card | None:
    for card in card_service.cards_of(uow, person):
        if card.status in {s.value for s in LIVE} or card.status == CardStatus.LOST.value:
            return card
    return None


@use_case
def get_closure(
    uow: UnitOfWork, *, actor: Actor, channel: str, closure_no: str
) -> tuple[AccountClosure, Person]:
    closure, person = registry.read_owned(
        uow,
        actor=actor,
        channel=channel,
        column=AccountClosure.closure_no,
        value=closure_no,
        action="account.closure.read",
        what=("账户注销记录", "account closure", "closure.not_found"),
    )
    return closure, person


@use_case
def pay_out(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    closure_no: str,
    reference: str,
    recipient_name: str = "",
    recipient_certno: str = "",
    relation: str = "",
) -> tuple[AccountClosure, Person]:
    """The payable balance is paid (to the person, to the heirs, or to the
    destination area): payable -> bank, once. Heirs are recorded by name, ID
    number and relation."""
    actor.require(Perm.PERSON_WRITE)
    closure, person = get_closure.step(uow, actor=actor, channel=channel, closure_no=closure_no)
    reference = (reference or "").strip()
    if not reference:
        raise invalid(
            "reference", "请填写银行付款流水号", "give the bank transfer reference", "required"
        )
    if closure.paid_out_at is not None:
        return closure, person
    if closure.kind == "death":
        name = (recipient_name or "").strip()
        if not name:
            raise invalid(
                "recipient_name",
                "请填写领取人姓名",
                "give the name of the heir who received it",
                "required",
            )
        rid = parse_resident_id(recipient_certno, field="recipient_certno", today=uow.clock.today())
        if rid.number == person.certno:
            raise invalid(
                "recipient_certno",
                "领取人不能是死者本人",
                "the heir cannot be the deceased",
                "same_person",
            )
        closure.recipient_name, closure.recipient_certno = name[:50], rid.number
        closure.recipient_relation = (relation or "").strip()[:20]
    elif closure.kind == "emigration":
        closure.recipient_name, closure.recipient_certno = person.name, person.certno
    if closure.balance > 0:
        payable_kind = _payable(closure.kind, person, closure.destination_area)[1]
        posted = ledger.post(
            uow,
            key=f"closepay:{closure.closure_no}",
            kind="payable_paid",
            person_id=person.id,
            legs=[
                ledger.Leg(
                    closure.payable_code,
                    -closure.balance,
                    payable_kind,
                    None if closure.kind == "transfer_out" else person.id,
                    area=closure.destination_area or "",
                ),
                ledger.Leg(codes.BANK, closure.balance, "bank"),
            ],
            memo=f"{closure.kind} paid ({reference})",
        )
        closure.paid_entry_id = posted.entry.id
    closure.paid_out_at = uow.clock.now()
    closure.paid_reference = reference[:100]
    uow.audit(
        actor.record(
            channel=channel,
            action="account.pay_out",
            person_id=person.id,
            subject=closure.closure_no,
            detail={
                "amount": closure.balance,
                "recipient": closure.recipient_name,
                "reference": reference,
            },
        )
    )
    return closure, person


# ---------------------------------------------------------------- transfer certificate


@use_case
def transfer_certificate(
    uow: UnitOfWork, *, actor: Actor, channel: str, closure_no: str
) -> tuple[AccountClosure, Person]:
    """The transfer certificate of a transfer out (payment history, balance)."""
    closure, person = get_closure.step(uow, actor=actor, channel=channel, closure_no=closure_no)
    if closure.kind != "transfer_out":
        raise conflict(
            "closure.not_transfer",
            "只有关系转出才有转移凭证",
            "only a transfer out has a transfer certificate",
        )
    return closure, person


@use_case
def certificate_document(
    uow: UnitOfWork, *, actor: Actor, channel: str, closure_no: str
) -> tuple[AccountClosure, bytes]:
    """The transfer certificate, printable."""
    closure, person = transfer_certificate.step(
        uow, actor=actor, channel=channel, closure_no=closure_no
    )
    return closure, certificate_pdf(closure, person)


def certificate_data(uow: UnitOfWork, person: Person, destination: str | None) -> dict[str, Any]:
    """Payment history and enrolment periods, carried to the destination."""
    records = contributions.payment_records(uow.session, person.id)
    return {
        "name": person.name,
        "certno": person.certno,
        "account_no": person.account_no,
        "from_area": person.division_code[:6],
        "to_area": destination,
        "issued_on": uow.clock.today().isoformat(),
        "enrolments": [
            {
                "insutype": e.insutype,
                "psn_type": e.psn_type,
                "start": e.start_date.isoformat(),
                "end": e.end_date.isoformat() if e.end_date else uow.clock.today().isoformat(),
                "status": e.status,
            }
            for e in contributions.enrolments_of(uow.session, person.id)
        ],
        "payments": [
            {
                "month": contributions.month_text(r.month),
                "base": yuan(r.base),
                "employer": yuan(r.employer_amount),
                "individual": yuan(r.individual_amount),
                "status": r.status,
                "payer": r.payer,
            }
            for r in sorted(records, key=lambda r: r.month)
        ],
        "paid_months": sum(1 for r in records if r.status == "paid"),
    }


def certificate_pdf(closure: AccountClosure, person: Person) -> bytes:
    cert = closure.certificate
    doc = Document(
        "基本医疗保险参保凭证（关系转移）",
        "Certificate of insurance relation transfer",
        subtitle=f"编号 No. {closure.closure_no}",
    )
    doc.fields(
        [
            ("姓名 Name", person.name),
            ("公民身份号码 ID number", mask_certno(person.certno)),
            ("医保账号 Account number", person.account_no),
            ("转出地 From area", cert.get("from_area", "")),
            ("转入地 To area", cert.get("to_area", "")),
            ("个人账户余额 Account balance", f"{yuan(closure.balance)} 元"),
            ("实际缴费月数 Paid months", str(cert.get("paid_months", 0))),
            ("转出日期 Date", closure.closed_on.isoformat()),
        ]
    )
    doc.heading("参保信息 Enrolment")
    doc.table(
        ["险种 Scheme", "类别 Type", "开始 From", "结束 To", "状态 Status"],
        [
            [
                contributions.SCHEMES.get(e["insutype"], e["insutype"]),
                PSN_TYPE_ZH.get(e["psn_type"], e["psn_type"]),
                e["start"],
                e["end"],
                STATUS_ZH.get(e["status"], e["status"]),
            ]
            for e in cert.get("enrolments", [])
        ],
        [40, 28, 28, 28, 40],
    )
    doc.heading("缴费记录 Payment history")
    doc.table(
        [
            "月份 Month",
            "基数 Base",
            "单位 Employer",
            "个人 Individual",
            "状态 Status",
            "缴费单位 Payer",
        ],
        [
            [
                p["month"],
                p["base"],
                p["employer"],
                p["individual"],
                "已缴 paid" if p["status"] == "paid" else "欠缴 due",
                p["payer"],
            ]
            for p in cert.get("payments", [])
        ],
        [22, 24, 24, 24, 22, 58],
    )
    return doc.render(generated_at=closure.created_at.astimezone(CHINA))


# ---------------------------------------------------------------- transfer in


@dataclass(frozen=True)
class TransferredIn:
    person: Person
    entry_id: int  # the ledger entry that carried the balance in
    balance: int  # the individual account's balance now, fen


@use_case
def transfer_in(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    certno: str,
    from_area: str,
    certificate_no: str,
    balance: int,
    name: str | None = None,
    division_code: str | None = None,
    psn_type: str = "flexible",
    employer_uscc: str | None = None,
    base: int = 0,
) -> TransferredIn:
    """A relation transferred in from another area: the enrolment is created
    and the balance carried in is credited (incoming_area -> IA), once per
    certificate. Returns the person and the ledger entry id."""
    actor.require(Perm.PERSON_WRITE)
    certificate_no = (certificate_no or "").strip()
    if not certificate_no:
        raise invalid(
            "certificate_no",
            "请填写转移凭证编号",
            "give the transfer certificate number",
            "required",
        )
    from_area = (from_area or "").strip()
    if len(from_area) != 6 or not is_digits(from_area):
        raise invalid(
            "from_area",
            "请填写转出地区划代码（6位）",
            "give the 6-digit area it came from",
            "format",
        )
    if balance < 0:
        raise invalid("balance", "转入余额不能为负", "the balance carried in cannot be negative")
    key = f"transferin:{from_area}:{certificate_no}"
    done = ledger.find_entry(uow.session, key)
    if done is not None:
        person = uow.session.get(Person, done.person_id)
        if person is None or not actor.sees(person.division_code):
            raise conflict(
                "transfer_in.done",
                "该转移凭证已办理转入",
                "this transfer certificate was already taken in",
            )
        return TransferredIn(person, done.id, ledger.individual_balance(uow.session, person.id))
    rid = parse_resident_id(certno, today=uow.clock.today())
    person = uow.session.execute(
        select(Person).where(
            Person.certno == rid.number, registry.in_scope(Person.division_code, actor)
        )
    ).scalar_one_or_none()
    if person is None:
        if not (name and division_code):
            raise not_found("参保人员", "person", "person.not_found")
        person = registry.register_person.step(
            uow,
            actor=actor,
            channel=channel,
            certno=rid.number,
            name=name,
            division_code=division_code,
        )
    if from_area[:4] == person.division_code[:4]:
        raise invalid(
            "from_area",
            "转出地应在本市以外",
            "the area it came from is outside this city",
            "same_city",
        )
    employer = (
        registry.get_employer.step(uow, actor=actor, uscc=employer_uscc) if employer_uscc else None
    )
    enrolment = contributions.enrol(
        uow,
        actor=actor,
        channel=channel,
        person=person,
        insutype=contributions.EMPLOYEE,
        psn_type="employee" if employer else psn_type,
        start=uow.clock.today().replace(day=1),
        base=base,
        employer=employer,
    )
    posted = ledger.post(
        uow,
        key=key,
        kind="transfer_in",
        person_id=person.id,
        legs=[
            ledger.Leg(codes.incoming_area(from_area), -balance, "incoming_area", area=from_area),
            ledger.Leg(
                codes.individual(person.id), balance, "individual", person.id, enrolment.area
            ),
        ],
        memo=f"balance carried in from {from_area} (certificate {certificate_no})",
        result={"certificate_no": certificate_no, "from_area": from_area, "balance": balance},
    )
    uow.audit(
        actor.record(
            channel=channel,
            action="account.transfer_in",
            person_id=person.id,
            subject=certificate_no,
            detail={"from_area": from_area, "balance": balance},
        )
    )
    return TransferredIn(person, posted.entry.id, ledger.individual_balance(uow.session, person.id))
