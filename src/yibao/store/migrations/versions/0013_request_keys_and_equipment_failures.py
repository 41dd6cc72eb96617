"""Request keys in one layer; equipment failures and their cash visits

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25 10:00:00

Idempotency had two homes: ``his_messages`` for 2201-2205 and the ledger
entry's key and stored answer for 2207 and 2208, each checked before any
lock, so that an overlapping resend of a 2208 was answered "already
cancelled" about its own cancel. ``request_keys`` is the one home now
(services/idempotency.py): claimed first, the answer kept with the key and a
fingerprint of the request, so that a msgid reused for another request is
refused. The messages and the HIS ledger entries' answers kept so far are
carried over, fingerprinted by their infno alone ("legacy:").

An institution declares an equipment failure (``equipment_failures``); a
cash visit names the failure it fell in, a person's visits are found by time
(a cash visit at a time the person was seen elsewhere is refused), and a
cash visit is re-settled at most once, also after a cancel (a unique index).
(``yb_his_settle``, installed by 0012, claims the request key on the fast path.)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "request_keys",
        sa.Column("id", BigId, nullable=False),
        sa.Column("scope", sa.String(length=60), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("fingerprint", sa.String(length=90), nullable=False),
        sa.Column("output", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "key", name="uq_request_keys"),
    )
    op.execute(
        "INSERT INTO request_keys (scope, key, fingerprint, output, at) "
        "SELECT 'his:' || institution_code, msgid, 'legacy:' || infno, output, at "
        "FROM his_messages"
    )
    # 2207's and 2208's first answers were kept with their ledger entries,
    # keyed 'his:' + institution code (12 characters) + ':' + msgid
    op.execute(
        "INSERT INTO request_keys (scope, key, fingerprint, output, at) "
        "SELECT 'his:' || substr(e.idem_key, 5, 12), substr(e.idem_key, 18), "
        "CASE WHEN e.kind LIKE 'reversal:%' THEN 'legacy:2208' ELSE 'legacy:2207' END, "
        "e.result, e.at FROM ledger_entries e "
        "WHERE e.idem_key LIKE 'his:%' AND substr(e.idem_key, 17, 1) = ':' "
        "AND NOT EXISTS (SELECT 1 FROM request_keys k "
        "WHERE k.scope = 'his:' || substr(e.idem_key, 5, 12) AND k.key = substr(e.idem_key, 18))"
    )
    op.drop_table("his_messages")
    op.create_table(
        "equipment_failures",
        sa.Column("id", BigId, nullable=False),
        sa.Column("institution_code", sa.String(length=20), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("declared_by", sa.String(length=80), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("equipment_failures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_equipment_failures_institution", ["institution_code", "start_at"], unique=False
        )
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("equipment_failure_id", BigId, nullable=True))
        batch_op.drop_index("ix_visits_person_id")
        batch_op.create_index("ix_visits_person_begntime", ["person_id", "begntime"], unique=False)
    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.create_index(
            "uq_settlements_resettled_once",
            ["visit_id"],
            unique=True,
            postgresql_where=sa.text("kind = 'resettlement'"),
            sqlite_where=sa.text("kind = 'resettlement'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_settlements_resettled_once",
            postgresql_where=sa.text("kind = 'resettlement'"),
            sqlite_where=sa.text("kind = 'resettlement'"),
        )
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index("ix_visits_person_begntime")
        batch_op.create_index("ix_visits_person_id", ["person_id"], unique=False)
        batch_op.drop_column("equipment_failure_id")
    with op.batch_alter_table("equipment_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_equipment_failures_institution")
    op.drop_table("equipment_failures")
    op.create_table(
        "his_messages",
        sa.Column("id", BigId, nullable=False),
        sa.Column("institution_code", sa.String(length=20), nullable=False),
        sa.Column("msgid", sa.String(length=60), nullable=False),
        sa.Column("infno", sa.String(length=8), nullable=False),
        sa.Column("output", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("institution_code", "msgid", name="uq_his_messages"),
    )
    op.drop_table("request_keys")
