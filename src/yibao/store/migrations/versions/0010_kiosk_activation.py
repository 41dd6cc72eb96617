"""Self-service terminals activate themselves with a one-time code

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 09:00:00

A terminal used to be chosen by a query parameter, so any browser could pose
as any terminal and multiply its PIN guesses (three per card, terminal and
day). Now staff issue a one-time activation code (kept as its SHA-256
digest, with its expiry and a count of wrong tries); the machine that gives
it gets a random device token, of which the terminal keeps the digest, and
is identified by that alone.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("kiosk_terminals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("device_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("activation_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("activation_expires", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "activation_failures", sa.Integer(), server_default=sa.text("0"), nullable=False
            )
        )
        batch_op.add_column(sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_kiosk_terminals_device_hash"), ["device_hash"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("kiosk_terminals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kiosk_terminals_device_hash"))
        batch_op.drop_column("activated_at")
        batch_op.drop_column("activation_failures")
        batch_op.drop_column("activation_expires")
        batch_op.drop_column("activation_hash")
        batch_op.drop_column("device_hash")
