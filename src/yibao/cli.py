"""The ``yibao`` command."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Annotated, Any

import typer

from yibao.clock import CHINA, Clock
from yibao.config import Settings, get_settings

if TYPE_CHECKING:
    from yibao.app import Services
    from yibao.services.kiosk import IssuedCode

app = typer.Typer(
    help="yibao 医保卡服务 — medical insurance card service",
    no_args_is_help=True,
    # an unexpected failure shows its trace to the operator, never local values (secrets)
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="database 数据库", no_args_is_help=True)
audit_app = typer.Typer(help="audit log 审计日志", no_args_is_help=True)
calendar_app = typer.Typer(help="working days 工作日", no_args_is_help=True)
staff_app = typer.Typer(help="staff users 工作人员", no_args_is_help=True)
cards_app = typer.Typer(help="cards 卡片", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(calendar_app, name="calendar")
app.add_typer(staff_app, name="staff")
app.add_typer(cards_app, name="cards")


@contextmanager
def _services(settings: Settings | None = None) -> Iterator[Services]:
    from yibao.app import Services
    from yibao.domain.errors import DomainError
    from yibao.services import security
    from yibao.store.db import make_engine, make_session_factory

    settings = settings or get_settings()
    security.configure(settings.argon2_profile)
    engine = make_engine(settings.effective_database_url)
    try:
        yield Services(settings, engine, make_session_factory(engine), _clock())
    except DomainError as exc:  # a refusal is its message and exit status 1
        _fail(exc.message)
    finally:
        engine.dispose()


# The clock a caller handed the command as its ``obj`` (the tests do, with
# ``CliRunner.invoke(..., obj=clock)``, so that no outcome depends on the day
# the suite runs); else the wall clock.
_given_clock: ContextVar[Clock | None] = ContextVar("yibao_cli_clock", default=None)


@app.callback()
def _root(ctx: typer.Context) -> None:
    _given_clock.set(ctx.obj if isinstance(ctx.obj, Clock) else None)


def _clock() -> Clock:
    return _given_clock.get() or Clock()


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


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
    from yibao.services import demo as demo_service

    data = demo_service.fixtures()
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    with _services() as svc:
        loaded = demo_service.load(svc.uow(), svc.engine)
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
    from yibao.domain.errors import DomainError
    from yibao.services import demo as demo_service

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


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chains; exit 1 on an edited or removed entry."""
    from yibao.store import auditlog

    with _services() as svc:
        with svc.session_factory() as session:
            result = auditlog.verify(session)
        if result.ok:
            typer.echo(f"audit log intact 审计日志完整: {result.entries} entries verified")
            return
        for problem in result.problems:
            typer.secho(problem, fg=typer.colors.RED, err=True)
        _fail(
            f"audit log has been tampered with 审计日志被篡改: {len(result.problems)} problem(s) "
            f"in {result.entries} entries"
        )


@calendar_app.command("show")
def calendar_show(
    year: Annotated[int | None, typer.Option(help="year to list; default this year")] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="with --days: count working days from this date")
    ] = None,
    days: Annotated[int | None, typer.Option(help="working days to add to --from")] = None,
) -> None:
    """List a year's holidays and make-up workdays, or count working days."""
    from yibao.services import calendar as calendar_service

    with _services() as svc:
        with svc.uow() as work:
            cal = calendar_service.load(work)
        if start is not None and days is not None:
            day = _parse_date(start, "--from")
            due, notes = cal.add_working_days(day, days)
            typer.echo(f"{days} working days after {day}: {due}")
            for note in notes:
                typer.secho(note, fg=typer.colors.YELLOW)
            return
        year = year or svc.clock.today().year
        if not cal.is_published(year):
            typer.secho(
                f"warning: {year}: no published arrangement in the holidays package; "
                "Monday to Friday are working days unless overridden",
                fg=typer.colors.YELLOW,
            )
        for info in cal.special_days(year):
            kind = "workday 上班" if info.workday else "holiday 休息"
            typer.echo(f"{info.day} {info.day:%a} {kind:<12} {info.source:<16} {info.note}")


def _parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        _fail(f"{option}: not a date (YYYY-MM-DD): {value!r}")
        raise  # unreachable


@calendar_app.command("set")
def calendar_set(
    day: Annotated[str, typer.Argument(help="YYYY-MM-DD")],
    workday: Annotated[
        bool | None, typer.Option("--workday/--holiday", help="make it a working day or a holiday")
    ] = None,
    clear: Annotated[bool, typer.Option(help="remove the override for this day")] = False,
    note: Annotated[str, typer.Option(help="why, e.g. the State Council notice")] = "",
) -> None:
    """Amend the working-day table (for a year no package knows yet, or a local change)."""
    from yibao.services import calendar as calendar_service
    from yibao.services.context import Actor, Channel

    the_day = _parse_date(day, "DAY")
    if workday is None and not clear:
        _fail("say --workday, --holiday or --clear")
    with _services() as svc:
        with svc.uow() as work:
            calendar_service.set_day(
                work,
                actor=Actor.system("cli"),
                channel=Channel.CLI,
                day=the_day,
                workday=None if clear else workday,
                note=note,
            )
            work.commit()
            info = calendar_service.load(work).info(the_day)
        typer.echo(
            f"{the_day}: {'workday 上班' if info.workday else 'holiday 休息'} "
            f"({info.source}) {info.note}"
        )


@staff_app.command("create")
def staff_create(
    username: str,
    role: Annotated[
        str,
        typer.Option(
            help="service_point_clerk, county_clerk, contribution_clerk, "
            "county_admin, city_admin, province_admin, national_admin"
        ),
    ],
    division: Annotated[str, typer.Option(help="home division code")],
    name: Annotated[str, typer.Option(help="display name")] = "",
    password: Annotated[
        str | None, typer.Option(help="read from the prompt when not given")
    ] = None,
) -> None:
    """Create a staff user."""
    from yibao.services import access as access_service
    from yibao.services.context import Actor, Channel

    if password is None:
        if not sys.stdin.isatty():
            _fail("--password is required when there is no terminal")
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with _services() as svc:
        with svc.uow() as work:
            access_service.create_staff(
                work,
                actor=Actor.system("cli"),
                channel=Channel.CLI,
                username=username,
                name=name or username,
                password=password or "",
                role=role,
                division_code=division,
            )
            work.commit()
        typer.echo(f"created {username} ({role} at {division})")


@staff_app.command("token")
def staff_token(
    username: str,
    label: Annotated[str, typer.Option(help="what the machine client is")] = "cli",
    days: Annotated[int, typer.Option(help="lifetime in days")] = 90,
) -> None:
    """Issue an API token for a machine client acting as this staff user."""
    from yibao.services import access as access_service
    from yibao.services.context import Channel

    with _services() as svc:
        with svc.uow() as work:
            user = access_service.get_staff(work, username=username)
            token, _ = access_service.issue_api_token(
                work, user=user, channel=Channel.CLI, label=label, days=days
            )
            work.commit()
        typer.echo(token)


@cards_app.command("sweep")
def cards_sweep() -> None:
    """Send cards not collected within the pickup window back to the county center."""
    from yibao.services import cards as card_service
    from yibao.services.context import Actor, Channel

    with _services() as svc:
        with svc.uow() as work:
            cards = card_service.return_overdue_pickups(
                work, actor=Actor.system("sweep"), channel=Channel.CLI
            )
            work.commit()
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
    from yibao.services import kiosk
    from yibao.services.context import Actor, Channel

    with _services() as svc:
        with svc.uow() as work:
            issued = kiosk.register_terminal(
                work,
                actor=Actor.system("cli"),
                channel=Channel.CLI,
                code=code,
                location=location,
                division_code=division,
            )
            work.commit()
        _print_code(issued)


@kiosk_app.command("issue")
def kiosk_issue(code: Annotated[str, typer.Argument(help="terminal code")]) -> None:
    """Issue a new activation code; the machine bound so far stops working at once."""
    from yibao.services import kiosk
    from yibao.services.context import Actor, Channel

    with _services() as svc:
        with svc.uow() as work:
            issued = kiosk.issue_code(
                work, actor=Actor.system("cli"), channel=Channel.CLI, code=code
            )
            work.commit()
        _print_code(issued)


@kiosk_app.command("deactivate")
def kiosk_deactivate(code: Annotated[str, typer.Argument(help="terminal code")]) -> None:
    """Take a terminal out of service; its machine and any pending code stop working."""
    from yibao.services import kiosk
    from yibao.services.context import Actor, Channel

    with _services() as svc:
        with svc.uow() as work:
            terminal = kiosk.deactivate_terminal(
                work, actor=Actor.system("cli"), channel=Channel.CLI, code=code
            )
            work.commit()
        typer.echo(f"terminal {terminal.code} deactivated 终端已停用")


@kiosk_app.command("list")
def kiosk_list() -> None:
    """Every terminal with its location, area and state."""
    from yibao.services import kiosk
    from yibao.services.context import Actor

    with _services() as svc, svc.uow() as work:
        now = work.clock.now()
        for t in kiosk.list_terminals(work, actor=Actor.system("cli")):
            state = kiosk.terminal_state(t, now)
            since = t.activated_at if state == "activated" else t.activation_expires
            when = f" {since.astimezone(CHINA):%Y-%m-%d %H:%M}" if since else ""
            typer.echo(f"{t.code:<14} {t.division_code:<10} {state + when:<28} {t.location}")


ledger_app = typer.Typer(help="ledger 账务", no_args_is_help=True)
money_app = typer.Typer(help="contributions 缴费与个人账户划入", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
app.add_typer(money_app, name="contributions")


@ledger_app.command("check")
def ledger_check() -> None:
    """Prove that every balance equals the sum of its postings; exit 1 if not."""
    from yibao.services import ledger

    with _services() as svc, svc.session_factory() as session:
        ledger.repeatable_read(session)
        result = ledger.check(session)
    if result.ok:
        typer.echo(
            f"ledger balanced 账务平衡: {result.accounts} accounts, {result.entries} entries"
        )
        return
    for problem in result.problems[:200]:
        typer.secho(problem, fg=typer.colors.RED, err=True)
    _fail(f"ledger has {len(result.problems)} problem(s) 账务不平")


@money_app.command("post")
def contributions_post(
    month: Annotated[str, typer.Option(help="YYYY-MM")],
    chunk: Annotated[int, typer.Option(help="lines per transaction")] = 10_000,
    workers: Annotated[int, typer.Option(help="parallel connections (PostgreSQL)")] = 1,
) -> None:
    """Credit individual accounts with the month's paid contributions; a second run posts nothing."""
    import time

    from yibao.domain.errors import DomainError
    from yibao.services import contributions as cs

    try:
        m = cs.month_int(month)
    except DomainError as exc:
        _fail(exc.message)
        return
    with _services() as svc:
        todo = cs.count_unposted(svc.engine, m)
        started = time.perf_counter()
        with typer.progressbar(length=int(todo), label=f"posting {month}", show_pos=True) as bar:
            result = cs.post_month(
                svc.engine,
                month=m,
                now=svc.clock.now(),
                chunk_size=chunk,
                workers=workers,
                progress=bar.update,
            )
        seconds = time.perf_counter() - started
    rate = result.persons / seconds if seconds > 0 and result.persons else 0.0
    typer.echo(
        f"{month}: {result.persons} person(s) credited, {result.amount / 100:.2f} yuan, "
        f"{result.chunks} chunk(s), {seconds:.1f} s ({rate:,.0f} persons/s)"
    )


# ---- telephone (issue 6)
ivr_app = typer.Typer(help="telephone line 电话查询", no_args_is_help=True)
app.add_typer(ivr_app, name="ivr")


@ivr_app.command("prompts")
def ivr_prompts(
    output: Annotated[
        str | None,
        typer.Option("-o", "--output", help="directory; default YIBAO_IVR_PROMPT_DIR or var/"),
    ] = None,
) -> None:
    """Render every fixed prompt to WAV (8 kHz mono) in both languages with espeak-ng."""
    from pathlib import Path

    from yibao.channels.ivr import audio
    from yibao.channels.ivr.common import prompt_dir

    folder = Path(output) if output else prompt_dir(get_settings())
    try:
        made = audio.render_prompts(folder)
    except audio.NoSpeechEngine as exc:
        _fail(str(exc))
    typer.echo(f"{len(made)} prompts written to {folder}")


@app.command()
def phone(
    sound: Annotated[
        bool | None,
        typer.Option(
            "--sound/--no-sound", help="speak the prompts; default: if a sound device exists"
        ),
    ] = None,
) -> None:
    """A telephone call in the terminal: type keypad digits, an empty line is silence."""
    from yibao.channels.ivr import simulator

    def read() -> str | None:
        try:
            return input()
        except EOFError:
            return None

    with _services() as svc:
        simulator.run(
            svc,
            read=read,
            write=typer.echo,
            sound=simulator.sound_available() if sound is None else sound,
        )


@app.command()
def prune(
    ivr_call_days: Annotated[
        int, typer.Option(min=1, help="keep a telephone call's state this many days")
    ] = 30,
    staff_credential_days: Annotated[
        int,
        typer.Option(min=1, help="keep expired or revoked staff sessions this many days"),
    ] = 90,
    dry_run: Annotated[bool, typer.Option(help="count what would go, delete nothing")] = False,
) -> None:
    """Delete rows that can no longer matter (run daily): used HIS nonces, past
    days' kiosk PIN tries, old telephone calls, old staff sessions.
    清理过期数据(每日运行)。"""
    from yibao.services import housekeeping

    with _services() as svc:
        pruned = housekeeping.prune(
            svc.uow,
            ivr_call_days=ivr_call_days,
            staff_credential_days=staff_credential_days,
            dry_run=dry_run,
        )
    verb = "would delete 将删除" if dry_run else "deleted 已删除"
    for table, n in pruned.as_dict().items():
        typer.echo(f"{table:<18} {verb} {n}")


# ---- issue 3: bank files, assessment, suspensions (yibao.cli_enrolment)
from yibao.cli_enrolment import add_contribution_commands, bank_app  # noqa: E402

add_contribution_commands(money_app)
app.add_typer(bank_app, name="bank")


def main() -> None:
    from yibao.domain.errors import DomainError

    try:
        app()
    except DomainError as exc:  # a refusal is a message, never a trace
        typer.secho(exc.message, fg=typer.colors.RED, err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
