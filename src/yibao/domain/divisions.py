"""Administrative divisions (GB/T 2260, streets and towns per GB/T 10114).

A division code is 6 digits for the nation (000000), a province (33xxxx
with the last four zero), a city (3305xx with the last two zero) and a
county (330502); streets and towns under a county have 9 digits (330502001).
The *scope prefix* of a division is the part of the code that every division
below it shares, so "is X inside Y's area" is a prefix test, which the
database answers with an index on the code.
"""

from __future__ import annotations

import re
from enum import StrEnum

from stdnum import numdb

from yibao.domain.errors import invalid
from yibao.domain.values import is_digits

NATION = "000000"


class Level(StrEnum):
    NATION = "nation"
    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    STREET = "street"


def level_of(code: str) -> Level:
    if not is_digits(code) or len(code) not in (6, 9):
        raise invalid(
            "division_code",
            "行政区划代码应为6位（县及以上）或9位（街道、乡镇）数字",
            "a division code has 6 digits (county and above) or 9 (street, town)",
            "format",
        )
    if len(code) == 9:
        return Level.STREET
    if code == NATION:
        return Level.NATION
    if code[2:] == "0000":
        return Level.PROVINCE
    if code[4:] == "00":
        return Level.CITY
    return Level.COUNTY


def scope_prefix(code: str) -> str:
    """The code prefix shared by this division and everything below it."""
    level = level_of(code)
    return {
        Level.NATION: "",
        Level.PROVINCE: code[:2],
        Level.CITY: code[:4],
        Level.COUNTY: code[:6],
        Level.STREET: code,
    }[level]


def parent_of(code: str) -> str | None:
    level = level_of(code)
    if level is Level.NATION:
        return None
    if level is Level.PROVINCE:
        return NATION
    if level is Level.CITY:
        return code[:2] + "0000"
    if level is Level.COUNTY:
        return code[:4] + "00"
    return code[:6]


def within(code: str, area: str) -> bool:
    """Whether division ``code`` lies in the area of division ``area``."""
    return code.startswith(scope_prefix(area))


def county_of(code: str) -> str | None:
    """The county a division belongs to (itself for a county), or None above."""
    level = level_of(code)
    if level in (Level.COUNTY, Level.STREET):
        return code[:6]
    return None


# ---------------------------------------------------------------- the national list

# Each county's entry in python-stdnum's GB/T 2260 table is its names with
# the years each was in use: "[1983-1987]城区,[2003-]吴兴区", "朝阳区".
_PERIOD = re.compile(r"^\[(\d{4})?-(\d{4})?\](.*)$")

# Taiwan, Hong Kong and Macao have codes in GB/T 2260 but no pooling area of
# the mainland's basic medical insurance to take a relation in.
OUTSIDE_THE_SCHEME = frozenset({"71", "81", "82"})


def national_name(code: str, year: int) -> str | None:
    """The name GB/T 2260 gives a 6-digit province, city or county code in
    ``year`` (python-stdnum's table, kept with the package), or None for a
    code that names no division then: never used, or abolished before."""
    if len(code) != 6 or not is_digits(code) or code == NATION:
        return None
    found = dict(numdb.get("cn/loc").info(code)[1:])
    county = found.get(code[2:], {}).get("county", "")
    for part in county.split(","):
        m = _PERIOD.match(part.strip())
        if m is None:
            if part.strip():
                return part.strip()
            continue
        start, end, name = m.groups()
        if (start is None or int(start) <= year) and (end is None or year <= int(end)):
            return name
    return None
