import json

from sqlalchemy import text

from tests.helpers import CliRunner
from yibao.cli import app as cli_app

runner = CliRunner()


def run(*args):
    return runner.invoke(cli_app, list(args), catch_exceptions=False)


def test_db_upgrade_creates_a_fresh_sqlite_database(monkeypatch, tmp_path):
    monkeypatch.delenv("YIBAO_DATABASE_URL", raising=False)
    monkeypatch.setenv("YIBAO_VAR_DIR", str(tmp_path / "var"))
    result = run("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "var" / "yibao.sqlite3").exists()
    assert "newest schema" in result.output
    assert run("db", "upgrade").exit_code == 0  # and again: nothing to do


def test_db_upgrade_on_the_test_database(env):
    from yibao.store import migrate

    result = run("db", "upgrade")
    assert result.exit_code == 0 and migrate.heads()[0] in result.output


def test_one_migration_head():
    from yibao.store import migrate

    assert len(migrate.heads()) == 1


def test_demo_loads_once_and_prints_json(env):
    first = run("demo")
    assert first.exit_code == 0 and "demo city loaded" in first.output
    again = run("demo")
    assert again.exit_code == 0 and "already loaded" in again.output
    data = json.loads(run("demo", "--json").output)
    assert set(data) >= {"persons", "institutions", "staff", "employers"}
    assert set(data["persons"][0]) >= {"certno", "name", "account_no", "password", "card_no", "pin"}
    assert set(data["institutions"][0]) >= {"code", "name", "level", "secret"}
    assert set(data["staff"][0]) >= {"username", "password", "role", "division"}
    assert set(data["employers"][0]) >= {"uscc", "name"}
    assert json.loads(run("demo", "--json").output) == data  # deterministic


def test_audit_verify_finds_an_edited_entry(env, backend, services):
    assert run("demo").exit_code == 0
    ok = run("audit", "verify")
    assert ok.exit_code == 0 and "intact" in ok.output
    with services.engine.begin() as conn:
        if backend == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("UPDATE audit_log SET subject = 'forged' WHERE id = 5"))
    bad = runner.invoke(cli_app, ["audit", "verify"])
    assert bad.exit_code == 1
    assert "edited" in bad.output and "tampered" in bad.output


def test_calendar_show_and_set(env):
    shown = run("calendar", "show", "--year", "2026")
    assert shown.exit_code == 0
    assert "2026-10-10" in shown.output and "2026-10-01" in shown.output
    counted = run("calendar", "show", "--from", "2026-09-30", "--days", "3")
    assert "2026-10-10" in counted.output
    result = run("calendar", "set", "2027-10-01", "--holiday", "--note", "国庆节")
    assert result.exit_code == 0 and "holiday" in result.output
    shown = run("calendar", "show", "--year", "2027")
    assert "warning" in shown.output and "2027-10-01" in shown.output and "override" in shown.output
    bad = runner.invoke(cli_app, ["calendar", "set", "2027-13-01", "--holiday"])
    assert bad.exit_code == 1 and "not a date" in bad.output


def test_staff_create_and_token(env):
    assert run("demo").exit_code == 0
    made = run(
        "staff",
        "create",
        "anji",
        "--role",
        "county_clerk",
        "--division",
        "330523",
        "--password",
        "a-long-password",
    )
    assert made.exit_code == 0, made.output
    token = run("staff", "token", "anji", "--label", "ci").output.strip()
    assert token.startswith("ybt_")
    refused = runner.invoke(
        cli_app,
        [
            "staff",
            "create",
            "x",
            "--role",
            "county_clerk",
            "--division",
            "330523",
            "--password",
            "short",
        ],
    )
    assert refused.exit_code == 1 and "password" in refused.output


def test_ledger_check_and_contributions_post(env, services, backend):
    assert run("demo").exit_code == 0
    ok = run("ledger", "check")
    assert ok.exit_code == 0 and "balanced" in ok.output
    posted = run("contributions", "post", "--month", "2026-10")
    assert (
        posted.exit_code == 0 and "0 person(s) credited" in posted.output
    )  # the demo posted it already
    bad = runner.invoke(cli_app, ["contributions", "post", "--month", "2026-13"])
    assert bad.exit_code == 1 and "YYYY-MM" in bad.output
    with services.engine.begin() as conn:
        conn.execute(
            text("UPDATE ledger_accounts SET balance = balance + 5 WHERE code = 'BANK:CLEARING'")
        )
    broken = runner.invoke(cli_app, ["ledger", "check"])
    assert broken.exit_code == 1 and "BANK:CLEARING" in broken.output


def test_bank_payee_sets_and_lists_the_collection_accounts(env, demo):
    assert "330500" in run("bank", "payee", "list").output  # the demo city's
    result = run(
        "bank",
        "payee",
        "set",
        "330521",
        "--bank",
        "德清农商银行",
        "--name",
        "德清县医保基金收入户",
        "--account",
        "201000123456789",
    )
    assert result.exit_code == 0, result.output
    listed = run("bank", "payee", "list").output.splitlines()
    assert [line.split()[0] for line in listed] == ["330500", "330521"]
    assert "201000123456789" in listed[1]
    bad = runner.invoke(
        cli_app, ["bank", "payee", "set", "330521", "--bank", "x", "--name", "y", "--account", "12"]
    )
    # refused with its message naming the field, exit status 1, no trace
    assert bad.exit_code == 1 and "account: " in bad.output and "Traceback" not in bad.output
