"""Amounts and dates as a listener expects to hear them (the telephone line).

Pure functions, no I/O. Money is integer fen.

Mandarin, 两 or 二: 二 is the counting digit (十二, 二十, 二百, 一百零二);
两 is what speakers use for a quantity of two *before a measure word or a
large unit*: 两元, 两角, 两分, 两千, 两万, 两亿. So ¥2,222.22 is read
"两千二百二十二元两角两分" and ¥200,000 "二十万元", the way a bank's
telephone line reads it. Dates are never read with 两 (二月二日).

Zero (零) rules: one 零 stands for any run of zeros inside a number
(一千零一, 一万零一百); trailing zeros are silent (一百万); a leading 一十
is read 十 (十元, 十万); with yuan and fen but no jiao the fen take a 零
(一万元零一分).
"""

from __future__ import annotations

import datetime as dt

_DIGITS = "零一二三四五六七八九"
_PLACES = ("千", "百", "十", "")
_GROUPS = ("", "万", "亿", "万亿")


def _group_zh(n: int, *, liang: bool) -> str:
    """0 < n < 10000, read with its inner zeros."""
    out = []
    pending_zero = False
    started = False
    for digit, place in zip(f"{n:04d}", _PLACES, strict=True):
        d = int(digit)
        if d == 0:
            pending_zero = started
            continue
        if pending_zero:
            out.append("零")
            pending_zero = False
        word = "两" if liang and d == 2 and place == "千" else _DIGITS[d]
        out.append(word + place)
        started = True
    return "".join(out)


def integer_zh(n: int, *, liang: bool = True) -> str:
    """A whole number in Chinese numerals: 1001 → 一千零一, 100000 → 十万."""
    if n < 0:
        return "负" + integer_zh(-n, liang=liang)
    if n == 0:
        return "零"
    groups: list[int] = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    if len(groups) > len(_GROUPS):
        raise ValueError("number too large to read")
    out = ""
    gap = False
    for index in range(len(groups) - 1, -1, -1):
        g, unit = groups[index], _GROUPS[index]
        if g == 0:
            gap = bool(out)
            continue
        if out and (gap or g < 1000):
            out += "零"
        if liang and g == 2 and unit:
            out += "两" + unit
        else:
            out += _group_zh(g, liang=liang) + unit
        gap = False
    if out.startswith("一十"):
        out = out[1:]
    return out


def _count_zh(n: int) -> str:
    """A count directly before a measure word: 2 is 两."""
    return "两" if n == 2 else integer_zh(n)


def amount_zh(fen: int) -> str:
    """¥1,234.56 → 一千二百三十四元五角六分; ¥0 → 零元; ¥0.05 → 五分."""
    if fen < 0:
        return "负" + amount_zh(-fen)
    yuan, jiao, f = fen // 100, fen // 10 % 10, fen % 10
    out = ""
    if yuan:
        out = _count_zh(yuan) + "元"
    if jiao:
        out += _count_zh(jiao) + "角"
    if f:
        if yuan and not jiao:
            out += "零"
        out += _count_zh(f) + "分"
    return out or "零元"


_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))


def _below_thousand_en(n: int) -> str:
    words = []
    if n >= 100:
        words.append(f"{_ONES[n // 100]} hundred")
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10] + (f"-{_ONES[n % 10]}" if n % 10 else ""))
    elif n:
        words.append(_ONES[n])
    return " ".join(words)


def integer_en(n: int) -> str:
    """A whole number in English words: 1234 → one thousand two hundred thirty-four."""
    if n < 0:
        return "minus " + integer_en(-n)
    if n == 0:
        return "zero"
    words = []
    for size, name in _SCALES:
        if n >= size:
            words.append(f"{integer_en(n // size)} {name}")
            n %= size
    if n:
        words.append(_below_thousand_en(n))
    return " ".join(words)


def amount_en(fen: int) -> str:
    """¥1,234.56 → one thousand two hundred thirty-four yuan and fifty-six fen."""
    if fen < 0:
        return "minus " + amount_en(-fen)
    yuan, rest = divmod(fen, 100)
    if yuan and rest:
        return f"{integer_en(yuan)} yuan and {integer_en(rest)} fen"
    if rest:
        return f"{integer_en(rest)} fen"
    return f"{integer_en(yuan)} yuan"


def date_zh(day: dt.date) -> str:
    """2026-11-23 → 二零二六年十一月二十三日 (the year digit by digit)."""
    year = "".join(_DIGITS[int(c)] for c in str(day.year))
    month = integer_zh(day.month, liang=False)
    return f"{year}年{month}月{integer_zh(day.day, liang=False)}日"


_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def ordinal_en(n: int) -> str:
    """23 → twenty-third."""
    words = integer_en(n)
    head, sep, last = words.rpartition("-") if "-" in words else words.rpartition(" ")
    if last in _ORDINAL_WORDS:
        last = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head}{sep}{last}"


def date_en(day: dt.date) -> str:
    """2026-11-23 → November twenty-third, two thousand twenty-six."""
    return f"{_MONTHS[day.month - 1]} {ordinal_en(day.day)}, {integer_en(day.year)}"


def amount(fen: int, lang: str) -> str:
    return amount_zh(fen) if lang == "zh" else amount_en(fen)


def date(day: dt.date, lang: str) -> str:
    return date_zh(day) if lang == "zh" else date_en(day)


def digits(value: str, lang: str) -> str:
    """Digit by digit, as a card number's last digits are read: 0572 → 零五七二."""
    if lang == "zh":
        return "".join(_DIGITS[int(c)] for c in value if c in "0123456789")
    return " ".join(_ONES[int(c)] for c in value if c in "0123456789")


def month_zh(month: int) -> str:
    """202610 → 二零二六年十月."""
    year = "".join(_DIGITS[int(c)] for c in str(month // 100))
    return f"{year}年{integer_zh(month % 100, liang=False)}月"


def month_en(month: int) -> str:
    """202610 → October two thousand twenty-six."""
    return f"{_MONTHS[month % 100 - 1]} {integer_en(month // 100)}"
