"""How the API shows the service's objects: plain JSON, money in yuan."""

from __future__ import annotations

from typing import Any

from yibao.domain.cards import STATUS_ZH, CardStatus
from yibao.services.cards.cards import ApplicationView
from yibao.services.inquiry.summary import CardView
from yibao.store.models import (
    Card,
    CardEvent,
    Division,
    Employer,
    EmployerBatch,
    Enrolment,
    Institution,
    Person,
    StaffUser,
)


def division(d: Division) -> dict[str, Any]:
    return {
        "code": d.code,
        "name": d.name,
        "name_en": d.name_en,
        "level": d.level,
        "parent_code": d.parent_code,
        "service_point": d.service_point,
    }


def person(p: Person) -> dict[str, Any]:
    return {
        "account_no": p.account_no,
        "certno": p.certno,
        "name": p.name,
        "gender": p.gender,
        "birth_date": p.birth_date.isoformat(),
        "division_code": p.division_code,
        "phone": p.phone,
        "status": p.status,
    }


def card(c: Card) -> dict[str, Any]:
    return {
        "card_no": c.card_no,
        "kind": c.kind,
        "status": c.status,
        "status_zh": STATUS_ZH[CardStatus(c.status)],
        "location": c.location,
        "pickup_division": c.pickup_division,
        "pickup_deadline": c.pickup_deadline.isoformat() if c.pickup_deadline else None,
        "issued_at": c.issued_at.isoformat() if c.issued_at else None,
        "account_no": c.person.account_no if c.person else None,
    }


def card_state(c: CardView) -> dict[str, Any]:
    """The card an account summary shows, with its state as refusals name it."""
    return {"card_no": c.card_no, "status": c.status, "state": c.state, "status_zh": c.status_zh}


def card_event(e: CardEvent) -> dict[str, Any]:
    return {
        "at": e.at.isoformat(),
        "event": e.event,
        "from": e.from_status,
        "to": e.to_status,
        "actor": e.actor,
        "channel": e.channel,
        "reason": e.reason,
    }


def application(v: ApplicationView) -> dict[str, Any]:
    a = v.application
    return {
        "app_no": a.app_no,
        "path": a.path,
        "account_no": a.person.account_no,
        "name": a.person.name,
        "office": a.division_code,
        "kind": a.kind,
        "submitted_at": a.submitted_at.isoformat(),
        "due_date": a.due_date.isoformat() if a.due_date else None,
        "calendar_note": a.calendar_note,
        "materials": a.materials,
        "delegate": {"certno": a.delegate_certno, "name": a.delegate_name}
        if a.delegate_certno
        else None,
        "card": card(v.card) if v.card else None,
        "state": v.state,
    }


def enrolment(e: Enrolment) -> dict[str, Any]:
    return {
        "insutype": e.insutype,
        "psn_type": e.psn_type,
        "status": e.status,
        "area": e.area,
        "start_date": e.start_date.isoformat(),
        "end_date": e.end_date.isoformat() if e.end_date else None,
        "suspended_since": e.suspended_since.isoformat() if e.suspended_since else None,
    }


def employer(e: Employer) -> dict[str, Any]:
    return {
        "uscc": e.uscc,
        "name": e.name,
        "division_code": e.division_code,
        "contact_phone": e.contact_phone,
    }


def institution(i: Institution) -> dict[str, Any]:
    return {
        "code": i.code,
        "name": i.name,
        "kind": i.kind,
        "level": i.level,
        "division_code": i.division_code,
        "access_id": i.access_id,
        "status": i.status,
        "require_body_signature": i.require_body_signature,
    }


def staff_user(u: StaffUser) -> dict[str, Any]:
    return {
        "username": u.username,
        "name": u.name,
        "role": u.role,
        "division_code": u.division_code,
        "active": u.active,
    }


def batch(b: EmployerBatch) -> dict[str, Any]:
    return {
        "batch_no": b.batch_no,
        "employer": employer(b.employer),
        "office": b.division_code,
        "letter_ref": b.letter_ref,
        "handler": {"certno": b.handler_certno, "name": b.handler_name},
        "filename": b.filename,
        "uploaded_at": b.uploaded_at.isoformat(),
        "total_rows": b.total_rows,
        "accepted_rows": b.accepted_rows,
        "rejected_rows": b.rejected_rows,
        "status": b.status,
        "materials": b.materials,
        "delivered_at": b.delivered_at.isoformat() if b.delivered_at else None,
        "rows": b.results,
    }
