"""Portal and terminal sessions kept on the server

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26 10:00:00

Portal and terminal sessions were signed cookies only: a copy taken before
log-out kept working until the cookie's own expiry. ``web_sessions`` keeps
each signed-in session (the SHA-256 of the random id the cookie carries, the
person, at a terminal the terminal and the card, the CSRF token, when it was
opened and last seen, when it expires and whether it was revoked), so that
log-out, a password change and the idle time end it on the server.
Sessions signed in before this revision end: people sign in again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("person_id", BigId, nullable=False),
        sa.Column("terminal_code", sa.String(length=40), nullable=True),
        sa.Column("card_no", sa.String(length=20), nullable=True),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("idle_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"]),
        sa.ForeignKeyConstraint(["terminal_code"], ["kiosk_terminals.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_sessions_person_id"), ["person_id"])
        batch_op.create_index(batch_op.f("ix_web_sessions_terminal_code"), ["terminal_code"])
        batch_op.create_index(batch_op.f("ix_web_sessions_expires_at"), ["expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_sessions_expires_at"))
        batch_op.drop_index(batch_op.f("ix_web_sessions_terminal_code"))
        batch_op.drop_index(batch_op.f("ix_web_sessions_person_id"))
    op.drop_table("web_sessions")
