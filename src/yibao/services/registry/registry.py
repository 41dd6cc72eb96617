"""The registry: divisions, persons, employers, designated institutions.

Staff see only what lies inside their own division's subtree (Social
Insurance Law art. 7); outside it a person or employer is "not found", never
"forbidden", so that a probe learns nothing.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, SQLColumnExpression, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute

from yibao.domain import divisions as dv
from yibao.domain.access import Perm
from yibao.domain.actors import Actor
from yibao.domain.errors import conflict, invalid, not_found
from yibao.domain.ids import (
    is_card_no,
    new_account_no,
    parse_resident_id,
    validate_credit_code,
)
from yibao.domain.values import is_digits
from yibao.services.tx import use_case
from yibao.store.models import Card, Division, Employer, Institution, Person
from yibao.store.uow import UnitOfWork


def in_scope(column: SQLColumnExpression[str], actor: Actor) -> ColumnElement[bool]:
    """SQL condition: the division in ``column`` lies inside the actor's area."""
    prefix = actor.scope
    if not prefix:
        return column.is_not(None)
    return column.startswith(prefix, autoescape=True)


def read_owned(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    column: InstrumentedAttribute[str],
    value: str,
    action: str,
    what: tuple[str, str, str],
) -> tuple[Any, Person]:
    """A person's document (a closure, a voucher) found by its number, only
    inside the actor's area (Social Insurance Law art. 7: outside it reads as
    not found), with the person; the read is audited. ``column`` is the
    document's number column; ``what`` its name in Chinese, in English, and
    the not-found code."""
    actor.require(Perm.PERSON_READ)
    model = column.class_
    row = uow.session.execute(
        select(model, Person)
        .join(Person, Person.id == model.person_id)
        .where(column == value.strip(), in_scope(Person.division_code, actor))
    ).one_or_none()
    if row is None:
        raise not_found(*what)
    found, person = row
    uow.audit(
        actor.record(channel=channel, action=action, person_id=person.id, subject=value.strip())
    )
    return found, person


# ---------------------------------------------------------------- divisions


@use_case
def add_division(
    uow: UnitOfWork,
    *,
    code: str,
    name: str,
    name_en: str = "",
    service_point: bool = False,
) -> Division:
    level = dv.level_of(code)
    parent = dv.parent_of(code)
    if parent is not None and uow.session.get(Division, parent) is None:
        raise invalid(
            "division_code",
            f"上级行政区划{parent}不存在",
            f"the parent division {parent} does not exist",
            "parent",
        )
    if service_point and level is not dv.Level.STREET:
        raise invalid(
            "service_point",
            "服务点只能设在街道或乡镇",
            "a service point belongs to a street or town",
        )
    division = Division(
        code=code,
        name=name,
        name_en=name_en,
        level=level.value,
        parent_code=parent,
        service_point=service_point,
    )
    uow.session.add(division)
    uow.session.flush()
    return division


@use_case
def get_division(uow: UnitOfWork, code: str) -> Division:
    division = uow.session.get(Division, code)
    if division is None:
        raise not_found("行政区划", "division", "division.not_found")
    return division


@use_case
def list_divisions(uow: UnitOfWork, *, parent: str | None = None) -> list[Division]:
    stmt = select(Division).order_by(Division.code)
    if parent is not None:
        stmt = stmt.where(Division.parent_code == parent)
    return list(uow.session.execute(stmt).scalars())


def require_division(
    uow: UnitOfWork, code: str | None, *, field: str = "division_code"
) -> Division:
    if not code:
        raise invalid(field, "行政区划代码不能为空", "the division code is required", "required")
    division = uow.session.get(Division, code)
    if division is None:
        raise invalid(
            field, f"行政区划代码{code}不存在", f"division code {code} is unknown", "unknown"
        )
    return division


# ---------------------------------------------------------------- persons


@dataclass(frozen=True)
class PersonQuery:
    certno: str | None = None
    card_no: str | None = None
    name: str | None = None
    account_no: str | None = None


@use_case
def register_person(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    certno: str,
    name: str,
    division_code: str,
    phone: str = "",
    account_no: str | None = None,
) -> Person:
    """Add an insured person to the registry; gender and birth date come from the ID number."""
    actor.require(Perm.PERSON_WRITE)
    now = uow.clock.now()
    rid = parse_resident_id(certno, today=uow.clock.today())
    name = (name or "").strip()
    if not name:
        raise invalid("name", "姓名不能为空", "the name is required", "required")
    if len(name) > 50:
        raise invalid(
            "name", "姓名过长（最多50个字符）", "the name is too long (50 at most)", "length"
        )
    division = require_division(uow, division_code)
    if not actor.sees(division.code):
        raise invalid(
            "division_code",
            "户籍所在地不在您的管辖区域内",
            "the household registration is outside your administrative area",
            "scope",
        )
    phone = (phone or "").strip()
    if phone and (not is_digits(phone.replace("-", "")) or len(phone) > 20):
        raise invalid("phone", "电话号码格式错误", "the phone number may hold digits and '-' only")
    if uow.session.execute(select(Person.id).where(Person.certno == rid.number)).first():
        raise conflict(
            "person.exists",
            "该身份证号码已登记参保人员",
            "a person with this resident ID number is already registered",
            "certno",
        )
    for _ in range(5):
        person = Person(
            certno=rid.number,
            account_no=account_no or new_account_no(division.code),
            name=name,
            gender=rid.gender,
            birth_date=rid.birth_date,
            division_code=division.code,
            phone=phone,
            status="active",
            created_at=now,
            updated_at=now,
        )
        try:
            with uow.session.begin_nested():
                uow.session.add(person)
        except IntegrityError:
            if account_no:
                raise conflict(
                    "person.account_exists",
                    "医保账号已被使用",
                    "the insurance account number is taken",
                    "account_no",
                ) from None
            continue  # a random account number clashed; draw again
        break
    else:  # pragma: no cover - five clashes in a 10^9 space
        raise RuntimeError("could not draw a free account number")
    uow.audit(
        actor.record(
            channel=channel,
            action="person.register",
            person_id=person.id,
            subject=person.account_no,
            detail={"division_code": division.code},
        )
    )
    return person


def _person_stmt(actor: Actor) -> Select[Person]:
    return select(Person).where(in_scope(Person.division_code, actor))


@use_case
def get_person(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    account_no: str,
    audit_action: str = "person.read",
) -> Person:
    """One person, by insurance account number, if inside the actor's area."""
    actor.require(Perm.PERSON_READ)
    person = uow.session.execute(
        _person_stmt(actor).where(Person.account_no == account_no)
    ).scalar_one_or_none()
    if person is None:
        raise not_found("参保人员", "person", "person.not_found")
    uow.audit(
        actor.record(
            channel=channel, action=audit_action, person_id=person.id, subject=person.account_no
        )
    )
    return person


@use_case
def person_id_of(uow: UnitOfWork, *, actor: Actor, account_no: str) -> int:
    """The person a staff request's path names (``/persons/{account_no}/...``),
    if inside the actor's area; what is done for them is audited by the use
    case that does it."""
    actor.require(Perm.PERSON_READ)
    found = uow.session.execute(
        select(Person.id).where(
            Person.account_no == account_no, in_scope(Person.division_code, actor)
        )
    ).scalar_one_or_none()
    if found is None:
        raise not_found("参保人员", "person", "person.not_found")
    return found


def find_person_for_update(
    uow: UnitOfWork, *, actor: Actor, certno: str, field: str = "certno"
) -> Person:
    """The person with this ID number inside the actor's area, for a change."""
    rid = parse_resident_id(certno, field=field)
    person = uow.session.execute(
        _person_stmt(actor).where(Person.certno == rid.number)
    ).scalar_one_or_none()
    if person is None:
        raise not_found("参保人员", "person", "person.not_found")
    return person


@use_case
def search_persons(
    uow: UnitOfWork, *, actor: Actor, channel: str, query: PersonQuery, limit: int = 50
) -> list[Person]:
    """Find persons by ID number, card number, account number or name, in the actor's area."""
    actor.require(Perm.PERSON_READ)
    stmt = _person_stmt(actor)
    criteria = 0
    if query.certno:
        criteria += 1
        stmt = stmt.where(Person.certno == query.certno.strip().upper())
    if query.account_no:
        criteria += 1
        stmt = stmt.where(Person.account_no == query.account_no.strip())
    if query.card_no:
        criteria += 1
        card_no = query.card_no.strip()
        if not is_card_no(card_no):
            raise invalid("card_no", "卡号格式错误", "not a valid card number", "format")
        stmt = stmt.where(Person.id.in_(select(Card.person_id).where(Card.card_no == card_no)))
    if query.name:
        criteria += 1
        stmt = stmt.where(Person.name == query.name.strip())
    if not criteria:
        raise invalid(
            "query",
            "请至少提供身份证号码、卡号、医保账号或姓名之一",
            "give an ID number, card number, account number or name",
            "required",
        )
    persons = list(uow.session.execute(stmt.order_by(Person.id).limit(limit)).scalars())
    for person in persons:
        uow.audit(
            actor.record(
                channel=channel,
                action="person.search",
                person_id=person.id,
                subject=person.account_no,
            )
        )
    return persons


@use_case
def update_person(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    account_no: str,
    phone: str | None = None,
    name: str | None = None,
) -> Person:
    actor.require(Perm.PERSON_WRITE)
    person = uow.session.execute(
        _person_stmt(actor).where(Person.account_no == account_no)
    ).scalar_one_or_none()
    if person is None:
        raise not_found("参保人员", "person", "person.not_found")
    changes: dict[str, object] = {}
    if phone is not None:
        phone = phone.strip()
        if phone and (not is_digits(phone.replace("-", "")) or len(phone) > 20):
            raise invalid(
                "phone", "电话号码格式错误", "the phone number may hold digits and '-' only"
            )
        changes["phone"] = [person.phone, phone]
        person.phone = phone
    if name is not None:
        name = name.strip()
        if not name:
            raise invalid("name", "姓名不能为空", "the name is required", "required")
        changes["name"] = [person.name, name]
        person.name = name
    person.updated_at = uow.clock.now()
    uow.audit(
        actor.record(
            channel=channel,
            action="person.update",
            person_id=person.id,
            subject=person.account_no,
            detail=changes,
        )
    )
    return person


# ---------------------------------------------------------------- employers


@use_case
def register_employer(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    uscc: str,
    name: str,
    division_code: str,
    contact_phone: str = "",
) -> Employer:
    actor.require(Perm.EMPLOYER_WRITE)
    code = validate_credit_code(uscc)
    name = (name or "").strip()
    if not name:
        raise invalid("name", "单位名称不能为空", "the employer's name is required", "required")
    division = require_division(uow, division_code)
    if not actor.sees(division.code):
        raise invalid(
            "division_code",
            "单位所在地不在您的管辖区域内",
            "the employer's division is outside your administrative area",
            "scope",
        )
    if uow.session.execute(select(Employer.id).where(Employer.uscc == code)).first():
        raise conflict(
            "employer.exists",
            "该统一社会信用代码已登记",
            "an employer with this credit code is already registered",
            "uscc",
        )
    employer = Employer(
        uscc=code,
        name=name,
        division_code=division.code,
        contact_phone=contact_phone,
        created_at=uow.clock.now(),
    )
    uow.session.add(employer)
    uow.session.flush()
    uow.audit(actor.record(channel=channel, action="employer.register", subject=code))
    return employer


@use_case
def get_employer(uow: UnitOfWork, *, actor: Actor, uscc: str) -> Employer:
    employer = uow.session.execute(
        select(Employer).where(
            Employer.uscc == uscc.strip().upper(), in_scope(Employer.division_code, actor)
        )
    ).scalar_one_or_none()
    if employer is None:
        raise not_found("用人单位", "employer", "employer.not_found")
    return employer


@use_case
def list_employers(uow: UnitOfWork, *, actor: Actor, limit: int = 200) -> list[Employer]:
    return list(
        uow.session.execute(
            select(Employer)
            .where(in_scope(Employer.division_code, actor))
            .order_by(Employer.uscc)
            .limit(limit)
        ).scalars()
    )


# ---------------------------------------------------------------- institutions

INSTITUTION_KINDS = {"hospital", "pharmacy"}
INSTITUTION_LEVELS = {"0", "1", "2", "3"}


@use_case
def register_institution(
    uow: UnitOfWork,
    *,
    actor: Actor,
    channel: str,
    code: str,
    name: str,
    kind: str,
    level: str,
    division_code: str,
    access_secret: str | None = None,
    access_id: str | None = None,
) -> tuple[Institution, str]:
    """Register a designated institution; returns it and its gateway secret."""
    actor.require(Perm.INSTITUTION_WRITE)
    code = (code or "").strip().upper()
    if not (len(code) == 12 and code[0] in "HP" and is_digits(code[1:])):
        raise invalid(
            "code",
            "定点医药机构编码应为H或P加11位数字",
            "an institution code is H or P and 11 digits",
            "format",
        )
    if kind not in INSTITUTION_KINDS:
        raise invalid("kind", "机构类型应为hospital或pharmacy", "kind is hospital or pharmacy")
    if level not in INSTITUTION_LEVELS:
        raise invalid("level", "机构等级应为0至3", "level is 0 (pharmacy) to 3")
    division = require_division(uow, division_code)
    if not actor.sees(division.code):
        raise invalid(
            "division_code",
            "机构所在地不在您的管辖区域内",
            "the institution is outside your administrative area",
            "scope",
        )
    if uow.session.execute(select(Institution.id).where(Institution.code == code)).first():
        raise conflict(
            "institution.exists", "该机构编码已登记", "this institution code is registered", "code"
        )
    secret = access_secret or secrets.token_hex(16)
    institution = Institution(
        code=code,
        name=name.strip(),
        kind=kind,
        level=level,
        division_code=division.code,
        access_id=access_id or code,
        access_secret=secret,
        created_at=uow.clock.now(),
    )
    uow.session.add(institution)
    uow.session.flush()
    uow.audit(actor.record(channel=channel, action="institution.register", subject=code))
    return institution, secret


@use_case
def list_institutions(uow: UnitOfWork, *, actor: Actor) -> list[Institution]:
    return list(
        uow.session.execute(
            select(Institution)
            .where(in_scope(Institution.division_code, actor))
            .order_by(Institution.code)
        ).scalars()
    )


def age_on(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))
