"""2207 on the fast path after migration 0024 (fewer statements per
settlement, issue 18): the institution's and the fund's accounts are made on
their first settlement and found on the next, the postings are the entry's in
its order, and the two audit entries of a settlement (the ledger record, then
the settlement) follow each other on the person's chain and verify."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.his.client import His
from yibao.domain.audit import CHAINS
from yibao.domain.ledger_audit import ENTRY_ACTION
from yibao.services.ledger import ledger
from yibao.store import auditlog
from yibao.store.models import AuditEntry, LedgerAccount, LedgerEntry, Posting

pytestmark = pytest.mark.postgresql_only

LINES = [("250101001", "400.00"), ("XA02BCA211E001", "286.00")]
TOTAL = "686.00"


def _settle(his: His, person: dict[str, Any]) -> dict[str, Any]:
    psn_no = his.person(person["card_no"])["baseinfo"]["psn_no"]
    mdtrt_id = his.register(psn_no, person["card_no"])
    his.fees(mdtrt_id, psn_no, LINES)
    return his.ok("2207", his.settle_input(mdtrt_id, psn_no, person["card_no"], TOTAL))


def test_first_and_later_settlements_write_accounts_postings_and_two_linked_entries(
    his: His, app: Any, demo: dict[str, Any], services: Any
) -> None:
    fast = app.state.his_fast
    inst_code = f"INST:{his.code}:"
    with services.uow() as u:
        accounts_before = set(u.session.scalars(select(LedgerAccount.code)))

    served = fast.served
    settled = [_settle(his, p)["setlinfo"] for p in demo["persons"][:2]]
    assert fast.served - served == 4  # each person's 1101 and 2207
    for s in settled:
        assert s["hifp_pay"] > 0 and s["acct_pay"] > 0

    with services.uow() as u:
        session = u.session
        assert ledger.check(session).ok
        assert auditlog.verify(session).ok
        made = set(session.scalars(select(LedgerAccount.code))) - accounts_before
        # the institution's first settlements make its sub-accounts
        assert not any(c.startswith(inst_code) for c in accounts_before)
        assert any(c.startswith(inst_code) for c in made)
        for s in settled:
            person = int(s["psn_no"])
            entry = session.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.person_id == person)
                .order_by(LedgerEntry.id.desc())
                .limit(1)
            ).one()
            postings = session.scalars(
                select(Posting).where(Posting.entry_id == entry.id).order_by(Posting.id)
            ).all()
            assert len(postings) >= 3 and sum(p.amount for p in postings) == 0
            ia = session.scalars(
                select(LedgerAccount.id).where(LedgerAccount.code == f"IA:{person}")
            ).one()
            assert [p.amount for p in postings if p.account_id == ia] == [
                -round(s["acct_pay"] * 100)
            ]
            settlement = session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == "his.settlement", AuditEntry.subject == s["setl_id"]
                )
            ).one()
            assert settlement.chain == person % CHAINS and settlement.person_id == person
            # the ledger entry's record just before it on the person's chain
            before = session.scalars(
                select(AuditEntry).where(
                    AuditEntry.chain == settlement.chain, AuditEntry.seq == settlement.seq - 1
                )
            ).one()
            assert before.action == ENTRY_ACTION and before.subject == entry.kind
            assert before.person_id == person and before.id == settlement.id - 1
            assert settlement.prev_hash == before.hash
