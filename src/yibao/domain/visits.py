"""A counter visit: the clerk checks a document before a person's data is shown.

Seed 000: staff see a person's file, and act on it, only after checking and
recording which document the person (or their delegate) showed. The record is
the visit; every page and action of the visit is about that person alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from yibao.domain.errors import DomainError, invalid

# The documents a clerk may check before showing a person's data.
DOCUMENTS = ("id_card", "household_register", "social_security_card", "passport", "delegation")


@dataclass(frozen=True)
class Visit:
    """The person a clerk checked a document for, in this console session."""

    account_no: str
    person_id: int
    document: str


def check_document(document: str) -> str:
    if document not in DOCUMENTS:
        raise invalid(
            "document", "请选择已核验的证件", "choose the document you checked", "required"
        )
    return document


def require_visit(visit: Visit | None, account_no: str) -> Visit:
    """The visit recorded for this person; refused when the clerk checked no
    document for them (or checked one for somebody else)."""
    if visit is None or visit.account_no != account_no:
        raise DomainError(
            code="counter.document_required",
            zh="请先核验并登记证件",
            en="check and record the person's document first",
            status=403,
        )
    return visit
