"""Pooling areas: which area's rule applies, and which areas pool together.

Rules, policies and collection accounts are kept per area; an area without
its own takes its city's, else its province's (GB/T 2260: the first four
digits name the city, the first two the province).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from yibao.domain.divisions import OUTSIDE_THE_SCHEME, national_name
from yibao.domain.errors import invalid
from yibao.domain.values import is_digits

T = TypeVar("T")


def areas_up(area: str) -> tuple[str, ...]:
    """The area, its city, its province."""
    area = area[:6]
    return tuple(dict.fromkeys((area, area[:4] + "00", area[:2] + "0000")))


def nearest(by_area: Mapping[str, T], area: str) -> T | None:
    """What the area has of its own, else its city, else its province."""
    return next((by_area[code] for code in areas_up(area) if code in by_area), None)


def same_pool(a: str, b: str) -> bool:
    """Basic medical insurance is pooled at city level (市级统筹): counties of
    one city settle each other's insured persons without a filing."""
    return a[:4] == b[:4]


def check_transfer_destination(destination: str | None, home: str, year: int) -> str:
    """The area a relation is transferred out to: a province, city or county
    that GB/T 2260 lists in ``year``, in the mainland's basic medical
    insurance, and outside the person's own pooling area."""
    return check_destination(destination, home, year)


def check_destination(
    destination: str | None,
    home: str,
    year: int,
    *,
    field: str = "destination_area",
    what_zh: str = "转入地",
    what_en: str = "destination",
) -> str:
    """Another pooling area a person goes to (a transfer out, care in another
    area): a GB/T 2260 code in use in ``year``, in the mainland's basic
    medical insurance, outside ``home``'s pool. One check for both, so the
    two accept the same codes."""
    code = (destination or "").strip()
    if len(code) != 6 or not is_digits(code):
        raise invalid(
            field,
            f"请填写{what_zh}的统筹区划代码（6位）",
            f"give the {what_en} area's 6-digit division code",
            "required",
        )
    if national_name(code, year) is None:
        raise invalid(
            field,
            f"{what_zh}{code}不是现行的行政区划代码（GB/T 2260）",
            f"{code} is not a division code in use (GB/T 2260)",
            "unknown",
        )
    if code[:2] in OUTSIDE_THE_SCHEME:
        raise invalid(
            field,
            f"{what_zh}应为内地的医保统筹区",
            f"the {what_en} is a pooling area of the mainland's basic medical insurance",
            "outside_scheme",
        )
    if same_pool(code, home):
        raise invalid(
            field,
            f"{what_zh}应在本市以外",
            f"the {what_en} is outside this city",
            "same_city",
        )
    return code
