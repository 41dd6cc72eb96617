"""A throw-away PostgreSQL cluster on 127.0.0.1, for tests and benchmarks.

It is started from the server binaries on the machine (``pg_config
--bindir``, else Debian's ``/usr/lib/postgresql/<version>/bin``). initdb and
postgres refuse to run as root, so as root the cluster runs as the
unprivileged ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


class NoServerBinaries(RuntimeError):
    """No initdb/pg_ctl on this machine."""


def find_bindir() -> Path:
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run(  # noqa: S603 - a fixed program from PATH
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))

    def version(path: str) -> int:
        try:
            return int(Path(path).parent.name)
        except ValueError:
            return 0

    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    candidates.extend(Path(p) for p in debian)
    for path in candidates:
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    raise NoServerBinaries(
        "no PostgreSQL server binaries (initdb, pg_ctl) found via pg_config --bindir "
        "or /usr/lib/postgresql/*/bin"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgCluster:
    """``start()`` it, use ``url(dbname)``, ``stop()`` it; the folder is removed."""

    user: str = "yibao"
    durable: bool = False  # fsync and synchronous commit; on for benchmarks
    settings: dict[str, str] = field(default_factory=dict)
    bindir: Path = field(default_factory=find_bindir)
    port: int = 0
    root: Path | None = None
    _as_user: list[str] = field(default_factory=list)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own fixed commands
            [*self._as_user, *args], capture_output=True, text=True, check=check, cwd="/"
        )

    def start(self) -> PgCluster:
        self.root = Path(tempfile.mkdtemp(prefix="yibao-pg-"))
        data = self.root / "data"
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.root.chmod(0o700)
            runuser = shutil.which("runuser")
            self._as_user = (
                [runuser, "-u", "postgres", "--"]
                if runuser
                else [
                    "setpriv",
                    f"--reuid={owner.pw_uid}",
                    f"--regid={owner.pw_gid}",
                    "--init-groups",
                ]
            )
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            self.user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-instructions",
        )
        self.port = free_port()
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "max_connections": "200",
            "shared_buffers": "256MB",
        }
        if not self.durable:
            options.update({"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"})
        options.update(self.settings)
        conf = "\n".join(f"{k} = '{v}'" for k, v in options.items())
        self._run("sh", "-c", f"cat >> {data}/postgresql.conf <<'EOF'\n{conf}\nEOF")
        result = self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
            check=False,
        )
        if result.returncode != 0:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr}\n{log}")
        return self

    def url(self, dbname: str = "postgres", driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={dbname}"

    def create_database(self, name: str) -> str:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.dsn(), autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        return self.url(name)

    def bin(self, name: str) -> str:
        return str(self.bindir / name)

    def stop(self) -> None:
        if self.root is None:
            return
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.root / "data"),
            "-m",
            "immediate",
            "-w",
            "stop",
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
