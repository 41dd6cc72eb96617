"""The transaction of a use case.

A use case is a service function that opens the unit of work, decides,
writes, audits in the same transaction and commits once (zulip's
``transaction.atomic(durable=True)`` on its ``do_*`` actions)::

    @use_case
    def report_lost(uow: UnitOfWork, *, actor: Actor, channel: str, card_no: str) -> CardView:
        ...

    cards.report_lost(services.uow(), actor=..., channel=..., card_no=...)

The channel passes a fresh unit of work and never commits. A use case is
durable: calling one inside an open unit of work is a programming error, not
a silent join, so two steps that must share a transaction call each other's
``step`` (the undecorated function) inside one use case.

When the database fails under a use case (the connection breaks, the server
goes away, perhaps during the commit), the outcome is unknown: the error
says so and to resend the same request, which the idempotency keys make safe.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, Generic, ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from yibao.domain.errors import outcome_unknown
from yibao.store.uow import UnitOfWork

P = ParamSpec("P")
R = TypeVar("R")


class UseCase(Generic[P, R]):
    """A service function run in a transaction of its own."""

    def __init__(self, step: Callable[Concatenate[UnitOfWork, P], R]) -> None:
        self.step = step
        functools.update_wrapper(self, step)

    def __call__(self, uow: UnitOfWork, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with uow.transaction():
                result = self.step(uow, *args, **kwargs)
                uow.commit()
        except (OperationalError, InterfaceError) as exc:
            # the connection broke or the server went away, perhaps during the
            # commit: the request may or may not have taken effect
            raise outcome_unknown() from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise outcome_unknown() from exc
            raise
        return result

    def __repr__(self) -> str:
        return f"<use case {self.step.__module__}.{self.step.__qualname__}>"


def use_case(step: Callable[Concatenate[UnitOfWork, P], R]) -> UseCase[P, R]:
    return UseCase(step)
