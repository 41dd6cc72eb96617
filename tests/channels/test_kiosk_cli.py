"""``yibao kiosk`` and the demo's way into the terminal, through Typer's
CliRunner on SQLite and PostgreSQL."""

import re

from sqlalchemy import select

from tests.helpers import CliRunner
from yibao.cli import app as cli_app
from yibao.services.access import terminals as kiosk
from yibao.store.models import AuditEntry

runner = CliRunner()


def run(*args):
    return runner.invoke(cli_app, list(args), catch_exceptions=False)


def code_in(output):
    m = re.search(r"激活码 \(shown once 只显示一次\): ([A-Z0-9]{8})\n", output)
    assert m, output
    return m.group(1)


def activate(services, terminal, code):
    _, token = kiosk.activate(
        services.uow(), terminal_code=terminal, activation_code=code, channel="kiosk"
    )
    return token


def bound(services, token):
    term = kiosk.terminal_of_device(services.uow(), token)
    return term.code if term else None


def test_kiosk_register_issue_deactivate_and_list(env, services, demo):
    made = run(
        "kiosk", "register", "T-AJ-01", "--location", "安吉县医保中心", "--division", "330523"
    )
    assert made.exit_code == 0 and "T-AJ-01" in made.output and "有效至" in made.output
    token = activate(services, "T-AJ-01", code_in(made.output))
    assert bound(services, token) == "T-AJ-01"
    listed = run("kiosk", "list")
    assert re.search(r"T-AJ-01\s+330523\s+activated", listed.output)
    assert re.search(r"T-HZZX-01\s+330502\s+pending", listed.output)
    issued = run("kiosk", "issue", "T-AJ-01")
    assert issued.exit_code == 0 and bound(services, token) is None  # the old machine is out
    token = activate(services, "T-AJ-01", code_in(issued.output))
    gone = run("kiosk", "deactivate", "T-AJ-01")
    assert gone.exit_code == 0 and "deactivated" in gone.output
    assert bound(services, token) is None
    assert re.search(r"T-AJ-01\s+330523\s+inactive", run("kiosk", "list").output)
    with services.uow() as work:
        actions = [
            (e.actor_kind, e.channel, e.action)
            for e in work.session.execute(
                select(AuditEntry).where(AuditEntry.subject == "T-AJ-01").order_by(AuditEntry.id)
            ).scalars()
        ]
    assert actions == [
        ("system", "cli", "kiosk.register"),
        ("system", "cli", "kiosk.issue_code"),
        ("terminal", "kiosk", "kiosk.activate"),
        ("system", "cli", "kiosk.issue_code"),
        ("terminal", "kiosk", "kiosk.activate"),
        ("system", "cli", "kiosk.deactivate"),
    ]


def test_kiosk_commands_refuse_with_a_message(env, demo):
    for args in (
        ["register", "T-HZZX-01", "--location", "x", "--division", "330502"],
        ["register", "T 1", "--location", "x", "--division", "330502"],
        ["register", "T-9", "--location", "x", "--division", "999999"],
        ["issue", "T-NOWHERE"],
        ["deactivate", "T-NOWHERE"],
    ):
        result = runner.invoke(cli_app, ["kiosk", *args])
        assert result.exit_code == 1, (args, result.output)
        assert " / " in result.output and "Traceback" not in result.output
    result = runner.invoke(cli_app, ["kiosk", "issue", "T-NOWHERE"])
    assert "未找到终端 / terminal not found" in result.output


def test_serve_prints_a_link_that_activates_the_demo_terminal_once(env, services, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: None)  # the links, not the serving
    assert run("demo").exit_code == 0
    assert "/kiosk/activate" not in run("demo").output  # serve's, on the port it serves
    first = run("serve")
    assert first.exit_code == 0, first.output
    m = re.search(r"/kiosk/activate\?terminal=T-HZZX-01&code=([A-Z0-9]{8}) ", first.output)
    assert m, first.output
    assert "?terminal=T-HZZX-01 " not in first.output  # the old way is gone
    token = activate(services, "T-HZZX-01", m.group(1))
    again = run("serve")
    assert "T-HZZX-01 is activated" in again.output
    assert "yibao kiosk issue T-HZZX-01" in again.output
    assert "/kiosk/activate" not in again.output
    assert bound(services, token) == "T-HZZX-01"  # starting again did not unbind it
