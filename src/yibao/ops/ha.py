"""A pg_auto_failover cluster on one machine: a monitor, a primary and a
secondary in synchronous replication, on loopback ports under one folder.

It is what ``yibao ha demo`` serves on and what the failover test
(``tests/ha/``) stops the primary of. The replication, the health checks and
the promotion are pg_auto_failover's (``pg_autoctl``); this module only
starts the three ``pg_autoctl`` services, waits for their states, creates the
yibao role and database, and stops everything again.

With two data nodes pg_auto_failover keeps ``number_sync_standbys`` at 0: the
primary commits only once the secondary has the transaction
(``synchronous_standby_names`` names it, ``synchronous_commit = on``), and
when the secondary is lost the primary goes on alone (``wait_primary``)
rather than stop taking writes. Both nodes keep ``--candidate-priority 50``
and ``--replication-quorum true``, so either may be promoted.

pg_autoctl, initdb and postgres refuse to run as root: as root the services
run as the ``postgres`` user, as ``tests/conftest.py`` runs initdb.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yibao.testing.pgcluster import find_bindir, free_port

DBNAME = "yibao"
ROLE = "yibao"

# The monitor's health checks, quicker than pg_auto_failover's defaults (a
# check every 5 s, unhealthy after 20 s) so that a lost primary is replaced
# within seconds on one machine, where no network partition can mislead it.
MONITOR_SETTINGS = {
    "pgautofailover.health_check_period": "1000",
    "pgautofailover.health_check_timeout": "1000",
    "pgautofailover.health_check_max_retries": "1",
    "pgautofailover.health_check_retry_delay": "500",
    "pgautofailover.node_considered_unhealthy_timeout": "4000",
    # how long the monitor gives a lost primary to demote itself before the
    # secondary is promoted (30 s by default); a stopped server has nothing
    # left to demote
    "pgautofailover.primary_demote_timeout": "3000",
}

# pg_auto_failover sizes shared_buffers from the machine's memory; a demo
# and a test on a shared machine need little.
SMALL = {
    "shared_buffers": "128MB",
    "effective_cache_size": "512MB",
    "maintenance_work_mem": "64MB",
    "work_mem": "8MB",
    "max_connections": "200",
}


class HaUnavailable(RuntimeError):
    """pg_autoctl or the pgautofailover extension is not on this machine."""


def available() -> str | None:
    """None when a cluster can be started here, else why not."""
    if shutil.which("pg_autoctl") is None:
        return "pg_autoctl is not on the PATH (Debian package postgresql-15-auto-failover)"
    try:
        bindir = find_bindir()
    except RuntimeError as exc:
        return str(exc)
    pg_config = bindir / "pg_config"
    libdir = ""
    if pg_config.exists():
        libdir = subprocess.run(  # noqa: S603 - the server's own pg_config
            [str(pg_config), "--pkglibdir"], capture_output=True, text=True, check=False
        ).stdout.strip()
    candidates = [Path(libdir)] if libdir else []
    candidates += [bindir.parent / "lib"]
    if not any((d / "pgautofailover.so").exists() for d in candidates):
        return f"the pgautofailover extension is not installed for the server in {bindir}"
    return None


@dataclass
class Node:
    name: str
    pgdata: Path
    port: int
    process: subprocess.Popen[bytes] | None = None


@dataclass
class HaCluster:
    """``start()`` it, connect with ``url()``, ``stop()`` it (also on failure).

    ``root`` is the folder everything lives in (a fresh temporary one when
    not given; it is removed on ``stop()`` only when it was made here)."""

    root: Path | None = None
    durable: bool = False  # fsync; off for tests, whose machine does not crash
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    bindir: Path = field(default_factory=find_bindir)
    monitor: Node | None = None
    nodes: list[Node] = field(default_factory=list)
    _made_root: bool = False
    _prefix: list[str] = field(default_factory=list)
    _env: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------ start

    def start(self, timeout: float = 120) -> HaCluster:
        why = available()
        if why:
            raise HaUnavailable(why)
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="yibao-ha-"))
            self._made_root = True
        self.root.mkdir(parents=True, exist_ok=True)
        self._prepare_user()
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare_user(self) -> None:
        assert self.root is not None
        env = {
            "PATH": f"{self.bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "LANG": "C.UTF-8",
            # pg_autoctl keeps its configuration, state and pid files under
            # these: all in the cluster's folder, nothing in a home directory
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_DATA_HOME": str(self.root / "state"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "HOME": str(self.root),
        }
        self._env = env
        for sub in ("config", "state", "run"):
            (self.root / sub).mkdir(exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in [self.root, *self.root.iterdir()]:
                os.chown(path, owner.pw_uid, owner.pw_gid)
            self.root.chmod(0o700)
            # setpriv execs pg_autoctl in place: the process we hold is the service
            self._prefix = [
                "setpriv",
                f"--reuid={owner.pw_uid}",
                f"--regid={owner.pw_gid}",
                "--init-groups",
            ]

    def _command(self, *args: str) -> list[str]:
        return [*self._prefix, *args]

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(  # noqa: S603 - our own fixed commands
            self._command(*args),
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
            env=self._env,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:3])} failed: {result.stderr[-2000:]}")
        return result

    def _spawn(self, node: Node, *args: str) -> None:
        assert self.root is not None
        log = open(self.root / f"{node.name}.log", "ab")  # noqa: SIM115 - the child keeps it
        node.process = subprocess.Popen(  # noqa: S603 - our own fixed commands
            self._command(*args),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd="/",
            env=self._env,
            start_new_session=True,  # its own group: stopped whole in stop()
        )
        log.close()

    def _initdb(self, pgdata: Path, settings: dict[str, str]) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(pgdata),
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-instructions",
        )
        # postgresql.auto.conf is read after pg_auto_failover's own include,
        # and pg_basebackup copies it to the secondary
        conf = "\n".join(f"{k} = '{v}'" for k, v in settings.items())
        self._run("sh", "-c", f"cat >> {pgdata}/postgresql.auto.conf <<'EOF'\n{conf}\nEOF")

    def _node_settings(self) -> dict[str, str]:
        out = dict(SMALL)
        if not self.durable:
            out["fsync"] = "off"
        return out

    def _start(self, timeout: float) -> None:
        assert self.root is not None
        pg_ctl = str(self.bindir / "pg_ctl")
        self.monitor = Node("monitor", self.root / "monitor", free_port())
        self._initdb(self.monitor.pgdata, {**SMALL, **MONITOR_SETTINGS})
        self._spawn(
            self.monitor,
            "pg_autoctl",
            "create",
            "monitor",
            "--pgctl",
            pg_ctl,
            "--pgdata",
            str(self.monitor.pgdata),
            "--pgport",
            str(self.monitor.port),
            "--hostname",
            "127.0.0.1",
            "--listen",
            "127.0.0.1",
            "--auth",
            "trust",
            "--no-ssl",
            "--run",
        )
        deadline = time.monotonic() + timeout
        self._wait(lambda: self._monitor_answers(), deadline, "the monitor to start")
        first = Node("node_1", self.root / "node_1", free_port())
        self._initdb(first.pgdata, self._node_settings())
        self.nodes = [first]
        self._spawn_node(first)
        self._wait(lambda: self._states().get(first.port) == "single", deadline, "the primary")
        self._create_role()
        second = Node("node_2", self.root / "node_2", free_port())
        self.nodes.append(second)
        self._spawn_node(second)

        def caught_up() -> bool:
            # pg_basebackup (which pg_autoctl runs without --checkpoint=fast)
            # waits for a spread checkpoint, about a minute and a half on an
            # idle primary: an explicit CHECKPOINT makes it immediate
            self.superuser(first, "CHECKPOINT")
            return self.healthy()

        self._wait(caught_up, deadline, "the secondary to catch up")

    def _spawn_node(self, node: Node) -> None:
        self._spawn(
            node,
            "pg_autoctl",
            "create",
            "postgres",
            "--pgctl",
            str(self.bindir / "pg_ctl"),
            "--pgdata",
            str(node.pgdata),
            "--pgport",
            str(node.port),
            "--hostname",
            "127.0.0.1",
            "--listen",
            "127.0.0.1",
            "--name",
            node.name,
            "--dbname",
            DBNAME,
            "--monitor",
            self.monitor_uri(),
            "--auth",
            "trust",
            "--no-ssl",
            "--candidate-priority",
            "50",
            "--replication-quorum",
            "true",
            "--run",
        )

    def _wait(self, ready: Any, deadline: float, what: str) -> None:
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except Exception:  # noqa: S110 - not up yet: ask again
                pass
            for node in [self.monitor, *self.nodes]:
                if node and node.process and node.process.poll() is not None:
                    raise RuntimeError(f"pg_autoctl {node.name} exited: {self.log_tail(node)}")
            time.sleep(0.3)
        raise TimeoutError(f"timed out waiting for {what}: {self.describe()}")

    def log_tail(self, node: Node, lines: int = 30) -> str:
        assert self.root is not None
        path = self.root / f"{node.name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # ------------------------------------------------------------ state

    def monitor_uri(self) -> str:
        assert self.monitor is not None
        return (
            f"postgres://autoctl_node@127.0.0.1:{self.monitor.port}/pg_auto_failover"
            "?sslmode=disable"
        )

    def _monitor_answers(self) -> bool:
        import psycopg

        with psycopg.connect(self.monitor_uri(), connect_timeout=2) as conn:
            conn.execute("SELECT 1 FROM pgautofailover.formation")
        return True

    def _states(self) -> dict[int, str]:
        """Each data node's reported state by its port, as the monitor has it."""
        import psycopg

        with psycopg.connect(self.monitor_uri(), connect_timeout=2) as conn:
            rows = conn.execute(
                "SELECT nodeport, reportedstate::text, goalstate::text FROM pgautofailover.node"
            ).fetchall()
        return {int(port): str(reported) for port, reported, goal in rows if reported == goal}

    def states(self) -> dict[str, str]:
        """``{node name: state}``; a node between states is ``"…"``."""
        try:
            by_port = self._states()
        except Exception:
            by_port = {}
        return {n.name: by_port.get(n.port, "…") for n in self.nodes}

    def healthy(self) -> bool:
        """One primary and one secondary, settled."""
        return sorted(self.states().values()) == ["primary", "secondary"]

    def primary(self) -> Node:
        """The node that takes writes now (``primary`` or ``wait_primary``)."""
        states = self.states()
        for node in self.nodes:
            if states.get(node.name) in ("primary", "wait_primary", "single"):
                return node
        raise LookupError(f"no primary now: {states}")

    def describe(self) -> str:
        return json.dumps(self.states())

    # ------------------------------------------------------------ yibao

    def superuser(self, node: Node, *statements: str) -> None:
        """Statements run as the cluster's superuser, on one node."""
        import psycopg

        dsn = f"host=127.0.0.1 port={node.port} user=postgres dbname={DBNAME} connect_timeout=5"
        with psycopg.connect(dsn, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement.encode())

    def _create_role(self) -> None:
        self.superuser(
            self.nodes[0],
            f"CREATE ROLE {ROLE} LOGIN PASSWORD '{self.password}'",
            f"ALTER DATABASE {DBNAME} OWNER TO {ROLE}",
            f"ALTER SCHEMA public OWNER TO {ROLE}",
        )

    def url(self, driver: str = "psycopg") -> str:
        """The multi-host URL yibao is given: every data node, and libpq (or
        asyncpg) picks the one that takes writes."""
        hosts = "&".join(f"host=127.0.0.1:{n.port}" for n in self.nodes)
        return (
            f"postgresql+{driver}://{ROLE}:{self.password}@/{DBNAME}"
            f"?{hosts}&target_session_attrs=read-write"
        )

    def node_url(self, node: Node, driver: str = "psycopg") -> str:
        """One node only (a test reading the secondary, the read replica)."""
        return f"postgresql+{driver}://{ROLE}:{self.password}@127.0.0.1:{node.port}/{DBNAME}"

    def secondary(self) -> Node:
        states = self.states()
        for node in self.nodes:
            if states.get(node.name) == "secondary":
                return node
        raise LookupError(f"no secondary now: {states}")

    # ------------------------------------------------------------ stop

    def stop_node(self, node: Node, *, immediate: bool = True) -> None:
        """Stop a node's pg_autoctl and its postgres, as a lost server would."""
        args = ["pg_autoctl", "stop", "--pgdata", str(node.pgdata)]
        if immediate:
            args.append("--immediate")
        self._run(*args, check=False)
        if node.process is not None:
            try:
                node.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._kill(node)

    def restart_node(self, node: Node) -> None:
        """Run a stopped node again: pg_auto_failover rejoins it as a secondary."""
        self._spawn(node, "pg_autoctl", "run", "--pgdata", str(node.pgdata))

    def _kill(self, node: Node) -> None:
        if node.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            node.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop every service and postgres started here; remove the folder if
        it was made here. Safe to call twice and after a failed start."""
        everyone = [n for n in [*self.nodes, self.monitor] if n is not None]
        for node in everyone:
            if node.process is not None and node.process.poll() is None:
                self._run("pg_autoctl", "stop", "--pgdata", str(node.pgdata), check=False)
        for node in everyone:
            if node.process is not None:
                try:
                    node.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self._kill(node)
            # a postgres left behind by a killed keeper: stopped all the same
            if (node.pgdata / "postmaster.pid").exists():
                self._run(
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(node.pgdata),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                    check=False,
                )
            node.process = None
        if self._made_root and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> HaCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
