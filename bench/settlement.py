"""Settlement throughput over the HIS interface, against pgbench on the same server.

    .venv/bin/python -m bench.settlement [--persons 3000] [--clients 8] [--workers 2]
    .venv/bin/python -m bench.settlement --dataset 1000000 [--dataset-settlements 20]

With ``--dataset N`` it runs on the kept city-sized data set of N persons
(``bench/dataset.py``, built first if there is none: a year of credits and
settlements behind every person) instead of a fresh database: the clients
settle fresh visits registered for a few thousand of its persons, others
at each run, on a server with the same settings as the fresh run's.

Starts a throw-away, durable PostgreSQL cluster, migrates it, loads the demo
city plus N persons (each with an active card, a balance and one registered
visit with its fee details), starts ``yibao serve`` on it, warms it up
(``--warmup`` settlements, then ANALYZE), and runs the clients: each signs
in, then for each of its persons does 1101 (read the card) and 2207
(settle). It prints settlements per second and p50/p99 latency, a second
run paced at 70 % of that peak, pgbench's TPC-B-like tps with the same
client count on the same server, the ratio, the CPU per settlement of the
server, PostgreSQL and the clients against the CPU per pgbench transaction
(and so the ceiling each part alone puts on the ratio), and a profile of one
settlement in-process (SQL statements per settlement and the functions where
the time goes).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import http.client
import io
import json
import os
import pstats
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text

from bench import dataset
from yibao import demo as demo_service
from yibao.clock import CHINA
from yibao.config import Settings
from yibao.runtime import Services
from yibao.store import migrate
from yibao.testing import his as signer
from yibao.testing.pgcluster import PgCluster, free_port

ROOT = Path(__file__).resolve().parent.parent
BASE_ID = 10_000_000
HOSPITALS = 3  # the demo's first three institutions are hospitals


# issue 18's target: settlements per second against pgbench TPC-B at 8 clients
TARGET = 0.3


def load(url: str, persons: int) -> list[dict[str, Any]]:
    """The demo city, then N persons with a card, a balance and one visit each."""
    settings = Settings(database_url=url, secret_key="bench", argon2_profile="fast")
    services = Services.from_settings(settings)
    engine = services.engine
    demo_service.load(services, credit=False)
    insts = demo_service.fixtures()["institutions"][:HOSPITALS]
    now = dt.datetime.now(dt.UTC)
    begn = now.astimezone(CHINA).replace(microsecond=0) - dt.timedelta(minutes=30)
    rows: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("persons", "enrolments", "cards", "accounts", "postings", "visits", "fees")
    }
    balance = 2_000_00
    for i in range(persons):
        pid = BASE_ID + i
        rows["persons"].append(
            dict(
                id=pid,
                certno=f"B{i:017d}",
                account_no=f"9{i:015d}",
                name=f"压测{i}",
                gender="1",
                birth_date=dt.date(1980, 1, 1),
                division_code="330502001",
                phone="",
                status="active",
                created_at=now,
                updated_at=now,
            )
        )
        rows["enrolments"].append(
            dict(
                id=pid,
                person_id=pid,
                insutype="310",
                psn_type="employee",
                area="330502",
                base=0,
                status="active",
                start_date=dt.date(2020, 1, 1),
                end_reason="",
                created_at=now,
                updated_at=now,
            )
        )
        rows["cards"].append(
            dict(
                id=pid,
                card_no=f"B{i:09d}",
                person_id=pid,
                kind="social_security",
                status="issued",
                location="holder",
                created_at=now,
                updated_at=now,
            )
        )
        rows["accounts"].append(
            dict(
                id=pid,
                code=f"IA:{pid}",
                kind="individual",
                person_id=pid,
                area="330502",
                balance=balance,
                allow_negative=False,
                created_at=now,
            )
        )
        rows["postings"].append(
            dict(id=pid, entry_id=BASE_ID, account_id=pid, person_id=pid, amount=balance, at=now)
        )
        inst = insts[i % HOSPITALS]["code"]
        rows["visits"].append(
            dict(
                id=pid,
                mdtrt_id=f"BENCH{i:010d}",
                person_id=pid,
                institution_code=inst,
                insutype="310",
                med_type="11",
                begntime=begn,
                ipt_otp_no="",
                dept_name="",
                dr_name="",
                diagnoses=[],
                status="registered",
                cash_fallback=False,
                created_at=now,
            )
        )
        rows["fees"].append(
            dict(
                id=pid,
                visit_id=pid,
                person_id=pid,
                feedetl_sn="1",
                chrg_bchno="",
                list_code="250101001",
                cnt="1",
                pric=480_00,
                amount=480_00,
                category="A",
                selfpay_bp=0,
                status="active",
                created_at=now,
            )
        )
    seed = BASE_ID - 1
    rows["accounts"].append(
        dict(
            id=seed,
            code="BENCH:SEED",
            kind="bank",
            person_id=None,
            area="",
            balance=-balance * persons,
            allow_negative=True,
            created_at=now,
        )
    )
    rows["postings"].append(
        dict(
            id=seed,
            entry_id=BASE_ID,
            account_id=seed,
            person_id=None,
            amount=-balance * persons,
            at=now,
        )
    )
    from yibao.store import models as m

    with engine.begin() as conn:
        conn.execute(
            m.LedgerEntry.__table__.insert(),
            [
                dict(
                    id=BASE_ID,
                    idem_key="bench:seed",
                    kind="bench",
                    person_id=None,
                    memo="",
                    at=now,
                    reverses_id=None,
                    result={},
                )
            ],
        )
        for table, key in (
            (m.Person, "persons"),
            (m.Enrolment, "enrolments"),
            (m.Card, "cards"),
            (m.LedgerAccount, "accounts"),
            (m.Posting, "postings"),
            (m.Visit, "visits"),
            (m.FeeDetail, "fees"),
        ):
            conn.execute(table.__table__.insert(), rows[key])  # type: ignore[attr-defined]
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()
    return [
        {
            "card_no": c["card_no"],
            "psn_no": str(c["person_id"]),
            "mdtrt_id": v["mdtrt_id"],
            "inst": v["institution_code"],
        }
        for c, v in zip(rows["cards"], rows["visits"], strict=True)
    ]


def postmaster(cluster: PgCluster) -> int:
    assert cluster.root is not None
    return int((cluster.root / "data" / "postmaster.pid").read_text().split()[0])


def cpu_seconds(server_pid: int, postmaster_pid: int) -> dict[str, float]:
    """CPU time so far of the server (its processes), PostgreSQL (this
    cluster's postmaster and its backends, with those that have exited) and
    this process (with its children that have exited: pgbench). Processes are
    told apart by their ancestry, not by name: other PostgreSQL clusters on a
    shared machine (a test suite's) are no part of this benchmark."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"server": 0.0, "postgres": 0.0, "clients": 0.0}
    procs: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = int(fields[11]) + int(fields[12])
        if int(entry.name) in (postmaster_pid, os.getpid()):
            cpu += int(fields[13]) + int(fields[14])  # its children that have exited
        procs[int(entry.name)] = (int(fields[1]), cpu / tick)
    for pid, (ppid, cpu) in procs.items():
        chain, p = {pid}, ppid
        while p > 1 and p in procs and p not in chain:
            chain.add(p)
            p = procs[p][0]
        if pid == os.getpid():
            out["clients"] += cpu
        elif server_pid in chain:
            out["server"] += cpu
        elif postmaster_pid in chain:
            out["postgres"] += cpu
    return out


class Client:
    """One HIS over one keep-alive connection: each request signed as an HIS
    signs it, each answer read and checked. asyncio streams on one event loop
    for all clients, so that the benchmark's own clients take little of the
    two cores (threads with http.client took about 0.45 ms per settlement)."""

    def __init__(self, inst: dict[str, Any]) -> None:
        self.inst = inst
        self.sign_no = ""
        self.seq = 0
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self, port: int) -> Client:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        return self

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def request(
        self, infno: str, inp: dict[str, Any]
    ) -> tuple[dict[str, Any], bytes, dict[str, str]]:
        """The envelope, its body and the gateway headers (the tests' signer)."""
        self.seq += 1
        env = signer.envelope(
            infno,
            inp,
            msgid=signer.msgid(self.inst["code"], dt.datetime.now(dt.UTC)),
            institution=self.inst,
            sign_no=self.sign_no,
        )
        body = signer.body(env)
        headers = signer.headers(
            access_id=self.inst["code"],
            secret=self.inst["secret"],
            timestamp=int(time.time()),
            nonce=f"{self.seq}-{time.time_ns()}-{id(self)}",
        )
        return env, body, headers

    async def call(self, infno: str, inp: dict[str, Any]) -> dict[str, Any]:
        assert self.reader is not None and self.writer is not None
        _, body, headers = self.request(infno, inp)
        head = (
            "POST /fsi/api/rsfComIfsService/callService HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            f"content-length: {len(body)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n"
        )
        self.writer.write(head.encode() + body)
        status = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"{infno}: HTTP {status!r}")
        result: dict[str, Any] = json.loads(await self.reader.readexactly(length))
        if result["infcode"] != 0:
            raise RuntimeError(f"{infno}: {result['err_msg']}")
        return result


def run(port: int, work: list[dict[str, Any]], clients: int, rate: float | None) -> dict[str, Any]:
    """Clients share the work; with ``rate`` (settlements/s overall) they are paced."""
    return asyncio.run(_run(port, work, clients, rate))


async def _run(
    port: int, work: list[dict[str, Any]], clients: int, rate: float | None
) -> dict[str, Any]:
    insts = {i["code"]: i for i in demo_service.fixtures()["institutions"]}
    lat: list[float] = []
    pair: list[float] = []
    errors: list[str] = []
    slices = [work[k::clients] for k in range(clients)]

    async def signed_in(inst: dict[str, Any]) -> Client:
        c = await Client(inst).open(port)
        answer = await c.call("9001", {"signIn": {"opter_no": "1"}})
        c.sign_no = answer["output"]["signinoutb"]["sign_no"]
        return c

    async def one(mine: list[dict[str, Any]]) -> None:
        if not mine:
            return
        c = await signed_in(insts[mine[0]["inst"]])
        interval = clients / rate if rate else 0.0
        due = time.perf_counter()
        for w in mine:
            if c.inst["code"] != w["inst"]:
                c.close()
                c = await signed_in(insts[w["inst"]])
            if interval:
                due += interval
                pause = due - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
            try:
                t0 = time.perf_counter()
                await c.call(
                    "1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": w["card_no"]}}
                )
                t1 = time.perf_counter()
                await c.call(
                    "2207",
                    {
                        "data": {
                            "psn_no": w["psn_no"],
                            "mdtrt_cert_type": "03",
                            "mdtrt_cert_no": w["card_no"],
                            "med_type": "11",
                            "medfee_sumamt": "480.00",
                            "psn_setlway": "01",
                            "mdtrt_id": w["mdtrt_id"],
                            "chrg_bchno": "",
                            "insutype": "310",
                            "acct_used_flag": "1",
                        }
                    },
                )
                t2 = time.perf_counter()
                lat.append(t2 - t1)
                pair.append(t2 - t0)
            except Exception as exc:  # counted and shown, the run goes on
                errors.append(str(exc))
        c.close()

    # each client's slice is served by one institution at a time
    for k in range(clients):
        slices[k].sort(key=lambda w: w["inst"])
    start = time.perf_counter()
    await asyncio.gather(*(one(mine) for mine in slices))
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(lat, n=100) if len(lat) > 2 else [0.0] * 99
    qp = statistics.quantiles(pair, n=100) if len(pair) > 2 else [0.0] * 99
    return {
        "settlements": len(lat),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "seconds": elapsed,
        "per_second": len(lat) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "pair_p50_ms": qp[49] * 1000,
        "pair_p99_ms": qp[98] * 1000,
    }


def pgbench(cluster: PgCluster, clients: int, seconds: int) -> tuple[float, dict[str, float]]:
    """pgbench's tps, and the CPU per transaction of PostgreSQL and of pgbench."""
    db = "pgb"
    drop = [cluster.bin("dropdb"), "--if-exists", "-h", "127.0.0.1", "-p", str(cluster.port)]
    # a kept cluster (--dataset) still has the previous run's
    subprocess.run([*drop, "-U", cluster.user, db], check=True, capture_output=True)
    cluster.create_database(db)
    common = ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", cluster.user]
    subprocess.run(
        [cluster.bin("pgbench"), "-i", "-q", "-s", "10", *common, db],
        check=True,
        capture_output=True,
    )
    before = cpu_seconds(0, postmaster(cluster))
    out = subprocess.run(
        [
            cluster.bin("pgbench"),
            "-c",
            str(clients),
            "-j",
            str(clients),
            "-T",
            str(seconds),
            *common,
            db,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    after = cpu_seconds(0, postmaster(cluster))
    match = re.search(r"tps = ([0-9.]+)", out)
    done = re.search(r"number of transactions actually processed: ([0-9]+)", out)
    assert match and done, out
    n = max(int(done.group(1)), 1)
    subprocess.run([*drop, "-U", cluster.user, db], check=True, capture_output=True)
    return float(match.group(1)), {
        "postgres": (after["postgres"] - before["postgres"]) / n,
        "pgbench": (after["clients"] - before["clients"]) / n,
    }


def profile(url: str, work: list[dict[str, Any]], audit_key: str = "") -> None:
    """One process, no HTTP server: statements per settlement and the hot functions."""

    from yibao.app import create_app
    from yibao.channels.his import routes as his_routes
    from yibao.services.settlement import inputs as his_inputs

    settings = Settings(database_url=url, secret_key="bench", audit_key=audit_key)
    app = create_app(settings)
    statements = [0]

    @event.listens_for(app.state.services.engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        statements[0] += 1

    insts = {i["code"]: i for i in demo_service.fixtures()["institutions"]}
    services = app.state.services
    fast = app.state.his_fast
    loop = asyncio.new_event_loop()
    counts = {"fast": 0, "general": 0}

    def call(c: Client, infno: str, inp: dict[str, Any]) -> dict[str, Any]:
        """The channel's handler in this thread, so that cProfile sees it."""
        env, raw, headers = c.request(infno, inp)
        if fast is not None:  # PostgreSQL: the path 1101 and 2207 take in the server
            request = his_inputs.parse(env, None)
            output = loop.run_until_complete(fast.answer(headers, raw, request))
            if output is not None:
                counts["fast"] += 1
                return {"infcode": 0, "output": output}
        counts["general"] += 1
        result: dict[str, Any] = json.loads(his_routes.handle(services, headers, raw, env, None))
        return result

    clients = {code: Client(inst) for code, inst in insts.items()}
    for c in clients.values():
        c.sign_no = call(c, "9001", {"signIn": {}})["output"]["signinoutb"]["sign_no"]
    prof = cProfile.Profile()
    by_infno = {"1101": 0, "2207": 0}
    started = time.perf_counter()
    prof.enable()
    for w in work:
        c = clients[w["inst"]]
        before = statements[0]
        call(c, "1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": w["card_no"]}})
        mid = statements[0]
        call(
            c,
            "2207",
            {
                "data": {
                    "psn_no": w["psn_no"],
                    "mdtrt_cert_type": "03",
                    "mdtrt_cert_no": w["card_no"],
                    "med_type": "11",
                    "medfee_sumamt": "480.00",
                    "mdtrt_id": w["mdtrt_id"],
                    "insutype": "310",
                    "acct_used_flag": "1",
                }
            },
        )
        by_infno["1101"] += mid - before
        by_infno["2207"] += statements[0] - mid
    prof.disable()
    wall = time.perf_counter() - started
    n = len(work)
    print(
        f"\nprofile of {n} settlements (1101 + 2207) in one thread, no HTTP, no concurrency: "
        f"{wall / n * 1000:.1f} ms per pair"
    )
    print(
        f"  requests answered by the fast path: {counts['fast']}, by the general path: "
        f"{counts['general']} (sign-ins included)"
    )
    print(
        "  statements through SQLAlchemy (the general path) per 1101: "
        f"{by_infno['1101'] / n:.1f}; per 2207: {by_infno['2207'] / n:.1f}; "
        "the fast path makes one call per 1101 (two for an institution's first) and two "
        "per 2207 (read, then write)"
    )
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(30)
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(25)
    print("\n".join(line for line in s.getvalue().splitlines() if line.strip())[:14000])
    if fast is not None:
        loop.run_until_complete(fast.close())
    loop.close()
    app.state.services.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--persons", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pgbench-seconds", type=int, default=20)
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the server's line per request (yibao serve --no-access-log turns it off)",
    )
    parser.add_argument("--profile-settlements", type=int, default=200)
    parser.add_argument(
        "--dataset",
        type=int,
        metavar="PERSONS",
        help="run on the kept data set of this many persons (bench/dataset.py)",
    )
    parser.add_argument("--dataset-settlements", type=int, default=20)
    parser.add_argument("--dataset-seed", type=int, default=1)
    dataset.add_pg_setting_argument(parser)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--warmup",
        type=int,
        default=1000,
        help="settlements run and analyzed before measuring, so that the plans are a running server's",
    )
    args = parser.parse_args()
    total = args.persons * 2 + args.profile_settlements + args.warmup
    audit_key = ""
    cluster: PgCluster
    if args.dataset:
        params = dataset.Params(args.dataset, args.dataset_settlements, args.dataset_seed)
        where = dataset.build(params)
        cluster = dataset.KeptCluster(
            durable=True,
            settings={**dataset.DEFAULT_SETTINGS, **dataset.pg_settings(args.pg_setting)},
            keep=where,
        )
        audit_key = dataset.audit_key_text(params)
    else:
        cluster = PgCluster(durable=True, settings=dataset.pg_settings(args.pg_setting))
    cluster.start()
    server = None
    try:
        t0 = time.perf_counter()
        if args.dataset:
            url = cluster.url(dataset.DATABASE)
            run_no = dataset.next_run(where)
            work = dataset.fresh_visits(url, params, total, run_no)
            print(
                f"data set {where.name} ({args.dataset:,} persons, {args.dataset_settlements} "
                f"settlements each), run {run_no}: {total} fresh visits in "
                f"{time.perf_counter() - t0:.1f}s"
            )
        else:
            url = cluster.create_database("yibao")
            migrate.upgrade(url)
            work = load(url, total)
            print(
                f"loaded {total} persons with cards, balances and visits in "
                f"{time.perf_counter() - t0:.1f}s"
            )
        peak_work = work[: args.persons]
        paced_work = work[args.persons : 2 * args.persons]
        prof_work = work[2 * args.persons : 2 * args.persons + args.profile_settlements]
        warm_work = work[2 * args.persons + args.profile_settlements :]
        port = free_port()
        env = {**os.environ, "YIBAO_DATABASE_URL": url, "YIBAO_SECRET_KEY": "bench"}
        if audit_key:  # the data set's audit chains go on with its key
            env["YIBAO_AUDIT_KEY"] = audit_key
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "yibao"),
                "serve",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
                *([] if args.access_log else ["--no-access-log"]),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.3)
        if warm_work:
            # a running server's tables hold nonces, entries and usage rows, and
            # autovacuum has analyzed them; straight after the load they are
            # empty, and the plans chosen then scan them whole as they grow
            warm = run(port, warm_work, args.clients, None)
            print(
                f"warm-up: {warm['settlements']} settlements, {warm['per_second']:.0f}/s, "
                f"errors {warm['errors']}; then ANALYZE"
            )
        with create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.execute(text("ALTER SYSTEM SET track_functions = 'pl'"))
            conn.execute(text("SELECT pg_reload_conf()"))
            conn.execute(text("SELECT pg_stat_reset()"))
        cpu0 = cpu_seconds(server.pid, postmaster(cluster))
        peak = run(port, peak_work, args.clients, None)
        cpu1 = cpu_seconds(server.pid, postmaster(cluster))
        time.sleep(11)  # idle backends report their function statistics after 10 s
        with create_engine(url).connect() as conn:
            functions = conn.execute(
                text(
                    "SELECT funcname, calls, total_time, self_time FROM pg_stat_user_functions "
                    "ORDER BY total_time DESC"
                )
            ).all()
        paced = run(port, paced_work, args.clients, 0.7 * peak["per_second"])
        server.terminate()
        server.wait(30)
        server = None
        tps, tpcb_cpu = pgbench(cluster, args.clients, args.pgbench_seconds)
        print(
            f"\nsettlement over HTTP, {args.clients} clients, {args.workers} server workers, durable PostgreSQL"
        )
        for name, r in (("peak", peak), ("paced at 70 % of peak", paced)):
            print(
                f"  {name}: {r['settlements']} settlements in {r['seconds']:.1f}s = "
                f"{r['per_second']:.0f}/s; 2207 p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms; "
                f"1101+2207 p50 {r['pair_p50_ms']:.1f} ms, p99 {r['pair_p99_ms']:.1f} ms; "
                f"errors {r['errors']} {r['first_error'][:100]}"
            )
        n = max(peak["settlements"], 1)
        print(
            f"  pgbench TPC-B-like, {args.clients} clients, same server: {tps:.0f} tps; CPU per "
            f"transaction: postgres {tpcb_cpu['postgres'] * 1000:.2f} ms, "
            f"pgbench {tpcb_cpu['pgbench'] * 1000:.2f} ms"
        )
        print(
            "  CPU per settlement (1101 + 2207) at peak: "
            + ", ".join(f"{k} {(cpu1[k] - cpu0[k]) / n * 1000:.2f} ms" for k in cpu0)
            + f"; wall {peak['seconds']:.1f}s x {os.cpu_count()} cores"
            + f" = {peak['seconds'] * (os.cpu_count() or 1) / n * 1000:.2f} ms"
        )
        print("  time inside the database functions at peak, per settlement (1101 + 2207):")
        for f in functions:
            print(
                f"    {f.funcname}: {f.calls / n:.1f} calls, {f.total_time / n:.3f} ms total, "
                f"{f.self_time / n:.3f} ms self"
            )
        print(
            f"  ratio settlements/s / pgbench tps = {peak['per_second'] / tps:.2f} (target >= {TARGET})"
        )
        cores = os.cpu_count() or 1
        per = {k: (cpu1[k] - cpu0[k]) / n * 1000 for k in cpu0}
        budget = cores / (TARGET * tps) * 1000
        print(
            f"  CPU budget per settlement at the target (ratio {TARGET}, {TARGET * tps:.0f}/s on "
            f"{cores} cores): {budget:.2f} ms; used: {sum(per.values()):.2f} ms"
        )
        for what, ms in (
            ("the database alone", per["postgres"]),
            ("the server and the clients alone", per["server"] + per["clients"]),
        ):
            if ms > 0:
                print(
                    f"  ceiling from {what} ({ms:.2f} ms per settlement), were the rest free: "
                    f"{cores / ms * 1000:.0f}/s, ratio {cores / ms * 1000 / tps:.2f}"
                )
        print(
            "  a settlement's database work is "
            f"{per['postgres'] / max(tpcb_cpu['postgres'] * 1000, 1e-9):.1f} TPC-B transactions' "
            "worth of PostgreSQL CPU"
        )
        load1, load5, _ = os.getloadavg()
        print(
            f"  machine: {os.cpu_count()} cores, load average {load1:.1f} (1 min), {load5:.1f} (5 min)"
        )
        figures = {
            "persons_in_database": args.dataset or total,
            "ratio": round(peak["per_second"] / tps, 3),
            "settlements_per_second": round(peak["per_second"], 1),
            "pgbench_tps": round(tps),
            "p50_ms": round(peak["p50_ms"], 2),
            "p99_ms": round(peak["p99_ms"], 2),
            "pair_p99_ms": round(peak["pair_p99_ms"], 2),
            "paced_p99_ms": round(paced["p99_ms"], 2),
            "paced_pair_p99_ms": round(paced["pair_p99_ms"], 2),
            "errors": peak["errors"] + paced["errors"],
            "cpu_ms_per_settlement": {k: round(v, 3) for k, v in per.items()},
            "load_1min": round(load1, 1),
        }
        print("figures: " + json.dumps(figures))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
        if args.profile_settlements:
            profile(url, prof_work, audit_key)
        with create_engine(url).connect() as conn:
            bad = conn.execute(
                text(
                    "SELECT count(*) FROM ledger_accounts a LEFT JOIN (SELECT account_id, sum(amount) s "
                    "FROM ledger_postings GROUP BY account_id) p ON p.account_id = a.id "
                    "WHERE a.balance <> coalesce(p.s, 0) OR (NOT a.allow_negative AND a.balance < 0)"
                )
            ).scalar_one()
        print(f"\nledger check after the run: {bad} accounts off")
    finally:
        if server is not None:
            server.terminate()
        cluster.stop()


if __name__ == "__main__":
    main()
