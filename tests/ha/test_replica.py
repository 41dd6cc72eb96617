"""Issue 17: balance inquiries read from the standby when
``YIBAO_READ_REPLICA_URL`` names it, and say how fresh the figure is; the
multi-host URL's parts for asyncpg; a connection re-made after the server
went away is a failover seen."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import make_url, select

from tests.ha.cluster import started_cluster
from yibao import demo as demo_service
from yibao.clock import Clock
from yibao.config import Settings
from yibao.domain.actors import Actor, Channel
from yibao.domain.use import Presenter
from yibao.ops import ha
from yibao.runtime import Services
from yibao.services.inquiry.summary import account_summary
from yibao.store import db, migrate
from yibao.store.models import LedgerAccount, Person


@pytest.fixture(scope="module")
def cluster() -> Iterator[ha.HaCluster]:
    yield from started_cluster()


def _services(url: str, replica: str, tmp: str) -> Services:
    settings = Settings(
        database_url=url,
        read_replica_url=replica,
        secret_key="replica-test",
        audit_key="replica-test-audit-key-of-at-least-32-chars",
        argon2_profile="fast",
        var_dir=tmp,
    )
    return Services.from_settings(settings, clock=Clock())


@pytest.mark.failover
def test_the_balance_is_read_on_the_standby_with_its_as_of(
    cluster: ha.HaCluster, tmp_path: object
) -> None:
    url = cluster.url()
    migrate.upgrade(url)
    standby = cluster.secondary()
    services = _services(url, cluster.node_url(standby), str(tmp_path))
    try:
        demo_service.load(services)
        certno = demo_service.fixtures()["persons"][0]["certno"]
        with services.session_factory() as s:
            person = s.execute(select(Person).where(Person.certno == certno)).scalar_one()
        actor = Actor.system("test")

        def summary():  # type: ignore[no-untyped-def]
            return account_summary(
                services.uow(),
                actor=actor,
                channel=Channel.CLI,
                presenter=Presenter.STAFF,
                person_id=person.id,
            )

        deadline = time.monotonic() + 30
        while True:  # the demo's last commit replayed on the standby
            before = time.time()
            current = summary()
            if current.as_of.timestamp() >= before or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        # caught up: as of now
        assert current.as_of.timestamp() >= before
        balance = current.balance

        # the standby stops replaying; the primary moves on
        cluster.superuser(standby, "SELECT pg_wal_replay_pause()")
        try:
            time.sleep(1.1)
            written_at = time.time()
            cluster.superuser(
                cluster.primary(),
                "SET session_replication_role = replica",
                f"UPDATE ledger_accounts SET balance = balance + 100 WHERE code = 'IA:{person.id}'",
            )
            stale = summary()
            # the standby's figure, stated as of its last replayed commit
            assert stale.balance == balance
            assert stale.as_of.timestamp() < written_at
            with services.session_factory() as s:
                on_primary = s.execute(
                    select(LedgerAccount.balance).where(LedgerAccount.code == f"IA:{person.id}")
                ).scalar_one()
            assert on_primary == balance + 100
        finally:
            cluster.superuser(standby, "SELECT pg_wal_replay_resume()")
    finally:
        services.close()


def test_a_multi_host_url_gives_asyncpg_every_host() -> None:
    for url in (
        "postgresql+psycopg://u:p@/yibao?host=10.0.0.1:5433&host=10.0.0.2:5434"
        "&target_session_attrs=read-write",
        "postgresql+psycopg://u:p@/yibao?host=10.0.0.1,10.0.0.2&port=5433,5434"
        "&target_session_attrs=read-write",
    ):
        args = db.asyncpg_connect_args(make_url(url))
        assert args == {
            "host": ["10.0.0.1", "10.0.0.2"],
            "port": [5433, 5434],
            "user": "u",
            "password": "p",
            "database": "yibao",
            "target_session_attrs": "read-write",
        }
    one = db.asyncpg_connect_args(make_url("postgresql+psycopg://u:p@h:6000/d"))
    assert (one["host"], one["port"], "target_session_attrs" in one) == ("h", 6000, False)


def test_a_connection_made_again_after_a_failure_is_a_failover_seen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[int] = []
    monkeypatch.setattr(db, "_failover_seen", lambda: seen.append(1))
    lost = db.LostConnections()
    lost.connected()
    assert seen == []  # a first connection is no failover
    lost.failed()
    lost.failed()
    lost.connected()
    lost.connected()
    assert seen == [1]
