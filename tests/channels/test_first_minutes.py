"""The first ten minutes of someone trying yibao (issue 15): the package
builds without warnings, ``/`` is a start page, and a sign-in over plain HTTP
from another machine says why it cannot work."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_package_builds_without_a_deprecation_warning(tmp_path):
    # a copy: pip builds a local folder in place, leaving build/ behind
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "src",
        src / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", str(src), "-w", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    said = built.stdout + built.stderr
    assert built.returncode == 0, said
    assert "DeprecationWarning" not in said and "deprecated" not in said.lower(), said
    assert "BuildBackendWarning" not in said, said
    (wheel,) = (tmp_path / "out").glob("yibao-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        text = whl.read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names


def test_healthz_answers_503_and_logs_one_line_when_the_database_is_unreachable(tmp_path, caplog):
    from fastapi.testclient import TestClient

    from tests.helpers import START
    from yibao.app import create_app
    from yibao.clock import FixedClock
    from yibao.config import Settings

    url = f"sqlite:///{tmp_path}/no/such/folder/yibao.sqlite3"
    settings = Settings(
        database_url=url, var_dir=tmp_path / "var", secret_key="t", argon2_profile="fast"
    )
    app = create_app(settings, FixedClock(START))
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/healthz")
    app.state.services.engine.dispose()
    assert answer.status_code == 503
    assert answer.json()["status"] == "database unreachable"
    said = [r.getMessage() for r in caplog.records if r.name == "yibao"]
    assert said == [
        f"healthz: cannot connect to the database 无法连接数据库 {url}: unable to open database file"
    ]
    assert all(r.exc_info is None for r in caplog.records)
