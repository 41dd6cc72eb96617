"""The deployment files name real things: the systemd units pass
``systemd-analyze verify`` and run ``yibao`` commands that exist; every
``YIBAO_`` variable in deploy/yibao.env.example and the Containerfile is a
setting of config.py; the Containerfile's CMD is a real command and its
HEALTHCHECK a real path. The image itself is not built here (that needs the
base image from a registry)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.helpers import CliRunner
from yibao.cli import app
from yibao.config import Settings

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
ENV_EXAMPLE = ROOT / "deploy" / "yibao.env.example"
CONTAINERFILE = ROOT / "Containerfile"
INSTALLED = "/opt/yibao/bin/yibao"


def _settings_names() -> set[str]:
    return {f"YIBAO_{name.upper()}" for name in Settings.model_fields}


def _yibao_commands() -> list[list[str]]:
    """Every yibao command line in the units, commented alternatives included."""
    found = []
    for unit in sorted(UNITS.glob("*.service")):
        for line in unit.read_text().splitlines():
            line = line.lstrip("#").strip()
            if re.match(r"^Exec\w*=", line) and INSTALLED in line:
                argv = shlex.split(line.split("=", 1)[1])
                found.append(argv[argv.index(INSTALLED) + 1 :])
    return found


def test_the_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("SYSTEMD UNITS NOT VERIFIED: systemd-analyze is not installed")
    yibao = shutil.which("yibao") or str(Path(__import__("sys").executable).with_name("yibao"))
    if not Path(yibao).exists():
        pytest.skip(
            "SYSTEMD UNITS NOT VERIFIED: no installed yibao program to stand for /opt/yibao"
        )
    # verify insists that ExecStart's program exists: the one installed here stands in
    for unit in UNITS.iterdir():
        (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALLED, yibao))
    names = sorted(str(p) for p in tmp_path.iterdir())
    assert {Path(n).name for n in names} >= {
        "yibao.service",
        "yibao-prune.service",
        "yibao-prune.timer",
        "yibao-backup.service",
        "yibao-backup.timer",
    }
    done = subprocess.run([analyze, "verify", *names], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr  # an unknown key is only a warning: none either


def test_the_hardening_the_service_promises() -> None:
    text = (UNITS / "yibao.service").read_text()
    for line in (
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/yibao",
        "EnvironmentFile=/etc/yibao/yibao.env",
        "NoNewPrivileges=yes",
        "User=yibao",
    ):
        assert line in text.splitlines(), line
    assert "--host 127.0.0.1" in text  # behind the TLS proxy, never the open network


def test_the_units_run_real_yibao_commands() -> None:
    commands = _yibao_commands()
    assert ["prune"] in commands
    assert ["db", "upgrade"] in commands
    assert any(c[:2] == ["backup", "pg-full"] for c in commands)
    assert any(c[:2] == ["backup", "create"] for c in commands)
    for argv in commands:
        words = [w for w in argv if not w.startswith("-")]
        # the command words alone: the options are checked by --help's parse
        path = words[: 2 if words[0] in ("db", "backup") else 1]
        out = CliRunner().invoke(app, [*path, "--help"])
        assert out.exit_code == 0, (argv, out.output)
        for option in (w.split("=")[0] for w in argv if w.startswith("--")):
            assert option in out.output, (argv, option)


def test_every_variable_of_the_example_is_a_setting() -> None:
    named = re.findall(r"^#?\s*(YIBAO_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M)
    assert "YIBAO_DATABASE_URL" in named and "YIBAO_AUDIT_KEY" in named
    assert set(named) <= _settings_names(), set(named) - _settings_names()
    in_container = set(re.findall(r"\b(YIBAO_[A-Z0-9_]+)\b", CONTAINERFILE.read_text()))
    assert in_container <= _settings_names(), in_container - _settings_names()


def _instruction(text: str, name: str) -> str:
    joined = re.sub(r"\\\n\s*", " ", text)
    lines = [line for line in joined.splitlines() if line.startswith(name + " ")]
    assert len(lines) == 1, (name, lines)
    return lines[0][len(name) + 1 :].strip()


def test_the_containerfile_runs_a_real_command_and_checks_a_real_path() -> None:
    text = CONTAINERFILE.read_text()
    assert _instruction(text, "FROM").startswith("docker.io/library/python:3.11-slim")
    assert re.match(r"^\w+", _instruction(text, "USER")).group(0) != "root"  # type: ignore[union-attr]
    cmd = json.loads(_instruction(text, "CMD"))
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert cmd[0] in scripts
    out = CliRunner().invoke(app, [cmd[1], "--help"])
    assert out.exit_code == 0, out.output
    for option in (w for w in cmd if w.startswith("--")):
        assert option in out.output, option
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    port = cmd[cmd.index("--port") + 1]
    health = _instruction(text, "HEALTHCHECK")
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/]*)", health)
    assert url is not None and url.group(1) == port
    from yibao.app import create_app

    paths = {
        getattr(r, "path", None) for r in create_app(Settings(database_url="sqlite://")).routes
    }
    assert url.group(2) in paths
