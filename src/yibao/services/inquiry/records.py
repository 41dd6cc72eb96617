"""What a person may inquire (Social Insurance Law art. 4): payment records
and personal rights records, the account's postings over a period, a
statement of both for any period, and the terminal's inquiry receipt.

The use cases here decide, as the account summary does, whether the
presenter may read the person's records (``summary.open_for_inquiry``) and
audit the read; a channel calls one and renders what it returns. Dates on
paper are China dates and times, whatever the server's zone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.clock import CHINA
from yibao.domain import ledger as codes
from yibao.domain.actors import Actor
from yibao.domain.cards import Path
from yibao.domain.errors import invalid
from yibao.domain.ids import mask_certno
from yibao.domain.schemes import PSN_TYPE_ZH, STATUS_ZH
from yibao.domain.use import Named, Presenter
from yibao.services.cards import cards as card_service
from yibao.services.contributions import contributions
from yibao.services.documents import Document, yuan
from yibao.services.family import family as family_aid
from yibao.services.inquiry import summary
from yibao.services.ledger import ledger
from yibao.services.tx import use_case
from yibao.store.models import (
    Card,
    CardApplication,
    ContributionLine,
    Division,
    Employer,
    Enrolment,
    Institution,
    Person,
    Settlement,
)
from yibao.store.uow import UnitOfWork

# Why an individual account moved, as a person reads it.
CAUSES: dict[str, tuple[str, str]] = {
    "ia_credit": ("个人账户划入", "monthly account credit"),
    "settlement": ("医疗费用结算", "medical costs paid"),
    "reversal:settlement": ("结算撤销退回", "settlement cancelled, refunded"),
    "resettlement": ("设备故障后重新结算", "re-settled after equipment failure"),
    "payout": ("账户余额支付本人", "balance paid out to the person"),
    "transfer_out": ("随关系转出", "moved out with the insurance relation"),
    "transfer_in": ("转入余额", "balance carried in from another area"),
    "inheritance": ("余额由继承人领取", "balance payable to the heirs"),
    "mutual_aid": ("家庭共济支付", "family mutual-aid payment"),
    "reversal:mutual_aid": ("家庭共济撤销退回", "family mutual-aid payment refunded"),
    "family_contribution": ("家庭共济代缴居民医保费", "resident contribution paid for a relative"),
}


def cause(kind: str) -> tuple[str, str]:
    return CAUSES.get(kind, (kind, kind))


@dataclass
class RightsRecord:
    enrolments: list[Enrolment]
    postings: list[ledger.Line]
    balance: int
    # family mutual aid: what the person's account paid for relatives and
    # what holders' accounts paid for them, newest first
    family: list[family_aid.PaymentView] = field(default_factory=list)


def rights_records(
    session: Session,
    person_id: int,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> RightsRecord:
    """Enrolment periods and status, account postings with their causes,
    benefit use, and family mutual aid both ways."""
    lines = ledger.history(
        session, code=codes.individual(person_id), start=start, end=end, limit=5000
    )
    family_aid.relabel(session, person_id, lines)
    return RightsRecord(
        enrolments=contributions.enrolments_of(session, person_id),
        postings=lines,
        balance=ledger.individual_balance(session, person_id),
        family=family_aid.payments_of(session, person_id, start=start, end=end, limit=5000),
    )


def family_rows(person_id: int, payments: list[family_aid.PaymentView]) -> list[list[str]]:
    """Family mutual aid as the statement's table shows it."""
    rows = []
    for p in payments:
        if p.role_of(person_id) == "paid":
            way = f"为{p.relative_name}支付 paid for {p.relative_name}"
        else:
            way = f"{p.holder_name}为本人支付 paid by {p.holder_name}"
        zh, en = p.purpose
        rows.append(
            [
                p.at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M"),
                way,
                f"{zh} {en}",
                yuan(p.amount),
                "已撤销 cancelled" if p.reversed else "",
            ]
        )
    return rows


def _bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return (
        dt.datetime.combine(start, dt.time(), CHINA),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), CHINA),
    )


def statement_pdf(
    session: Session, person: Person, *, start: dt.date, end: dt.date, now: dt.datetime
) -> bytes:
    """Payment records and personal rights records of a period, as one PDF."""
    lo, hi = _bounds(start, end)
    rights = rights_records(session, person.id, start=lo, end=hi)
    after = ledger.history(session, code=codes.individual(person.id), start=hi, limit=100000)
    closing = rights.balance - sum(line.amount for line in after)
    opening = closing - sum(line.amount for line in rights.postings)
    records = contributions.payment_records(
        session, person.id, first=contributions.month_of(start), last=contributions.month_of(end)
    )
    doc = Document(
        "医疗保险个人权益记录对账单",
        "Statement of medical insurance records",
        subtitle=f"{start:%Y-%m-%d} — {end:%Y-%m-%d}",
    )
    doc.fields(
        [
            ("姓名 Name", person.name),
            ("公民身份号码 ID number", mask_certno(person.certno)),
            ("医保账号 Account number", person.account_no),
            ("期初余额 Opening balance", f"{yuan(opening)} 元"),
            ("期末余额 Closing balance", f"{yuan(closing)} 元"),
        ]
    )
    doc.heading("参保信息 Enrolment")
    doc.table(
        ["险种 Scheme", "类别 Type", "开始 From", "结束 To", "状态 Status"],
        [
            [
                contributions.SCHEMES.get(e.insutype, e.insutype),
                PSN_TYPE_ZH.get(e.psn_type, e.psn_type),
                e.start_date.isoformat(),
                e.end_date.isoformat() if e.end_date else "",
                STATUS_ZH.get(e.status, e.status),
            ]
            for e in rights.enrolments
        ],
        [40, 28, 28, 28, 40],
    )
    doc.heading("缴费记录 Payment records")
    doc.table(
        [
            "月份 Month",
            "缴费基数 Base",
            "单位缴费 Employer",
            "个人缴费 Individual",
            "划入账户 To account",
            "状态 Status",
            "到账日期 Paid",
            "缴费单位 Payer",
        ],
        [
            [
                contributions.month_text(r.month),
                yuan(r.base),
                yuan(r.employer_amount),
                yuan(r.individual_amount),
                yuan(r.account_credit),
                "已缴 paid" if r.status == "paid" else "欠缴 due",
                r.paid_at.astimezone(CHINA).date().isoformat() if r.paid_at else "",
                r.payer,
            ]
            for r in records
        ],
        [16, 20, 20, 20, 20, 16, 20, 42],
    )
    doc.heading("个人账户明细 Individual account postings")
    doc.table(
        ["日期 Date", "摘要 Cause", "金额 Amount", "余额 Balance"],
        [
            [
                line.at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M"),
                " / ".join(cause(line.kind)),
                yuan(line.amount),
                yuan(line.balance_after),
            ]
            for line in reversed(rights.postings)
        ],
        [34, 84, 26, 30],
    )
    if rights.family:
        doc.heading("家庭共济 Family mutual aid")
        doc.table(
            ["日期 Date", "共济 Who", "用途 For", "金额 Amount", "状态 Status"],
            family_rows(person.id, rights.family),
            [30, 56, 50, 20, 18],
        )
    doc.paragraph(
        "依据《中华人民共和国社会保险法》第四条，参保人有权查询缴费记录和个人权益记录。"
        "Under Article 4 of the Social Insurance Law, insured persons may inquire their payment "
        "and personal rights records.",
        7,
    )
    return doc.render(generated_at=now.astimezone(CHINA))


# ---------------------------------------------------------------- use cases


def default_period(today: dt.date) -> tuple[dt.date, dt.date]:
    """What a period left open means: from the first of the month a year ago
    to today."""
    return today.replace(day=1) - dt.timedelta(days=365), today


def period(
    start: dt.date | None, end: dt.date | None, *, today: dt.date
) -> tuple[dt.date, dt.date]:
    """A period to read: either end may be left open; the start comes first."""
    lo_default, hi_default = default_period(today)
    lo, hi = start or lo_default, end or hi_default
    if lo > hi:
        raise invalid("start", "开始日期晚于结束日期", "the start is after the end", "order")
    return lo, hi


@dataclass(frozen=True)
class Postings:
    start: dt.date
    end: dt.date
    lines: list[ledger.Line]
    # family mutual aid of the period, both ways (the relative's side moves
    # no posting of their own account)
    family: list[family_aid.PaymentView] = field(default_factory=list)


@use_case
def postings(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person_id: int,
    start: dt.date | None = None,
    end: dt.date | None = None,
    presenter: Presenter = Presenter.HOLDER,
    limit: int = 1000,
) -> Postings:
    """The individual account's postings of a period, newest first."""
    lo, hi = period(start, end, today=uow.clock.today())
    person = summary.open_for_inquiry(
        uow, actor=actor, presenter=presenter, person_id=person_id
    ).person
    since, until = _bounds(lo, hi)
    lines = ledger.history(
        uow.session, code=codes.individual(person.id), start=since, end=until, limit=limit
    )
    family_aid.relabel(uow.session, person.id, lines)
    uow.audit(
        actor.record(
            channel=channel,
            action="records.postings.read",
            person_id=person.id,
            subject=f"{lo}..{hi}",
        )
    )
    return Postings(
        lo,
        hi,
        lines,
        family_aid.payments_of(uow.session, person.id, start=since, end=until, limit=limit),
    )


@use_case
def rights(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person_id: int,
    presenter: Presenter = Presenter.HOLDER,
) -> RightsRecord:
    """The personal rights records: enrolments, postings, the balance."""
    person = summary.open_for_inquiry(
        uow, actor=actor, presenter=presenter, person_id=person_id
    ).person
    record = rights_records(uow.session, person.id)
    uow.audit(
        actor.record(
            channel=channel,
            action="records.rights.read",
            person_id=person.id,
            subject=person.account_no,
        )
    )
    return record


@use_case
def statement(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person_id: int,
    start: dt.date | None = None,
    end: dt.date | None = None,
    presenter: Presenter = Presenter.HOLDER,
) -> tuple[dt.date, dt.date, bytes]:
    """The statement of a period as a PDF; returns the period and the PDF."""
    lo, hi = period(start, end, today=uow.clock.today())
    person = summary.open_for_inquiry(
        uow, actor=actor, presenter=presenter, person_id=person_id
    ).person
    pdf = statement_pdf(uow.session, person, start=lo, end=hi, now=uow.clock.now())
    uow.audit(
        actor.record(
            channel=channel,
            action="records.statement",
            person_id=person.id,
            subject=f"{lo}..{hi}",
        )
    )
    return lo, hi, pdf


@use_case
def receipt(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    card_no: str,
    named: Named | None = None,
    place: str = "",
    recent: int = 10,
) -> bytes:
    """The terminal's inquiry receipt for the card presented: the account
    summary on paper, in China time. Refused as the summary is."""
    s = summary.summarize(
        uow,
        actor=actor,
        channel=channel,
        presenter=Presenter.HOLDER,
        card_no=card_no,
        named=named,
        recent=recent,
        action="balance.receipt",
    )
    doc = Document("医保个人账户查询回单", "Account inquiry receipt", subtitle=place)
    fields = [
        ("姓名 Name", s.name),
        ("卡号 Card", s.card.card_no if s.card else ""),
        ("余额 Balance", f"{yuan(s.balance)} 元"),
        ("截至 As of", s.as_of.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")),
        ("终端 Terminal", actor.id),
    ]
    if s.suspended:
        fields.append(("待遇状态 Benefits", "欠费暂停 suspended for unpaid contributions"))
    doc.fields(fields)
    doc.table(
        ["日期 Date", "摘要 Cause", "金额 Amount", "余额 Balance"],
        [
            [
                line.at.astimezone(CHINA).strftime("%Y-%m-%d"),
                " / ".join(cause(line.kind)),
                yuan(line.amount),
                yuan(line.balance_after),
            ]
            for line in s.recent
        ],
        [30, 80, 30, 30],
    )
    return doc.render(generated_at=s.as_of.astimezone(CHINA))


# ---------------------------------------------------------------- issue 15: what the portal shows


@dataclass(frozen=True)
class VisitRow:
    """One settlement of a medical visit as the person reads it (就医记录):
    where and when, the total, and who paid which part. A cancelled
    settlement says when; its money went back."""

    setl_id: str
    institution: str
    at: dt.datetime
    kind: str  # settlement, resettlement
    total: int  # fen: medfee_sumamt
    fund: int  # the pooled fund's part: fund_pay_sumamt
    account: int  # from the individual account: acct_pay
    cash: int  # paid by the person in cash: psn_cash_pay
    status: str  # settled, cancelled
    cancelled_at: dt.datetime | None


@use_case
def visits(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person_id: int,
    presenter: Presenter = Presenter.HOLDER,
    limit: int = 200,
) -> list[VisitRow]:
    """The person's settlements, newest first, from the settlement rows."""
    person = summary.open_for_inquiry(
        uow, actor=actor, presenter=presenter, person_id=person_id
    ).person
    rows = uow.session.execute(
        select(Settlement, Institution.name)
        .outerjoin(Institution, Institution.code == Settlement.institution_code)
        .where(Settlement.person_id == person.id)
        .order_by(Settlement.setl_time.desc(), Settlement.id.desc())
        .limit(limit)
    ).all()
    uow.audit(
        actor.record(
            channel=channel,
            action="records.visits.read",
            person_id=person.id,
            subject=person.account_no,
        )
    )
    return [
        VisitRow(
            s.setl_id,
            name or s.institution_code,
            s.setl_time,
            s.kind,
            s.medfee_sumamt,
            s.fund_pay_sumamt,
            s.acct_pay,
            s.psn_cash_pay,
            s.status,
            s.cancelled_at,
        )
        for s, name in rows
    ]


@dataclass(frozen=True)
class PaymentRow:
    """A payment record as the person reads it. ``kind`` says who pays:
    ``employer`` (``payer`` names it), ``self`` (the person: flexible
    employment), ``retiree`` (nobody: a retiree pays nothing, the account is
    credited from the pooled fund) or ``resident`` (the resident scheme's
    yearly premium: one row per year). ``period`` is YYYY-MM, or YYYY for a
    resident's year; ``status`` is paid, due or free (nothing to pay)."""

    period: str
    kind: str
    payer: str
    base: int
    employer_amount: int
    individual_amount: int
    account_credit: int
    status: str
    paid_at: dt.datetime | None


def payment_rows(session: Session, person_id: int) -> list[PaymentRow]:
    stmt = (
        select(ContributionLine, Employer.name, Enrolment.insutype, Enrolment.psn_type)
        .outerjoin(Employer, Employer.id == ContributionLine.employer_id)
        .join(Enrolment, Enrolment.id == ContributionLine.enrolment_id)
        .where(ContributionLine.person_id == person_id)
        .order_by(ContributionLine.month.desc(), ContributionLine.id)
    )
    rows: list[PaymentRow] = []
    years: dict[int, list[ContributionLine]] = {}
    for line, employer, insutype, psn_type in session.execute(stmt):
        if insutype == contributions.RESIDENT:
            years.setdefault(line.month // 100, []).append(line)
            continue
        retiree = psn_type == "retiree" and not line.employer_amount and not line.individual_amount
        kind = "employer" if employer else "retiree" if retiree else "self"
        rows.append(
            PaymentRow(
                contributions.month_text(line.month),
                kind,
                employer or "",
                line.base,
                line.employer_amount,
                line.individual_amount,
                line.account_credit,
                "free" if retiree else line.status,
                line.paid_at,
            )
        )
    for year, lines in years.items():
        paid = [x.paid_at for x in lines if x.paid_at is not None]
        rows.append(
            PaymentRow(
                f"{year:04d}",
                "resident",
                "",
                0,
                0,
                sum(x.individual_amount for x in lines),
                sum(x.account_credit for x in lines),
                "paid" if all(x.status == "paid" for x in lines) else "due",
                max(paid) if paid else None,
            )
        )
    # newest first: a year sorts before its months ("2026" < "2026-01")
    return sorted(
        rows, key=lambda r: (r.period[:4], r.period == r.period[:4], r.period), reverse=True
    )


@use_case
def payment_list(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person_id: int,
    presenter: Presenter = Presenter.HOLDER,
) -> list[PaymentRow]:
    """The payment records as the portal shows them, newest first."""
    person = summary.open_for_inquiry(
        uow, actor=actor, presenter=presenter, person_id=person_id
    ).person
    rows = payment_rows(uow.session, person.id)
    uow.audit(
        actor.record(
            channel=channel,
            action="records.payment.read",
            person_id=person.id,
            subject=person.account_no,
        )
    )
    return rows


@dataclass(frozen=True)
class CardProgress:
    """A card application as its applicant follows it: the state
    (``cards.application_state``), when it is due, where the card is to be
    collected, and, at a service point, the last day to collect it (once
    the card is there) or how many days it waits there (before)."""

    app_no: str
    path: str
    submitted_at: dt.datetime
    state: str
    card_status: str | None
    due_date: dt.date | None
    pickup_place: str  # the division's name (the county's: its center)
    pickup_place_en: str
    pickup_deadline: dt.date | None
    pickup_window_days: int | None


@use_case
def card_progress(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    person_id: int,
    presenter: Presenter = Presenter.HOLDER,
    limit: int = 5,
) -> list[CardProgress]:
    """The person's card applications still under way (``cards.OPEN_STATES``), newest first."""
    person = summary.open_for_inquiry(
        uow, actor=actor, presenter=presenter, person_id=person_id
    ).person
    rows = uow.session.execute(
        select(CardApplication, Card)
        .outerjoin(Card, Card.application_id == CardApplication.id)
        .where(CardApplication.person_id == person.id)
        .order_by(CardApplication.submitted_at.desc(), CardApplication.id.desc())
        .limit(limit)
    ).all()
    today = uow.clock.today()
    window = uow.settings.pickup_window_days
    found: list[CardProgress] = []
    for app, card in rows:
        state = card_service.application_state(app, card, today)
        if state not in card_service.OPEN_STATES:
            continue
        at_point = card is not None and card.location == "service_point"
        # not yet made: the card will wait at the service point for the window
        making = card is not None and card.status in ("applied", "in_production")
        point = app.path == Path.SERVICE_POINT.value and making
        where = (card.pickup_division if card is not None else None) or app.division_code
        if card is not None and card.location == "county_center":
            where = where[:6]
        division = uow.session.get(Division, where)
        found.append(
            CardProgress(
                app.app_no,
                app.path,
                app.submitted_at,
                state,
                card.status if card is not None else None,
                app.due_date,
                division.name if division else where,
                (division.name_en or division.name) if division else where,
                card.pickup_deadline if card is not None and at_point else None,
                window if point else None,
            )
        )
    uow.audit(
        actor.record(
            channel=channel,
            action="records.card_progress.read",
            person_id=person.id,
            subject=person.account_no,
        )
    )
    return found


@dataclass(frozen=True)
class PortalHome:
    """The portal's first page: the account summary and the card applications
    under way."""

    summary: summary.AccountSummary
    progress: list[CardProgress]


@use_case
def portal_home(
    uow: UnitOfWork, *, actor: Actor, channel: str, person_id: int, recent: int, months: int
) -> PortalHome:
    """The portal's first page in one transaction: both reads audited as
    they are alone, the person and the card read once, and one commit (one
    WAL flush) per page instead of two."""
    # held while both reads run: the session's identity map keeps only weak
    # references, and the second read would otherwise fetch the person again
    held = uow.session.get(Person, person_id)
    read = summary.summarize(
        uow,
        actor=actor,
        channel=channel,
        presenter=Presenter.HOLDER,
        person_id=person_id,
        recent=recent,
        months=months,
    )
    progress = card_progress.step(uow, actor=actor, channel=channel, person_id=person_id)
    del held
    return PortalHome(read, progress)
