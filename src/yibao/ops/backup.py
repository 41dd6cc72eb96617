"""Backups and restore drills.

PostgreSQL is backed up by pgBackRest with WAL archiving; this module only
configures it, runs it and proves what it restores (a drill: the last backup,
or a point in time, restored into a new cluster on a loopback port, checked
with the ledger's and the audit log's own verifiers, then removed). No byte
of a backup is made here.

The embedded SQLite database is copied with SQLite's online backup API,
which takes one consistent snapshot while the server goes on writing (the
database runs in WAL mode: a reader never blocks a writer).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from yibao.clock import Clock
from yibao.config import Settings


class BackupError(Exception):
    """A backup or restore that cannot go on: one line for the operator."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --------------------------------------------------------------------------
# The embedded SQLite database

SQLITE_MAGIC = b"SQLite format 3\x00"


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL; None for any other database."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


@dataclass(frozen=True)
class SqliteFacts:
    """What a file proved to be: a sound yibao database at a revision."""

    path: Path
    revision: str
    current: bool  # at the newest migration of this yibao
    size: int


def _known_revisions() -> tuple[set[str], set[str]]:
    from alembic.script import ScriptDirectory

    from yibao.store import migrate

    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    return {r.revision for r in script.walk_revisions()}, set(script.get_heads())


def inspect_sqlite(path: Path) -> SqliteFacts:
    """The file is a yibao database: an SQLite file that passes the
    integrity check and carries a migration revision this yibao knows."""
    if not path.is_file():
        raise BackupError(f"no such file 文件不存在: {path}")
    with path.open("rb") as f:
        if f.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise BackupError(f"not an SQLite database 不是SQLite数据库: {path}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            status = conn.execute("PRAGMA integrity_check").fetchone()[0]
            if status != "ok":
                raise BackupError(f"damaged database 数据库已损坏: {path}: {status}")
            has_version = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
            if not has_version:
                raise BackupError(
                    f"not a yibao database 不是yibao数据库 (no schema version): {path}"
                )
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(
            f"damaged database or not one 数据库已损坏或无法读取: {path}: {exc}"
        ) from None
    known, heads = _known_revisions()
    revision = row[0] if row else ""
    if revision not in known:
        raise BackupError(
            f"not a yibao database this version knows 数据库版本未知: {path} "
            f"(schema revision {revision or 'none'!r}; a newer yibao made it?)"
        )
    return SqliteFacts(path, revision, revision in heads, path.stat().st_size)


def create_sqlite_backup(source: Path, dest: Path) -> SqliteFacts:
    """Copy the live database into ``dest`` (which must not exist) with the
    online backup API, in one step: one read snapshot, during which the
    server's writers carry on (WAL). The copy is written beside ``dest`` and
    renamed into place once it passed the checks, so a copy cut short never
    looks like a backup."""
    if not source.is_file():
        raise BackupError(f"no database to back up 没有数据库: {source}")
    if dest.exists():
        raise BackupError(f"will not overwrite 不覆盖已有文件: {dest} (choose another name)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    src = sqlite3.connect(source, timeout=30)
    try:
        out = sqlite3.connect(partial)
        try:
            src.backup(out)  # pages=-1: the whole database from one snapshot
            # a backup is one self-contained file, not a WAL database
            out.execute("PRAGMA journal_mode=DELETE")
        finally:
            out.close()
    finally:
        src.close()
    try:
        facts = inspect_sqlite(partial)
    except BackupError:
        partial.unlink(missing_ok=True)
        raise
    partial.chmod(0o600)  # it holds every person's data
    os.replace(partial, dest)
    return SqliteFacts(dest, facts.revision, facts.current, facts.size)


def is_live(path: Path) -> bool:
    """The database file exists and holds data."""
    return path.is_file() and path.stat().st_size > 0


_SIDE_FILES = ("", "-wal", "-shm")


@dataclass(frozen=True)
class SqliteRestored:
    facts: SqliteFacts
    target: Path
    kept_aside: Path | None  # where the replaced database went


def restore_sqlite(
    backup: Path, target: Path, *, force: bool, moment: dt.datetime
) -> SqliteRestored:
    """Put a backup in place of the configured database. A live database
    is replaced only with ``force``, and is then kept aside (with its WAL)
    under a name stamped with ``moment``."""
    facts = inspect_sqlite(backup)
    if backup.resolve() == target.resolve():
        raise BackupError(f"the backup is the database itself 备份即当前数据库: {backup}")
    kept: Path | None = None
    if is_live(target):
        if not force:
            raise BackupError(
                f"refused 拒绝: {target} is a live database 数据库正在使用. Stop yibao serve and "
                "every other yibao process, then run again with --force: the current file is "
                "kept aside, not deleted 原文件会保留"
            )
        kept = target.with_name(f"{target.name}.before-restore-{moment:%Y%m%dT%H%M%S}")
        if kept.exists():
            raise BackupError(f"already there 文件已存在: {kept}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.restoring-{os.getpid()}")
    shutil.copyfile(backup, partial)
    partial.chmod(0o600)
    if kept is not None:
        for suffix in _SIDE_FILES:
            side = target.with_name(target.name + suffix)
            if side.exists():
                os.replace(side, kept.with_name(kept.name + suffix))
    else:
        for suffix in ("-wal", "-shm"):  # a stray WAL would be replayed into the backup
            target.with_name(target.name + suffix).unlink(missing_ok=True)
    os.replace(partial, target)
    return SqliteRestored(
        SqliteFacts(target, facts.revision, facts.current, facts.size), target, kept
    )


# --------------------------------------------------------------------------
# PostgreSQL: pgBackRest

PGBACKREST = "pgbackrest"
STANZA = "yibao"


def _as_postgres() -> list[str]:
    """pgBackRest and the server run as the database's operating-system
    user; root is refused by both, so root runs them as ``postgres``."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise BackupError(
            "run as the PostgreSQL server's user: there is no 'postgres' user"
        ) from None
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--"]
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(path, owner.pw_uid, owner.pw_gid)


def _run(argv: Sequence[str], *, what: str, timeout: float = 3600) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - our own fixed commands
            [*_as_postgres(), *argv],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            cwd="/",
        )
    except FileNotFoundError as exc:
        raise BackupError(f"{what}: {exc.filename} is not installed 未安装") from None
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what}: no answer after {timeout:.0f} s 超时") from None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()[-5:]
        raise BackupError(f"{what} failed 失败 (exit {done.returncode}): " + " | ".join(said))
    return done.stdout


@dataclass(frozen=True)
class BackRest:
    """pgBackRest with one configuration file and one stanza."""

    config: Path
    stanza: str = STANZA
    program: str = PGBACKREST

    def run(self, *args: str, timeout: float = 3600) -> str:
        program = shutil.which(self.program) or self.program
        argv = [program, f"--config={self.config}", f"--stanza={self.stanza}", *args]
        return _run(argv, what=f"pgbackrest {args[0]}", timeout=timeout)

    def archive_command(self) -> str:
        program = shutil.which(self.program) or self.program
        return f"{program} --config={self.config} --stanza={self.stanza} archive-push %p"

    def backup(self, kind: str = "full") -> str:
        """Take a backup (``full``, ``diff`` or ``incr``); its label."""
        if kind not in ("full", "diff", "incr"):
            raise BackupError(f"--type: full, diff or incr, not {kind!r}")
        self.run("stanza-create")  # once; later runs find it valid and say so
        self.run("backup", f"--type={kind}")
        return self.last_backup()

    def last_backup(self) -> str:
        info = json.loads(self.run("info", "--output=json") or "[]")
        backups = [b for s in info if s.get("name") == self.stanza for b in s.get("backup", [])]
        if not backups:
            raise BackupError(f"no backup in stanza {self.stanza!r} 没有备份")
        return str(backups[-1]["label"])


@dataclass(frozen=True)
class ServerFacts:
    """What pgBackRest must know about the server, asked of the server."""

    data_directory: str
    port: int
    socket_dir: str
    user: str
    archive_mode: str
    archive_command: str
    superuser: bool


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def server_facts(url: str) -> ServerFacts:
    import psycopg

    try:
        with psycopg.connect(_libpq_url(url), autocommit=True) as conn:

            def show(name: str) -> str:
                row = conn.execute(f"SHOW {name}").fetchone()  # a fixed name
                return str(row[0]) if row else ""

            return ServerFacts(
                data_directory=show("data_directory"),
                port=int(show("port")),
                socket_dir=show("unix_socket_directories").split(",")[0].strip(),
                user=show("session_authorization"),
                archive_mode=show("archive_mode"),
                archive_command=show("archive_command"),
                superuser=show("is_superuser") == "on",
            )
    except psycopg.errors.InsufficientPrivilege:
        raise BackupError(
            "the database role may not read data_directory: configure pgBackRest yourself and "
            "pass --config, or run with a superuser's YIBAO_DATABASE_URL"
        ) from None
    except psycopg.OperationalError as exc:
        raise BackupError(f"cannot connect to the database 无法连接数据库: {exc}") from None


def configure(url: str, repo: Path, *, stanza: str = STANZA) -> BackRest:
    """Set pgBackRest up for the database at ``url`` with its repository
    under ``repo``: write ``repo/pgbackrest.conf`` (the repository, logs and
    locks under ``repo``, the server's data directory, port and socket as the
    server reports them) and turn WAL archiving to it on. ``archive_command``
    is changed with ALTER SYSTEM and a reload; ``archive_mode`` takes effect
    only at a restart, so when it is off it is set and the operator is told
    to restart. Needs a superuser's URL (as pgBackRest itself does)."""
    import psycopg

    facts = server_facts(url)
    if not facts.superuser:
        raise BackupError(
            "pgBackRest needs a superuser connection: set archive_mode and archive_command "
            "yourself (README, Backups) and pass --config"
        )
    repo.mkdir(parents=True, exist_ok=True)
    repo.chmod(0o750)
    _own(repo)
    for sub in ("repo", "log", "lock", "spool"):
        (repo / sub).mkdir(exist_ok=True)
        (repo / sub).chmod(0o750)
        _own(repo / sub)
    config = repo / "pgbackrest.conf"
    config.write_text(
        "# written by yibao backup: the repository and the server it backs up\n"
        "[global]\n"
        f"repo1-path={repo / 'repo'}\n"
        "repo1-retention-full=2\n"
        f"log-path={repo / 'log'}\n"
        f"lock-path={repo / 'lock'}\n"
        f"spool-path={repo / 'spool'}\n"
        # a checkpoint now rather than at the next scheduled one
        "start-fast=y\n"
        "log-level-console=warn\n"
        "log-level-file=info\n"
        f"\n[{stanza}]\n"
        f"pg1-path={facts.data_directory}\n"
        f"pg1-port={facts.port}\n"
        f"pg1-socket-path={facts.socket_dir}\n"
        f"pg1-user={facts.user}\n"
    )
    _own(config)
    backrest = BackRest(config, stanza)
    wanted = backrest.archive_command()
    with psycopg.connect(_libpq_url(url), autocommit=True) as conn:
        if facts.archive_command != wanted:
            conn.execute(
                f"ALTER SYSTEM SET archive_command = '{wanted.replace(chr(39), chr(39) * 2)}'"
            )
        if facts.archive_mode == "off":
            conn.execute("ALTER SYSTEM SET archive_mode = 'on'")
            raise BackupError(
                "archive_mode was off 未开启WAL归档: it is now set; restart PostgreSQL "
                "(pg_ctlcluster 15 main restart), then run again"
            )
        conn.execute("SELECT pg_reload_conf()")
    _wait_for_setting(url, "archive_command", wanted)
    return backrest


def _wait_for_setting(url: str, name: str, value: str, seconds: float = 10) -> None:
    import psycopg

    deadline = time.monotonic() + seconds
    while True:
        with psycopg.connect(_libpq_url(url), autocommit=True) as conn:
            row = conn.execute(f"SHOW {name}").fetchone()  # a fixed name
        if row and row[0] == value:
            return
        if time.monotonic() > deadline:
            raise BackupError(f"the server did not take {name} 设置未生效")
        time.sleep(0.1)


@dataclass
class LastSettlement:
    setl_id: str
    setl_time: dt.datetime


@dataclass
class DrillReport:
    backup: str  # the label of the backup restored from
    target: str  # "latest" or the point in time
    restore_seconds: float  # from pgbackrest restore until the copy answers, promoted
    port: int
    checked: Checked

    @property
    def ok(self) -> bool:
        return self.checked.ledger_ok and self.checked.audit_ok


def _bindir() -> Path:
    from yibao.testing.pgcluster import NoServerBinaries, find_bindir

    try:
        return find_bindir()
    except NoServerBinaries as exc:
        raise BackupError(str(exc)) from None


def _free_port() -> int:
    from yibao.testing.pgcluster import free_port

    return free_port()


@dataclass
class RestoredCluster:
    """A cluster restored from the repository into a temporary folder, on
    127.0.0.1; ``stop()`` removes it."""

    root: Path
    port: int
    bindir: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with suppress(BackupError):  # removed below either way
                _run(
                    [
                        str(self.bindir / "pg_ctl"),
                        "-D",
                        str(self.data),
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                    ],
                    what="pg_ctl stop",
                    timeout=120,
                )
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self) -> str:
        log = self.root / "log"
        return (
            " | ".join(log.read_text(errors="replace").splitlines()[-12:]) if log.exists() else ""
        )


@contextmanager
def restored(backrest: BackRest, *, target: dt.datetime | None) -> Iterator[RestoredCluster]:
    """The repository's backup restored into a new cluster and started:
    to the end of the archived WAL, or to ``target`` (the first commit after
    it is not replayed). Stopped and removed on the way out, also on error."""
    bindir = _bindir()
    root = Path(tempfile.mkdtemp(prefix="yibao-drill-"))
    cluster = RestoredCluster(root, _free_port(), bindir)
    try:
        root.chmod(0o700)
        _own(root)
        cluster.data.mkdir(mode=0o700)
        _own(cluster.data)
        how = ["--type=default"]
        if target is not None:
            stamp = target.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
            how = ["--type=time", f"--target={stamp}", "--target-action=promote"]
        # the copy must not archive into the repository it came from
        backrest.run("restore", f"--pg1-path={cluster.data}", "--archive-mode=off", *how)
        _fill_missing_config(cluster.data)
        # the server's own settings otherwise: during recovery a copy may not
        # have fewer connections, locks or workers than the server had
        options = (
            f"-c port={cluster.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={root} -c archive_mode=off"
        )
        _run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(cluster.data),
                "-l",
                str(root / "log"),
                "-o",
                options,
                "-w",
                "-t",
                "300",
                "start",
            ],
            what="starting the restored cluster",
            timeout=330,
        )
        yield cluster
    except BackupError as exc:
        tail = cluster.log_tail()
        raise BackupError(exc.message + (f" -- server log: {tail}" if tail else "")) from None
    finally:
        cluster.stop()


def _fill_missing_config(data: Path) -> None:
    """A server whose configuration lives outside its data directory
    (Debian's /etc/postgresql) restores without one: give the copy an empty
    postgresql.conf and password log-ins on loopback."""
    conf, hba = data / "postgresql.conf", data / "pg_hba.conf"
    if not conf.exists():
        conf.write_text("# the drill's copy: everything on the command line\n")
        _own(conf)
    if not hba.exists():
        hba.write_text("host all all 127.0.0.1/32 scram-sha-256\n")
        _own(hba)


def restored_url(url: str, port: int) -> str:
    """The application's URL, pointed at the restored copy."""
    parsed = make_url(url)
    query = {
        k: v for k, v in parsed.query.items() if k not in ("host", "port", "target_session_attrs")
    }
    return parsed.set(host="127.0.0.1", port=port, query=query).render_as_string(
        hide_password=False
    )


def _wait_promoted(url: str, seconds: float = 300) -> None:
    import psycopg

    deadline = time.monotonic() + seconds
    while True:
        try:
            with psycopg.connect(_libpq_url(url), autocommit=True, connect_timeout=5) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if row and not row[0]:
                return
        except psycopg.OperationalError:
            pass
        if time.monotonic() > deadline:
            raise BackupError(
                f"the restored cluster did not finish recovery within {seconds:.0f} s"
            )
        time.sleep(0.2)


@dataclass
class Checked:
    settlements: int
    last_settlement: LastSettlement | None
    ledger_ok: bool
    ledger_summary: str
    audit_ok: bool
    audit_summary: str
    problems: list[str]


def check_database(settings: Settings, clock: Clock) -> Checked:
    """``ledger check`` and ``audit verify`` on the database of ``settings``,
    and its last settlement."""
    from sqlalchemy import func, select

    from yibao.runtime import Services
    from yibao.services.access import audit
    from yibao.services.ledger import ledger
    from yibao.store.models import Settlement

    services = Services.from_settings(settings, clock=clock)
    try:
        checked = ledger.verify(services.uow())
        verified = audit.verify(services.uow()).result
        with services.uow() as uow:
            count = uow.session.execute(select(func.count()).select_from(Settlement)).scalar_one()
            row = uow.session.execute(
                select(Settlement.setl_id, Settlement.setl_time)
                .order_by(Settlement.id.desc())
                .limit(1)
            ).first()
    finally:
        services.close()
    return Checked(
        settlements=int(count),
        last_settlement=LastSettlement(row[0], row[1]) if row else None,
        ledger_ok=checked.ok,
        ledger_summary=f"{checked.accounts} accounts, {checked.entries} entries",
        audit_ok=verified.ok,
        audit_summary=f"{verified.entries} entries",
        problems=[*checked.problems[:20], *verified.problems[:20]],
    )


def drill(
    settings: Settings,
    backrest: BackRest,
    *,
    clock: Clock,
    take_backup: bool = True,
    target: dt.datetime | None = None,
) -> DrillReport:
    """Take a full backup (unless told not to), then restore the last one
    into a new cluster, to the newest archived WAL or to ``target``; run the
    ledger's and the audit log's checks on the copy; remove the copy."""
    url = settings.effective_database_url
    if sqlite_path(url) is not None or not make_url(url).drivername.startswith("postgresql"):
        raise BackupError(
            "the restore drill is PostgreSQL's; for SQLite use yibao backup create/restore"
        )
    label = backrest.backup("full") if take_backup else backrest.last_backup()
    # a WAL switch, waited for until archived: the newest commits reach the repository
    backrest.run("check")
    started = time.perf_counter()
    with restored(backrest, target=target) as cluster:
        copy_url = restored_url(url, cluster.port)
        _wait_promoted(copy_url)
        seconds = time.perf_counter() - started
        on_copy = Settings(**{**settings.model_dump(), "database_url": copy_url})
        checked = check_database(on_copy, clock)
    return DrillReport(
        backup=label,
        target="latest" if target is None else target.isoformat(),
        restore_seconds=seconds,
        port=cluster.port,
        checked=checked,
    )


def scheduled_kind(today: dt.date) -> str:
    """The weekly full backup on Sunday, a differential one on other days."""
    return "full" if today.isoweekday() == 7 else "diff"
