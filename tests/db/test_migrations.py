"""The migrations on SQLite and PostgreSQL: one head, the newest one goes down
and up again, the migrated schema is the one the models describe, and each
PostgreSQL function is its file's text (store/sql/)."""

from inspect import getsource as inspect_source
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from yibao.domain.errors import DomainError
from yibao.store import migrate, sql
from yibao.store.db import make_engine
from yibao.store.models import Base


def _diff(url):
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def _columns(url, table):
    engine = make_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


ADDED = {"device_hash", "activation_hash", "activation_expires", "activation_failures"}


def test_kiosk_activation_migration_goes_down_and_up_again(db_url, demo):
    assert len(migrate.heads()) == 1
    assert _diff(db_url) == []
    assert ADDED | {"activated_at"} <= _columns(db_url, "kiosk_terminals")
    cfg = migrate.alembic_config(db_url)
    command.downgrade(cfg, "0009")
    assert not ADDED & _columns(db_url, "kiosk_terminals")
    command.upgrade(cfg, "head")
    assert _diff(db_url) == []
    # the demo's terminals came through with nothing bound and no wrong tries
    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT code, device_hash, activation_failures FROM kiosk_terminals ORDER BY code"
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("T-HZZX-01", None, 0), ("T-NXRM-01", None, 0)]


def _migrations() -> list[Any]:
    """The migration modules, oldest first."""
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    return [r.module for r in reversed(list(script.walk_revisions()))]


def test_each_function_file_is_pinned_by_the_newest_migration_that_installs_it() -> None:
    """A function's file edited without a migration that installs the new
    text on existing databases (and pins its digest) fails here; and no
    migration carries a copy of a function's text any more."""
    pinned: dict[str, str] = {}
    for module in _migrations():
        pinned.update(getattr(module, "PINNED", {}))
        source = inspect_source(module).upper()
        for name in sql.FUNCTIONS:
            assert f"FUNCTION {name.upper()}(" not in source, (module.__name__, name)
    assert set(pinned) == set(sql.FUNCTIONS)
    for name in sql.FUNCTIONS:
        assert pinned[name] == sql.digest(name), f"store/sql/{name}.sql changed without a migration"


def test_the_functions_in_a_migrated_database_are_exactly_the_files(db_url, backend):
    """Each server-side function is its file's text (``pg_proc.prosrc``),
    once (no overload left behind by a changed argument list), and carries
    the file's digest in its comment."""
    if backend != "postgresql":
        pytest.skip("SQLite has no server-side functions")
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            for name in sql.FUNCTIONS:
                rows = conn.execute(
                    text(
                        "SELECT p.prosrc, obj_description(p.oid, 'pg_proc') FROM pg_proc p "
                        "WHERE p.proname = :n"
                    ),
                    {"n": name},
                ).all()
                assert len(rows) == 1, name
                assert rows[0][0] == sql.body(name), name
                assert rows[0][1] == sql.comment(name), name
    finally:
        engine.dispose()


def test_the_request_keys_carry_the_answers_kept_before(db_url, demo, services, backend):
    """0013 moves the HIS's kept answers (his_messages, and 2207's and 2208's
    in their ledger entries) into request_keys: a resend after the upgrade
    still gets its first answer, and another infno under that msgid is refused."""
    from yibao.services import idempotency

    cfg = migrate.alembic_config(db_url)
    command.downgrade(cfg, "0012")
    engine = make_engine(db_url)
    now = "2026-11-23 02:00:00"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO his_messages (institution_code, msgid, infno, output, at) "
                "VALUES ('H33050200001', 'OLD-2201', '2201', :o, :at)"
            ),
            {"o": '{"data": {"mdtrt_id": "MD1"}}', "at": now},
        )
        conn.execute(
            text(
                "INSERT INTO ledger_entries (idem_key, kind, memo, at, result) "
                "VALUES ('his:H33050200001:OLD-2207', 'settlement', '', :at, :o)"
            ),
            {"o": '{"setlinfo": {"setl_id": "ST1"}}', "at": now},
        )
    engine.dispose()
    command.upgrade(cfg, "head")
    assert _diff(db_url) == []
    scope = "his:H33050200001"
    for key, infno, output in (
        ("OLD-2201", "2201", {"data": {"mdtrt_id": "MD1"}}),
        ("OLD-2207", "2207", {"setlinfo": {"setl_id": "ST1"}}),
    ):
        with services.uow().transaction() as u:
            got = idempotency.once(
                u,
                scope=scope,
                key=key,
                fingerprint=idempotency.fingerprint(infno, {"any": "input"}),
                work=lambda: {"done": "again"},
            )
        assert got == output
        with pytest.raises(DomainError) as refused, services.uow().transaction() as u:
            idempotency.once(
                u,
                scope=scope,
                key=key,
                fingerprint=idempotency.fingerprint("2204", {}),
                work=lambda: {},
            )
        assert refused.value.code == "idempotency.key_reused" and key in refused.value.en


def test_a_database_of_before_0015_keeps_working_and_its_old_ledger_is_anchored(
    db_url, services, backend
):
    """Audit entries written before the key keep their plain hash and
    verify; ledger entries written before 0015 have no audit record, so the
    upgrade records them as one digest, which ledger check compares them
    with; and the ledger tables are append-only from then on."""
    import datetime as dt

    from sqlalchemy.exc import DBAPIError

    from tests.db.tampering import behind_the_back
    from tests.helpers import SYSTEM
    from yibao.domain import ledger as codes
    from yibao.services.access import audit
    from yibao.services.ledger import ledger
    from yibao.store import auditlog

    cfg = migrate.alembic_config(db_url)
    command.downgrade(cfg, "0013")
    at = dt.datetime(2026, 11, 1, 2, 0, tzinfo=dt.UTC)
    with services.engine.begin() as conn:
        for n in range(3):  # written by the code of before: plain hashes
            old = SYSTEM.record(channel="cli", action="old.entry", subject=str(n))
            auditlog.append_unkeyed(conn, old, at)
        conn.execute(
            text(
                "INSERT INTO ledger_accounts (code, kind, area, balance, allow_negative, "
                "created_at) VALUES ('BANK:CLEARING', 'bank', '', -500, true, :at), "
                "('FUND:330502:0', 'fund', '330502', 500, true, :at)"
            ),
            {"at": at},
        )
        for key in ("old-1", "old-2"):
            entry = conn.execute(
                text(
                    "INSERT INTO ledger_entries (idem_key, kind, memo, at, result) "
                    "VALUES (:k, 'contribution', '', :at, '{}') RETURNING id"
                ),
                {"k": key, "at": at},
            ).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO ledger_postings (entry_id, account_id, amount, at) "
                    "SELECT :e, id, CASE WHEN kind = 'bank' THEN -250 ELSE 250 END, :at "
                    "FROM ledger_accounts"
                ),
                {"e": entry, "at": at},
            )
    command.upgrade(cfg, "head")
    verified = audit.verify(services.uow())
    assert verified.ok, verified.problems
    assert verified.result.plain == 4  # three old entries and the upgrade's record of the ledger
    assert ledger.verify(services.uow()).ok
    # new work is keyed and audited entry by entry
    with services.uow() as u:
        ledger.post(
            u,
            key="new-1",
            kind="contribution",
            legs=[ledger.Leg(codes.BANK, -100, "bank"), ledger.Leg("FUND:330502:0", 100, "fund")],
        )
        u.commit()
    assert audit.verify(services.uow()).ok and ledger.verify(services.uow()).ok
    with services.uow() as u, pytest.raises(DBAPIError, match="append-only"):
        u.session.execute(text("UPDATE ledger_postings SET amount = amount"))
    # an old posting moved between the two accounts, balances adjusted: found
    with behind_the_back(services.engine, backend) as conn:
        conn.execute(
            text(
                "UPDATE ledger_postings SET amount = amount + 50 WHERE entry_id = "
                "(SELECT id FROM ledger_entries WHERE idem_key = 'old-1') AND amount > 0"
            )
        )
        conn.execute(text("UPDATE ledger_accounts SET balance = balance + 50 WHERE kind = 'fund'"))
        conn.execute(
            text(
                "UPDATE ledger_postings SET amount = amount - 50 WHERE entry_id = "
                "(SELECT id FROM ledger_entries WHERE idem_key = 'old-1') AND amount < 0"
            )
        )
        conn.execute(text("UPDATE ledger_accounts SET balance = balance - 50 WHERE kind = 'bank'"))
    problems = ledger.verify(services.uow()).problems
    assert len(problems) == 1 and problems[0].startswith(
        "the 2 ledger entries written before they were audited (ids up to 2"
    )
    # down and up again: nothing recorded twice
    command.downgrade(cfg, "0013")
    command.upgrade(cfg, "head")
    with services.uow() as u:
        assert (
            u.session.execute(
                text("SELECT count(*) FROM audit_log WHERE action = 'ledger.audited_from'")
            ).scalar_one()
            == 1
        )
