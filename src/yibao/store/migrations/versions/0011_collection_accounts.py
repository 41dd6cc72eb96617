"""The bureau's collection accounts are data, by pooling area

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 10:00:00

The payment voucher printed one collection account (收入户) written into the
code; a bureau keeps one per pooling area, and changes it when its bank
does. Vouchers already issued keep the account they were printed with.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "collection_accounts",
        sa.Column("area", sa.String(length=6), nullable=False),
        sa.Column("bank", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("account", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("area"),
    )


def downgrade() -> None:
    op.drop_table("collection_accounts")
