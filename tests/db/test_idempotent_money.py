"""Payments and closings in the one idempotency layer: two overlapping
requests with one key give one effect, and both get the first answer.

The first request is held on a row the test locks, while the second one
arrives; before the layer the second had already decided "not done yet"
(its check ran before any lock) and failed on a unique key afterwards."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, text

from tests.helpers import FUND_CLERK, WUXING, wait_for_lock_waiters
from yibao.domain import ledger as codes
from yibao.domain.actors import Channel
from yibao.services.closing import closing
from yibao.services.contributions import contributions
from yibao.services.ledger import ledger
from yibao.store.models import AccountClosure, LedgerEntry, Payment, Person

pytestmark = pytest.mark.postgresql_only


def _race(services, hold_sql, params, call, n=2):
    """``call()`` from n threads while the test holds a row lock: the first
    waits on the row, the others on the first's claim of the key."""
    outcomes: list[object] = []

    def run() -> None:
        try:
            outcomes.append(call())
        except Exception as exc:  # the outcome is what the test compares
            outcomes.append(exc)

    with services.engine.connect() as holder:
        holder.execute(text(hold_sql), params)
        threads = [threading.Thread(target=run) for _ in range(n)]
        for t in threads:
            t.start()
        assert wait_for_lock_waiters(services, n)
        holder.rollback()
    for t in threads:
        t.join()
    return outcomes


def test_two_overlapping_employer_payments_with_one_key_pay_once(services, demo):
    uscc = demo["employers"][0]["uscc"]
    assessment = contributions.assess_employer(
        services.uow(), actor=FUND_CLERK, channel=Channel.API, employer_uscc=uscc, month=202612
    )

    def pay():
        return contributions.record_employer_payment(
            services.uow(),
            actor=FUND_CLERK,
            channel=Channel.API,
            employer_uscc=uscc,
            month=202612,
            amount=assessment.total,
            reference="ICBC-RACE",
            key=f"api:{uscc}:race-1",
        )

    outcomes = _race(
        services, "SELECT 1 FROM assessments WHERE id = :a FOR UPDATE", {"a": assessment.id}, pay
    )
    assert all(isinstance(o, Payment) for o in outcomes), outcomes
    assert len({o.id for o in outcomes}) == 1
    with services.uow() as u:
        n = u.session.execute(
            select(func.count()).select_from(Payment).where(Payment.reference == "ICBC-RACE")
        ).scalar_one()
        assert n == 1
        assert ledger.check(u.session).ok


def test_two_overlapping_closings_of_one_account_close_it_once(services, demo):
    zhang = demo["persons"][0]
    with services.uow() as u:
        pid = u.session.execute(
            select(Person.id).where(Person.certno == zhang["certno"])
        ).scalar_one()
        balance = ledger.individual_balance(u.session, pid)
    assert balance > 0

    def close():
        return closing.close_account(
            services.uow(),
            actor=WUXING,
            channel=Channel.API,
            account_no=zhang["account_no"],
            kind="death",
        )

    outcomes = _race(
        services,
        "SELECT 1 FROM ledger_accounts WHERE code = :c FOR UPDATE",
        {"c": codes.individual(pid)},
        close,
    )
    assert all(isinstance(o, tuple) for o in outcomes), outcomes
    assert len({o[0].closure_no for o in outcomes}) == 1
    with services.uow() as u:
        assert (
            u.session.execute(
                select(func.count())
                .select_from(AccountClosure)
                .where(AccountClosure.person_id == pid)
            ).scalar_one()
            == 1
        )
        entries = u.session.execute(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.idem_key == f"close:{pid}")
        ).scalar_one()
        assert entries == 1
        assert ledger.individual_balance(u.session, pid) == 0
        assert ledger.balance(u.session, codes.payable_heirs(pid)) == balance


def test_a_closing_sent_again_as_another_kind_is_refused_naming_the_first(services, demo):
    zhang = demo["persons"][0]
    closing.close_account(
        services.uow(),
        actor=WUXING,
        channel=Channel.API,
        account_no=zhang["account_no"],
        kind="death",
    )
    with pytest.raises(Exception) as refused:
        closing.close_account(
            services.uow(),
            actor=WUXING,
            channel=Channel.API,
            account_no=zhang["account_no"],
            kind="emigration",
        )
    assert refused.value.code == "account.closed" and "death" in refused.value.en
