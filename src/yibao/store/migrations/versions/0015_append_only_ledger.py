"""An append-only ledger, audited entry by entry; a keyed audit chain

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26 09:00:00

Forgery must be found (issue 14):

- ``ledger_entries`` and ``ledger_postings`` refuse UPDATE and DELETE (and
  TRUNCATE on PostgreSQL), as ``audit_log`` does since 0001: a correction is
  a reversing entry. ``ledger_accounts.balance`` is still updated by every
  posting; ``yibao ledger check`` compares it with its postings' sum.
- Every ledger entry written from now on leaves an audit record
  (``domain/ledger_audit.py``). The entries already there have none: this
  migration writes one record, ``ledger.audited_from``, with their number,
  the last id and a digest of them all, which ``yibao ledger check``
  compares them with instead. It is written with the plain hash of the
  entries before it (no audit key is at hand here), at the beginning of
  its chain; the first checkpoint taken after the upgrade fixes it.
- The audit chain is keyed (``domain/audit.py``): ``yb_audit_append`` takes
  HMAC's inner and outer keys of each entry's secret in place of the hashed
  payload, and completes a keyed link; ``yb_his_touch``, ``yb_his_person``
  and ``yb_his_settle`` pass them on, and ``yb_his_settle`` appends the
  ledger entry's record too. Entries already in the log keep their plain
  hashes and verify as before.

``PINNED`` is the SHA-256 of each function file as this migration installs it.
"""

import datetime as dt
from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

from yibao.domain import ledger_audit
from yibao.store import auditlog, sql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PINNED = {
    "yb_audit_append": "24939ac4b601b20050885c46c364777d6eb8a6cefac3d9448af0c522715b1afa",
    "yb_his_touch": "2a6242e814923bd89b252b2b1594ced00bee3f0f60779b5b585ab34fe486d4c4",
    "yb_his_person": "fc5e6584995f38b3e7d4dc8e3a0f4e4ebb47a7fa2da7055698ba0cf729fbe4ba",
    "yb_his_settle": "b2386f4c9620d1f476733148380a4fd47e2495272507b700163c3e37e2086bc2",
}

TABLES = ("ledger_entries", "ledger_postings")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION ledger_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
            END
            $$ LANGUAGE plpgsql
            """
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()"
            )
    else:
        for table in TABLES:
            for change in ("update", "delete"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{change} BEFORE {change.upper()} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
    sql.install(*PINNED)
    _record_the_entries_before()


def _record_the_entries_before() -> None:
    """The ``ledger.audited_from`` record of the entries written so far,
    unless there are none, or entries have been audited already (a database
    upgraded once before, downgraded and upgraded again)."""
    conn = op.get_bind()
    if conn.execute(
        text("SELECT 1 FROM audit_log WHERE action = :a LIMIT 1"), {"a": ledger_audit.ENTRY_ACTION}
    ).first():
        return
    digest = ledger_audit.LegacyDigest()
    last = 0
    for entry in ledger_audit.entries(conn.execute(text(ledger_audit.ENTRIES_SQL))):
        digest.add(entry.id, entry.key, entry.kind, entry.person_id, entry.digest)
        last = entry.id
    if not digest.entries:
        return
    record = ledger_audit.boundary_record(
        last_id=last, entries=digest.entries, digest=digest.hexdigest()
    )
    # when the upgrade ran: a migration has no clock of the application's
    auditlog.append_unkeyed(conn, record, dt.datetime.now(dt.UTC))


def downgrade() -> None:
    # The functions keep their current text: there is one text per function.
    # The ledger's audit records stay in the log, which is append-only.
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS ledger_append_only()")
    else:
        for table in TABLES:
            for change in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{change}")
