"""Cards and self-service terminals."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from yibao.cli.common import app, services
from yibao.clock import CHINA

if TYPE_CHECKING:
    from yibao.services.access.terminals import IssuedCode

cards_app = typer.Typer(help="cards 卡片", no_args_is_help=True)
app.add_typer(cards_app, name="cards")


@cards_app.command("sweep")
def cards_sweep() -> None:
    """Send cards not collected within the pickup window back to the county center."""
    from yibao.domain.actors import Actor, Channel
    from yibao.services.cards import cards as card_service

    with services() as svc:
        cards = card_service.return_overdue_pickups(
            svc.uow(), actor=Actor.system("sweep"), channel=Channel.CLI
        )
        typer.echo(f"{len(cards)} card(s) returned to their county center")


# ---- self-service terminals: registered by staff, activated on the machine
kiosk_app = typer.Typer(help="self-service terminals 自助终端", no_args_is_help=True)
app.add_typer(kiosk_app, name="kiosk")


def _print_code(issued: IssuedCode) -> None:
    typer.echo(f"terminal 终端 {issued.terminal.code}")
    typer.echo(f"activation code 激活码 (shown once 只显示一次): {issued.activation_code}")
    typer.echo(f"valid until 有效至: {issued.expires_at.astimezone(CHINA):%Y-%m-%d %H:%M} (China)")
    typer.echo("on the terminal, open /kiosk/ and give the terminal code and the activation code")


@kiosk_app.command("register")
def kiosk_register(
    code: Annotated[str, typer.Argument(help="terminal code, e.g. T-HZZX-02")],
    location: Annotated[str, typer.Option(help="where the machine stands")],
    division: Annotated[str, typer.Option(help="division code of its area")],
) -> None:
    """Register a terminal and print its one-time activation code."""
    from yibao.domain.actors import Actor, Channel
    from yibao.services.access import terminals as kiosk

    with services() as svc:
        issued = kiosk.register_terminal(
            svc.uow(),
            actor=Actor.system("cli"),
            channel=Channel.CLI,
            code=code,
            location=location,
            division_code=division,
        )
        _print_code(issued)


@kiosk_app.command("issue")
def kiosk_issue(code: Annotated[str, typer.Argument(help="terminal code")]) -> None:
    """Issue a new activation code; the machine bound so far stops working at once."""
    from yibao.domain.actors import Actor, Channel
    from yibao.services.access import terminals as kiosk

    with services() as svc:
        issued = kiosk.issue_code(
            svc.uow(), actor=Actor.system("cli"), channel=Channel.CLI, code=code
        )
        _print_code(issued)


@kiosk_app.command("deactivate")
def kiosk_deactivate(code: Annotated[str, typer.Argument(help="terminal code")]) -> None:
    """Take a terminal out of service; its machine and any pending code stop working."""
    from yibao.domain.actors import Actor, Channel
    from yibao.services.access import terminals as kiosk

    with services() as svc:
        terminal = kiosk.deactivate_terminal(
            svc.uow(), actor=Actor.system("cli"), channel=Channel.CLI, code=code
        )
        typer.echo(f"terminal {terminal.code} deactivated 终端已停用")


@kiosk_app.command("list")
def kiosk_list() -> None:
    """Every terminal with its location, area and state."""
    from yibao.domain.actors import Actor
    from yibao.services.access import terminals as kiosk

    with services() as svc:
        now = svc.clock.now()
        for t in kiosk.list_terminals(svc.uow(), actor=Actor.system("cli")):
            state = kiosk.terminal_state(t, now)
            since = t.activated_at if state == "activated" else t.activation_expires
            when = f" {since.astimezone(CHINA):%Y-%m-%d %H:%M}" if since else ""
            typer.echo(f"{t.code:<14} {t.division_code:<10} {state + when:<28} {t.location}")
