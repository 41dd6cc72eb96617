"""The FHIR interface's use cases, on the institution a bearer token names
(``tokens.authenticate``): what they read and decide is yibao's, in yibao's
terms; the channel maps it to and from FHIR resources.

Whom an institution may serve is the HIS's rule for a settlement: a person
enrolled in the institution's pooling area, or with a cross-area filing for
it on the day (``settlement.person_state``). Anyone else is "not found",
as a person outside a clerk's area is. Every read is audited with the
institution as the actor and the channel ``fhir``.

A Claim is a visit as the HIS sends it in three messages: it registers
(2201), uploads the fees (2204) and settles (2207) through those use cases'
steps, in one transaction, once per ``Claim.identifier``; its cancel is
2208's step, once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import and_, or_, select

from yibao.clock import CHINA
from yibao.domain import ledger as codes
from yibao.domain.access import Perm
from yibao.domain.actors import Actor, Channel
from yibao.domain.errors import DomainError, invalid, not_found
from yibao.domain.use import Presenter, Purpose
from yibao.domain.use import decide as decide_use
from yibao.services import idempotency
from yibao.services.access.institution_auth import Caller
from yibao.services.contributions import contributions
from yibao.services.ledger import ledger
from yibao.services.ledger.ledger import Line
from yibao.services.settlement import settlement as his
from yibao.services.tx import use_case
from yibao.store.models import AuditEntry, Enrolment, Person, Settlement
from yibao.store.uow import UnitOfWork

RESIDENT_ID = "urn:oid:2.16.156.10011.1.1"
ACCOUNT_NO = "urn:yibao:fhir:account-no"
IDENTIFIER_MAX = 64
SEARCH_MAX = 100


@dataclass(frozen=True)
class PatientView:
    id: int
    certno: str
    account_no: str
    name: str
    gender: str
    birth_date: dt.date
    status: str


@dataclass(frozen=True)
class CoverageView:
    id: int
    person_id: int
    insutype: str
    psn_type: str
    area: str
    status: str
    start: dt.date
    end: dt.date | None


@dataclass(frozen=True)
class AccountView:
    person: PatientView
    balance: int
    as_of: dt.datetime
    postings: list[Line]


@dataclass(frozen=True)
class Eligibility:
    person: PatientView
    coverage: CoverageView | None
    refusal: DomainError | None
    balance: int
    at: dt.datetime


def _patient(p: Person) -> PatientView:
    return PatientView(p.id, p.certno, p.account_no, p.name, p.gender, p.birth_date, p.status)


def _coverage(e: Enrolment) -> CoverageView:
    return CoverageView(
        e.id, e.person_id, e.insutype, e.psn_type, e.area, e.status, e.start_date, e.end_date
    )


def _served(uow: UnitOfWork, caller: Caller, person: Person | None) -> Person | None:
    """The person if the institution may serve them, else None."""
    if person is None:
        return None
    enrolment = contributions.current_enrolment(uow.session, person.id)
    if enrolment is None:
        return None
    state = his.person_state(
        uow, person, enrolment, visit_area=caller.division[:6], day=uow.clock.today()
    )
    return person if state.arrangement else None


def _person(uow: UnitOfWork, caller: Caller, person_id: int, element: str) -> Person:
    person = _served(uow, caller, uow.session.get(Person, person_id))
    if person is None:
        raise DomainError(
            code="fhir.patient_not_found",
            zh="未找到该参保人员",
            en=f"no such patient: Patient/{person_id}",
            field=element,
            status=404,
        )
    return person


def _read(caller: Caller, uow: UnitOfWork, action: str, person_id: int, subject: str = "") -> None:
    uow.audit(
        caller.record(channel=Channel.FHIR, action=action, person_id=person_id, subject=subject)
    )


@use_case
def read_patient(uow: UnitOfWork, caller: Caller, *, person_id: int) -> PatientView:
    person = _person(uow, caller, person_id, "Patient.id")
    _read(caller, uow, "fhir.patient_read", person.id)
    return _patient(person)


@use_case
def search_patients(
    uow: UnitOfWork, caller: Caller, *, system: str, value: str
) -> list[PatientView]:
    """Patients by identifier: the resident ID number or the account number."""
    if system == RESIDENT_ID:
        stmt = select(Person).where(Person.certno == value.strip().upper())
    elif system == ACCOUNT_NO:
        stmt = select(Person).where(Person.account_no == value.strip())
    else:
        raise invalid(
            "identifier",
            f"标识系统应为{RESIDENT_ID}或{ACCOUNT_NO}",
            f"the identifier's system is {RESIDENT_ID} (resident ID number) "
            f"or {ACCOUNT_NO} (account number)",
            "system",
        )
    person = _served(uow, caller, uow.session.execute(stmt).scalar_one_or_none())
    if person is None:
        return []
    _read(caller, uow, "fhir.patient_search", person.id)
    return [_patient(person)]


@use_case
def coverages(
    uow: UnitOfWork, caller: Caller, *, person_id: int, element: str = "patient"
) -> list[CoverageView]:
    """The person's enrolments, one Coverage each, the newest first."""
    person = _person(uow, caller, person_id, element)
    rows = uow.session.execute(
        select(Enrolment).where(Enrolment.person_id == person.id).order_by(Enrolment.id.desc())
    ).scalars()
    _read(caller, uow, "fhir.coverage_read", person.id)
    return [_coverage(e) for e in rows]


@use_case
def read_coverage(uow: UnitOfWork, caller: Caller, *, coverage_id: int) -> CoverageView:
    row = uow.session.get(Enrolment, coverage_id)
    if row is None or _served(uow, caller, uow.session.get(Person, row.person_id)) is None:
        raise not_found("该参保登记", f"Coverage/{coverage_id}")
    _read(caller, uow, "fhir.coverage_read", row.person_id, str(row.id))
    return _coverage(row)


@use_case
def account(
    uow: UnitOfWork, caller: Caller, *, person_id: int, element: str = "Account.id"
) -> AccountView:
    """The individual medical account: its balance and its postings."""
    person = _person(uow, caller, person_id, element)
    balance = ledger.individual_balance(uow.session, person.id)
    lines = ledger.history(uow.session, code=codes.individual(person.id), limit=SEARCH_MAX)
    _read(caller, uow, "fhir.account_read", person.id)
    return AccountView(_patient(person), balance, uow.clock.now(), lines)


@use_case
def eligibility(uow: UnitOfWork, caller: Caller, *, person_id: int) -> Eligibility:
    """May the person be settled at this institution now, and if not why:
    the decision the HIS's registration (2201) takes, through
    ``domain.use.decide``. The balance is shown only when they may."""
    person = uow.session.get(Person, person_id)
    if person is None:
        raise DomainError(
            code="fhir.patient_not_found",
            zh="未找到该参保人员",
            en=f"no such patient: Patient/{person_id}",
            field="CoverageEligibilityRequest.patient",
            status=404,
        )
    enrolment = contributions.current_enrolment(uow.session, person.id)
    today = uow.clock.today()
    decision = decide_use(
        purpose=Purpose.SETTLEMENT,
        presenter=Presenter.INSTITUTION,
        person=his.person_state(uow, person, enrolment, visit_area=caller.division[:6], day=today),
    )
    balance = ledger.individual_balance(uow.session, person.id) if decision.allowed else 0
    _read(caller, uow, "fhir.eligibility", person.id)
    return Eligibility(
        _patient(person),
        _coverage(enrolment) if enrolment else None,
        decision.refusal,
        balance,
        uow.clock.now(),
    )


# ------------------------------------------------------------- claims


@dataclass(frozen=True)
class ClaimLine:
    sequence: int
    code: str
    amount: int  # fen
    quantity: str
    unit_price: int  # fen


@dataclass(frozen=True)
class ClaimInput:
    """A Claim as the channel read it."""

    system: str
    value: str
    person_id: int
    provider: str  # the institution code the Claim names
    begntime: dt.datetime
    med_type: str
    lines: list[ClaimLine]
    total: int  # fen
    use_account: bool = True


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _msgid(caller: Caller, key: str, infno: str) -> his.Message:
    # a key of our own under the HIS's scope, which no HIS msgid can take
    digest = hashlib.sha256(f"{caller.code}|{key}".encode()).hexdigest()[:32]
    return his.Message(f"fhir-{digest}-{infno}", infno, {"fhir": key})


# the HIS's field names in a refusal, as the Claim's elements
_ELEMENTS = {
    "mdtrt_cert_no": "Claim.patient",
    "psn_no": "Claim.patient",
    "certno": "Claim.patient",
    "psn_name": "Claim.patient",
    "insuplc_admdvs": "Claim.patient",
    "medfee_sumamt": "Claim.total",
    "insutype": "Claim.insurance",
    "begntime": "Claim.created",
    "med_type": "Claim.subType",
}


def _element(name: str | None) -> str | None:
    tail = (name or "").rsplit(".", 1)[-1]
    if tail in _ELEMENTS:
        return _ELEMENTS[tail]
    if "feedetail" in (name or ""):
        return "Claim.item"
    return name


def _as_claim(exc: DomainError) -> DomainError:
    """A refusal of the HIS's use cases, naming the Claim's element."""
    exc.field = _element(exc.field)
    for problem in exc.problems:
        problem.field = _element(problem.field) or problem.field
    return exc


@use_case
def submit_claim(uow: UnitOfWork, caller: Caller, *, claim: ClaimInput) -> dict[str, Any]:
    """A Claim settles a visit as 2201, 2204 and 2207 would, in one
    transaction; the same Claim again (its identifier) gets the first answer,
    another Claim under that identifier is refused."""
    if claim.provider != caller.code:
        raise DomainError(
            code="fhir.provider_mismatch",
            zh="Claim.provider与访问令牌的机构不符",
            en=f"Claim.provider is not Organization/{caller.code}, the token's institution",
            field="Claim.provider",
            status=403,
        )
    key = f"{claim.system}|{claim.value}"
    person = _person(uow, caller, claim.person_id, "Claim.patient")

    def work() -> dict[str, Any]:
        psn_no, cert = str(person.id), person.certno
        try:
            reg = his.register.step(
                uow,
                caller,
                msg=_msgid(caller, key, "2201"),
                data={
                    "psn_no": psn_no,
                    "begntime": claim.begntime.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
                    "mdtrt_cert_type": "02",
                    "mdtrt_cert_no": cert,
                    "med_type": claim.med_type,
                    "ipt_otp_no": claim.value[:30],
                },
            )
            mdtrt_id = reg["data"]["mdtrt_id"]
            his.upload_fees.step(
                uow,
                caller,
                msg=_msgid(caller, key, "2204"),
                lines=[
                    {
                        "feedetl_sn": str(line.sequence),
                        "mdtrt_id": mdtrt_id,
                        "psn_no": psn_no,
                        "med_list_codg": line.code,
                        "det_item_fee_sumamt": _yuan(line.amount),
                        "cnt": line.quantity,
                        "pric": _yuan(line.unit_price),
                    }
                    for line in claim.lines
                ],
            )
            out = his.settle.step(
                uow,
                caller,
                msg=_msgid(caller, key, "2207"),
                data={
                    "psn_no": psn_no,
                    "mdtrt_cert_type": "02",
                    "mdtrt_cert_no": cert,
                    "med_type": claim.med_type,
                    "medfee_sumamt": _yuan(claim.total),
                    "mdtrt_id": mdtrt_id,
                    "acct_used_flag": "1" if claim.use_account else "0",
                },
            )
        except DomainError as exc:
            raise _as_claim(exc) from None
        uow.audit(
            caller.record(
                channel=Channel.FHIR,
                action="fhir.claim",
                person_id=person.id,
                subject=out["setlinfo"]["setl_id"],
                detail={"identifier": key[:200]},
            )
        )
        return {"identifier": {"system": claim.system, "value": claim.value}, **out}

    payload = asdict(claim)
    return idempotency.once(
        uow,
        scope=f"fhir:{caller.code}",
        key=key[:200],
        fingerprint=idempotency.fingerprint("Claim", payload),
        work=work,
        field="Claim.identifier",
    )


@use_case
def cancel_claim(uow: UnitOfWork, caller: Caller, *, claim_id: str) -> dict[str, Any]:
    """``Claim/{id}/$cancel``: the settlement reversed as 2208 reverses it,
    once; a second cancel is refused (409)."""
    row = uow.session.execute(
        select(Settlement).where(Settlement.setl_id == claim_id[:40])
    ).scalar_one_or_none()
    if row is None or row.institution_code != caller.code:
        # another institution's claim is not shown to exist
        raise not_found("该结算", f"Claim/{claim_id[:40]}")
    msg = his.Message(f"fhir-cancel-{secrets.token_hex(12)}", "2208", {"setl_id": row.setl_id})
    try:
        out = his.cancel_settlement.step(
            uow,
            caller,
            msg=msg,
            data={"setl_id": row.setl_id, "mdtrt_id": row.mdtrt_id, "psn_no": str(row.person_id)},
        )
    except DomainError as exc:
        if exc.field == "setl_id":
            exc.field = "Claim.id"
        raise
    uow.audit(
        caller.record(
            channel=Channel.FHIR,
            action="fhir.claim_cancel",
            person_id=row.person_id,
            subject=row.setl_id,
        )
    )
    return out


def _eob(uow: UnitOfWork, row: Settlement) -> dict[str, Any]:
    info = his.settlement_info(uow, row)
    info["status"] = row.status
    info["cancelled_at"] = row.cancelled_at
    info["setl_at"] = row.setl_time
    return info


@use_case
def explanations(uow: UnitOfWork, caller: Caller, *, person_id: int) -> list[dict[str, Any]]:
    """The institution's own settlements of a person it may serve, newest first."""
    person = _person(uow, caller, person_id, "patient")
    rows = uow.session.execute(
        select(Settlement)
        .where(Settlement.person_id == person.id, Settlement.institution_code == caller.code)
        .order_by(Settlement.id.desc())
        .limit(SEARCH_MAX)
    ).scalars()
    out = [_eob(uow, row) for row in rows]
    _read(caller, uow, "fhir.eob_read", person.id)
    return out


@use_case
def claim_response(uow: UnitOfWork, caller: Caller, *, claim_id: str) -> dict[str, Any]:
    """One of the institution's own settlements, as 5203 shows it."""
    row = uow.session.execute(
        select(Settlement).where(Settlement.setl_id == claim_id[:40])
    ).scalar_one_or_none()
    if row is None or row.institution_code != caller.code:
        raise not_found("该结算", f"ClaimResponse/{claim_id[:40]}")
    _read(caller, uow, "fhir.claim_read", row.person_id, row.setl_id)
    return _eob(uow, row)


@dataclass(frozen=True)
class AuditView:
    id: int
    at: dt.datetime
    actor_kind: str
    actor_id: str
    channel: str
    action: str
    person_id: int | None
    subject: str


def _audit_rows(
    uow: UnitOfWork,
    stmt: Any,
    *,
    start: dt.datetime | None,
    end: dt.datetime | None,
    person_id: int | None,
) -> list[AuditView]:
    if start and end and end <= start:
        raise invalid("date", "结束时间应晚于开始时间", "the end is after the start", "period")
    if start is not None:
        stmt = stmt.where(AuditEntry.at >= start)
    if end is not None:
        stmt = stmt.where(AuditEntry.at < end)
    if person_id is not None:
        stmt = stmt.where(AuditEntry.person_id == person_id)
    rows = uow.session.execute(stmt.order_by(AuditEntry.id).limit(SEARCH_MAX)).scalars()
    return [
        AuditView(r.id, r.at, r.actor_kind, r.actor_id, r.channel, r.action, r.person_id, r.subject)
        for r in rows
    ]


@use_case
def audit_events(
    uow: UnitOfWork,
    caller: Caller,
    *,
    start: dt.datetime | None,
    end: dt.datetime | None,
    person_id: int | None,
) -> Sequence[AuditView]:
    """The institution's own entries of the audit log (what it did through
    the HIS and FHIR), oldest first, at most ``SEARCH_MAX``."""
    stmt = select(AuditEntry).where(
        AuditEntry.actor_kind == "institution", AuditEntry.actor_id == caller.code
    )
    out = _audit_rows(uow, stmt, start=start, end=end, person_id=person_id)
    uow.audit(caller.record(channel=Channel.FHIR, action="fhir.audit_export", person_id=person_id))
    return out


@use_case
def staff_audit_events(
    uow: UnitOfWork,
    actor: Actor,
    *,
    start: dt.datetime | None,
    end: dt.datetime | None,
    person_id: int | None,
) -> Sequence[AuditView]:
    """The audit log for staff who may read it (``audit.read``): the entries
    about persons of their area, and those without a person written by
    actors of their area; oldest first, at most ``SEARCH_MAX``."""
    actor.require(Perm.AUDIT_READ)
    prefix = actor.scope
    mine = select(Person.id).where(Person.division_code.startswith(prefix))
    stmt = select(AuditEntry).where(
        or_(
            AuditEntry.person_id.in_(mine),
            and_(AuditEntry.person_id.is_(None), AuditEntry.actor_division.startswith(prefix)),
        )
    )
    out = _audit_rows(uow, stmt, start=start, end=end, person_id=person_id)
    uow.audit(actor.record(channel=Channel.FHIR, action="fhir.audit_export", person_id=person_id))
    return out
