"""Fewer statements per settlement on PostgreSQL

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-26 14:00:00

Issue 18, "Less CPU per settlement": ``yb_his_settle`` claims the nonce and
the request's key in one statement and appends the settlement's two audit
entries (the ledger entry's record, then the settlement's) in one, under one
lock and one move of the chain's head; ``yb_settle`` locks the accounts
first and makes the missing ones only when one is missing, then moves the
balances, writes the postings and reads the balance before the entry back
in one statement. The rows written, the entries and their links are those
of before: only the number of statements changes. No table changes.

``PINNED`` is the SHA-256 of each function file as this migration installs it.
"""

from collections.abc import Sequence

from yibao.store import sql

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PINNED = {
    "yb_settle": "dc1a7a36db97fa163e9ac9f1b0b83e198ac54a4245ff54e72854b31de26164a3",
    "yb_his_settle": "b9c9a663569a646c1775d82e46c0b3534168fc3d8b187f3394ef725886de7d64",
}


def upgrade() -> None:
    sql.install(*PINNED)


def downgrade() -> None:
    # the functions keep their current text (one text per function): they
    # write the same rows on the schema of 0020
    pass
