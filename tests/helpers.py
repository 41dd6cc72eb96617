"""Small builders shared by the tests."""

from __future__ import annotations

import datetime as dt
import itertools

from yibao.domain.access import Role
from yibao.domain.ids import make_resident_id
from yibao.services import registry
from yibao.services.context import Actor, Channel
from yibao.store.uow import UnitOfWork

_seq = itertools.count(101)

WUXING = Actor.staff(username="wuxing", division="330502", role=Role.COUNTY_CLERK)
NANXUN = Actor.staff(username="nanxun", division="330503", role=Role.COUNTY_CLERK)
YUEHE = Actor.staff(username="yuehe", division="330502001", role=Role.SERVICE_POINT_CLERK)
CITY = Actor.staff(username="admin", division="330500", role=Role.CITY_ADMIN)
SYSTEM = Actor.system("test")


def new_certno(division: str = "330502", birth: dt.date = dt.date(1990, 5, 6)) -> str:
    return make_resident_id(division, birth, next(_seq) % 1000)


def add_person(
    uow: UnitOfWork, *, division: str = "330502001", name: str = "测试人", certno: str | None = None
):  # type: ignore[no-untyped-def]
    with uow:
        person = registry.register_person(
            uow,
            actor=SYSTEM,
            channel=Channel.CLI,
            certno=certno or new_certno(division[:6]),
            name=name,
            division_code=division,
        )
        uow.commit()
        return person
