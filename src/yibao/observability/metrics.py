"""yibao's Prometheus metrics (``prometheus-client``) and their scrape.

Every label takes its values from a small fixed set (a channel, an
``infno``, a refusal's error code, a ledger entry's kind): never a person,
a msgid or a path, so the number of series stays bounded.

With several worker processes (``yibao serve --workers N``), the
environment variable ``PROMETHEUS_MULTIPROC_DIR`` names a directory the
workers write their values to and a scrape merges them
(``MultiProcessCollector``); it must be set before ``prometheus_client`` is
first imported, which ``yibao serve`` does. The pool gauges are read when
scraped, from the process that answers the scrape.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

CHANNELS = (
    "portal",
    "kiosk",
    "counter",
    "employer",
    "api",
    "his",
    "fhir",
    "ivr",
    "public",
    "ops",
    "other",
)
# longest first: /counter/directory is the counter's, /api/v1/public the public's
_PREFIXES = (
    ("/fsi/api/rsfComIfsService/", "his"),
    ("/api/v1/public/", "public"),
    ("/api/", "api"),
    ("/fhir/", "fhir"),
    ("/ivr/", "ivr"),
    ("/portal", "portal"),
    ("/kiosk", "kiosk"),
    ("/counter", "counter"),
    ("/employer", "employer"),
    ("/public", "public"),
    ("/metrics", "ops"),
    ("/healthz", "ops"),
    ("/readyz", "ops"),
)

# seconds; the HIS answers in milliseconds, a page or a report in a second
_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "yibao_http_requests",
    "HTTP requests answered, by channel, method and status",
    ["channel", "method", "status"],
)
LATENCY = Histogram(
    "yibao_http_request_duration_seconds",
    "Time to answer an HTTP request, by channel",
    ["channel"],
    buckets=_BUCKETS,
)
HIS_REQUESTS = Counter(
    "yibao_his_requests",
    "HIS transactions answered, by infno, by the path that answered (fast: the "
    "PostgreSQL fast path, general: the use cases) and by result (0, or the "
    "refusal's error code)",
    ["infno", "path", "result"],
)
HIS_LATENCY = Histogram(
    "yibao_his_request_duration_seconds",
    "Time to answer a HIS transaction, by infno and path",
    ["infno", "path"],
    buckets=_BUCKETS,
)
SETTLEMENTS = Counter(
    "yibao_settlements",
    "Settlements written (committed), by ledger entry kind and the path that wrote them",
    ["kind", "path"],
)
REFUSALS = Counter(
    "yibao_refusals",
    "HIS transactions refused, by infno and reason (the DomainError code)",
    ["infno", "reason"],
)
LEDGER_ENTRIES = Counter(
    "yibao_ledger_entries",
    "Ledger entries committed, by kind",
    ["kind"],
)
MONEY_MOVED = Counter(
    "yibao_money_moved_fen",
    "Money moved by committed ledger entries, in fen (the sum of an entry's "
    "positive postings), by kind",
    ["kind"],
)
AUDIT_APPENDS = Counter(
    "yibao_audit_appends",
    "Audit entries appended, by chain and action class (the action's first word)",
    ["chain", "action_class"],
)
FAILOVERS = Counter(
    "yibao_database_failovers_seen",
    "Times this process found the database primary changed and reconnected",
)


def channel_of(path: str) -> str:
    for prefix, name in _PREFIXES:
        if path.startswith(prefix):
            return name
    return "other"


# HIS transaction codes are read from the caller's message: a label takes
# one of the known codes, any other value is "other"
_KNOWN_INFNOS: frozenset[str] = frozenset()


def known_infnos(codes: Iterable[str]) -> None:
    global _KNOWN_INFNOS
    _KNOWN_INFNOS = frozenset(codes)


def infno_label(infno: object) -> str:
    return infno if isinstance(infno, str) and infno in _KNOWN_INFNOS else "other"


def his_answered(infno: object, path: str, result: str, seconds: float) -> None:
    """One HIS answer: ``result`` is "0" or the refusal's error code."""
    label = infno_label(infno)
    HIS_REQUESTS.labels(label, path, result).inc()
    HIS_LATENCY.labels(label, path).observe(seconds)
    if result != "0":
        REFUSALS.labels(label, result).inc()


def failover_seen() -> None:
    """Call when a reconnect found a new primary (the HA reconnect code)."""
    FAILOVERS.inc()


def audit_appended(chain: int, action: str, count: int = 1) -> None:
    AUDIT_APPENDS.labels(str(chain), action.split(".", 1)[0]).inc(count)


def ledger_posted(kind: str, fen: int) -> None:
    LEDGER_ENTRIES.labels(kind).inc()
    MONEY_MOVED.labels(kind).inc(fen)


def settled(kind: str, path: str, fen: int) -> None:
    """A settlement written: its ledger entry counted with the others."""
    SETTLEMENTS.labels(kind, path).inc()
    ledger_posted(kind, fen)


# ------------------------------------------------- counted once committed

_PENDING = "yibao.metrics.pending"


def on_commit(session: Session, count: Callable[[], None]) -> None:
    """Count when the session's transaction commits, not if it rolls back:
    a ledger entry is money moved only once it stands."""
    session.info.setdefault(_PENDING, []).append(count)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the transaction goes on
    for count in session.info.pop(_PENDING, ()):
        count()


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    # rolled back, or closed without a commit: nothing of it is counted
    # (after a commit, ``_committed`` took them already)
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


# ------------------------------------------------------------ the scrape


class Pools(Collector):
    """The database pools' use, read when scraped: SQLAlchemy's pool and
    the HIS fast path's asyncpg pools."""

    def __init__(self, sqlalchemy_pool: Any, asyncpg_pools: Callable[[], Iterable[Any]]) -> None:
        self.pool = sqlalchemy_pool
        self.asyncpg_pools = asyncpg_pools

    def collect(self) -> Iterator[Metric]:
        size = GaugeMetricFamily(
            "yibao_db_pool_size", "Connections the pool may hold without overflow", labels=["pool"]
        )
        out = GaugeMetricFamily("yibao_db_pool_checked_out", "Connections in use", labels=["pool"])
        idle = GaugeMetricFamily("yibao_db_pool_idle", "Connections open and idle", labels=["pool"])
        pool = self.pool
        if hasattr(pool, "checkedout"):  # SQLite's and PostgreSQL's QueuePool
            size.add_metric(["sqlalchemy"], float(pool.size()))
            out.add_metric(["sqlalchemy"], float(pool.checkedout()))
            idle.add_metric(["sqlalchemy"], float(pool.checkedin()))
        total = in_use = free = 0
        for p in self.asyncpg_pools():
            total += p.get_size()
            free += p.get_idle_size()
            in_use += p.get_size() - p.get_idle_size()
        size.add_metric(["asyncpg"], float(total))
        out.add_metric(["asyncpg"], float(in_use))
        idle.add_metric(["asyncpg"], float(free))
        yield size
        yield out
        yield idle


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def scrape(pools: Collector | None = None) -> bytes:
    """The text exposition: every worker's values merged in multiprocess
    mode, else this process's; then the pools as this process sees them."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    if pools is not None:
        own = CollectorRegistry()
        own.register(pools)
        text += generate_latest(own)
    return text
