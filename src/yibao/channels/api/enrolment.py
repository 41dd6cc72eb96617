"""Issue 3 over the staff API: the individual enrolment flow (seed 004),
closing an account, a person's records, and employers' assessments,
payments and arrears."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, Field

from yibao.channels.api.deps import Staff, Work
from yibao.clock import CHINA
from yibao.domain.access import Perm
from yibao.domain.actors import Channel
from yibao.domain.errors import conflict, invalid
from yibao.domain.money import yuan_to_fen
from yibao.services.closing import closing
from yibao.services.contributions import contributions, enrolment
from yibao.services.documents import yuan
from yibao.services.inquiry import records
from yibao.services.ledger import ledger
from yibao.services.registry import registry
from yibao.store.models import (
    AccountClosure,
    Assessment,
    EnrolmentApplication,
    PaymentVoucher,
    Person,
)

router = APIRouter(tags=["enrolment and accounts 参保与账户"])

PDF = "application/pdf"


def _pdf(content: bytes, name: str) -> Response:
    return Response(
        content, media_type=PDF, headers={"Content-Disposition": f'inline; filename="{name}.pdf"'}
    )


# ---------------------------------------------------------------- views


def _ts(value: dt.datetime) -> str:
    return value.astimezone(CHINA).isoformat()


def _voucher(work: Work, v: PaymentVoucher) -> dict[str, Any]:
    return {
        "voucher_no": v.voucher_no,
        "status": v.status,
        "total": yuan(v.total).replace(",", ""),
        "payee": {"bank": v.payee_bank, "name": v.payee_name, "account": v.payee_account},
        "debit": {"bank": v.debit_bank, "account": v.debit_account},
        "issued_at": _ts(v.issued_at),
        "schedule": [
            {
                "month": contributions.month_text(s["month"]),
                "amount": yuan(s["amount"]).replace(",", ""),
                "due_date": s["due_date"],
                "status": s["status"],
            }
            for s in enrolment.voucher_status(work, v)
        ],
    }


def _committed(work: Work, a: EnrolmentApplication) -> dict[str, Any]:
    """Commit the change to an application and show it as it now stands."""
    person = work.session.get(Person, a.person_id)
    assert person is not None
    work.commit()
    return _application(work, a, person)


def _application(work: Work, a: EnrolmentApplication, person: Person) -> dict[str, Any]:
    voucher = enrolment.voucher_of(work, a)
    submitted_day = a.submitted_at.astimezone(CHINA).date()
    return {
        "app_no": a.app_no,
        "account_no": person.account_no,
        "name": person.name,
        "office": a.division_code,
        "status": a.status,
        "materials": a.materials,
        "missing": a.missing,
        "subsidy_form": {
            **a.subsidy_form,
            "declared_base": yuan(int(a.subsidy_form.get("declared_base") or 0)).replace(",", ""),
        },
        "submitted_at": _ts(a.submitted_at),
        "review_due": submitted_day.isoformat(),  # reviewed the same day (seed 004, step 3)
        "reviewed_at": _ts(a.reviewed_at) if a.reviewed_at else None,
        "reviewed_by": a.reviewed_by,
        "reject_reason": a.reject_reason or None,
        "record_book_no": a.record_book_no,
        "voucher": _voucher(work, voucher) if voucher else None,
    }


def _closure(c: AccountClosure, person: Person) -> dict[str, Any]:
    return {
        "closure_no": c.closure_no,
        "account_no": person.account_no,
        "name": person.name,
        "kind": c.kind,
        "person_status": person.status,
        "closed_on": c.closed_on.isoformat(),
        "reason": c.reason,
        "balance": yuan(c.balance).replace(",", ""),
        "payable_account": c.payable_code,
        "destination_area": c.destination_area,
        "card_no": c.card_no,
        "card_returned_at": c.card_returned_at,
        "paid_out_at": _ts(c.paid_out_at) if c.paid_out_at else None,
        "paid_reference": c.paid_reference,
        "recipient": {
            "name": c.recipient_name,
            "certno": c.recipient_certno,
            "relation": c.recipient_relation,
        }
        if c.recipient_name
        else None,
    }


# ---------------------------------------------------------------- enrolment applications


class ApplicationIn(BaseModel):
    certno: str = Field(description="申请人身份证号码 the applicant's ID number")
    name: str | None = Field(default=None, description="to register a person not yet known")
    division_code: str | None = Field(default=None, description="户籍所在地, with name")
    materials: list[str] = Field(
        description="材料清单: id_card, id_card_copy, photo, resignation_papers, "
        "household_register_copy; what is not listed is recorded as missing"
    )
    subsidy_form: dict[str, Any] = Field(
        description="社会保险补贴申请表: resigned_on (YYYY-MM-DD), former_employer, "
        "declared_base (yuan), debit_bank, debit_account, phone"
    )


class MaterialsIn(BaseModel):
    materials: list[str]


class ApproveIn(BaseModel):
    months: int = Field(default=enrolment.VOUCHER_MONTHS, description="months the voucher covers")


class RejectIn(BaseModel):
    reason: str = ""


class RecordBookIn(BaseModel):
    number: str


@router.post("/enrolment-applications", status_code=201)
def submit_application(body: ApplicationIn, ctx: Staff, work: Work) -> dict[str, Any]:
    """Seed 004, steps 1-2: the materials and the subsidy form."""
    with work:
        app = enrolment.submit(
            work,
            actor=ctx.actor,
            channel=Channel.API,
            certno=body.certno,
            materials=body.materials,
            subsidy_form=body.subsidy_form,
            name=body.name,
            division_code=body.division_code,
        )
        return _committed(work, app)


@router.get("/enrolment-applications")
def pending_applications(ctx: Staff, work: Work) -> list[dict[str, Any]]:
    """Applications in your area waiting for the same-day review."""
    with work:
        apps = enrolment.list_pending(work, actor=ctx.actor, channel=Channel.API)
        out = []
        for a in apps:
            person = work.session.get(Person, a.person_id)
            assert person is not None
            out.append(_application(work, a, person))
        work.commit()
        return out


@router.get("/enrolment-applications/{app_no}")
def get_application(app_no: str, ctx: Staff, work: Work) -> dict[str, Any]:
    with work:
        app, person = enrolment.get_application(
            work, actor=ctx.actor, channel=Channel.API, app_no=app_no
        )
        work.commit()
        return _application(work, app, person)


@router.post("/enrolment-applications/{app_no}/materials")
def add_materials(app_no: str, body: MaterialsIn, ctx: Staff, work: Work) -> dict[str, Any]:
    with work:
        app = enrolment.add_materials(
            work, actor=ctx.actor, channel=Channel.API, app_no=app_no, materials=body.materials
        )
        return _committed(work, app)


@router.post("/enrolment-applications/{app_no}/approve")
def approve_application(app_no: str, body: ApproveIn, ctx: Staff, work: Work) -> dict[str, Any]:
    """Enrol as a flexible employee (310) and issue the payment voucher."""
    with work:
        app, _ = enrolment.approve(
            work, actor=ctx.actor, channel=Channel.API, app_no=app_no, months=body.months
        )
        return _committed(work, app)


@router.post("/enrolment-applications/{app_no}/reject")
def reject_application(app_no: str, body: RejectIn, ctx: Staff, work: Work) -> dict[str, Any]:
    with work:
        app = enrolment.reject(
            work, actor=ctx.actor, channel=Channel.API, app_no=app_no, reason=body.reason
        )
        return _committed(work, app)


@router.post("/enrolment-applications/{app_no}/record-book")
def issue_record_book(app_no: str, body: RecordBookIn, ctx: Staff, work: Work) -> dict[str, Any]:
    """Record the number of the medical record book (病历本) issued in some areas."""
    with work:
        app = enrolment.issue_record_book(
            work, actor=ctx.actor, channel=Channel.API, app_no=app_no, number=body.number
        )
        return _committed(work, app)


@router.get("/payment-vouchers/{voucher_no}")
def get_voucher(voucher_no: str, ctx: Staff, work: Work) -> dict[str, Any]:
    with work:
        voucher, person = enrolment.get_voucher(
            work, actor=ctx.actor, channel=Channel.API, voucher_no=voucher_no
        )
        work.commit()
        return {**_voucher(work, voucher), "account_no": person.account_no, "name": person.name}


@router.get("/payment-vouchers/{voucher_no}/pdf", response_class=Response)
def voucher_pdf(voucher_no: str, ctx: Staff, work: Work) -> Response:
    """The payment voucher, printable."""
    with work:
        voucher, person = enrolment.get_voucher(
            work, actor=ctx.actor, channel=Channel.API, voucher_no=voucher_no
        )
        content = enrolment.voucher_pdf(work, voucher, person)
        work.commit()
        return _pdf(content, voucher.voucher_no)


# ---------------------------------------------------------------- closing an account


class ClosureIn(BaseModel):
    kind: str = Field(description="emigration, transfer_out or death")
    reason: str = ""
    destination_area: str | None = Field(
        default=None, description="转入地 6-digit area code (transfer_out)"
    )
    card_returned: bool = Field(default=True, description="卡已交回 the card was handed back here")


class PayoutIn(BaseModel):
    reference: str = Field(description="银行付款流水号 the bank transfer reference")
    recipient_name: str = ""
    recipient_certno: str = ""
    relation: str = ""


class TransferInIn(BaseModel):
    certno: str
    name: str | None = None
    division_code: str | None = None
    from_area: str
    certificate_no: str
    balance: str = Field(description="个人账户转入余额 in yuan, e.g. '1234.56'")
    psn_type: str = "flexible"
    employer_uscc: str | None = None


@router.post("/persons/{account_no}/closure", status_code=201)
def close_account(account_no: str, body: ClosureIn, ctx: Staff, work: Work) -> dict[str, Any]:
    """Close the account: enrolment ended, balance payable, card cancelled as returned.
    A retry returns the first answer."""
    with work:
        closure = closing.close_account(
            work,
            actor=ctx.actor,
            channel=Channel.API,
            account_no=account_no,
            kind=body.kind,
            reason=body.reason,
            destination_area=body.destination_area,
            card_returned=body.card_returned,
        )
        person = work.session.get(Person, closure.person_id)
        assert person is not None
        work.commit()
        return _closure(closure, person)


@router.get("/account-closures/{closure_no}")
def get_closure(closure_no: str, ctx: Staff, work: Work) -> dict[str, Any]:
    with work:
        closure, person = closing.get_closure(
            work, actor=ctx.actor, channel=Channel.API, closure_no=closure_no
        )
        work.commit()
        return _closure(closure, person)


def _transfer(work: Work, ctx: Staff, closure_no: str) -> tuple[AccountClosure, Person]:
    closure, person = closing.get_closure(
        work, actor=ctx.actor, channel=Channel.API, closure_no=closure_no
    )
    if closure.kind != "transfer_out":
        raise conflict(
            "closure.not_transfer",
            "只有关系转出才有转移凭证",
            "only a transfer out has a transfer certificate",
        )
    return closure, person


@router.get("/account-closures/{closure_no}/certificate")
def transfer_certificate(closure_no: str, ctx: Staff, work: Work) -> dict[str, Any]:
    """The transfer certificate (payment history, account balance) as JSON."""
    with work:
        closure, _ = _transfer(work, ctx, closure_no)
        work.commit()
        return dict(closure.certificate)


@router.get("/account-closures/{closure_no}/certificate.pdf", response_class=Response)
def transfer_certificate_pdf(closure_no: str, ctx: Staff, work: Work) -> Response:
    with work:
        closure, person = _transfer(work, ctx, closure_no)
        work.commit()
        return _pdf(closing.certificate_pdf(closure, person), closure.closure_no)


@router.post("/account-closures/{closure_no}/payout")
def pay_out(closure_no: str, body: PayoutIn, ctx: Staff, work: Work) -> dict[str, Any]:
    """The payable balance was paid out (to the person, the heirs or the destination)."""
    with work:
        closure = closing.pay_out(
            work,
            actor=ctx.actor,
            channel=Channel.API,
            closure_no=closure_no,
            reference=body.reference,
            recipient_name=body.recipient_name,
            recipient_certno=body.recipient_certno,
            relation=body.relation,
        )
        person = work.session.get(Person, closure.person_id)
        assert person is not None
        work.commit()
        return _closure(closure, person)


@router.post("/transfers-in", status_code=201)
def transfer_in(body: TransferInIn, ctx: Staff, work: Work) -> dict[str, Any]:
    """A relation transferred in: enrolment created, balance credited once per certificate."""
    with work:
        person, entry_id = closing.transfer_in(
            work,
            actor=ctx.actor,
            channel=Channel.API,
            certno=body.certno,
            name=body.name,
            division_code=body.division_code,
            from_area=body.from_area,
            certificate_no=body.certificate_no,
            balance=yuan_to_fen(body.balance, field="balance"),
            psn_type=body.psn_type,
            employer_uscc=body.employer_uscc,
        )
        work.commit()
        return {
            "account_no": person.account_no,
            "name": person.name,
            "certificate_no": body.certificate_no.strip(),
            "entry_id": entry_id,
            "balance": yuan(ledger.individual_balance(work.session, person.id)).replace(",", ""),
        }


# ---------------------------------------------------------------- records (art. 4)


@router.get("/persons/{account_no}/payment-records")
def payment_records(
    account_no: str, ctx: Staff, work: Work, start: str | None = None, end: str | None = None
) -> list[dict[str, Any]]:
    """Per month: base, employer part, individual part, paid date and status."""
    with work:
        person = registry.get_person(
            work,
            actor=ctx.actor,
            channel=Channel.API,
            account_no=account_no,
            audit_action="records.payment.read",
        )
        first = contributions.month_int(start, field="start") if start else None
        last = contributions.month_int(end, field="end") if end else None
        rows = contributions.payment_records(work.session, person.id, first=first, last=last)
        work.commit()
        return [
            {
                "month": contributions.month_text(r.month),
                "insutype": r.insutype,
                "base": yuan(r.base).replace(",", ""),
                "employer_amount": yuan(r.employer_amount).replace(",", ""),
                "individual_amount": yuan(r.individual_amount).replace(",", ""),
                "account_credit": yuan(r.account_credit).replace(",", ""),
                "status": r.status,
                "paid_on": r.paid_at.astimezone(CHINA).date().isoformat() if r.paid_at else None,
                "payer": r.payer,
            }
            for r in rows
        ]


@router.get("/persons/{account_no}/rights-records")
def rights_records(account_no: str, ctx: Staff, work: Work) -> dict[str, Any]:
    """Enrolment periods and status, account postings with their causes, the balance."""
    with work:
        person = registry.get_person(
            work,
            actor=ctx.actor,
            channel=Channel.API,
            account_no=account_no,
            audit_action="records.rights.read",
        )
        rights = records.rights_records(work.session, person.id)
        work.commit()
        return {
            "account_no": person.account_no,
            "status": person.status,
            "balance": yuan(rights.balance).replace(",", ""),
            "enrolments": [
                {
                    "insutype": e.insutype,
                    "psn_type": e.psn_type,
                    "status": e.status,
                    "start_date": e.start_date.isoformat(),
                    "end_date": e.end_date.isoformat() if e.end_date else None,
                    "end_reason": e.end_reason or None,
                }
                for e in rights.enrolments
            ],
            "postings": [
                {
                    "at": _ts(line.at),
                    "kind": line.kind,
                    "cause_zh": records.cause(line.kind)[0],
                    "cause_en": records.cause(line.kind)[1],
                    "amount": yuan(line.amount).replace(",", ""),
                    "balance_after": yuan(line.balance_after).replace(",", ""),
                }
                for line in rights.postings
            ],
        }


def _day(value: str | None, default: dt.date, field: str) -> dt.date:
    if not value:
        return default
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise invalid(field, "日期格式应为YYYY-MM-DD", "a date is written YYYY-MM-DD") from None


@router.get("/persons/{account_no}/statement.pdf", response_class=Response)
def statement(
    account_no: str, ctx: Staff, work: Work, start: str | None = None, end: str | None = None
) -> Response:
    """Payment and rights records of a period as one PDF (default: this year)."""
    with work:
        today = work.clock.today()
        lo = _day(start, today.replace(month=1, day=1), "start")
        hi = _day(end, today, "end")
        if hi < lo:
            raise invalid("end", "结束日期早于开始日期", "the end is before the start")
        person = registry.get_person(
            work,
            actor=ctx.actor,
            channel=Channel.API,
            account_no=account_no,
            audit_action="records.statement",
        )
        content = records.statement_pdf(
            work.session, person, start=lo, end=hi, now=work.clock.now()
        )
        work.commit()
        return _pdf(content, f"statement-{person.account_no}-{lo}-{hi}")


# ---------------------------------------------------------------- employers' money


class AssessmentIn(BaseModel):
    month: str = Field(description="YYYY-MM")


class EmployerPaymentIn(BaseModel):
    month: str = Field(description="YYYY-MM")
    amount: str = Field(description="yuan, e.g. '12345.67'")
    reference: str = Field(description="银行流水号 the bank reference")


def _assessment(a: Assessment, uscc: str) -> dict[str, Any]:
    return {
        "employer_uscc": uscc,
        "month": contributions.month_text(a.month),
        "persons": a.persons,
        "employer_total": yuan(a.employer_total).replace(",", ""),
        "individual_total": yuan(a.individual_total).replace(",", ""),
        "total": yuan(a.total).replace(",", ""),
        "paid_total": yuan(a.paid_total).replace(",", ""),
        "status": a.status,
        "due_date": a.due_date.isoformat(),
    }


@router.post("/employers/{uscc}/assessments", status_code=201)
def assess(uscc: str, body: AssessmentIn, ctx: Staff, work: Work) -> dict[str, Any]:
    """The month's assessment (once per month; asking again returns it)."""
    with work:
        a = contributions.assess_employer(
            work,
            actor=ctx.actor,
            channel=Channel.API,
            employer_uscc=uscc,
            month=contributions.month_int(body.month),
        )
        work.commit()
        return _assessment(a, uscc.strip().upper())


@router.post("/employers/{uscc}/payments", status_code=201)
def employer_payment(
    uscc: str,
    body: EmployerPaymentIn,
    ctx: Staff,
    work: Work,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> dict[str, Any]:
    """A payment against a month's assessment, applied once per Idempotency-Key:
    a retry returns the first answer."""
    key = (idempotency_key or "").strip()
    if not 8 <= len(key) <= 64:
        raise invalid(
            "Idempotency-Key",
            "请在Idempotency-Key请求头中提供8至64位的幂等键",
            "send an Idempotency-Key header (8 to 64 characters)",
            "required",
        )
    month = contributions.month_int(body.month)
    amount = yuan_to_fen(body.amount)
    uscc = uscc.strip().upper()
    with work:
        employer = registry.get_employer(work, actor=ctx.actor, uscc=uscc)
        payment = contributions.record_employer_payment(
            work,
            actor=ctx.actor,
            channel=Channel.API,
            employer_uscc=uscc,
            month=month,
            amount=amount,
            reference=body.reference,
            key=f"api:{employer.id}:{key}",
        )
        assessment = work.session.get(Assessment, payment.assessment_id)
        assert assessment is not None
        if payment.amount != amount or assessment.month != month:
            raise conflict(
                "idempotency.key_reused",
                "该幂等键已用于另一笔缴费",
                "this Idempotency-Key was used for another payment",
            )
        work.commit()
        return {
            "employer_uscc": uscc,
            "month": contributions.month_text(assessment.month),
            "amount": yuan(payment.amount).replace(",", ""),
            "reference": payment.reference,
            "received_at": _ts(payment.received_at),
            "payment_id": payment.id,
        }


@router.get("/employers/{uscc}/arrears")
def employer_arrears(uscc: str, ctx: Staff, work: Work) -> dict[str, Any]:
    """Months past their due date and not fully paid."""
    ctx.actor.require(Perm.PERSON_READ)
    with work:
        employer = registry.get_employer(work, actor=ctx.actor, uscc=uscc)
        rows = contributions.arrears(
            work.session, employer_id=employer.id, today=work.clock.today()
        )
        return {
            "employer_uscc": employer.uscc,
            "months": len(rows),
            "outstanding": yuan(sum(a.total - a.paid_total for a in rows)).replace(",", ""),
            "assessments": [_assessment(a, employer.uscc) for a in rows],
        }
