"""The PostgreSQL server-side functions: each one's current text in one
file here, ``<name>.sql``, so that a reader finds the function in one place.

The migrations load the files (Alembic's "replaceable objects" recipe): the
migration that first needed a function installs it from its file, and a
migration that changes a file installs it again on existing databases and
pins the text it installs by its SHA-256 (``PINNED`` in the migration;
``tests/db/test_migrations.py`` holds the newest pin of each function to
its file, so that a file edited without a migration fails the suite).
Every installed function carries the file's digest in its comment
(``COMMENT ON FUNCTION``), so that a database can be checked against the
files too.

Bodies are not checked while loading (``check_function_bodies = off``): a
migration may install a function that reads a table a later one adds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

FOLDER = Path(__file__).parent

# in the order they may be installed: a function before those that call it
FUNCTIONS = (
    "yb_audit_append",
    "yb_settle",
    "yb_his_read",
    "yb_his_touch",
    "yb_his_person",
    "yb_his_settle",
)


def source(name: str) -> str:
    return (FOLDER / f"{name}.sql").read_text(encoding="utf-8")


def digest(name: str) -> str:
    return hashlib.sha256(source(name).encode()).hexdigest()


def body(name: str) -> str:
    """What PostgreSQL keeps as the function's source (``pg_proc.prosrc``):
    the text between the dollar quotes."""
    return source(name).split("$$", 1)[1].rsplit("$$", 1)[0]


def comment(name: str) -> str:
    return f"yibao store/sql/{name}.sql sha256:{digest(name)}"


def install(*names: str) -> None:
    """In a migration: (re)create the functions from their files, on
    PostgreSQL; nothing on SQLite, which has none."""
    from alembic import op

    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("SET LOCAL check_function_bodies = off")
    for name in names:
        # dropped first: a changed argument list would otherwise add an overload
        op.execute(f"DROP FUNCTION IF EXISTS {name}")
        op.execute(source(name))
        op.execute(f"COMMENT ON FUNCTION {name} IS '{comment(name)}'")


def drop(*names: str) -> None:
    from alembic import op

    if op.get_bind().dialect.name != "postgresql":
        return
    for name in names:
        op.execute(f"DROP FUNCTION IF EXISTS {name}")
