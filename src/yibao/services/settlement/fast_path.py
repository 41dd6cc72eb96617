"""The settlement channel's fast path on PostgreSQL (issue 4, "Performance").

1101 (person information) and 2207 (settlement) are what every visit costs,
so on PostgreSQL they skip the ORM and the thread pool: from the event loop,
over asyncpg, one call of ``yb_his_read`` reads everything the answer needs
(migration 0008), the rules below compute the answer with the same functions
as the general path, and one call of ``yb_his_touch`` (1101) or
``yb_his_settle`` (2207) claims the nonce, writes and audits, re-checking
under row locks what the answer was computed from. Each call is its own
transaction: two round trips per request instead of a dozen statements.

The fast path answers only when nothing is wrong. A refusal of any kind, an
unusual case (an electronic voucher, a cash visit to re-settle, a person of
another area, a retried msgid) or any doubt returns ``None``, having changed
nothing, and the request takes the general path (``channels.his.routes``),
which gives the exact answer and reason. The rules and the messages so stay
in one place (``services.settlement``, ``services.gateway``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from types import SimpleNamespace
from typing import Any, TypeVar, cast

import asyncpg
import orjson
from sqlalchemy import Engine

from yibao.clock import CHINA, Clock
from yibao.domain import benefit
from yibao.domain.actors import Channel
from yibao.domain.areas import same_pool
from yibao.domain.audit import CHAINS, AuditRecord, tail_around_person
from yibao.domain.errors import DomainError
from yibao.domain.money import yuan_to_fen
from yibao.services.access.institution_auth import Caller, check_credentials, signed_with
from yibao.services.contributions.contributions import pick_current
from yibao.services.settlement import policy
from yibao.services.settlement import settlement as svc
from yibao.store.models import BenefitUsage, Card, Enrolment, Person, Visit

log = logging.getLogger("yibao.his")

INFNOS = frozenset({"1101", "2207"})
RETRIES = 3

READ = "SELECT yb_his_read($1, $2, $3, $4, $5, $6)"
PERSON = (
    "SELECT yb_his_person($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
    "$16, $17, $18, $19)"
)
TOUCH = "SELECT yb_his_touch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
SETTLE = (
    "SELECT yb_his_settle($1, $2, $3, $4, $5, $6, $7, $8::json, $9, $10, $11, $12, $13, $14, "
    "$15, $16, $17, $18, $19, $20::json, $21, $22, $23, $24, $25, $26, $27, $28, $29)"
)


T = TypeVar("T")


def _view(model: type[T], **fields: Any) -> T:
    """A stand-in for a row of ``model`` with the fields the rules read: they
    only read attributes, and an instrumented ORM instance costs about 30 µs
    to make, a sixth of the fast path's own Python per request."""
    return cast(T, SimpleNamespace(**fields))


class Stale(Exception):
    """What the answer was computed from changed before it was written."""


class Answered(Exception):
    """A refusal after the fast path wrote (the nonce is used): the answer."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(error.message)
        self.error = error


async def _keep_session(_conn: Any) -> None:
    """The fast path sets no session state and opens no transaction across
    calls, so a connection goes back to the pool without the reset round trip."""


class FastPath:
    """A small asyncpg pool per event loop (one per worker process in a
    server; a test client runs its own loop), opened on first use."""

    def __init__(
        self, engine: Engine, clock: Clock, *, acct_in_fund: bool = False, max_size: int = 10
    ) -> None:
        self.dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.clock = clock
        self.acct_in_fund = acct_in_fund  # Settings.his_fund_pay_includes_acct
        self.max_size = max_size
        self._pools: dict[asyncio.AbstractEventLoop, Any] = {}
        # the institutions as last read, by access id (``_person_info_once``)
        self._institutions: dict[str, SimpleNamespace] = {}
        # requests answered here, and those handed to the general path
        self.served = 0
        self.gave_way = 0
        self.single = 0  # of the served 1101s, those answered in one call

    async def pool(self) -> Any:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=self.max_size,
                command_timeout=30,
                reset=_keep_session,
            )
            kept = self._pools.setdefault(loop, pool)
            if kept is not pool:  # another request of this loop opened one first
                await pool.close()
                pool = kept
        return pool

    async def close(self) -> None:
        """The running loop's pool; the app's lifespan calls it on shutdown."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()

    async def answer(
        self, headers: Any, raw: bytes, env: dict[str, Any], path_infno: str | None
    ) -> dict[str, Any] | None:
        """The output of 1101 or 2207, or None: take the general path."""
        infno = str(env.get("infno") or "")
        inp = env.get("input")
        if (
            infno not in INFNOS
            or (path_infno and path_infno != infno)
            or not isinstance(inp, dict)
            or not isinstance(inp.get("data"), dict)
            or any(env.get(n) in (None, "") for n in ("msgid", "fixmedins_code"))
        ):
            return None
        output = None
        try:
            pool = await self.pool()
            async with pool.acquire() as conn:
                for _ in range(RETRIES):
                    try:
                        if infno == "1101":
                            output = await self._person_info(conn, headers, raw, env, inp["data"])
                        else:
                            output = await self._settle(conn, headers, raw, env, inp["data"])
                        break
                    except Stale:
                        continue
        except Answered as done:
            self.served += 1
            raise done.error from None
        except DomainError:
            pass  # the general path says why
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            log.info("HIS fast path gave way to the general path: %s", exc)
        if output is None:
            self.gave_way += 1
        else:
            self.served += 1
        return output

    # ---------------------------------------------------------- the read

    @staticmethod
    def _request(
        headers: Any, env: dict[str, Any], data: dict[str, Any]
    ) -> tuple[str, str, str, str, str, str] | None:
        """access id, timestamp, nonce, signature, certificate type and number;
        None for what only the general path answers."""
        h = [headers.get(k) for k in ("x-tif-paasid", "x-tif-timestamp", "x-tif-nonce")]
        signature = headers.get("x-tif-signature")
        if not all(h) or not signature or len(str(h[2])) > 100:
            return None
        cert_type = str(data.get("mdtrt_cert_type") or "")
        cert_no = str(data.get("mdtrt_cert_no") or "").strip()
        if cert_type not in ("02", "03") or not cert_no:
            return None  # an electronic voucher (01) is redeemed on the general path
        return str(h[0]), str(h[1]), str(h[2]), str(signature), cert_type, cert_no

    def _credentials(
        self,
        inst: SimpleNamespace,
        req: tuple[str, str, str, str, str, str],
        headers: Any,
        raw: bytes,
        env: dict[str, Any],
    ) -> Caller | None:
        """The gateway's checks (a failure raises, and the general path
        answers); None when the envelope names another institution."""
        access_id, timestamp, nonce, signature = req[:4]
        check_credentials(
            inst,
            timestamp=timestamp,
            nonce=nonce,
            signature=signature,
            body_sig=headers.get("x-yb-body-signature"),
            body=raw,
            now=self.clock.now(),
        )
        if str(env["fixmedins_code"]) != inst.code:
            return None
        return Caller.of(inst, access_id, signed_in=True, signed_with=signed_with(env))

    @staticmethod
    def _person(r: SimpleNamespace, cert_type: str) -> Person:
        """The card's and the person's checks, on what the database sent."""
        if cert_type == "03":
            svc.check_card(_view(Card, status=r.card["status"]) if r.card else None)
        p = r.person
        return svc.check_person(
            _view(Person, **p | {"birth_date": dt.date.fromisoformat(p["birth_date"])})
            if p
            else None
        )

    async def _read(
        self,
        conn: asyncpg.Connection,
        req: tuple[str, str, str, str, str, str],
        headers: Any,
        raw: bytes,
        env: dict[str, Any],
        mdtrt_id: str | None,
    ) -> tuple[Caller, SimpleNamespace, Person] | None:
        access_id, _, nonce, _, cert_type, cert_no = req
        sign_no = str(env.get("sign_no") or "")
        text = await conn.fetchval(READ, access_id, sign_no, nonce, cert_type, cert_no, mdtrt_id)
        if text is None:
            return None
        r = SimpleNamespace(**orjson.loads(text))
        inst = SimpleNamespace(**r.inst)
        caller = self._credentials(inst, req, headers, raw, env)
        if caller is None or inst.nonce_used or not inst.signed_in:
            return None
        self._institutions[access_id] = inst
        return caller, r, self._person(r, cert_type)

    @staticmethod
    def _enrolments(r: SimpleNamespace) -> tuple[Enrolment | None, dict[int, str]]:
        rows = [
            _view(
                Enrolment,
                **e
                | {
                    "start_date": dt.date.fromisoformat(e["start_date"]),
                    "suspended_since": dt.date.fromisoformat(e["suspended_since"])
                    if e["suspended_since"]
                    else None,
                },
            )
            for e in r.enrolments
        ]
        names = {e["id"]: e["emp_name"] for e in r.enrolments}
        return pick_current(rows), names

    @staticmethod
    def _audit_args(record: AuditRecord, at: dt.datetime) -> list[Any]:
        return [
            record.chain,
            record.actor_kind,
            record.actor_id,
            record.actor_division,
            record.channel,
            record.action,
            record.person_id,
            record.subject,
            json.dumps(record.detail, ensure_ascii=False),
            record.tail(at),
        ]

    # ---------------------------------------------------------- 1101

    def _person_output(
        self, r: SimpleNamespace, person: Person, now: dt.datetime
    ) -> dict[str, Any]:
        enrolment, employers = self._enrolments(r)
        return svc.person_info_output(
            person,
            enrolment,
            balance=int(r.balance or 0),
            emp_name=employers.get(enrolment.id, "") if enrolment else "",
            today=now.astimezone(CHINA).date(),
        )

    async def _person_info(
        self,
        conn: asyncpg.Connection,
        headers: Any,
        raw: bytes,
        env: dict[str, Any],
        data: dict[str, Any],
    ) -> dict[str, Any] | None:
        req = self._request(headers, env, data)
        if req is None:
            return None
        inst = self._institutions.get(req[0])
        if inst is not None:
            try:
                output = await self._person_info_once(conn, inst, req, headers, raw, env)
            except DomainError:  # refused by the institution as cached, before any write
                output = None
            if output is not None:
                self.single += 1
                return output
            # the institution changed, or the request is not one to answer
            # here: the two calls read the institution afresh
            self._institutions.pop(req[0], None)
        found = await self._read(conn, req, headers, raw, env, None)
        if found is None:
            return None
        caller, r, person = found
        now = self.clock.now()
        output = self._person_output(r, person, now)
        record = caller.record(
            channel=Channel.HIS, action="his.person_info", person_id=person.id, subject=caller.code
        )
        audit = self._audit_args(record, now)
        claimed = await conn.fetchval(TOUCH, caller.access_id, req[2], now, *audit)
        return output if claimed else None

    async def _person_info_once(
        self,
        conn: asyncpg.Connection,
        inst: SimpleNamespace,
        req: tuple[str, str, str, str, str, str],
        headers: Any,
        raw: bytes,
        env: dict[str, Any],
    ) -> dict[str, Any] | None:
        """1101 in one call, with the institution as last read: the request
        is checked against it here, and ``yb_his_person`` claims the nonce,
        audits and reads only if the institution's secret, status, code and
        sign-in are still those (NULL otherwise, having written nothing).
        The card's and the person's checks come after the write, as in the
        general path, where a refused request also uses up its nonce; a
        refusal is then the answer (``Answered``), and the read it refused
        stays audited, since the person's state was read."""
        caller = self._credentials(inst, req, headers, raw, env)
        if caller is None:
            return None
        access_id, _, nonce, _, cert_type, cert_no = req
        now = self.clock.now()
        record = caller.record(channel=Channel.HIS, action="his.person_info", subject=caller.code)
        head, rest = tail_around_person(record, now)
        text = await conn.fetchval(
            PERSON,
            access_id,
            inst.access_secret,
            bool(inst.require_body_signature),
            inst.code,
            str(env.get("sign_no") or ""),
            nonce,
            cert_type,
            cert_no,
            now,
            CHAINS,
            record.actor_kind,
            record.actor_id,
            record.actor_division,
            record.channel,
            record.action,
            record.subject,
            json.dumps(record.detail, ensure_ascii=False),
            head,
            rest,
        )
        if text is None:
            return None
        r = SimpleNamespace(**orjson.loads(text))
        try:
            return self._person_output(r, self._person(r, cert_type), now)
        except DomainError as exc:
            raise Answered(exc) from None

    # ---------------------------------------------------------- 2207

    async def _settle(
        self,
        conn: asyncpg.Connection,
        headers: Any,
        raw: bytes,
        env: dict[str, Any],
        data: dict[str, Any],
    ) -> dict[str, Any] | None:
        msgid = str(env["msgid"])
        psn_no = str(data.get("psn_no") or "").strip()
        mdtrt_id = str(data.get("mdtrt_id") or "").strip()
        if not psn_no or not mdtrt_id or data.get("medfee_sumamt") in (None, ""):
            return None
        req = self._request(headers, env, data)
        if req is None:
            return None
        found = await self._read(conn, req, headers, raw, env, mdtrt_id)
        if found is None:
            return None
        caller, r, person = found
        v = r.visit
        if v is None:
            return None
        visit = _view(Visit, **v)  # the columns yb_his_read sends, and the day
        # the general path's checks; a refusal raises and the general path
        # answers (a retried msgid finds its visit settled and is replayed)
        svc.check_owned(visit, caller, psn_no, "visit")
        svc.check_open(visit)
        svc.check_visit_person(visit, person)
        if visit.cash_fallback:
            return None  # a re-settlement, with its window and once-only rule
        enrolment = svc.check_enrolment(self._enrolments(r)[0])
        if not same_pool(enrolment.area, caller.division[:6]):
            return None  # the cross-area filings are read on the general path
        total = yuan_to_fen(str(data["medfee_sumamt"]), field="input.data.medfee_sumamt")
        items = svc.check_fees([benefit.Item(int(a), c, int(bp)) for a, c, bp in r.fees], total)
        year = dt.date.fromisoformat(v["day"]).year
        pol = policy.choose_policy(
            [policy.Policy(t, a, y, d, cap, dict(rt)) for t, a, y, d, cap, rt in r.policies],
            insutype=enrolment.insutype,
            area=enrolment.area,
            year=year,
        )
        usage = next(
            (
                _view(BenefitUsage, deductible_used=int(d), fund_used=int(f))
                for t, d, f in r.usage
                if t == enrolment.insutype
            ),
            None,
        )
        balance = int(r.balance or 0)
        terms = svc.terms_for(pol, caller, enrolment, usage, balance, data)
        c = svc.Computed(
            visit,
            svc.Insured(person, enrolment, None),
            enrolment,
            year,
            benefit.split(items, terms),
            "settlement",
            usage,
        )
        now = self.clock.now()
        setl_id, output, p = svc.settle_params(
            c,
            caller,
            msgid=msgid,
            now=now,
            today=now.astimezone(CHINA).date(),
            acct_in_fund=self.acct_in_fund,
        )
        record = caller.record(
            channel=Channel.HIS, action="his.settlement", person_id=person.id, subject=setl_id
        )
        audit = self._audit_args(record, now)
        try:
            await conn.fetchval(
                SETTLE,
                caller.access_id,
                headers.get("x-tif-nonce"),
                balance,
                p["key"],
                p["kind"],
                p["pid"],
                p["memo"],
                p["result"],
                p["at"],
                p["codes"],
                p["kinds"],
                p["amounts"],
                p["pids"],
                p["areas"],
                p["visit"],
                p["insutype"],
                p["year"],
                p["ded"],
                p["fund"],
                p["setl"],
                *[a for i, a in enumerate(audit) if i != 6],  # the person is p["pid"]
            )
        except asyncpg.RaiseError as exc:
            if "yb:stale" in str(exc):
                raise Stale from None
            return None  # a replayed nonce or msgid: the general path answers
        return output
