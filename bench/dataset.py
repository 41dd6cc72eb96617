"""A city-sized data set for the benchmarks, built once and kept.

    .venv/bin/python -m bench.dataset [--persons 1000000] [--settlements 20] [--seed 1] [--drop]

N persons (default 1,000,000) in Huzhou's Wuxing district, each with one
card, an employee enrolment and an individual account; twelve months of
paid contribution lines, credited by the real monthly credit
(``contributions.post_month``: its ledger entries, postings, claims and
audit records); and about S settlements per person (default 20) spread
over the year at the demo's three hospitals: the visit, its fee detail,
the request key, the settlement, its ledger entry with two postings, the
year's usage row, and the three audit entries a real 1101 + 2207 leaves
(the read, the ledger entry's record, the settlement).

Rows are made set-based inside the server (``INSERT ... SELECT`` over
``generate_series``, as ``bench.contributions_post`` does) except the audit
entries: their keyed hash chain is computed here, as ``store/auditlog.py``
computes it (``AuditKey.link`` over each chain's previous hash), and
streamed with COPY; the chain heads are then moved to the last entry. So
``yibao ledger check`` and ``yibao audit verify`` pass on the data set.

The cluster's data directory is kept under
``var/bench/dataset-<key>/`` where ``key`` is a hash of the parameters, the
migration head and this module's format version; a benchmark that asks
for the same parameters starts that cluster again instead of building.
Drop it with ``--drop`` (or ``rm -rf var/bench/dataset-<key>``). The
benchmarks' own writes keep it consistent (fresh visits per run, a new
month per crediting run): the data set grows a little with each run but
``ledger check`` and ``audit verify`` still pass on it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from yibao import demo as demo_service
from yibao.clock import CHINA
from yibao.config import Settings
from yibao.domain import ledger as codes
from yibao.domain import ledger_audit
from yibao.domain.actors import Actor
from yibao.domain.audit import CHAINS, AuditKey, AuditRecord
from yibao.runtime import Services
from yibao.services.contributions import contributions
from yibao.services.ledger import ledger
from yibao.store import migrate
from yibao.testing.pgcluster import PgCluster, free_port

ROOT = Path(__file__).resolve().parent.parent
KEPT = ROOT / "var" / "bench"
# bump when the shape of the data set changes: a kept one is then rebuilt
FORMAT = 1
BASE_ID = 10_000_000  # persons, cards, enrolments and their accounts: above the demo's
AREA = "330502"
DIVISION = "330502001"
CREDIT = 120_00  # a month's individual account credit, fen
HOSPITALS = 3  # the demo's first three institutions are hospitals
DATABASE = "yibao"


@dataclass(frozen=True)
class Params:
    persons: int = 1_000_000
    settlements: int = 20  # per person, over the year
    seed: int = 1


def reuse_key(params: Params) -> str:
    """What a kept data set is found by: its parameters, the schema it was
    migrated to, and the format of this module."""
    heads = ",".join(sorted(migrate.heads()))
    text_ = f"{params.persons}:{params.settlements}:{params.seed}:{heads}:{FORMAT}"
    return hashlib.sha256(text_.encode()).hexdigest()[:16]


def folder(params: Params, root: Path = KEPT) -> Path:
    return root / f"dataset-{reuse_key(params)}"


def audit_key_text(params: Params) -> str:
    """The data set's audit key: fixed by the seed, so that a kept data set
    and the server started on it agree (a benchmark's key, not a secret)."""
    return hashlib.sha256(f"yibao bench data set {params.seed}".encode()).hexdigest()


def card_no(i: int) -> str:
    return f"D{i:09d}"


def person_id(i: int) -> int:
    return BASE_ID + i


@dataclass
class Shape:
    """Where the year's settlements fall and what each is worth."""

    params: Params
    year: int
    start: dt.datetime  # the first settlement's earliest time (UTC)
    span: int  # seconds the settlements are spread over
    amount: int  # fen per settlement: the deductible's share, all from the account
    months: list[int] = field(default_factory=list)

    @property
    def n(self) -> int:
        return self.params.persons * self.params.settlements

    def offset(self, j: int) -> int:
        """Settlement j's second after ``start``: round k = j // P of person
        i = j % P, at a per-person fraction of the round (integer
        arithmetic, so that SQL computes the same, ``OFFSET_SQL``)."""
        p, s = self.params.persons, self.params.settlements
        i, k = j % p, j // p
        frac = (i * 7919 + self.params.seed * 104729) % 1000
        return ((k * 1000 + frac) * self.span) // (s * 1000)


# the same as Shape.offset, in SQL, of j (a bigint) with :p, :s, :seed, :span bound
OFFSET_SQL = "(((j / :p) * 1000 + ((j % :p) * 7919 + :seed * 104729) % 1000) * :span) / (:s * 1000)"


def shape_for(params: Params, now: dt.datetime, deductible: int) -> Shape:
    local = now.astimezone(CHINA)
    year_start = dt.datetime(local.year, 1, 1, 8, tzinfo=CHINA).astimezone(dt.UTC)
    day_before = (local - dt.timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
    span = max(int((day_before.astimezone(dt.UTC) - year_start).total_seconds()), 3600)
    # twelve months credited, the last one the month before this one
    months = []
    y, m = local.year, local.month
    for _ in range(12):
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
        months.append(y * 100 + m)
    months.reverse()
    # all within the year's deductible: each paid from the account whole
    amount = max(1, min(30_00, deductible // max(params.settlements, 1)))
    return Shape(params, local.year, year_start, span, amount, months)


def _services(url: str, params: Params, **kw: Any) -> Services:
    settings = Settings(
        database_url=url,
        secret_key="bench",
        audit_key=audit_key_text(params),
        argon2_profile="fast",
    )
    return Services.from_settings(settings, **kw)


def _deductible(engine: Engine, year: int) -> int:
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT deductible FROM benefit_policies WHERE insutype = '310' "
                "AND area IN ('330502', '330500', '330000') ORDER BY year = :y DESC, "
                "length(area) DESC, year DESC LIMIT 1"
            ),
            {"y": year},
        ).scalar()
    return int(found) if found is not None else 300_00


def populate(
    url: str, params: Params, *, now: dt.datetime | None = None, jobs: int = 1
) -> dict[str, float]:
    """Build the data set into the migrated, empty database at ``url``;
    the seconds each part took. ``jobs`` processes compute the audit chains."""
    now = now or dt.datetime.now(dt.UTC)
    times: dict[str, float] = {}
    services = _services(url, params)
    engine = services.engine
    t0 = time.perf_counter()
    demo_service.load(services, credit=False)
    shape = shape_for(params, now, _deductible(engine, now.astimezone(CHINA).year))
    insts = demo_service.fixtures()["institutions"][:HOSPITALS]
    times["demo"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _persons(engine, params, now, shape)
    times["persons"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _fund(services, params, shape)
    for month in shape.months:
        contributions.post_month(
            engine, month=month, now=now, workers=max(1, min(jobs, 2)), backend=services.backend
        )
    times["credits"] = time.perf_counter() - t0
    # the settlements' rows (one backend) and their audit chains (a process
    # per core, computed from the same shape) are independent: side by side
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as side:
        rows = side.submit(_settlements, engine, params, shape, insts, now)
        _audit(engine, params, shape, insts, jobs)
        times["audit"] = time.perf_counter() - t0
        rows.result()
    times["settlements and audit"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("persons", "cards", "enrolments", "ledger_accounts", "ledger_entries",
                      "ledger_postings", "visits", "fee_details", "settlements",
                      "request_keys", "audit_log", "contribution_lines"):  # fmt: skip
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )
        conn.execute(text("VACUUM ANALYZE"))
    times["vacuum"] = time.perf_counter() - t0
    services.close()
    return times


def _persons(engine: Engine, params: Params, now: dt.datetime, shape: Shape) -> None:
    """Persons, cards, enrolments, accounts and a year of paid lines, set-based."""
    args = {"n": params.persons, "b": BASE_ID, "now": now, "area": AREA, "div": DIVISION}
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        conn.execute(
            text(
                "INSERT INTO persons (id, certno, account_no, name, gender, birth_date, "
                "division_code, phone, status, created_at, updated_at) "
                "SELECT :b + i, '3305029' || lpad(i::text, 11, '0'), '8' || lpad(i::text, 15, '0'), "
                "'参保人' || i, (1 + i % 2)::text, date '1950-01-01' + (i % 18000), :div, '', "
                "'active', :now, :now FROM generate_series(0, :n - 1) i"
            ),
            args,
        )
        conn.execute(
            text(
                "INSERT INTO cards (id, card_no, person_id, kind, status, location, issued_at, "
                "created_at, updated_at) SELECT :b + i, 'D' || lpad(i::text, 9, '0'), :b + i, "
                "'social_security', 'issued', 'holder', :now, :now, :now "
                "FROM generate_series(0, :n - 1) i"
            ),
            args,
        )
        conn.execute(
            text(
                "INSERT INTO enrolments (id, person_id, insutype, psn_type, area, base, status, "
                "start_date, created_at, updated_at, end_reason) SELECT :b + i, :b + i, '310', "
                "'employee', :area, 600000, 'active', date '2020-01-01', :now, :now, '' "
                "FROM generate_series(0, :n - 1) i"
            ),
            args,
        )
        conn.execute(
            text(
                "INSERT INTO ledger_accounts (id, code, kind, person_id, area, balance, "
                "allow_negative, created_at) SELECT :b + i, 'IA:' || (:b + i), 'individual', "
                ":b + i, :area, 0, false, :now FROM generate_series(0, :n - 1) i"
            ),
            args,
        )
        for month in shape.months:
            conn.execute(
                text(
                    "INSERT INTO contribution_lines (person_id, enrolment_id, area, month, base, "
                    "employer_amount, individual_amount, account_credit, status, paid_at, "
                    "created_at) SELECT :b + i, :b + i, :area, :m, 600000, 42000, 12000, :c, "
                    "'paid', :now, :now FROM generate_series(0, :n - 1) i"
                ),
                {**args, "m": month, "c": CREDIT},
            )


def _fund(services: Services, params: Params, shape: Shape) -> None:
    """The year's credits arrived with the contributions: the bank to the
    area's pending account, through the ledger (its audit record with it)."""
    total = params.persons * CREDIT * len(shape.months)
    with services.uow() as work:
        ledger.post(
            work,
            key=f"dataset-funding:{params.seed}",
            kind="contribution",
            person_id=None,
            legs=[
                ledger.Leg(codes.BANK, -total, "bank"),
                ledger.Leg(codes.ia_pending(AREA), total, "ia_pending", None, AREA),
            ],
        )
        work.commit()


def _settlements(
    engine: Engine, params: Params, shape: Shape, insts: list[dict[str, Any]], now: dt.datetime
) -> None:
    """The year's settlements and what each wrote, set-based; settlement j
    is person j % P's (j // P)-th, its ids ``base + j`` in each table."""
    codes_ = [i["code"] for i in insts]
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        # the institutions' sub-accounts, as a first settlement makes them
        conn.execute(
            text(
                "INSERT INTO ledger_accounts (code, kind, person_id, area, balance, allow_negative, "
                "created_at) SELECT 'INST:' || c || ':' || s, 'institution', NULL, '', 0, true, :now "
                "FROM unnest(CAST(:codes AS text[])) c, generate_series(0, :shards - 1) s "
                "ON CONFLICT (code) DO NOTHING"
            ),
            {"codes": codes_, "shards": codes.FUND_SHARDS, "now": now},
        )
        base = {
            t: int(conn.execute(text(f"SELECT coalesce(max(id), 0) + 1 FROM {t}")).scalar_one())
            for t in ("visits", "settlements", "ledger_entries")
        }
        args = {
            "p": params.persons,
            "s": params.settlements,
            "seed": params.seed,
            "span": shape.span,
            "nn": shape.n,
            "t0": shape.start,
            "b": BASE_ID,
            "a": shape.amount,
            "codes": codes_,
            "h": len(codes_),
            "vb": base["visits"],
            "sb": base["settlements"],
            "eb": base["ledger_entries"],
            "year": shape.year,
            "now": now,
        }
        # one row per settlement j: who, where, when (the audit pass reads the same)
        conn.execute(
            text(
                "CREATE TEMP TABLE hist ON COMMIT DROP AS SELECT j, :b + j % :p AS pid, "
                "(CAST(:codes AS text[]))[1 + (j % :p) % :h] AS inst, "
                f"CAST(:t0 AS timestamptz) + make_interval(secs => {OFFSET_SQL}) AS at "
                "FROM generate_series(CAST(0 AS bigint), :nn - 1) j"
            ),
            args,
        )
        statements = [
            "INSERT INTO visits (id, mdtrt_id, person_id, institution_code, insutype, med_type, "
            "begntime, ipt_otp_no, dept_name, dr_name, diagnoses, status, cash_fallback, created_at) "
            "SELECT :vb + j, 'HV' || (:vb + j), pid, inst, '310', '11', at - interval '30 minutes', "
            "'', '', '', '[]', 'settled', false, at - interval '30 minutes' FROM hist",
            "INSERT INTO fee_details (visit_id, person_id, feedetl_sn, chrg_bchno, list_code, cnt, "
            "pric, amount, category, selfpay_bp, status, created_at) SELECT :vb + j, pid, '1', '', "
            "'250101001', '1', :a, :a, 'A', 0, 'active', at - interval '20 minutes' FROM hist",
            "INSERT INTO ledger_entries (id, idem_key, kind, person_id, memo, at, result) "
            "SELECT :eb + j, 'his:' || inst || '\\:HM' || j, 'settlement', pid, "
            "inst || ' HV' || (:vb + j), at, '{}' FROM hist",
            "INSERT INTO ledger_postings (entry_id, account_id, person_id, amount, at) "
            "SELECT :eb + j, pid, pid, -:a, at FROM hist",
            "INSERT INTO ledger_postings (entry_id, account_id, person_id, amount, at) "
            "SELECT :eb + h.j, acc.id, NULL, :a, h.at FROM hist h JOIN ledger_accounts acc "
            "ON acc.code = 'INST:' || h.inst || ':' || (h.pid % 16)",
            "INSERT INTO request_keys (scope, key, fingerprint, output, at) "
            "SELECT 'his:' || inst, 'HM' || j, '2207:' || md5(j::text), '{}', at FROM hist",
            "INSERT INTO settlements (id, setl_id, person_id, institution_code, visit_id, mdtrt_id, "
            "msgid, kind, insutype, psn_type, med_type, year, setl_time, medfee_sumamt, "
            "fulamt_ownpay_amt, preselfpay_amt, inscp_scp_amt, act_pay_dedc, hifp_pay, "
            "fund_pay_sumamt, psn_part_amt, acct_pay, psn_cash_pay, balc, refund_owed, entry_id, "
            "status) SELECT :sb + j, 'HS' || j, pid, inst, :vb + j, 'HV' || (:vb + j), "
            "'HM' || j, 'settlement', '310', 'employee', '11', :year, at, :a, 0, 0, :a, :a, 0, 0, "
            ":a, :a, 0, 0, 0, :eb + j, 'settled' FROM hist",
            "INSERT INTO benefit_usage (person_id, insutype, year, deductible_used, fund_used) "
            "SELECT :b + i, '310', :year, :a * :s, 0 FROM generate_series(0, :p - 1) i",
            # the balances as the postings say (the credits are already in)
            "UPDATE ledger_accounts acc SET balance = acc.balance + t.total FROM "
            "(SELECT account_id, sum(amount) AS total FROM ledger_postings "
            "WHERE entry_id BETWEEN :eb AND :eb + :nn - 1 GROUP BY account_id) t "
            "WHERE acc.id = t.account_id",
        ]
        for sql in statements:
            conn.execute(text(sql), args)


def _audit_rows(
    key: AuditKey,
    params: Params,
    shape: Shape,
    insts: list[dict[str, Any]],
    heads: dict[int, tuple[int, str]],
) -> Iterator[str]:
    """COPY lines of the settlements' audit entries, chained on from
    ``heads`` (chain -> seq, hash), which they move along."""
    actors = [Actor(kind="institution", id=i["code"], division=i["division"]) for i in insts]
    p = params.persons
    for j in range(shape.n):
        i = j % p
        pid = person_id(i)
        chain = pid % CHAINS
        if chain not in heads:  # another process's
            continue
        actor = actors[i % len(actors)]
        code = actor.id
        at = shape.start + dt.timedelta(seconds=shape.offset(j))
        postings = [
            (codes.individual(pid), -shape.amount),
            (codes.institution_share(code, pid), shape.amount),
        ]
        records = (
            actor.record(
                channel="his", action="his.person_info", person_id=pid, subject=card_no(i)
            ),
            ledger_audit.entry_record(
                key=f"his:{code}:HM{j}", kind="settlement", person_id=pid, postings=postings
            ),
            actor.record(channel="his", action="his.settlement", person_id=pid, subject=f"HS{j}"),
        )
        seq, prev = heads[chain]
        stamp = at.isoformat()
        for record in records:
            seq += 1
            digest = key.link(record, at, prev_hash=prev, chain=chain, seq=seq)
            yield _line(chain, seq, stamp, record, prev, digest)
            prev = digest
        heads[chain] = (seq, prev)


def _line(chain: int, seq: int, stamp: str, r: AuditRecord, prev: str, digest: str) -> str:
    detail = json.dumps(r.detail, ensure_ascii=False).replace("\\", "\\\\")
    person = "\\N" if r.person_id is None else str(r.person_id)
    return (
        f"{chain}\t{seq}\t{stamp}\t{r.actor_kind}\t{r.actor_id}\t{r.actor_division}\t"
        f"{r.channel}\t{r.action}\t{person}\t{r.subject}\t{detail}\t{prev}\t{digest}\n"
    )


def _audit(
    engine: Engine, params: Params, shape: Shape, insts: list[dict[str, Any]], jobs: int
) -> None:
    """The settlements' audit entries by COPY, the chains shared among
    ``jobs`` processes (each chain is written by one, in order), then the
    chain heads."""
    with engine.connect() as conn:
        # the heads as the monthly credit and the demo left them
        heads = {c: (0, "0" * 64) for c in range(CHAINS)}
        heads.update(
            {
                int(c): (int(s), str(h))
                for c, s, h in conn.execute(text("SELECT chain, seq, hash FROM audit_chain_heads"))
            }
        )
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    parts = [{c: heads[c] for c in range(CHAINS) if c % jobs == r} for r in range(jobs)]
    args = [(dsn, params, shape, insts, part) for part in parts]
    if jobs <= 1:
        done = [_audit_part(*a) for a in args]
    else:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=spawn) as pool:
            done = list(pool.map(_audit_part, *zip(*args, strict=True)))
    with engine.begin() as conn:
        for part in done:
            for chain, (seq, digest) in part.items():
                conn.execute(
                    text(
                        "INSERT INTO audit_chain_heads (chain, seq, hash) VALUES (:c, :s, :h) "
                        "ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash"
                    ),
                    {"c": chain, "s": seq, "h": digest},
                )


def _audit_part(
    dsn: str,
    params: Params,
    shape: Shape,
    insts: list[dict[str, Any]],
    heads: dict[int, tuple[int, str]],
) -> dict[int, tuple[int, str]]:
    """One process's chains: their entries by COPY, committed; their new heads."""
    import psycopg

    key = AuditKey(audit_key_text(params).encode())
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
        buf = io.StringIO()
        with cur.copy(
            "COPY audit_log (chain, seq, at, actor_kind, actor_id, actor_division, channel, "
            "action, person_id, subject, detail, prev_hash, hash) FROM STDIN"
        ) as copy:
            for n, line in enumerate(_audit_rows(key, params, shape, insts, heads)):
                buf.write(line)
                if n % 20_000 == 19_999:
                    copy.write(buf.getvalue())
                    buf = io.StringIO()
            copy.write(buf.getvalue())
        conn.commit()
    return heads


# ------------------------------------------------------------ the kept cluster

# how the data set's server is built: checkpoints far apart for the bulk load
BUILD_SETTINGS = {
    "max_wal_size": "4GB",
    "min_wal_size": "1GB",
    "checkpoint_timeout": "30min",
    "wal_compression": "off",
    # a build that does not finish is thrown away (no READY), so the bulk
    # load need not survive a crash: no fsync, no full-page images; the
    # finished build is shut down cleanly and synced (``build``)
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "shared_buffers": "2GB",
    "maintenance_work_mem": "1GB",
}
# PgCluster's defaults, for a benchmark that wants the 3,000-person run's server
# (durable: the build's fsync and full-page settings are undone)
DEFAULT_SETTINGS = {
    "fsync": "on",
    "full_page_writes": "on",
    "synchronous_commit": "on",
    "shared_buffers": "256MB",
    "maintenance_work_mem": "64MB",
    "max_wal_size": "1GB",
    "min_wal_size": "80MB",
    "checkpoint_timeout": "5min",
    "wal_compression": "off",
}


def add_pg_setting_argument(parser: argparse.ArgumentParser) -> None:
    """A benchmark's ``--pg-setting NAME=VALUE`` (read by ``pg_settings``)."""
    parser.add_argument(
        "--pg-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the benchmark's PostgreSQL (repeatable), e.g. shared_buffers=6GB",
    )


def pg_settings(given: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` settings from a benchmark's command line."""
    found = {}
    for item in given:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"--pg-setting {item!r}: expected NAME=VALUE")
        found[name.strip()] = value.strip()
    return found


@dataclass
class KeptCluster(PgCluster):
    """A PgCluster on a kept data directory: started again, never removed."""

    keep: Path = Path()

    def start(self) -> KeptCluster:
        data = self.keep / "data"
        if not (data / "PG_VERSION").exists():
            raise RuntimeError(f"no data set in {self.keep}")
        if os.geteuid() == 0:
            self._as_user = [shutil.which("runuser") or "runuser", "-u", "postgres", "--"]
        self.root = self.keep
        self.port = free_port()
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.keep}",
                *(f"-c {k}={v}" for k, v in self.settings.items()),
            ]
        )
        result = self._run(
            str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.keep / "log"),
            "-o", options, "-w", "-t", "120", "start", check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"the kept PostgreSQL did not start: {result.stderr}")
        return self

    def stop(self) -> None:
        if self.root is None:
            return
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.keep / "data"), "-m", "fast", "-w",
            "-t", "300", "stop", check=False,
        )  # fmt: skip
        self.root = None


def build(params: Params, root: Path = KEPT, *, now: dt.datetime | None = None) -> Path:
    """The kept data set of these parameters, built now if there is none
    (``now``: the build's clock, the real one unless given)."""
    where = folder(params, root)
    if (where / "READY").exists():
        return where
    if where.exists():  # a build that did not finish
        shutil.rmtree(where)
    t0 = time.perf_counter()
    cluster = PgCluster(durable=True, settings=BUILD_SETTINGS).start()
    try:
        url = cluster.create_database(DATABASE)
        migrate.upgrade(url)
        times = populate(url, params, now=now, jobs=os.cpu_count() or 1)
        with cluster_engine(url) as engine, engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            # the build's WAL (up to max_wal_size) is not kept: checkpoints
            # with a small max_wal_size remove the segments beyond it
            conn.execute(text("ALTER SYSTEM SET max_wal_size = '1GB'"))
            conn.execute(text("ALTER SYSTEM SET min_wal_size = '80MB'"))
            conn.execute(text("SELECT pg_reload_conf()"))
            time.sleep(1)  # the checkpointer reads the new settings on its signal
            for _ in range(2):
                conn.execute(text("SELECT pg_switch_wal()"))
                conn.execute(text("CHECKPOINT"))
            conn.execute(text("ALTER SYSTEM RESET ALL"))
        assert cluster.root is not None
        cluster._run(
            cluster.bin("pg_ctl"), "-D", str(cluster.root / "data"), "-m", "fast", "-w", "stop"
        )
        where.mkdir(parents=True, exist_ok=True)
        # the kept server is durable whoever starts it: the build's settings undone
        with (cluster.root / "data" / "postgresql.conf").open("a") as conf:
            conf.write("".join(f"{k} = '{v}'\n" for k, v in DEFAULT_SETTINGS.items()))
        shutil.move(str(cluster.root / "data"), str(where / "data"))
        os.sync()  # the build ran without fsync: on disk before it is called ready
        if os.geteuid() == 0:
            shutil.chown(where, "postgres", "postgres")
            where.chmod(0o700)
    finally:
        cluster.stop()
    seconds = time.perf_counter() - t0
    info = {
        "params": params.__dict__,
        "key": reuse_key(params),
        "heads": migrate.heads(),
        "built_at": dt.datetime.now(dt.UTC).isoformat(),
        "build_seconds": round(seconds, 1),
        "parts_seconds": {k: round(v, 1) for k, v in times.items()},
        "settlements": params.persons * params.settlements,
    }
    (where / "dataset.json").write_text(json.dumps(info, indent=2))
    (where / "READY").write_text("")
    print(
        f"data set {where.name}: {params.persons:,} persons, {params.settlements} settlements each, "
        f"built in {seconds:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in times.items())})"
    )
    return where


@contextmanager
def cluster_engine(url: str) -> Iterator[Engine]:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def running(
    params: Params, settings: dict[str, str] | None = None, root: Path = KEPT
) -> Iterator[tuple[KeptCluster, str]]:
    """The kept data set's server, built first if need be: (cluster, url)."""
    where = build(params, root)
    cluster = KeptCluster(durable=True, settings=settings or DEFAULT_SETTINGS, keep=where)
    cluster.start()
    try:
        yield cluster, cluster.url(DATABASE)
    finally:
        cluster.stop()


def next_run(where: Path) -> int:
    """This benchmark run's number on the kept data set (0, 1, ...)."""
    counter = where / "runs"
    n = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(n + 1))
    return n


def fresh_visits(url: str, params: Params, count: int, run: int) -> list[dict[str, Any]]:
    """``count`` persons of the data set, spread over it and others than
    the previous runs' (as long as there are), each with a fresh visit and
    its fee detail registered now: the settlement benchmark's work."""
    from sqlalchemy import create_engine

    insts = demo_service.fixtures()["institutions"][:HOSPITALS]
    p = params.persons
    stride = max(1, p // max(count, 1))
    # each run its own persons (run r takes offset r of each stride) until they wrap
    chosen = [(run % stride + k * stride) % p for k in range(count)]
    now = dt.datetime.now(dt.UTC)
    begn = now - dt.timedelta(minutes=30)
    engine = create_engine(url)
    work = []
    with engine.begin() as conn:
        base = int(conn.execute(text("SELECT coalesce(max(id), 0) + 1 FROM visits")).scalar_one())
        rows = []
        for k, i in enumerate(chosen):
            inst = insts[i % HOSPITALS]["code"]
            rows.append((base + k, f"RUN{run}V{base + k}", person_id(i), inst))
            work.append(
                {
                    "card_no": card_no(i),
                    "psn_no": str(person_id(i)),
                    "mdtrt_id": f"RUN{run}V{base + k}",
                    "inst": inst,
                }
            )
        conn.execute(
            text(
                "INSERT INTO visits (id, mdtrt_id, person_id, institution_code, insutype, med_type, "
                "begntime, ipt_otp_no, dept_name, dr_name, diagnoses, status, cash_fallback, "
                "created_at) SELECT v.id, v.m, v.p, v.i, '310', '11', :begn, '', '', '', '[]', "
                "'registered', false, :now FROM unnest(CAST(:ids AS bigint[]), CAST(:ms AS text[]), "
                "CAST(:ps AS bigint[]), CAST(:is AS text[])) AS v(id, m, p, i)"
            ),
            {
                "ids": [r[0] for r in rows],
                "ms": [r[1] for r in rows],
                "ps": [r[2] for r in rows],
                "is": [r[3] for r in rows],
                "begn": begn,
                "now": now,
            },
        )
        conn.execute(
            text(
                "INSERT INTO fee_details (visit_id, person_id, feedetl_sn, chrg_bchno, list_code, "
                "cnt, pric, amount, category, selfpay_bp, status, created_at) SELECT v.id, v.person_id, "
                "'1', '', '250101001', '1', 48000, 48000, 'A', 0, 'active', :now FROM visits v "
                "WHERE v.id >= :b AND v.id < :e"
            ),
            {"b": base, "e": base + count, "now": now},
        )
        conn.execute(
            text("SELECT setval(pg_get_serial_sequence('visits', 'id'), :m)"),
            {"m": base + count - 1},
        )
    engine.dispose()
    return work


def check(params: Params) -> bool:
    """``yibao ledger check`` and ``yibao audit verify`` on the kept data
    set, as it is after the benchmarks' runs."""
    from yibao.services.access import audit

    with running(params) as (_, url):
        services = _services(url, params)
        t0 = time.perf_counter()
        checked = ledger.verify(services.uow())
        t1 = time.perf_counter()
        verified = audit.verify(services.uow())
        t2 = time.perf_counter()
        services.close()
    print(
        f"ledger check: {'ok' if checked.ok else checked.problems[:5]} "
        f"({checked.accounts:,} accounts, {checked.entries:,} entries, {t1 - t0:.0f} s); "
        f"audit verify: {'ok' if verified.ok else verified.problems[:5]} "
        f"({verified.entries:,} entries, {t2 - t1:.0f} s)"
    )
    return checked.ok and verified.ok


def drop(params: Params) -> None:
    where = folder(params)
    if where.exists():
        shutil.rmtree(where)
        print(f"dropped {where}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--settlements", type=int, default=20, help="per person over the year")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--drop", action="store_true", help="remove the kept data set instead")
    parser.add_argument(
        "--check", action="store_true", help="run ledger check and audit verify on it (slow)"
    )
    args = parser.parse_args()
    params = Params(args.persons, args.settlements, args.seed)
    if args.drop:
        drop(params)
        return
    if args.check:
        raise SystemExit(0 if check(params) else 1)
    where = build(params)
    info = json.loads((where / "dataset.json").read_text())
    size = subprocess.run(["du", "-sh", str(where)], capture_output=True, text=True).stdout.split()[
        0
    ]
    print(json.dumps({**info, "folder": str(where), "size": size}, indent=2))


if __name__ == "__main__":
    main()
