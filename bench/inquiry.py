"""A balance inquiry on every channel, audit entry included, against pgbench on the same server.

    .venv/bin/python -m bench.inquiry [--persons 3000] [--clients 8] [--workers 2] [--seconds 15]

Starts a throw-away, durable PostgreSQL cluster, migrates it, loads the demo
city plus N persons (``bench.settlement.load``: a card and a balance each),
gives each a resident ID number and a card number one can key, a portal
password, a card PIN and a telephone PIN, registers and activates one
self-service terminal per client and issues a staff API token, then starts
``yibao serve``. For each channel it runs the clients (asyncio over raw
HTTP/1.1 keep-alive connections, each keeping its own cookies, so that the
clients stay cheap), first as fast as they go, then paced at 70 % of that
peak:

- ``portal``: log in once per client, then ``GET /portal/`` (the home page
  with the balance);
- ``kiosk``: the terminal's device cookie, the card and its PIN once per
  client, then ``GET /kiosk/home`` (the balance page);
- ``api``: ``GET /api/v1/persons/{account_no}`` with a Bearer token, over
  the persons in turn (the staff API's balance);
- ``his``: 1101 signed as an HIS signs it, over the cards in turn;
- ``ivr``: one Twilio-compatible call per client, signed, driven to the
  proven caller's main menu, then the step that speaks the balance (key 1)
  again and again.

Each answer is checked for the person's balance, and after each run the audit
entries the channel wrote are counted against the inquiries answered. It
prints inquiries per second, p50/p99, the p99 at 70 % of peak, pgbench's
TPC-B-like tps with the same client count on the same server, the ratio
(target >= 0.4), the CPU per inquiry of the server, PostgreSQL and the
clients and the ceiling each puts on the ratio, and a profile of each
channel's inquiry in-process (SQL statements per inquiry and where the time
goes).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import hashlib
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
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, create_engine, event, text
from stdnum import luhn
from stdnum.cn import ric
from twilio.request_validator import RequestValidator

from bench import settlement
from yibao import demo as demo_service
from yibao.config import Settings
from yibao.domain import speech
from yibao.domain.actors import Channel
from yibao.runtime import Services
from yibao.services import security
from yibao.services.access import staff as access_service
from yibao.services.access import terminals
from yibao.store import migrate
from yibao.testing.pgcluster import PgCluster, free_port

ROOT = Path(__file__).resolve().parent.parent
CHANNELS = ("portal", "kiosk", "api", "his", "ivr")
PASSWORD = "bench-Pass-2026"
CARD_PIN = "975310"
PHONE_PIN = "864213"
TWILIO_TOKEN = "bench-twilio-token"
STAFF = "wuxing"  # a county clerk of 330502, where the bench persons live
BALANCE = 2_000_00  # what bench.settlement.load credits each person
# the audit action each channel's inquiry writes, and its channel
AUDITED = {
    "portal": ("portal", "balance.read"),
    "kiosk": ("kiosk", "balance.read"),
    "api": ("api", "balance.read"),
    "his": ("his", None),  # 1101's own action, whatever the path names it
    "ivr": ("telephone", "balance.read"),
}


# ---------------------------------------------------------------- the data set


def certno(i: int) -> str:
    """A valid resident ID number of 330502 for the i-th bench person: the
    telephone keys an ID number or a card number, digits only."""
    born = dt.date(1950, 1, 1) + dt.timedelta(days=i // 500)
    body = f"330502{born:%Y%m%d}{(i % 500) * 2 + 1:03d}"
    return body + ric.calc_check_digit(body + "0")  # it reads all but the last


def card_no(i: int) -> str:
    """A card number that passes the card check (10 digits, Luhn)."""
    body = f"7{i:08d}"
    return body + luhn.calc_check_digit(body)


@dataclass
class Fixture:
    """What the clients need: the persons, the terminals' device tokens, the
    staff token, the HIS institutions."""

    persons: list[dict[str, Any]]
    devices: list[tuple[str, str]]  # (terminal code, device token)
    api_token: str
    institutions: dict[str, dict[str, Any]] = field(default_factory=dict)


def load(url: str, persons: int, terminals_wanted: int) -> Fixture:
    """``bench.settlement.load``'s persons, made reachable by every channel."""
    work = settlement.load(url, persons)
    settings = Settings(database_url=url, secret_key="bench", argon2_profile="fast")
    services = Services.from_settings(settings)
    now = dt.datetime.now(dt.UTC)
    # one hash each, shared: the log-in and the PIN are not what is measured
    password = security.hash_secret(PASSWORD)
    pin = security.hash_secret(CARD_PIN)
    phone = security.hash_secret(PHONE_PIN)
    rows = []
    for i, w in enumerate(work):
        w["index"] = i
        w["certno"] = certno(i)
        w["old_card_no"] = w["card_no"]
        w["card_no"] = card_no(i)
        w["account_no"] = f"9{i:015d}"
        rows.append(
            {
                "pid": int(w["psn_no"]),
                "c": w["certno"],
                "old": w["old_card_no"],
                "new": w["card_no"],
            }
        )
    with services.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE persons SET certno = :c, portal_password_hash = :h WHERE id = :pid"
            ).bindparams(bindparam("h", password)),
            rows,
        )
        conn.execute(
            text("UPDATE cards SET card_no = :new, pin_hash = :h WHERE card_no = :old").bindparams(
                bindparam("h", pin)
            ),
            rows,
        )
        conn.execute(
            text(
                "INSERT INTO phone_pins (person_id, pin_hash, failures, set_at, set_channel) "
                "VALUES (:pid, :h, 0, :now, 'cli')"
            ).bindparams(bindparam("h", phone), bindparam("now", now)),
            rows,
        )
    admin = access_service.actor_of(access_service.get_staff(services.uow(), username="admin"))
    devices = []
    for k in range(terminals_wanted):
        code = f"T-BENCH-{k + 1:02d}"
        issued = terminals.register_terminal(
            services.uow(),
            actor=admin,
            channel=Channel.CLI,
            code=code,
            location=f"压测终端 {k + 1}",
            division_code="330502",
        )
        _, token = terminals.activate(
            services.uow(),
            terminal_code=code,
            activation_code=issued.activation_code,
            channel=Channel.CLI,
        )
        devices.append((code, token))
    api_token, _ = access_service.issue_api_token(
        services.uow(), username=STAFF, channel=Channel.CLI, label="bench", days=1
    )
    with services.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
    services.engine.dispose()
    insts = {i["code"]: i for i in demo_service.fixtures()["institutions"]}
    return Fixture(work, devices, api_token, insts)


# ---------------------------------------------------------------- the clients


class Http:
    """One keep-alive HTTP/1.1 connection with its own cookie jar: a browser,
    a terminal, a machine client or a telephone platform, cheaply."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.cookies: dict[str, str] = {}
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> Http:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    async def send(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, str] | None = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        head = dict(headers or {})
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            head["content-type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            head["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.host}", f"content-length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in head.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        status = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"set-cookie":
                pair = value.decode().strip().split(";", 1)[0]
                key, _, val = pair.partition("=")
                if val.strip('"') and "max-age=0" not in value.decode().lower():
                    self.cookies[key.strip()] = val
                else:
                    self.cookies.pop(key.strip(), None)
        data = await self.reader.readexactly(length) if length else b""
        return int(status.split()[1]), data


def _csrf(page: bytes) -> str:
    found = re.search(rb'name="csrf" value="([^"]+)"', page)
    if not found:
        raise RuntimeError("no CSRF token on the page")
    return found.group(1).decode()


def _yuan(fen: int) -> str:
    return f"{fen // 100:,}.{fen % 100:02d}"


def _has_balance(page: bytes) -> None:
    if f"¥ {_yuan(BALANCE)}".encode() not in page:
        raise RuntimeError(f"the page does not show the balance: {page[:300]!r}")


class Inquirer:
    """One client of one channel: ``prepare`` once (log in, read the card,
    dial), then ``inquire`` as often as the run asks."""

    def __init__(self, channel: str, port: int, fixture: Fixture, k: int, clients: int) -> None:
        self.channel = channel
        self.http = Http(port)
        self.fixture = fixture
        self.k = k
        self.mine = fixture.persons[k::clients]
        self.turn = 0
        self.call_sid = ""
        self.his: settlement.Client | None = None

    @property
    def person(self) -> dict[str, Any]:
        return self.mine[0]

    def _next(self) -> dict[str, Any]:
        w = self.mine[self.turn % len(self.mine)]
        self.turn += 1
        return w

    async def prepare(self) -> None:
        await self.http.open()
        await getattr(self, f"_prepare_{self.channel}")()

    async def inquire(self) -> None:
        await getattr(self, f"_inquire_{self.channel}")()

    def close(self) -> None:
        self.http.close()
        if self.his is not None:
            self.his.close()

    # -- portal
    async def _prepare_portal(self) -> None:
        _, page = await self.http.send("GET", "/portal/login")
        status, _ = await self.http.send(
            "POST",
            "/portal/login",
            form={"login_id": self.person["certno"], "password": PASSWORD, "csrf": _csrf(page)},
        )
        if status != 303:
            raise RuntimeError(f"portal log-in: HTTP {status}")

    async def _inquire_portal(self) -> None:
        status, page = await self.http.send("GET", "/portal/")
        if status != 200:
            raise RuntimeError(f"portal: HTTP {status}")
        _has_balance(page)

    # -- the self-service terminal
    async def _prepare_kiosk(self) -> None:
        code, token = self.fixture.devices[self.k % len(self.fixture.devices)]
        self.http.cookies["yb_kiosk_device"] = token
        _, page = await self.http.send("GET", "/kiosk/")
        _, page = await self.http.send(
            "POST", "/kiosk/card", form={"card_no": self.person["card_no"], "csrf": _csrf(page)}
        )
        status, _ = await self.http.send(
            "POST", "/kiosk/pin", form={"pin": CARD_PIN, "csrf": _csrf(page)}
        )
        if status != 303:
            raise RuntimeError(f"terminal {code} sign-in: HTTP {status}")

    async def _inquire_kiosk(self) -> None:
        status, page = await self.http.send("GET", "/kiosk/home")
        if status != 200:
            raise RuntimeError(f"kiosk: HTTP {status}")
        _has_balance(page)

    # -- the staff API
    async def _prepare_api(self) -> None:
        pass

    async def _inquire_api(self) -> None:
        w = self._next()
        status, body = await self.http.send(
            "GET",
            f"/api/v1/persons/{w['account_no']}",
            headers={"authorization": f"Bearer {self.fixture.api_token}"},
        )
        if status != 200:
            raise RuntimeError(f"api: HTTP {status} {body[:200]!r}")
        if json.loads(body)["balance"].replace(",", "") != _yuan(BALANCE).replace(",", ""):
            raise RuntimeError(f"api: balance {json.loads(body)['balance']}")

    # -- HIS 1101
    async def _prepare_his(self) -> None:
        inst = self.fixture.institutions[self.person["inst"]]
        self.his = await settlement.Client(inst).open(self.http.port)
        answer = await self.his.call("9001", {"signIn": {"opter_no": "1"}})
        self.his.sign_no = answer["output"]["signinoutb"]["sign_no"]

    async def _inquire_his(self) -> None:
        assert self.his is not None
        w = self._next()
        answer = await self.his.call(
            "1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": w["card_no"]}}
        )
        balc = answer["output"]["insuinfo"][0]["balc"]
        if round(float(balc) * 100) != BALANCE:
            raise RuntimeError(f"his: balc {balc}")

    # -- the telephone
    async def _step(self, path: str, params: dict[str, str]) -> bytes:
        url = f"http://{self.http.host}{path}"
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
        status, body = await self.http.send(
            "POST", path, form=params, headers={"x-twilio-signature": signature}
        )
        if status != 200:
            raise RuntimeError(f"ivr {path}: HTTP {status}")
        return body

    async def _prepare_ivr(self) -> None:
        self.call_sid = (
            "CA" + hashlib.sha256(f"{self.k}-{time.time_ns()}".encode()).hexdigest()[:32]
        )
        await self._step("/ivr/twiml/voice", {"CallSid": self.call_sid, "From": "+8613900000000"})
        for digits in ("1", "1", self.person["certno"].replace("X", "*"), PHONE_PIN):
            said = await self._step("/ivr/twiml/step", {"CallSid": self.call_sid, "Digits": digits})
        if speech.amount_zh(BALANCE).encode() not in said:
            raise RuntimeError(f"ivr: the PIN step did not speak the balance: {said[:300]!r}")

    async def _inquire_ivr(self) -> None:
        said = await self._step("/ivr/twiml/step", {"CallSid": self.call_sid, "Digits": "1"})
        if speech.amount_zh(BALANCE).encode() not in said:
            raise RuntimeError(f"ivr: no balance spoken: {said[:300]!r}")


def run(
    port: int,
    fixture: Fixture,
    channel: str,
    clients: int,
    seconds: float,
    rate: float | None = None,
    count: int | None = None,
) -> dict[str, Any]:
    """Each client prepares, then inquires for ``seconds`` (or ``count`` times
    each); with ``rate`` (inquiries/s overall) they are paced."""
    return asyncio.run(_run(port, fixture, channel, clients, seconds, rate, count))


async def _run(
    port: int,
    fixture: Fixture,
    channel: str,
    clients: int,
    seconds: float,
    rate: float | None,
    count: int | None,
) -> dict[str, Any]:
    inquirers = [Inquirer(channel, port, fixture, k, clients) for k in range(clients)]
    await asyncio.gather(*(q.prepare() for q in inquirers))
    # the telephone's PIN step speaks the balance too, and audits it
    prepared = clients if channel == "ivr" else 0
    lat: list[float] = []
    errors: list[str] = []
    interval = clients / rate if rate else 0.0

    async def one(q: Inquirer, stop: float) -> None:
        due = time.perf_counter()
        done = 0
        while (count is None and time.perf_counter() < stop) or (
            count is not None and done < count
        ):
            if interval:
                due += interval
                pause = due - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
            t0 = time.perf_counter()
            try:
                await q.inquire()
                lat.append(time.perf_counter() - t0)
            except Exception as exc:  # counted and shown, the run goes on
                errors.append(str(exc))
                if len(errors) > 100:
                    raise
            done += 1

    start = time.perf_counter()
    try:
        await asyncio.gather(*(one(q, start + seconds) for q in inquirers))
    finally:
        for q in inquirers:
            q.close()
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(lat, n=100) if len(lat) > 2 else [0.0] * 99
    return {
        "inquiries": len(lat),
        "prepared_reads": prepared,
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "seconds": elapsed,
        "per_second": len(lat) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
    }


def audited(url: str) -> dict[tuple[str, str], int]:
    """Audit entries so far, by (channel, action)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT channel, action, count(*) FROM audit_log GROUP BY channel, action")
            ).all()
    finally:
        engine.dispose()
    return {(r[0], r[1]): int(r[2]) for r in rows}


def audit_of(
    channel: str, before: dict[tuple[str, str], int], after: dict[tuple[str, str], int]
) -> dict[str, int]:
    """What the channel's run wrote to the audit log, by action."""
    name = AUDITED[channel][0]
    return {
        action: n - before.get((ch, action), 0)
        for (ch, action), n in after.items()
        if ch == name and n - before.get((ch, action), 0) > 0
    }


def inquiries_audited(channel: str, wrote: dict[str, int]) -> int:
    """The audit entries that record a balance read of this channel."""
    action = AUDITED[channel][1]
    if action is None:  # HIS: the one entry 1101 writes (sign-ins apart)
        return sum(n for a, n in wrote.items() if "sign" not in a)
    return wrote.get(action, 0)


# ---------------------------------------------------------------- the server


def serve(url: str, workers: int, access_log: bool) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "YIBAO_DATABASE_URL": url,
        "YIBAO_SECRET_KEY": "bench",
        "YIBAO_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
    }
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "yibao"),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            *([] if access_log else ["--no-access-log"]),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return server, port
        except OSError:
            pass
        finally:
            conn.close()
        if server.poll() is not None or time.monotonic() > deadline:
            server.terminate()
            raise RuntimeError("the server did not start")
        time.sleep(0.3)


# ---------------------------------------------------------------- the profile


def profile(url: str, fixture: Fixture, channel: str, n: int) -> str:
    """One process, no HTTP server: each inquiry through the ASGI app in this
    thread (the thread pool run inline, so that cProfile sees the route), with
    the SQL statements per inquiry and the hot functions."""
    import fastapi.dependencies.utils
    import fastapi.routing
    import starlette.concurrency

    from yibao.app import create_app

    async def inline(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    patched = [
        (m, m.run_in_threadpool)
        for m in (fastapi.routing, fastapi.dependencies.utils, starlette.concurrency)
    ]
    for m, _ in patched:
        m.run_in_threadpool = inline  # type: ignore[attr-defined]
    settings = Settings(database_url=url, secret_key="bench", twilio_auth_token=TWILIO_TOKEN)
    app = create_app(settings)
    statements = [0]
    seen: list[str] = []

    @event.listens_for(app.state.services.engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements[0] += 1
        seen.append(" ".join(statement.split())[:150])

    loop = asyncio.new_event_loop()
    try:
        server = AsgiPort(app)
        q = Inquirer(channel, 0, fixture, 0, 1)
        q.http = server  # type: ignore[assignment]
        if channel == "his":
            q.his = AsgiHis(server, fixture.institutions[q.person["inst"]])  # type: ignore[assignment]
            answer = loop.run_until_complete(q.his.call("9001", {"signIn": {"opter_no": "1"}}))
            q.his.sign_no = answer["output"]["signinoutb"]["sign_no"]
        else:
            loop.run_until_complete(getattr(q, f"_prepare_{channel}")())
        loop.run_until_complete(q.inquire())  # the first one warms the caches
        seen.clear()
        loop.run_until_complete(q.inquire())
        one = "\n".join(f"    {k + 1:2d}. {sql}" for k, sql in enumerate(seen))
        before = statements[0]
        prof = cProfile.Profile()
        started = time.perf_counter()
        prof.enable()
        for _ in range(n):
            loop.run_until_complete(q.inquire())
        prof.disable()
        wall = time.perf_counter() - started
        per = (statements[0] - before) / n
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(25)
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(20)
        out = "\n".join(line for line in s.getvalue().splitlines() if line.strip())
        return (
            f"\nprofile of {n} {channel} inquiries in one thread, no HTTP server, no concurrency: "
            f"{wall / n * 1000:.2f} ms each (profiled), {per:.1f} SQL statements through "
            f"SQLAlchemy each; those of one:\n{one}\n" + out[:200000]
        )
    finally:
        if app.state.his_fast is not None:  # what the app's lifespan ends
            loop.run_until_complete(app.state.his_fast.close())
        loop.close()
        app.state.services.engine.dispose()
        for m, original in patched:
            m.run_in_threadpool = original  # type: ignore[attr-defined]


class AsgiPort(Http):
    """``Http`` answered by the ASGI app in this thread instead of a socket."""

    def __init__(self, app: Any) -> None:
        super().__init__(8000)
        self.app = app
        self.host = "127.0.0.1:8000"

    async def open(self) -> Http:
        return self

    def close(self) -> None:
        pass

    async def send(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, str] | None = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        head = dict(headers or {})
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            head["content-type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            head["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        head["host"] = self.host
        head["content-length"] = str(len(body))
        raw_path, _, query = path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": urllib.parse.unquote(raw_path),
            "raw_path": raw_path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in head.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        chunks = [{"type": "http.request", "body": body, "more_body": False}]
        out: dict[str, Any] = {"status": 0, "body": b""}

        async def receive() -> dict[str, Any]:
            return chunks.pop(0) if chunks else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
                for k, v in message.get("headers", []):
                    if k.lower() == b"set-cookie":
                        pair = v.decode().split(";", 1)[0]
                        key, _, val = pair.partition("=")
                        if val.strip('"') and "max-age=0" not in v.decode().lower():
                            self.cookies[key.strip()] = val
                        else:
                            self.cookies.pop(key.strip(), None)
            elif message["type"] == "http.response.body":
                out["body"] += message.get("body", b"")

        await self.app(scope, receive, send)
        return int(out["status"]), bytes(out["body"])


class AsgiHis(settlement.Client):
    """``bench.settlement.Client`` over ``AsgiPort``."""

    def __init__(self, port: AsgiPort, inst: dict[str, Any]) -> None:
        super().__init__(inst)
        self.port = port

    async def call(self, infno: str, inp: dict[str, Any]) -> dict[str, Any]:
        _, body, headers = self.request(infno, inp)
        status, data = await self.port.send(
            "POST", "/fsi/api/rsfComIfsService/callService", body=body, headers=headers
        )
        if status != 200:
            raise RuntimeError(f"{infno}: HTTP {status}")
        result: dict[str, Any] = json.loads(data)
        if result["infcode"] != 0:
            raise RuntimeError(f"{infno}: {result['err_msg']}")
        return result


# ---------------------------------------------------------------- the run


def measure(
    url: str,
    cluster: PgCluster,
    server: subprocess.Popen[bytes],
    port: int,
    fixture: Fixture,
    channel: str,
    clients: int,
    seconds: float,
) -> dict[str, Any]:
    """Peak, then paced at 70 %, with the CPU of each part and the audit count."""
    before = audited(url)
    # the count's connection has closed; let its backend exit before the CPU
    # is read, or its CPU moves from a live process to the postmaster's
    # children between the two readings and is counted twice or not at all
    time.sleep(1)
    cpu0 = settlement.cpu_seconds(server.pid, settlement.postmaster(cluster))
    peak = run(port, fixture, channel, clients, seconds)
    cpu1 = settlement.cpu_seconds(server.pid, settlement.postmaster(cluster))
    paced = run(port, fixture, channel, clients, seconds, rate=0.7 * peak["per_second"])
    wrote = audit_of(channel, before, audited(url))
    n = max(peak["inquiries"], 1)
    return {
        "peak": peak,
        "paced": paced,
        "cpu": {k: (cpu1[k] - cpu0[k]) / n for k in cpu0},
        "audit": wrote,
        "audited": inquiries_audited(channel, wrote),
        "answered": sum(x["inquiries"] + x["prepared_reads"] for x in (peak, paced)),
    }


def report(channel: str, r: dict[str, Any], tps: float, tpcb: dict[str, float]) -> None:
    cores = os.cpu_count() or 1
    peak, paced, cpu = r["peak"], r["paced"], r["cpu"]
    print(f"\n{channel}:")
    for name, x in (("peak", peak), ("paced at 70 % of peak", paced)):
        print(
            f"  {name}: {x['inquiries']} inquiries in {x['seconds']:.1f}s = {x['per_second']:.0f}/s; "
            f"p50 {x['p50_ms']:.1f} ms, p99 {x['p99_ms']:.1f} ms; errors {x['errors']} "
            f"{x['first_error'][:120]}"
        )
    print(
        f"  ratio inquiries/s / pgbench tps = {peak['per_second'] / tps:.2f} (target >= 0.4); "
        f"p99 at 70 % {paced['p99_ms']:.1f} ms (target < 25 ms)"
    )
    print(
        "  CPU per inquiry at peak: "
        + ", ".join(f"{k} {v * 1000:.2f} ms" for k, v in cpu.items())
        + f"; {cpu['postgres'] / max(tpcb['postgres'], 1e-9):.1f} TPC-B transactions' worth of PostgreSQL"
    )
    for what, ms in (
        ("the database alone", cpu["postgres"] * 1000),
        ("the server alone", cpu["server"] * 1000),
        ("the server and the clients alone", (cpu["server"] + cpu["clients"]) * 1000),
    ):
        if ms > 0:
            print(
                f"  ceiling from {what} ({ms:.2f} ms per inquiry), were the rest free: "
                f"{cores / ms * 1000:.0f}/s, ratio {cores / ms * 1000 / tps:.2f}"
            )
    ok = "ok" if r["audited"] == r["answered"] else "MISSING"
    print(
        f"  audit: {r['audited']} balance reads recorded for {r['answered']} inquiries answered "
        f"({ok}); entries written: {r['audit']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--persons", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15, help="each run's length")
    parser.add_argument("--pgbench-seconds", type=int, default=20)
    parser.add_argument("--channels", default=",".join(CHANNELS))
    parser.add_argument("--warmup", type=float, default=3, help="seconds per channel first")
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the server's line per request (yibao serve --no-access-log turns it off)",
    )
    parser.add_argument("--profile-inquiries", type=int, default=200, help="0: no profile")
    args = parser.parse_args()
    channels = [c for c in args.channels.split(",") if c]
    for c in channels:
        if c not in CHANNELS:
            parser.error(f"unknown channel {c!r}; the channels are {', '.join(CHANNELS)}")
    cluster = PgCluster(durable=True)
    cluster.start()
    server = None
    try:
        url = cluster.create_database("yibao")
        migrate.upgrade(url)
        t0 = time.perf_counter()
        fixture = load(url, args.persons, args.clients)
        print(f"loaded {args.persons} persons in {time.perf_counter() - t0:.1f}s")
        server, port = serve(url, args.workers, args.access_log)
        if args.warmup:
            for c in channels:
                warm = run(port, fixture, c, args.clients, args.warmup)
                print(
                    f"warm-up {c}: {warm['per_second']:.0f}/s, errors {warm['errors']} {warm['first_error'][:100]}"
                )
            analyze = create_engine(url, isolation_level="AUTOCOMMIT")
            with analyze.connect() as conn:
                conn.execute(text("ANALYZE"))
            analyze.dispose()
        results = {
            c: measure(url, cluster, server, port, fixture, c, args.clients, args.seconds)
            for c in channels
        }
        server.terminate()
        server.wait(30)
        server = None
        tps, tpcb = settlement.pgbench(cluster, args.clients, args.pgbench_seconds)
        print(
            f"\nbalance inquiry over HTTP, {args.clients} clients, {args.workers} server workers, "
            f"{args.persons} persons, durable PostgreSQL"
        )
        print(
            f"pgbench TPC-B-like, {args.clients} clients, same server: {tps:.0f} tps; CPU per "
            f"transaction: postgres {tpcb['postgres'] * 1000:.2f} ms, pgbench {tpcb['pgbench'] * 1000:.2f} ms"
        )
        for c, r in results.items():
            report(c, r, tps, tpcb)
        print(
            "\n| channel | inquiries/s | ratio | p50 ms | p99 ms | p99 at 70 % ms | CPU server/postgres/clients ms |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for c, r in results.items():
            p, cpu = r["peak"], r["cpu"]
            print(
                f"| {c} | {p['per_second']:.0f} | {p['per_second'] / tps:.2f} | {p['p50_ms']:.1f} | "
                f"{p['p99_ms']:.1f} | {r['paced']['p99_ms']:.1f} | "
                f"{cpu['server'] * 1000:.2f} / {cpu['postgres'] * 1000:.2f} / {cpu['clients'] * 1000:.2f} |"
            )
        load1, load5, _ = os.getloadavg()
        print(
            f"machine: {os.cpu_count()} cores, load average {load1:.1f} (1 min), {load5:.1f} (5 min)"
        )
        missing = [c for c, r in results.items() if r["audited"] != r["answered"]]
        if args.profile_inquiries:
            for c in channels:
                print(profile(url, fixture, c, args.profile_inquiries))
        if missing:
            print(f"\nAUDIT ENTRIES MISSING on {', '.join(missing)}")
            sys.exit(1)
    finally:
        if server is not None:
            server.terminate()
        cluster.stop()


if __name__ == "__main__":
    main()
