"""The web channels' one parsing layer (issue 14).

Every form, query and path a page sends is read into a model here before a
route sees it, each field through one of the shared readings of
``domain.values``: digits are ASCII digits, a date lies between 1900 and
2100, a line of text has a bounded length and no control character (a NUL
byte cannot even be stored by PostgreSQL), a choice is one of its choices.
A bad value raises the reading's ``DomainError``, which names the field; the
channel's handler shows it on the page the form came from. No route checks
a value of its own, so a field added to a form is read the same way.

A CSRF token of the wrong shape is read as no token: the form is refused
like any other without its page's token (403, "reload the page").

The models are read by dependencies (``posted``, ``queried``, ``routed``)
that take the values out of the request themselves, so that nothing of
FastAPI's own validation (a 422 in JSON) is left on a page.
"""

from __future__ import annotations

import datetime as dt
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from enum import StrEnum
from functools import partial
from typing import Annotated, Any, ClassVar, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, ValidationInfo
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from yibao.domain import values
from yibao.domain.cards import CardKind, Path
from yibao.domain.errors import DomainError, invalid
from yibao.domain.money import yuan_to_fen

M = TypeVar("M", bound=BaseModel)
E = TypeVar("E", bound=StrEnum)

# The longest value of each kind of field; each is at least the column it
# is kept in, so that no value reaches the database too long for it.
CSRF_MOST = 64
SECRET_MOST = 128  # a password: hashed, never stored, but hashing is work
LOGIN_ID_MOST = 20  # an ID number (18) or an account number (16)
CODE_MOST = 40  # a terminal code, an activation code
CARD_NO_MOST = 20
CERTNO_MOST = 18
ACCOUNT_NO_MOST = 16
NAME_MOST = 50
TEXT_MOST = 200
CHOICE_MOST = 40
MATERIALS_MOST = 10


def _field(info: ValidationInfo) -> str:
    return str(info.field_name or "value")


def _reading(read: Callable[..., object]) -> BeforeValidator:
    """A shared reading as a field's validator, told the field's name."""

    def validate(value: object, info: ValidationInfo) -> object:
        return read(value, field=_field(info))

    return BeforeValidator(validate)


def _optional(read: Callable[..., object]) -> Callable[..., object]:
    """A reading that leaves an empty field empty."""

    def optional(value: object, *, field: str) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return ""
        return read(value, field=field)

    return optional


def _csrf(value: object, *, field: str) -> str:
    try:
        return values.token(value, field=field, most=CSRF_MOST)
    except DomainError:
        return ""  # no token of ours: refused as a page that has expired


def _day(value: object, *, field: str) -> dt.date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return values.date(value, field=field)


def _choice(kind: type[E], allowed: tuple[E, ...], default: E) -> Callable[..., E]:
    def read(value: object, *, field: str) -> E:
        if isinstance(value, kind):
            return value
        text = values.text(value, field=field, most=CHOICE_MOST, required=False)
        if not text:
            return default
        for choice in allowed:
            if choice.value == text:
                return choice
        options = "、".join(c.value for c in allowed)
        raise invalid(field, f"应为{options}之一", f"one of {', '.join(allowed)}", "choice")

    return read


def _materials(value: object, *, field: str) -> list[str]:
    items = value if isinstance(value, list) else [] if value is None else [value]
    if len(items) > MATERIALS_MOST:
        raise invalid(field, f"最多{MATERIALS_MOST}项", f"at most {MATERIALS_MOST}", "length")
    return [values.text(v, field=field, most=CHOICE_MOST) for v in items]


def _upload(value: object, *, field: str) -> UploadFile:
    if not isinstance(value, UploadFile):
        raise invalid(field, "请选择要上传的文件", "choose a file to upload", "missing")
    return value


def _line(most: int, *, required: bool = False, **kw: Any) -> BeforeValidator:
    return _reading(partial(values.text, most=most, required=required, **kw))


Csrf = Annotated[str, _reading(_csrf)]
Secret = Annotated[str, _line(SECRET_MOST, trim=False)]
LoginId = Annotated[str, _line(LOGIN_ID_MOST)]
Code = Annotated[str, _line(CODE_MOST)]
CertNo = Annotated[str, _line(CERTNO_MOST)]
AccountNo = Annotated[str, _line(ACCOUNT_NO_MOST)]
Name = Annotated[str, _line(NAME_MOST)]
Text = Annotated[str, _line(TEXT_MOST)]
Choice = Annotated[str, _line(CHOICE_MOST)]
CardNo = Annotated[str, _reading(_optional(partial(values.digits, most=CARD_NO_MOST)))]
GivenCardNo = Annotated[str, _reading(partial(values.digits, most=CARD_NO_MOST))]
DivisionCode = Annotated[str, _reading(_optional(partial(values.digits, most=9)))]
Pin = Annotated[str, _reading(partial(values.digits, length=6))]
PinOrNone = Annotated[str, _reading(_optional(partial(values.digits, length=6)))]
# Empty or short, a keyed PIN goes on to the terminal's service, which says
# "enter 6 digits" without counting a try; only a non-digit is refused here.
KeypadPin = Annotated[str, _reading(_optional(partial(values.digits, most=12)))]
Day = Annotated[dt.date | None, _reading(_day)]
Materials = Annotated[list[str], _reading(_materials)]
# Any, so that a missing file (None) still goes through the reading
Upload = Annotated[Any, _reading(_upload)]
CounterPath = Annotated[
    Path,
    _reading(
        _choice(Path, (Path.COUNTY_CENTER, Path.SERVICE_POINT, Path.DELEGATE), Path.COUNTY_CENTER)
    ),
]
Kind = Annotated[CardKind, _reading(_choice(CardKind, tuple(CardKind), CardKind.SOCIAL_SECURITY))]


class Form(BaseModel):
    """A form or a query: unknown fields are ignored, a field not sent is
    read like an empty one (a required field is refused by its reading)."""

    model_config = ConfigDict(
        extra="ignore", validate_default=True, frozen=True, arbitrary_types_allowed=True
    )


# ---------------------------------------------------------------- every channel


class CsrfForm(Form):
    csrf: Csrf = ""


# ---------------------------------------------------------------- the portal


class PortalLogin(Form):
    login_id: LoginId = ""
    password: Secret = ""


class PortalActivate(Form):
    login_id: LoginId = ""
    code: Code = ""
    password: Secret = ""
    password2: Secret = ""


class Period(Form):
    start: Day = None
    end: Day = None


class PasswordChange(Form):
    old_password: Secret = ""
    new_password: Secret = ""
    new_password2: Secret = ""


class PhonePin(Form):
    phone_password: Secret = ""
    phone_pin: Pin = ""
    phone_pin2: Pin = ""


class OwnCard(Form):
    card_no: GivenCardNo = ""


# ---------------------------------------------------------------- the terminal


class KioskActivateLink(Form):
    terminal: Code = ""
    code: Code = ""


class KioskActivate(Form):
    terminal: Code = ""
    activation_code: Code = ""


class KioskCard(Form):
    card_no: GivenCardNo = ""


class KioskPin(Form):
    pin: KeypadPin = ""


# ---------------------------------------------------------------- the counter


class CounterLogin(Form):
    username: Name = ""
    password: Secret = ""


class Search(Form):
    certno: CertNo = ""
    card_no: CardNo = ""
    name: Name = ""


class VisitForm(Form):
    account_no: AccountNo = ""
    document: Choice = ""


class PersonRef(Form):
    account_no: AccountNo = ""


class ActionRef(Form):
    account_no: AccountNo = ""
    action: Choice = ""


class CardAction(Form):
    """Every field of a visit's actions; each action reads the ones it needs."""

    path: CounterPath = Path.COUNTY_CENTER
    kind: Kind = CardKind.SOCIAL_SECURITY
    pin: PinOrNone = ""
    delegate_certno: CertNo = ""
    delegate_name: Name = ""
    card_no: CardNo = ""
    collector_certno: CertNo = ""
    reason: Text = ""
    materials: Materials = []


class Applications(Form):
    view: Choice = "due"


class BatchUpload(Form):
    employer_uscc: CertNo = ""
    letter_ref: Annotated[str, _line(100)] = ""
    handler_certno: CertNo = ""
    handler_name: Name = ""
    materials: Materials = []
    file: Upload = None

    @property
    def upload(self) -> UploadFile:
        return typing.cast(UploadFile, self.file)


TERMINAL_LABELS = {"code": ("终端编号", "terminal code")}


class TerminalForm(Form):
    LABELS: ClassVar[dict[str, tuple[str, str]]] = TERMINAL_LABELS

    code: Code = ""
    location: Text = ""
    division_code: DivisionCode = ""


class TerminalRef(Form):
    LABELS: ClassVar[dict[str, tuple[str, str]]] = TERMINAL_LABELS

    code: Code = ""
    action: Choice = ""


# ---------------------------------------------------------------- reading a request

# What each field is called on the pages: a refusal of the parsing layer
# names the field first ("卡号：应为数字(0-9)"), since the reading's own
# message says only what is wrong.
LABELS: dict[str, tuple[str, str]] = {
    "login_id": ("证件号码或医保账号", "ID or account number"),
    "password": ("密码", "password"),
    "password2": ("确认密码", "password again"),
    "code": ("激活码", "activation code"),
    "start": ("开始日期", "start date"),
    "end": ("结束日期", "end date"),
    "old_password": ("原密码", "current password"),
    "new_password": ("新密码", "new password"),
    "new_password2": ("确认新密码", "new password again"),
    "phone_password": ("登录密码", "portal password"),
    "phone_pin": ("电话查询密码", "telephone PIN"),
    "phone_pin2": ("确认电话查询密码", "telephone PIN again"),
    "card_no": ("卡号", "card number"),
    "terminal": ("终端编号", "terminal code"),
    "activation_code": ("激活码", "activation code"),
    "pin": ("密码", "PIN"),
    "username": ("用户名", "username"),
    "certno": ("公民身份号码", "ID number"),
    "name": ("姓名", "name"),
    "account_no": ("医保账号", "account number"),
    "document": ("证件", "document"),
    "action": ("业务", "action"),
    "path": ("办理方式", "way of applying"),
    "kind": ("卡种", "kind of card"),
    "delegate_certno": ("受托人身份证号码", "delegate's ID number"),
    "delegate_name": ("受托人姓名", "delegate's name"),
    "collector_certno": ("领卡人身份证号码", "collector's ID number"),
    "reason": ("原因", "reason"),
    "materials": ("材料", "materials"),
    "view": ("视图", "view"),
    "employer_uscc": ("单位统一社会信用代码", "employer's credit code"),
    "letter_ref": ("单位介绍信编号", "letter reference"),
    "handler_certno": ("经办人身份证号码", "handler's ID number"),
    "handler_name": ("经办人姓名", "handler's name"),
    "file": ("文件", "file"),
    "location": ("位置", "location"),
    "division_code": ("行政区划", "division"),
    "form": ("表单", "form"),
}


def _named(exc: DomainError, labels: Mapping[str, tuple[str, str]] = LABELS) -> DomainError:
    """The reading's refusal, with the field's name on the page in front."""
    field = exc.field or "form"
    zh_label, en_label = labels.get(field, LABELS.get(field, (field, field)))
    zh, en = ("请填写", "required") if exc.code == "validation.missing" else (exc.zh, exc.en)
    return invalid(field, f"{zh_label}：{zh}", f"{en_label}: {en}", exc.code.split(".", 1)[-1])


def _is_list(model: type[BaseModel], name: str) -> bool:
    return typing.get_origin(model.model_fields[name].annotation) is list


def parse(model: type[M], data: Mapping[str, Any]) -> M:
    """Read ``data`` (a form, a query, a path) into ``model``; a bad field
    raises a ``DomainError`` naming it."""
    given: dict[str, Any] = {}
    for name in model.model_fields:
        if name not in data:
            continue
        many = _is_list(model, name)
        getlist = getattr(data, "getlist", None)
        if getlist is not None:
            found = list(getlist(name))
            given[name] = found if many else found[-1]
        else:
            given[name] = data[name]
    try:
        return model.model_validate(given)
    except DomainError as exc:
        raise _named(exc, getattr(model, "LABELS", LABELS)) from None
    except ValidationError as exc:  # a reading let a value through that the type refuses
        loc = exc.errors()[0].get("loc", ())
        field = str(loc[0]) if loc else "form"
        raise _named(invalid(field, "格式错误", "malformed", "format")) from None


async def form_of(request: Request) -> AsyncIterator[FormData]:
    """A dependency: the request's form, read once; a form that cannot be
    read is a refusal, not a fault. Its uploaded files are closed after the
    route."""
    try:
        form = await request.form()
    except HTTPException:  # starlette's answer to a malformed multipart body
        raise _named(invalid("form", "无法读取", "cannot be read", "format")) from None
    try:
        yield form
    finally:
        await form.close()


TheForm = Annotated[FormData, Depends(form_of)]


def posted(model: type[M]) -> Callable[[FormData], Awaitable[M]]:
    """A dependency: the form posted, read into ``model``."""

    async def read(form: TheForm) -> M:
        return parse(model, form)

    return read


def queried(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency: the query string, read into ``model``."""

    async def read(request: Request) -> M:
        return parse(model, request.query_params)

    return read


def routed(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency: the path's parameters, read into ``model``."""

    async def read(request: Request) -> M:
        return parse(model, request.path_params)

    return read


async def csrf_given(form: TheForm) -> str:
    """The CSRF token a form carries ("" for none, or one of the wrong shape)."""
    return parse(CsrfForm, form).csrf


# ---- issue 15: employer

EMPLOYER_LABELS: dict[str, tuple[str, str]] = {
    "uscc": ("统一社会信用代码", "unified social credit code"),
    "certno": ("公民身份号码", "ID number"),
    "name": ("姓名", "name"),
    "start": ("入职日期", "first day"),
    "end": ("离职日期", "last day"),
    "base": ("月缴费基数（元）", "monthly base (yuan)"),
    "account_no": ("医保账号", "account number"),
}


def _yuan(value: object, *, field: str) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    return yuan_to_fen(value, field=field)


Yuan = Annotated[int, _reading(_yuan)]
# a date the form must give: not sent reads as empty, and is refused by name
GivenDay = Annotated[dt.date, _reading(values.date)]
Uscc = Annotated[str, _line(CERTNO_MOST)]


class EmployerLogin(Form):
    LABELS: ClassVar[dict[str, tuple[str, str]]] = EMPLOYER_LABELS

    uscc: Uscc = ""
    password: Secret = ""


class EmployerActivate(Form):
    LABELS: ClassVar[dict[str, tuple[str, str]]] = EMPLOYER_LABELS

    uscc: Uscc = ""
    code: Code = ""
    password: Secret = ""
    password2: Secret = ""


class Hire(Form):
    LABELS: ClassVar[dict[str, tuple[str, str]]] = EMPLOYER_LABELS

    certno: CertNo = ""
    name: Name = ""
    start: GivenDay = ""  # type: ignore[assignment]
    base: Yuan = 0


class Leave(Form):
    LABELS: ClassVar[dict[str, tuple[str, str]]] = EMPLOYER_LABELS

    account_no: AccountNo = ""
    end: GivenDay = ""  # type: ignore[assignment]


class OwnBatch(Form):
    handler_certno: CertNo = ""
    handler_name: Name = ""
    file: Upload = None

    @property
    def upload(self) -> UploadFile:
        return typing.cast(UploadFile, self.file)


class EmployerCode(Form):
    """The counter's form that issues an employer's activation code."""

    LABELS: ClassVar[dict[str, tuple[str, str]]] = {
        "employer_uscc": ("单位统一社会信用代码", "employer's credit code")
    }

    employer_uscc: Uscc = ""


# ---- issue 15: counter


class Confirmation(Form):
    """The second submit of an irreversible action at the counter: the token
    its confirmation page carried (one of the wrong shape is read as none,
    and the action is asked to be confirmed again)."""

    LABELS: ClassVar[dict[str, tuple[str, str]]] = {"confirm": ("确认", "confirmation")}

    confirm: Csrf = ""


CLOSURE_LABELS = {
    "kind": ("注销类型", "kind of closing"),
    "destination_area": ("转入地区划代码", "destination area code"),
    "reason": ("说明", "note"),
}


class Closure(Form):
    """Closing the visit's person's account."""

    LABELS: ClassVar[dict[str, tuple[str, str]]] = CLOSURE_LABELS

    kind: Choice = ""
    destination_area: DivisionCode = ""
    reason: Text = ""


class CardRef(Form):
    card_no: GivenCardNo = ""


class ReadyForm(Form):
    """Marking a card ready from a list: the list to come back to."""

    view: Choice = "due"


# ---- issue 15: portal and terminal


class OwnCardFound(Form):
    """Undoing one's own card's loss report on the portal: the password again."""

    card_no: GivenCardNo = ""
    password: Secret = ""


class PasswordReset(Form):
    """A forgotten portal password set anew with the ID number and the telephone PIN."""

    certno: CertNo = ""
    phone_pin: Pin = ""
    password: Secret = ""
    password2: Secret = ""


# ---- issue 16: off-site care

OFFSITE_LABELS: dict[str, tuple[str, str]] = {
    "kind": ("备案类型", "kind of filing"),
    "visit_area": ("就医地区划代码", "destination area code"),
    "start": ("开始日期", "first day"),
    "end": ("结束日期", "last day"),
    "filing_id": ("备案编号", "filing number"),
    "account_no": ("医保账号", "account number"),
}


class OffsiteFiling(Form):
    """A filing for care in another area (异地就医备案). The kind and the
    destination are read as bounded text: ``domain.offsite`` names a wrong
    choice or code, so that the page can show it beside the person's list."""

    LABELS: ClassVar[dict[str, tuple[str, str]]] = OFFSITE_LABELS

    kind: Choice = ""
    visit_area: Choice = ""
    start: Day = None
    end: Day = None


class OffsiteRef(Form):
    """A filing in a path: the portal's own, or the counter visit's person's."""

    LABELS: ClassVar[dict[str, tuple[str, str]]] = OFFSITE_LABELS

    account_no: AccountNo = ""
    filing_id: Annotated[str, _reading(partial(values.digits, most=18))] = ""

    @property
    def id(self) -> int:
        return int(self.filing_id)


# ---- issue 16: public look-ups

PUBLIC_LABELS: dict[str, tuple[str, str]] = {
    **LABELS,
    "area": ("地区", "area"),
    "kind": ("机构类型", "kind"),
    "level": ("机构等级", "level"),
    "offsite": ("异地就医结算", "off-site settlement"),
    "name": ("名称", "name"),
    "page": ("页码", "page"),
    "q": ("编码或名称", "code or name"),
    "category": ("类别", "category"),
    "code": ("编码", "code"),
    "address": ("地址", "address"),
    "telephone": ("电话", "telephone"),
    "selfpay_pct": ("先行自付比例", "self-pay share"),
    "price": ("参考价格", "price"),
}


def _page_no(value: object, *, field: str) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return 1
    return values.count(value, field=field, least=1, most=10_000)


def _share(value: object, *, field: str) -> int:
    from yibao.domain.catalogue import share_to_bp

    return share_to_bp(value, field=field)


def _checkbox(value: object, *, field: str) -> bool:
    if isinstance(value, bool):
        return value
    return value not in (None, "", "0", "off", "false")


def _yes_no(value: object, *, field: str) -> str:
    text = values.text(value, field=field, most=CHOICE_MOST, required=False)
    if text not in ("", "yes", "no"):
        raise invalid(field, "应为“是”或“否”", "yes or no", "choice")
    return text


PageNo = Annotated[int, _reading(_page_no)]
YesNo = Annotated[str, _reading(_yes_no)]
Share = Annotated[int, _reading(_share)]
Checkbox = Annotated[bool, _reading(_checkbox)]
AreaCode = Annotated[str, _reading(partial(values.digits, length=6))]


class PublicInstitutions(Form):
    LABELS: ClassVar[dict[str, tuple[str, str]]] = PUBLIC_LABELS

    area: DivisionCode = ""
    kind: Choice = ""
    level: Choice = ""
    offsite: YesNo = ""
    name: Name = ""
    page: PageNo = 1


class PublicCatalogue(Form):
    LABELS: ClassVar[dict[str, tuple[str, str]]] = PUBLIC_LABELS

    q: Name = ""
    area: DivisionCode = ""
    category: Choice = ""
    page: PageNo = 1


class DirectoryInstitution(Form):
    LABELS: ClassVar[dict[str, tuple[str, str]]] = PUBLIC_LABELS

    code: Code = ""
    name: Text = ""
    address: Text = ""
    telephone: Annotated[str, _line(30)] = ""
    offsite: Checkbox = False


class DirectoryItem(Form):
    LABELS: ClassVar[dict[str, tuple[str, str]]] = PUBLIC_LABELS

    area: AreaCode = ""
    code: Annotated[str, _line(50)] = ""
    name: Text = ""
    category: Choice = ""
    selfpay_pct: Share = 0
    price: Yuan = 0


class CatalogueUpload(Form):
    LABELS: ClassVar[dict[str, tuple[str, str]]] = PUBLIC_LABELS

    area: AreaCode = ""
    file: Upload = None

    @property
    def upload(self) -> UploadFile:
        return typing.cast(UploadFile, self.file)


# ---- issue 16: family mutual aid

FAMILY_LABELS = {
    "certno": ("家庭成员公民身份号码", "relative's ID number"),
    "name": ("家庭成员姓名", "relative's name"),
    "relation": ("关系", "relation"),
    "relative_document": ("已核验的家庭成员证件", "relative's document checked"),
    "binding": ("共济绑定", "family binding"),
    "year": ("年度", "year"),
    "key": ("提交编号", "submission key"),
}


def _year(value: object, *, field: str) -> int:
    return values.count(value, field=field, least=1901, most=2199)


def _binding(value: object, *, field: str) -> int:
    return values.count(value, field=field, least=1, most=10**15)


class FamilyBind(Form):
    """A holder binds a relative: the relative's ID number, name and
    relation; at the counter also the document checked for the relative."""

    LABELS: ClassVar[dict[str, tuple[str, str]]] = FAMILY_LABELS

    certno: CertNo = ""
    name: Name = ""
    relation: Choice = ""
    relative_document: Choice = ""


class FamilyRef(Form):
    """One family binding, by its number on the page."""

    LABELS: ClassVar[dict[str, tuple[str, str]]] = FAMILY_LABELS

    binding: Annotated[int, _reading(_binding)] = 0


class FamilyContribution(Form):
    """A holder pays a bound relative's yearly resident contribution; the
    page's key makes a resubmitted form pay once."""

    LABELS: ClassVar[dict[str, tuple[str, str]]] = FAMILY_LABELS

    binding: Annotated[int, _reading(_binding)] = 0
    year: Annotated[int, _reading(_year)] = 0
    key: Annotated[str, _reading(partial(values.key, most=80))] = ""


# ---- issue 17: dashboard


class DashboardQuery(Form):
    """The dashboard's period and area (a division inside the staff member's
    own; empty for their own)."""

    start: Day = None
    end: Day = None
    area: DivisionCode = ""


class DashboardFile(Form):
    """A download: one figure, as CSV or XLSX."""

    figure: Choice = ""
    fmt: Choice = ""
