"""Forgery is found (issue 14): on copies of one database with traffic (the
demo city, settlements and a cancel at a hospital, an employer's payment,
the month's credit to the individual accounts, a closing paid out), audit
and ledger rows are edited, deleted and forged behind the application's
back, the way someone with the database owner's rights would (the
append-only triggers switched off: PostgreSQL's replica role, SQLite's
triggers dropped and made again), without the audit key. ``yibao audit
verify --checkpoints`` (against the checkpoint taken half way) and ``yibao
ledger check`` fail naming the row; rewriting rows with the values they
have raises no alarm."""

from __future__ import annotations

import itertools
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, func, select, text

from tests.conftest import BACKENDS
from tests.db.tampering import LOG, behind_the_back, entry, rehash_plain
from tests.db.test_settlement_writes import Script
from tests.helpers import FUND_CLERK, START, WUXING, CliRunner
from yibao.cli import app as cli_app
from yibao.clock import FixedClock
from yibao.config import Settings
from yibao.domain import ledger as codes
from yibao.domain.actors import Channel
from yibao.runtime import Services
from yibao.services.closing import closing
from yibao.services.contributions import contributions as cs
from yibao.store import auditlog

_names = itertools.count()


@dataclass
class Traffic:
    """The database with traffic, the checkpoint directory taken half way,
    and how to copy the database."""

    backend: str
    url: str
    checkpoints: Path
    copy: Callable[[], str]


def _settle(script: Script, services: Services, person: dict[str, Any], amount: int) -> Any:
    with services.uow() as u:
        from yibao.store.models import Person

        pid = str(
            u.session.execute(
                select(Person.id).where(Person.certno == person["certno"])
            ).scalar_one()
        )
    card = ("03", person["card_no"])
    mdtrt_id = script.visit(pid, card, [("250101001", amount)])
    return mdtrt_id, pid, script.settle(mdtrt_id, pid, card, amount)


def _traffic(services: Services, demo: dict[str, Any], checkpoints: Path) -> None:
    script = Script(services, demo)
    people = demo["persons"]
    _settle(script, services, people[0], 200_00)
    mdtrt_id, pid, settled = _settle(script, services, people[1], 120_00)
    script.cancel(settled["setlinfo"]["setl_id"], mdtrt_id, pid)
    employer = demo["employers"][0]["uscc"]
    due = cs.assess_employer(
        services.uow(), actor=FUND_CLERK, channel=Channel.CLI, employer_uscc=employer, month=202611
    )
    cs.record_employer_payment(
        services.uow(),
        actor=FUND_CLERK,
        channel=Channel.CLI,
        employer_uscc=employer,
        month=202611,
        amount=due.total,
        reference="回单 2026-11",
        key="tamper-pay-1",
    )
    cs.post_month(services.engine, month=202611, now=services.clock.now(), backend=services.backend)
    closure, _ = closing.close_account(
        services.uow(),
        actor=WUXING,
        channel=Channel.API,
        account_no=people[4]["account_no"],
        kind="emigration",
        reason="移居境外",
    )
    closing.pay_out(
        services.uow(),
        actor=WUXING,
        channel=Channel.API,
        closure_no=closure.closure_no,
        reference="ICBC-20261123-9",
    )
    made = CliRunner().invoke(
        cli_app, ["audit", "checkpoint", "-o", str(checkpoints)], catch_exceptions=False
    )
    assert made.exit_code == 0, made.output
    # and more after the checkpoint, which the key alone protects
    _settle(script, services, people[3], 80_00)


@pytest.fixture(scope="module", params=BACKENDS)
def traffic(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Traffic]:
    from yibao import demo as demo_service

    folder = tmp_path_factory.mktemp(f"traffic-{request.param}")
    checkpoints = folder / "checkpoints"
    checkpoints.mkdir()
    cluster: Any = None
    if request.param == "sqlite":
        path = folder / "traffic.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_templates")["demo"], path)
        url = f"sqlite:///{path}"
    else:
        cluster = request.getfixturevalue("pg_cluster")
        template = request.getfixturevalue("pg_templates")["demo"]
        name = f"traffic{next(_names)}"
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        url = cluster.url(name)
    settings = Settings(
        database_url=url, var_dir=folder / "var", secret_key="test", argon2_profile="fast"
    )
    services = Services.from_settings(settings, clock=FixedClock(START))
    mp = pytest.MonkeyPatch()
    mp.setenv("YIBAO_DATABASE_URL", url)
    mp.setenv("YIBAO_VAR_DIR", str(folder / "var"))
    try:
        _traffic(services, demo_service.fixtures(), checkpoints)
    finally:
        mp.undo()
        services.close()
    if cluster is None:
        conn = sqlite3.connect(path)  # the WAL folded into the file, to copy it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()

        def copy() -> str:
            made = folder / f"copy{next(_names)}.sqlite3"
            shutil.copy(path, made)
            return f"sqlite:///{made}"

    else:

        def copy() -> str:
            made = f"copy{next(_names)}"
            with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{made}" TEMPLATE "{name}"')
            return str(cluster.url(made))

    yield Traffic(request.param, url, checkpoints, copy)


@dataclass
class Found:
    """What each command must say: None, that it passes; else a text of
    its failure naming the row."""

    audit: str | None
    ledger: str | None


def _run(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.setenv("YIBAO_DATABASE_URL", url)
    monkeypatch.setenv("YIBAO_VAR_DIR", str(tmp_path / "var"))
    return CliRunner().invoke(cli_app, list(args), catch_exceptions=False)


# ----------------------------------------------------------- the forgeries


def _anchors(checkpoints: Path) -> dict[int, tuple[int, int]]:
    """Each chain's (seq, id) in the checkpoint."""
    import json

    (file,) = checkpoints.glob("*.json")
    return {c["chain"]: (c["seq"], c["id"]) for c in json.loads(file.read_text())["chains"]}


def edit_an_entry(conn: Connection, cp: Path) -> Found:
    e = entry(conn, LOG.c.action == "his.settlement")
    conn.execute(text("UPDATE audit_log SET actor_id = 'H00000000000' WHERE id = :i"), {"i": e.id})
    return Found(f"seq {e.seq} (id {e.id}): content does not match its hash", None)


def edit_and_recompute_the_chain(conn: Connection, cp: Path) -> Found:
    e = entry(conn, LOG.c.action == "his.settlement")
    conn.execute(text("UPDATE audit_log SET actor_id = 'H00000000000' WHERE id = :i"), {"i": e.id})
    rehash_plain(conn, e.chain, e.seq)
    return Found(f"seq {e.seq} (id {e.id}): has an unkeyed hash", None)


def delete_an_entry(conn: Connection, cp: Path) -> Found:
    e = entry(conn, LOG.c.action == "his.register", LOG.c.seq > 1)
    conn.execute(text("DELETE FROM audit_log WHERE id = :i"), {"i": e.id})
    return Found(f"chain {e.chain}: entries {e.seq}..{e.seq} are missing (removed)", None)


def delete_a_chains_tail_and_move_its_head_back(conn: Connection, cp: Path) -> Found:
    """Its last entry, as the checkpoint saw it: nothing after it to betray it."""
    last_seq = dict(
        conn.execute(select(LOG.c.chain, func.max(LOG.c.seq)).group_by(LOG.c.chain)).all()
    )
    chain, (seq, last_id) = next(
        (c, a) for c, a in sorted(_anchors(cp).items()) if a[0] >= 2 and last_seq.get(c) == a[0]
    )
    before = entry(conn, LOG.c.chain == chain, LOG.c.seq == seq - 1)
    conn.execute(text("DELETE FROM audit_log WHERE id = :i"), {"i": last_id})
    conn.execute(
        text("UPDATE audit_chain_heads SET seq = :s, hash = :h WHERE chain = :c"),
        {"s": seq - 1, "h": before.hash, "c": chain},
    )
    return Found(f"chain {chain}: entries {seq}..{seq} are missing: checkpoint", None)


def delete_a_whole_chain(conn: Connection, cp: Path) -> Found:
    chain, (seq, last_id) = next((c, a) for c, a in sorted(_anchors(cp).items()) if a[0] >= 2)
    # the ledger entries whose records go with the chain lose them
    records = conn.execute(
        select(LOG.c.detail).where(LOG.c.chain == chain, LOG.c.action == "ledger.entry")
    ).scalars()
    keys = [r["key"] for r in records]
    conn.execute(text("DELETE FROM audit_log WHERE chain = :c"), {"c": chain})
    conn.execute(text("DELETE FROM audit_chain_heads WHERE chain = :c"), {"c": chain})
    return Found(
        f"saw seq {seq} (id {last_id}) (removed, the whole chain)",
        f"({keys[0]}): has no audit record" if keys else None,
    )


def forge_an_entry(conn: Connection, cp: Path) -> Found:
    """A read that never happened, appended the way the code of before did."""
    from tests.helpers import SYSTEM

    forged = SYSTEM.record(channel="api", action="person.read", person_id=3, subject="x")
    auditlog.append_unkeyed(conn, forged, START)
    forged_id = conn.execute(select(func.max(LOG.c.id))).scalar_one()
    return Found(f"(id {forged_id}): has an unkeyed hash after keyed entries", None)


def move_an_entry_off_the_chains(conn: Connection, cp: Path) -> Found:
    """Out of its chain to one the walk might not read."""
    e = entry(conn, LOG.c.action == "his.register", LOG.c.seq > 1)
    conn.execute(text("UPDATE audit_log SET chain = 99 WHERE id = :i"), {"i": e.id})
    return Found(f"chain 99: 1 entries (the first id {e.id}) on a chain yibao never writes", None)


def delete_a_ledger_entrys_record(conn: Connection, cp: Path) -> Found:
    record = entry(conn, LOG.c.action == "ledger.entry")
    key = record.detail["key"]
    entry_id = conn.execute(
        text("SELECT id FROM ledger_entries WHERE idem_key = :k"), {"k": key}
    ).scalar_one()
    conn.execute(text("DELETE FROM audit_log WHERE id = :i"), {"i": record.id})
    rehash_plain(conn, record.chain, record.seq)
    return Found(
        f"chain {record.chain}: entries {record.seq}..{record.seq} are missing",
        f"ledger entry id {entry_id} ({key}): has no audit record",
    )


def _fund_and_person(conn: Connection) -> tuple[int, int, int]:
    fund = conn.execute(
        text("SELECT id FROM ledger_accounts WHERE code LIKE 'FUND:%' ORDER BY id LIMIT 1")
    ).scalar_one()
    ia, person = conn.execute(
        text(
            "SELECT id, person_id FROM ledger_accounts WHERE kind = 'individual' "
            "ORDER BY id LIMIT 1"
        )
    ).one()
    return fund, ia, person


def _forged_entry(conn: Connection, key: str, amount: int) -> int:
    """1,000 yuan from the fund to a person: balanced, balances adjusted."""
    fund, ia, person = _fund_and_person(conn)
    entry_id = conn.execute(
        text(
            "INSERT INTO ledger_entries (idem_key, kind, person_id, memo, at, result) "
            "VALUES (:k, 'settlement', :p, '', :at, '{}') RETURNING id"
        ),
        {"k": key, "p": person, "at": START},
    ).scalar_one()
    for account, amt in ((fund, -amount), (ia, amount)):
        conn.execute(
            text(
                "INSERT INTO ledger_postings (entry_id, account_id, person_id, amount, at) "
                "VALUES (:e, :a, NULL, :amt, :at)"
            ),
            {"e": entry_id, "a": account, "amt": amt, "at": START},
        )
        conn.execute(
            text("UPDATE ledger_accounts SET balance = balance + :amt WHERE id = :a"),
            {"amt": amt, "a": account},
        )
    return int(entry_id)


def forge_a_balanced_ledger_entry(conn: Connection, cp: Path) -> Found:
    entry_id = _forged_entry(conn, "forged-1", 1_000_00)
    return Found(None, f"ledger entry id {entry_id} (forged-1): has no audit record")


def forge_a_ledger_entry_and_its_record(conn: Connection, cp: Path) -> Found:
    """With a record written as the code of before wrote entries: the
    attacker has everything but the key."""
    from yibao.domain import ledger_audit

    entry_id = _forged_entry(conn, "forged-2", 1_000_00)
    postings = conn.execute(
        text(
            "SELECT a.code, p.amount FROM ledger_postings p JOIN ledger_accounts a "
            "ON a.id = p.account_id WHERE p.entry_id = :e"
        ),
        {"e": entry_id},
    ).all()
    _, _, person = _fund_and_person(conn)
    record = ledger_audit.entry_record(
        key="forged-2", kind="settlement", person_id=person, postings=[tuple(p) for p in postings]
    )
    auditlog.append_unkeyed(conn, record, START)
    record_id = conn.execute(select(func.max(LOG.c.id))).scalar_one()
    return Found(
        f"(id {record_id}): has an unkeyed hash",
        f"audit entry id {record_id} (chain {record.chain}",
    )


def change_a_posting(conn: Connection, cp: Path) -> Found:
    entry_id, key = conn.execute(
        text(
            "SELECT id, idem_key FROM ledger_entries WHERE kind = 'settlement' ORDER BY id LIMIT 1"
        )
    ).one()
    postings = conn.execute(
        text(
            "SELECT p.id, p.account_id FROM ledger_postings p JOIN ledger_accounts a "
            "ON a.id = p.account_id WHERE p.entry_id = :e ORDER BY a.allow_negative DESC, p.id"
        ),
        {"e": entry_id},
    ).all()
    for (posting, account), amt in ((postings[0], -500_00), (postings[-1], 500_00)):
        conn.execute(
            text("UPDATE ledger_postings SET amount = amount + :a WHERE id = :i"),
            {"a": amt, "i": posting},
        )
        conn.execute(
            text("UPDATE ledger_accounts SET balance = balance + :a WHERE id = :i"),
            {"a": amt, "i": account},
        )
    return Found(None, f"ledger entry id {entry_id} ({key}): its postings, kind or person differ")


def delete_a_ledger_entry_and_its_postings(conn: Connection, cp: Path) -> Found:
    entry_id, key = conn.execute(
        text(
            "SELECT id, idem_key FROM ledger_entries WHERE kind = 'settlement' "
            "ORDER BY id DESC LIMIT 1"
        )
    ).one()
    for account, amount in conn.execute(
        text("SELECT account_id, amount FROM ledger_postings WHERE entry_id = :e"), {"e": entry_id}
    ).all():
        conn.execute(
            text("UPDATE ledger_accounts SET balance = balance - :a WHERE id = :i"),
            {"a": amount, "i": account},
        )
    conn.execute(text("DELETE FROM ledger_postings WHERE entry_id = :e"), {"e": entry_id})
    conn.execute(text("DELETE FROM ledger_entries WHERE id = :e"), {"e": entry_id})
    return Found(None, f"records ledger entry {key}, which is missing (removed)")


def delete_a_ledger_entry_leaving_its_postings(conn: Connection, cp: Path) -> Found:
    entry_id = conn.execute(
        text("SELECT id FROM ledger_entries WHERE idem_key LIKE 'closepay:%'")
    ).scalar_one()
    posting = conn.execute(
        text("SELECT min(id) FROM ledger_postings WHERE entry_id = :e"), {"e": entry_id}
    ).scalar_one()
    conn.execute(text("DELETE FROM ledger_entries WHERE id = :e"), {"e": entry_id})
    return Found(None, f"posting id {posting}: its ledger entry id {entry_id} is missing")


def change_a_balance(conn: Connection, cp: Path) -> Found:
    code = codes.BANK
    conn.execute(
        text("UPDATE ledger_accounts SET balance = balance - 1 WHERE code = :c"), {"c": code}
    )
    return Found(None, f"account {code}: balance")


FORGERIES = [
    edit_an_entry,
    edit_and_recompute_the_chain,
    delete_an_entry,
    delete_a_chains_tail_and_move_its_head_back,
    delete_a_whole_chain,
    forge_an_entry,
    move_an_entry_off_the_chains,
    delete_a_ledger_entrys_record,
    forge_a_balanced_ledger_entry,
    forge_a_ledger_entry_and_its_record,
    change_a_posting,
    delete_a_ledger_entry_and_its_postings,
    delete_a_ledger_entry_leaving_its_postings,
    change_a_balance,
]


def _say(found: str | None, result: Any, command: str) -> None:
    if found is None:
        assert result.exit_code == 0, (command, result.output)
    else:
        assert result.exit_code == 1, (command, result.output)
        assert found in result.output, (command, found, result.output)


@pytest.mark.parametrize("forge", FORGERIES, ids=lambda f: f.__name__)
def test_forgery_is_found_naming_the_row(
    traffic: Traffic,
    forge: Callable[[Connection, Path], Found],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from yibao.store.db import make_engine

    url = traffic.copy()
    engine = make_engine(url)
    try:
        with behind_the_back(engine, traffic.backend) as conn:
            found = forge(conn, traffic.checkpoints)
    finally:
        engine.dispose()
    verified = _run(
        url, tmp_path, monkeypatch, "audit", "verify", "--checkpoints", str(traffic.checkpoints)
    )
    _say(found.audit, verified, "audit verify")
    checked = _run(url, tmp_path, monkeypatch, "ledger", "check")
    _say(found.ledger, checked, "ledger check")


def test_the_traffic_verifies_and_rewriting_rows_unchanged_raises_no_alarm(
    traffic: Traffic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from yibao.store.db import make_engine

    url = traffic.copy()
    before = _run(
        url, tmp_path, monkeypatch, "audit", "verify", "--checkpoints", str(traffic.checkpoints)
    )
    assert before.exit_code == 0 and "0 written before the audit key" in before.output
    assert "16 of 16 chains as their newest checkpoint saw them" in before.output
    engine = make_engine(url)
    try:
        with behind_the_back(engine, traffic.backend) as conn:
            for sql in (
                "UPDATE audit_log SET actor_id = actor_id, detail = detail, hash = hash",
                "UPDATE audit_chain_heads SET seq = seq, hash = hash",
                "UPDATE ledger_entries SET idem_key = idem_key, kind = kind, person_id = person_id",
                "UPDATE ledger_postings SET amount = amount, account_id = account_id",
                "UPDATE ledger_accounts SET balance = balance, code = code",
            ):
                assert conn.execute(text(sql)).rowcount > 0
    finally:
        engine.dispose()
    verified = _run(
        url, tmp_path, monkeypatch, "audit", "verify", "--checkpoints", str(traffic.checkpoints)
    )
    assert verified.exit_code == 0, verified.output
    checked = _run(url, tmp_path, monkeypatch, "ledger", "check")
    assert checked.exit_code == 0 and "each as its audit record describes it" in checked.output
