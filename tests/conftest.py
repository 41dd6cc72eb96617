"""Test harness: every database test runs on SQLite and on a real PostgreSQL.

PostgreSQL is a throw-away cluster started for the session from the server
binaries on the machine; nothing about the database is mocked.
``YIBAO_TEST_DATABASES=sqlite`` (or ``postgresql``) narrows the run.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from yibao.app import Services, create_app
from yibao.clock import CHINA, FixedClock
from yibao.config import Settings
from yibao.services import security
from yibao.store import migrate
from yibao.store.db import make_engine, make_session_factory
from yibao.testing.pgcluster import NoServerBinaries, PgCluster

BACKENDS = [b for b in os.environ.get("YIBAO_TEST_DATABASES", "sqlite,postgresql").split(",") if b]
START = dt.datetime(2026, 11, 23, 10, 0, tzinfo=CHINA)

security.configure("fast")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    try:
        cluster = PgCluster()
    except NoServerBinaries as exc:
        warnings.warn(f"POSTGRESQL TESTS SKIPPED: {exc}", stacklevel=1)
        pytest.skip(f"POSTGRESQL TESTS SKIPPED: {exc}")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_template_url(pg_cluster: PgCluster) -> str:
    url = pg_cluster.create_database("yibao_test")
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    return path


def _truncate_all(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        tables = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            )
        ]
        # the audit log refuses TRUNCATE; a test database is the one place
        # where the superuser switches its triggers off to start afresh
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "yibao.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_template_url")
        _truncate_all(url)
        yield url


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
    engine = make_engine(settings.effective_database_url)
    yield Services(settings, engine, make_session_factory(engine), clock)
    engine.dispose()


@pytest.fixture
def uow(services: Services):  # type: ignore[no-untyped-def]
    return services.uow()


@pytest.fixture
def demo(services: Services) -> dict[str, Any]:
    from yibao.services import demo as demo_service

    demo_service.load(services.uow())
    return demo_service.fixtures()


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
    from yibao.services import access as access_service
    from yibao.services.context import Channel

    def make(username: str) -> dict[str, str]:
        with services.uow() as work:
            user = access_service.get_staff(work, username=username)
            token, _ = access_service.issue_api_token(
                work, user=user, channel=Channel.CLI, label="test", days=1
            )
            work.commit()
        return {"Authorization": f"Bearer {token}"}

    return make
