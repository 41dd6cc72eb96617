"""HIS fast path on PostgreSQL

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 09:40:00

Server-side functions for the settlement channel's PostgreSQL fast path
(``services/settlement/fast_path.py``): 1101 in two round trips and 2207 in two, where
the general path takes a dozen statements each. They decide nothing the
Python rules do not also decide: ``yb_his_read`` only reads, and the writing
functions re-check under row locks what the answer was computed from, raising
(and so rolling back every write, the nonce claim included) when it changed.

``yb_audit_append`` is ``store/auditlog.append`` for one record: the writer
sends the hashed payload after chain and sequence number
(``domain.audit.AuditRecord.tail``), the function completes the hash under the
chain head's lock, so that ``yibao audit verify`` checks both alike.
"""

from collections.abc import Sequence

from yibao.store import sql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # their current text is in store/sql/ (one file each)
    sql.install("yb_audit_append", "yb_his_read", "yb_his_touch", "yb_his_settle")


def downgrade() -> None:
    sql.drop("yb_his_settle", "yb_his_touch", "yb_his_read", "yb_audit_append")
