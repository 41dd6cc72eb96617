"""The ``yibao`` command in someone's first ten minutes (issue 15): the links
it prints are on the host and port served, the telephone's PINs and command
are printed, and a database that refuses the connection is one line naming
it (without its password), never a trace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import yibao
from tests.conftest import BACKENDS
from tests.helpers import CliRunner
from yibao.cli import app as cli_app

runner = CliRunner()


def run(*args: str) -> Any:
    return runner.invoke(cli_app, list(args), catch_exceptions=False)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What ``yibao serve`` handed uvicorn, instead of serving (uvicorn's own
    start is not under test; what is printed before it is)."""
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    return calls


def test_serve_prints_every_channel_on_the_port_it_serves(env, demo, served):
    result = run("serve", "--port", "18101")
    assert result.exit_code == 0, result.output
    assert served and served[0]["port"] == 18101
    out = result.output
    for path in ("/", "/portal/", "/counter/", "/employer/", "/docs"):
        assert f"http://127.0.0.1:18101{path} " in out, (path, out)
    # the terminal's one-time link, on the same port, with a code that works once
    assert "http://127.0.0.1:18101/kiosk/activate?terminal=T-HZZX-01&code=" in out
    assert "yibao phone" in out
    assert "8000" not in out


def test_serve_on_every_address_gives_this_machine_s_link_and_says_what_others_need(
    env, demo, served
):
    out = run("serve", "--host", "0.0.0.0", "--port", "18102").output
    assert served[0]["host"] == "0.0.0.0"
    assert "http://127.0.0.1:18102/portal/" in out
    assert "HTTPS" in out and "YIBAO_COOKIE_SECURE=false" in out


def test_serve_without_the_demo_issues_no_terminal_code(env, served):
    out = run("serve", "--port", "18103").output
    assert "http://127.0.0.1:18103/kiosk/ " in out
    assert "code=" not in out


def test_demo_prints_the_telephone_pins_and_the_phone_command(env):
    out = run("demo").output
    data = json.loads(run("demo", "--json").output)
    for person in data["persons"]:
        assert f"phone PIN 电话密码 {person['phone_pin']}" in out
    assert "yibao phone" in out


def test_demo_json_links_on_the_port_given(env):
    data = json.loads(run("demo", "--json", "--port", "18101").output)
    assert data["login"] == {
        "url": "http://127.0.0.1:18101/docs",
        "api": "http://127.0.0.1:18101/api/v1",
    }


# ---------------------------------------------------------------- a database that refuses


def test_an_unopenable_sqlite_file_is_one_line(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path}/no/such/folder/yibao.sqlite3"
    monkeypatch.setenv("YIBAO_DATABASE_URL", url)
    for command in (["db", "upgrade"], ["cards", "sweep"], ["demo"]):
        result = runner.invoke(cli_app, command)
        assert result.exit_code == 1, (command, result.output)
        lines = result.output.strip().splitlines()
        assert lines == [
            f"cannot connect to the database 无法连接数据库 {url}: unable to open database file"
        ]


def _yibao(*args: str, url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The installed command as an operator runs it: ``main()``, in its own process."""
    env = {
        **os.environ,
        "YIBAO_DATABASE_URL": url,
        "YIBAO_VAR_DIR": str(tmp_path / "var"),
        "PYTHONPATH": os.pathsep.join([str(Path(yibao.__file__).parents[1]), os.getcwd()]),
    }
    return subprocess.run(
        [sys.executable, "-c", "from yibao.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def password_role(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """A role that must give its password (the tests' cluster trusts every
    other one): its name and the cluster's port; removed afterwards."""
    if "postgresql" not in BACKENDS:
        pytest.skip("PostgreSQL is not among YIBAO_TEST_DATABASES")
    cluster = request.getfixturevalue("pg_cluster")
    assert cluster.root is not None
    hba = cluster.root / "data" / "pg_hba.conf"
    before = hba.read_text()
    hba.write_text("host all yibao_pw 127.0.0.1/32 scram-sha-256\n" + before)
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE ROLE yibao_pw LOGIN PASSWORD 'the-right-one'")
        conn.execute("SELECT pg_reload_conf()")
    try:
        yield "yibao_pw", cluster.port
    finally:
        hba.write_text(before)
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("DROP ROLE yibao_pw")
            conn.execute("SELECT pg_reload_conf()")


@pytest.mark.parametrize("command", [["db", "upgrade"], ["serve", "--port", "18104"]])
def test_a_wrong_postgresql_password_is_one_line_naming_the_url_without_it(
    password_role, command, tmp_path
):
    role, port = password_role
    url = f"postgresql+psycopg://{role}:not-the-password@127.0.0.1:{port}/postgres"
    done = _yibao(*command, url=url, tmp_path=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"cannot connect to the database 无法连接数据库 "
        f"postgresql+psycopg://{role}:***@127.0.0.1:{port}/postgres: "
    )
    assert f'password authentication failed for user "{role}"' in lines[0]
    assert "not-the-password" not in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_a_role_that_does_not_exist_is_one_line(password_role, tmp_path):
    _, port = password_role
    url = f"postgresql+psycopg://nobody_here:pw@127.0.0.1:{port}/postgres"
    done = _yibao("db", "upgrade", url=url, tmp_path=tmp_path)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert 'role "nobody_here" does not exist' in line and "nobody_here:***@" in line
