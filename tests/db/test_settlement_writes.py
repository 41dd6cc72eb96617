"""The settlement's write has two implementations (services/ledger/writes.py):
the ORM's, through the ledger's posting function, and PostgreSQL's
server-side ``yb_settle``. One table of settlement cases runs through each,
on two copies of the same database with the same clock, and every row they
write is compared: ledger entries, postings, balances, settlements, visits,
the year's usage, the request keys and the audit actions. Both also refuse
to write what was decided from facts that changed since."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select, text

from tests.helpers import START
from yibao.clock import FixedClock
from yibao.config import Settings
from yibao.domain import settlement as rules
from yibao.domain.actors import Actor, Channel
from yibao.runtime import Services
from yibao.services.access.institution_auth import Caller
from yibao.services.ledger import backends
from yibao.services.settlement import policy
from yibao.services.settlement import settlement as svc
from yibao.store.models import Institution, LedgerEntry, Person, Settlement

_ids = itertools.count(1)

# fen: the demo's policy for 310 in 2026, with an annual fund cap of 600.00
# so that the cases reach it
CAP = 600_00


def _services(url: str, settle: str) -> Services:
    settings = Settings(database_url=url, secret_key="test", argon2_profile="fast")
    return Services.from_settings(settings, clock=FixedClock(START), settle=settle)  # type: ignore[arg-type]


@pytest.fixture
def twin_databases(backend: str, pg_cluster: Any, pg_templates: dict[str, str]) -> Iterator[dict]:
    """Two copies of the demo database: one written by each implementation."""
    if backend != "postgresql":
        pytest.skip("yb_settle is PostgreSQL's")
    names = {impl: f"w{next(_ids)}{impl}" for impl in ("orm", "sql")}
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        for name in names.values():
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_templates["demo"]}"')
    made = {impl: _services(pg_cluster.url(name), impl) for impl, name in names.items()}
    yield made
    for services in made.values():
        services.close()
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        for name in names.values():
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _caller(services: Services, code: str) -> Caller:
    with services.uow() as u:
        inst = u.session.execute(select(Institution).where(Institution.code == code)).scalar_one()
        return Caller.of(inst, inst.access_id, signed_in=True)


def _person(services: Services, certno: str) -> int:
    with services.uow() as u:
        return int(u.session.execute(select(Person.id).where(Person.certno == certno)).scalar_one())


class Script:
    """The HIS's calls, straight to the use cases, on one database."""

    def __init__(self, services: Services, demo: dict[str, Any]) -> None:
        self.services = services
        self.hospital = _caller(services, demo["institutions"][0]["code"])
        self.seq = itertools.count(1)

    def msg(self, infno: str, inp: dict[str, Any]) -> svc.Message:
        return svc.Message(f"CMP{next(self.seq):06d}", infno, inp)

    def visit(
        self,
        psn_no: str,
        cert: tuple[str, str],
        lines: list[tuple[str, int]],
        **extra: str,
    ) -> str:
        data = {
            "psn_no": psn_no,
            "begntime": "2026-11-23 09:00:00",
            "mdtrt_cert_type": cert[0],
            "mdtrt_cert_no": cert[1],
            **extra,
        }
        out = svc.register(
            self.services.uow(), self.hospital, msg=self.msg("2201", {"data": data}), data=data
        )
        mdtrt_id = str(out["data"]["mdtrt_id"])
        feedetail = [
            {
                "feedetl_sn": f"F{i}",
                "mdtrt_id": mdtrt_id,
                "psn_no": psn_no,
                "med_list_codg": code,
                "det_item_fee_sumamt": f"{amount / 100:.2f}",
            }
            for i, (code, amount) in enumerate(lines)
        ]
        svc.upload_fees(
            self.services.uow(),
            self.hospital,
            msg=self.msg("2204", {"feedetail": feedetail}),
            lines=feedetail,
        )
        return mdtrt_id

    def settle(
        self, mdtrt_id: str, psn_no: str, cert: tuple[str, str], total: int, acct: str = "1"
    ) -> dict[str, Any]:
        data = {
            "psn_no": psn_no,
            "mdtrt_cert_type": cert[0],
            "mdtrt_cert_no": cert[1],
            "medfee_sumamt": f"{total / 100:.2f}",
            "mdtrt_id": mdtrt_id,
            "acct_used_flag": acct,
        }
        return svc.settle(
            self.services.uow(), self.hospital, msg=self.msg("2207", {"data": data}), data=data
        )

    def cancel(self, setl_id: str, mdtrt_id: str, psn_no: str) -> dict[str, Any]:
        data = {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": psn_no}
        return svc.cancel_settlement(
            self.services.uow(), self.hospital, msg=self.msg("2208", {"data": data}), data=data
        )

    def declare_failure(self, start: str, end: str) -> None:
        data = {"begntime": start, "endtime": end, "reason": "读卡器故障"}
        svc.declare_failure(
            self.services.uow(), self.hospital, msg=self.msg("9901", {"data": data}), data=data
        )


def run_cases(services: Services, demo: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The table of cases; the answers by case."""
    policy.set_policy(
        services.uow(),
        actor=Actor.system(),
        channel=Channel.CLI,
        insutype="310",
        area="330500",
        year=2026,
        deductible=300_00,
        fund_cap=CAP,
        ratios={"0": 8000, "1": 8500, "2": 8000, "3": 7500},
    )
    s = Script(services, demo)
    p = demo["persons"]
    zhang, wang, liu, chen = p[0], p[1], p[3], p[4]
    zhang_no = str(_person(services, zhang["certno"]))
    card = ("03", zhang["card_no"])
    out: dict[str, dict[str, Any]] = {}
    # ordinary: the deductible not yet met takes it all
    v = s.visit(zhang_no, card, [("250101001", 200_00)])
    out["ordinary"] = s.settle(v, zhang_no, card, 200_00)
    # the deductible crossed: 100.00 to it, 75 % of 400.00 from the fund
    crossing = s.visit(zhang_no, card, [("250101001", 500_00)])
    out["deductible crossing"] = s.settle(crossing, zhang_no, card, 500_00)
    # the cap: 300.00 of it is left, then nothing
    v = s.visit(zhang_no, card, [("250101001", 800_00), ("XA02BCA211E001", 286_00)])
    out["cap reached"] = s.settle(v, zhang_no, card, 1086_00)
    v = s.visit(zhang_no, card, [("250101001", 100_00)])
    out["beyond the cap"] = s.settle(v, zhang_no, card, 100_00)
    # the account not used: all cash
    chen_no, chen_card = str(_person(services, chen["certno"])), ("03", chen["card_no"])
    v = s.visit(chen_no, chen_card, [("250101001", 350_00)])
    out["account not used"] = s.settle(v, chen_no, chen_card, 350_00, acct="0")
    # the balance short of the personal part: the account pays it all
    wang_no, wang_card = str(_person(services, wang["certno"])), ("03", wang["card_no"])
    v = s.visit(wang_no, wang_card, [("C00000000001", 50_000_00)])
    out["balance short"] = s.settle(v, wang_no, wang_card, 50_000_00)
    # a resident, by ID number: no individual account
    resident = demo["applicants"][0]
    res_no, res_id = str(_person(services, resident["certno"])), ("02", resident["certno"])
    v = s.visit(res_no, res_id, [("250101001", 900_00)])
    out["resident"] = s.settle(v, res_no, res_id, 900_00)
    # a cash visit re-settled after the institution's equipment failure
    s.declare_failure("2026-11-20 08:00:00", "2026-11-20 12:00:00")
    liu_no, liu_card = str(_person(services, liu["certno"])), ("03", liu["card_no"])
    v = s.visit(
        liu_no,
        liu_card,
        [("250101001", 600_00)],
        begntime="2026-11-20 10:00:00",
        cash_fallback="1",
        invono="INV-CMP-1",
    )
    out["re-settlement"] = s.settle(v, liu_no, liu_card, 600_00)
    # a cancellation: the deductible-crossing settlement reversed
    out["cancellation"] = s.cancel(
        out["deductible crossing"]["setlinfo"]["setl_id"], crossing, zhang_no
    )
    return out


def _normalizer(conn: Any) -> Any:
    """Random ids (mdtrt_id, setl_id) named by their order of creation."""
    names: dict[str, str] = {}
    for i, (mdtrt_id,) in enumerate(conn.execute(text("SELECT mdtrt_id FROM visits ORDER BY id"))):
        names[mdtrt_id] = f"<visit {i}>"
    for i, (setl_id,) in enumerate(
        conn.execute(text("SELECT setl_id FROM settlements ORDER BY id"))
    ):
        names[setl_id] = f"<settlement {i}>"
    pattern = re.compile("|".join(re.escape(k) for k in names)) if names else None

    def norm(value: Any) -> Any:
        if isinstance(value, str) and pattern is not None:
            return pattern.sub(lambda m: names[m.group(0)], value)
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [norm(v) for v in value]
        return value

    return norm


def dump(services: Services) -> dict[str, Any]:
    """Every row a settlement writes, without surrogate keys or random ids."""
    with services.engine.connect() as conn:
        norm = _normalizer(conn)

        def rows(sql: str) -> list[Any]:
            return [norm(list(r)) for r in conn.execute(text(sql))]

        entry_ids = {
            eid: i for i, (eid,) in enumerate(conn.execute(text("SELECT id FROM ledger_entries")))
        }
        settlements = [
            {
                **{k: v for k, v in r._mapping.items() if k not in ("id", "visit_id")},
                "entry_id": entry_ids.get(r.entry_id),
                "cancel_entry_id": entry_ids.get(r.cancel_entry_id),
            }
            for r in conn.execute(text("SELECT * FROM settlements ORDER BY id"))
        ]
        return {
            "entries": rows(
                "SELECT e.idem_key, e.kind, e.person_id, e.memo, e.at, r.idem_key, e.result "
                "FROM ledger_entries e LEFT JOIN ledger_entries r ON r.id = e.reverses_id "
                "ORDER BY e.id"
            ),
            "postings": rows(
                "SELECT e.idem_key, a.code, p.person_id, p.amount, p.at FROM ledger_postings p "
                "JOIN ledger_entries e ON e.id = p.entry_id "
                "JOIN ledger_accounts a ON a.id = p.account_id ORDER BY p.id"
            ),
            "balances": rows(
                "SELECT code, kind, person_id, area, balance, allow_negative, created_at "
                "FROM ledger_accounts ORDER BY code"
            ),
            "settlements": norm(settlements),
            "visits": rows(
                "SELECT mdtrt_id, person_id, institution_code, insutype, med_type, begntime, "
                "status, cash_fallback, invono, equipment_failure_id FROM visits ORDER BY id"
            ),
            "usage": rows(
                "SELECT person_id, insutype, year, deductible_used, fund_used FROM benefit_usage "
                "ORDER BY person_id, insutype, year"
            ),
            # the fingerprint's digest covers the random mdtrt_id: its kind only
            "request keys": rows(
                "SELECT scope, key, split_part(fingerprint, ':', 1), output, at "
                "FROM request_keys ORDER BY id"
            ),
            "audit": rows(
                "SELECT action, actor_kind, actor_id, channel, person_id, subject, detail "
                "FROM audit_log ORDER BY id"
            ),
        }


def test_both_implementations_write_the_same_rows(
    twin_databases: dict[str, Services], demo: dict[str, Any]
) -> None:
    answers = {impl: run_cases(s, demo) for impl, s in twin_databases.items()}
    orm, sql = (dump(twin_databases[impl]) for impl in ("orm", "sql"))
    for table in orm:
        assert orm[table] == sql[table], table
    # the answers alike but for the ids made at random
    for case in answers["orm"]:
        a, b = answers["orm"][case]["setlinfo"], answers["sql"][case]["setlinfo"]
        assert {k: v for k, v in a.items() if k not in ("setl_id", "mdtrt_id")} == {
            k: v for k, v in b.items() if k not in ("setl_id", "mdtrt_id")
        }, case
    # what the table covers, so that a change to the cases keeps it covering it
    got = {case: a["setlinfo"] for case, a in answers["orm"].items()}
    assert got["ordinary"]["act_pay_dedc"] == 200_00 and got["ordinary"]["hifp_pay"] == 0
    assert got["deductible crossing"]["act_pay_dedc"] == 100_00
    assert got["deductible crossing"]["hifp_pay"] == 300_00
    assert got["cap reached"]["hifp_pay"] == CAP - 300_00
    assert got["beyond the cap"]["hifp_pay"] == 0
    assert got["account not used"]["acct_pay"] == 0 and got["account not used"]["psn_cash_pay"] > 0
    assert got["balance short"]["balc"] == 0 and got["balance short"]["psn_cash_pay"] > 0
    assert got["resident"]["acct_pay"] == 0 and got["resident"]["insutype"] == "390"
    assert got["re-settlement"]["setl_type"] == "resettlement"
    assert got["re-settlement"]["refund_owed"] > 0
    assert got["cancellation"]["hifp_pay"] == -300_00
    with twin_databases["sql"].uow() as u:
        assert u.session.execute(select(func.count()).select_from(Settlement)).scalar_one() == 8


@pytest.mark.parametrize("impl", ["orm", "sql"])
@pytest.mark.parametrize("changed", ["visit", "usage", "balance"])
def test_a_write_decided_on_facts_that_changed_writes_nothing(
    backend: str, db_url: str, demo: dict[str, Any], impl: str, changed: str
) -> None:
    """Each implementation writes only what the decision saw still holds:
    the visit open, the year's usage and the balance as read."""
    if backend != "postgresql" and impl == "sql":
        pytest.skip("yb_settle is PostgreSQL's")
    services = _services(db_url, impl)
    try:
        s = Script(services, demo)
        zhang = demo["persons"][0]
        psn_no, card = str(_person(services, zhang["certno"])), ("03", zhang["card_no"])
        mdtrt_id = s.visit(psn_no, card, [("250101001", 500_00)])
        data = {
            "psn_no": psn_no,
            "mdtrt_cert_type": card[0],
            "mdtrt_cert_no": card[1],
            "medfee_sumamt": "500.00",
            "mdtrt_id": mdtrt_id,
            "acct_used_flag": "1",
        }
        with services.uow().transaction() as u:
            read = svc.read_facts(u, s.hospital, data)
            entries = u.session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
            d = rules.decide(read.facts)
            write = svc.settlement_write(
                d, s.hospital, msgid="STALE-1", setl_id="ST-STALE", now=u.clock.now()
            )
            if changed == "visit":
                u.session.execute(
                    text("UPDATE visits SET status = 'cancelled' WHERE mdtrt_id = :m"),
                    {"m": mdtrt_id},
                )
            elif changed == "usage":
                write = rules.SettlementWrite(
                    **{
                        **write.__dict__,
                        "usage_seen": rules.Usage(write.usage_seen.deductible_used + 1, 0),
                    }
                )
            else:
                write = rules.SettlementWrite(
                    **{**write.__dict__, "balance_seen": write.balance_seen + 1}
                )
            with pytest.raises(backends.Stale):
                backends.of(u.session).settle(u, write)
            assert (
                u.session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
                == entries
            )
            assert u.session.execute(select(func.count()).select_from(Settlement)).scalar_one() == 0
            # as decided, it is written
            if changed != "visit":
                original = svc.settlement_write(
                    d, s.hospital, msgid="STALE-2", setl_id="ST-FRESH", now=u.clock.now()
                )
                backends.of(u.session).settle(u, original)
                assert (
                    u.session.execute(select(func.count()).select_from(Settlement)).scalar_one()
                    == 1
                )
    finally:
        services.close()


def test_the_backend_is_chosen_once_from_the_dialect(services: Services, backend: str) -> None:
    """SQLite writes through the ORM; PostgreSQL through yb_settle unless
    asked otherwise (the tests above compare both)."""
    from yibao.services.ledger import writes

    expected = writes.settle_sql if backend == "postgresql" else writes.settle_orm
    assert services.backend.settle is expected
    with services.uow() as u:
        assert backends.of(u.session) is services.backend
