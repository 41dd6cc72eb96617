"""``bench.settlement.cpu_seconds`` counts PostgreSQL's CPU by ancestry: the
benchmark's own cluster (its postmaster and what it started), not every
process named postgres on a machine that other clusters share."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.settlement import cpu_seconds

BURN = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"


def _burnt(proc: subprocess.Popen[bytes]) -> None:
    """Wait until the process has used its CPU, and leave it running."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline() if proc.stdout else b""
        if line:
            return
    raise AssertionError("the burner did not finish")


def test_postgres_is_the_postmasters_tree_and_nothing_else() -> None:
    code = BURN + "print('done', flush=True)\ntime.sleep(60)\n"
    # the "postmaster" starts a child that burns CPU, as a backend does
    parent_code = (
        "import subprocess, sys\n"
        f"child = subprocess.Popen([sys.executable, '-c', {code!r}], stdout=sys.stdout)\n"
        "child.wait()\n"
    )
    ours = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE)
    other = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        _burnt(ours)
        _burnt(other)
        counted = cpu_seconds(-1, ours.pid)
    finally:
        for proc in (ours, other):
            proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
    # the postmaster's backend (0.4 s), but not the other process's 0.4 s
    assert 0.3 <= counted["postgres"] < 0.75, counted
    assert counted["server"] == 0.0
