"""Issue 3 over the staff API: the individual enrolment flow (seed 004),
closing an account, a person's records, and employers' assessments,
payments and arrears."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from pydantic import Field

from yibao.channels.api.deps import Staff, Work
from yibao.channels.api.errors import answers
from yibao.channels.api.fields import (
    AccountNo,
    Amount,
    AreaCode,
    BankAccount,
    Body,
    Certno,
    Code,
    Day,
    DivisionCode,
    IdempotencyKey,
    Label,
    Materials,
    Month,
    Months,
    Name,
    Note,
    OptionalCertno,
    Short,
    Uscc,
    Word,
)
from yibao.clock import CHINA
from yibao.domain.actors import Channel
from yibao.domain.money import format_yuan
from yibao.services.closing import closing
from yibao.services.contributions import contributions, enrolment
from yibao.services.documents import yuan
from yibao.services.inquiry import person_file, records
from yibao.store.models import (
    AccountClosure,
    Assessment,
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


def _voucher(found: enrolment.VoucherFile) -> dict[str, Any]:
    v = found.voucher
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
            for s in found.schedule
        ],
    }


def _application(found: enrolment.ApplicationFile) -> dict[str, Any]:
    a, person = found.application, found.person
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
        # reviewed the day it was filed, or the next working day (seed 004, step 3)
        "review_due": found.review_due.isoformat() if found.review_due else None,
        "overdue": found.overdue,
        "reviewed_at": _ts(a.reviewed_at) if a.reviewed_at else None,
        "reviewed_by": a.reviewed_by,
        "reject_reason": a.reject_reason or None,
        "record_book_no": a.record_book_no,
        # the card and record book brought for continued use (seed 004, step 1)
        "record_book_renewed": a.record_book_renewed,
        "renewed_card_no": a.renewed_card_no,
        "voucher": _voucher(found.voucher) if found.voucher else None,
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


class SubsidyFormIn(Body):
    """社会保险补贴申请表 the social insurance subsidy form; the service
    decides what is missing or wrong in it."""

    resigned_on: Day | None = Field(default=None, description="离职日期 YYYY-MM-DD")
    former_employer: Note = ""
    declared_base: Amount | None = Field(default=None, description="申报基数 yuan")
    debit_bank: Label | None = None
    debit_account: BankAccount | None = Field(default=None, description="扣款账号 8 to 30 digits")
    phone: Short = ""

    def as_form(self) -> dict[str, Any]:
        """The form as the service reads it: texts, the base in yuan."""
        return {
            "resigned_on": self.resigned_on.isoformat() if self.resigned_on else "",
            "former_employer": self.former_employer,
            "declared_base": format_yuan(self.declared_base)
            if self.declared_base is not None
            else "",
            "debit_bank": self.debit_bank or "",
            "debit_account": self.debit_account or "",
            "phone": self.phone,
        }


class ApplicationIn(Body):
    certno: Certno = Field(description="申请人身份证号码 the applicant's ID number")
    name: Name | None = Field(default=None, description="to register a person not yet known")
    division_code: DivisionCode | None = Field(default=None, description="户籍所在地, with name")
    materials: Materials = Field(
        description="材料清单: id_card, id_card_copy, photo, resignation_papers, "
        "household_register_copy, card_and_records (医保卡及病历续用, asked of a person "
        "who holds a card); what is not listed is recorded as missing"
    )
    subsidy_form: SubsidyFormIn


class MaterialsIn(Body):
    materials: Materials


class ApproveIn(Body):
    months: Months = Field(
        default=enrolment.VOUCHER_MONTHS, description="months the voucher covers"
    )


class RejectIn(Body):
    reason: Note = ""


class RecordBookIn(Body):
    number: Label


@router.post("/enrolment-applications", status_code=201, responses=answers(404, 409))
def submit_application(body: ApplicationIn, ctx: Staff, work: Work) -> dict[str, Any]:
    """Seed 004, steps 1-2: the materials and the subsidy form."""
    app = enrolment.submit(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        certno=body.certno,
        materials=body.materials,
        subsidy_form=body.subsidy_form.as_form(),
        name=body.name,
        division_code=body.division_code,
    )
    return _application(app)


@router.get("/enrolment-applications")
def pending_applications(ctx: Staff, work: Work) -> list[dict[str, Any]]:
    """Applications in your area waiting for the same-day review."""
    return [
        _application(a) for a in enrolment.list_pending(work, actor=ctx.actor, channel=Channel.API)
    ]


@router.get("/enrolment-applications/{app_no}", responses=answers(404))
def get_application(app_no: Code, ctx: Staff, work: Work) -> dict[str, Any]:
    return _application(
        enrolment.get_application(work, actor=ctx.actor, channel=Channel.API, app_no=app_no)
    )


@router.post("/enrolment-applications/{app_no}/materials", responses=answers(404, 409))
def add_materials(app_no: Code, body: MaterialsIn, ctx: Staff, work: Work) -> dict[str, Any]:
    app = enrolment.add_materials(
        work, actor=ctx.actor, channel=Channel.API, app_no=app_no, materials=body.materials
    )
    return _application(app)


@router.post("/enrolment-applications/{app_no}/approve", responses=answers(404, 409))
def approve_application(app_no: Code, body: ApproveIn, ctx: Staff, work: Work) -> dict[str, Any]:
    """Enrol as a flexible employee (310) and issue the payment voucher."""
    app = enrolment.approve(
        work, actor=ctx.actor, channel=Channel.API, app_no=app_no, months=body.months
    )
    return _application(app)


@router.post("/enrolment-applications/{app_no}/reject", responses=answers(404, 409))
def reject_application(app_no: Code, body: RejectIn, ctx: Staff, work: Work) -> dict[str, Any]:
    app = enrolment.reject(
        work, actor=ctx.actor, channel=Channel.API, app_no=app_no, reason=body.reason
    )
    return _application(app)


@router.post("/enrolment-applications/{app_no}/record-book", responses=answers(404, 409))
def issue_record_book(app_no: Code, body: RecordBookIn, ctx: Staff, work: Work) -> dict[str, Any]:
    """Record the number of the medical record book (病历本) issued in some areas."""
    app = enrolment.issue_record_book(
        work, actor=ctx.actor, channel=Channel.API, app_no=app_no, number=body.number
    )
    return _application(app)


@router.get("/payment-vouchers/{voucher_no}", responses=answers(404))
def get_voucher(voucher_no: Code, ctx: Staff, work: Work) -> dict[str, Any]:
    voucher, person = enrolment.get_voucher(
        work, actor=ctx.actor, channel=Channel.API, voucher_no=voucher_no
    )
    return {**_voucher(voucher), "account_no": person.account_no, "name": person.name}


@router.get("/payment-vouchers/{voucher_no}/pdf", response_class=Response, responses=answers(404))
def voucher_pdf(voucher_no: Code, ctx: Staff, work: Work) -> Response:
    """The payment voucher, printable."""
    voucher, content = enrolment.voucher_document(
        work, actor=ctx.actor, channel=Channel.API, voucher_no=voucher_no
    )
    return _pdf(content, voucher.voucher_no)


# ---------------------------------------------------------------- closing an account


class ClosureIn(Body):
    kind: Word = Field(description="emigration, transfer_out or death")
    reason: Note = ""
    destination_area: AreaCode | None = Field(
        default=None, description="转入地 6-digit area code (transfer_out)"
    )
    card_returned: bool = Field(default=True, description="卡已交回 the card was handed back here")


class PayoutIn(Body):
    reference: Label = Field(description="银行付款流水号 the bank transfer reference")
    recipient_name: Name | None = None
    recipient_certno: OptionalCertno = ""
    relation: Short = ""


class TransferInIn(Body):
    certno: Certno
    name: Name | None = None
    division_code: DivisionCode | None = None
    from_area: AreaCode
    certificate_no: Code
    balance: Amount = Field(description="个人账户转入余额 in yuan, e.g. '1234.56'")
    psn_type: Word = "flexible"
    employer_uscc: Uscc | None = None


@router.post("/persons/{account_no}/closure", status_code=201, responses=answers(404, 409))
def close_account(account_no: AccountNo, body: ClosureIn, ctx: Staff, work: Work) -> dict[str, Any]:
    """Close the account: enrolment ended, balance payable, card cancelled as returned.
    A retry returns the first answer."""
    closure, person = closing.close_account(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        account_no=account_no,
        kind=body.kind,
        reason=body.reason,
        destination_area=body.destination_area,
        card_returned=body.card_returned,
    )
    return _closure(closure, person)


@router.get("/account-closures/{closure_no}", responses=answers(404))
def get_closure(closure_no: Code, ctx: Staff, work: Work) -> dict[str, Any]:
    closure, person = closing.get_closure(
        work, actor=ctx.actor, channel=Channel.API, closure_no=closure_no
    )
    return _closure(closure, person)


@router.get("/account-closures/{closure_no}/certificate", responses=answers(404))
def transfer_certificate(closure_no: Code, ctx: Staff, work: Work) -> dict[str, Any]:
    """The transfer certificate (payment history, account balance) as JSON."""
    closure, _ = closing.transfer_certificate(
        work, actor=ctx.actor, channel=Channel.API, closure_no=closure_no
    )
    return dict(closure.certificate)


@router.get(
    "/account-closures/{closure_no}/certificate.pdf",
    response_class=Response,
    responses=answers(404),
)
def transfer_certificate_pdf(closure_no: Code, ctx: Staff, work: Work) -> Response:
    closure, content = closing.certificate_document(
        work, actor=ctx.actor, channel=Channel.API, closure_no=closure_no
    )
    return _pdf(content, closure.closure_no)


@router.post("/account-closures/{closure_no}/payout", responses=answers(404, 409))
def pay_out(closure_no: Code, body: PayoutIn, ctx: Staff, work: Work) -> dict[str, Any]:
    """The payable balance was paid out (to the person, the heirs or the destination)."""
    closure, person = closing.pay_out(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        closure_no=closure_no,
        reference=body.reference,
        recipient_name=body.recipient_name or "",
        recipient_certno=body.recipient_certno,
        relation=body.relation,
    )
    return _closure(closure, person)


@router.post("/transfers-in", status_code=201, responses=answers(404, 409))
def transfer_in(body: TransferInIn, ctx: Staff, work: Work) -> dict[str, Any]:
    """A relation transferred in: enrolment created, balance credited once per certificate."""
    done = closing.transfer_in(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        certno=body.certno,
        name=body.name,
        division_code=body.division_code,
        from_area=body.from_area,
        certificate_no=body.certificate_no,
        balance=body.balance,
        psn_type=body.psn_type,
        employer_uscc=body.employer_uscc,
    )
    return {
        "account_no": done.person.account_no,
        "name": done.person.name,
        "certificate_no": body.certificate_no,
        "entry_id": done.entry_id,
        "balance": yuan(done.balance).replace(",", ""),
    }


# ---------------------------------------------------------------- records (art. 4)


@router.get("/persons/{account_no}/payment-records", responses=answers(404))
def payment_records(
    account_no: AccountNo,
    ctx: Staff,
    work: Work,
    start: Month | None = None,
    end: Month | None = None,
) -> list[dict[str, Any]]:
    """Per month (YYYY-MM): base, employer part, individual part, paid date and status."""
    _, rows = contributions.payment_history(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        account_no=account_no,
        first=start,
        last=end,
    )
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


@router.get("/persons/{account_no}/rights-records", responses=answers(404))
def rights_records(account_no: AccountNo, ctx: Staff, work: Work) -> dict[str, Any]:
    """Enrolment periods and status, account postings with their causes, the balance."""
    person, rights = person_file.rights_file(
        work, actor=ctx.actor, channel=Channel.API, account_no=account_no
    )
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


@router.get("/persons/{account_no}/statement.pdf", response_class=Response, responses=answers(404))
def statement(
    account_no: AccountNo,
    ctx: Staff,
    work: Work,
    start: Day | None = None,
    end: Day | None = None,
) -> Response:
    """Payment and rights records of a period as one PDF (default: this year)."""
    person, lo, hi, content = person_file.statement_document(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        account_no=account_no,
        start=start,
        end=end,
    )
    return _pdf(content, f"statement-{person.account_no}-{lo}-{hi}")


# ---------------------------------------------------------------- employers' money


class AssessmentIn(Body):
    month: Month


class EmployerPaymentIn(Body):
    month: Month
    amount: Amount
    reference: Label = Field(description="银行流水号 the bank reference")


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


@router.post("/employers/{uscc}/assessments", status_code=201, responses=answers(404, 409))
def assess(uscc: Uscc, body: AssessmentIn, ctx: Staff, work: Work) -> dict[str, Any]:
    """The month's assessment (once per month; asking again returns it)."""
    a = contributions.assess_employer(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        employer_uscc=uscc,
        month=body.month,
    )
    return _assessment(a, uscc)


@router.post("/employers/{uscc}/payments", status_code=201, responses=answers(404, 409))
def employer_payment(
    uscc: Uscc,
    body: EmployerPaymentIn,
    ctx: Staff,
    work: Work,
    key: Annotated[IdempotencyKey, Header(alias="Idempotency-Key")],
) -> dict[str, Any]:
    """A payment against a month's assessment, applied once per Idempotency-Key
    (8 to 64 printable ASCII characters): a retry returns the first answer."""
    month, amount = body.month, body.amount
    payment = contributions.record_employer_payment(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        employer_uscc=uscc,
        month=month,
        amount=amount,
        reference=body.reference,
        # a key is the employer's own: two employers may send the same one
        key=f"api:{uscc}:{key}",
    )
    return {
        "employer_uscc": uscc,
        "month": contributions.month_text(month),
        "amount": yuan(payment.amount).replace(",", ""),
        "reference": payment.reference,
        "received_at": _ts(payment.received_at),
        "payment_id": payment.id,
    }


@router.get("/employers/{uscc}/arrears", responses=answers(404))
def employer_arrears(uscc: Uscc, ctx: Staff, work: Work) -> dict[str, Any]:
    """Months past their due date and not fully paid."""
    employer, rows = contributions.employer_arrears(work, actor=ctx.actor, employer_uscc=uscc)
    return {
        "employer_uscc": employer.uscc,
        "months": len(rows),
        "outstanding": yuan(sum(a.total - a.paid_total for a in rows)).replace(",", ""),
        "assessments": [_assessment(a, employer.uscc) for a in rows],
    }
