"""Employers' own channel: accounts and sessions

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27 10:00:00

An employer signs in to /employer/ with its unified social credit code and a
password first set with an activation code from the county center (issue 15).
``employer_accounts`` keeps the password's hash, the wrong passwords and the
lock, and the activation code's hash; ``web_sessions`` keeps employers'
sessions too, so a session belongs to a person or to an employer.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "employer_accounts",
        sa.Column("employer_id", BigId, nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activation_hash", sa.String(length=200), nullable=True),
        sa.Column("activation_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["employer_id"], ["employers.id"]),
        sa.PrimaryKeyConstraint("employer_id"),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("employer_id", BigId, nullable=True))
        batch_op.alter_column("person_id", existing_type=BigId, nullable=True)
        batch_op.create_index(batch_op.f("ix_web_sessions_employer_id"), ["employer_id"])
        batch_op.create_foreign_key(
            "fk_web_sessions_employer_id_employers", "employers", ["employer_id"], ["id"]
        )


def downgrade() -> None:
    # employers' sessions have no person: they end with the channel
    op.execute("DELETE FROM web_sessions WHERE person_id IS NULL")
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_constraint("fk_web_sessions_employer_id_employers", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_web_sessions_employer_id"))
        batch_op.alter_column("person_id", existing_type=BigId, nullable=False)
        batch_op.drop_column("employer_id")
    op.drop_table("employer_accounts")
