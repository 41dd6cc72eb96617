"""Engines and sessions for SQLite (embedded) and PostgreSQL (production).

On PostgreSQL the URL may name several servers, for a pg_auto_failover
cluster (``yibao.ops.ha``): libpq tries them in turn and keeps the first that
takes writes. Either form, as SQLAlchemy and psycopg 3 accept them::

    postgresql+psycopg://u:p@/yibao?host=10.0.0.1:5432&host=10.0.0.2:5432&target_session_attrs=read-write
    postgresql+psycopg://u:p@/yibao?host=10.0.0.1,10.0.0.2&port=5432,5432&target_session_attrs=read-write

The HIS fast path's asyncpg pool is built from the same URL
(``asyncpg_connect_args``). After a failover nothing needs a restart: a
pooled connection to the lost server fails its pre-ping or its statement,
SQLAlchemy then drops the whole pool, and the next connection finds the new
primary.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from yibao.observability import metrics

log = logging.getLogger("yibao.db")


def _failover_seen() -> None:
    """A connection was made again after connections to the database had
    failed: a failover (or a restart of the server) was seen. The one place
    that counts them."""
    log.warning("the database connection was re-established after a failure (failover seen)")
    metrics.failover_seen()


class LostConnections:
    """Whether connections failed since the last one was made, for one engine
    or pool; shared by the threads of the thread pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lost = False

    def failed(self) -> None:
        with self._lock:
            self._lost = True

    def connected(self) -> None:
        with self._lock:
            was, self._lost = self._lost, False
        if was:
            _failover_seen()


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
    # a connection to a server that went away is found out before use
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    lost = LostConnections()

    @event.listens_for(engine, "handle_error")
    def _pg_error(context: Any) -> None:
        # a disconnect makes SQLAlchemy invalidate the pool; a failed
        # connection attempt (the new primary not promoted yet) is one too
        if context.is_disconnect or context.connection is None:
            lost.failed()

    @event.listens_for(engine, "connect")
    def _pg_connect(_dbapi_connection: Any, _record: Any) -> None:
        lost.connected()

    return engine


REPLICA_AS_OF = text(
    # the standby has replayed all it received: as fresh as its last contact
    # with the primary, i.e. now; else as of its last replayed commit
    "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() "
    "THEN NULL ELSE pg_last_xact_replay_timestamp() END, pg_is_in_recovery()"
)


def replica_as_of(session: Session) -> dt.datetime | None:
    """The time a standby's data is as of, or None when it is current (or
    the server is a primary)."""
    row = session.execute(REPLICA_AS_OF).one()
    at, in_recovery = row[0], row[1]
    if not in_recovery or at is None:
        return None
    return at if isinstance(at, dt.datetime) else None


def asyncpg_connect_args(url: URL) -> dict[str, Any]:
    """The arguments of ``asyncpg.connect``/``create_pool`` for the engine's
    URL: every host of a multi-host URL and ``target_session_attrs``, which
    asyncpg supports as libpq does."""
    query = dict(url.query)
    hosts: list[str] = []
    ports: list[int] = []
    raw_hosts = query.pop("host", None)
    raw_ports = query.pop("port", None)
    if raw_hosts is None:
        hosts, ports = [url.host or "localhost"], [url.port or 5432]
    else:
        listed = [raw_hosts] if isinstance(raw_hosts, str) else list(raw_hosts)
        entries = [h for item in listed for h in item.split(",") if h]
        port_list = [
            int(p)
            for item in ([raw_ports] if isinstance(raw_ports, str) else raw_ports or [])
            for p in item.split(",")
            if p
        ]
        for i, entry in enumerate(entries):
            host, _, port = entry.rpartition(":") if ":" in entry else (entry, "", "")
            hosts.append(host)
            if port:
                ports.append(int(port))
            elif i < len(port_list):
                ports.append(port_list[i])
            elif len(port_list) == 1:
                ports.append(port_list[0])
            else:
                ports.append(url.port or 5432)
    args: dict[str, Any] = {
        "host": hosts if len(hosts) > 1 else hosts[0],
        "port": ports if len(ports) > 1 else ports[0],
        "user": url.username,
        "password": url.password,
        "database": url.database,
    }
    attrs = query.pop("target_session_attrs", None)
    if attrs:
        args["target_session_attrs"] = str(attrs)
    return args


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
