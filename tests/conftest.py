"""Test harness: every database test runs on SQLite and on a real PostgreSQL.

PostgreSQL is a throw-away cluster started for the session from the server
binaries on the machine; nothing about the database is mocked.
``YIBAO_TEST_DATABASES=sqlite`` (or ``postgresql``) narrows the run.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import START
from yibao.app import create_app
from yibao.clock import FixedClock
from yibao.config import Settings
from yibao.runtime import Services
from yibao.services import security
from yibao.store import migrate
from yibao.testing.pgcluster import NoServerBinaries, PgCluster

BACKENDS = [b for b in os.environ.get("YIBAO_TEST_DATABASES", "sqlite,postgresql").split(",") if b]

security.configure("fast")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked ``postgresql_only`` (a race that SQLite's single writer
    cannot have) runs on PostgreSQL alone: its SQLite variant is not collected."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_sqlite = callspec is not None and callspec.params.get("db_url") == "sqlite"
        (drop if on_sqlite and item.get_closest_marker("postgresql_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    try:
        # A lock wait fails after lock_timeout instead of hanging the suite; an
        # idle transaction left open by a failed test is ended the same way.
        cluster = PgCluster(
            settings={
                "lock_timeout": "15s",
                "idle_in_transaction_session_timeout": "60s",
            }
        )
    except NoServerBinaries as exc:
        warnings.warn(f"POSTGRESQL TESTS SKIPPED: {exc}", stacklevel=1)
        pytest.skip(f"POSTGRESQL TESTS SKIPPED: {exc}")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _load_demo(url: str) -> None:
    from yibao import demo as demo_service

    settings = Settings(database_url=url, secret_key="test", argon2_profile="fast")
    services = Services.from_settings(settings, clock=FixedClock(START))
    demo_service.load(services)
    services.close()


@pytest.fixture(scope="session")
def pg_templates(pg_cluster: PgCluster) -> dict[str, str]:
    """Two template databases: the empty schema, and the schema with the demo city."""
    empty = pg_cluster.create_database("tpl_empty")
    migrate.upgrade(empty)
    with_demo = pg_cluster.create_database("tpl_demo")
    migrate.upgrade(with_demo)
    _load_demo(with_demo)
    return {"empty": "tpl_empty", "demo": "tpl_demo"}


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sqlite-templates")
    empty, with_demo = folder / "empty.sqlite3", folder / "demo.sqlite3"
    migrate.upgrade(f"sqlite:///{empty}")
    migrate.upgrade(f"sqlite:///{with_demo}")
    _load_demo(f"sqlite:///{with_demo}")
    for path in (empty, with_demo):  # fold the WAL into the file before copying it
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.close()
    return {"empty": empty, "demo": with_demo}


_db_counter = itertools.count()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database per test, copied from a template: with the demo city
    when the test asks for ``demo``, else just the schema."""
    which = "demo" if "demo" in request.fixturenames else "empty"
    if request.param == "sqlite":
        path = tmp_path / "yibao.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_templates")[which], path)
        yield f"sqlite:///{path}"
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    template = request.getfixturevalue("pg_templates")[which]
    name = f"t{next(_db_counter)}"
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield cluster.url(name)
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def backend(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgresql"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        var_dir=tmp_path / "var",
        secret_key="test-secret-key",
        argon2_profile="fast",
    )


@pytest.fixture
def services(settings: Settings, clock: FixedClock) -> Iterator[Services]:
    services = Services.from_settings(settings, clock=clock)
    yield services
    services.close()


@pytest.fixture
def uow(services: Services):  # type: ignore[no-untyped-def]
    return services.uow()


@pytest.fixture
def demo(db_url: str) -> dict[str, Any]:
    """The demo city's fixtures; the database already holds it (see ``db_url``)."""
    from yibao import demo as demo_service

    return demo_service.fixtures()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, db_url: str, tmp_path: Path) -> str:
    """The ``yibao`` command's environment, on the test's database."""
    monkeypatch.setenv("YIBAO_DATABASE_URL", db_url)
    monkeypatch.setenv("YIBAO_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("YIBAO_ARGON2_PROFILE", "fast")
    return db_url


@pytest.fixture
def app(settings: Settings, clock: FixedClock):  # type: ignore[no-untyped-def]
    application = create_app(settings, clock)
    yield application
    application.state.services.engine.dispose()


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def token_for(services: Services):  # type: ignore[no-untyped-def]
    """Bearer headers for a staff user, as a machine client would have them."""
    from yibao.domain.actors import Channel
    from yibao.services.access import staff as access_service

    def make(username: str) -> dict[str, str]:
        token, _ = access_service.issue_api_token(
            services.uow(), username=username, channel=Channel.CLI, label="test", days=1
        )
        return {"Authorization": f"Bearer {token}"}

    return make
