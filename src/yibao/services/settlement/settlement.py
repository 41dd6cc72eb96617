"""Settlement at designated institutions (issue 4): sign-in, registration,
fee details, (pre-)settlement, cancel, reconciliation and query; the cash
visit after an equipment failure and its re-settlement (seed 000, part
three, item 3).

Each function here that the HIS channel calls is a use case: it opens its
transaction, decides, writes, audits and commits once. The channel parses
the platform's envelope, authenticates the request
(``institution_auth.authenticate``, a use case of its own) and calls one.

Where the rules are:

- whether the card or the person may be used: ``domain.use.decide``
  (registration here; the settlement's through ``domain.settlement``);
- every check and the arithmetic of a settlement: ``domain.settlement.decide``,
  on the facts ``read_facts`` reads (the fast path reads them from
  ``yb_his_read`` and calls the same decision);
- the settlement's write: ``backends.of(session).settle``, the ORM or the
  SQL-function implementation chosen at start-up (``services.ledger.backends``);
- a replayed msgid: ``services.idempotency.once``, claimed first.

Each use case takes its input as the HIS sent it, read by the one model
of its transaction (``inputs``): the channel passes the model it parsed the
message into, and a plain dict (a test, a script) is read through the same
model. Amounts are integer fen; the channel turns them into yuan.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from yibao.clock import CHINA
from yibao.domain import benefit
from yibao.domain import family as family_rules
from yibao.domain import settlement as rules
from yibao.domain.areas import same_pool
from yibao.domain.errors import DomainError, conflict, invalid
from yibao.domain.use import CardState, Named, PersonState, Presenter, Purpose
from yibao.domain.use import decide as decide_use
from yibao.services import idempotency
from yibao.services.access.institution_auth import Caller, purge_nonces
from yibao.services.cards import cards, evoucher
from yibao.services.contributions import contributions
from yibao.services.family import family as family_aid
from yibao.services.ledger import backends, ledger, usage
from yibao.services.registry.registry import age_on
from yibao.services.settlement import equipment, inputs, offsite, policy
from yibao.services.tx import P, R, UseCase, use_case
from yibao.store.models import (
    Card,
    Employer,
    Enrolment,
    FeeDetail,
    HisSignIn,
    LedgerEntry,
    Person,
    Reconciliation,
    Settlement,
    SettlementRefusal,
    Visit,
)
from yibao.store.uow import UnitOfWork

log = logging.getLogger("yibao.his")

# the platform's person type codes (psn_type) for yibao's categories
PSN_TYPE_CODES = {"employee": "11", "flexible": "11", "retiree": "12", "resident": "15"}
INSU_STAS = {"active": "1", "suspended": "2", "terminated": "4"}
CERT_TYPES = {"01", "02", "03"}
MSGID_MAX = 60


def _refuse(code: str, zh: str, en: str, field: str | None = None) -> DomainError:
    return DomainError(code=code, zh=zh, en=en, field=field, status=409)


def fmt_time(moment: dt.datetime) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


# a registration's or a fee's time may be this far ahead of the server's clock
CLOCK_SKEW = dt.timedelta(minutes=10)


# ------------------------------------------------------------- idempotency


@dataclass(frozen=True)
class Message:
    """A changing request as the idempotency layer knows it: its msgid (the
    key, per institution), its infno and its whole input (the fingerprint)."""

    msgid: str
    infno: str
    input: Any

    def __post_init__(self) -> None:
        if len(self.msgid) > MSGID_MAX:
            raise invalid("msgid", "报文ID过长", f"msgid is longer than {MSGID_MAX} characters")


def scope(caller: Caller) -> str:
    return f"his:{caller.code}"


def once(
    uow: UnitOfWork, caller: Caller, msg: Message, work: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """A changing transaction once per (institution, msgid): a resend gets
    the first answer; the msgid of another request is refused."""
    return idempotency.once(
        uow,
        scope=scope(caller),
        key=msg.msgid,
        fingerprint=idempotency.fingerprint(msg.infno, msg.input),
        work=work,
    )


def ledger_key(caller: Caller, msgid: str) -> str:
    """The ledger entry's own idempotency key (its unique index)."""
    return f"his:{caller.code}:{msgid}"


# ------------------------------------------------------------- sign-in


@use_case
def sign_in(uow: UnitOfWork, caller: Caller, *, opter_no: str) -> dict[str, Any]:
    """9001: a sign-in number for the institution's business codes."""
    now = uow.clock.now()
    sign_no = f"{caller.code}{now.astimezone(CHINA):%Y%m%d%H%M%S}{secrets.token_hex(4)}"
    uow.session.add(
        HisSignIn(
            sign_no=sign_no,
            institution_code=caller.code,
            opter_no=opter_no[:50],
            signed_in_at=now,
        )
    )
    purge_nonces(uow)  # a natural moment to forget nonces past their window
    return {"signinoutb": {"sign_time": fmt_time(now), "sign_no": sign_no}}


@use_case
def sign_out(uow: UnitOfWork, caller: Caller, *, sign_no: str) -> dict[str, Any]:
    """9002."""
    row = uow.session.execute(
        select(HisSignIn).where(HisSignIn.sign_no == sign_no)
    ).scalar_one_or_none()
    if row is None or row.institution_code != caller.code or row.signed_out_at is not None:
        raise DomainError(
            code="his.not_signed_in",
            zh="未签到或签到编号无效，请先签到(9001)",
            en="sign_no is not a current sign-in of this institution; sign in with 9001",
            field="sign_no",
            status=401,
        )
    now = uow.clock.now()
    row.signed_out_at = now
    return {"signoutoutb": {"sign_time": fmt_time(now)}}


# ------------------------------------------------------------- who is it


@dataclass
class Presented:
    """The person a certificate names and, for a card (03), the card."""

    person: Person | None
    card: Card | None = None
    card_state: CardState | None = None


def identify(uow: UnitOfWork, caller: Caller, *, cert_type: str, cert_no: str) -> Presented:
    """The person behind a certificate: an electronic voucher (01, redeemed
    for this institution), a resident ID number (02) or a card (03). Whether
    they may use it is decided by the caller (``domain.use``)."""
    if cert_type not in CERT_TYPES:
        raise invalid(
            "mdtrt_cert_type",
            "就诊凭证类型应为01、02或03",
            "mdtrt_cert_type is 01, 02 or 03",
        )
    if cert_type == "01":
        return Presented(
            uow.session.get(Person, evoucher.redeem(uow, token=cert_no, institution=caller.code))
        )
    if cert_type == "02":
        return Presented(
            uow.session.execute(
                select(Person).where(Person.certno == cert_no.upper())
            ).scalar_one_or_none()
        )
    card = uow.session.execute(select(Card).where(Card.card_no == cert_no)).scalar_one_or_none()
    if card is None:
        return Presented(None)
    return Presented(card.person, card, cards.card_state(uow, card))


def person_state(
    uow: UnitOfWork, person: Person, enrolment: Enrolment | None, *, visit_area: str, day: dt.date
) -> PersonState:
    """The person as ``domain.use`` decides on them: insured here, or with a
    filing for care in the visit's area on that day (``offsite.covering``;
    without one, why not: none, cancelled, expired, not yet started)."""
    if enrolment is None or same_pool(enrolment.area, visit_area):
        return contributions.person_state(person, enrolment)
    cover = offsite.covering(uow.session, person_id=person.id, visit_area=visit_area, day=day)
    return contributions.person_state(
        person, enrolment, arrangement=cover.covered, offsite=cover.reason
    )


def named(data: inputs.Presented | Mapping[str, Any]) -> Named:
    """Who the request says the person is, beside its certificate: psn_no,
    certno and psn_name, where the HIS sends them."""
    given = (
        data if isinstance(data, inputs.Presented) else inputs.Presented.read(data, "input.data")
    )
    psn_no = given.psn_no
    return Named(
        # a psn_no that is no person's id can match no certificate
        person_id=(int(psn_no) if len(psn_no) < 19 else -1) if psn_no else None,
        certno=given.certno or None,
        name=given.psn_name or None,
    )


def employer_name(uow: UnitOfWork, employer_id: int | None) -> str:
    if employer_id is None:
        return ""
    emp = uow.session.get(Employer, employer_id)
    return emp.name if emp else ""


@dataclass(frozen=True)
class Holder:
    """The insured person as the HIS's answers show them."""

    id: int
    name: str
    certno: str
    gender: str
    birth_date: dt.date


def holder(p: Any) -> Holder:
    return Holder(p.id, p.name, p.certno, p.gender, p.birth_date)


def person_info_output(
    p: Holder, e: Any | None, *, balance: int, emp_name: str, today: dt.date
) -> dict[str, Any]:
    """1101's answer, on the general path (``inquiry.person_info``) and the fast path."""
    insuinfo = []
    if e is not None:
        insuinfo.append(
            {
                "balc": balance,
                "insutype": e.insutype,
                "psn_type": PSN_TYPE_CODES.get(e.psn_type, e.psn_type),
                "psn_insu_stas": INSU_STAS.get(e.status, "4"),
                "psn_insu_date": e.start_date.isoformat(),
                "paus_insu_date": e.suspended_since.isoformat() if e.suspended_since else None,
                "cvlserv_flag": "0",
                "insuplc_admdvs": e.area,
                "emp_name": emp_name,
            }
        )
    return {
        "baseinfo": {
            "psn_no": str(p.id),
            "psn_cert_type": "01",
            "certno": p.certno,
            "psn_name": p.name,
            "gend": p.gender,
            "naty": "01",
            "brdy": p.birth_date.isoformat(),
            "age": age_on(p.birth_date, today),
        },
        "insuinfo": insuinfo,
        "idetinfo": [],
    }


# ------------------------------------------------------------- visits


def _new_id(prefix: str, caller: Caller, now: dt.datetime) -> str:
    # no global sequence (design.md): time and randomness make it unique
    return f"{prefix}{caller.code[-6:]}{now.astimezone(CHINA):%y%m%d%H%M%S}{secrets.token_hex(5)}"


def institution(caller: Caller) -> rules.Institution:
    return rules.Institution(caller.code, caller.level, caller.division)


def visit_facts(v: Any) -> rules.Visit:
    return rules.Visit(
        id=v.id,
        mdtrt_id=v.mdtrt_id,
        person_id=v.person_id,
        institution_code=v.institution_code,
        status=v.status,
        cash_fallback=bool(v.cash_fallback),
        day=v.begntime.astimezone(CHINA).date(),
        med_type=v.med_type,
    )


def _visit(uow: UnitOfWork, caller: Caller, mdtrt_id: str, psn_no: str) -> Visit:
    """The institution's own visit of the named person, locked."""
    row = uow.session.execute(
        select(Visit).where(Visit.mdtrt_id == mdtrt_id).with_for_update()
    ).scalar_one_or_none()
    rules.check_visit(visit_facts(row) if row else None, institution(caller), psn_no)
    assert row is not None
    return row


def _open(visit: Visit) -> Visit:
    if visit.status != "registered":
        raise _refuse(
            "visit.closed", "就诊已结算或已撤销", "the visit is settled or cancelled", "mdtrt_id"
        )
    return visit


@use_case
def register(
    uow: UnitOfWork,
    caller: Caller,
    *,
    msg: Message,
    data: inputs.Registration | Mapping[str, Any],
) -> dict[str, Any]:
    """2201: register an outpatient visit. With ``cash_fallback`` 1 and an
    ``invono`` it records a visit paid in cash during an equipment failure,
    to be re-settled later (seed 000, part three, item 3): only inside a
    failure this institution declared, one receipt once, and not at a time
    the person was seen at any institution already."""

    d = inputs.Registration.read(data, "input.data")

    def work() -> dict[str, Any]:
        psn_no, begntime = d.psn_no, d.begntime
        cash = d.cash_fallback == "1"
        invono = d.invono or None
        now = uow.clock.now()
        failure_id = None
        if cash:
            if not invono:
                raise invalid(
                    "input.data.invono",
                    "现金就诊须填写发票号",
                    "a cash visit needs invono",
                    "missing",
                )
            rules.check_window(
                begntime.astimezone(CHINA).date(),
                uow.clock.today(),
                uow.settings.his_resettle_window_days,
                "input.data.begntime",
            )
            failure_id = equipment.covering(uow, caller, begntime)
        elif begntime > now + CLOCK_SKEW:
            raise invalid(
                "input.data.begntime", "就诊时间晚于当前时间", "begntime is in the future"
            )
        who = identify(uow, caller, cert_type=d.mdtrt_cert_type, cert_no=d.mdtrt_cert_no)
        enrolment = (
            contributions.current_enrolment(uow.session, who.person.id) if who.person else None
        )
        decide_use(
            purpose=Purpose.SETTLEMENT,
            presenter=Presenter.INSTITUTION,
            person=person_state(
                uow,
                who.person,
                enrolment,
                visit_area=caller.division[:6],
                day=begntime.astimezone(CHINA).date(),
            )
            if who.person
            else None,
            card=who.card_state,
            named=named(d),
            card_field="mdtrt_cert_no",
        ).require()
        assert who.person is not None and enrolment is not None
        insutype = d.insutype or enrolment.insutype
        if insutype != enrolment.insutype:
            raise _refuse(
                "visit.insutype",
                "险种与参保信息不符",
                f"the person is insured under {enrolment.insutype}",
                "insutype",
            )
        if cash:
            assert invono is not None
            equipment.check_cash_visit(
                uow, caller, person_id=who.person.id, begntime=begntime, invono=invono
            )
        visit = Visit(
            mdtrt_id=_new_id("MD", caller, now),
            person_id=who.person.id,
            institution_code=caller.code,
            insutype=insutype,
            med_type=d.med_type or "11",
            begntime=begntime,
            ipt_otp_no=d.ipt_otp_no,
            dept_name=d.dept_name,
            dr_name=d.dr_name,
            cash_fallback=cash,
            invono=invono,
            equipment_failure_id=failure_id,
            created_at=now,
        )
        try:
            with uow.session.begin_nested():
                uow.session.add(visit)
        except IntegrityError:  # the same receipt recorded by a concurrent request
            raise equipment.receipt_recorded() from None
        uow.audit(
            caller.record(
                channel=caller.channel,
                action="his.register",
                person_id=who.person.id,
                subject=visit.mdtrt_id,
            )
        )
        return {
            "data": {"mdtrt_id": visit.mdtrt_id, "psn_no": psn_no, "ipt_otp_no": visit.ipt_otp_no}
        }

    return once(uow, caller, msg, work)


@use_case
def cancel_registration(
    uow: UnitOfWork,
    caller: Caller,
    *,
    msg: Message,
    data: inputs.CancelRegistration | Mapping[str, Any],
) -> dict[str, Any]:
    """2202."""
    d = inputs.CancelRegistration.read(data, "input.data")

    def work() -> dict[str, Any]:
        visit = _visit(uow, caller, d.mdtrt_id, d.psn_no)
        if visit.status != "registered":
            raise _refuse(
                "visit.settled",
                "已结算的就诊不能撤销登记，请先撤销结算",
                "a settled visit cannot be cancelled; cancel the settlement first",
                "mdtrt_id",
            )
        visit.status = "cancelled"
        uow.audit(
            caller.record(
                channel=caller.channel,
                action="his.register_cancel",
                person_id=visit.person_id,
                subject=visit.mdtrt_id,
            )
        )
        return {}

    return once(uow, caller, msg, work)


@use_case
def visit_info(
    uow: UnitOfWork,
    caller: Caller,
    *,
    msg: Message,
    mdtrtinfo: inputs.VisitInfo | Mapping[str, Any],
    diseinfo: Sequence[inputs.Diagnosis | Mapping[str, Any]],
) -> dict[str, Any]:
    """2203: the visit's diagnoses."""
    info = inputs.VisitInfo.read(mdtrtinfo, "input.mdtrtinfo")
    diagnoses = [inputs.Diagnosis.read(d, f"input.diseinfo.{i}") for i, d in enumerate(diseinfo)]

    def work() -> dict[str, Any]:
        visit = _open(_visit(uow, caller, info.mdtrt_id, info.psn_no))
        visit.diagnoses = [
            {"diag_type": d.diag_type, "diag_code": d.diag_code, "diag_name": d.diag_name}
            for d in diagnoses
        ]
        if info.med_type:
            visit.med_type = info.med_type
        uow.audit(
            caller.record(
                channel=caller.channel,
                action="his.visit_info",
                person_id=visit.person_id,
                subject=visit.mdtrt_id,
            )
        )
        return {}

    return once(uow, caller, msg, work)


@use_case
def upload_fees(
    uow: UnitOfWork,
    caller: Caller,
    *,
    msg: Message,
    lines: Sequence[inputs.FeeLine | Mapping[str, Any]],
) -> dict[str, Any]:
    """2204: fee details, each classified by the catalogue of the visit's area."""
    fees = inputs.FeeUploadInput.read({"feedetail": list(lines)}, "input").feedetail

    def work() -> dict[str, Any]:
        out = []
        visits: dict[str, Visit] = {}
        now = uow.clock.now()
        for i, line in enumerate(fees):
            if line.fee_ocur_time is not None and line.fee_ocur_time > now + CLOCK_SKEW:
                raise invalid(
                    f"input.feedetail.{i}.fee_ocur_time",
                    "费用发生时间晚于当前时间",
                    "fee_ocur_time is in the future",
                )
            if line.mdtrt_id not in visits:
                visits[line.mdtrt_id] = _open(_visit(uow, caller, line.mdtrt_id, line.psn_no))
        items = policy.catalogue_lookup(
            uow.session, area=caller.division[:6], codes=[line.med_list_codg for line in fees]
        )
        for i, line in enumerate(fees):
            where = f"input.feedetail.{i}"
            visit, amount, pric = visits[line.mdtrt_id], line.det_item_fee_sumamt, line.pric
            item = items.get(line.med_list_codg)
            category = item.category if item else None
            selfpay_bp = item.selfpay_bp if item else 0
            detail = FeeDetail(
                visit_id=visit.id,
                person_id=visit.person_id,
                feedetl_sn=line.feedetl_sn,
                chrg_bchno=line.chrg_bchno,
                list_code=line.med_list_codg,
                # 0.5 and 0.50 are one count: kept as written without trailing zeros
                cnt=format(line.cnt.normalize(), "f"),
                pric=pric,
                amount=amount,
                category=category,
                selfpay_bp=selfpay_bp,
                created_at=now,
            )
            try:
                with uow.session.begin_nested():
                    uow.session.add(detail)
            except IntegrityError:
                raise conflict(
                    "fee.duplicate",
                    "费用明细流水号重复",
                    f"feedetl_sn {detail.feedetl_sn} was uploaded already",
                    f"{where}.feedetl_sn",
                ) from None
            part = benefit.split_item(benefit.Item(amount, category, selfpay_bp))
            out.append(
                {
                    "feedetl_sn": detail.feedetl_sn,
                    "det_item_fee_sumamt": amount,
                    "cnt": detail.cnt,
                    "pric": pric,
                    "pric_uplmt_amt": item.price if item else 0,
                    "selfpay_prop": f"{selfpay_bp / 10000:.2f}"
                    if category == "B"
                    else ("1.00" if category != "A" else "0.00"),
                    "fulamt_ownpay_amt": part.fulamt_ownpay_amt,
                    "overlmt_amt": 0,
                    "preselfpay_amt": part.preselfpay_amt,
                    "inscp_scp_amt": part.inscp_scp_amt,
                    "chrgitm_lv": {"A": "01", "B": "02"}.get(category or "", "03"),
                    "med_chrgitm_type": "",
                }
            )
        for visit in visits.values():
            uow.audit(
                caller.record(
                    channel=caller.channel,
                    action="his.fee_upload",
                    person_id=visit.person_id,
                    subject=visit.mdtrt_id,
                )
            )
        return {"result": out}

    return once(uow, caller, msg, work)


@use_case
def cancel_fees(
    uow: UnitOfWork,
    caller: Caller,
    *,
    msg: Message,
    data: inputs.FeeCancel | Mapping[str, Any],
) -> dict[str, Any]:
    """2205: cancel one detail (feedetl_sn) or all of a visit's (feedetl_sn 0000 or empty)."""
    d = inputs.FeeCancel.read(data, "input.data")

    def work() -> dict[str, Any]:
        visit = _open(_visit(uow, caller, d.mdtrt_id, d.psn_no))
        sn = d.feedetl_sn
        stmt = select(FeeDetail).where(FeeDetail.visit_id == visit.id, FeeDetail.status == "active")
        if sn and sn != "0000":
            stmt = stmt.where(FeeDetail.feedetl_sn == sn)
        rows = list(uow.session.execute(stmt).scalars())
        if sn and sn != "0000" and not rows:
            raise _refuse("fee.not_found", "费用明细不存在", "no such fee detail", "feedetl_sn")
        for row in rows:
            row.status = "cancelled"
        uow.audit(
            caller.record(
                channel=caller.channel,
                action="his.fee_cancel",
                person_id=visit.person_id,
                subject=visit.mdtrt_id,
            )
        )
        return {}

    return once(uow, caller, msg, work)


# An extension of the national interface: no national transaction declares
# an equipment failure. infno 9901, input {"data": {"begntime", "endtime",
# "reason"}} (times yyyy-MM-dd HH:mm:ss), output {"data": {"failure_id",
# "begntime", "endtime"}}; idempotent by msgid like every changing code.
EQUIPMENT_FAILURE = "9901"


@use_case
def declare_failure(
    uow: UnitOfWork,
    caller: Caller,
    *,
    msg: Message,
    data: inputs.Failure | Mapping[str, Any],
) -> dict[str, Any]:
    """9901: the institution declares an equipment failure after the repair:
    cash visits inside it may be recorded (2201 with ``cash_fallback`` 1)."""

    d = inputs.Failure.read(data, "input.data")

    def work() -> dict[str, Any]:
        failure = equipment.declare_for_his(
            uow, caller, start=d.begntime, end=d.endtime, reason=d.reason
        )
        return {
            "data": {
                "failure_id": str(failure.id),
                "begntime": fmt_time(failure.start_at),
                "endtime": fmt_time(failure.end_at),
            }
        }

    return once(uow, caller, msg, work)


# ------------------------------------------------------------- settlement


@dataclass
class Read:
    """The facts of one (pre-)settlement request, and the person for the answer."""

    facts: rules.Facts
    person: Person | None


def read_facts(
    uow: UnitOfWork,
    caller: Caller,
    data: inputs.Settle | Mapping[str, Any],
    *,
    lock_family: bool = False,
) -> Read:
    """What ``domain.settlement.decide`` decides from, read through the ORM
    without locks: the write checks that it still holds. The bound family
    payers' accounts (read when the account is used) are locked with
    ``lock_family``, since the write checks only the person's own balance."""
    d = inputs.Settle.read(data, "input.data")
    psn_no, mdtrt_id = d.psn_no, d.mdtrt_id
    cert_type, cert_no, total = d.mdtrt_cert_type, d.mdtrt_cert_no, d.medfee_sumamt
    session = uow.session
    row = session.execute(select(Visit).where(Visit.mdtrt_id == mdtrt_id)).scalar_one_or_none()
    visit = visit_facts(row) if row else None
    who = identify(uow, caller, cert_type=cert_type, cert_no=cert_no)
    today = uow.clock.today()
    day = visit.day if visit else today
    enrolment = contributions.current_enrolment(session, who.person.id) if who.person else None
    person = (
        person_state(uow, who.person, enrolment, visit_area=caller.division[:6], day=day)
        if who.person
        else None
    )
    policies: list[benefit.Policy] = []
    used = rules.Usage()
    if who.person is not None and enrolment is not None:
        policies = policy.candidates(
            session, insutype=enrolment.insutype, area=enrolment.area, year=day.year
        )
        used = usage.read(
            session, person_id=who.person.id, insutype=enrolment.insutype, year=day.year
        )
    payers: list[family_rules.Payer] = []
    if who.person is not None and d.acct_used_flag == "1":
        payers = family_aid.payers(uow, who.person.id, lock=lock_family)
    fees: list[benefit.Item] = []
    resettled = False
    if row is not None:
        fees = [
            benefit.Item(f.amount, f.category, f.selfpay_bp)
            for f in session.execute(
                select(FeeDetail)
                .where(FeeDetail.visit_id == row.id, FeeDetail.status == "active")
                .order_by(FeeDetail.id)
            ).scalars()
        ]
        resettled = bool(row.cash_fallback) and (
            session.execute(select(Settlement.id).where(Settlement.visit_id == row.id)).first()
            is not None
        )
    return Read(
        rules.Facts(
            institution=institution(caller),
            psn_no=psn_no,
            visit=visit,
            person=person,
            card=who.card_state,
            enrolment=rules.Enrolment(
                enrolment.insutype, enrolment.psn_type, enrolment.area, enrolment.status
            )
            if enrolment
            else None,
            medfee_sumamt=total,
            fees=fees,
            policies=policies,
            usage=used,
            balance=ledger.individual_balance(session, who.person.id) if who.person else 0,
            use_account=d.acct_used_flag == "1",
            today=today,
            window_days=uow.settings.his_resettle_window_days,
            resettled_before=resettled,
            named=named(d),
            family=payers,
        ),
        who.person,
    )


def setlinfo(
    d: rules.Decision,
    p: Holder,
    *,
    setl_id: str,
    now: dt.datetime,
    acct_in_fund: bool,
) -> dict[str, Any]:
    """2206's and 2207's ``setlinfo``: the decision's numbers and the person."""
    s = d.split
    return {
        "mdtrt_id": d.visit.mdtrt_id,
        "setl_id": setl_id,
        "psn_no": str(p.id),
        "psn_name": p.name,
        "psn_cert_type": "01",
        "certno": p.certno,
        "gend": p.gender,
        "naty": "01",
        "brdy": p.birth_date.isoformat(),
        "age": age_on(p.birth_date, now.astimezone(CHINA).date()),
        "insutype": d.enrolment.insutype,
        "psn_type": PSN_TYPE_CODES.get(d.enrolment.psn_type, d.enrolment.psn_type),
        "setl_time": fmt_time(now),
        "med_type": d.visit.med_type,
        "medfee_sumamt": s.medfee_sumamt,
        "fulamt_ownpay_amt": s.fulamt_ownpay_amt,
        "overlmt_selfpay": 0,
        "preselfpay_amt": s.preselfpay_amt,
        "inscp_scp_amt": s.inscp_scp_amt,
        "act_pay_dedc": s.act_pay_dedc,
        "hifp_pay": s.hifp_pay,
        "pool_prop_selfpay": s.pool_prop_selfpay,
        "cvlserv_pay": 0,
        "hifes_pay": 0,
        "hifmi_pay": 0,
        "hifob_pay": 0,
        "maf_pay": 0,
        "oth_pay": 0,
        "fund_pay_sumamt": rules.wire_fund_pay(
            s.fund_pay_sumamt, s.acct_pay, includes_acct=acct_in_fund
        ),
        "psn_part_amt": s.psn_part_amt,
        "acct_pay": s.acct_pay,
        "psn_cash_pay": s.psn_cash_pay,
        "hosp_part_amt": 0,
        "balc": s.balc,
        "acct_mulaid_pay": s.acct_mulaid_pay,
        "medins_setl_id": "",
        "clr_optins": d.enrolment.area,
        "clr_way": "1",
        "clr_type": rules.clearing_type(d.visit.med_type),
        "refund_owed": d.refund_owed,
        "setl_type": d.kind.value,
    }


def setldetail(s: benefit.Split) -> list[dict[str, Any]]:
    return [
        {
            "fund_pay_type": "310100",
            "inscp_scp_amt": s.inscp_scp_amt,
            "fund_payamt": s.hifp_pay,
            "fund_pay_type_name": "基本医疗保险统筹基金",
        }
    ]


def answer(
    d: rules.Decision, p: Holder, *, setl_id: str, now: dt.datetime, acct_in_fund: bool
) -> dict[str, Any]:
    return {
        "setlinfo": setlinfo(d, p, setl_id=setl_id, now=now, acct_in_fund=acct_in_fund),
        "setldetail": setldetail(d.split),
    }


def settlement_write(
    d: rules.Decision, caller: Caller, *, msgid: str, setl_id: str, now: dt.datetime
) -> rules.SettlementWrite:
    """What 2207 writes, whichever implementation writes it."""
    s = d.split
    return rules.SettlementWrite(
        key=ledger_key(caller, msgid),
        kind=d.kind.value,
        person_id=d.person_id,
        memo=f"{caller.code} {d.visit.mdtrt_id}" + mulaid_memo(d),
        at=now,
        legs=d.legs,
        visit_id=d.visit.id,
        insutype=d.enrolment.insutype,
        year=d.year,
        usage_seen=d.usage_seen,
        usage_delta=d.usage_delta,
        balance_seen=d.balance_seen,
        settlement={
            "setl_id": setl_id,
            "person_id": d.person_id,
            "institution_code": caller.code,
            "visit_id": d.visit.id,
            "mdtrt_id": d.visit.mdtrt_id,
            "msgid": msgid,
            "kind": d.kind.value,
            "insutype": d.enrolment.insutype,
            "psn_type": d.enrolment.psn_type,
            "med_type": d.visit.med_type,
            "year": d.year,
            "setl_time": now,
            "medfee_sumamt": s.medfee_sumamt,
            "fulamt_ownpay_amt": s.fulamt_ownpay_amt,
            "preselfpay_amt": s.preselfpay_amt,
            "inscp_scp_amt": s.inscp_scp_amt,
            "act_pay_dedc": s.act_pay_dedc,
            "hifp_pay": s.hifp_pay,
            "fund_pay_sumamt": s.fund_pay_sumamt,
            "psn_part_amt": s.psn_part_amt,
            "acct_pay": s.acct_pay,
            "psn_cash_pay": s.psn_cash_pay,
            "balc": s.balc,
            "refund_owed": d.refund_owed,
            "status": "settled",
        },
    )


def mulaid_memo(d: rules.Decision) -> str:
    """Whose accounts paid for the person, in the entry's memo (the legs
    carry the same by person id)."""
    if not d.mulaid:
        return ""
    paid = ", ".join(f"{holder}:{amount}" for holder, amount in d.mulaid)
    return f" 家庭共济 family aid for {d.person_id} by {paid}"


@use_case
def presettle(
    uow: UnitOfWork, caller: Caller, *, data: inputs.Settle | Mapping[str, Any]
) -> dict[str, Any]:
    """2206: what 2207 would pay now; posts nothing."""
    read = read_facts(uow, caller, data)
    d = rules.decide(read.facts)
    assert read.person is not None
    uow.audit(
        caller.record(
            channel=caller.channel,
            action="his.presettle",
            person_id=d.person_id,
            subject=d.visit.mdtrt_id,
        )
    )
    return answer(
        d,
        holder(read.person),
        setl_id="",
        now=uow.clock.now(),
        acct_in_fund=uow.settings.his_fund_pay_includes_acct,
    )


# A settlement whose facts changed between the read and the write (another
# settlement of the same person, a payment from the account) is decided again.
RETRIES = 5


def _busy() -> DomainError:
    return DomainError(
        code="settlement.busy",
        zh="该人员正在结算，请稍后重试",
        en="settlements of this person are in progress; try again",
        status=409,
    )


@use_case
def record_refusal(uow: UnitOfWork, *, caller: Caller, infno: str, code: str) -> None:
    """Keep that a request of ``infno`` was refused and why (its code), for
    the bureau's dashboard (issue 17): the refused request's own transaction
    was rolled back, so this is a transaction of its own."""
    uow.session.add(
        SettlementRefusal(
            institution_code=caller.code,
            area=caller.division,
            infno=infno,
            code=code[:60],
            at=uow.clock.now(),
        )
    )


class RefusalsKept(UseCase[P, R]):
    """A use case whose refusals are kept (``record_refusal``) once its own
    transaction has rolled back; the refusal itself is raised unchanged. An
    unknown outcome is no refusal; composition (``.step``) records nothing,
    the outer use case answers for itself."""

    def __init__(self, infno: str, step: Any) -> None:
        super().__init__(step)
        self.infno = infno

    def __call__(self, uow: UnitOfWork, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return super().__call__(uow, *args, **kwargs)
        except DomainError as exc:
            caller = args[0] if args else None
            if isinstance(caller, Caller) and exc.code != "system.outcome_unknown":
                try:
                    record_refusal(uow, caller=caller, infno=self.infno, code=exc.code)
                except DomainError:
                    # the database went away after refusing: the answer
                    # stays the refusal, the count misses one
                    log.warning("refusal %s of %s not recorded", exc.code, caller.code)
            raise


def refusals_kept(
    infno: str,
) -> Callable[[Callable[Concatenate[UnitOfWork, P], R]], RefusalsKept[P, R]]:
    def wrap(step: Callable[Concatenate[UnitOfWork, P], R]) -> RefusalsKept[P, R]:
        return RefusalsKept(infno, step)

    return wrap


@refusals_kept("2207")
def settle(
    uow: UnitOfWork, caller: Caller, *, msg: Message, data: inputs.Settle | Mapping[str, Any]
) -> dict[str, Any]:
    """2207: settle a visit; one ledger entry, once per msgid. A cash visit
    is re-settled: the account and the fund pay what they would have paid
    then, and the institution owes the person that much back."""
    data = inputs.Settle.read(data, "input.data")

    def work() -> dict[str, Any]:
        write = backends.of(uow.session).settle
        for _ in range(RETRIES):
            read = read_facts(uow, caller, data, lock_family=True)
            d = rules.decide(read.facts)
            assert read.person is not None
            now = uow.clock.now()
            setl_id = _new_id("ST", caller, now)
            try:
                entry_id = write(
                    uow, settlement_write(d, caller, msgid=msg.msgid, setl_id=setl_id, now=now)
                )
            except backends.Stale:
                uow.session.expire_all()  # read again what changed under us
                continue
            if d.mulaid:
                family_aid.record_settlement(
                    uow,
                    relative_id=d.person_id,
                    mulaid=d.mulaid,
                    entry_id=entry_id,
                    setl_id=setl_id,
                    institution_code=caller.code,
                )
            uow.audit(
                caller.record(
                    channel=caller.channel,
                    action=f"his.{d.kind.value}",
                    person_id=d.person_id,
                    subject=setl_id,
                )
            )
            return answer(
                d,
                holder(read.person),
                setl_id=setl_id,
                now=now,
                acct_in_fund=uow.settings.his_fund_pay_includes_acct,
            )
        raise _busy()

    return once(uow, caller, msg, work)


def _settlement(
    uow: UnitOfWork, caller: Caller, ref: inputs.SettlementRef, lock: bool = False
) -> Settlement:
    """The institution's own settlement of the named person and visit:
    another institution's is refused, changing nothing."""
    setl_id, psn_no = ref.setl_id, ref.psn_no
    stmt = select(Settlement).where(Settlement.setl_id == setl_id)
    if lock:
        stmt = stmt.with_for_update()
    row = uow.session.execute(stmt).scalar_one_or_none()
    if row is None:
        raise _refuse(
            "settlement.not_found", "结算记录不存在", "no such settlement (setl_id)", "setl_id"
        )
    if row.institution_code != caller.code:
        raise DomainError(
            code="settlement.foreign",
            zh="该结算不属于本机构",
            en="this settlement belongs to another institution",
            field="setl_id",
            status=403,
        )
    if str(row.person_id) != psn_no:
        raise _refuse(
            "settlement.person_mismatch",
            "人员编号与结算记录不符",
            "psn_no does not match the settlement",
            "psn_no",
        )
    if row.mdtrt_id != ref.mdtrt_id:
        raise _refuse(
            "settlement.visit_mismatch",
            "就诊ID与结算记录不符",
            "mdtrt_id does not match the settlement",
            "mdtrt_id",
        )
    return row


def settlement_info(uow: UnitOfWork, row: Settlement, sign: int = 1) -> dict[str, Any]:
    """A stored settlement as 5203 shows it (2208: its amounts negated)."""
    p = uow.session.get(Person, row.person_id)
    assert p is not None
    amounts = rules.settlement_amounts(row, sign)
    amounts["fund_pay_sumamt"] = sign * rules.wire_fund_pay(
        row.fund_pay_sumamt, row.acct_pay, includes_acct=uow.settings.his_fund_pay_includes_acct
    )
    return {
        "setl_id": row.setl_id,
        "mdtrt_id": row.mdtrt_id,
        "psn_no": str(p.id),
        "psn_name": p.name,
        "psn_cert_type": "01",
        "certno": p.certno,
        "gend": p.gender,
        "brdy": p.birth_date.isoformat(),
        "insutype": row.insutype,
        "psn_type": PSN_TYPE_CODES.get(row.psn_type, row.psn_type),
        "setl_time": fmt_time(row.setl_time),
        "med_type": row.med_type,
        "setl_type": row.kind,
        "setl_stas": "1" if row.status == "settled" else "0",
        "balc": ledger.individual_balance(uow.session, p.id),
        **amounts,
        "acct_mulaid_pay": sign * family_aid.mulaid_of(uow, row.setl_id),
    }


@use_case
def cancel_settlement(
    uow: UnitOfWork,
    caller: Caller,
    *,
    msg: Message,
    data: inputs.SettlementRef | Mapping[str, Any],
) -> dict[str, Any]:
    """2208: reverse a settlement exactly once."""
    ref = inputs.SettlementRef.read(data, "input.data")

    def work() -> dict[str, Any]:
        row = _settlement(uow, caller, ref, lock=True)
        if row.status != "settled":
            raise conflict(
                "ledger.already_reversed",
                "该结算已撤销",
                "this settlement was already cancelled",
                "setl_id",
            )
        visit = uow.session.execute(
            select(Visit).where(Visit.id == row.visit_id).with_for_update()
        ).scalar_one()
        entry = uow.session.get(LedgerEntry, row.entry_id)
        assert entry is not None
        row.status, row.cancelled_at = "cancelled", uow.clock.now()
        uow.session.flush()
        output = {"setlinfo": settlement_info(uow, row, sign=-1)}
        posted = ledger.reverse(
            uow, entry=entry, key=ledger_key(caller, msg.msgid), memo=f"cancel {row.setl_id}"
        )
        output["setlinfo"]["balc"] = ledger.individual_balance(uow.session, row.person_id)
        row.cancel_entry_id = posted.entry.id
        family_aid.reverse_settlement(uow, setl_id=row.setl_id, reversal_entry_id=posted.entry.id)
        usage.give_back(
            uow.session,
            person_id=row.person_id,
            insutype=row.insutype,
            year=row.year,
            delta=rules.Usage(row.act_pay_dedc, row.hifp_pay),
        )
        # an ordinary visit may be settled again; a cash receipt only once
        visit.status = "registered"
        uow.audit(
            caller.record(
                channel=caller.channel,
                action="his.settlement_cancel",
                person_id=row.person_id,
                subject=row.setl_id,
            )
        )
        return output

    return once(uow, caller, msg, work)


@use_case
def query_settlement(
    uow: UnitOfWork, caller: Caller, *, data: inputs.SettlementRef | Mapping[str, Any]
) -> dict[str, Any]:
    """5203: the settlement of the named person and visit (``mdtrt_id`` is
    checked as 2208 checks it)."""
    row = _settlement(uow, caller, inputs.SettlementRef.read(data, "input.data"))
    info = settlement_info(uow, row)
    uow.audit(
        caller.record(
            channel=caller.channel,
            action="his.settlement_query",
            person_id=row.person_id,
            subject=row.setl_id,
        )
    )
    return {
        "setlinfo": info,
        "setldetail": [
            {
                "fund_pay_type": "310100",
                "inscp_scp_amt": row.inscp_scp_amt,
                "fund_payamt": row.hifp_pay,
            }
        ],
    }


@use_case
def reconcile(
    uow: UnitOfWork, caller: Caller, *, data: inputs.Statement | Mapping[str, Any]
) -> dict[str, Any]:
    """3201: the institution's totals for a period of days (China time)
    against ours."""
    d = inputs.Statement.read(data, "input.data")
    # The totals come from one statement, so they are of one snapshot even
    # under READ COMMITTED (a second statement would need REPEATABLE READ).
    begin = dt.datetime.combine(d.stmt_begndate, dt.time(), CHINA)
    end = dt.datetime.combine(d.stmt_enddate, dt.time(), CHINA) + dt.timedelta(days=1)
    given = {
        "medfee_sumamt": d.medfee_sumamt,
        "fund_pay_sumamt": d.fund_pay_sumamt,
        "acct_pay": d.acct_pay,
    }
    given_cnt = d.fixmedins_setl_cnt
    stmt = select(
        func.coalesce(func.sum(Settlement.medfee_sumamt), 0),
        func.coalesce(func.sum(Settlement.fund_pay_sumamt), 0),
        func.coalesce(func.sum(Settlement.acct_pay), 0),
        func.count(Settlement.id),
    ).where(
        Settlement.institution_code == caller.code,
        Settlement.status == "settled",
        Settlement.setl_time >= begin,
        Settlement.setl_time < end,
    )
    if d.insutype:
        stmt = stmt.where(Settlement.insutype == d.insutype)
    med, fund, acct, cnt = uow.session.execute(stmt).one()
    ours = {
        "medfee_sumamt": int(med),
        "fund_pay_sumamt": rules.wire_fund_pay(
            int(fund), int(acct), includes_acct=uow.settings.his_fund_pay_includes_acct
        ),
        "acct_pay": int(acct),
    }
    diffs = [
        f"{k} {given[k] / 100:.2f} != {ours[k] / 100:.2f}" for k in ours if given[k] != ours[k]
    ]
    if given_cnt != int(cnt):
        diffs.append(f"fixmedins_setl_cnt {given_cnt} != {cnt}")
    # kept for the bureau's dashboard: the differences by institution
    uow.session.add(
        Reconciliation(
            institution_code=caller.code,
            area=caller.division,
            begin_date=d.stmt_begndate,
            end_date=d.stmt_enddate,
            insutype=d.insutype or "",
            given_medfee=given["medfee_sumamt"],
            our_medfee=ours["medfee_sumamt"],
            given_fund=given["fund_pay_sumamt"],
            our_fund=ours["fund_pay_sumamt"],
            given_acct=given["acct_pay"],
            our_acct=ours["acct_pay"],
            given_count=given_cnt,
            our_count=int(cnt),
            balanced=not diffs,
            at=uow.clock.now(),
        )
    )
    return {
        "stmtinfo": {
            "setl_optins": d.setl_optins or caller.division[:6],
            "stmt_rslt": "1" if diffs else "0",
            "stmt_rslt_dscr": "; ".join(diffs) if diffs else "对账一致 / balanced",
        }
    }
