"""The audit log's own checks: its hash chains intact, nothing edited or removed."""

from __future__ import annotations

from yibao.services.tx import use_case
from yibao.store import auditlog
from yibao.store.uow import UnitOfWork


@use_case
def verify(uow: UnitOfWork) -> auditlog.VerifyResult:
    return auditlog.verify(uow.session)
