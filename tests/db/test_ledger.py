import datetime as dt
import threading

import pytest
from sqlalchemy import func, select, text

from tests.helpers import SYSTEM, add_person
from yibao.domain import ledger as codes
from yibao.domain.errors import DomainError
from yibao.services.ledger import ledger
from yibao.store.models import LedgerAccount, LedgerEntry, Person, Posting


def fund_person(uow, person_id, amount, key):
    return ledger.post(
        uow,
        key=key,
        kind="ia_credit",
        person_id=person_id,
        legs=[
            ledger.Leg(codes.BANK, -amount, "bank"),
            ledger.Leg(codes.individual(person_id), amount, "individual", person_id),
        ],
    )


def spend(uow, person_id, amount, key):
    return ledger.post(
        uow,
        key=key,
        kind="settlement",
        person_id=person_id,
        result={"paid": amount},
        legs=[
            ledger.Leg(codes.individual(person_id), -amount, "individual", person_id),
            ledger.Leg(codes.institution("H33050200001"), amount, "institution"),
        ],
    )


def test_postings_sum_to_zero_or_nothing_is_posted(uow, demo):
    with uow, pytest.raises(ValueError):
        ledger.post(
            uow,
            key="k",
            kind="x",
            legs=[
                ledger.Leg(codes.BANK, -5, "bank"),
                ledger.Leg(codes.individual(1), 4, "individual", 1),
            ],
        )
    with uow, pytest.raises(TypeError):
        ledger.post(
            uow,
            key="k",
            kind="x",
            legs=[
                ledger.Leg(codes.BANK, -0.5, "bank"),  # type: ignore[arg-type]
                ledger.Leg(codes.individual(1), 0.5, "individual", 1),
            ],
        )  # type: ignore[arg-type]


def test_an_individual_account_never_goes_below_zero(uow, demo):
    person = add_person(uow, paid=False)
    with uow:
        fund_person(uow, person.id, 100_00, "fund-1")
        uow.commit()
    with uow, pytest.raises(DomainError) as err:
        spend(uow, person.id, 100_01, "spend-too-much")
    assert err.value.code == "account.insufficient_balance"
    with uow:
        assert ledger.individual_balance(uow.session, person.id) == 100_00
        assert ledger.find_entry(uow.session, "spend-too-much") is None
        spend(uow, person.id, 100_00, "spend-all")
        uow.commit()
    with uow:
        assert ledger.individual_balance(uow.session, person.id) == 0


def test_a_retried_request_is_applied_once_and_returns_the_first_answer(uow, demo):
    person = add_person(uow, paid=False)
    with uow:
        fund_person(uow, person.id, 500_00, "fund")
        first = spend(uow, person.id, 120_00, "settle:H1:msg-1")
        uow.commit()
    assert not first.replay
    with uow:
        again = spend(uow, person.id, 999_00, "settle:H1:msg-1")  # a retry, even with other content
        uow.commit()
        assert again.replay and again.entry.id == first.entry.id
        assert again.entry.result == {"paid": 120_00}
        assert ledger.individual_balance(uow.session, person.id) == 380_00


def test_a_correction_is_a_reversing_entry_and_only_once(uow, demo):
    person = add_person(uow, paid=False)
    with uow:
        fund_person(uow, person.id, 50_00, "fund")
        spent = spend(uow, person.id, 20_00, "spend")
        uow.commit()
    with uow:
        back = ledger.reverse(uow, entry=spent.entry, key="reverse-1")
        uow.commit()
    assert back.entry.reverses_id == spent.entry.id
    with uow, pytest.raises(DomainError) as err:
        ledger.reverse(uow, entry=spent.entry, key="reverse-2")
    assert err.value.code == "ledger.already_reversed"
    with uow:
        assert ledger.individual_balance(uow.session, person.id) == 50_00
        # nothing was updated or deleted: three entries, six postings
        kinds = (
            uow.session.execute(
                select(LedgerEntry.kind)
                .where(LedgerEntry.person_id == person.id)
                .order_by(LedgerEntry.id)
            )
            .scalars()
            .all()
        )
        assert kinds == ["ia_credit", "settlement", "reversal:settlement"]


def test_ledger_check_finds_a_balance_that_disagrees_with_its_postings(uow, demo):
    with uow:
        ledger.repeatable_read(uow.session)
        assert ledger.check(uow.session).ok
    with uow:
        uow.session.execute(
            text("UPDATE ledger_accounts SET balance = balance + 1 WHERE code LIKE 'IA:%'")
        )
        uow.session.commit()
    with uow:
        result = ledger.check(uow.session)
    assert not result.ok and all("postings sum to" in p for p in result.problems)


def test_demo_balances_equal_the_sum_of_postings(uow, demo):
    with uow:
        for acct in uow.session.execute(select(LedgerAccount)).scalars():
            total = uow.session.execute(
                select(func.coalesce(func.sum(Posting.amount), 0)).where(
                    Posting.account_id == acct.id
                )
            ).scalar_one()
            assert acct.balance == total, acct.code
            if acct.kind == "individual":
                assert acct.balance > 0


def test_history_gives_causes_and_running_balance(uow, demo):
    person = add_person(uow, paid=False)
    with uow:
        fund_person(uow, person.id, 30_00, "f1")
        spend(uow, person.id, 10_00, "s1")
        uow.commit()
    with uow:
        lines = ledger.history(uow.session, code=codes.individual(person.id))
    assert [(x.kind, x.amount, x.balance_after) for x in lines] == [
        ("settlement", -10_00, 20_00),
        ("ia_credit", 30_00, 30_00),
    ]


@pytest.mark.postgresql_only
def test_concurrent_debits_never_overdraw_one_account(services, demo, backend):
    person = add_person(services.uow(), paid=False)
    with services.uow() as work:
        fund_person(work, person.id, 1_000_00, "fund")
        work.commit()
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(6):
            try:
                with services.uow() as work:
                    spend(work, person.id, 37_00, f"t{n}-{i}")
                    # the same request retried concurrently by another thread
                    spend(work, person.id, 37_00, f"t{n}-{i}")
                    work.commit()
                result = "ok"
            except DomainError as exc:
                result = exc.code
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 60
    ok = outcomes.count("ok")
    assert ok == 1_000_00 // 37_00  # 27 debits fit, the rest were refused
    assert set(outcomes) == {"ok", "account.insufficient_balance"}
    with services.uow() as work:
        ledger.repeatable_read(work.session)
        assert ledger.check(work.session).ok
        balance = ledger.individual_balance(work.session, person.id)
        assert balance == 1_000_00 - ok * 37_00 >= 0


@pytest.mark.postgresql_only
def test_the_same_key_sent_by_two_threads_at_once_posts_once(services, demo, backend):
    person = add_person(services.uow(), paid=False)
    with services.uow() as work:
        fund_person(work, person.id, 100_00, "fund")
        work.commit()
    barrier = threading.Barrier(8)
    replays: list[bool] = []

    def worker() -> None:
        barrier.wait()
        with services.uow() as work:
            posted = spend(work, person.id, 10_00, "one-key")
            work.commit()
            replays.append(posted.replay)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(replays) == [False] + [True] * 7
    with services.uow() as work:
        assert ledger.individual_balance(work.session, person.id) == 90_00


def test_a_balance_changes_only_through_the_ledger_module():
    """No module outside services/ledger (and its SQL implementation,
    store/sql/yb_settle.sql) writes a balance: before, the monthly credit's
    raw SQL in services/contributions did."""
    import re
    from pathlib import Path

    import yibao

    root = Path(yibao.__file__).parent
    writes_balance = re.compile(
        r"UPDATE\s+ledger_accounts|update\(\s*LedgerAccount|\.balance\s*[+-]?=", re.IGNORECASE
    )
    allowed = {root / "services" / "ledger", root / "store" / "sql" / "yb_settle.sql"}
    offenders = [
        str(path.relative_to(root))
        for path in sorted(root.rglob("*"))
        if path.suffix in (".py", ".sql")
        and not any(path == a or a in path.parents for a in allowed)
        and writes_balance.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_the_monthly_credit_never_takes_the_pending_account_below_zero(uow, services, demo):
    """The credit moves money out of the area's pending account (IAPEND:)
    under the ledger's invariant: not below zero. A month whose money is not
    there is refused whole, crediting no one."""
    from yibao.services.contributions import contributions as cs

    person = add_person(uow, paid=False, name="补缴")
    with uow:
        lines = cs.assess_person(
            uow,
            actor=SYSTEM,
            channel="cli",
            enrolment=cs.enrol(
                uow,
                actor=SYSTEM,
                channel="cli",
                person=uow.session.get(Person, person.id),
                insutype=cs.EMPLOYEE,
                psn_type="flexible",
                start=dt.date(2026, 11, 1),
                base=5_000_00,
            ),
            months=[202611],
        )
        cs.record_person_payment(
            uow,
            actor=SYSTEM,
            channel="cli",
            person=uow.session.get(Person, person.id),
            lines=lines,
            amount=sum(x.employer_amount + x.individual_amount for x in lines),
            reference="r",
            key=f"drain:{person.id}",
        )
        pending = codes.ia_pending(lines[0].area)
        held = ledger.balance(uow.session, pending)
        # all of the area's pending money but a fen leaves for elsewhere
        ledger.post(
            uow,
            key=f"drain-pending:{person.id}",
            kind="test",
            legs=[
                ledger.Leg(pending, -(held - 1), "ia_pending", None, lines[0].area),
                ledger.Leg(codes.BANK, held - 1, "bank"),
            ],
        )
        uow.commit()
    with pytest.raises(DomainError) as refused:
        cs.post_month(
            services.engine, month=202611, now=services.clock.now(), backend=services.backend
        )
    assert refused.value.code == "account.insufficient_balance"
    with uow:
        assert ledger.individual_balance(uow.session, person.id) == 0
        assert ledger.balance(uow.session, pending) == 1
        assert ledger.check(uow.session).ok


def test_the_ledger_check_is_a_use_case_on_one_snapshot(services, demo):
    result = ledger.verify(services.uow())
    assert result.ok and result.accounts > 0 and result.entries > 0
