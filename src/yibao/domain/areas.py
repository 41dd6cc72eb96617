"""Pooling areas: which area's rule applies, and which areas pool together.

Rules, policies and collection accounts are kept per area; an area without
its own takes its city's, else its province's (GB/T 2260: the first four
digits name the city, the first two the province).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

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
