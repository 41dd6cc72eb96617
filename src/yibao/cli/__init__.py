"""The ``yibao`` command: one module per group of commands, sharing
``yibao.cli.common``."""

from yibao.cli import admin, cards, money, server, telephone
from yibao.cli import backup as backup  # registers `yibao backup`
from yibao.cli import ha as ha  # issue 17: yibao ha demo
from yibao.cli.common import app
from yibao.domain.errors import DomainError
from yibao.store.db import DatabaseUnreachable

__all__ = ["admin", "app", "cards", "main", "money", "server", "telephone"]


def main() -> None:
    import typer

    try:
        app()
    except DomainError as exc:  # a refusal is a message, never a trace
        typer.secho(exc.message, fg=typer.colors.RED, err=True)
        raise SystemExit(1) from None
    except DatabaseUnreachable as exc:  # so is a database that cannot be reached
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise SystemExit(1) from None
