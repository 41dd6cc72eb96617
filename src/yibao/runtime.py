"""What every channel runs on: the settings, the database, the clock, and the
store's implementations for this database, built once at start-up.

``Services.from_settings()`` is the one place they are put together: the web
application, the ``yibao`` command, the tests and the benchmarks all call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from yibao.clock import Clock
from yibao.config import Settings, get_settings
from yibao.domain.audit import AuditKey
from yibao.services import security
from yibao.services.ledger import backends
from yibao.services.ledger.ledger import BACKEND_KEY
from yibao.store import auditlog
from yibao.store.db import make_engine, make_session_factory
from yibao.store.uow import UnitOfWork


@dataclass
class Services:
    """What every request needs: the database, the clock and the settings."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    clock: Clock
    # what differs between the databases (the settlement's write, the monthly
    # credit's statements, how to read one snapshot), chosen here once
    backend: backends.Backend
    # the read replica's sessions (issue 17), for balance inquiries
    replica_factory: sessionmaker[Session] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        settle: Literal["orm", "sql"] | None = None,
        **engine: Any,
    ) -> Services:
        """``engine`` are options of the engine (a benchmark names its
        connections); ``settle`` picks the settlement's write on PostgreSQL
        (the tests compare the two)."""
        settings = settings or get_settings()
        security.configure(settings.argon2_profile)
        made = make_engine(settings.effective_database_url, **engine)
        # the audit log's key, read (or made) once: it never goes to the database
        audit_key = AuditKey(settings.effective_audit_key)
        backend = backends.for_dialect(made.dialect.name, settle=settle, audit_key=audit_key)
        factory = make_session_factory(made)
        # every session carries the choice and the audit key, for a service
        # handed a session alone
        factory.configure(info={BACKEND_KEY: backend, auditlog.KEY: audit_key})
        replica = None
        if settings.read_replica_url and made.dialect.name == "postgresql":
            replica = make_session_factory(make_engine(settings.read_replica_url, pool_size=5))
            replica.configure(info={BACKEND_KEY: backend, auditlog.KEY: audit_key})
        return cls(settings, made, factory, clock or Clock(), backend, replica)

    def uow(self) -> UnitOfWork:
        """A new unit of work; a service opens and commits it."""
        uow = UnitOfWork(self.session_factory, self.clock, self.settings)
        uow.replica_factory = self.replica_factory
        return uow

    def close(self) -> None:
        self.engine.dispose()
        if self.replica_factory is not None:
            bind = self.replica_factory.kw.get("bind")
            if isinstance(bind, Engine):
                bind.dispose()
