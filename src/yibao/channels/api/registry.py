"""Divisions, persons, employers, institutions and staff users."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from yibao.channels.api import views
from yibao.channels.api.deps import Staff, Work
from yibao.channels.api.errors import answers
from yibao.channels.api.fields import (
    AccountNo,
    Body,
    CardNo,
    Certno,
    Code,
    DivisionCode,
    Name,
    Password,
    Short,
    Text,
    Uscc,
    Username,
    Word,
)
from yibao.domain.actors import Channel
from yibao.domain.money import format_yuan
from yibao.services.access import staff as access_service
from yibao.services.inquiry.person_file import person_file
from yibao.services.registry import registry

router = APIRouter(tags=["registry 登记"])


class PersonIn(Body):
    certno: Certno = Field(description="居民身份证号码 resident ID number (18 characters)")
    name: Name
    division_code: DivisionCode = Field(description="户籍所在地 household registration division")
    phone: Short = ""


class PersonPatch(Body):
    phone: Short | None = None
    name: Name | None = None


class EmployerIn(Body):
    uscc: Uscc = Field(description="统一社会信用代码 unified social credit code")
    name: Text
    division_code: DivisionCode
    contact_phone: Short = ""


class InstitutionIn(Body):
    code: Code = Field(description="定点医药机构编码, H or P and 11 digits")
    name: Text
    kind: Word = Field(description="hospital or pharmacy")
    level: Word = Field(description="0 pharmacy, 1-3 hospital grade")
    division_code: DivisionCode


class StaffIn(Body):
    username: Username
    name: Name
    password: Password
    role: Word
    division_code: DivisionCode


@router.get("/divisions")
def divisions(ctx: Staff, work: Work, parent: DivisionCode | None = None) -> list[dict[str, Any]]:
    return [views.division(d) for d in registry.list_divisions(work, parent=parent)]


@router.post("/persons", status_code=201, responses=answers(409))
def create_person(body: PersonIn, ctx: Staff, work: Work) -> dict[str, Any]:
    person = registry.register_person(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        certno=body.certno,
        name=body.name,
        division_code=body.division_code,
        phone=body.phone,
    )
    return views.person(person)


@router.get("/persons")
def search_persons(
    ctx: Staff,
    work: Work,
    certno: Certno | None = None,
    card_no: CardNo | None = None,
    account_no: AccountNo | None = None,
    name: Name | None = None,
) -> list[dict[str, Any]]:
    """Find persons in your area by ID number, card number, account number or name."""
    persons = registry.search_persons(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        query=registry.PersonQuery(
            certno=certno, card_no=card_no, name=name, account_no=account_no
        ),
    )
    return [views.person(p) for p in persons]


@router.get("/persons/{account_no}", responses=answers(404))
def get_person(account_no: AccountNo, ctx: Staff, work: Work) -> dict[str, Any]:
    found = person_file(work, actor=ctx.actor, channel=Channel.API, account_no=account_no)
    return {
        **views.person(found.person),
        "balance": format_yuan(found.summary.balance),
        "balance_as_of": found.summary.as_of.isoformat(),
        "card": views.card_state(found.summary.card) if found.summary.card else None,
        "insurance": views.enrolment(found.enrolment) if found.enrolment else None,
        "suspended": found.summary.suspended,
        "cards": [views.card(c) for c in found.cards],
    }


@router.patch("/persons/{account_no}", responses=answers(404))
def patch_person(
    account_no: AccountNo, body: PersonPatch, ctx: Staff, work: Work
) -> dict[str, Any]:
    person = registry.update_person(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        account_no=account_no,
        phone=body.phone,
        name=body.name,
    )
    return views.person(person)


@router.post("/employers", status_code=201, responses=answers(409))
def create_employer(body: EmployerIn, ctx: Staff, work: Work) -> dict[str, Any]:
    employer = registry.register_employer(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        uscc=body.uscc,
        name=body.name,
        division_code=body.division_code,
        contact_phone=body.contact_phone,
    )
    return views.employer(employer)


@router.get("/employers")
def list_employers(ctx: Staff, work: Work) -> list[dict[str, Any]]:
    return [views.employer(e) for e in registry.list_employers(work, actor=ctx.actor)]


@router.get("/employers/{uscc}", responses=answers(404))
def get_employer(uscc: Uscc, ctx: Staff, work: Work) -> dict[str, Any]:
    return views.employer(registry.get_employer(work, actor=ctx.actor, uscc=uscc))


@router.post("/institutions", status_code=201, responses=answers(409))
def create_institution(body: InstitutionIn, ctx: Staff, work: Work) -> dict[str, Any]:
    """Register a designated institution; its gateway secret is shown once."""
    institution, secret = registry.register_institution(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        code=body.code,
        name=body.name,
        kind=body.kind,
        level=body.level,
        division_code=body.division_code,
    )
    return {**views.institution(institution), "access_secret": secret}


@router.get("/institutions")
def list_institutions(ctx: Staff, work: Work) -> list[dict[str, Any]]:
    return [views.institution(i) for i in registry.list_institutions(work, actor=ctx.actor)]


@router.post("/staff", status_code=201, responses=answers(409))
def create_staff(body: StaffIn, ctx: Staff, work: Work) -> dict[str, Any]:
    user = access_service.create_staff(
        work,
        actor=ctx.actor,
        channel=Channel.API,
        username=body.username,
        name=body.name,
        password=body.password,
        role=body.role,
        division_code=body.division_code,
    )
    return views.staff_user(user)


@router.get("/staff")
def list_staff(ctx: Staff, work: Work) -> list[dict[str, Any]]:
    return [views.staff_user(u) for u in access_service.list_staff(work, actor=ctx.actor)]
