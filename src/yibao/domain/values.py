"""The values people and machines type: digits, months, dates, times, counts.

Every channel's parsing layer reads its fields through these, so a careless
or hostile value is refused the same way everywhere, naming the field:

- digits are the ASCII ones only (``str.isdigit()`` also takes "²" and "１",
  which ``int()`` then refuses or reads as something else);
- a date or time lies between 1900 and 2100: a year 1 or 9999 is a typo or
  an attack, and past the edges some date arithmetic overflows;
- a count or a text has a bounded length, so that no request makes the
  server count or read without end.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from decimal import Decimal

from yibao.clock import CHINA
from yibao.domain.errors import invalid

MIN_YEAR = 1900
MAX_YEAR = 2100

_DIGITS = re.compile(r"[0-9]+")
_MONTH = re.compile(r"([0-9]{4})-?([0-9]{2})")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[ T]([0-9]{2}):([0-9]{2}):([0-9]{2}))?")


def is_digits(value: str) -> bool:
    """ASCII digits only, at least one."""
    return _DIGITS.fullmatch(value) is not None


def digits(value: object, *, field: str, length: int | None = None, most: int = 40) -> str:
    """A code of ASCII digits (a PIN, a card number's digits, a count)."""
    text = str(value if value is not None else "").strip()
    if not is_digits(text) or len(text) > most:
        raise invalid(field, "应为数字(0-9)", "only the digits 0-9", "digits")
    if length is not None and len(text) != length:
        raise invalid(field, f"应为{length}位数字", f"{length} digits", "length")
    return text


def count(value: object, *, field: str, least: int = 0, most: int) -> int:
    """A whole number between ``least`` and ``most`` (a documented limit)."""
    if isinstance(value, bool):
        raise invalid(field, "应为整数", "a whole number", "integer")
    if isinstance(value, int):
        number = value
    else:
        text = str(value if value is not None else "").strip()
        sign = -1 if text.startswith("-") else 1
        body = text[1:] if text[:1] in "+-" else text
        if not is_digits(body) or len(body) > 18:
            raise invalid(field, "应为整数", "a whole number", "integer")
        number = sign * int(body)
    if not least <= number <= most:
        raise invalid(
            field,
            f"应在{least}到{most}之间",
            f"between {least} and {most}",
            "range",
        )
    return number


def _year_ok(year: int, field: str) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise invalid(
            field,
            f"年份应在{MIN_YEAR}到{MAX_YEAR}之间",
            f"the year is between {MIN_YEAR} and {MAX_YEAR}",
            "range",
        )


def month(value: object, *, field: str = "month") -> int:
    """'2026-11' or 202611 → 202611."""
    m = _MONTH.fullmatch(str(value if value is not None else "").strip())
    if m is None or not 1 <= int(m.group(2)) <= 12:
        raise invalid(field, "月份格式应为YYYY-MM", "a month is written YYYY-MM", "format")
    _year_ok(int(m.group(1)), field)
    return int(m.group(1)) * 100 + int(m.group(2))


def date(value: object, *, field: str) -> dt.date:
    """A day written YYYY-MM-DD, in the years people live in."""
    m = _DATE.fullmatch(str(value if value is not None else "").strip())
    if m is None:
        raise invalid(field, "日期格式应为YYYY-MM-DD", "a date is written YYYY-MM-DD", "format")
    _year_ok(int(m.group(1)), field)
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise invalid(field, "日期不存在", "no such date", "format") from None


def checked_date(day: dt.date, *, field: str) -> dt.date:
    """A date already parsed (by a JSON model), in the years people live in."""
    _year_ok(day.year, field)
    return day


def time(value: object, *, field: str) -> dt.datetime:
    """A China time written ``yyyy-MM-dd HH:mm:ss`` (or a day, meaning its start)."""
    m = _TIME.fullmatch(str(value if value is not None else "").strip())
    if m is None:
        raise invalid(
            field, "时间格式应为yyyy-MM-dd HH:mm:ss", "a time is yyyy-MM-dd HH:mm:ss", "format"
        )
    _year_ok(int(m.group(1)), field)
    y, mo, d, h, mi, sec = (int(p) if p is not None else 0 for p in m.groups())
    try:
        return dt.datetime(y, mo, d, h, mi, sec, tzinfo=CHINA)
    except ValueError:
        raise invalid(field, "时间不存在", "no such time", "format") from None


# Control characters, NUL among them, and unpaired surrogates: PostgreSQL
# cannot store a NUL at all (the query fails), JSON can carry "\\ud800", which
# cannot even be encoded as UTF-8 to be hashed or sent to SQLite, and a line
# break or an escape in a name, a number or a password is an attack or a paste
# gone wrong, never the value. A text of several ``lines`` keeps its tabs and
# line breaks.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_CONTROL_IN_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def text(
    value: object,
    *,
    field: str,
    most: int,
    required: bool = True,
    trim: bool = True,
    lines: bool = False,
) -> str:
    """A text a person typed (a name, a number, a reason, a password with
    ``trim=False``: its spaces are its own): at most ``most`` characters, no
    control character; empty is "" unless ``required``. A whole number is
    taken as its digits."""
    if isinstance(value, bool) or (value is not None and not isinstance(value, str | int | float)):
        raise invalid(field, "应为文本", "a text", "type")
    out = str(value if value is not None else "")
    if trim:
        out = out.strip()
    if (_CONTROL_IN_LINES if lines else _CONTROL).search(out):
        raise invalid(field, "含有不允许的控制字符", "contains a control character", "format")
    if len(out) > most:
        raise invalid(field, f"最多{most}个字符", f"at most {most} characters", "length")
    if required and not out:
        raise invalid(field, f"缺少{field}", f"missing {field}", "missing")
    return out


# ---- numbers and identifiers

_NUMBER = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")
_VISIBLE = re.compile(r"[!-~]+")


def number(
    value: object,
    *,
    field: str,
    places: int,
    most_digits: int,
    signed: bool = False,
    what: tuple[str, str] = ("数值", "the number"),
    reason: str = "number",
) -> Decimal:
    """A decimal number (an amount in yuan, a fee line's count, 0.5 of a
    box): a text of ASCII digits with at most ``places`` decimals and
    ``most_digits`` before the point, or a JSON number; negative only when
    ``signed``; never an exponent, never another kind of digit (full-width
    "１２３"). ``what`` names it in the refusals, whose code is ``reason``."""
    zh, en = what
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise invalid(field, f"{zh}应为数字", f"{en} is not a number", reason)
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) >= 10**most_digits:
            raise invalid(field, f"{zh}过大或不是数字", f"{en} is too large", reason)
        given = format(Decimal(repr(value)), "f")
    else:
        given = str(value).strip()
    m = _NUMBER.fullmatch(given)
    if m is None or (m.group(1) and not signed):
        sign_zh, sign_en = ("", "") if signed else ("，不能为负", ", not negative")
        raise invalid(
            field,
            f"{zh}应为数字(0-9){sign_zh}",
            f"{en} is written in the digits 0-9{sign_en}",
            reason,
        )
    sign, whole, decimals = m.group(1), m.group(2), (m.group(3) or "").rstrip("0")
    if len(whole.lstrip("0")) > most_digits:
        raise invalid(
            field,
            f"{zh}过大(整数部分最多{most_digits}位)",
            f"{en} has more than {most_digits} digits before the point",
            reason,
        )
    if len(decimals) > places:
        raise invalid(
            field, f"{zh}最多{places}位小数", f"{en} has at most {places} decimals", reason
        )
    return Decimal(f"{sign}{whole}.{decimals or '0'}")


def identifier(value: object, *, field: str, most: int) -> str:
    """A code a machine issued (a visit's or a settlement's id, a card's or a
    receipt's number, a token): visible ASCII characters, no space, at most
    ``most`` of them. A whole number is taken as its digits."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid(field, "应为文本", "a text", "type")
    given = str(value).strip()
    if _VISIBLE.fullmatch(given) is None:
        raise invalid(
            field,
            "只能包含可见的ASCII字符(字母、数字、标点)，不含空格",
            "only visible ASCII characters (letters, digits, punctuation), no space",
            "characters",
        )
    if len(given) > most:
        raise invalid(field, f"最多{most}个字符", f"at most {most} characters", "length")
    return given


# ---------------------------------------------------------------- lines and tokens (issue 14, web)

_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


def token(value: object, *, field: str, most: int) -> str:
    """A random token a machine handed out (a session id, a CSRF token): ASCII
    letters, digits, '-' and '_', at most ``most`` of them."""
    if not isinstance(value, str) or _TOKEN.fullmatch(value) is None or len(value) > most:
        raise invalid(field, "令牌格式错误", "a malformed token", "format")
    return value


# ---------------------------------------------------------------- codes and keys (the staff API)

_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]*")


def code(value: object, *, field: str, most: int = 64) -> str:
    """A code or number a machine made (an application, batch or voucher
    number, a call's id, a terminal's code, a kind): ASCII letters and digits,
    then also '.', '_' and '-', of bounded length. What another kind of letter
    or digit would be is never guessed."""
    if value is None or isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid(field, "应为字母或数字编码", "a code of letters and digits", "type")
    text = str(value).strip()
    if _CODE.fullmatch(text) is None:
        raise invalid(
            field,
            "只能包含英文字母、数字和.-_",
            "only the letters A-Z, digits 0-9 and . - _",
            "format",
        )
    if len(text) > most:
        raise invalid(field, f"最多{most}个字符", f"at most {most} characters", "length")
    return text


def key(value: object, *, field: str, least: int = 1, most: int) -> str:
    """A key a client chose (an idempotency key): printable ASCII, no spaces,
    between ``least`` and ``most`` characters."""
    text = str(value).strip() if isinstance(value, str) else ""
    if not least <= len(text) <= most or _VISIBLE.fullmatch(text) is None:
        raise invalid(
            field,
            f"应为{least}至{most}个可见ASCII字符",
            f"{least} to {most} printable ASCII characters",
            "format",
        )
    return text


def upload(read: Callable[[int], bytes], *, most: int, field: str = "file") -> bytes:
    """An uploaded file's content, read through ``read`` (a spooled file's
    ``read``) at most one byte past ``most``, so that a file too large is
    refused without being held whole."""
    content = read(most + 1)
    if len(content) > most:
        raise invalid(
            field,
            f"文件超过{most / 1024 / 1024:g}MB",
            f"the file is larger than {most} bytes",
            "too_large",
        )
    return content
