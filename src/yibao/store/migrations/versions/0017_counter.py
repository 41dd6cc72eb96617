"""An enrolment application records the card and record book it continues

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 10:00:00

Seed 004, step 1: a person enrolling after resignation brings the medical
insurance card and the medical record book for continued use (医保卡及病历续
用). The approved application names the card that goes on being used and
whether the record book recorded with it is the one the person brought.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enrolment_applications") as batch:
        batch.add_column(sa.Column("renewed_card_no", sa.String(length=10), nullable=True))
        batch.add_column(
            sa.Column(
                "record_book_renewed", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("enrolment_applications") as batch:
        batch.drop_column("record_book_renewed")
        batch.drop_column("renewed_card_no")
