"""Serving, the database schema and the demo city."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from yibao.cli.common import app, services
from yibao.clock import CHINA
from yibao.config import get_settings

if TYPE_CHECKING:
    from yibao.runtime import Services

db_app = typer.Typer(help="database 数据库", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes (PostgreSQL only)")] = 1,
    access_log: Annotated[
        bool,
        typer.Option(
            help="a line per HTTP request on standard output; off where the TLS proxy in "
            "front logs them (the audit log records every access to a person's data either way)"
        ),
    ] = True,
) -> None:
    """Serve the API and every web channel."""
    import uvicorn

    settings = get_settings()
    settings.effective_secret_key  # noqa: B018 - make it on first run, before workers start
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "info",
        "access_log": access_log,
    }
    if workers > 1:
        uvicorn.run("yibao.asgi:app", workers=workers, **common)
    else:
        from yibao.app import create_app

        uvicorn.run(create_app(settings), **common)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database, or upgrade it to the newest schema."""
    from yibao.store import migrate

    settings = get_settings()
    url = settings.effective_database_url
    migrate.upgrade(url)
    shown = url.split("@")[-1] if "@" in url else url
    typer.echo(f"database is at the newest schema ({', '.join(migrate.heads(url))}): {shown}")


@app.command()
def demo(
    as_json: Annotated[
        bool, typer.Option("--json", help="print the demo fixtures as JSON only")
    ] = False,
) -> None:
    """Load the demo city once and print how to log in."""
    from yibao import demo as demo_service

    data = demo_service.fixtures()
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    with services() as svc:
        loaded = demo_service.load(svc)
        typer.echo(
            "demo city loaded 演示数据已载入"
            if loaded
            else "demo city already loaded 演示数据已存在"
        )
        typer.echo("")
        typer.echo(
            "Web 网页: portal 网上服务 http://127.0.0.1:8000/portal/ "
            "(persons below: ID or account number + password)"
        )
        typer.echo("          counter 柜台 http://127.0.0.1:8000/counter/ (staff below)")
        _demo_kiosk_line(svc)
        typer.echo("API: http://127.0.0.1:8000/docs — staff log in with POST /api/v1/auth/login")
        typer.echo(f"Staff 工作人员 (password 密码: {data['staff'][0]['password']}):")
        for s in data["staff"]:
            typer.echo(f"  {s['username']:<14} {s['role']:<20} {s['division']:<10} {s['name']}")
        typer.echo("Insured persons 参保人员:")
        for p in data["persons"]:
            typer.echo(
                f"  {p['name']}  ID {p['certno']}  account {p['account_no']}  card {p['card_no']}  "
                f"PIN {p['pin']}  password {p['password']}"
            )
        typer.echo("Designated institutions 定点医药机构:")
        for i in data["institutions"]:
            typer.echo(f"  {i['code']}  {i['name']}  secret {i['secret']}")
        typer.echo("All of it as JSON: yibao demo --json")


def _demo_kiosk_line(svc: Services) -> None:
    """The one step into the demo terminal: a link that activates this browser
    as T-HZZX-01 while no machine is bound to it."""
    from yibao import demo as demo_service
    from yibao.domain.errors import DomainError

    term = demo_service.DEMO_TERMINAL
    try:
        issued = demo_service.terminal_activation(svc.uow())
    except DomainError as exc:
        typer.echo(f"          kiosk 自助终端 {term}: {exc.message}")
        return
    if issued is None:
        typer.echo(
            f"          kiosk 自助终端 http://127.0.0.1:8000/kiosk/ ({term} is activated "
            f"已激活; for another browser: yibao kiosk issue {term}) (card number + PIN)"
        )
        return
    typer.echo(
        f"          kiosk 自助终端 http://127.0.0.1:8000/kiosk/activate?terminal={term}"
        f"&code={issued.activation_code} (activates this browser as {term}, once, until "
        f"{issued.expires_at.astimezone(CHINA):%Y-%m-%d %H:%M}; then card number + PIN)"
    )
