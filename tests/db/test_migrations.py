"""The migrations on SQLite and PostgreSQL: one head, the newest one goes down
and up again, and the migrated schema is the one the models describe."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from yibao.store import migrate
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
