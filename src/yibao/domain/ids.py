"""Identifiers: resident ID numbers (GB 11643), credit codes (GB 32100), card numbers."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from stdnum import luhn
from stdnum.cn import ric, uscc
from stdnum.exceptions import InvalidChecksum, InvalidLength, ValidationError

from yibao.domain.errors import DomainError, invalid
from yibao.domain.values import is_digits


@dataclass(frozen=True)
class ResidentId:
    number: str
    birth_date: dt.date
    gender: str  # "1" male, "2" female, as the platform codes it (gend)
    birth_place: str  # the 6-digit division of first registration


def parse_resident_id(
    value: str | None, *, field: str = "certno", today: dt.date | None = None
) -> ResidentId:
    """Validate an 18-character resident ID number and read what it says.

    Length, the birth date and the GB 11643 check character are checked by
    python-stdnum; the sequence digit's parity gives the gender.
    """
    if value is None or not str(value).strip():
        raise invalid(
            field, "居民身份证号码不能为空", "the resident ID number is required", "required"
        )
    raw = str(value).strip().upper()
    # Length, format, birth date and check character, as GB 11643 defines
    # them. python-stdnum's ric.validate() also insists that the first six
    # digits name a county that existed on the birth date, per its own table;
    # real numbers keep codes of since-renamed counties, so that check is not
    # ours to make (the household registration is recorded separately).
    number = ric.compact(raw)
    if len(number) != 18:
        raise invalid(
            field,
            f"居民身份证号码应为18位，收到{len(number)}位",
            f"a resident ID number has 18 characters, got {len(number)}",
            "length",
        )
    if not is_digits(number[:17]) or not (is_digits(number[17]) or number[17] == "X"):
        raise invalid(
            field,
            "居民身份证号码只能由17位数字和1位数字或X组成",
            "a resident ID number is 17 digits and a final digit or X",
            "format",
        )
    try:
        ric.get_birth_date(number)
    except ValidationError as exc:
        raise invalid(
            field,
            "居民身份证号码中的出生日期无效",
            "the birth date in the resident ID number is not a valid date",
            "birth_date",
        ) from exc
    if ric.calc_check_digit(number) != number[17]:
        raise invalid(
            field,
            "居民身份证号码校验位错误",
            "the check character of the resident ID number is wrong",
            "checksum",
        )
    birth = ric.get_birth_date(number)
    if today is not None and birth > today:
        raise invalid(
            field,
            "居民身份证号码中的出生日期晚于今天",
            "the birth date in the resident ID number is in the future",
            "birth_date",
        )
    gender = "1" if int(number[16]) % 2 == 1 else "2"
    return ResidentId(number=number, birth_date=birth, gender=gender, birth_place=number[:6])


def make_resident_id(division: str, birth: dt.date, sequence: int) -> str:
    """Build a valid ID number; for demo data and tests."""
    body = f"{division}{birth:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum expects a place for the check digit


def validate_credit_code(value: str | None, *, field: str = "uscc") -> str:
    """Validate a unified social credit code (GB 32100-2015)."""
    if value is None or not str(value).strip():
        raise invalid(
            field,
            "统一社会信用代码不能为空",
            "the unified social credit code is required",
            "required",
        )
    raw = str(value).strip().upper()
    try:
        return str(uscc.validate(raw))
    except InvalidLength as exc:
        raise invalid(
            field,
            "统一社会信用代码应为18位",
            "a unified social credit code has 18 characters",
            "length",
        ) from exc
    except InvalidChecksum as exc:
        raise invalid(
            field,
            "统一社会信用代码校验位错误",
            "the check character of the unified social credit code is wrong",
            "checksum",
        ) from exc
    except ValidationError as exc:
        raise invalid(
            field,
            "统一社会信用代码格式错误",
            "the unified social credit code has characters that are not allowed",
            "format",
        ) from exc


def make_credit_code(body17: str) -> str:
    return body17 + str(uscc.calc_check_digit(body17))


def new_card_no() -> str:
    """A 10-digit card number: 9 random digits and a Luhn check digit.

    Random, not from a sequence, so that card numbers can be issued on any
    node of a distributed database; the unique index catches the rare clash.
    """
    body = f"{secrets.randbelow(900_000_000) + 100_000_000}"
    return body + luhn.calc_check_digit(body)


def new_account_no(division: str) -> str:
    """A 16-digit insurance account number: area, 9 random digits, Luhn digit."""
    body = f"{division[:6]}{secrets.randbelow(10**9):09d}"
    return body + luhn.calc_check_digit(body)


def is_card_no(value: str) -> bool:
    return len(value) == 10 and is_digits(value) and luhn.is_valid(value)


def require_digits(value: str | None, *, field: str, length: int, zh: str, en: str) -> str:
    if value is None or len(value) != length or not is_digits(value):
        raise invalid(field, f"{zh}应为{length}位数字", f"{en} must be {length} digits", "format")
    return value


__all__ = [
    "DomainError",
    "ResidentId",
    "is_card_no",
    "make_credit_code",
    "make_resident_id",
    "new_account_no",
    "new_card_no",
    "parse_resident_id",
    "require_digits",
    "validate_credit_code",
]


def mask_certno(certno: str) -> str:
    """An ID number as printed on a document: area and last four only."""
    return certno[:6] + "********" + certno[-4:]
