"""The embedded SQLite database's backup (``yibao backup create``, SQLite's
online backup API) taken while settlements are being written, and its
restore (``yibao backup restore``): the copy is a consistent database whose
ledger and audit log verify; a live database is replaced only with
``--force`` and then kept aside; a file that is not a yibao database is
refused by name."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import START, CliRunner
from tests.ops.settlements import Hospital
from yibao.cli import app
from yibao.clock import FixedClock
from yibao.config import Settings
from yibao.ops import backup as ops
from yibao.runtime import Services


@pytest.fixture
def live(
    sqlite_templates: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """The demo city in the embedded database under var/, as ``yibao`` sees it."""
    from yibao import demo as demo_service

    var = tmp_path / "var"
    var.mkdir()
    path = var / "yibao.sqlite3"
    shutil.copy(sqlite_templates["demo"], path)
    monkeypatch.delenv("YIBAO_DATABASE_URL", raising=False)
    monkeypatch.setenv("YIBAO_VAR_DIR", str(var))
    # the key the session's demo template was written with (tests/conftest.py:
    # the default var/ of the run), so that its audit entries verify
    key = Settings(var_dir=Path.cwd() / "var").effective_audit_key.decode()
    monkeypatch.setenv("YIBAO_AUDIT_KEY", key)
    monkeypatch.setenv("YIBAO_ARGON2_PROFILE", "fast")
    settings = Settings()
    services = Services.from_settings(settings, clock=FixedClock(START))
    yield {
        "path": path,
        "settings": settings,
        "services": services,
        "demo": demo_service.fixtures(),
    }
    services.close()


def _count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM settlements").fetchone()[0])
    finally:
        conn.close()


def test_a_copy_taken_during_settlements_restores_and_verifies(
    live: dict[str, Any], tmp_path: Path
) -> None:
    hospital = Hospital(live["services"], live["demo"])
    settled: list[str] = []
    failed: list[BaseException] = []
    stop = threading.Event()
    some = threading.Event()

    def write() -> None:
        try:
            while not stop.is_set():
                settled.append(hospital.settle(30_00))
                if len(settled) >= 3:
                    some.set()
        except BaseException as exc:  # the test reports it below
            failed.append(exc)
            some.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        # polled with sleep, not Event.wait(timeout): under faketime an
        # absolute-deadline wait computed on the faked clock never ends
        deadline = time.monotonic() + 120
        while not some.is_set():
            assert time.monotonic() < deadline, "no settlement was written"
            time.sleep(0.05)
        copy = tmp_path / "backups" / "yibao-20261123.sqlite3"
        made = CliRunner().invoke(app, ["backup", "create", str(copy)])
        during = len(settled)
        while len(settled) < during + 2 and not failed:  # writing went on after the copy
            time.sleep(0.05)
    finally:
        stop.set()
        writer.join(120)
    assert not failed, failed
    assert made.exit_code == 0, made.output
    assert f"-> {copy}" in made.output and "integrity ok" in made.output
    in_copy = _count(copy)
    assert 3 <= in_copy <= during + 1
    assert _count(live["path"]) == len(settled) > in_copy

    live["services"].close()  # the server stopped, as the refusal asks
    refused = CliRunner().invoke(app, ["backup", "restore", str(copy)])
    assert refused.exit_code == 1
    assert "live database" in refused.output and "--force" in refused.output
    assert _count(live["path"]) == len(settled)  # untouched

    done = CliRunner().invoke(app, ["backup", "restore", str(copy), "--force"])
    assert done.exit_code == 0, done.output
    aside = live["path"].with_name("yibao.sqlite3.before-restore-20261123T020000")
    assert f"kept as 原数据库保留为 {aside}" in done.output
    assert _count(aside) == len(settled)
    assert _count(live["path"]) == in_copy

    checked = ops.check_database(live["settings"], FixedClock(START))
    assert checked.ledger_ok and checked.audit_ok, checked.problems
    assert checked.settlements == in_copy
    assert checked.last_settlement is not None
    assert checked.last_settlement.setl_id == settled[in_copy - 1]
    ledger = CliRunner().invoke(app, ["ledger", "check"])
    assert ledger.exit_code == 0 and "ledger balanced" in ledger.output
    audit = CliRunner().invoke(app, ["audit", "verify"])
    assert audit.exit_code == 0 and "audit log intact" in audit.output


def test_a_file_that_is_not_a_yibao_database_is_refused_by_name(
    live: dict[str, Any], tmp_path: Path
) -> None:
    text = tmp_path / "notes.bak"
    text.write_text("not a database")
    bare = tmp_path / "other.sqlite3"
    sqlite3.connect(bare).execute("CREATE TABLE t (x)").connection.commit()
    half = tmp_path / "half.sqlite3"
    half.write_bytes(live["path"].read_bytes()[:8192])
    for file, why in (
        (text, "not an SQLite database"),
        (bare, "not a yibao database"),
        (half, "damaged database"),
        (tmp_path / "absent.sqlite3", "no such file"),
    ):
        out = CliRunner().invoke(app, ["backup", "restore", str(file), "--force"])
        assert out.exit_code == 1, (file, out.output)
        assert str(file) in out.output and why in out.output
        assert "Traceback" not in out.output
    assert _count(live["path"]) == 0  # nothing replaced


def test_a_restore_where_there_is_no_database_needs_no_force(
    live: dict[str, Any], tmp_path: Path
) -> None:
    copy = tmp_path / "copy.sqlite3"
    assert CliRunner().invoke(app, ["backup", "create", str(copy)]).exit_code == 0
    again = CliRunner().invoke(app, ["backup", "create", str(copy)])
    assert (
        again.exit_code == 1 and "will not overwrite" in again.output and str(copy) in again.output
    )
    live["services"].close()
    for suffix in ("", "-wal", "-shm"):
        live["path"].with_name(live["path"].name + suffix).unlink(missing_ok=True)
    done = CliRunner().invoke(app, ["backup", "restore", str(copy)])
    assert done.exit_code == 0, done.output
    assert "kept as" not in done.output
    assert ops.inspect_sqlite(live["path"]).current


def test_backup_create_is_for_the_embedded_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("YIBAO_DATABASE_URL", "postgresql+psycopg://yibao@127.0.0.1:1/yibao")
    out = CliRunner().invoke(app, ["backup", "create", str(tmp_path / "x.sqlite3")])
    assert out.exit_code == 1 and "pgBackRest" in out.output


def test_a_scheduled_copy_into_a_directory_is_named_by_its_time(
    live: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    out = CliRunner().invoke(app, ["backup", "create", str(folder)])
    assert out.exit_code == 0, out.output
    made = folder / "yibao-20261123T020000Z.sqlite3"
    assert [p.name for p in folder.iterdir()] == [made.name]
    assert ops.inspect_sqlite(made).revision
    assert made.stat().st_mode & 0o077 == 0  # every person's data: its owner's alone
