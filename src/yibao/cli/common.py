"""What every ``yibao`` command shares: the root command, the services on
the configured database (with the clock the caller handed in), and how a
refusal is shown: its message and exit status 1, never a trace."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NoReturn

import typer

from yibao.clock import Clock
from yibao.config import Settings, get_settings
from yibao.domain.actors import Actor
from yibao.domain.errors import DomainError
from yibao.runtime import Services

app = typer.Typer(
    help="yibao 医保卡服务 — medical insurance card service",
    no_args_is_help=True,
    # an unexpected failure shows its trace to the operator, never local values (secrets)
    pretty_exceptions_show_locals=False,
)

# The clock a caller handed the command as its ``obj`` (the tests do, with
# ``CliRunner.invoke(..., obj=clock)``, so that no outcome depends on the day
# the suite runs); else the wall clock.
_given_clock: ContextVar[Clock | None] = ContextVar("yibao_cli_clock", default=None)


@app.callback()
def _root(ctx: typer.Context) -> None:
    _given_clock.set(ctx.obj if isinstance(ctx.obj, Clock) else None)


def clock() -> Clock:
    return _given_clock.get() or Clock()


@contextmanager
def services(settings: Settings | None = None) -> Iterator[Services]:
    """The services on the configured database; a refusal (``DomainError``)
    inside is its message and exit status 1."""
    svc = Services.from_settings(settings or get_settings(), clock=clock())
    try:
        yield svc
    except DomainError as exc:
        fail(exc.message)
    finally:
        svc.close()


def fail(message: str) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: not a date (YYYY-MM-DD): {value!r}")


def system_actor() -> Actor:
    """Who acts when an operator runs a command on the server itself."""
    return Actor.system("cli")
