"""Readiness: the database answers within a short time and its schema is
the code's (its Alembic revision is the migrations' head)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import anyio
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine


class NotReady(Exception):
    """Why this process should get no traffic yet: ``reason`` for anyone
    who asks, ``detail`` (the database's address, the driver's words) for
    the operator's log."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or reason


def schema_current(engine: Engine, heads: Sequence[str]) -> None:
    """Raises ``NotReady`` unless the database's revision is the code's head."""
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current != set(heads):
        have = ", ".join(sorted(current)) or "none"
        raise NotReady(
            f"database schema at {have}, the code's is {', '.join(sorted(heads))} "
            "(yibao db upgrade)"
        )


async def check(probe: Callable[[], None], timeout: float) -> None:
    """Run ``probe`` in a thread; raises ``NotReady`` with its reason, or
    when it takes longer than ``timeout`` seconds (it is left to finish in
    its thread: a hung connection attempt is the driver's to end)."""
    try:
        with anyio.fail_after(timeout):
            await anyio.to_thread.run_sync(probe, abandon_on_cancel=True)
    except TimeoutError:
        raise NotReady(f"database did not answer within {timeout:g} s") from None
