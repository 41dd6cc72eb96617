"""The settlement channel's fast path on PostgreSQL (issue 4, "Performance").

1101 (person information) and 2207 (settlement) are what every visit costs,
so on PostgreSQL they skip the ORM and the thread pool: from the event loop,
over asyncpg, one call of ``yb_his_read`` reads the facts (``store/sql/``),
the same decisions as the general path decide (``domain.use.decide`` for the
card and the person, ``domain.settlement.decide`` for the settlement), and
one call of ``yb_his_touch`` (1101) or ``yb_his_settle`` (2207) claims the
nonce and the request's key, writes and audits, re-checking under row locks
what the decision was made from. Each call is its own transaction: two round
trips per request instead of a dozen statements.

The fast path answers only what it may answer alone. Before it writes, a
refusal of any kind, an unusual case (an electronic voucher, an ID number at
1101, a cash visit to re-settle, a person of another area, a retried msgid)
or any doubt returns ``None``, having changed nothing, and the request takes
the general path (``channels.his.routes``), which gives the exact answer and
reason from the same decisions. Once a write was sent, the connection
failing means its outcome is unknown: the answer says so and to resend the
same msgid (``system.outcome_unknown``), never "internal error".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from types import SimpleNamespace
from typing import Any, cast

import asyncpg
import orjson
from sqlalchemy import Engine

from yibao.clock import CHINA, Clock
from yibao.domain import benefit
from yibao.domain import settlement as rules
from yibao.domain.actors import Channel
from yibao.domain.areas import same_pool
from yibao.domain.audit import CHAINS, AuditKey, AuditRecord
from yibao.domain.errors import DomainError, not_found, outcome_unknown
from yibao.domain.use import CardState, PersonState, Presenter, Purpose
from yibao.domain.use import decide as decide_use
from yibao.observability import metrics
from yibao.services import idempotency
from yibao.services.access.institution_auth import Caller, check_credentials, check_headers
from yibao.services.contributions.contributions import pick_current
from yibao.services.ledger import backends
from yibao.services.settlement import inputs
from yibao.services.settlement import settlement as svc
from yibao.store import auditlog
from yibao.store.db import LostConnections, asyncpg_connect_args

log = logging.getLogger("yibao.his")

INFNOS = frozenset({"1101", "2207"})
RETRIES = 3

READ = "SELECT yb_his_read($1, $2, $3, $4, $5, $6)"
PERSON = (
    "SELECT yb_his_person($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
    "$16, $17, $18, $19)"
)
TOUCH = "SELECT yb_his_touch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
SETTLE = (
    "SELECT yb_his_settle("
    + ", ".join(f"${i}::json" if i in (6, 23) else f"${i}" for i in range(1, 43))
    + ")"
)

# The connection failed with a write sent: it may or may not have committed.
LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # a connection left in a broken state by a server that went away, or
    # (TargetServerAttributeNotMatched) only standbys answering
    asyncpg.InternalClientError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    OSError,
    TimeoutError,
)


class Stale(Exception):
    """What the answer was computed from changed before it was written."""


class Answered(Exception):
    """A refusal after the fast path wrote (the nonce is used), or a write
    whose outcome is unknown: the answer."""

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
        self,
        engine: Engine,
        clock: Clock,
        *,
        audit_key: AuditKey,
        acct_in_fund: bool = False,
        max_size: int = 10,
    ) -> None:
        # every host of a multi-host URL, and the one that takes writes
        self.connect_args = asyncpg_connect_args(engine.url)
        self._lost = LostConnections()
        self.clock = clock
        # the audit entries' secrets are made here; the database never holds the key
        self.audit_key = audit_key
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
                **self.connect_args,
                min_size=1,
                max_size=self.max_size,
                command_timeout=30,
                reset=_keep_session,
                init=self._connected,
            )
            kept = self._pools.setdefault(loop, pool)
            if kept is not pool:  # another request of this loop opened one first
                await pool.close()
                pool = kept
        return pool

    async def _connected(self, _conn: asyncpg.Connection) -> None:
        self._lost.connected()

    async def _connection_failed(self) -> None:
        """The server went away (a failover): every pooled connection is
        made again on its next use, to whichever server now takes writes."""
        self._lost.failed()
        pool = self._pools.get(asyncio.get_running_loop())
        if pool is not None:
            await pool.expire_connections()

    async def close(self) -> None:
        """The running loop's pool; the app's lifespan calls it on shutdown."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()

    async def answer(
        self, headers: Any, raw: bytes, request: inputs.Request
    ) -> dict[str, Any] | None:
        """The output of 1101 or 2207, or None: take the general path. The
        request was parsed by the channel (``inputs.parse``), as for the
        general path."""
        if request.infno not in INFNOS:
            return None
        output = None
        try:
            pool = await self.pool()
            async with pool.acquire() as conn:
                for _ in range(RETRIES):
                    try:
                        if request.infno == "1101":
                            output = await self._person_info(conn, headers, raw, request)
                        else:
                            output = await self._settle(conn, headers, raw, request)
                        break
                    except Stale:
                        continue
        except Answered as done:
            self.served += 1
            raise done.error from None
        except DomainError:
            pass  # the general path says why
        except (asyncpg.PostgresError, *LOST) as exc:
            # nothing was written (a write's failure is Answered above)
            log.info("HIS fast path gave way to the general path: %s", exc)
            if isinstance(exc, LOST):
                await self._connection_failed()
        if output is None:
            self.gave_way += 1
        else:
            self.served += 1
        return output

    async def _write(self, conn: asyncpg.Connection, query: str, *args: Any) -> Any:
        """One writing call; when the connection fails on it, whether it
        committed is unknown, and the answer says so."""
        try:
            return await conn.fetchval(query, *args)
        except LOST as exc:
            log.warning("HIS fast path lost the database during a write: %s", exc)
            await self._connection_failed()
            raise Answered(outcome_unknown()) from None

    # ---------------------------------------------------------- the read

    @staticmethod
    def _request(
        headers: Any, data: inputs.PersonQuery | inputs.Settle, cert_types: tuple[str, ...]
    ) -> tuple[str, str, str, str, str, str] | None:
        """access id, timestamp, nonce, signature, certificate type and number;
        None for what only the general path answers."""
        if data.mdtrt_cert_type not in cert_types:
            return None  # an electronic voucher (01) is redeemed on the general path
        # headers of another form: refused (a DomainError), and the general path says why
        access_id, timestamp, nonce, signature = check_headers(
            access_id=headers.get("x-tif-paasid"),
            timestamp=headers.get("x-tif-timestamp"),
            nonce=headers.get("x-tif-nonce"),
            signature=headers.get("x-tif-signature"),
        )
        return access_id, timestamp, nonce, signature, data.mdtrt_cert_type, data.mdtrt_cert_no

    def _credentials(
        self,
        inst: SimpleNamespace,
        req: tuple[str, str, str, str, str, str],
        headers: Any,
        raw: bytes,
        env: inputs.Envelope,
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
        if env.fixmedins_code != inst.code:
            return None
        return Caller.of(inst, access_id, signed_in=True, signed_with=(env.cainfo, env.signtype))

    async def _read(
        self,
        conn: asyncpg.Connection,
        req: tuple[str, str, str, str, str, str],
        headers: Any,
        raw: bytes,
        env: inputs.Envelope,
        mdtrt_id: str | None,
    ) -> tuple[Caller, SimpleNamespace] | None:
        access_id, _, nonce, _, cert_type, cert_no = req
        text = await conn.fetchval(
            READ, access_id, env.sign_no, nonce, cert_type, cert_no, mdtrt_id
        )
        if text is None:
            return None
        r = SimpleNamespace(**orjson.loads(text))
        inst = SimpleNamespace(**r.inst)
        caller = self._credentials(inst, req, headers, raw, env)
        if caller is None or inst.nonce_used or not inst.signed_in:
            return None
        self._institutions[access_id] = inst
        return caller, r

    @staticmethod
    def _enrolment(r: SimpleNamespace) -> tuple[SimpleNamespace | None, str]:
        """The enrolment benefits come from (as ``contributions.current_enrolment``)
        and its employer's name."""
        rows = [
            SimpleNamespace(
                **e
                | {
                    "start_date": dt.date.fromisoformat(e["start_date"]),
                    "suspended_since": dt.date.fromisoformat(e["suspended_since"])
                    if e["suspended_since"]
                    else None,
                }
            )
            for e in r.enrolments
        ]
        current = cast(SimpleNamespace | None, pick_current(rows))  # type: ignore[arg-type]
        return current, str(current.emp_name) if current is not None else ""

    @staticmethod
    def _holder(r: SimpleNamespace) -> svc.Holder | None:
        p = r.person
        if p is None:
            return None
        return svc.Holder(
            p["id"], p["name"], p["certno"], p["gender"], dt.date.fromisoformat(p["birth_date"])
        )

    @staticmethod
    def _states(
        r: SimpleNamespace, enrolment: SimpleNamespace | None, *, arrangement: bool = True
    ) -> tuple[PersonState | None, CardState | None]:
        """The person and the card as ``domain.use`` decides on them."""
        p = r.person
        card = (
            CardState(r.card["card_no"], r.card["status"], r.card["person_id"], r.card["replaced"])
            if r.card
            else None
        )
        if p is None:
            return None, card
        return (
            PersonState(
                id=p["id"],
                name=p["name"],
                certno=p["certno"],
                status=p["status"],
                enrolment=enrolment.status if enrolment else None,
                insured_area=enrolment.area if enrolment else "",
                arrangement=arrangement,
            ),
            card,
        )

    def _audit_args(self, record: AuditRecord, at: dt.datetime) -> list[Any]:
        record = auditlog.stamped(record)  # the request's id, as the general path's
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
            *self.audit_key.pads(record, at),
        ]

    # ---------------------------------------------------------- 1101

    def _person_output(
        self, r: SimpleNamespace, data: inputs.PersonQuery, now: dt.datetime
    ) -> dict[str, Any]:
        """1101's answer, once ``domain.use`` allows the card for an inquiry
        by an institution (as ``inquiry.summary`` decides on the general path)."""
        if r.card is None:
            raise not_found("卡片", "card", "card.not_found")  # as inquiry.summary says
        enrolment, emp_name = self._enrolment(r)
        person, card = self._states(r, enrolment)
        decide_use(
            purpose=Purpose.INQUIRY,
            presenter=Presenter.INSTITUTION,
            person=person,
            card=card,
            named=svc.named(data),
            card_field="mdtrt_cert_no",
        ).require()
        who = self._holder(r)
        assert who is not None
        return svc.person_info_output(
            who,
            enrolment,
            balance=int(r.balance or 0),
            emp_name=emp_name,
            today=now.astimezone(CHINA).date(),
        )

    async def _person_info(
        self, conn: asyncpg.Connection, headers: Any, raw: bytes, request: inputs.Request
    ) -> dict[str, Any] | None:
        env, data = request.envelope, request.input.data
        # a card (03) only: the audit entry names the card, as the general
        # path's account summary does; an ID number takes the general path
        req = self._request(headers, data, ("03",))
        if req is None:
            return None
        inst = self._institutions.get(req[0])
        if inst is not None:
            try:
                output = await self._person_info_once(conn, inst, req, headers, raw, env, data)
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
        caller, r = found
        now = self.clock.now()
        output = self._person_output(r, data, now)  # a refusal: the general path answers
        record = caller.record(
            channel=Channel.HIS,
            action="his.person_info",
            person_id=r.person["id"],
            subject=req[5],
        )
        audit = self._audit_args(record, now)
        claimed = await self._write(conn, TOUCH, caller.access_id, req[2], now, *audit)
        if claimed:
            metrics.audit_appended(record.chain, record.action)
        return output if claimed else None

    async def _person_info_once(
        self,
        conn: asyncpg.Connection,
        inst: SimpleNamespace,
        req: tuple[str, str, str, str, str, str],
        headers: Any,
        raw: bytes,
        env: inputs.Envelope,
        data: inputs.PersonQuery,
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
        record = caller.record(channel=Channel.HIS, action="his.person_info", subject=cert_no)
        # the entry's secret covers all but the person, whom yb_his_person finds
        text = await self._write(
            conn,
            PERSON,
            access_id,
            inst.access_secret,
            bool(inst.require_body_signature),
            inst.code,
            env.sign_no,
            nonce,
            cert_type,
            cert_no,
            now,
            CHAINS,
            *self.audit_key.function_args(auditlog.stamped(record), now),
        )
        if text is None:
            return None
        r = SimpleNamespace(**orjson.loads(text))
        person = getattr(r, "person", None)  # the entry's chain is its person's, if found
        chain = int(person["id"]) % CHAINS if isinstance(person, dict) else record.chain
        metrics.audit_appended(chain, record.action)
        try:
            return self._person_output(r, data, now)
        except DomainError as exc:
            raise Answered(exc) from None

    # ---------------------------------------------------------- 2207

    def _facts(self, r: SimpleNamespace, caller: Caller, data: inputs.Settle) -> rules.Facts | None:
        """What ``domain.settlement.decide`` decides from, as ``yb_his_read``
        sent it; None for what the general path decides (a cash visit, a
        person insured in another pooling area)."""
        v = r.visit
        if v is None or v["cash_fallback"]:
            return None  # a re-settlement, with its window and once-only rule
        enrolment, _ = self._enrolment(r)
        if enrolment is not None and not same_pool(enrolment.area, caller.division[:6]):
            return None  # the cross-area filings are read on the general path
        if data.acct_used_flag == "1" and getattr(r, "family", False):
            # family mutual aid: the holders' accounts are read, locked and
            # recorded on the general path alone
            return None
        person, card = self._states(r, enrolment)
        day = dt.date.fromisoformat(v["day"])
        return rules.Facts(
            institution=svc.institution(caller),
            psn_no=data.psn_no,
            visit=rules.Visit(
                id=v["id"],
                mdtrt_id=v["mdtrt_id"],
                person_id=v["person_id"],
                institution_code=v["institution_code"],
                status=v["status"],
                cash_fallback=False,
                day=day,
                med_type=v["med_type"],
            ),
            person=person,
            card=card,
            enrolment=rules.Enrolment(
                enrolment.insutype, enrolment.psn_type, enrolment.area, enrolment.status
            )
            if enrolment
            else None,
            medfee_sumamt=data.medfee_sumamt,
            fees=[benefit.Item(int(a), c, int(bp)) for a, c, bp in r.fees],
            policies=[
                benefit.Policy(t, a, y, d, cap, dict(rt)) for t, a, y, d, cap, rt in r.policies
            ],
            usage=next(
                (
                    rules.Usage(int(d), int(f))
                    for t, d, f in r.usage
                    if enrolment is not None and t == enrolment.insutype
                ),
                rules.Usage(),
            ),
            balance=int(r.balance or 0),
            use_account=data.acct_used_flag == "1",
            today=self.clock.today(),
            window_days=0,  # a cash visit took the general path above
            named=svc.named(data),
        )

    async def _settle(
        self, conn: asyncpg.Connection, headers: Any, raw: bytes, request: inputs.Request
    ) -> dict[str, Any] | None:
        env, data = request.envelope, request.input.data
        msgid = env.msgid
        req = self._request(headers, data, ("02", "03"))
        if req is None:
            return None
        found = await self._read(conn, req, headers, raw, env, data.mdtrt_id)
        if found is None:
            return None
        caller, r = found
        facts = self._facts(r, caller, data)
        if facts is None:
            return None
        # the general path's decision; a refusal raises and the general path
        # answers it (a retried msgid finds its visit settled and is replayed)
        d = rules.decide(facts)
        who = self._holder(r)
        assert who is not None
        now = self.clock.now()
        setl_id = svc._new_id("ST", caller, now)
        output = svc.answer(d, who, setl_id=setl_id, now=now, acct_in_fund=self.acct_in_fund)
        write = svc.settlement_write(d, caller, msgid=msgid, setl_id=setl_id, now=now)
        record = caller.record(
            channel=Channel.HIS,
            action=f"his.{d.kind.value}",
            person_id=d.person_id,
            subject=setl_id,
        )
        audit = self._audit_args(record, now)
        try:
            await self._write(
                conn,
                SETTLE,
                caller.access_id,
                req[2],
                svc.scope(caller),
                msgid,
                idempotency.fingerprint("2207", request.sent),
                json.dumps(output, ensure_ascii=False),
                *backends.settle_args(write),
                *[a for i, a in enumerate(audit) if i != 6],  # the person is the write's
                *backends.his_settle_audit(self.audit_key, write),  # the ledger entry's record
            )
        except asyncpg.RaiseError as exc:
            if "yb:stale" in str(exc):
                raise Stale from None
            return None  # a replayed nonce or msgid: the general path answers
        backends.counted_fast(write, record)
        return output
