"""Benchmark: the monthly crediting of individual accounts on PostgreSQL.

Builds a data set of N insured persons (default 1,000,000) with one paid
contribution line each for the month, then runs
``contributions.post_month`` while live settlement-shaped debits (an
individual account paying an institution, through the service layer with its
audit) run at a steady rate on other persons' accounts; it reports

- persons posted per second (target: 50,000 or more on 2 cores),
- the live debits' p50/p99 latency idle and during the posting, and the
  p99 ratio during/idle (target: 3 or less),
- pgbench TPC-B tps on the same server, as the reference of the machine's
  speed in this run, and posted persons/s divided by it.

    .venv/bin/python -m bench.contributions_post [--persons 1000000] [--chunk 10000] [--workers 1]
    .venv/bin/python -m bench.contributions_post --dataset 1000000 [--dataset-settlements 20]

With ``--dataset N`` it posts on the kept city-sized data set of N persons
(``bench/dataset.py``: a year of credits and settlements behind every
person) instead of its own build: each run pays and posts the month after
the newest one there, for every person, while the live debits run on
every 50th person of the data set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import re
import statistics
import subprocess
import threading
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path

from sqlalchemy import Engine, text

from bench import dataset
from yibao.clock import CHINA
from yibao.config import Settings
from yibao.domain import ledger as codes
from yibao.domain import ledger_audit
from yibao.domain.actors import Actor
from yibao.domain.audit import AuditKey
from yibao.runtime import Services
from yibao.services import security
from yibao.services.contributions import contributions
from yibao.services.ledger import ledger
from yibao.store import auditlog, migrate
from yibao.store.db import make_engine
from yibao.testing.pgcluster import PgCluster

MONTH = 202611
LIVE_PERSONS = 20_000  # persons with money already, who keep settling meanwhile
LIVE_STRIDE = 50  # spread over the whole population: every 50th person


def build(engine, persons: int, audit_key: AuditKey) -> None:
    """Persons, enrolments and paid lines made set-based inside the server."""
    t0 = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO divisions (code, name, name_en, level, parent_code, service_point) VALUES "
                "('000000','全国','China','nation',NULL,false),"
                "('330000','浙江省','Zhejiang','province','000000',false),"
                "('330500','湖州市','Huzhou','city','330000',false),"
                "('330502','吴兴区','Wuxing','county','330500',false)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO persons (id, certno, account_no, name, gender, birth_date, division_code, phone, status, "
                "created_at, updated_at) SELECT i, '330502' || lpad(i::text, 12, '0'), '3305029' || lpad(i::text, 9, '0'), "
                "'参保人' || i, '1', date '1980-01-01', '330502', '', 'active', :now, :now "
                "FROM generate_series(1, :n) i"
            ),
            {"n": persons, "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO enrolments (id, person_id, insutype, psn_type, area, base, status, start_date, created_at, "
                "updated_at, end_reason) SELECT i, i, '310', 'employee', '330502', 600000, 'active', date '2020-01-01', "
                ":now, :now, '' FROM generate_series(1, :n) i"
            ),
            {"n": persons, "now": now},
        )
        # last month, paid and already posted for the live persons: they have money
        conn.execute(
            text(
                "INSERT INTO contribution_lines (person_id, enrolment_id, area, month, base, employer_amount, "
                "individual_amount, account_credit, status, paid_at, created_at) "
                "SELECT i, i, '330502', :m, 600000, 42000, 12000, 12000, 'paid', :now, :now "
                "FROM generate_series(1, :n) i"
            ),
            {"n": persons, "now": now, "m": MONTH},
        )
        conn.execute(
            text(
                "INSERT INTO contribution_lines (person_id, enrolment_id, area, month, base, employer_amount, "
                "individual_amount, account_credit, status, paid_at, created_at) "
                "SELECT i, i, '330502', :m, 600000, 42000, 12000, 12000, 'paid', :now, :now "
                "FROM generate_series(:s, :n, :s) i"
            ),
            {"n": LIVE_PERSONS * LIVE_STRIDE, "s": LIVE_STRIDE, "now": now, "m": MONTH - 1},
        )
        # an established city: everybody's individual account exists already
        conn.execute(
            text(
                "INSERT INTO ledger_accounts (code, kind, person_id, area, balance, allow_negative, created_at) "
                "SELECT 'IA:' || i, 'individual', i, '330502', 0, false, :now FROM generate_series(1, :n) i"
            ),
            {"n": persons, "now": now},
        )
        total = (persons + LIVE_PERSONS) * 12000
        # the money for the credits arrived with the contributions
        entry = conn.execute(
            text(
                "INSERT INTO ledger_entries (idem_key, kind, memo, at, result) VALUES "
                "('bench-funding', 'contribution', 'bench', :now, '{}') RETURNING id"
            ),
            {"now": now},
        ).scalar_one()
        for code, kind, amount in (
            (codes.BANK, "bank", -total),
            (codes.ia_pending("330502"), "ia_pending", total),
        ):
            acct = conn.execute(
                text(
                    "INSERT INTO ledger_accounts (code, kind, area, balance, allow_negative, created_at) "
                    "VALUES (:c, :k, '330502', :b, :neg, :now) RETURNING id"
                ),
                {"c": code, "k": kind, "b": amount, "neg": kind == "bank", "now": now},
            ).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO ledger_postings (entry_id, account_id, amount, at) VALUES (:e, :a, :amt, :now)"
                ),
                {"e": entry, "a": acct, "amt": amount, "now": now},
            )
        # its audit record, as every ledger entry has (ledger check compares them)
        funding = [(codes.BANK, -total), (codes.ia_pending("330502"), total)]
        record = ledger_audit.entry_record(
            key="bench-funding", kind="contribution", person_id=None, postings=funding
        )
        auditlog.append(conn, [record], now, audit_key)
        for seq in ("persons_id_seq", "enrolments_id_seq"):
            conn.execute(text(f"SELECT setval('{seq}', :n)"), {"n": persons})
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    print(f"data set: {persons:,} persons built in {time.perf_counter() - t0:.1f} s")


class Live:
    """Settlement-shaped debits at a steady rate, with their latencies."""

    def __init__(
        self, services: Services, rate: float, first: int = LIVE_STRIDE, persons: int = LIVE_PERSONS
    ) -> None:
        self.services = services
        # the live persons: first, first + 50, ... (persons of them), all with money
        self.first = first
        self.persons = persons
        self.interval = 1.0 / rate
        self.latencies: list[float] = []
        self.stop = threading.Event()
        self.n = 0
        self.actor = Actor(kind="institution", id="H33050200001", division="330502")

    def one(self) -> None:
        self.n += 1
        pid = self.first + LIVE_STRIDE * ((self.n * 7919) % self.persons)
        t0 = time.perf_counter()
        with self.services.uow() as work:
            ledger.post(
                work,
                key=f"live:{id(self)}:{self.n}",
                kind="settlement",
                person_id=pid,
                legs=[
                    ledger.Leg(codes.individual(pid), -1, "individual", pid),
                    ledger.Leg(codes.institution("H33050200001"), 1, "institution"),
                ],
            )
            work.audit(
                self.actor.record(
                    channel="his", action="settlement", person_id=pid, subject=str(self.n)
                )
            )
            work.commit()
        self.latencies.append(time.perf_counter() - t0)

    def run(self) -> None:
        next_at = time.perf_counter()
        while not self.stop.is_set():
            self.one()
            next_at += self.interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)


def _services(url: str, name: str, *, pool_size: int, audit_key: str = "") -> Services:
    """The services on their own engine, its connections named for pg_stat_activity."""
    return Services.from_settings(
        Settings(database_url=url, secret_key="bench", audit_key=audit_key),
        pool_size=pool_size,
        connect_args={"application_name": name},
    )


def live_process(
    url: str, rate: float, pipe: Connection, audit_key: str, first: int, persons: int
) -> None:
    """The live debits run in a process of their own, as settlements do in
    the server's: in the posting's process they would queue for its GIL."""
    services = _services(url, "live", pool_size=2, audit_key=audit_key)
    live = Live(services, rate, first, persons)
    while (command := pipe.recv()) != "quit":
        if command == "start":
            start = len(live.latencies)
            live.stop.clear()
            runner = threading.Thread(target=live.run)
            runner.start()
        else:  # "stop"
            live.stop.set()
            runner.join()
            pipe.send(live.latencies[start:])
    services.engine.dispose()


class LiveProcess:
    def __init__(
        self,
        url: str,
        rate: float,
        audit_key: str = "",
        first: int = LIVE_STRIDE,
        persons: int = LIVE_PERSONS,
    ) -> None:
        self.pipe, child = multiprocessing.get_context("spawn").Pipe()
        self.process = multiprocessing.get_context("spawn").Process(
            target=live_process, args=(url, rate, child, audit_key, first, persons)
        )
        self.process.start()

    def start(self) -> None:
        self.pipe.send("start")

    def stop(self) -> list[float]:
        self.pipe.send("stop")
        latencies: list[float] = self.pipe.recv()
        return latencies

    def measure(self, seconds: float) -> list[float]:
        self.start()
        time.sleep(seconds)
        return self.stop()

    def close(self) -> None:
        self.pipe.send("quit")
        self.process.join(30)


def next_month_on_dataset(services: Services, persons: int) -> int:
    """The month after the data set's newest, its lines paid for every
    person and its money arrived (through the ledger, audited): what this
    run posts. The data set keeps every month a run posted."""
    engine = services.engine
    with engine.connect() as conn:
        newest = int(conn.execute(text("SELECT max(month) FROM contribution_lines")).scalar_one())
    month = newest + 1 if newest % 100 < 12 else (newest // 100 + 1) * 100 + 1
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO contribution_lines (person_id, enrolment_id, area, month, base, "
                "employer_amount, individual_amount, account_credit, status, paid_at, created_at) "
                "SELECT :b + i, :b + i, :area, :m, 600000, 42000, 12000, :c, 'paid', :now, :now "
                "FROM generate_series(0, :n - 1) i"
            ),
            {
                "b": dataset.BASE_ID,
                "area": dataset.AREA,
                "m": month,
                "c": dataset.CREDIT,
                "now": now,
                "n": persons,
            },
        )
    total = persons * dataset.CREDIT
    with services.uow() as work:
        ledger.post(
            work,
            key=f"bench-funding:{month}",
            kind="contribution",
            person_id=None,
            legs=[
                ledger.Leg(codes.BANK, -total, "bank"),
                ledger.Leg(codes.ia_pending(dataset.AREA), total, "ia_pending", None, dataset.AREA),
            ],
        )
        work.commit()
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("ANALYZE contribution_lines")
        )
    return month


def month_check(engine: Engine, month: int, persons: int) -> tuple[bool, list[str]]:
    """The month's crediting on the data set, set-based: every person's line
    claimed once, the individual accounts' postings of its entries exactly
    the lines' credit, and no individual account below zero."""
    with engine.connect() as conn:
        lines, claimed, credit = conn.execute(
            text(
                "SELECT count(*), count(c.line_id), coalesce(sum(l.account_credit) "
                "FILTER (WHERE c.line_id IS NOT NULL), 0) FROM contribution_lines l "
                "LEFT JOIN ia_credit_claims c ON c.line_id = l.id WHERE l.month = :m"
            ),
            {"m": month},
        ).one()
        posted = conn.execute(
            text(
                "SELECT coalesce(sum(p.amount), 0) FROM ledger_postings p "
                "JOIN ledger_accounts a ON a.id = p.account_id AND a.kind = 'individual' "
                "WHERE p.entry_id IN (SELECT DISTINCT c.entry_id FROM ia_credit_claims c "
                "JOIN contribution_lines l ON l.id = c.line_id WHERE l.month = :m)"
            ),
            {"m": month},
        ).scalar_one()
        negative = conn.execute(
            text("SELECT count(*) FROM ledger_accounts WHERE kind = 'individual' AND balance < 0")
        ).scalar_one()
    problems = []
    if lines != persons or claimed != persons:
        problems.append(f"{lines} lines, {claimed} claimed, for {persons} persons")
    if posted != credit:
        problems.append(f"postings {posted} against the lines' credit {credit}")
    if negative:
        problems.append(f"{negative} individual accounts below zero")
    return not problems, problems


def sample_waits(url: str, done: threading.Event, waits: Counter[tuple[str, str]]) -> None:
    """What the live and the posting connections are doing, every 5 ms:
    on the CPU, waiting for a lock, for the WAL, or for their client."""
    engine = make_engine(url, pool_size=1)
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        while not done.is_set():
            for name, state, kind, event in conn.execute(
                text(
                    "SELECT application_name, state, wait_event_type, wait_event "
                    "FROM pg_stat_activity WHERE application_name IN ('live', 'posting')"
                )
            ):
                if state == "idle":
                    what = "idle"
                elif kind is None:
                    what = "on CPU"
                elif state == "idle in transaction":
                    what = "in transaction, waiting for its client"
                else:
                    what = f"{kind}:{event}"
                waits[(name, what)] += 1
            time.sleep(0.005)
    engine.dispose()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def pgbench(cluster: PgCluster, clients: int, seconds: int) -> float:
    dsn = ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", cluster.user]
    subprocess.run(
        [cluster.bin("pgbench"), "-i", "-q", "-s", "10", *dsn, "postgres"],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        [
            cluster.bin("pgbench"),
            "-c",
            str(clients),
            "-j",
            str(clients),
            "-T",
            str(seconds),
            *dsn,
            "postgres",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1, help="parallel posting connections")
    parser.add_argument("--rate", type=float, default=50.0, help="live debits per second")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--dataset",
        type=int,
        metavar="PERSONS",
        help="post on the kept data set of this many persons (bench/dataset.py)",
    )
    parser.add_argument("--dataset-settlements", type=int, default=20)
    parser.add_argument("--dataset-seed", type=int, default=1)
    dataset.add_pg_setting_argument(parser)
    args = parser.parse_args()
    security.configure("fast")
    # a production-like server for bulk work: checkpoints far apart
    settings = {
        "max_wal_size": "8GB",
        "min_wal_size": "2GB",
        "checkpoint_timeout": "30min",
        "wal_compression": "on",
        **dataset.pg_settings(args.pg_setting),
    }
    audit_key, first, live_persons = "", LIVE_STRIDE, LIVE_PERSONS
    cluster: PgCluster
    if args.dataset:
        params = dataset.Params(args.dataset, args.dataset_settlements, args.dataset_seed)
        cluster = dataset.KeptCluster(
            durable=True,
            settings={**dataset.DEFAULT_SETTINGS, **settings},
            keep=dataset.build(params),
        )
        audit_key, first = dataset.audit_key_text(params), dataset.BASE_ID
        # every 50th person of the data set, as of the million of the own build
        live_persons = max(1, args.dataset // LIVE_STRIDE)
    else:
        cluster = PgCluster(durable=True, settings=settings)
    with cluster:
        month = MONTH
        if args.dataset:
            url = cluster.url(dataset.DATABASE)
            services = _services(url, "posting", pool_size=4, audit_key=audit_key)
            engine = services.engine
            month = next_month_on_dataset(services, args.dataset)
            print(f"data set of {args.dataset:,} persons: posting month {month}")
        else:
            url = cluster.create_database("bench")
            migrate.upgrade(url)
            services = _services(url, "posting", pool_size=4)
            engine = services.engine
            build(engine, args.persons, services.backend.audit_key)
            warm = contributions.post_month(
                engine, month=MONTH - 1, now=dt.datetime.now(CHINA), backend=services.backend
            )
            print(f"live persons funded: {warm.persons:,}")
        with engine.connect() as conn:
            # a server that has been running: WAL segments to recycle, not to create
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("CHECKPOINT"))
        live = LiveProcess(url, args.rate, audit_key, first, live_persons)
        live.measure(2.0)  # warm up
        idle = live.measure(args.idle_seconds)
        done = threading.Event()
        waits: Counter[tuple[str, str]] = Counter()
        sampler = threading.Thread(target=sample_waits, args=(url, done, waits))
        sampler.start()
        live.start()
        t0 = time.perf_counter()
        result = contributions.post_month(
            engine,
            month=month,
            now=dt.datetime.now(CHINA),
            chunk_size=args.chunk,
            workers=args.workers,
            backend=services.backend,
        )
        seconds = time.perf_counter() - t0
        done.set()
        during = live.stop()
        live.close()
        sampler.join()
        again = contributions.post_month(
            engine, month=month, now=dt.datetime.now(CHINA), backend=services.backend
        )
        if args.dataset:
            # the whole ledger check reads every entry and audit record of
            # the data set (tens of millions: ``bench.dataset --check``);
            # here, this month's crediting set-based
            checked, problems = month_check(engine, month, args.dataset)
        else:
            with services.session_factory() as session:
                ledger.repeatable_read(session)
                check = ledger.check(session)
            checked, problems = check.ok, check.problems[:5]
        tps = pgbench(cluster, clients=2, seconds=15)
        engine.dispose()
    rate = result.persons / seconds
    figures = {
        "persons": result.persons,
        "seconds": round(seconds, 2),
        "persons_per_second": round(rate),
        "chunk": args.chunk,
        "workers": args.workers,
        "second_run_posted": again.persons,
        "ledger_check_ok": checked,
        "ledger_check": "the month's credit" if args.dataset else "ledger check",
        "ledger_problems": problems,
        "live_idle_p50_ms": round(statistics.median(idle) * 1000, 2),
        "live_idle_p99_ms": round(pct(idle, 0.99), 2),
        "live_during_p50_ms": round(statistics.median(during) * 1000, 2),
        "live_during_p99_ms": round(pct(during, 0.99), 2),
        "live_during_samples": len(during),
        "p99_ratio_during_over_idle": round(pct(during, 0.99) / pct(idle, 0.99), 2),
        "pgbench_tps_2_clients": round(tps),
        "persons_per_second_over_pgbench_tps": round(rate / tps, 2),
    }
    print(json.dumps(figures, indent=2))
    for who in ("live", "posting"):
        total = sum(n for (w, _), n in waits.items() if w == who) or 1
        top = sorted(((n, what) for (w, what), n in waits.items() if w == who), reverse=True)
        print(
            f"{who} connections during the posting, share of samples: "
            + ", ".join(f"{what} {n / total:.0%}" for n, what in top[:8])
        )
    print(
        f"posted {result.persons:,} persons in {seconds:.1f} s: {rate:,.0f} persons/s (target >= 50,000); "
        f"live p99 {figures['live_idle_p99_ms']} ms idle, {figures['live_during_p99_ms']} ms during: "
        f"ratio {figures['p99_ratio_during_over_idle']} (target <= 3)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
