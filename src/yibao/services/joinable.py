"""A use case that the staff side still calls inside its own unit of work.

TODO(merge): the counter, the staff API, the ``yibao`` command and the demo
(converted on the ``staff`` branch) call a few of the person's channels'
services (terminal registration and codes, portal activation codes, the
telephone PIN, the telephone console's call view) inside ``with uow:`` and
commit themselves. Until they call them with a fresh unit of work, such a
call runs as a step of the caller's transaction; called with a fresh unit of
work, the function is an ordinary use case (``services.tx.use_case``). Once
the staff branch is merged, replace ``joinable_use_case`` by ``use_case`` and
delete this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from yibao.services.tx import UseCase
from yibao.store.uow import UnitOfWork

P = ParamSpec("P")
R = TypeVar("R")


class JoinableUseCase(UseCase[P, R]):
    def __call__(self, uow: UnitOfWork, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if uow.is_open:  # a caller not yet converted: a step of its transaction
            return self.step(uow, *args, **kwargs)
        return super().__call__(uow, *args, **kwargs)


def joinable_use_case(step: Callable[Concatenate[UnitOfWork, P], R]) -> JoinableUseCase[P, R]:
    return JoinableUseCase(step)
