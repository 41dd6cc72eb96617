"""What one balance inquiry costs the database (issue 18): the portal's home
page reads the person, the balance and the card applications in one
transaction, with its two audit entries, and the same answer as before."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.engine.default import CACHE_HIT

from tests.channels.test_web_forms import portal_login
from yibao.domain.actors import Channel
from yibao.domain.use import Presenter
from yibao.services.access.person_login import person_actor
from yibao.services.inquiry import records
from yibao.services.inquiry.summary import account_summary
from yibao.store.models import AuditEntry, Person


def _watch(engine: Any) -> tuple[list[str], list[int]]:
    statements: list[str] = []
    commits: list[int] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _sql(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        statements.append(statement)

    @event.listens_for(engine, "commit")
    def _commit(_c: Any) -> None:
        commits.append(1)

    return statements, commits


def _reads(uow: Any, person_id: int) -> dict[str, int]:
    with uow:
        rows = uow.session.execute(
            select(AuditEntry.action, func.count())
            .where(AuditEntry.person_id == person_id, AuditEntry.channel == Channel.PORTAL)
            .group_by(AuditEntry.action)
        ).all()
    return {a: n for a, n in rows}


def test_the_portal_home_reads_in_one_transaction(client, demo, uow):
    p = demo["persons"][0]
    r = portal_login(client, p["account_no"], p["password"])
    assert r.status_code == 200
    with uow:
        pid = uow.session.execute(
            select(Person.id).where(Person.account_no == p["account_no"])
        ).scalar_one()
    before = _reads(uow, pid)
    statements, commits = _watch(client.app.state.services.engine)
    r = client.get("/portal/")
    assert r.status_code == 200 and 'data-testid="balance"' in r.text
    # the person is read once by the session and once by the page
    persons = [s for s in statements if s.lstrip().startswith("SELECT persons.id")]
    assert len(persons) == 2, "\n".join(" ".join(s.split())[:60] for s in statements)
    # the session's read, then the page's one transaction with both audit entries
    assert len(commits) == 2
    after = _reads(uow, pid)
    assert after.get("balance.read", 0) - before.get("balance.read", 0) == 1
    assert (
        after.get("records.card_progress.read", 0) - before.get("records.card_progress.read", 0)
        == 1
    )


def test_the_home_page_shows_what_the_two_reads_showed(services, demo):
    """The home page's one use case answers as the summary and the card
    progress did on their own: the last postings, the month ends, the
    applications under way."""
    p = demo["persons"][0]
    with services.uow() as uow:
        person = uow.session.execute(
            select(Person).where(Person.account_no == p["account_no"])
        ).scalar_one()
        actor = person_actor(person)
        pid = person.id
    home = records.portal_home(
        services.uow(), actor=actor, channel=Channel.PORTAL, person_id=pid, recent=5, months=12
    )
    alone = account_summary(
        services.uow(),
        actor=actor,
        channel=Channel.PORTAL,
        presenter=Presenter.HOLDER,
        person_id=pid,
        recent=5,
    )
    progress = records.card_progress(
        services.uow(), actor=actor, channel=Channel.PORTAL, person_id=pid
    )
    assert home.summary.recent == alone.recent and home.summary.recent
    assert home.summary.balance == alone.balance
    assert len(home.summary.month_ends) == 12
    assert home.summary.month_ends[-1][1] == alone.balance
    assert home.progress == progress


def test_the_home_page_reads_the_account_once_and_appends_its_audit_in_one_go(
    client, demo, uow, backend
):
    """The balance, the last postings and the month ends come from one read
    of the account; a person with no family aid is not asked about it twice;
    on PostgreSQL the audit entries and their chain head move in one statement."""
    p = demo["persons"][0]
    assert portal_login(client, p["account_no"], p["password"]).status_code == 200
    statements, _ = _watch(client.app.state.services.engine)
    r = client.get("/portal/")
    assert r.status_code == 200 and 'data-testid="balance"' in r.text
    flat = [" ".join(s.split()) for s in statements]
    listing = "\n".join(s[:80] for s in flat)
    accounts = [s for s in flat if s.startswith("SELECT ledger_accounts.")]
    assert len(accounts) == 1, listing
    family = [s for s in flat if "FROM family_payments" in s]
    assert len(family) == 1, listing  # the page's list of payments, not the relabelling
    heads = [
        s
        for s in flat
        if s.startswith("UPDATE audit_chain_heads") or "UPDATE audit_chain_heads" in s
    ]
    logs = [s for s in flat if "INSERT INTO audit_log" in s]
    assert len(heads) == 1 and len(logs) == 1, listing
    if backend == "postgresql":
        assert heads == logs  # the same statement: WITH moved AS (UPDATE ...) INSERT ...
        # and compiled once: the next page's append is SQLAlchemy's cached statement
        hits: list[object] = []

        @event.listens_for(client.app.state.services.engine, "before_cursor_execute")
        def _hit(_c: Any, _cur: Any, statement: str, _p: Any, context: Any, _m: Any) -> None:
            if "INSERT INTO audit_log" in statement:
                hits.append(context.cache_hit)

        assert client.get("/portal/").status_code == 200
        assert hits == [CACHE_HIT]
