"""TODO(merge): a bridge while the services of the person's channels and of
the settlement (``access.terminals``, ``access.person_login``,
``access.phone_pin``, ``inquiry.dialog``, ``settlement.policy``) become use
cases on their own branches. Once they are, every ``as_use_case(f)`` here is
``f`` and every ``step_of(f)`` is ``f.step``: replace them and delete this
module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from yibao.services.tx import UseCase, use_case
from yibao.store.uow import UnitOfWork

P = ParamSpec("P")
R = TypeVar("R")


def as_use_case(fn: Callable[Concatenate[UnitOfWork, P], R]) -> UseCase[P, R]:
    """The function as a use case: its own transaction, committed once."""
    return fn if isinstance(fn, UseCase) else use_case(fn)


def step_of(fn: Any) -> Any:
    """The function as a step of the caller's open transaction."""
    return fn.step if isinstance(fn, UseCase) else fn
