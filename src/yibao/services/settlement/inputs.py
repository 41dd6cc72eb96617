"""The HIS interface's messages as they come in: the envelope and one model
per transaction's input, read once, before anything else runs.

Every field is read through the one reading of typed values
(``domain.values``, ``domain.money.yuan_to_fen``): ASCII digits only, times
between 1900 and 2100, amounts of at most 12 digits before the point and two
after, texts of a bounded length without control characters, code fields
only from their code tables (``CODES``). A bad value is refused as
``infcode`` -1 with ``err_msg`` naming the field by its path in the message
(``input.feedetail.0.pric``) and the reason, never "internal error": a
hospital system told to retry would retry what can never succeed.

The channel parses the whole message (``parse``) before it authenticates
the request or the PostgreSQL fast path looks at it, so the general path and
the fast path refuse the same input the same way, and a refused message
changes nothing. The models live here, beside the use cases, because the
use cases and the fast path take them typed; a use case called with a plain
dict (a test, a script) reads it through the same model.

Where his-interface.md gives a code table it is the table; where it does not
(``clr_type``, ``diag_type``), the national platform's dictionary; a
diagnosis code has the form of an ICD-10 code (西医诊断) or of a code of the
national TCM classification (中医病证).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, ValidationError
from pydantic import ValidationInfo as Info
from pydantic_core import PydanticCustomError

from yibao.clock import CHINA
from yibao.domain import values
from yibao.domain.errors import DomainError, FieldProblem, invalid
from yibao.domain.money import yuan_to_fen

# ------------------------------------------------------------- code tables

# (zh, en) of each code; the README's interface section lists them
CODES: dict[str, dict[str, tuple[str, str]]] = {
    "mdtrt_cert_type": {
        "01": ("医保电子凭证", "electronic medical insurance voucher (QR code)"),
        "02": ("居民身份证", "resident ID card"),
        "03": ("社会保障卡", "social security card"),
    },
    "psn_cert_type": {"01": ("居民身份证", "resident ID card")},
    "insutype": {
        "310": ("职工基本医疗保险", "employee basic medical insurance"),
        "320": ("公务员医疗补助", "civil servant medical subsidy"),
        "330": ("大额医疗费用补助", "large-amount medical subsidy"),
        "390": ("城乡居民基本医疗保险", "urban and rural resident basic medical insurance"),
        "510": ("生育保险", "maternity insurance"),
    },
    "med_type": {
        "11": ("普通门诊", "general outpatient"),
        "12": ("门诊挂号", "outpatient registration"),
        "14": ("门诊慢特病", "outpatient chronic or special disease"),
        "21": ("普通住院", "general inpatient"),
        "41": ("定点药店购药", "purchase at a designated pharmacy"),
    },
    "psn_setlway": {"01": ("按项目结算", "by item"), "02": ("按定额结算", "by quota")},
    "acct_used_flag": {
        "0": ("不使用个人账户", "do not use the individual account"),
        "1": ("使用个人账户", "use the individual account"),
    },
    # the national dictionary's clearing types (his-interface.md names none)
    "clr_type": {
        "11": ("门诊", "outpatient"),
        "21": ("住院", "inpatient"),
        "41": ("定点药店", "designated pharmacy"),
    },
    # the national dictionary's diagnosis types of an outpatient visit (2203)
    "diag_type": {
        "1": ("西医诊断", "western medicine diagnosis (ICD-10)"),
        "2": ("中医主病诊断", "TCM disease diagnosis"),
        "3": ("中医主证诊断", "TCM syndrome diagnosis"),
    },
    "opter_type": {
        "1": ("经办人员", "staff"),
        "2": ("自助终端", "self-service terminal"),
        "3": ("移动终端", "mobile"),
    },
    # yibao's extension of 2201: a visit paid in cash during an equipment failure
    "cash_fallback": {"0": ("普通就诊", "an ordinary visit"), "1": ("现金就诊", "a cash visit")},
}

# An ICD-10 code as the national platform's edition writes it: J06.900,
# I10.x00x002, E11.900x001; a dagger or asterisk code ends in + or *.
ICD10 = re.compile(r"[A-Z][0-9]{2}(?:\.[0-9A-Za-z]{1,4})?(?:x[0-9]{3})?[+*]?")
# A code of the national TCM classification of diseases and syndromes
# (中医病证分类与代码): a letter, then letters, digits and dots (BNW010, A04.03.03.).
TCM = re.compile(r"[A-Z][0-9A-Z.]{1,19}")
DIAG_CODE_MAX = 20

# An institution's code (registry: H or P and 11 digits); a msgid is that
# code, yyyyMMddHHmmss and a 4-digit sequence: 30 characters (his-interface.md).
INSTITUTION = re.compile(r"[HP][0-9]{11}")
MSGID = re.compile(r"([HP][0-9]{11})([0-9]{14})([0-9]{4})")
MSGID_LENGTH = 30

CAINFO_MAX = 4096

# Documented limits on repeated items: more is a mistake or an attack.
FEE_LINES_MAX = 1000
DIAGNOSES_MAX = 100

# yibao's own transactions' codes; the envelope's infno is one of them
INFNOS = (
    "9001",
    "9002",
    "1101",
    "2201",
    "2202",
    "2203",
    "2204",
    "2205",
    "2206",
    "2207",
    "2208",
    "3201",
    "5203",
    "9901",
)


# ------------------------------------------------------------- readers


def _fail(exc: DomainError) -> PydanticCustomError:
    return PydanticCustomError(
        "yibao",
        "{zh} / {en}",
        {"zh": exc.zh, "en": exc.en, "code": exc.code.removeprefix("validation.")},
    )


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _missing() -> PydanticCustomError:
    return PydanticCustomError(
        "yibao", "{zh} / {en}", {"zh": "缺少字段", "en": "missing", "code": "missing"}
    )


def _read(
    read: Callable[[Any, str, Info], Any], *, required: bool = False, empty: Any = ""
) -> PlainValidator:
    """A field's one reading: absent (null or blank) is ``empty`` for an
    optional field and refused for a required one; anything else is read by
    ``read``, whose ``DomainError`` becomes the field's refusal."""

    def validate(value: Any, info: Info) -> Any:
        if _absent(value):
            if required:
                raise _missing()
            return empty
        try:
            return read(value, info.field_name or "", info)
        except DomainError as exc:
            raise _fail(exc) from None

    return PlainValidator(validate)


def _text(most: int) -> Callable[[Any, str, Info], str]:
    def read(value: Any, name: str, info: Info) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise invalid(name, "应为文本", "a text", "type")
        return values.text(value, field=name, most=most)

    return read


def _ident(most: int) -> Callable[[Any, str, Info], str]:
    return lambda value, name, info: values.identifier(value, field=name, most=most)


def _digits(most: int) -> Callable[[Any, str, Info], str]:
    def read(value: Any, name: str, info: Info) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise invalid(name, "应为数字(0-9)", "only the digits 0-9", "digits")
        return values.digits(value, field=name, most=most)

    return read


def _division(value: Any, name: str, info: Info) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid(name, "应为6位行政区划代码", "a division code of 6 digits", "digits")
    return values.digits(value, field=name, length=6)


def _code(table: str) -> Callable[[Any, str, Info], str]:
    codes = CODES[table]
    listed = "、".join(codes)

    def read(value: Any, name: str, info: Info) -> str:
        # a code is a text; a JSON number of its digits is taken too (11 for "11")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise invalid(name, f"应为代码({listed})", f"a code, one of {', '.join(codes)}", "code")
        given = str(value).strip()
        if given not in codes:
            raise invalid(
                name,
                f"代码无效，应为{listed}之一",
                f"not a code of {name}: one of {', '.join(codes)}",
                "code",
            )
        return given

    return read


def _amount(value: Any, name: str, info: Info) -> int:
    fen = yuan_to_fen(value, field=name)
    if fen < 0:
        raise invalid(name, "金额不能为负", "an amount is not negative", "amount")
    return fen


def _time(value: Any, name: str, info: Info) -> dt.datetime:
    if not isinstance(value, str):
        raise invalid(
            name, "时间格式应为yyyy-MM-dd HH:mm:ss", "a time is yyyy-MM-dd HH:mm:ss", "format"
        )
    return values.time(value, field=name)


def _date(value: Any, name: str, info: Info) -> dt.date:
    """A day, written yyyy-MM-dd (a time of that day is taken as its day)."""
    return _time(value, name, info).astimezone(CHINA).date()


def _count(most: int) -> Callable[[Any, str, Info], int]:
    return lambda value, name, info: values.count(value, field=name, most=most)


def _quantity(value: Any, name: str, info: Info) -> Decimal:
    # the national interface's cnt is a number of 16 digits, 4 of them decimals
    q = values.number(value, field=name, places=4, most_digits=12)
    if q <= 0:
        raise invalid(name, "数量应大于0", "a count above 0", "number")
    return q


def _diag_code(value: Any, name: str, info: Info) -> str:
    code = values.identifier(value, field=name, most=DIAG_CODE_MAX)
    tcm = info.data.get("diag_type") in ("2", "3")
    if (TCM if tcm else ICD10).fullmatch(code) is None:
        raise invalid(
            name,
            "诊断代码应为中医病证分类代码" if tcm else "诊断代码应为ICD-10编码(如J06.900)",
            "a code of the national TCM classification"
            if tcm
            else "an ICD-10 code, such as J06.900",
            "code",
        )
    return code


def _institution(value: Any, name: str, info: Info) -> str:
    code = values.identifier(value, field=name, most=12)
    if INSTITUTION.fullmatch(code) is None:
        raise invalid(
            name,
            "定点医药机构编号应为H或P加11位数字",
            "an institution code is H or P and 11 digits",
            "format",
        )
    return code


def _msgid(value: Any, name: str, info: Info) -> str:
    """institution code + yyyyMMddHHmmss + a 4-digit sequence (30 characters)."""
    if not isinstance(value, str):
        raise invalid(name, "报文ID应为文本", "msgid is a text", "type")
    m = MSGID.fullmatch(value.strip())
    if m is None:
        raise invalid(
            name,
            f"报文ID应为机构编号+yyyyMMddHHmmss+4位顺序号，共{MSGID_LENGTH}位",
            f"msgid is the institution code, yyyyMMddHHmmss and a 4-digit sequence, "
            f"{MSGID_LENGTH} characters",
            "format",
        )
    code = info.data.get("fixmedins_code")
    if code and m.group(1) != code:
        raise invalid(
            name, "报文ID应以本机构编号开头", "msgid begins with fixmedins_code", "format"
        )
    t = m.group(2)
    values.time(f"{t[:4]}-{t[4:6]}-{t[6:8]} {t[8:10]}:{t[10:12]}:{t[12:]}", field=name)
    return m.group(0)


def _period_end(value: Any, name: str, info: Info) -> dt.date:
    end = _date(value, name, info)
    begin = info.data.get("stmt_begndate")
    if begin is not None and end < begin:
        raise invalid(
            name, "对账结束日期早于开始日期", "stmt_enddate is before stmt_begndate", "range"
        )
    return end


# The field types, each one reading; "Req" is a required field.
Text30 = Annotated[str, _read(_text(30))]
Text50 = Annotated[str, _read(_text(50))]
Text100 = Annotated[str, _read(_text(100))]
Text150 = Annotated[str, _read(_text(150))]
Text200 = Annotated[str, _read(_text(200))]
Id30 = Annotated[str, _read(_ident(30))]
Id50 = Annotated[str, _read(_ident(50))]
ReqId30 = Annotated[str, _read(_ident(30), required=True)]
ReqId40 = Annotated[str, _read(_ident(40), required=True)]
ReqId50 = Annotated[str, _read(_ident(50), required=True)]
# a certificate's number: a card's, an ID number or an electronic voucher's
# token (about 70 characters); at most what an audit entry's subject holds
ReqCertNo = Annotated[str, _read(_ident(100), required=True)]
CertNo = Annotated[str, _read(_ident(50))]
# yibao's person numbers are its persons' ids
PsnNo = Annotated[str, _read(_digits(30), required=True)]
OptPsnNo = Annotated[str, _read(_digits(30))]
Division = Annotated[str, _read(_division)]
Amount = Annotated[int, _read(_amount, required=True)]
OptAmount = Annotated[int, _read(_amount, empty=0)]
Time = Annotated[dt.datetime, _read(_time, required=True)]
OptTime = Annotated[dt.datetime | None, _read(_time, empty=None)]


def _coded(table: str, *, required: bool = False) -> PlainValidator:
    return _read(_code(table), required=required)


# ------------------------------------------------------------- models


class Wire(BaseModel):
    """One object of a message: unknown fields are ignored (the national
    interface has many that yibao does not use), known ones read."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    @classmethod
    def read(cls, given: Any, prefix: str) -> Self:
        """The object ``given`` (a dict from the JSON, or already this model),
        or the refusal naming the first bad field by its path under ``prefix``."""
        if isinstance(given, cls):
            return given
        try:
            return cls.model_validate(given)
        except ValidationError as exc:
            raise refusal(exc, prefix) from None


_SHAPES = {
    "missing": ("缺少字段", "missing"),
    "model_type": ("应为JSON对象", "an object"),
    "model_attributes_type": ("应为JSON对象", "an object"),
    "dict_type": ("应为JSON对象", "an object"),
    "list_type": ("应为数组", "an array"),
    "too_short": ("不能为空", "at least one item"),
    "too_long": ("条目过多", "too many items"),
}


def refusal(exc: ValidationError, prefix: str) -> DomainError:
    """The first bad field by its path (``input.data.psn_no``) and the
    reason, with every bad field in ``problems``."""
    problems = []
    codes = []
    for e in exc.errors(include_url=False):
        path = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
        ctx = e.get("ctx") or {}
        if e["type"] == "yibao":
            zh, en, code = str(ctx["zh"]), str(ctx["en"]), str(ctx["code"])
        elif e["type"] in _SHAPES:
            (zh, en), code = _SHAPES[e["type"]], e["type"]
            if e["type"] == "too_long":
                most = ctx.get("max_length")
                zh, en = f"最多{most}项", f"at most {most} items"
        else:  # a shape no field here expects
            zh, en, code = "格式错误", "malformed", "invalid"
        problems.append(FieldProblem(path or "body", zh, en))
        codes.append(code)
    first = problems[0]
    return DomainError(
        code=f"validation.{codes[0]}",
        zh=first.zh,
        en=first.en,
        field=first.field,
        status=422,
        problems=problems,
    )


class Presented(Wire):
    """Who the request says the person is beside the certificate, where the
    HIS sends it (sole use: ``domain.use``)."""

    psn_no: OptPsnNo = ""
    certno: CertNo = ""
    psn_name: Text50 = ""


# ---- 9001, 9002


class SignIn(Wire):
    opter_no: Text30 = ""
    mac: Text50 = ""
    ip: Text50 = ""


class SignInInput(Wire):
    signIn: SignIn  # the interface's name


class SignOut(Wire):
    sign_no: ReqId40
    opter_no: Text30 = ""


class SignOutInput(Wire):
    signOut: SignOut  # the interface's name


# ---- 1101


class PersonQuery(Presented):
    mdtrt_cert_type: Annotated[str, _coded("mdtrt_cert_type", required=True)]
    mdtrt_cert_no: ReqCertNo
    card_sn: Id50 = ""
    begntime: OptTime = None
    psn_cert_type: Annotated[str, _coded("psn_cert_type")] = ""


class PersonQueryInput(Wire):
    data: PersonQuery


# ---- 2201, 2202


class Registration(Presented):
    psn_no: PsnNo
    insutype: Annotated[str, _coded("insutype")] = ""
    begntime: Time
    mdtrt_cert_type: Annotated[str, _coded("mdtrt_cert_type", required=True)]
    mdtrt_cert_no: ReqCertNo
    med_type: Annotated[str, _coded("med_type")] = ""
    ipt_otp_no: Text30 = ""
    atddr_no: Text30 = ""
    dr_name: Text50 = ""
    dept_code: Text30 = ""
    dept_name: Text100 = ""
    caty: Text30 = ""
    cash_fallback: Annotated[str, _coded("cash_fallback")] = ""
    invono: Id50 = ""


class RegistrationInput(Wire):
    data: Registration


class VisitRef(Wire):
    """A visit of the named person (2202, 2205's visit)."""

    mdtrt_id: ReqId40
    psn_no: PsnNo


class CancelRegistration(VisitRef):
    ipt_otp_no: Text30 = ""


class CancelRegistrationInput(Wire):
    data: CancelRegistration


# ---- 2203


class VisitInfo(VisitRef):
    med_type: Annotated[str, _coded("med_type")] = ""
    begntime: OptTime = None


class Diagnosis(Wire):
    diag_type: Annotated[str, _coded("diag_type", required=True)]
    diag_code: Annotated[str, _read(_diag_code, required=True)]  # after diag_type: read by it
    diag_name: Text100 = ""


class VisitInfoInput(Wire):
    mdtrtinfo: VisitInfo
    # no diagnoses: absent, null or []
    diseinfo: Annotated[
        list[Diagnosis],
        BeforeValidator(lambda v: [] if v is None else v),
        Field(max_length=DIAGNOSES_MAX),
    ] = []


# ---- 2204, 2205


class FeeLine(Wire):
    feedetl_sn: ReqId30
    mdtrt_id: ReqId40
    psn_no: PsnNo
    chrg_bchno: Id30 = ""
    fee_ocur_time: OptTime = None
    med_list_codg: ReqId50
    medins_list_codg: Text150 = ""
    det_item_fee_sumamt: Amount
    cnt: Annotated[Decimal, _read(_quantity, empty=Decimal(1))] = Decimal(1)
    pric: OptAmount = 0


class FeeUploadInput(Wire):
    feedetail: Annotated[list[FeeLine], Field(min_length=1, max_length=FEE_LINES_MAX)]


class FeeCancel(VisitRef):
    chrg_bchno: Id30 = ""
    # one detail, or all of the visit's (0000 or empty)
    feedetl_sn: Id30 = ""


class FeeCancelInput(Wire):
    data: FeeCancel


# ---- 2206, 2207, 2208, 5203


class Settle(Presented):
    psn_no: PsnNo
    mdtrt_cert_type: Annotated[str, _coded("mdtrt_cert_type", required=True)]
    mdtrt_cert_no: ReqCertNo
    med_type: Annotated[str, _coded("med_type")] = ""
    medfee_sumamt: Amount
    psn_setlway: Annotated[str, _coded("psn_setlway")] = ""
    mdtrt_id: ReqId40
    chrg_bchno: Id30 = ""
    insutype: Annotated[str, _coded("insutype")] = ""
    acct_used_flag: Annotated[str, _coded("acct_used_flag")] = ""
    invono: Id50 = ""


class SettleInput(Wire):
    data: Settle


class SettlementRef(Wire):
    setl_id: ReqId40
    mdtrt_id: ReqId40
    psn_no: PsnNo


class SettlementRefInput(Wire):
    data: SettlementRef


# ---- 3201


class Statement(Wire):
    insutype: Annotated[str, _coded("insutype")] = ""
    clr_type: Annotated[str, _coded("clr_type")] = ""
    setl_optins: Division = ""
    stmt_begndate: Annotated[dt.date, _read(_date, required=True)]
    stmt_enddate: Annotated[dt.date, _read(_period_end, required=True)]  # after the start
    medfee_sumamt: Amount
    fund_pay_sumamt: Amount
    acct_pay: Amount
    fixmedins_setl_cnt: Annotated[int, _read(_count(9_999_999_999), required=True)]


class StatementInput(Wire):
    data: Statement


# ---- 9901 (yibao's extension: an equipment failure, declared after the repair)


class Failure(Wire):
    begntime: Time
    endtime: Time
    reason: Annotated[str, _read(_text(200), required=True)]


class FailureInput(Wire):
    data: Failure


# ------------------------------------------------------------- the envelope


class Envelope(Wire):
    """The platform's request envelope (his-interface.md), with the national
    interface's lengths. ``fixmedins_code`` is read before ``msgid``, which
    begins with it."""

    infno: Annotated[str, _read(lambda v, n, i: _infno(v, n), required=True)]
    fixmedins_code: Annotated[str, _read(_institution, required=True)]
    msgid: Annotated[str, _read(_msgid, required=True)]
    mdtrtarea_admvs: Division = ""
    insuplc_admdvs: Division = ""
    recer_sys_code: Text30 = ""
    dev_no: Text100 = ""
    dev_safe_info: Annotated[str, _read(_text(2000))] = ""
    # a province's SM2 signature of the body (about 100 characters, with a
    # certificate a few thousand), kept with the request's audit entries
    cainfo: Annotated[str, _read(_text(CAINFO_MAX))] = ""
    signtype: Text30 = ""
    infver: Annotated[str, _read(_text(10))] = ""
    opter_type: Annotated[str, _coded("opter_type")] = ""
    opter: Text30 = ""
    opter_name: Text50 = ""
    inf_time: OptTime = None
    fixmedins_name: Text200 = ""
    sign_no: Annotated[str, _read(_ident(40))] = ""
    input: dict[str, Any]


def _infno(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid(name, "交易编号应为4位数字", "infno is 4 digits", "type")
    infno = values.digits(value, field=name, length=4)
    if infno not in INFNOS:
        raise invalid(name, f"不支持的交易编号{infno}", f"unknown infno {infno}", "unknown")
    return infno


# infno -> the model of its input
INPUTS: dict[str, type[Wire]] = {
    "9001": SignInInput,
    "9002": SignOutInput,
    "1101": PersonQueryInput,
    "2201": RegistrationInput,
    "2202": CancelRegistrationInput,
    "2203": VisitInfoInput,
    "2204": FeeUploadInput,
    "2205": FeeCancelInput,
    "2206": SettleInput,
    "2207": SettleInput,
    "2208": SettlementRefInput,
    "3201": StatementInput,
    "5203": SettlementRefInput,
    "9901": FailureInput,
}


@dataclass(frozen=True)
class Request:
    """A parsed HIS request: its envelope, its input as the infno's model,
    and the input as sent (the idempotency fingerprint is of what was sent)."""

    envelope: Envelope
    input: Any
    sent: dict[str, Any]

    @property
    def infno(self) -> str:
        return self.envelope.infno


def parse(env: Mapping[str, Any], path_infno: str | None = None) -> Request:
    """The whole message, read before anything else runs; a ``DomainError``
    naming the first bad field otherwise."""
    envelope = Envelope.read(env, "")
    if path_infno is not None and path_infno != envelope.infno:
        raise invalid(
            "infno", "路径与报文的交易编号不一致", "the path's infno differs from the body's"
        )
    return Request(envelope, INPUTS[envelope.infno].read(envelope.input, "input"), envelope.input)
