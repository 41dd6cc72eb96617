"""The server-side functions' current text, from one file each

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 09:00:00

Each PostgreSQL function's text now lives in one file, ``store/sql/<name>.sql``,
which the migrations load, instead of a copy in each migration that changed
it (0005, 0008, 0009). This one installs the current text on databases made
before, with what changed in it:

- ``yb_settle`` answers the new entry's id (NULL for a used key), checks the
  individual account's balance against the one the decision saw (so the
  general path and the fast path write under the same checks, and the ORM
  implementation of the write does the same), and keeps a settlement's
  answer with the request's key, not in the ledger entry;
- ``yb_his_settle`` leaves that check to ``yb_settle``, and claims the
  request's key (``request_keys``, migration 0013) with its answer, as the
  idempotency layer does on the general path;
- ``yb_his_read`` and ``yb_his_person`` say whether a reissue replaced the
  card presented, and its number: a replaced card opens nothing (domain.use).

``PINNED`` is the SHA-256 of each file as this migration installs it: the
suite holds the newest pin of each function to its file.
"""

from collections.abc import Sequence

from yibao.store import sql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PINNED = {
    "yb_audit_append": "e51ac2096f3a057e84a2a71b3407ef39f952a680b97cc03baba391b96ff830dd",
    "yb_settle": "a75cb1e92761cf28a9afb7cb710d938e83cf9ea153ddf997477337e6be4d6a1c",
    "yb_his_read": "fd8bc7231876504d5859bc990c279b4e3c8abd5d076b0d4c03f3ceba670186c9",
    "yb_his_touch": "18899a78384758b4509985b99ddcad8e70c72559bff0894a5b854f896792360e",
    "yb_his_person": "402771bf1f9d3092fa792ba477d2ae817d9c866dd7acac6a19a74eec5e6bf694",
    "yb_his_settle": "d8996f5118ae48948181ea68f9bc89197b0c3673ce76121990e43a64c93673d6",
}


def upgrade() -> None:
    sql.install(*PINNED)


def downgrade() -> None:
    # The functions keep their current text: there is one text per function.
    pass
