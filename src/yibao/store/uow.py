"""The unit of work: one transaction per use case, audit written inside it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker

from yibao.clock import Clock
from yibao.config import Settings
from yibao.domain.audit import AuditRecord
from yibao.store import auditlog


class UnitOfWork:
    """Opens a session on ``__enter__``; rolls back unless ``commit()`` was called.

    A unit of work is opened once at a time: a use case (``services.tx``)
    opens it, and another use case that needs the same transaction calls the
    first one's ``step`` instead of opening it again. Outside ``with`` its
    session cannot be reached, so nothing reads or writes around a use case's
    transaction by accident.

    Audit records are buffered and appended at commit, in the same
    transaction as the change they describe, with the chain heads locked in
    a fixed order.
    """

    def __init__(
        self, session_factory: sessionmaker[Session], clock: Clock, settings: Settings
    ) -> None:
        self._session_factory = session_factory
        self.clock = clock
        self.settings = settings
        self._audit: list[AuditRecord] = []
        self._session: Session | None = None
        # the read replica's sessions (Settings.read_replica_url), when set
        self.replica_factory: sessionmaker[Session] | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("the unit of work is not open: use it inside a use case")
        return self._session

    @property
    def is_open(self) -> bool:
        return self._session is not None

    def __enter__(self) -> UnitOfWork:
        if self._session is not None:
            raise RuntimeError(
                "the unit of work is open already: a use case inside another calls its .step"
            )
        self._session = self._session_factory()
        self._audit = []
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        self._audit = []
        if session is not None:
            # close() rolls back whatever was not committed and detaches the
            # objects with their loaded state, so a caller may still read them.
            session.close()

    @contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        """Open for one use case (``services.tx.use_case``)."""
        with self:
            yield self

    @contextmanager
    def replica_read(self) -> Iterator[tuple[Session, dt.datetime]]:
        """A session for a read that may be a little stale (a balance
        inquiry), and the time its data is as of: on the read replica when
        one is configured, else this unit of work's own session and now."""
        if self.replica_factory is None:
            yield self.session, self.clock.now()
            return
        from yibao.store.db import replica_as_of

        with self.replica_factory() as session:
            at = replica_as_of(session)
            yield session, min(at, self.clock.now()) if at is not None else self.clock.now()

    def audit(self, record: AuditRecord) -> None:
        self._audit.append(record)

    def commit(self) -> None:
        if self._audit:
            auditlog.append(self.session, self._audit, self.clock.now())
            self._audit = []
        self.session.commit()

    def rollback(self) -> None:
        self._audit = []
        self.session.rollback()
