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
    built = subprocess.run(  # noqa: S603 - pip on our own source
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
