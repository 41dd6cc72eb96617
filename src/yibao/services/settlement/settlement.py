"""Settlement at designated institutions (issue 4): sign-in, person
information, registration, fee details, (pre-)settlement, cancel,
reconciliation and query; the cash visit after an equipment failure and its
re-settlement (seed 000, part three, item 3).

The HIS channel parses the platform's envelope and calls these; every rule
is here. Amounts are integer fen; the channel turns them into yuan.
Changing calls are idempotent by (institution, msgid): the first answer is
kept and given again.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from yibao.clock import CHINA
from yibao.domain import benefit
from yibao.domain import ledger as codes
from yibao.domain.actors import Channel
from yibao.domain.areas import same_pool
from yibao.domain.errors import DomainError, conflict, invalid
from yibao.domain.money import yuan_to_fen
from yibao.services.access.institution_auth import Caller
from yibao.services.cards import evoucher
from yibao.services.contributions import contributions
from yibao.services.ledger import ledger
from yibao.services.registry.registry import age_on
from yibao.services.settlement import policy
from yibao.store.models import (
    BenefitUsage,
    Card,
    Employer,
    Enrolment,
    FeeDetail,
    HisMessage,
    HisSignIn,
    LedgerEntry,
    Person,
    Settlement,
    Visit,
)
from yibao.store.uow import UnitOfWork

_Row = TypeVar("_Row", Visit, Settlement)

# the platform's person type codes (psn_type) for yibao's categories
PSN_TYPE_CODES = {"employee": "11", "flexible": "11", "retiree": "12", "resident": "15"}
INSU_STAS = {"active": "1", "suspended": "2", "terminated": "4"}
CERT_TYPES = {"01", "02", "03"}


def _refuse(code: str, zh: str, en: str, field: str | None = None) -> DomainError:
    return DomainError(code=code, zh=zh, en=en, field=field, status=409)


def fmt_time(moment: dt.datetime) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def parse_time(value: object, field: str) -> dt.datetime:
    text = str(value or "").strip()
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, pattern).replace(tzinfo=CHINA)
        except ValueError:
            continue
    raise invalid(field, "时间格式应为yyyy-MM-dd HH:mm:ss", "a time is yyyy-MM-dd HH:mm:ss")


def need(data: dict[str, Any], name: str, prefix: str = "input.data") -> str:
    value = data.get(name)
    if value is None or str(value).strip() == "":
        raise invalid(f"{prefix}.{name}", f"缺少字段{name}", f"missing field {name}", "missing")
    return str(value).strip()


# ------------------------------------------------------------- idempotency


def remembered(uow: UnitOfWork, caller: Caller, msgid: str) -> dict[str, Any] | None:
    row = uow.session.execute(
        select(HisMessage.output).where(
            HisMessage.institution_code == caller.code, HisMessage.msgid == msgid
        )
    ).first()
    return dict(row[0]) if row else None


def once(
    uow: UnitOfWork,
    caller: Caller,
    *,
    msgid: str,
    infno: str,
    work: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Run a changing transaction once per msgid; a retry gets the first answer."""
    with uow:
        first = remembered(uow, caller, msgid)
        if first is not None:
            return first
        row = HisMessage(
            institution_code=caller.code, msgid=msgid, infno=infno, output={}, at=uow.clock.now()
        )
        try:
            # Claim the msgid first: a concurrent retry waits here on the
            # unique key and then finds the first one's answer.
            with uow.session.begin_nested():
                uow.session.add(row)
        except IntegrityError:
            return remembered(uow, caller, msgid) or {}
        output = work()
        row.output = output
        uow.commit()
        return output


# ------------------------------------------------------------- sign-in


def sign_in(uow: UnitOfWork, caller: Caller, *, opter_no: str) -> dict[str, Any]:
    with uow:
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
        from yibao.services.access.institution_auth import purge_nonces

        purge_nonces(uow)  # a natural moment to forget nonces past their window
        uow.commit()
        return {"signinoutb": {"sign_time": fmt_time(now), "sign_no": sign_no}}


def check_sign_in(uow: UnitOfWork, caller: Caller, sign_no: str) -> None:
    """Business codes need a current sign-in of the same institution."""
    if caller.signed_in is True:  # checked already, with the gateway's lookup
        return
    if caller.signed_in is False:
        raise _not_signed_in()
    require_sign_in(uow, caller, sign_no)


def _not_signed_in() -> DomainError:
    return DomainError(
        code="his.not_signed_in",
        zh="未签到或签到编号无效，请先签到(9001)",
        en="sign_no is not a current sign-in of this institution; sign in with 9001",
        field="sign_no",
        status=401,
    )


def require_sign_in(uow: UnitOfWork, caller: Caller, sign_no: str) -> HisSignIn:
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
    return row


def sign_out(uow: UnitOfWork, caller: Caller, *, sign_no: str) -> dict[str, Any]:
    with uow:
        row = require_sign_in(uow, caller, sign_no)
        now = uow.clock.now()
        row.signed_out_at = now
        uow.commit()
        return {"signoutoutb": {"sign_time": fmt_time(now)}}


# ------------------------------------------------------------- who is it


@dataclass
class Insured:
    person: Person
    enrolment: Enrolment | None
    card: Card | None


def _person_by_psn_no(uow: UnitOfWork, psn_no: str) -> Person:
    person = None
    if psn_no.isdigit() and len(psn_no) < 19:
        person = uow.session.get(Person, int(psn_no))
    if person is None:
        raise _refuse("person.not_found", "未找到该参保人员", "no such person", "psn_no")
    return person


def identify(
    uow: UnitOfWork, caller: Caller, *, cert_type: str, cert_no: str, card_sn: str = ""
) -> Insured:
    """The person behind a certificate; a card must be active and the person's."""
    if cert_type not in CERT_TYPES:
        raise invalid(
            "mdtrt_cert_type",
            "就诊凭证类型应为01、02或03",
            "mdtrt_cert_type is 01, 02 or 03",
        )
    card: Card | None = None
    if cert_type == "01":
        person = uow.session.get(
            Person, evoucher.redeem(uow, token=cert_no, institution=caller.code)
        )
    elif cert_type == "02":
        person = uow.session.execute(
            select(Person).where(Person.certno == cert_no.upper())
        ).scalar_one_or_none()
    else:
        card = uow.session.execute(select(Card).where(Card.card_no == cert_no)).scalar_one_or_none()
        person = card.person if card else None
        check_card(card)
    person = check_person(person)
    return Insured(person, contributions.current_enrolment(uow.session, person.id), card)


def check_card(card: Card | None) -> None:
    """A card (certificate type 03) is usable only while issued to its holder."""
    if card is not None and card.status != "issued":
        raise _refuse(
            f"card.{card.status}",
            {"lost": "该卡已挂失", "frozen": "该卡已冻结", "cancelled": "该卡已注销"}.get(
                card.status, "该卡尚未发放，不能使用"
            ),
            f"the card is {card.status}; it cannot be used",
            "mdtrt_cert_no",
        )


def check_person(person: Person | None) -> Person:
    """The certificate's person exists and is still insured here."""
    if person is None:
        raise _refuse(
            "person.not_found",
            "未找到该凭证对应的参保人员",
            "no person for this certificate",
            "mdtrt_cert_no",
        )
    if person.status != "active":
        raise _refuse(
            f"person.{person.status}",
            {
                "deceased": "该参保人已死亡",
                "emigrated": "该参保人已出国定居",
                "transferred_out": "该参保人医保关系已转出",
            }.get(person.status, "参保关系已终止"),
            f"the person is {person.status}; insurance has ended",
            "mdtrt_cert_no",
        )
    return person


def check_enrolment(e: Enrolment | None) -> Enrolment:
    """Benefits are paid for an active enrolment only."""
    if e is None or e.status == "terminated":
        raise _refuse("enrolment.terminated", "参保关系已终止", "the person's insurance has ended")
    if e.status == "suspended":
        raise _refuse(
            "enrolment.suspended",
            "欠费暂停，暂停享受医保待遇",
            "benefits are suspended for unpaid contributions",
        )
    return e


def require_benefits(uow: UnitOfWork, caller: Caller, who: Insured, day: dt.date) -> Enrolment:
    """Benefits are paid for an active enrolment, locally or with a cross-area filing."""
    e = check_enrolment(who.enrolment)
    visit_area = caller.division[:6]
    if not same_pool(e.area, visit_area) and not policy.has_filing(
        uow.session, person_id=who.person.id, visit_area=visit_area, day=day
    ):
        raise _refuse(
            "person.other_area",
            f"参保地{e.area}不在本统筹区，且未办理异地就医备案",
            f"insured in area {e.area} with no cross-area filing for {visit_area}",
            "insuplc_admdvs",
        )
    return e


def _employer_name(uow: UnitOfWork, e: Enrolment | None) -> str:
    if e is None or e.employer_id is None:
        return ""
    emp = uow.session.get(Employer, e.employer_id)
    return emp.name if emp else ""


def person_info(
    uow: UnitOfWork, caller: Caller, *, cert_type: str, cert_no: str, card_sn: str = ""
) -> dict[str, Any]:
    """1101: base information and insurance information with the balance."""
    with uow:
        who = identify(uow, caller, cert_type=cert_type, cert_no=cert_no, card_sn=card_sn)
        p, e = who.person, who.enrolment
        output = person_info_output(
            p,
            e,
            balance=ledger.individual_balance(uow.session, p.id),
            emp_name=_employer_name(uow, e),
            today=uow.clock.today(),
        )
        uow.audit(
            caller.record(
                channel=Channel.HIS, action="his.person_info", person_id=p.id, subject=caller.code
            )
        )
        uow.commit()
        return output


def person_info_output(
    p: Person, e: Enrolment | None, *, balance: int, emp_name: str, today: dt.date
) -> dict[str, Any]:
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


def _visit(
    uow: UnitOfWork, caller: Caller, mdtrt_id: str, psn_no: str | None, lock: bool = True
) -> Visit:
    stmt = select(Visit).where(Visit.mdtrt_id == mdtrt_id)
    if lock:
        stmt = stmt.with_for_update()
    visit = uow.session.execute(stmt).scalar_one_or_none()
    if visit is None:
        raise _refuse("visit.not_found", "就诊记录不存在", "no such visit (mdtrt_id)", "mdtrt_id")
    return check_owned(visit, caller, psn_no, "visit")


# field, what it is (zh for the two refusals)
_OWNED = {
    "visit": ("mdtrt_id", "该就诊记录不属于本机构", "人员编号与就诊记录不符"),
    "settlement": ("setl_id", "该结算不属于本机构", "人员编号与结算记录不符"),
}


def check_owned(
    row: _Row, caller: Caller, psn_no: str | None, what: Literal["visit", "settlement"]
) -> _Row:
    """A visit or settlement (``what``) is the asking institution's, and the
    person's the HIS names: another institution's is refused, changing nothing."""
    field, zh_foreign, zh_person = _OWNED[what]
    if row.institution_code != caller.code:
        raise DomainError(
            code=f"{what}.foreign",
            zh=zh_foreign,
            en=f"this {what} belongs to another institution",
            field=field,
            status=403,
        )
    if psn_no is not None and str(row.person_id) != psn_no:
        raise _refuse(
            f"{what}.person_mismatch",
            zh_person,
            f"psn_no does not match the {what}",
            "psn_no",
        )
    return row


def register(
    uow: UnitOfWork, caller: Caller, *, msgid: str, data: dict[str, Any]
) -> dict[str, Any]:
    """2201: register an outpatient visit. With ``cash_fallback`` 1 and an
    ``invono`` it records a visit paid in cash during an equipment failure,
    to be re-settled later (seed 000, part three, item 3)."""

    def work() -> dict[str, Any]:
        psn_no = need(data, "psn_no")
        cert_type = need(data, "mdtrt_cert_type")
        cert_no = need(data, "mdtrt_cert_no")
        begntime = parse_time(need(data, "begntime"), "input.data.begntime")
        cash = str(data.get("cash_fallback") or "0") == "1"
        invono = str(data.get("invono") or "").strip() or None
        now = uow.clock.now()
        if cash:
            if not invono:
                raise invalid(
                    "input.data.invono",
                    "现金就诊须填写发票号",
                    "a cash visit needs invono",
                    "missing",
                )
            _check_window(uow, begntime)
        elif begntime > now + dt.timedelta(minutes=10):
            raise invalid(
                "input.data.begntime", "就诊时间晚于当前时间", "begntime is in the future"
            )
        who = identify(uow, caller, cert_type=cert_type, cert_no=cert_no)
        if str(who.person.id) != psn_no:
            raise _refuse(
                "visit.person_mismatch",
                "人员编号与凭证不符",
                "psn_no does not match the certificate",
                "psn_no",
            )
        enrolment = require_benefits(uow, caller, who, begntime.astimezone(CHINA).date())
        insutype = str(data.get("insutype") or enrolment.insutype)
        if insutype != enrolment.insutype:
            raise _refuse(
                "visit.insutype",
                "险种与参保信息不符",
                f"the person is insured under {enrolment.insutype}",
                "insutype",
            )
        if (
            cash
            and uow.session.execute(
                select(Visit.id).where(
                    Visit.institution_code == caller.code,
                    Visit.invono == invono,
                    Visit.cash_fallback,
                )
            ).first()
        ):
            raise conflict(
                "visit.receipt_recorded",
                "该发票已登记",
                "this receipt is already recorded",
                "invono",
            )
        visit = Visit(
            mdtrt_id=_new_id("MD", caller, now),
            person_id=who.person.id,
            institution_code=caller.code,
            insutype=insutype,
            med_type=str(data.get("med_type") or "11"),
            begntime=begntime,
            ipt_otp_no=str(data.get("ipt_otp_no") or ""),
            dept_name=str(data.get("dept_name") or ""),
            dr_name=str(data.get("dr_name") or ""),
            cash_fallback=cash,
            invono=invono,
            created_at=now,
        )
        uow.session.add(visit)
        uow.session.flush()
        uow.audit(
            caller.record(
                channel=Channel.HIS,
                action="his.register",
                person_id=who.person.id,
                subject=visit.mdtrt_id,
            )
        )
        return {
            "data": {"mdtrt_id": visit.mdtrt_id, "psn_no": psn_no, "ipt_otp_no": visit.ipt_otp_no}
        }

    return once(uow, caller, msgid=msgid, infno="2201", work=work)


def _check_window(uow: UnitOfWork, begntime: dt.datetime) -> None:
    window = uow.settings.his_resettle_window_days
    age = (uow.clock.today() - begntime.astimezone(CHINA).date()).days
    if age > window:
        raise _refuse(
            "resettle.window_passed",
            f"已超过{window}天的重新结算期限",
            f"the re-settlement window of {window} days has passed",
            "begntime",
        )
    if age < 0:
        raise invalid("input.data.begntime", "就诊时间晚于当前时间", "begntime is in the future")


def cancel_registration(
    uow: UnitOfWork, caller: Caller, *, msgid: str, data: dict[str, Any]
) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        visit = _visit(uow, caller, need(data, "mdtrt_id"), need(data, "psn_no"))
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
                channel=Channel.HIS,
                action="his.register_cancel",
                person_id=visit.person_id,
                subject=visit.mdtrt_id,
            )
        )
        return {}

    return once(uow, caller, msgid=msgid, infno="2202", work=work)


def visit_info(
    uow: UnitOfWork, caller: Caller, *, msgid: str, mdtrtinfo: dict[str, Any], diseinfo: list[Any]
) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        visit = _visit(
            uow,
            caller,
            need(mdtrtinfo, "mdtrt_id", "input.mdtrtinfo"),
            need(mdtrtinfo, "psn_no", "input.mdtrtinfo"),
        )
        if visit.status != "registered":
            raise _refuse(
                "visit.closed",
                "就诊已结算或已撤销",
                "the visit is settled or cancelled",
                "mdtrt_id",
            )
        diagnoses = []
        for i, d in enumerate(diseinfo):
            if not isinstance(d, dict):
                raise invalid(f"input.diseinfo.{i}", "诊断信息格式错误", "a diagnosis is an object")
            diagnoses.append(
                {
                    "diag_type": str(d.get("diag_type") or ""),
                    "diag_code": need(d, "diag_code", f"input.diseinfo.{i}"),
                    "diag_name": str(d.get("diag_name") or ""),
                }
            )
        visit.diagnoses = diagnoses
        if mdtrtinfo.get("med_type"):
            visit.med_type = str(mdtrtinfo["med_type"])
        uow.audit(
            caller.record(
                channel=Channel.HIS,
                action="his.visit_info",
                person_id=visit.person_id,
                subject=visit.mdtrt_id,
            )
        )
        return {}

    return once(uow, caller, msgid=msgid, infno="2203", work=work)


def upload_fees(uow: UnitOfWork, caller: Caller, *, msgid: str, lines: list[Any]) -> dict[str, Any]:
    """2204: fee details, each classified by the catalogue of the visit's area."""

    def work() -> dict[str, Any]:
        if not lines:
            raise invalid("input.feedetail", "缺少费用明细", "missing feedetail", "missing")
        out = []
        visits: dict[str, Visit] = {}
        now = uow.clock.now()
        parsed = []
        for i, line in enumerate(lines):
            where = f"input.feedetail.{i}"
            if not isinstance(line, dict):
                raise invalid(where, "费用明细格式错误", "a fee detail is an object")
            mdtrt_id = need(line, "mdtrt_id", where)
            if mdtrt_id not in visits:
                visits[mdtrt_id] = _visit(uow, caller, mdtrt_id, need(line, "psn_no", where))
                if visits[mdtrt_id].status != "registered":
                    raise _refuse(
                        "visit.closed",
                        "就诊已结算或已撤销",
                        "the visit is settled or cancelled",
                        "mdtrt_id",
                    )
            amount = yuan_to_fen(
                need(line, "det_item_fee_sumamt", where), field=f"{where}.det_item_fee_sumamt"
            )
            pric = yuan_to_fen(line.get("pric") or 0, field=f"{where}.pric")
            if amount < 0:
                raise invalid(
                    f"{where}.det_item_fee_sumamt", "金额不能为负", "an amount is not negative"
                )
            parsed.append((line, visits[mdtrt_id], amount, pric, where))
        items = policy.catalogue_lookup(
            uow.session,
            area=caller.division[:6],
            codes=[str(p[0].get("med_list_codg") or "") for p in parsed],
        )
        for line, visit, amount, pric, where in parsed:
            code = need(line, "med_list_codg", where)
            item = items.get(code)
            category = item.category if item else None
            selfpay_bp = item.selfpay_bp if item else 0
            detail = FeeDetail(
                visit_id=visit.id,
                person_id=visit.person_id,
                feedetl_sn=need(line, "feedetl_sn", where),
                chrg_bchno=str(line.get("chrg_bchno") or ""),
                list_code=code,
                cnt=str(line.get("cnt") or "1"),
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
                    channel=Channel.HIS,
                    action="his.fee_upload",
                    person_id=visit.person_id,
                    subject=visit.mdtrt_id,
                )
            )
        return {"result": out}

    return once(uow, caller, msgid=msgid, infno="2204", work=work)


def cancel_fees(
    uow: UnitOfWork, caller: Caller, *, msgid: str, data: dict[str, Any]
) -> dict[str, Any]:
    """2205: cancel one detail (feedetl_sn) or all of a visit's (feedetl_sn 0000 or empty)."""

    def work() -> dict[str, Any]:
        visit = _visit(uow, caller, need(data, "mdtrt_id"), need(data, "psn_no"))
        if visit.status != "registered":
            raise _refuse(
                "visit.closed",
                "就诊已结算或已撤销",
                "the visit is settled or cancelled",
                "mdtrt_id",
            )
        sn = str(data.get("feedetl_sn") or "").strip()
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
                channel=Channel.HIS,
                action="his.fee_cancel",
                person_id=visit.person_id,
                subject=visit.mdtrt_id,
            )
        )
        return {}

    return once(uow, caller, msgid=msgid, infno="2205", work=work)


# ------------------------------------------------------------- settlement


@dataclass
class Computed:
    visit: Visit
    who: Insured
    enrolment: Enrolment
    year: int
    split: benefit.Split
    kind: str
    usage: BenefitUsage | None


def _usage(
    uow: UnitOfWork, person_id: int, insutype: str, year: int, lock: bool
) -> BenefitUsage | None:
    stmt = select(BenefitUsage).where(
        BenefitUsage.person_id == person_id,
        BenefitUsage.insutype == insutype,
        BenefitUsage.year == year,
    )
    if not lock:
        return uow.session.execute(stmt).scalar_one_or_none()
    row = uow.session.execute(stmt.with_for_update()).scalar_one_or_none()
    if row is None:
        try:
            with uow.session.begin_nested():
                uow.session.add(
                    BenefitUsage(
                        person_id=person_id,
                        insutype=insutype,
                        year=year,
                        deductible_used=0,
                        fund_used=0,
                    )
                )
        except IntegrityError:
            pass
        row = uow.session.execute(stmt.with_for_update()).scalar_one()
    return row


def check_open(visit: Visit) -> None:
    if visit.status != "registered":
        raise _refuse(
            "visit.settled",
            "该就诊已结算或已撤销",
            "this visit is already settled or cancelled",
            "mdtrt_id",
        )


def check_visit_person(visit: Visit, person: Person) -> None:
    if person.id != visit.person_id:
        raise _refuse(
            "visit.person_mismatch",
            "凭证与就诊人员不符",
            "the certificate is not the visit's person",
            "mdtrt_cert_no",
        )


def check_fees(items: list[benefit.Item], total: int) -> list[benefit.Item]:
    """The visit has fee details, and they add up to the total the HIS sends."""
    if not items:
        raise _refuse(
            "fee.none",
            "未上传费用明细",
            "no fee details uploaded for this visit (2204)",
            "mdtrt_id",
        )
    if sum(i.amount for i in items) != total:
        raise _refuse(
            "fee.total_mismatch",
            "医疗费总额与费用明细合计不符",
            f"medfee_sumamt differs from the fee details' total {sum(i.amount for i in items) / 100:.2f}",
            "medfee_sumamt",
        )
    return items


def compute(uow: UnitOfWork, caller: Caller, data: dict[str, Any], *, lock: bool) -> Computed:
    """Everything 2206 and 2207 share: checks, the policy and the split."""
    psn_no = need(data, "psn_no")
    visit = _visit(uow, caller, need(data, "mdtrt_id"), psn_no, lock=lock)
    check_open(visit)
    who = identify(
        uow, caller, cert_type=need(data, "mdtrt_cert_type"), cert_no=need(data, "mdtrt_cert_no")
    )
    check_visit_person(visit, who.person)
    day = visit.begntime.astimezone(CHINA).date()
    kind = "settlement"
    if visit.cash_fallback:
        kind = "resettlement"
        _check_window(uow, visit.begntime)
        if uow.session.execute(
            select(Settlement.id).where(Settlement.visit_id == visit.id)
        ).first():
            raise _refuse(
                "resettle.once",
                "该现金收据已重新结算过，只能重新结算一次",
                "this cash receipt was re-settled already; only once",
                "mdtrt_id",
            )
    enrolment = require_benefits(uow, caller, who, day)
    total = yuan_to_fen(need(data, "medfee_sumamt"), field="input.data.medfee_sumamt")
    fees = list(
        uow.session.execute(
            select(FeeDetail)
            .where(FeeDetail.visit_id == visit.id, FeeDetail.status == "active")
            .order_by(FeeDetail.id)
        ).scalars()
    )
    items = check_fees([benefit.Item(f.amount, f.category, f.selfpay_bp) for f in fees], total)
    year = day.year
    # catalogue of the visit's area, policy of the insured area (异地就医: 就医地目录、参保地政策)
    pol = policy.policy_for(
        uow.session, insutype=enrolment.insutype, area=enrolment.area, year=year
    )
    usage = _usage(uow, who.person.id, enrolment.insutype, year, lock)
    balance = ledger.individual_balance(uow.session, who.person.id)
    terms = terms_for(pol, caller, enrolment, usage, balance, data)
    return Computed(visit, who, enrolment, year, benefit.split(items, terms), kind, usage)


def terms_for(
    pol: policy.Policy,
    caller: Caller,
    enrolment: Enrolment,
    usage: BenefitUsage | None,
    balance: int,
    data: dict[str, Any],
) -> benefit.Terms:
    """What is left of the year's deductible and cap, the ratio, the account."""
    use_account = (
        str(data.get("acct_used_flag") or "0") == "1"
        and enrolment.insutype != contributions.RESIDENT
    )
    return benefit.Terms(
        deductible_left=pol.deductible - (usage.deductible_used if usage else 0),
        fund_ratio_bp=pol.ratio(caller.level),
        fund_cap_left=pol.fund_cap - (usage.fund_used if usage else 0),
        balance=balance,
        use_account=use_account,
    )


def wire_fund_pay(fund_pay_sumamt: int, acct_pay: int, *, includes_acct: bool) -> int:
    """``fund_pay_sumamt`` as the province reports it: the fund's payments,
    with the account's added where the province counts it in
    (``Settings.his_fund_pay_includes_acct``)."""
    return fund_pay_sumamt + acct_pay if includes_acct else fund_pay_sumamt


def _setlinfo(
    c: Computed,
    caller: Caller,
    *,
    setl_id: str,
    now: dt.datetime,
    today: dt.date,
    acct_in_fund: bool,
) -> dict[str, Any]:
    p, s = c.who.person, c.split
    return {
        "mdtrt_id": c.visit.mdtrt_id,
        "setl_id": setl_id,
        "psn_no": str(p.id),
        "psn_name": p.name,
        "psn_cert_type": "01",
        "certno": p.certno,
        "gend": p.gender,
        "naty": "01",
        "brdy": p.birth_date.isoformat(),
        "age": age_on(p.birth_date, today),
        "insutype": c.enrolment.insutype,
        "psn_type": PSN_TYPE_CODES.get(c.enrolment.psn_type, c.enrolment.psn_type),
        "setl_time": fmt_time(now),
        "med_type": c.visit.med_type,
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
        "fund_pay_sumamt": wire_fund_pay(s.fund_pay_sumamt, s.acct_pay, includes_acct=acct_in_fund),
        "psn_part_amt": s.psn_part_amt,
        "acct_pay": s.acct_pay,
        "psn_cash_pay": s.psn_cash_pay,
        "hosp_part_amt": 0,
        "balc": s.balc,
        "acct_mulaid_pay": 0,
        "medins_setl_id": "",
        "clr_optins": c.enrolment.area,
        "clr_way": "1",
        "clr_type": c.visit.med_type,
        "refund_owed": (s.acct_pay + s.fund_pay_sumamt) if c.kind == "resettlement" else 0,
        "setl_type": c.kind,
    }


def _setldetail(s: benefit.Split) -> list[dict[str, Any]]:
    return [
        {
            "fund_pay_type": "310100",
            "inscp_scp_amt": s.inscp_scp_amt,
            "fund_payamt": s.hifp_pay,
            "fund_pay_type_name": "基本医疗保险统筹基金",
        }
    ]


def presettle(uow: UnitOfWork, caller: Caller, *, data: dict[str, Any]) -> dict[str, Any]:
    """2206: what 2207 would pay now; posts nothing."""
    with uow:
        c = compute(uow, caller, data, lock=False)
        now = uow.clock.now()
        info = _setlinfo(
            c,
            caller,
            setl_id="",
            now=now,
            today=uow.clock.today(),
            acct_in_fund=uow.settings.his_fund_pay_includes_acct,
        )
        uow.audit(
            caller.record(
                channel=Channel.HIS,
                action="his.presettle",
                person_id=c.who.person.id,
                subject=c.visit.mdtrt_id,
            )
        )
        uow.commit()
        return {"setlinfo": info, "setldetail": _setldetail(c.split)}


def _key(caller: Caller, msgid: str) -> str:
    return f"his:{caller.code}:{msgid}"


def _institution_account(code: str, person_id: int) -> str:
    # Every settlement at an institution credits it: sub-accounts, like the
    # pooled fund's, so that one hot row does not serialise them (design.md).
    return f"{codes.institution(code)}:{person_id % codes.FUND_SHARDS}"


def _legs(c: Computed, caller: Caller) -> list[ledger.Leg]:
    s, pid, area = c.split, c.who.person.id, c.enrolment.area
    legs = [
        ledger.Leg(codes.individual(pid), -s.acct_pay, "individual", pid),
        ledger.Leg(codes.fund(area, pid), -s.hifp_pay, "fund", None, area),
        ledger.Leg(_institution_account(caller.code, pid), s.acct_pay + s.hifp_pay, "institution"),
    ]
    return [leg for leg in legs if leg.amount] or [legs[-1]]


def _settlement_row(
    c: Computed, caller: Caller, *, setl_id: str, msgid: str, now: dt.datetime
) -> dict[str, Any]:
    s = c.split
    return {
        "setl_id": setl_id,
        "person_id": c.who.person.id,
        "institution_code": caller.code,
        "visit_id": c.visit.id,
        "mdtrt_id": c.visit.mdtrt_id,
        "msgid": msgid,
        "kind": c.kind,
        "insutype": c.enrolment.insutype,
        "psn_type": c.enrolment.psn_type,
        "med_type": c.visit.med_type,
        "year": c.year,
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
        "refund_owed": (s.acct_pay + s.fund_pay_sumamt) if c.kind == "resettlement" else 0,
        "status": "settled",
    }


# A settlement whose inputs changed between the read and the write (another
# settlement of the same person, a payment from the account) is computed again.
RETRIES = 5


def settle(uow: UnitOfWork, caller: Caller, *, msgid: str, data: dict[str, Any]) -> dict[str, Any]:
    """2207: settle a visit; one ledger entry, once per msgid. A cash visit
    is re-settled: the account and the fund pay what they would have paid
    then, and the institution owes the person that much back."""
    with uow:
        if uow.session.get_bind().dialect.name == "postgresql":
            output = _settle_pg(uow, caller, msgid=msgid, data=data)
        else:
            output = _settle_generic(uow, caller, msgid=msgid, data=data)
        uow.commit()
        return output


def _replay_or(uow: UnitOfWork, caller: Caller, msgid: str, exc: DomainError) -> dict[str, Any]:
    first = ledger.find_entry(uow.session, _key(caller, msgid))
    if first is None:
        raise exc
    return dict(first.result)


def _busy() -> DomainError:
    return DomainError(
        code="settlement.busy",
        zh="该人员正在结算，请稍后重试",
        en="settlements of this person are in progress; try again",
        status=409,
    )


def _settle_pg(
    uow: UnitOfWork, caller: Caller, *, msgid: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Reads without locks, then one call of ``yb_settle`` (migration 0005)
    checks what the split was computed from and writes everything."""
    for _ in range(RETRIES):
        try:
            c = compute(uow, caller, data, lock=False)
        except DomainError as exc:  # e.g. the visit is settled: a retried msgid?
            return _replay_or(uow, caller, msgid, exc)
        now = uow.clock.now()
        setl_id, output, params = settle_params(
            c,
            caller,
            msgid=msgid,
            now=now,
            today=uow.clock.today(),
            acct_in_fund=uow.settings.his_fund_pay_includes_acct,
        )
        pid = c.who.person.id
        try:
            # a savepoint: yb_settle raises 'yb:stale' after its first writes
            with uow.session.begin_nested():
                status = uow.session.execute(
                    text(
                        "SELECT yb_settle(:key, :kind, :pid, :memo, CAST(:result AS json), :at, "
                        ":codes, :kinds, :amounts, :pids, :areas, :visit, :insutype, :year, "
                        ":ded, :fund, CAST(:setl AS json))"
                    ),
                    params,
                ).scalar_one()
        except DBAPIError as exc:
            if "yb:stale" not in str(exc.orig):
                raise
            status = "stale"
        if status == "ok":
            uow.audit(
                caller.record(
                    channel=Channel.HIS, action=f"his.{c.kind}", person_id=pid, subject=setl_id
                )
            )
            return output
        if status == "replay":
            return _replay_or(uow, caller, msgid, _busy())
        uow.session.expire_all()  # stale: read again what changed under us
    raise _busy()


def settle_params(
    c: Computed,
    caller: Caller,
    *,
    msgid: str,
    now: dt.datetime,
    today: dt.date,
    acct_in_fund: bool,
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The settlement's id, its answer and the arguments of ``yb_settle``."""
    setl_id = _new_id("ST", caller, now)
    output = {
        "setlinfo": _setlinfo(
            c, caller, setl_id=setl_id, now=now, today=today, acct_in_fund=acct_in_fund
        ),
        "setldetail": _setldetail(c.split),
    }
    legs = _legs(c, caller)
    row = _settlement_row(c, caller, setl_id=setl_id, msgid=msgid, now=now)
    row["setl_time"] = now.isoformat()
    params = {
        "key": _key(caller, msgid),
        "kind": c.kind,
        "pid": c.who.person.id,
        "memo": f"{caller.code} {c.visit.mdtrt_id}",
        "result": json.dumps(output, ensure_ascii=False),
        "at": now,
        "codes": [leg.code for leg in legs],
        "kinds": [leg.kind for leg in legs],
        "amounts": [leg.amount for leg in legs],
        "pids": [leg.person_id for leg in legs],
        "areas": [leg.area for leg in legs],
        "visit": c.visit.id,
        "insutype": c.enrolment.insutype,
        "year": c.year,
        "ded": c.usage.deductible_used if c.usage else 0,
        "fund": c.usage.fund_used if c.usage else 0,
        "setl": json.dumps(row, ensure_ascii=False),
    }
    return setl_id, output, params


def _settle_generic(
    uow: UnitOfWork, caller: Caller, *, msgid: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Row locks, then the ledger's posting function: every database."""
    first = ledger.find_entry(uow.session, _key(caller, msgid))
    if first is not None:
        return dict(first.result)
    c = compute(uow, caller, data, lock=True)
    now = uow.clock.now()
    s = c.split
    setl_id = _new_id("ST", caller, now)
    output = {
        "setlinfo": _setlinfo(
            c,
            caller,
            setl_id=setl_id,
            now=now,
            today=uow.clock.today(),
            acct_in_fund=uow.settings.his_fund_pay_includes_acct,
        ),
        "setldetail": _setldetail(s),
    }
    pid = c.who.person.id
    posted = ledger.post(
        uow,
        key=_key(caller, msgid),
        kind=c.kind,
        legs=_legs(c, caller),
        person_id=pid,
        memo=f"{caller.code} {c.visit.mdtrt_id}",
        result=output,
    )
    if posted.replay:
        return dict(posted.entry.result)
    row = _settlement_row(c, caller, setl_id=setl_id, msgid=msgid, now=now)
    uow.session.add(Settlement(**row, entry_id=posted.entry.id))
    assert c.usage is not None
    c.usage.deductible_used += s.act_pay_dedc
    c.usage.fund_used += s.hifp_pay
    c.visit.status = "settled"
    uow.audit(
        caller.record(channel=Channel.HIS, action=f"his.{c.kind}", person_id=pid, subject=setl_id)
    )
    return output


def _settlement(
    uow: UnitOfWork, caller: Caller, setl_id: str, psn_no: str | None, lock: bool = False
) -> Settlement:
    stmt = select(Settlement).where(Settlement.setl_id == setl_id)
    if lock:
        stmt = stmt.with_for_update()
    row = uow.session.execute(stmt).scalar_one_or_none()
    if row is None:
        raise _refuse(
            "settlement.not_found", "结算记录不存在", "no such settlement (setl_id)", "setl_id"
        )
    return check_owned(row, caller, psn_no, "settlement")


def settlement_info(uow: UnitOfWork, row: Settlement, sign: int = 1) -> dict[str, Any]:
    p = uow.session.get(Person, row.person_id)
    assert p is not None
    amounts = (
        "medfee_sumamt",
        "fulamt_ownpay_amt",
        "preselfpay_amt",
        "inscp_scp_amt",
        "act_pay_dedc",
        "hifp_pay",
        "fund_pay_sumamt",
        "psn_part_amt",
        "acct_pay",
        "psn_cash_pay",
        "refund_owed",
    )
    info: dict[str, Any] = {
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
        "pool_prop_selfpay": sign * (row.inscp_scp_amt - row.act_pay_dedc - row.hifp_pay),
        "balc": ledger.individual_balance(uow.session, p.id),
    }
    for name in amounts:
        info[name] = sign * int(getattr(row, name))
    info["fund_pay_sumamt"] = sign * wire_fund_pay(
        row.fund_pay_sumamt,
        row.acct_pay,
        includes_acct=uow.settings.his_fund_pay_includes_acct,
    )
    return info


def cancel_settlement(
    uow: UnitOfWork, caller: Caller, *, msgid: str, data: dict[str, Any]
) -> dict[str, Any]:
    """2208: reverse a settlement exactly once."""
    with uow:
        first = ledger.find_entry(uow.session, _key(caller, msgid))
        if first is not None:
            return dict(first.result)
        row = _settlement(uow, caller, need(data, "setl_id"), need(data, "psn_no"), lock=True)
        if row.mdtrt_id != need(data, "mdtrt_id"):
            raise _refuse(
                "settlement.visit_mismatch",
                "就诊ID与结算记录不符",
                "mdtrt_id does not match the settlement",
                "mdtrt_id",
            )
        if row.status != "settled":
            raise conflict(
                "ledger.already_reversed",
                "该结算已撤销",
                "this settlement was already cancelled",
                "setl_id",
            )
        visit = _visit(uow, caller, row.mdtrt_id, None, lock=True)
        usage = _usage(uow, row.person_id, row.insutype, row.year, lock=True)
        entry = uow.session.get(LedgerEntry, row.entry_id)
        assert entry is not None and usage is not None
        now = uow.clock.now()
        row.status, row.cancelled_at = "cancelled", now
        uow.session.flush()
        output = {"setlinfo": settlement_info(uow, row, sign=-1)}
        posted = ledger.reverse(
            uow, entry=entry, key=_key(caller, msgid), memo=f"cancel {row.setl_id}"
        )
        output["setlinfo"]["balc"] = ledger.individual_balance(uow.session, row.person_id)
        posted.entry.result = output
        row.cancel_entry_id = posted.entry.id
        usage.deductible_used -= row.act_pay_dedc
        usage.fund_used -= row.hifp_pay
        # an ordinary visit may be settled again; a cash receipt only once
        visit.status = "registered"
        uow.audit(
            caller.record(
                channel=Channel.HIS,
                action="his.settlement_cancel",
                person_id=row.person_id,
                subject=row.setl_id,
            )
        )
        uow.commit()
        return output


def query_settlement(uow: UnitOfWork, caller: Caller, *, data: dict[str, Any]) -> dict[str, Any]:
    """5203."""
    with uow:
        row = _settlement(uow, caller, need(data, "setl_id"), need(data, "psn_no"))
        info = settlement_info(uow, row)
        uow.audit(
            caller.record(
                channel=Channel.HIS,
                action="his.settlement_query",
                person_id=row.person_id,
                subject=row.setl_id,
            )
        )
        uow.commit()
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


def reconcile(uow: UnitOfWork, caller: Caller, *, data: dict[str, Any]) -> dict[str, Any]:
    """3201: the institution's totals for a period against ours."""
    with uow:
        # The totals come from one statement, so they are of one snapshot
        # even under READ COMMITTED (a second statement would need REPEATABLE READ).
        begin = parse_time(need(data, "stmt_begndate"), "input.data.stmt_begndate")
        end = parse_time(need(data, "stmt_enddate"), "input.data.stmt_enddate") + dt.timedelta(
            days=1
        )
        given = {
            name: yuan_to_fen(need(data, name), field=f"input.data.{name}")
            for name in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay")
        }
        try:
            given_cnt = int(need(data, "fixmedins_setl_cnt"))
        except ValueError:
            raise invalid(
                "input.data.fixmedins_setl_cnt", "笔数应为整数", "a count is an integer"
            ) from None
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
        if data.get("insutype"):
            stmt = stmt.where(Settlement.insutype == str(data["insutype"]))
        med, fund, acct, cnt = uow.session.execute(stmt).one()
        ours = {
            "medfee_sumamt": int(med),
            "fund_pay_sumamt": wire_fund_pay(
                int(fund), int(acct), includes_acct=uow.settings.his_fund_pay_includes_acct
            ),
            "acct_pay": int(acct),
        }
        diffs = [
            f"{k} {given[k] / 100:.2f} != {ours[k] / 100:.2f}" for k in ours if given[k] != ours[k]
        ]
        if given_cnt != int(cnt):
            diffs.append(f"fixmedins_setl_cnt {given_cnt} != {cnt}")
        uow.commit()
        return {
            "stmtinfo": {
                "setl_optins": str(data.get("setl_optins") or caller.division[:6]),
                "stmt_rslt": "1" if diffs else "0",
                "stmt_rslt_dscr": "; ".join(diffs) if diffs else "对账一致 / balanced",
            }
        }
