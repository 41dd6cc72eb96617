"""/metrics: the series a settlement, a refusal, a portal page and an API
call add, with their labels and values; who may scrape; several worker
processes scraped as one."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.his.client import His
from tests.observability.conftest import TOKEN
from tests.observability.scrape import Scrape, scrape
from yibao.store.models import AuditEntry, LedgerEntry, Posting


def _audit_counts(services: Any) -> dict[str, int]:
    """Audit entries in the database by action class (the action's first word)."""
    with services.uow() as u:
        rows = u.session.execute(
            select(AuditEntry.action, func.count()).group_by(AuditEntry.action)
        ).all()
    counts: dict[str, int] = {}
    for action, n in rows:
        cls = action.split(".", 1)[0]
        counts[cls] = counts.get(cls, 0) + n
    return counts


def _moved(services: Any, kind: str) -> tuple[int, int]:
    """Ledger entries of a kind and the fen their positive postings move."""
    with services.uow() as u:
        entries = u.session.execute(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == kind)
        ).scalar_one()
        fen = u.session.execute(
            select(func.coalesce(func.sum(Posting.amount), 0))
            .join(LedgerEntry, LedgerEntry.id == Posting.entry_id)
            .where(LedgerEntry.kind == kind, Posting.amount > 0)
        ).scalar_one()
    return int(entries), int(fen)


def test_a_settlement_a_refusal_a_portal_page_and_an_api_call_are_counted(
    client: Any, demo: dict[str, Any], his: His, services: Any, token_for: Any
) -> None:
    path = "fast" if client.app.state.his_fast is not None else "general"
    zhang = demo["persons"][0]
    psn_no = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
    mdtrt_id = his.register(psn_no, zhang["card_no"])
    his.fees(mdtrt_id, psn_no, [("250101001", "100.00")])
    before = scrape(client)
    audits_before = _audit_counts(services)
    entries_before, fen_before = _moved(services, "settlement")

    his.ok("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "100.00"))
    refused = his.call(
        "2207", his.settle_input("NO-SUCH-VISIT", psn_no, zhang["card_no"], "100.00")
    )
    assert refused["infcode"] == -1
    assert client.get("/portal/login").status_code == 200
    admin = token_for("admin")
    assert client.get("/api/v1/auth/me", headers=admin).status_code == 200

    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    # the settlement: the HIS answer by infno and path, the settlement, its money
    assert grew("yibao_his_requests_total", infno="2207", path=path, result="0") == 1
    assert grew("yibao_settlements_total", kind="settlement", path=path) == 1
    entries_after, fen_after = _moved(services, "settlement")
    assert entries_after - entries_before == 1 and fen_after > fen_before
    assert grew("yibao_ledger_entries_total", kind="settlement") == 1
    assert grew("yibao_money_moved_fen_total", kind="settlement") == fen_after - fen_before
    # both 2207s timed: the settlement on its path, the refusal on the general one
    timed = after.total("yibao_his_request_duration_seconds_count", infno="2207") - before.total(
        "yibao_his_request_duration_seconds_count", infno="2207"
    )
    assert timed == 2
    # the refusal, by its reason, on the general path (the fast path gave way)
    refusals = {
        dict(ls)["reason"]: after.samples[(n, ls)] - before.value(n, **dict(ls))
        for (n, ls) in after.samples
        if n == "yibao_refusals_total" and dict(ls)["infno"] == "2207"
    }
    grown = {reason: n for reason, n in refusals.items() if n}
    assert grown == {"visit.not_found": 1}, grown
    assert grew("yibao_his_requests_total", infno="2207", path="general", result="visit.not_found")
    # every request by its channel: two HIS posts, the portal page, the API call
    assert grew("yibao_http_requests_total", channel="his", method="POST", status="200") == 2
    assert grew("yibao_http_requests_total", channel="portal", method="GET", status="200") == 1
    assert grew("yibao_http_requests_total", channel="api", method="GET", status="200") == 1
    assert grew("yibao_http_request_duration_seconds_count", channel="portal") == 1
    # every audit entry appended, by class, as the database holds them
    audits_after = _audit_counts(services)
    for cls in set(audits_after) | set(audits_before):
        written = audits_after.get(cls, 0) - audits_before.get(cls, 0)
        counted = after.total("yibao_audit_appends_total", action_class=cls) - before.total(
            "yibao_audit_appends_total", action_class=cls
        )
        assert counted == written, (cls, counted, written)
    assert audits_after["his"] > audits_before["his"]
    # the pools, read at the scrape
    assert after.value("yibao_db_pool_checked_out", pool="sqlalchemy") >= 0
    assert ("yibao_db_pool_size", frozenset({("pool", "sqlalchemy")})) in after.samples
    assert ("yibao_db_pool_idle", frozenset({("pool", "asyncpg")})) in after.samples
    # no visit, person or path in any label: each label is one of a few kinds
    assert mdtrt_id not in after.text and zhang["certno"] not in after.text
    names = {k for (n, ls) in after.samples if n.startswith("yibao_") for k, _ in ls}
    assert names <= {
        *("channel", "method", "status", "infno", "path", "result", "reason", "kind"),
        *("chain", "action_class", "pool", "le"),
    }, names
    channels = {v for (n, ls) in after.samples for k, v in ls if k == "channel"}
    assert channels <= {
        *("portal", "kiosk", "counter", "employer", "api", "his", "fhir", "ivr"),
        *("public", "ops", "other"),
    }


def test_a_rolled_back_ledger_entry_moves_no_money(services: Any) -> None:
    """Counted when the transaction commits: a posting rolled back is not money moved."""
    from yibao.observability import metrics
    from yibao.services.ledger import ledger
    from yibao.services.ledger.ledger import Leg

    def value() -> float:
        return Scrape(metrics.scrape().decode()).value(
            "yibao_money_moved_fen_total", kind="test_rollback"
        )

    start = value()
    legs = [Leg("FUND-TEST-A", -500, "fund", None, "330500"), Leg("FUND-TEST-B", 500, "fund")]
    uow = services.uow()
    with uow:
        ledger.post(uow, key="metrics-rollback-1", kind="test_rollback", legs=legs)
        uow.rollback()
    assert value() == start
    uow = services.uow()
    with uow:  # closed without a commit
        ledger.post(uow, key="metrics-rollback-2", kind="test_rollback", legs=legs)
    assert value() == start
    uow = services.uow()
    with uow:
        ledger.post(uow, key="metrics-commit-1", kind="test_rollback", legs=legs)
        uow.commit()
    assert value() == start + 500


def test_the_token_guards_the_scrape(client: Any, settings: Any) -> None:
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer guessed"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert "yibao_" not in wrong.text
    ok = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and "yibao_http_requests_total" in ok.text


@pytest.mark.parametrize(
    ("address", "status"),
    [
        ("127.0.0.1", 200),
        ("::1", 200),
        ("10.20.30.40", 200),
        ("172.16.5.5", 200),
        ("192.168.1.9", 200),
        ("fd00::7", 200),
        ("203.0.113.5", 403),
        ("172.32.0.1", 403),
        ("2001:db8::1", 403),
        ("testclient", 403),
    ],
)
def test_without_a_token_only_internal_addresses_scrape(
    app: Any, settings: Any, address: str, status: int
) -> None:
    settings.metrics_token = ""
    with TestClient(app, client=(address, 40000), raise_server_exceptions=False) as c:
        r = c.get("/metrics")
    assert r.status_code == status, r.text
    assert ("yibao_http_requests_total" in r.text) == (status == 200)


_WRITER = textwrap.dedent(
    """
    import sys
    from yibao.observability import metrics
    metrics.known_infnos(["2207"])
    for _ in range(int(sys.argv[1])):
        metrics.his_answered("2207", "general", "0", 0.01)
    metrics.settled("settlement", "general", 1234)
    """
)
_SCRAPER = "import sys; from yibao.observability import metrics; sys.stdout.write(metrics.scrape().decode())"


def test_two_worker_processes_give_one_merged_scrape(tmp_path: Path) -> None:
    """prometheus-client's multiprocess mode, as ``yibao serve --workers 2``
    sets it up: each process writes its own files, a scrape merges them."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for count in ("3", "4"):
        subprocess.run([sys.executable, "-c", _WRITER, count], env=env, check=True, timeout=60)
    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # one file per process
    text = subprocess.run(
        [sys.executable, "-c", _SCRAPER], env=env, check=True, timeout=60, capture_output=True
    ).stdout.decode()
    merged = Scrape(text)
    labels = {"infno": "2207", "path": "general", "result": "0"}
    assert merged.value("yibao_his_requests_total", **labels) == 7
    assert merged.value("yibao_settlements_total", kind="settlement", path="general") == 2
    assert merged.value("yibao_money_moved_fen_total", kind="settlement") == 2468
    assert (
        merged.value("yibao_his_request_duration_seconds_count", infno="2207", path="general") == 7
    )


def test_serve_with_workers_gives_them_a_fresh_metrics_directory(tmp_path: Path) -> None:
    from yibao.cli.server import _multiprocess_metrics
    from yibao.config import Settings

    settings = Settings(var_dir=tmp_path / "var", secret_key="t")
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with _multiprocess_metrics(settings):
        where = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        assert where.is_dir() and where.parent == tmp_path / "var" / "metrics"
        assert not any(where.iterdir())
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ and not where.exists()


def test_a_failover_seen_is_counted(client: Any) -> None:
    """``failover_seen()`` is what the reconnect code calls on a new primary."""
    from yibao.observability import metrics

    before = scrape(client).value("yibao_database_failovers_seen_total")
    metrics.failover_seen()
    assert scrape(client).value("yibao_database_failovers_seen_total") == before + 1


def test_a_reconnect_after_failed_connections_shows_in_the_scrape(client: Any) -> None:
    """The store's reconnect bookkeeping (what a failover looks like from
    yibao's side) counts into the same series."""
    from yibao.store import db

    before = scrape(client).value("yibao_database_failovers_seen_total")
    lost = db.LostConnections()
    lost.connected()
    lost.failed()
    lost.connected()
    lost.connected()
    assert scrape(client).value("yibao_database_failovers_seen_total") == before + 1
