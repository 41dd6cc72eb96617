"""The individual enrolment flow (seed 004): materials and the social
insurance subsidy form, the same-day review, the payment voucher, regular
bank payment by debit file and return file, and the medical record book."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from yibao.clock import CHINA
from yibao.domain import reviews
from yibao.domain.access import Perm
from yibao.domain.actors import Actor
from yibao.domain.areas import areas_up, nearest
from yibao.domain.errors import DomainError, conflict, forbidden, invalid, not_found
from yibao.domain.ids import mask_certno, parse_resident_id
from yibao.domain.money import yuan_to_fen
from yibao.domain.values import is_digits
from yibao.domain.workdays import WorkCalendar
from yibao.services.contributions import contributions
from yibao.services.documents import Document, yuan
from yibao.services.registry import calendar as calendar_service
from yibao.services.registry import registry
from yibao.services.tx import use_case
from yibao.store.models import (
    BankDebit,
    Card,
    CollectionAccount,
    ContributionLine,
    EnrolmentApplication,
    PaymentVoucher,
    Person,
)
from yibao.store.uow import UnitOfWork

# Seed 004, step 1: what the person brings.
MATERIALS: dict[str, tuple[str, str]] = {
    "id_card": ("居民身份证原件", "resident ID card (original)"),
    "id_card_copy": ("居民身份证复印件", "copy of the resident ID card"),
    "photo": ("一寸照片", "one-inch photo"),
    "resignation_papers": ("解除劳动关系（离职）证明", "resignation papers"),
    "household_register_copy": ("户口簿复印件", "copy of the household register"),
    # the card and the medical record book brought to go on being used
    # under the new enrolment (医保卡及病历续用); asked of a person who holds
    # a card in use, nothing to bring for one who never had a card
    "card_and_records": (
        "医保卡及病历（续用）",
        "the medical insurance card and medical record book, for continued use",
    ),
}
RENEWAL = "card_and_records"

# The demo bureau's collection account (收入户); a bureau sets its own per
# pooling area (``set_collection_account``, ``yibao bank payee set``).
DEMO_PAYEE = {
    "bank": "中国工商银行湖州分行",
    "name": "湖州市医疗保障局医疗保险基金收入户",
    "account": "1205020009024800166",
}
ACCOUNT_NO = re.compile(r"^[0-9]{8,32}$")

VOUCHER_MONTHS = 3  # months a voucher covers, paid one by one
DUE_DAY = 25  # a month is debited from this day of the month on


def _label(item: str) -> dict[str, str]:
    zh, en = MATERIALS[item]
    return {"item": item, "zh": zh, "en": en}


def check_materials(
    given: list[str], *, holds_card: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The checklist as recorded, and what is missing from it. The card and
    record book for continued use are asked of a person who holds a card."""
    items = list(dict.fromkeys(str(m).strip() for m in given if str(m).strip()))
    unknown = [m for m in items if m not in MATERIALS]
    if unknown:
        raise invalid(
            "materials",
            f"未知的材料：{', '.join(unknown)}",
            f"unknown materials: {', '.join(unknown)}; known: {', '.join(MATERIALS)}",
            "unknown",
        )
    asked = [m for m in MATERIALS if m != RENEWAL or holds_card]
    recorded = [{**_label(m), "checked": m in items} for m in MATERIALS]
    missing = [_label(m) for m in asked if m not in items]
    return recorded, missing


# a card the holder has in hand and that goes on with a new enrolment
CARD_IN_USE = ("issued", "frozen")


def card_in_use(uow: UnitOfWork, person: Person) -> Card | None:
    """The card the person holds and would bring for continued use."""
    return uow.session.execute(
        select(Card)
        .where(Card.person_id == person.id, Card.status.in_(CARD_IN_USE))
        .order_by(Card.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def check_subsidy_form(form: dict[str, Any], today: dt.date) -> dict[str, Any]:
    """The social insurance subsidy form for flexible employment after resignation."""
    resigned = str(form.get("resigned_on") or "").strip()
    try:
        resigned_on = dt.date.fromisoformat(resigned)
    except ValueError:
        raise invalid(
            "subsidy_form.resigned_on",
            "请填写离职日期（YYYY-MM-DD）",
            "give the date of resignation (YYYY-MM-DD)",
            "required",
        ) from None
    if resigned_on > today:
        raise invalid(
            "subsidy_form.resigned_on",
            "离职日期不能晚于今天",
            "the resignation date is in the future",
            "future",
        )
    debit_account = "".join(str(form.get("debit_account") or "").split())
    if not (8 <= len(debit_account) <= 30 and is_digits(debit_account)):
        raise invalid(
            "subsidy_form.debit_account",
            "请填写用于定期扣款的银行账号",
            "give the bank account number to debit regularly (8 to 30 digits)",
            "required",
        )
    debit_bank = str(form.get("debit_bank") or "").strip()
    if not debit_bank:
        raise invalid(
            "subsidy_form.debit_bank", "请填写开户银行", "give the debit account's bank", "required"
        )
    base_yuan = str(form.get("declared_base") or "").strip()
    base = 0
    if base_yuan:
        base = yuan_to_fen(base_yuan, field="subsidy_form.declared_base")
    return {
        "resigned_on": resigned_on.isoformat(),
        "former_employer": str(form.get("former_employer") or "").strip()[:200],
        "employment": "flexible",
        "declared_base": base,
        "debit_bank": debit_bank[:100],
        "debit_account": debit_account,
        "phone": str(form.get("phone") or "").strip()[:20],
    }


def _new_no(prefix: str, today: dt.date) -> str:
    return f"{prefix}{today:%Y%m%d}{secrets.randbelow(10**8):08d}"


# ---------------------------------------------------------------- application


@dataclass(frozen=True)
class VoucherFile:
    voucher: PaymentVoucher
    schedule: list[dict[str, Any]]  # the months with each one's status (paid, due, ...)


@dataclass(frozen=True)
class ApplicationFile:
    """An application as the staff see it after any step: with the person and
    the voucher issued on approval, read in the same transaction."""

    application: EnrolmentApplication
    person: Person
    voucher: VoucherFile | None
    # the day it is to be reviewed, and whether that day has passed unreviewed
    review_due: dt.date | None = None
    overdue: bool = False


def _voucher_file(uow: UnitOfWork, voucher: PaymentVoucher) -> VoucherFile:
    return VoucherFile(voucher, voucher_status(uow, voucher))


def _review(
    uow: UnitOfWork, app: EnrolmentApplication, workdays: WorkCalendar | None = None
) -> tuple[dt.date, bool]:
    """The application's review day and whether it is overdue (still waiting
    after its day), in working days of the calendar and the service's clock."""
    workdays = workdays or calendar_service.load(uow)
    filed = app.submitted_at.astimezone(CHINA).date()
    due = reviews.review_due(filed, workdays.is_workday)
    waiting = app.status == "submitted"
    return due, waiting and reviews.review_overdue(filed, uow.clock.today(), workdays.is_workday)


def _file(
    uow: UnitOfWork,
    app: EnrolmentApplication,
    person: Person,
    workdays: WorkCalendar | None = None,
) -> ApplicationFile:
    voucher = voucher_of(uow, app)
    due, overdue = _review(uow, app, workdays)
    return ApplicationFile(
        app, person, _voucher_file(uow, voucher) if voucher else None, due, overdue
    )


@use_case
def submit(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    certno: str,
    materials: list[str],
    subsidy_form: dict[str, Any],
    name: str | None = None,
    division_code: str | None = None,
) -> ApplicationFile:
    """Take an application with its materials and the subsidy form. Missing
    materials are recorded and named; approval waits for them."""
    actor.require(Perm.PERSON_WRITE)
    today = uow.clock.today()
    check_materials(materials)  # unknown items are refused before anything is read
    form = check_subsidy_form(subsidy_form, today)
    rid = parse_resident_id(certno, today=today)
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
            phone=form["phone"],
        )
    if any(
        e.insutype == contributions.EMPLOYEE and e.status != "terminated"
        for e in contributions.enrolments_of(uow.session, person.id)
    ):
        raise conflict(
            "enrolment.exists",
            "该人员已参加职工基本医疗保险",
            "the person is already enrolled in employee medical insurance",
        )
    recorded, missing = check_materials(materials, holds_card=card_in_use(uow, person) is not None)
    open_app = uow.session.execute(
        select(EnrolmentApplication.app_no).where(
            EnrolmentApplication.person_id == person.id,
            EnrolmentApplication.status == "submitted",
        )
    ).scalar_one_or_none()
    if open_app is not None:
        raise conflict(
            "enrolment_application.open",
            f"该人员已有待审核的参保申请（{open_app}）",
            f"the person already has an application waiting for review ({open_app})",
        )
    now = uow.clock.now()
    app = EnrolmentApplication(
        app_no=_new_no("EA", today),
        person_id=person.id,
        division_code=actor.division,
        materials=recorded,
        missing=missing,
        subsidy_form=form,
        status="submitted",
        submitted_at=now,
        submitted_by=actor.id,
    )
    uow.session.add(app)
    uow.session.flush()
    uow.audit(
        actor.record(
            channel=channel,
            action="enrolment_application.submit",
            person_id=person.id,
            subject=app.app_no,
            detail={"missing": [m["item"] for m in missing]},
        )
    )
    return _file(uow, app, person)


def _application(
    uow: UnitOfWork, *, actor: Actor, channel: str, app_no: str, lock: bool = False
) -> tuple[EnrolmentApplication, Person]:
    actor.require(Perm.PERSON_READ)
    stmt = (
        select(EnrolmentApplication, Person)
        .join(Person, Person.id == EnrolmentApplication.person_id)
        .where(
            EnrolmentApplication.app_no == app_no.strip(),
            registry.in_scope(Person.division_code, actor),
        )
    )
    if lock:
        stmt = stmt.with_for_update(of=EnrolmentApplication)
    row = uow.session.execute(stmt).one_or_none()
    if row is None:
        raise not_found("参保申请", "enrolment application", "enrolment_application.not_found")
    app, person = row
    uow.audit(
        actor.record(
            channel=channel,
            action="enrolment_application.read",
            person_id=person.id,
            subject=app.app_no,
        )
    )
    return app, person


@use_case
def get_application(uow: UnitOfWork, *, actor: Actor, channel: str, app_no: str) -> ApplicationFile:
    return _file(uow, *_application(uow, actor=actor, channel=channel, app_no=app_no))


@use_case
def list_pending(uow: UnitOfWork, *, actor: Actor, channel: str) -> list[ApplicationFile]:
    """Applications waiting for review in the actor's area (to be reviewed the same day)."""
    actor.require(Perm.PERSON_READ)
    rows = list(
        uow.session.execute(
            select(EnrolmentApplication, Person)
            .join(Person, Person.id == EnrolmentApplication.person_id)
            .where(
                EnrolmentApplication.status == "submitted",
                registry.in_scope(Person.division_code, actor),
            )
            .order_by(EnrolmentApplication.submitted_at)
        ).all()
    )
    for app, _ in rows:
        uow.audit(
            actor.record(
                channel=channel,
                action="enrolment_application.list",
                person_id=app.person_id,
                subject=app.app_no,
            )
        )
    workdays = calendar_service.load(uow)
    return [_file(uow, app, person, workdays) for app, person in rows]


@dataclass(frozen=True)
class ReviewCounts:
    waiting: int  # applications waiting for review in the actor's area
    overdue: int  # of which not reviewed on their day


@use_case
def review_counts(uow: UnitOfWork, *, actor: Actor, channel: str) -> ReviewCounts:
    """How many applications in the actor's area wait for review, and how
    many of them are overdue (counts only: no person's data is read out)."""
    actor.require(Perm.PERSON_READ)
    filed = list(
        uow.session.execute(
            select(EnrolmentApplication)
            .join(Person, Person.id == EnrolmentApplication.person_id)
            .where(
                EnrolmentApplication.status == "submitted",
                registry.in_scope(Person.division_code, actor),
            )
        ).scalars()
    )
    workdays = calendar_service.load(uow)
    overdue = sum(1 for app in filed if _review(uow, app, workdays)[1])
    return ReviewCounts(len(filed), overdue)


@use_case
def add_materials(
    uow: UnitOfWork, *, actor: Actor, channel: str, app_no: str, materials: list[str]
) -> ApplicationFile:
    """Record materials brought later; what is still missing stays named."""
    actor.require(Perm.PERSON_WRITE)
    app, person = _application(uow, actor=actor, channel=channel, app_no=app_no, lock=True)
    _require_open(app)
    had = [m["item"] for m in app.materials if m["checked"]]
    recorded, missing = check_materials(
        had + list(materials), holds_card=card_in_use(uow, person) is not None
    )
    app.materials, app.missing = recorded, missing
    uow.audit(
        actor.record(
            channel=channel,
            action="enrolment_application.materials",
            person_id=person.id,
            subject=app.app_no,
            detail={"added": list(materials), "missing": [m["item"] for m in missing]},
        )
    )
    return _file(uow, app, person)


def _require_open(app: EnrolmentApplication) -> None:
    if app.status != "submitted":
        raise conflict(
            "enrolment_application.reviewed",
            "该申请已审核",
            f"the application was already reviewed ({app.status})",
        )


@use_case
def reject(
    uow: UnitOfWork, *, actor: Actor, channel: str, app_no: str, reason: str
) -> ApplicationFile:
    actor.require(Perm.PERSON_WRITE)
    reason = (reason or "").strip()
    if not reason:
        raise invalid("reason", "退回申请须说明理由", "a rejection needs a reason", "required")
    app, person = _application(uow, actor=actor, channel=channel, app_no=app_no, lock=True)
    _require_open(app)
    app.status = "rejected"
    app.reject_reason = reason[:200]
    app.reviewed_at, app.reviewed_by = uow.clock.now(), actor.id
    uow.audit(
        actor.record(
            channel=channel,
            action="enrolment_application.reject",
            person_id=person.id,
            subject=app.app_no,
            detail={"reason": app.reject_reason},
        )
    )
    return _file(uow, app, person)


@use_case
def set_collection_account(
    uow: UnitOfWork, *, actor: Actor, channel: str, area: str, bank: str, name: str, account: str
) -> CollectionAccount:
    """The collection account of a pooling area (a county, a city or a
    province code), printed on the vouchers issued from now on."""
    actor.require(Perm.STAFF_MANAGE)
    area = registry.require_division(uow, (area or "").strip(), field="area").code
    if len(area) != 6:
        raise invalid("area", "统筹区应为区县、市或省(6位代码)", "area is a 6-digit division code")
    if not actor.sees(area):
        raise forbidden(
            "access.out_of_area", "不能设置本辖区以外的收入户", "that area is not in your scope"
        )
    bank, name, account = bank.strip(), name.strip(), account.replace(" ", "").strip()
    if not bank or len(bank) > 100:
        raise invalid("bank", "请填写开户银行(100字以内)", "give the bank, up to 100 characters")
    if not name or len(name) > 100:
        raise invalid(
            "name", "请填写户名(100字以内)", "give the account name, up to 100 characters"
        )
    if not ACCOUNT_NO.match(account):
        raise invalid("account", "银行账号应为8至32位数字", "the account number is 8 to 32 digits")
    row = uow.session.get(CollectionAccount, area, with_for_update=True)
    before = {"bank": row.bank, "name": row.name, "account": row.account} if row else None
    now = uow.clock.now()
    if row is None:
        row = CollectionAccount(area=area, bank=bank, name=name, account=account, updated_at=now)
        uow.session.add(row)
    else:
        row.bank, row.name, row.account, row.updated_at = bank, name, account, now
    uow.audit(
        actor.record(
            channel=channel,
            action="collection_account.set",
            subject=area,
            detail={"before": before, "after": {"bank": bank, "name": name, "account": account}},
        )
    )
    return row


@use_case
def collection_accounts(uow: UnitOfWork, *, actor: Actor) -> list[CollectionAccount]:
    """The collection accounts the actor's area uses or sets."""
    rows = uow.session.scalars(select(CollectionAccount).order_by(CollectionAccount.area))
    return [r for r in rows if actor.sees(r.area) or r.area in areas_up(actor.division)]


def collection_account_for(uow: UnitOfWork, area: str) -> CollectionAccount:
    """The area's collection account, else its city's, else its province's."""
    rows = uow.session.scalars(
        select(CollectionAccount).where(CollectionAccount.area.in_(areas_up(area)))
    )
    found = nearest({r.area: r for r in rows}, area)
    if found is not None:
        return found
    raise DomainError(
        code="collection_account.missing",
        zh=f"{area[:6]}统筹区尚未设置医保基金收入户，无法开具缴费凭证",
        en=f"no collection account is set for area {area[:6]}; a voucher cannot be issued",
        status=409,
        field="area",
    )


def _due_date(month: int, issued: dt.date) -> dt.date:
    day = dt.date(month // 100, month % 100, DUE_DAY)
    return max(day, issued + dt.timedelta(days=7))


@use_case
def approve(
    uow: UnitOfWork, *, actor: Actor, channel: str, app_no: str, months: int = VOUCHER_MONTHS
) -> ApplicationFile:
    """Approve: enrol as a flexible employee (310) and issue the payment voucher."""
    actor.require(Perm.PERSON_WRITE)
    if not 1 <= months <= 12:
        raise invalid("months", "缴费凭证覆盖1至12个月", "a voucher covers 1 to 12 months")
    app, person = _application(uow, actor=actor, channel=channel, app_no=app_no, lock=True)
    _require_open(app)
    if app.missing:
        raise DomainError(
            code="enrolment_application.materials_missing",
            zh="材料不齐，缺少：" + "、".join(m["zh"] for m in app.missing),
            en="materials missing: " + ", ".join(m["en"] for m in app.missing),
            status=409,
            field="materials",
        )
    payee = collection_account_for(uow, person.division_code)
    today = uow.clock.today()
    start = today.replace(day=1)
    enrolment = contributions.enrol(
        uow,
        actor=actor,
        channel=channel,
        person=person,
        insutype=contributions.EMPLOYEE,
        psn_type="flexible",
        start=start,
        base=int(app.subsidy_form.get("declared_base") or 0),
    )
    first = contributions.month_of(today)
    month_list = [first]
    while len(month_list) < months:
        month_list.append(contributions.next_month(month_list[-1]))
    lines = contributions.assess_person(
        uow, actor=actor, channel=channel, enrolment=enrolment, months=month_list
    )
    schedule = [
        {
            "month": line.month,
            "amount": line.employer_amount + line.individual_amount,
            "due_date": _due_date(line.month, today).isoformat(),
            "line_id": line.id,
        }
        for line in lines
    ]
    now = uow.clock.now()
    voucher = PaymentVoucher(
        voucher_no=_new_no("PV", today),
        person_id=person.id,
        application_id=app.id,
        enrolment_id=enrolment.id,
        schedule=schedule,
        total=sum(s["amount"] for s in schedule),
        payee_bank=payee.bank,
        payee_name=payee.name,
        payee_account=payee.account,
        debit_bank=app.subsidy_form.get("debit_bank", ""),
        debit_account=app.subsidy_form.get("debit_account", ""),
        issued_at=now,
        status="due",
    )
    uow.session.add(voucher)
    app.status = "approved"
    app.reviewed_at, app.reviewed_by = now, actor.id
    app.enrolment_id = enrolment.id
    renewed = _renew_card_and_records(uow, app, person)
    uow.session.flush()
    uow.audit(
        actor.record(
            channel=channel,
            action="enrolment_application.approve",
            person_id=person.id,
            subject=app.app_no,
            detail={"voucher": voucher.voucher_no, "total": voucher.total, **renewed},
        )
    )
    return ApplicationFile(app, person, _voucher_file(uow, voucher))


def _renew_card_and_records(
    uow: UnitOfWork, app: EnrolmentApplication, person: Person
) -> dict[str, object]:
    """Seed 004, step 1: the card and the medical record book brought for
    continued use go on under the new enrolment: the card in use keeps its
    number (no new card application), and the record book last recorded for
    the person is recorded again on this application."""
    if not any(m["item"] == RENEWAL and m["checked"] for m in app.materials):
        return {}
    card = card_in_use(uow, person)
    app.renewed_card_no = card.card_no if card else None
    book = uow.session.execute(
        select(EnrolmentApplication.record_book_no)
        .where(
            EnrolmentApplication.person_id == person.id,
            EnrolmentApplication.id != app.id,
            EnrolmentApplication.record_book_no.is_not(None),
        )
        .order_by(EnrolmentApplication.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if book:
        app.record_book_no, app.record_book_issued_at = book, uow.clock.now()
        app.record_book_renewed = True
    return {"renewed_card": app.renewed_card_no, "renewed_record_book": book}


def voucher_of(uow: UnitOfWork, app: EnrolmentApplication) -> PaymentVoucher | None:
    return uow.session.execute(
        select(PaymentVoucher).where(PaymentVoucher.application_id == app.id)
    ).scalar_one_or_none()


def _voucher(
    uow: UnitOfWork, *, actor: Actor, channel: str, voucher_no: str
) -> tuple[PaymentVoucher, Person]:
    voucher, person = registry.read_owned(
        uow,
        actor=actor,
        channel=channel,
        column=PaymentVoucher.voucher_no,
        value=voucher_no,
        action="voucher.read",
        what=("缴费凭证", "payment voucher", "voucher.not_found"),
    )
    return voucher, person


@use_case
def get_voucher(
    uow: UnitOfWork, *, actor: Actor, channel: str, voucher_no: str
) -> tuple[VoucherFile, Person]:
    voucher, person = _voucher(uow, actor=actor, channel=channel, voucher_no=voucher_no)
    return _voucher_file(uow, voucher), person


@use_case
def voucher_document(
    uow: UnitOfWork, *, actor: Actor, channel: str, voucher_no: str
) -> tuple[PaymentVoucher, bytes]:
    """The payment voucher, printable."""
    voucher, person = _voucher(uow, actor=actor, channel=channel, voucher_no=voucher_no)
    return voucher, voucher_pdf(uow, voucher, person)


def voucher_status(uow: UnitOfWork, voucher: PaymentVoucher) -> list[dict[str, Any]]:
    """The schedule with each month's status (due or paid)."""
    ids = [s["line_id"] for s in voucher.schedule]
    status = dict(
        uow.session.execute(
            select(ContributionLine.id, ContributionLine.status).where(ContributionLine.id.in_(ids))
        ).all()
    )
    return [{**s, "status": status.get(s["line_id"], "due")} for s in voucher.schedule]


def voucher_pdf(uow: UnitOfWork, voucher: PaymentVoucher, person: Person) -> bytes:
    schedule = voucher_status(uow, voucher)
    doc = Document("医疗保险费缴费凭证", "Medical insurance payment voucher")
    doc.fields(
        [
            ("凭证号 Voucher number", voucher.voucher_no),
            ("姓名 Name", person.name),
            ("公民身份号码 ID number", mask_certno(person.certno)),
            ("医保账号 Account number", person.account_no),
            ("险种 Scheme", "职工基本医疗保险（灵活就业） employee insurance, flexible employment"),
            ("合计金额 Total amount", f"{yuan(voucher.total)} 元"),
            ("收款银行 Payee bank", voucher.payee_bank),
            ("收款户名 Payee name", voucher.payee_name),
            ("收款账号 Payee account", voucher.payee_account),
            ("扣款银行 Debit bank", voucher.debit_bank),
            ("扣款账号 Debit account", voucher.debit_account),
        ]
    )
    doc.heading("缴费计划 Payment schedule")
    doc.table(
        ["月份 Month", "金额 Amount", "扣款日 Due date", "状态 Status"],
        [
            [
                contributions.month_text(s["month"]),
                yuan(s["amount"]),
                s["due_date"],
                "已缴 paid" if s["status"] == "paid" else "待缴 due",
            ]
            for s in schedule
        ],
        [40, 40, 40, 40],
    )
    doc.paragraph(
        "请按缴费凭证上的银行信息定期缴费；首次缴费后可凭缴费凭证到医保大厅申请医保卡。"
        "Pay regularly to the bank account above; after the first payment, bring this voucher "
        "to the medical insurance hall to apply for a card.",
        8,
    )
    return doc.render(generated_at=voucher.issued_at.astimezone(CHINA))


@use_case
def issue_record_book(
    uow: UnitOfWork, *, actor: Actor, channel: str, app_no: str, number: str
) -> ApplicationFile:
    """Record the number of the medical record book (病历本) issued with photo and seal."""
    actor.require(Perm.PERSON_WRITE)
    number = (number or "").strip()
    if not (4 <= len(number) <= 40):
        raise invalid("number", "请填写病历本编号", "give the record book's number", "required")
    app, person = _application(uow, actor=actor, channel=channel, app_no=app_no, lock=True)
    if app.status != "approved":
        raise conflict(
            "enrolment_application.not_approved",
            "申请尚未审核通过",
            "the application is not approved",
        )
    if app.record_book_no and app.record_book_no != number:
        raise conflict(
            "record_book.issued",
            f"已发放病历本（{app.record_book_no}）",
            f"a record book was already issued ({app.record_book_no})",
        )
    if not app.record_book_no:
        app.record_book_no, app.record_book_issued_at = number, uow.clock.now()
        # a book brought for continued use is recorded, not issued anew
        app.record_book_renewed = any(m["item"] == RENEWAL and m["checked"] for m in app.materials)
        uow.audit(
            actor.record(
                channel=channel,
                action="record_book.renew" if app.record_book_renewed else "record_book.issue",
                person_id=person.id,
                subject=number,
            )
        )
    return _file(uow, app, person)


# ---------------------------------------------------------------- bank files

DEBIT_HEADER = ["debit_no", "voucher_no", "month", "amount", "debit_bank", "debit_account", "name"]
RETURN_HEADER = ["debit_no", "result", "amount", "bank_ref", "reason"]


def debit_rows(
    uow: UnitOfWork, *, actor: Actor, channel: str, day: dt.date
) -> list[dict[str, str]]:
    """The debit file for a day: every month of a due voucher whose due date
    has come and that is neither paid nor waiting for the bank's answer.
    Writing the file again the same day gives the same rows."""
    rows: list[dict[str, str]] = []
    now = uow.clock.now()
    vouchers = uow.session.execute(
        select(PaymentVoucher, Person)
        .join(Person, Person.id == PaymentVoucher.person_id)
        .where(PaymentVoucher.status == "due", Person.status == "active")
        .order_by(PaymentVoucher.id)
    ).all()
    seq = _sequence(uow, day)
    for voucher, person in vouchers:
        for item in voucher_status(uow, voucher):
            if item["status"] != "due" or dt.date.fromisoformat(item["due_date"]) > day:
                continue
            debit = uow.session.execute(
                select(BankDebit).where(
                    BankDebit.line_id == item["line_id"], BankDebit.status == "sent"
                )
            ).scalar_one_or_none()
            if debit is None:
                seq += 1
                debit = BankDebit(
                    debit_no=f"D{day:%Y%m%d}{seq:06d}",
                    voucher_id=voucher.id,
                    line_id=item["line_id"],
                    month=item["month"],
                    amount=item["amount"],
                    file_date=day,
                    status="sent",
                    created_at=now,
                )
                uow.session.add(debit)
                uow.session.flush()
            # the file carries the person's name and bank account out of the service
            uow.audit(
                actor.record(
                    channel=channel,
                    action="bank.debit",
                    person_id=person.id,
                    subject=debit.debit_no,
                    detail={"voucher": voucher.voucher_no, "month": debit.month},
                )
            )
            rows.append(
                {
                    "debit_no": debit.debit_no,
                    "voucher_no": voucher.voucher_no,
                    "month": contributions.month_text(debit.month),
                    "amount": yuan(debit.amount).replace(",", ""),
                    "debit_bank": voucher.debit_bank,
                    "debit_account": voucher.debit_account,
                    "name": person.name,
                }
            )
    return rows


def _sequence(uow: UnitOfWork, day: dt.date) -> int:
    last = uow.session.execute(
        select(BankDebit.debit_no)
        .where(BankDebit.debit_no.like(f"D{day:%Y%m%d}%"))
        .order_by(BankDebit.debit_no.desc())
        .limit(1)
    ).scalar_one_or_none()
    return int(last[9:]) if last else 0


@use_case
def write_debit_file(uow: UnitOfWork, *, actor: Actor, channel: str, day: dt.date) -> str:
    rows = debit_rows(uow, actor=actor, channel=channel, day=day)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=DEBIT_HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    uow.audit(
        actor.record(
            channel=channel,
            action="bank.debit_file",
            subject=day.isoformat(),
            detail={"rows": len(rows)},
        )
    )
    return out.getvalue()


@dataclass
class ReturnResult:
    paid: int = 0
    failed: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)


@use_case
def read_return_file(
    uow: UnitOfWork, *, actor: Actor, channel: str, content: str, filename: str = ""
) -> ReturnResult:
    """Apply the bank's answers, each row once: a paid row records the
    payment (ledger), a failed row leaves the month due for the next file."""
    result = ReturnResult()
    reader = csv.DictReader(io.StringIO(content.lstrip("\ufeff")))
    if reader.fieldnames is None or not {"debit_no", "result"} <= set(reader.fieldnames):
        raise invalid(
            "file",
            "回盘文件缺少debit_no或result列",
            f"the return file needs the columns {', '.join(RETURN_HEADER)}",
            "format",
        )
    now = uow.clock.now()
    for number, row in enumerate(reader, start=2):
        debit_no = (row.get("debit_no") or "").strip()
        outcome = (row.get("result") or "").strip().lower()
        debit = uow.session.execute(
            select(BankDebit).where(BankDebit.debit_no == debit_no).with_for_update()
        ).scalar_one_or_none()
        if debit is None:
            result.errors.append(f"row {number}: unknown debit {debit_no!r}")
            continue
        if debit.status != "sent":
            result.unchanged += 1
            continue
        if outcome not in ("paid", "failed"):
            result.errors.append(f"row {number}: result is paid or failed, not {outcome!r}")
            continue
        debit.bank_ref = (row.get("bank_ref") or "").strip()[:60]
        debit.answered_at = now
        if outcome == "failed":
            debit.status = "failed"
            debit.reason = (row.get("reason") or "").strip()[:200] or "failed"
            result.failed += 1
            failed_line = uow.session.get(ContributionLine, debit.line_id)
            uow.audit(
                actor.record(
                    channel=channel,
                    action="bank.debit_failed",
                    person_id=failed_line.person_id if failed_line else None,
                    subject=debit.debit_no,
                    detail={"reason": debit.reason},
                )
            )
            continue
        amount_text = (row.get("amount") or "").strip()
        if amount_text and yuan_to_fen(amount_text, field="amount") != debit.amount:
            debit.answered_at = None
            result.errors.append(f"row {number}: amount {amount_text} is not the debited one")
            continue
        voucher = uow.session.get(PaymentVoucher, debit.voucher_id)
        line = uow.session.get(ContributionLine, debit.line_id)
        person = uow.session.get(Person, line.person_id) if line else None
        assert voucher is not None and line is not None and person is not None
        payment = contributions.record_person_payment(
            uow,
            actor=actor,
            channel=channel,
            person=person,
            lines=[line],
            amount=debit.amount,
            reference=debit.bank_ref or debit.debit_no,
            key=f"bank:{debit.debit_no}",
        )
        debit.status, debit.payment_id = "paid", payment.id
        if all(s["status"] == "paid" for s in voucher_status(uow, voucher)):
            voucher.status = "paid"
        result.paid += 1
    uow.audit(
        actor.record(
            channel=channel,
            action="bank.return_file",
            subject=filename[:100],
            detail={"paid": result.paid, "failed": result.failed, "unchanged": result.unchanged},
        )
    )
    return result
