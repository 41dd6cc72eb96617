"""The unit of work: one transaction per use case, audit written inside it."""

from __future__ import annotations

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

    Audit records are buffered and appended at commit, in the same
    transaction as the change they describe, with the chain heads locked in
    a fixed order.
    """

    session: Session

    def __init__(
        self, session_factory: sessionmaker[Session], clock: Clock, settings: Settings
    ) -> None:
        self._session_factory = session_factory
        self.clock = clock
        self.settings = settings
        self._audit: list[AuditRecord] = []
        self._depth = 0

    def __enter__(self) -> UnitOfWork:
        if self._depth == 0:
            self.session = self._session_factory()
            self._audit = []
        self._depth += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0:
            # close() rolls back whatever was not committed and detaches the
            # objects with their loaded state, so a caller may still read them.
            self._audit = []
            self.session.close()

    @property
    def is_open(self) -> bool:
        return self._depth > 0

    @contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        """Open for one use case (``services.tx.use_case``); refused when open
        already: a use case inside another calls the other's ``step``."""
        if self._depth:
            raise RuntimeError(
                "a use case was called inside an open unit of work; call its .step instead"
            )
        with self:
            yield self

    def audit(self, record: AuditRecord) -> None:
        self._audit.append(record)

    def commit(self) -> None:
        # Nested use (one service calling another) commits once, at the outside.
        if self._depth > 1:
            return
        if self._audit:
            auditlog.append(self.session, self._audit, self.clock.now())
            self._audit = []
        self.session.commit()

    def rollback(self) -> None:
        self._audit = []
        self.session.rollback()
