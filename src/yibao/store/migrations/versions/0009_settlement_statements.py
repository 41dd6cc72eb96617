"""Settlement functions: generic plans, fewer statements

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 12:10:00

Measured under the settlement benchmark (issue 4), PostgreSQL spent a third
of its time planning: PL/pgSQL plans each statement of a function with the
call's values ("custom plans") unless the generic plan looks no dearer, and
for these statements it never did. Every statement here is a lookup by a
unique key or an insert, so the generic plan is the right one:
``plan_cache_mode = force_generic_plan`` on every function.

Third, ``yb_his_person`` answers 1101 in one call where it took two.

Second, each statement a function runs costs its executor set-up, whatever
it does. ``yb_settle`` goes from 13 statements to 8 and ``yb_audit_append``
from 4 to 1:

- the ledger entry is inserted first, so that a used key answers 'replay'
  before anything is written;
- the visit is closed by one guarded UPDATE, and the year's usage moved by
  one guarded upsert, instead of a locking read, a check and a write each;
- the balances move by one guarded UPDATE whose row count is the check;
- the audit chain head is locked, advanced and the entry written in one
  statement.

A check that fails after the first write raises ``yb:stale`` instead of
answering 'stale', so that the caller's rollback (a savepoint on the general
path, the whole call on the fast path) undoes the writes before it.
"""

from collections.abc import Sequence

from yibao.store import sql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # its current text, and the others' with their generic plans, are in
    # store/sql/ (one file each)
    sql.install("yb_his_person")


def downgrade() -> None:
    sql.drop("yb_his_person")
