"""Backups: the embedded SQLite database copied and restored, PostgreSQL's
backups by pgBackRest and the restore drill (``yibao.ops.backup``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from yibao.cli.common import app, clock, fail
from yibao.config import get_settings
from yibao.ops import backup as ops

backup_app = typer.Typer(help="backups and restore drills 备份与恢复演练", no_args_is_help=True)
app.add_typer(backup_app, name="backup")

REPO_HELP = (
    "pgBackRest's folder (repository, logs, its configuration file): the drill writes "
    "pgbackrest.conf there and turns WAL archiving to it on (needs a superuser's URL)"
)
CONFIG_HELP = "an existing pgBackRest configuration (archiving already on); instead of --repo"
Repo = Annotated[Path | None, typer.Option("--repo", help=REPO_HELP)]
Config = Annotated[Path | None, typer.Option("--config", help=CONFIG_HELP)]
Stanza = Annotated[str, typer.Option(help="pgBackRest stanza")]


def _sqlite_database() -> Path:
    path = ops.sqlite_path(get_settings().effective_database_url)
    if path is None:
        fail(
            "the database is not the embedded SQLite one 不是内置SQLite数据库: back PostgreSQL up "
            "with pgBackRest (yibao backup pg-full, yibao backup drill)"
        )
    return path


def _backrest(repo: Path | None, config: Path | None, stanza: str) -> ops.BackRest:
    if config is not None:
        if not config.is_file():
            fail(f"--config: no such file 文件不存在: {config}")
        return ops.BackRest(config, stanza)
    if repo is None:
        fail("give --repo DIR (set up here) or --config FILE (pgBackRest already set up)")
    url = get_settings().effective_database_url
    if ops.sqlite_path(url) is not None:
        fail("pgBackRest backs up PostgreSQL; for the embedded SQLite use yibao backup create")
    try:
        return ops.configure(url, repo.resolve(), stanza=stanza)
    except ops.BackupError as exc:
        fail(exc.message)


@backup_app.command("create")
def create(
    file: Annotated[
        Path,
        typer.Argument(
            help="the backup file to write (must not exist); a directory: a dated file in it"
        ),
    ],
) -> None:
    """Copy the embedded SQLite database into FILE with SQLite's online
    backup API: safe while yibao serves. 在线备份内置数据库。"""
    source = _sqlite_database()
    if file.is_dir():
        # the schedule's copies sort by the moment they were taken
        file = file / f"yibao-{clock().now().astimezone(dt.UTC):%Y%m%dT%H%M%SZ}.sqlite3"
    try:
        made = ops.create_sqlite_backup(source, file)
    except ops.BackupError as exc:
        fail(exc.message)
    typer.echo(
        f"backed up 已备份 {source} -> {made.path}: {made.size} bytes, "
        f"schema revision {made.revision}, integrity ok"
    )


@backup_app.command("restore")
def restore(
    file: Annotated[Path, typer.Argument(help="a backup made by yibao backup create")],
    force: Annotated[
        bool,
        typer.Option(help="replace a live database (stop yibao first); the old file is kept aside"),
    ] = False,
) -> None:
    """Put FILE in place of the embedded SQLite database, after checking it
    is a sound yibao database. 从备份恢复内置数据库。"""
    target = _sqlite_database()
    moment = clock().now().astimezone(dt.UTC)
    try:
        done = ops.restore_sqlite(file, target, force=force, moment=moment)
    except ops.BackupError as exc:
        fail(exc.message)
    typer.echo(f"restored 已恢复 {file} -> {done.target} (schema revision {done.facts.revision})")
    if done.kept_aside is not None:
        typer.echo(f"the replaced database is kept as 原数据库保留为 {done.kept_aside}")
    if not done.facts.current:
        typer.echo("the backup's schema is older: run yibao db upgrade 请升级数据库结构")


@backup_app.command("pg-full")
def pg_full(
    repo: Repo = None,
    config: Config = None,
    stanza: Stanza = ops.STANZA,
    kind: Annotated[
        str,
        typer.Option("--type", help="full, diff or incr; 'scheduled': full on Sunday, else diff"),
    ] = "full",
) -> None:
    """Take a pgBackRest backup of the PostgreSQL database (the backup timer
    runs this). pgBackRest全量/差异备份。"""
    backrest = _backrest(repo, config, stanza)
    if kind == "scheduled":
        kind = ops.scheduled_kind(clock().today())
    try:
        label = backrest.backup(kind)
    except ops.BackupError as exc:
        fail(exc.message)
    typer.echo(f"{kind} backup taken 备份完成: {label}")


def _target(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        fail(f"--target: not a time (2026-11-23T10:15:00+08:00): {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=clock().tz)  # a time without zone is China's
    return moment


@backup_app.command("drill")
def drill(
    repo: Repo = None,
    config: Config = None,
    stanza: Stanza = ops.STANZA,
    backup: Annotated[
        bool, typer.Option(help="take a full backup first; --no-backup restores the last one")
    ] = True,
    target: Annotated[
        str | None,
        typer.Option(
            help="restore to this time (ISO 8601; China time without a zone); default the latest"
        ),
    ] = None,
) -> None:
    """Restore the last pgBackRest backup into a new cluster on a loopback
    port, run ledger check and audit verify on it, print the restore time and
    the last settlement present, then remove it. 恢复演练。"""
    settings = get_settings()
    moment = _target(target)  # a wrong time is told before anything is set up
    backrest = _backrest(repo, config, stanza)
    try:
        report = ops.drill(settings, backrest, clock=clock(), take_backup=backup, target=moment)
    except ops.BackupError as exc:
        fail(exc.message)
    checked = report.checked
    typer.echo(f"backup 备份: {report.backup}, restored to 恢复至: {report.target}")
    typer.echo(
        f"restore time 恢复用时: {report.restore_seconds:.1f} s (new cluster on 127.0.0.1:{report.port})"
    )
    last = checked.last_settlement
    if last is None:
        typer.echo("last settlement 最后一笔结算: none 无")
    else:
        typer.echo(
            f"last settlement 最后一笔结算: {last.setl_id} at "
            f"{clock().local(last.setl_time):%Y-%m-%d %H:%M:%S} ({checked.settlements} settlements)"
        )
    verdict = {True: "ok 通过", False: "FAILED 未通过"}
    typer.echo(f"ledger check 账务核对: {verdict[checked.ledger_ok]} ({checked.ledger_summary})")
    typer.echo(f"audit verify 审计核验: {verdict[checked.audit_ok]} ({checked.audit_summary})")
    typer.echo("the restored cluster is stopped and removed 演练集群已删除")
    if not report.ok:
        for problem in checked.problems:
            typer.secho(problem, fg=typer.colors.RED, err=True)
        fail("restore drill FAILED 恢复演练未通过")
