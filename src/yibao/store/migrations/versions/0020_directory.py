"""Public look-ups: institutions' address, telephone and off-site flag, and
the change history of institutions and the catalogue

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 10:00:00

Issue 16: anyone may look up the designated institutions (by area, kind,
level, whether they settle off-site visits) and the medical catalogue
without logging in; staff keep both, and every change they make is kept
in ``directory_changes`` with its old and new values.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("institutions") as batch:
        batch.add_column(
            sa.Column(
                "address", sa.String(length=200), nullable=False, server_default=sa.text("''")
            )
        )
        batch.add_column(
            sa.Column(
                "telephone", sa.String(length=30), nullable=False, server_default=sa.text("''")
            )
        )
        batch.add_column(
            sa.Column("offsite", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "directory_changes",
        sa.Column("id", BigId, nullable=False),
        sa.Column("subject_kind", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=60), nullable=False),
        sa.Column("division_code", sa.String(length=9), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("actor_kind", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.String(length=60), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_directory_changes_division_code", "directory_changes", ["division_code"])
    op.create_index(
        "ix_directory_changes_subject", "directory_changes", ["subject_kind", "subject"]
    )


def downgrade() -> None:
    op.drop_index("ix_directory_changes_subject", table_name="directory_changes")
    op.drop_index("ix_directory_changes_division_code", table_name="directory_changes")
    op.drop_table("directory_changes")
    with op.batch_alter_table("institutions") as batch:
        batch.drop_column("offsite")
        batch.drop_column("telephone")
        batch.drop_column("address")
