"""The staff API's one parsing layer: a type for every kind of field.

Every path, query, header, form and body field of the API is declared with
one of these types, so each is read once, here, by the readings every
channel shares (``domain.values`` and ``domain.money.yuan_to_fen``): ASCII
digits only, dates and months between 1900 and 2100, amounts with at most 12
digits before the point and 2 after, counts and texts of a bounded length.
A value that does not read is answered 422 naming the field (the request
validation handler in ``errors.py`` gives the field from where it stood in
the request), never a 500, and never a check written again at a call site.
The OpenAPI document shows each type's form, so generated clients and the
fuzzing test know it too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from yibao.domain import divisions as dv
from yibao.domain import values
from yibao.domain.errors import DomainError, invalid
from yibao.domain.money import MAX_YUAN_DIGITS, yuan_to_fen
from yibao.domain.workdays import MAX_WORKING_DAYS

MAX_MATERIALS = 20
_WORD = "^[0-9A-Za-z][0-9A-Za-z._-]*$"

# The readings name their field for other channels; here the request
# validation handler names it from its place in the request instead.
_FIELD = "value"


def _refusal(exc: DomainError) -> PydanticCustomError:
    return PydanticCustomError(exc.code, "{reason}", {"reason": f"{exc.zh} / {exc.en}"})


class Reading:
    """``Annotated`` metadata: read the raw value with ``read`` (a reading of
    ``domain.values``), show ``schema`` in the OpenAPI document."""

    def __init__(self, read: Callable[[Any], Any], schema: dict[str, Any]) -> None:
        self.read = read
        self.schema = schema

    def _validate(self, value: Any) -> Any:
        try:
            return self.read(value)
        except DomainError as exc:
            raise _refusal(exc) from None

    def __get_pydantic_core_schema__(
        self, source: type[Any], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(self._validate)

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return dict(self.schema)


def _string(pattern: str | None = None, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", **more}
    if pattern is not None:
        out["pattern"] = pattern
    return out


# ---------------------------------------------------------------- readings


def _digits(length: int) -> Callable[[Any], str]:
    return lambda v: values.digits(v, field=_FIELD, length=length)


def _division(value: Any) -> str:
    code = values.digits(value, field=_FIELD, most=9)
    dv.level_of(code)  # 6 or 9 digits
    return code


def _blank_or(read: Callable[[Any], str]) -> Callable[[Any], str]:
    """An optional field a client may also send empty."""
    return lambda v: "" if v is None or (isinstance(v, str) and not v.strip()) else read(v)


def _certno(value: Any) -> str:
    # the ID number's own rules (date, check character) are the domain's,
    # applied by the service; here: 18 ASCII letters and digits at most
    return values.code(value, field=_FIELD, most=18).upper()


def _uscc(value: Any) -> str:
    return values.code(value, field=_FIELD, most=18).upper()


def _code(most: int) -> Callable[[Any], str]:
    return lambda v: values.code(v, field=_FIELD, most=most)


def _text(most: int, *, required: bool = True) -> Callable[[Any], str]:
    def read(value: Any) -> str:
        out = values.text(value, field=_FIELD, most=most, required=False, lines=True)
        if required and not out:
            raise invalid(_FIELD, "不能为空", "required", "missing")
        return out

    return read


def _secret(value: Any) -> str:
    """A password as typed: not trimmed, of bounded length."""
    if not isinstance(value, str) or not 1 <= len(value) <= 200:
        raise invalid(_FIELD, "应为1至200个字符", "1 to 200 characters", "length")
    return values.text(value, field=_FIELD, most=200, trim=False, lines=True)


def _amount(value: Any) -> int:
    return yuan_to_fen(value, field=_FIELD)


def _month(value: Any) -> int:
    return values.month(value, field=_FIELD)


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return values.checked_date(value, field=_FIELD)
    return values.date(value, field=_FIELD)


def _count(least: int, most: int) -> Callable[[Any], int]:
    return lambda v: values.count(v, field=_FIELD, least=least, most=most)


def _materials(value: Any) -> list[str]:
    # a list of words; a form may send them as one comma-separated value
    items = value if isinstance(value, list) else [value]
    words = [
        part for item in items for part in (item.split(",") if isinstance(item, str) else [item])
    ]
    found = [
        values.code(w, field=_FIELD, most=40)
        for w in words
        if not (isinstance(w, str) and not w.strip())
    ]
    if len(found) > MAX_MATERIALS:
        raise invalid(_FIELD, f"最多{MAX_MATERIALS}项", f"at most {MAX_MATERIALS} items", "length")
    return found


def _bank_account(value: Any) -> str:
    # as printed on a card or passbook: groups of digits with spaces
    text = "".join(value.split()) if isinstance(value, str) else value
    return values.digits(text, field=_FIELD, most=30)


def _key(value: Any) -> str:
    return values.key(value, field=_FIELD, least=8, most=64)


def _moment(value: dt.datetime) -> dt.datetime:
    try:
        values.checked_date(value.date(), field=_FIELD)
    except DomainError as exc:
        raise _refusal(exc) from None
    return value.astimezone(dt.UTC)


# ---------------------------------------------------------------- the types

AccountNo = Annotated[
    str,
    Reading(_digits(16), _string("^[0-9]{16}$", description="医保个人账户号 16 digits")),
]
CardNo = Annotated[
    str, Reading(_digits(10), _string("^[0-9]{10}$", description="卡号 card number, 10 digits"))
]
DivisionCode = Annotated[
    str,
    Reading(
        _division,
        _string("^[0-9]{6}([0-9]{3})?$", description="行政区划代码, 6 or 9 digits"),
    ),
]
AreaCode = Annotated[
    str, Reading(_digits(6), _string("^[0-9]{6}$", description="统筹区 area code, 6 digits"))
]
Certno = Annotated[
    str,
    Reading(
        _certno,
        _string("^[0-9]{17}[0-9Xx]$", description="居民身份证号码 resident ID number"),
    ),
]
OptionalCertno = Annotated[
    str, Reading(_blank_or(_certno), _string("^([0-9]{17}[0-9Xx])?$", description="or empty"))
]
Uscc = Annotated[
    str,
    Reading(
        _uscc,
        _string("^[0-9A-Za-z]{18}$", description="统一社会信用代码 unified social credit code"),
    ),
]
# A number or code yibao or a machine made: an application, batch, voucher,
# closure or certificate number, a call's id, a terminal's or institution's code.
Code = Annotated[str, Reading(_code(64), _string(_WORD, maxLength=64))]
# A word from a short list the service knows (a kind, a role, a material).
Word = Annotated[str, Reading(_code(40), _string(_WORD, maxLength=40))]
Pin = Annotated[str, Reading(_digits(6), _string("^[0-9]{6}$", description="6 digits"))]
Amount = Annotated[
    int,
    Reading(
        _amount,
        _string(
            f"^-?[0-9]{{1,{MAX_YUAN_DIGITS}}}(\\.[0-9]{{1,2}})?$",
            description="yuan, e.g. '1234.56'",
        ),
    ),
]
Month = Annotated[
    int,
    Reading(_month, _string("^[0-9]{4}-?[0-9]{2}$", description="YYYY-MM", examples=["2026-11"])),
]
Day = Annotated[dt.date, Reading(_date, _string("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", format="date"))]
Year = Annotated[
    int,
    Reading(
        _count(values.MIN_YEAR, values.MAX_YEAR),
        {"type": "integer", "minimum": values.MIN_YEAR, "maximum": values.MAX_YEAR},
    ),
]
WorkingDays = Annotated[
    int,
    Reading(
        _count(0, MAX_WORKING_DAYS),
        {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_WORKING_DAYS,
            "description": f"working days to add, at most {MAX_WORKING_DAYS}",
        },
    ),
]
Months = Annotated[int, Reading(_count(1, 120), {"type": "integer", "minimum": 1, "maximum": 120})]
TokenDays = Annotated[
    int, Reading(_count(1, 366), {"type": "integer", "minimum": 1, "maximum": 366})
]
Moment = Annotated[AwareDatetime, AfterValidator(_moment)]
BankAccount = Annotated[
    str, Reading(_bank_account, _string("^[0-9 ]{1,40}$", description="digits, spaces allowed"))
]
IdempotencyKey = Annotated[
    str,
    Reading(_key, _string("^[!-~]{8,64}$", description="8 to 64 printable ASCII characters")),
]
# Texts, trimmed, each bounded by the column that keeps it.
Name = Annotated[str, Reading(_text(50), _string(minLength=1, maxLength=50))]
Label = Annotated[str, Reading(_text(100), _string(minLength=1, maxLength=100))]
Text = Annotated[str, Reading(_text(200), _string(minLength=1, maxLength=200))]
Note = Annotated[str, Reading(_text(200, required=False), _string(maxLength=200))]
# at most 20 characters, may be empty: a telephone number, a relation
Short = Annotated[str, Reading(_text(20, required=False), _string(maxLength=20))]
Username = Annotated[str, Reading(_text(50), _string(minLength=1, maxLength=50))]
Password = Annotated[str, Reading(_secret, _string(minLength=1, maxLength=200))]
Materials = Annotated[
    list[str],
    Reading(
        _materials,
        {
            "type": "array",
            "items": _string(_WORD, maxLength=40),
            "maxItems": MAX_MATERIALS,
            "description": "材料清单: words such as id_card, photo",
        },
    ),
]

# ---- issue 16: public look-ups
PageNo = Annotated[
    int, Reading(_count(1, 10_000), {"type": "integer", "minimum": 1, "maximum": 10_000})
]
PageSize = Annotated[
    int,
    Reading(
        _count(1, 100),
        {"type": "integer", "minimum": 1, "maximum": 100, "description": "at most 100"},
    ),
]
# a part of a code or a name to look for
Query = Annotated[str, Reading(_text(50, required=False), _string(maxLength=50))]
Address = Annotated[str, Reading(_text(200, required=False), _string(maxLength=200))]
# a catalogue item's code: letters, digits and . - _
ItemCode = Annotated[str, Reading(_code(50), _string(_WORD, maxLength=50))]
Percent = Annotated[
    int,
    Reading(
        _count(0, 10000),
        {
            "type": "integer",
            "minimum": 0,
            "maximum": 10000,
            "description": "basis points: 1000 = 10%",
        },
    ),
]
Price = Annotated[
    int,
    Reading(
        _amount,
        _string(
            f"^[0-9]{{1,{MAX_YUAN_DIGITS}}}(\\.[0-9]{{1,2}})?$",
            description="yuan, e.g. '28.60'",
        ),
    ),
]


class Body(BaseModel):
    """A request body: unknown fields are ignored, as before."""

    model_config = ConfigDict(extra="ignore")
