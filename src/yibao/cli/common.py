"""What every ``yibao`` command shares: the root command, the services on
the configured database (with the clock the caller handed in), and how a
refusal is shown: its message and exit status 1, never a trace."""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import NoReturn

import typer

from yibao.clock import Clock
from yibao.config import Settings, get_settings
from yibao.domain.actors import Actor
from yibao.domain.errors import DomainError
from yibao.runtime import Services
from yibao.store.db import DatabaseUnreachable, check_connection

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
    inside is its message and exit status 1, and so is a database that
    cannot be reached (a wrong role or password, a host that is down)."""
    settings = settings or get_settings()
    reachable(settings.effective_database_url)
    svc = Services.from_settings(settings, clock=clock())
    try:
        yield svc
    except DomainError as exc:
        fail(exc.message)
    finally:
        svc.close()


def reachable(url: str) -> None:
    """The database answers, or one line naming it (without its password) and
    why not, with exit status 1: never the driver's trace."""
    try:
        check_connection(url)
    except DatabaseUnreachable as exc:
        fail(str(exc))


def invoked() -> str:
    """How to run yibao again, for a command printed to be pasted:
    ``.venv/bin/yibao`` when ``make run`` ran it from the virtualenv, which is
    on no PATH; ``yibao`` when that is the same program."""
    argv0 = sys.argv[0]
    if Path(argv0).name != "yibao":
        return "yibao"
    on_path = shutil.which("yibao")
    if on_path and Path(on_path).resolve() == Path(argv0).resolve():
        return "yibao"
    return argv0


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
