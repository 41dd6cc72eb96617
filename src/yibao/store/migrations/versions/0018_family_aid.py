"""Family mutual aid: bindings and what holders paid for relatives

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26 12:00:00

Issue 16: an employee's individual account pays for a spouse, a parent or a
child (家庭共济). ``family_bindings`` says who may pay for whom, with the
relative's consent and order; ``family_payments`` what a holder paid, for
a settlement or a resident contribution, and in which ledger entry.
``yb_his_read`` now says whether the person has a bound payer, so that
the fast path gives such a settlement to the general path.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from yibao.store import sql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

PINNED = {
    "yb_his_read": "f58b9315058861899437747e321e55d9ef932665854da723aba901b2070f5ca3",
}


def upgrade() -> None:
    op.create_table(
        "family_bindings",
        sa.Column("id", BigId, nullable=False),
        sa.Column("holder_id", BigId, sa.ForeignKey("persons.id"), nullable=False),
        sa.Column("relative_id", BigId, sa.ForeignKey("persons.id"), nullable=False),
        sa.Column("relation", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_via", sa.String(length=20), nullable=False),
        sa.Column("consented_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consented_via", sa.String(length=20), nullable=True),
        sa.Column("consented_by", sa.String(length=60), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=60), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("holder_id", "relative_id", name="uq_family_bindings"),
    )
    op.create_index("ix_family_bindings_holder_id", "family_bindings", ["holder_id"])
    op.create_index("ix_family_bindings_relative", "family_bindings", ["relative_id", "status"])
    op.create_table(
        "family_payments",
        sa.Column("id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("holder_id", BigId, nullable=False),
        sa.Column("relative_id", BigId, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", BigId, nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=False),
        sa.Column("institution_code", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reversed_entry_id", BigId, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("holder_id", "relative_id", "entry_id"):
        op.create_index(f"ix_family_payments_{column}", "family_payments", [column])
    sql.install(*PINNED)


def downgrade() -> None:
    # yb_his_read keeps its current text (one text per function); it reads
    # family_bindings, so on PostgreSQL the fast path needs this migration.
    op.drop_table("family_payments")
    op.drop_table("family_bindings")
