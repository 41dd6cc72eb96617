"""The PostgreSQL restore drill (``yibao backup drill``): pgBackRest with
WAL archiving on a throw-away cluster, a full backup, then the last backup
restored into a new cluster on a loopback port, where ``ledger check`` and
``audit verify`` pass and the last settlement is found; restored to a point
in time before the last settlement, the copy does not have it. Every cluster
and folder is removed, also when a test fails."""

from __future__ import annotations

import datetime as dt
import glob
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import START, CliRunner
from tests.ops.settlements import Hospital
from yibao.cli import app
from yibao.clock import FixedClock
from yibao.config import Settings
from yibao.ops import backup as ops
from yibao.runtime import Services
from yibao.store import migrate
from yibao.testing.pgcluster import NoServerBinaries, PgCluster

AUDIT_KEY = "drill-audit-key-0123456789-abcdefghijklmnop"


@pytest.fixture(scope="module")
def archived() -> Iterator[dict[str, Any]]:
    """A cluster whose WAL goes to a pgBackRest repository, with the demo
    city in database ``yibao``: what an operator has after following the
    README (archive_mode on from the start; the drill sets archive_command)."""
    if shutil.which(ops.PGBACKREST) is None:
        pytest.skip("PGBACKREST DRILL SKIPPED: pgbackrest is not installed (make system-deps)")
    try:
        cluster = PgCluster(
            settings={"archive_mode": "on", "archive_command": "", "full_page_writes": "on"}
        )
    except NoServerBinaries as exc:
        pytest.skip(f"PGBACKREST DRILL SKIPPED: {exc}")
    repo = Path(tempfile.mkdtemp(prefix="yibao-backrest-"))
    var = Path(tempfile.mkdtemp(prefix="yibao-drill-var-"))
    try:
        cluster.start()
        url = cluster.create_database("yibao")
        migrate.upgrade(url)
        settings = Settings(
            database_url=url,
            var_dir=var,
            secret_key="test",
            audit_key=AUDIT_KEY,
            argon2_profile="fast",
        )
        services = Services.from_settings(settings, clock=FixedClock(START))
        try:
            from yibao import demo as demo_service

            demo_service.load(services)
            backrest = ops.configure(url, repo)
            yield {
                "url": url,
                "settings": settings,
                "services": services,
                "backrest": backrest,
                "demo": demo_service.fixtures(),
                "repo": repo,
            }
        finally:
            services.close()
    finally:
        cluster.stop()
        shutil.rmtree(repo, ignore_errors=True)
        shutil.rmtree(var, ignore_errors=True)


def _drill_folders() -> set[str]:
    return set(glob.glob(f"{tempfile.gettempdir()}/yibao-drill-*")) - set(
        glob.glob(f"{tempfile.gettempdir()}/yibao-drill-var-*")
    )


def test_the_drill_restores_the_last_backup_and_its_checks_pass(
    archived: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    hospital = Hospital(archived["services"], archived["demo"])
    before = [hospital.settle(120_00) for _ in range(3)]
    folders = _drill_folders()
    monkeypatch.setenv("YIBAO_DATABASE_URL", archived["url"])
    monkeypatch.setenv("YIBAO_VAR_DIR", str(archived["settings"].var_dir))
    monkeypatch.setenv("YIBAO_AUDIT_KEY", AUDIT_KEY)
    monkeypatch.setenv("YIBAO_ARGON2_PROFILE", "fast")

    # the backup is taken by the drill; one more settlement after it comes from the WAL
    runner = CliRunner()
    first = runner.invoke(
        app, ["backup", "drill", "--config", str(archived["backrest"].config), "--no-backup"]
    )
    assert first.exit_code == 1 and "no backup" in first.output
    label = archived["backrest"].backup("full")
    after = hospital.settle(80_00)
    done = runner.invoke(
        app, ["backup", "drill", "--config", str(archived["backrest"].config), "--no-backup"]
    )
    print(done.output)  # the README shows a real run
    assert done.exit_code == 0, done.output
    assert f"backup 备份: {label}, restored to 恢复至: latest" in done.output
    assert f"last settlement 最后一笔结算: {after} at 2026-11-23 10:00:00" in done.output
    assert "ledger check 账务核对: ok" in done.output
    assert "audit verify 审计核验: ok" in done.output
    assert "restore time 恢复用时: " in done.output
    assert len(before) == 3
    assert _drill_folders() == folders  # the restored cluster is gone


def test_a_full_drill_takes_its_own_backup(archived: dict[str, Any]) -> None:
    hospital = Hospital(archived["services"], archived["demo"], person=1)
    last = hospital.settle(50_00)
    report = ops.drill(archived["settings"], archived["backrest"], clock=FixedClock(START))
    assert report.ok, report.checked.problems
    assert report.checked.last_settlement is not None
    assert report.checked.last_settlement.setl_id == last
    assert report.backup == archived["backrest"].last_backup()


def test_a_point_in_time_before_the_last_settlement_restores_without_it(
    archived: dict[str, Any],
) -> None:
    backrest: ops.BackRest = archived["backrest"]
    backrest.backup("full")
    hospital = Hospital(archived["services"], archived["demo"])
    kept = hospital.settle(60_00)
    with psycopg.connect(archived["url"].replace("postgresql+psycopg", "postgresql")) as conn:
        row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    target = row[0]
    time.sleep(0.2)  # the next commit is clearly after the target
    lost = hospital.settle(70_00)
    report = ops.drill(
        archived["settings"], backrest, clock=FixedClock(START), take_backup=False, target=target
    )
    assert report.ok, report.checked.problems
    assert report.checked.last_settlement is not None
    assert report.checked.last_settlement.setl_id == kept != lost
    latest = ops.drill(archived["settings"], backrest, clock=FixedClock(START), take_backup=False)
    assert latest.checked.last_settlement is not None
    assert latest.checked.last_settlement.setl_id == lost
    assert latest.checked.settlements == report.checked.settlements + 1


def test_a_failed_restore_leaves_nothing_behind(archived: dict[str, Any]) -> None:
    folders = _drill_folders()
    wrong = ops.BackRest(archived["backrest"].config, "no-such-stanza")
    with pytest.raises(ops.BackupError, match="restore failed"), ops.restored(wrong, target=None):
        pass
    assert _drill_folders() == folders


def test_the_drill_refuses_sqlite(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'y.sqlite3'}", var_dir=tmp_path)
    with pytest.raises(ops.BackupError, match="PostgreSQL"):
        ops.drill(settings, ops.BackRest(tmp_path / "none.conf"), clock=FixedClock(START))


def test_a_target_that_is_not_a_time_is_refused_first(tmp_path: Path) -> None:
    out = CliRunner().invoke(
        app, ["backup", "drill", "--config", str(tmp_path / "absent.conf"), "--target", "yesterday"]
    )
    assert out.exit_code == 1
    assert "--target: not a time" in out.output and "'yesterday'" in out.output


def test_the_drill_needs_a_repository_or_a_configuration(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["backup", "drill", "--config", str(tmp_path / "absent.conf")])
    assert (
        out.exit_code == 1 and f"no such file 文件不存在: {tmp_path / 'absent.conf'}" in out.output
    )
    out = CliRunner().invoke(app, ["backup", "drill"])
    assert out.exit_code == 1 and "--repo DIR" in out.output and "--config FILE" in out.output


def test_the_schedule_takes_a_full_backup_on_sunday_and_a_differential_one_otherwise() -> None:
    week = [START.date() + dt.timedelta(days=n) for n in range(7)]  # Monday 2026-11-23 on
    assert [ops.scheduled_kind(day) for day in week] == ["diff"] * 6 + ["full"]
