"""Engines and sessions for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker


class DatabaseUnreachable(Exception):
    """The database refused the connection or could not be reached. Its
    message is one line naming the URL without its password and the reason
    the server or driver gave: what an operator needs to fix a role, a
    password, a host or a database name, with no trace to read through."""


def shown_url(url: str) -> str:
    """The URL as it may be printed or logged: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: show none of it, it may hold a password
        return "(not a database URL)"


def check_connection(url: str, engine: Engine | None = None) -> None:
    """Connect once and run ``SELECT 1``, or raise ``DatabaseUnreachable``."""
    try:
        password = make_url(url).password
    except Exception:
        raise DatabaseUnreachable(
            "YIBAO_DATABASE_URL is not a database URL 不是数据库地址 "
            "(dialect+driver://user:password@host:port/database)"
        ) from None
    own = engine is None
    try:
        engine = engine or make_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (DBAPIError, SQLAlchemyError, ImportError) as exc:
        reason = _reason(exc)
        if password:  # should a driver ever echo it
            reason = reason.replace(str(password), "***")
        raise DatabaseUnreachable(
            f"cannot connect to the database 无法连接数据库 {shown_url(url)}: {reason}"
        ) from None
    finally:
        if own and engine is not None:
            engine.dispose()


def _reason(exc: BaseException) -> str:
    """The driver's own words (psycopg's span several lines), on one line."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    said = " ".join(str(cause).split())
    return said or type(cause).__name__


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when a transaction starts.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Take the write lock at the start: a deferred transaction that
            # later upgrades to a writer fails at once with "database is
            # locked" when another writer got there first.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
