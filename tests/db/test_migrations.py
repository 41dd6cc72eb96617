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
