"""Serving, the database schema and the demo city."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from yibao.cli.common import app, invoked, reachable, services
from yibao.clock import CHINA
from yibao.config import Settings, get_settings
from yibao.store.db import shown_url

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
    # a wrong role, password or host is one line now, not a trace per request later
    reachable(settings.effective_database_url)
    _links(settings, host, port)
    from yibao.observability import logs

    # one JSON object per line, uvicorn's access and error lines included,
    # in every worker process (uvicorn applies log_config in each)
    logs.configure(settings.log_level)
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level.lower(),
        "access_log": access_log,
        "log_config": logs.uvicorn_log_config(settings.log_level),
        # named, not "auto": auto falls back without a word to asyncio's loop
        # and h11 when uvloop or httptools is missing, and that front took
        # half again the server's CPU per settlement (issue 18, bench.settlement)
        "loop": "uvloop",
        "http": "httptools",
    }
    if workers > 1:
        with _multiprocess_metrics(settings):
            uvicorn.run("yibao.asgi:app", workers=workers, **common)
    else:
        from yibao.app import create_app

        uvicorn.run(create_app(settings), **common)


@contextmanager
def _multiprocess_metrics(settings: Settings) -> Iterator[None]:
    """The workers' metrics in a fresh directory under var/ that a scrape
    merges (prometheus-client's multiprocess mode): set before the workers
    start and import prometheus_client, removed when the server stops."""
    from yibao.observability import metrics

    parent = settings.var_dir / "metrics"
    parent.mkdir(parents=True, exist_ok=True)
    fresh = tempfile.mkdtemp(prefix="serve-", dir=parent)
    os.environ[metrics.MULTIPROC_ENV] = fresh
    try:
        yield
    finally:
        os.environ.pop(metrics.MULTIPROC_ENV, None)
        shutil.rmtree(fresh, ignore_errors=True)


# Listening on every address: this machine's browser reaches it on loopback.
_EVERY_ADDRESS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104


def base_url(host: str, port: int) -> str:
    """Where a browser on this machine reaches ``yibao serve --host --port``."""
    shown = _EVERY_ADDRESS.get(host, host)
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def _links(settings: Settings, host: str, port: int) -> None:
    """Every channel's address on the host and port served, and the demo
    terminal's one-time activation link while no machine is bound to it."""
    base = base_url(host, port)
    typer.echo(f"yibao serving on {base}/ (start page 首页: every channel; Ctrl-C stops)")
    typer.echo(f"  portal 网上服务      {base}/portal/  (ID or account number + password)")
    typer.echo(f"  counter 柜台         {base}/counter/  (staff user name + password)")
    with services(settings) as svc:
        typer.echo(f"  terminal 自助终端    {_kiosk_link(svc, base)}")
    typer.echo(f"  employer 用人单位    {base}/employer/  (credit code + password)")
    typer.echo(f"  API docs 接口文档    {base}/docs  (staff log in: POST /api/v1/auth/login)")
    typer.echo(f"  telephone 电话查询   {invoked()} phone  (in another terminal)")
    if host in _EVERY_ADDRESS:
        typer.echo(
            f"  listening on every address 监听所有地址: another machine signs in only over "
            f"HTTPS (a TLS proxy in front), or with YIBAO_COOKIE_SECURE=false on a trusted "
            f"network; port {port} itself is plain HTTP"
        )


def _kiosk_link(svc: Services, base: str) -> str:
    """The one step into the demo terminal: a link that activates this browser
    as T-HZZX-01 while no machine is bound to it; elsewhere the start page."""
    from yibao import demo as demo_service
    from yibao.domain.errors import DomainError

    term = demo_service.DEMO_TERMINAL
    try:
        issued = demo_service.terminal_activation(svc.uow())
    except DomainError:  # no demo city: a real terminal's code is staff's to issue
        return f"{base}/kiosk/  (a browser becomes a terminal with its activation code)"
    if issued is None:
        return (
            f"{base}/kiosk/  ({term} is activated 已激活; for another browser: "
            f"{invoked()} kiosk issue {term}) (card number + PIN)"
        )
    return (
        f"{base}/kiosk/activate?terminal={term}&code={issued.activation_code}  (activates "
        f"this browser as {term}, once, until "
        f"{issued.expires_at.astimezone(CHINA):%Y-%m-%d %H:%M}; then card number + PIN)"
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database, or upgrade it to the newest schema."""
    from yibao.store import migrate

    settings = get_settings()
    url = settings.effective_database_url
    reachable(url)
    migrate.upgrade(url)
    typer.echo(
        f"database is at the newest schema ({', '.join(migrate.heads(url))}): {shown_url(url)}"
    )


@app.command()
def demo(
    as_json: Annotated[
        bool, typer.Option("--json", help="print the demo fixtures as JSON only")
    ] = False,
    host: Annotated[str, typer.Option(help="the address yibao serve listens on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="the port yibao serve listens on")] = 8000,
) -> None:
    """Load the demo city once and print how to log in (yibao serve prints the links)."""
    from yibao import demo as demo_service

    data = demo_service.fixtures(base_url(host, port))
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    with services() as svc:
        loaded = demo_service.load(svc)
    typer.echo(
        "demo city loaded 演示数据已载入" if loaded else "demo city already loaded 演示数据已存在"
    )
    typer.echo("")
    typer.echo(f"Staff 工作人员 (password 密码: {data['staff'][0]['password']}):")
    for s in data["staff"]:
        typer.echo(f"  {s['username']:<14} {s['role']:<20} {s['division']:<10} {s['name']}")
    typer.echo("Insured persons 参保人员:")
    for p in data["persons"]:
        typer.echo(
            f"  {p['name']}  ID {p['certno']}  account {p['account_no']}  card {p['card_no']}  "
            f"PIN {p['pin']}  password {p['password']}  phone PIN 电话密码 {p['phone_pin']}"
        )
    typer.echo("Designated institutions 定点医药机构:")
    for i in data["institutions"]:
        typer.echo(f"  {i['code']}  {i['name']}  secret {i['secret']}")
    typer.echo(
        f"Telephone 电话查询: {invoked()} phone — 1 普通话 or 2 English, 1 balance, then the "
        f"card or ID number, #, and the phone PIN above"
    )
    typer.echo(f"All of it as JSON: {invoked()} demo --json")
