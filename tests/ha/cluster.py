"""The failover tests' cluster and servers: started for a test, stopped by
its finalizers even when it fails; nothing outlives the run."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from yibao.ops import ha
from yibao.testing import his as signer
from yibao.testing.pgcluster import free_port

ROOT = Path(__file__).resolve().parents[2]
AUDIT_KEY = "failover-test-audit-key-of-at-least-32-characters"
ENDPOINT = "/fsi/api/rsfComIfsService/callService"


def skip_unless_available() -> None:
    why = ha.available()
    if why:
        pytest.skip(f"FAILOVER TEST SKIPPED (pg_auto_failover missing): {why}")


def started_cluster() -> Iterator[ha.HaCluster]:
    skip_unless_available()
    cluster = ha.HaCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def environment(url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "YIBAO_DATABASE_URL": url,
            "YIBAO_VAR_DIR": str(var_dir),
            "YIBAO_SECRET_KEY": "failover-test",
            "YIBAO_AUDIT_KEY": AUDIT_KEY,
            "YIBAO_ARGON2_PROFILE": "fast",
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]
            ),
        }
    )
    env.update(extra)
    return env


def yibao(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The ``yibao`` command of this checkout."""
    return subprocess.run(
        [sys.executable, "-c", "from yibao.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


class Server:
    """``uvicorn yibao.asgi:app`` in a process of its own."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "yibao.asgi:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"uvicorn did not start: {log.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class His:
    """One HIS over one keep-alive connection, signing as an HIS signs."""

    def __init__(self, port: int, inst: dict[str, Any]) -> None:
        self.port = port
        self.inst = inst
        self.sign_no = ""
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def envelope(self, infno: str, inp: dict[str, Any]) -> bytes:
        env = signer.envelope(
            infno,
            inp,
            msgid=signer.msgid(self.inst["code"], dt.datetime.now(dt.UTC)),
            institution=self.inst,
            sign_no=self.sign_no,
        )
        return signer.body(env)

    def send(self, body: bytes) -> dict[str, Any]:
        """One sending of a message: a fresh nonce, the same body."""
        headers = signer.headers(
            access_id=self.inst["code"],
            secret=self.inst["secret"],
            timestamp=int(time.time()),
            nonce=signer.nonce(self.inst["code"]),
        )
        self.conn.request("POST", ENDPOINT, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        assert response.status == 200, (response.status, data[:500])
        result: dict[str, Any] = json.loads(data)
        return result

    def sign_in(self) -> None:
        answer = self.send(self.envelope("9001", {"signIn": {"opter_no": "1"}}))
        assert answer["infcode"] == 0, answer
        self.sign_no = answer["output"]["signinoutb"]["sign_no"]

    def close(self) -> None:
        self.conn.close()
