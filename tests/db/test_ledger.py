import datetime as dt
import threading

import pytest
from sqlalchemy import func, select, text

from tests.helpers import SYSTEM, add_person
from yibao.domain import ledger as codes
from yibao.domain.errors import DomainError
from yibao.services.ledger import ledger
from yibao.store.models import AuditEntry, LedgerAccount, LedgerEntry, Person, Posting


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


# ------------------------------------------------- forgery (issue 14)


def _problems(services):
    return ledger.verify(services.uow()).problems


def test_ledger_entries_and_postings_refuse_update_and_delete(uow, demo):
    from sqlalchemy.exc import DBAPIError

    for sql in (
        "UPDATE ledger_entries SET memo = 'x'",
        "DELETE FROM ledger_entries",
        "UPDATE ledger_postings SET amount = amount",
        "DELETE FROM ledger_postings",
    ):
        with uow, pytest.raises(DBAPIError, match="append-only"):
            uow.session.execute(text(sql))
    with uow:
        assert uow.session.execute(select(func.count()).select_from(Posting)).scalar_one() > 0


def _forge_payment(conn, person_id, amount):
    """1,000 yuan from the fund to a person, balanced, balances adjusted:
    every sum still holds."""
    fund_id = conn.execute(
        text("SELECT id FROM ledger_accounts WHERE code LIKE 'FUND:%' ORDER BY id LIMIT 1")
    ).scalar_one()
    ia_id = conn.execute(
        text("SELECT id FROM ledger_accounts WHERE code = :c"), {"c": codes.individual(person_id)}
    ).scalar_one()
    entry_id = conn.execute(
        text(
            "INSERT INTO ledger_entries (idem_key, kind, person_id, memo, at, result) "
            "VALUES ('forged-1', 'settlement', :p, '', :at, '{}') RETURNING id"
        ),
        {"p": person_id, "at": "2026-11-23 02:00:00"},
    ).scalar_one()
    for account, amt in ((fund_id, -amount), (ia_id, amount)):
        conn.execute(
            text(
                "INSERT INTO ledger_postings (entry_id, account_id, person_id, amount, at) "
                "VALUES (:e, :a, NULL, :amt, :at)"
            ),
            {"e": entry_id, "a": account, "amt": amt, "at": "2026-11-23 02:00:00"},
        )
        conn.execute(
            text("UPDATE ledger_accounts SET balance = balance + :amt WHERE id = :a"),
            {"amt": amt, "a": account},
        )
    return entry_id


def test_a_balanced_forged_entry_with_its_balances_adjusted_is_found(services, demo, backend):
    from tests.db.tampering import behind_the_back

    person = demo["persons"][0]
    with services.uow() as u:
        pid = u.session.execute(
            select(Person.id).where(Person.certno == person["certno"])
        ).scalar_one()
    with behind_the_back(services.engine, backend) as conn:
        forged = _forge_payment(conn, pid, 1_000_00)
    assert _problems(services) == [
        f"ledger entry id {forged} (forged-1): has no audit record: "
        "written behind the application's back"
    ]


def test_a_posting_changed_with_the_balances_adjusted_is_found(services, demo, backend):
    from tests.db.tampering import behind_the_back

    with behind_the_back(services.engine, backend) as conn:
        entry_id, key = conn.execute(
            text(
                "SELECT e.id, e.idem_key FROM ledger_entries e WHERE e.kind = 'contribution' "
                "ORDER BY e.id LIMIT 1"
            )
        ).one()
        # the bank clearing account's posting first: it may go below zero
        postings = conn.execute(
            text(
                "SELECT p.id, p.account_id FROM ledger_postings p "
                "JOIN ledger_accounts a ON a.id = p.account_id WHERE p.entry_id = :e "
                "ORDER BY a.allow_negative DESC, p.id"
            ),
            {"e": entry_id},
        ).all()
        # a yuan less on the bank's posting, a yuan more on another: still balanced
        for (posting_id, account_id), amt in ((postings[0], -100), (postings[-1], 100)):
            conn.execute(
                text("UPDATE ledger_postings SET amount = amount + :amt WHERE id = :id"),
                {"amt": amt, "id": posting_id},
            )
            conn.execute(
                text("UPDATE ledger_accounts SET balance = balance + :amt WHERE id = :a"),
                {"amt": amt, "a": account_id},
            )
    problems = _problems(services)
    assert len(problems) == 1
    assert problems[0].startswith(f"ledger entry id {entry_id} ({key}): its postings, kind or ")


def test_an_account_renamed_under_its_postings_is_found(services, demo, backend):
    """Two persons' individual accounts swapped: every balance still equals
    its postings' sum, but the postings are no longer on the accounts their
    entries' records name."""
    from tests.db.tampering import behind_the_back

    with behind_the_back(services.engine, backend) as conn:
        a, b = conn.execute(
            text(
                "SELECT id, code FROM ledger_accounts WHERE kind = 'individual' ORDER BY id LIMIT 2"
            )
        ).all()
        for account, code in ((a.id, "swap"), (b.id, a.code), (a.id, b.code)):
            conn.execute(
                text("UPDATE ledger_accounts SET code = :c WHERE id = :id"),
                {"c": code, "id": account},
            )
    problems = _problems(services)
    assert problems and all("differ from its audit record" in p for p in problems)


def test_orphan_postings_and_entries_without_postings_are_named(services, demo, backend):
    from tests.db.tampering import behind_the_back

    with behind_the_back(services.engine, backend) as conn:
        gone, key = conn.execute(
            text("SELECT id, idem_key FROM ledger_entries ORDER BY id DESC LIMIT 1")
        ).one()
        orphans = (
            conn.execute(
                text("SELECT id FROM ledger_postings WHERE entry_id = :e ORDER BY id"), {"e": gone}
            )
            .scalars()
            .all()
        )
        conn.execute(text("DELETE FROM ledger_entries WHERE id = :e"), {"e": gone})
        bare, bare_key = conn.execute(
            text("SELECT id, idem_key FROM ledger_entries ORDER BY id LIMIT 1")
        ).one()
        bare_postings = conn.execute(
            text("SELECT account_id, amount FROM ledger_postings WHERE entry_id = :e"), {"e": bare}
        ).all()
        conn.execute(text("DELETE FROM ledger_postings WHERE entry_id = :e"), {"e": bare})
        for account, amount in bare_postings:
            conn.execute(
                text("UPDATE ledger_accounts SET balance = balance - :amt WHERE id = :a"),
                {"amt": amount, "a": account},
            )
    with services.uow() as u:
        (record,) = [
            e.id
            for e in u.session.execute(
                select(AuditEntry).where(AuditEntry.action == "ledger.entry")
            ).scalars()
            if e.detail["key"] == key
        ]
    problems = _problems(services)
    for posting in orphans:
        assert f"posting id {posting}: its ledger entry id {gone} is missing" in problems
    assert f"ledger entry id {bare} ({bare_key}): has no postings" in problems
    assert (
        f"audit entry id {record} records ledger entry {key}, which is missing (removed)"
        in problems
    )
    assert any(p.startswith(f"ledger entry id {bare} ({bare_key}): its postings") for p in problems)


def test_every_ledger_entry_leaves_one_audit_record(services, demo):
    """The demo city's entries, written by ledger.post and the monthly
    credit, each have their record; ledger check compares them."""
    with services.uow() as u:
        entries = u.session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
        records = u.session.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'ledger.entry'")
        ).scalar_one()
    assert entries == records > 0
    assert _problems(services) == []


def test_an_account_allowed_below_zero_against_its_kind_is_named(services, demo):
    with services.engine.begin() as conn:
        code = conn.execute(
            text("SELECT code FROM ledger_accounts WHERE kind = 'individual' ORDER BY id LIMIT 1")
        ).scalar_one()
        conn.execute(
            text("UPDATE ledger_accounts SET allow_negative = true WHERE code = :c"), {"c": code}
        )
    assert _problems(services) == [
        f"account {code}: may go below zero, but a individual account may not"
    ]
