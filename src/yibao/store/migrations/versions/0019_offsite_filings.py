"""Off-site filings (异地就医备案) get their kind, state and who filed them

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-26 12:00:00

Issue 16: a filing for care in another area is a long stay (retired, living
or working elsewhere) or a referral, can be cancelled, and records the
channel and the actor who filed and cancelled it. Filings made before
this revision are long stays that are still active.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cross_area_filings") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=10), nullable=False, server_default="living")
        )
        batch.add_column(
            sa.Column("state", sa.String(length=10), nullable=False, server_default="active")
        )
        batch.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("channel", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("filed_by", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("cancelled_by", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cross_area_filings") as batch:
        batch.drop_column("cancelled_by")
        batch.drop_column("filed_by")
        batch.drop_column("channel")
        batch.drop_column("cancelled_at")
        batch.drop_column("state")
        batch.drop_column("kind")
