"""/healthz (the process is alive) and /readyz (the database answers and
its schema is the code's): a load balancer tells them apart."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient

from tests.helpers import START
from yibao.app import create_app
from yibao.clock import FixedClock
from yibao.config import Settings
from yibao.store import migrate


def _client(app: Any) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


def test_ready_on_a_migrated_database(client: Any) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["schema"] == migrate.heads()
    assert client.get("/healthz").json()["status"] == "ok"


def _head_and_previous() -> tuple[str, str]:
    """The newest migration and the one it revises, as the scripts chain them
    (revision ids need not be consecutive numbers)."""
    (head,) = migrate.heads()
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    previous = script.get_revision(head).down_revision
    assert isinstance(previous, str)
    return head, previous


def test_not_ready_while_the_database_is_a_migration_behind(
    client: Any, db_url: str, caplog: Any
) -> None:
    head, previous = _head_and_previous()
    command.stamp(migrate.alembic_config(db_url), previous, purge=True)
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["status"] == "not ready"
    assert previous in r.json()["reason"] and head in r.json()["reason"]
    assert client.get("/healthz").status_code == 200
    # upgraded, it is ready again without a restart
    command.stamp(migrate.alembic_config(db_url), head, purge=True)
    assert client.get("/readyz").status_code == 200


def test_not_ready_on_a_database_migrated_to_the_revision_before(tmp_path: Path) -> None:
    """A database really built up to the previous migration, not only stamped."""
    _, previous = _head_and_previous()
    url = f"sqlite:///{tmp_path}/behind.sqlite3"
    migrate.upgrade(url, previous)
    settings = Settings(database_url=url, var_dir=tmp_path / "var", secret_key="t")
    app = create_app(settings, FixedClock(START))
    with _client(app) as c:
        r = c.get("/readyz")
        alive = c.get("/healthz")
    app.state.services.engine.dispose()
    assert r.status_code == 503 and "yibao db upgrade" in r.json()["reason"]
    assert alive.status_code == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_not_ready_when_the_postgresql_server_is_down(tmp_path: Path, caplog: Any) -> None:
    port = _free_port()  # nothing listens there
    url = f"postgresql+psycopg://yibao:pa55-w0rd-x@127.0.0.1:{port}/yibao"
    settings = Settings(database_url=url, var_dir=tmp_path / "var", secret_key="t")
    app = create_app(settings, FixedClock(START))
    with _client(app) as c:
        r = c.get("/readyz")
        alive = c.get("/healthz")
    app.state.services.engine.dispose()
    assert r.status_code == 503 and r.json()["reason"] == "database unreachable"
    assert alive.status_code == 200
    assert str(port) not in r.text and "pa55-w0rd-x" not in r.text
    said = [rec.getMessage() for rec in caplog.records if rec.name == "yibao"]
    assert len(said) == 1 and said[0].startswith("readyz: cannot connect to the database")
    assert "pa55-w0rd-x" not in said[0]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word: a database
    server that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()  # the abandoned check's connection attempt ends here
    listener.close()


def test_not_ready_when_the_database_does_not_answer_in_time(
    tmp_path: Path, silent_server: int
) -> None:
    url = f"postgresql+psycopg://yibao@127.0.0.1:{silent_server}/yibao"
    settings = Settings(
        database_url=url, var_dir=tmp_path / "var", secret_key="t", readyz_timeout_seconds=0.5
    )
    app = create_app(settings, FixedClock(START))
    with _client(app) as c:
        r = c.get("/readyz")
        alive = c.get("/healthz")
    assert r.status_code == 503
    assert r.json()["reason"] == "database did not answer within 0.5 s"
    assert alive.status_code == 200
