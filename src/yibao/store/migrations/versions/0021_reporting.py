"""The bureau's dashboard: refused settlements and reconciliation results

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 10:00:00

Issue 17: the dashboard counts settlements refused by reason and shows the
differences each institution's reconciliation (3201) found; neither was
kept before (a refusal rolls its transaction back, a reconciliation only
answered).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "settlement_refusals",
        sa.Column("id", BigId, nullable=False),
        sa.Column("institution_code", sa.String(length=20), nullable=False),
        sa.Column("area", sa.String(length=9), nullable=False),
        sa.Column("infno", sa.String(length=10), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_settlement_refusals_area_at", "settlement_refusals", ["area", "at"])
    op.create_table(
        "reconciliations",
        sa.Column("id", BigId, nullable=False),
        sa.Column("institution_code", sa.String(length=20), nullable=False),
        sa.Column("area", sa.String(length=9), nullable=False),
        sa.Column("begin_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("insutype", sa.String(length=3), nullable=False),
        sa.Column("given_medfee", sa.BigInteger(), nullable=False),
        sa.Column("our_medfee", sa.BigInteger(), nullable=False),
        sa.Column("given_fund", sa.BigInteger(), nullable=False),
        sa.Column("our_fund", sa.BigInteger(), nullable=False),
        sa.Column("given_acct", sa.BigInteger(), nullable=False),
        sa.Column("our_acct", sa.BigInteger(), nullable=False),
        sa.Column("given_count", sa.Integer(), nullable=False),
        sa.Column("our_count", sa.Integer(), nullable=False),
        sa.Column("balanced", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reconciliations_area_at", "reconciliations", ["area", "at"])


def downgrade() -> None:
    op.drop_index("ix_reconciliations_area_at", table_name="reconciliations")
    op.drop_table("reconciliations")
    op.drop_index("ix_settlement_refusals_area_at", table_name="settlement_refusals")
    op.drop_table("settlement_refusals")
