"""The audit log, the working-day calendar, staff users and daily housekeeping."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from yibao.cli.common import app, fail, parse_date, services, system_actor

if TYPE_CHECKING:
    pass

audit_app = typer.Typer(help="audit log 审计日志", no_args_is_help=True)
calendar_app = typer.Typer(help="working days 工作日", no_args_is_help=True)
staff_app = typer.Typer(help="staff users 工作人员", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(calendar_app, name="calendar")
app.add_typer(staff_app, name="staff")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chains; exit 1 on an edited or removed entry."""
    from yibao.services.access import audit

    with services() as svc:
        result = audit.verify(svc.uow())
        if result.ok:
            typer.echo(f"audit log intact 审计日志完整: {result.entries} entries verified")
            return
        for problem in result.problems:
            typer.secho(problem, fg=typer.colors.RED, err=True)
        fail(
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
    from yibao.services.registry import calendar as calendar_service

    with services() as svc:
        cal = calendar_service.current(svc.uow())
        if start is not None and days is not None:
            day = parse_date(start, "--from")
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
    from yibao.domain.actors import Channel
    from yibao.services.registry import calendar as calendar_service

    the_day = parse_date(day, "DAY")
    if workday is None and not clear:
        fail("say --workday, --holiday or --clear")
    with services() as svc:
        info = calendar_service.set_day(
            svc.uow(),
            actor=system_actor(),
            channel=Channel.CLI,
            day=the_day,
            workday=None if clear else workday,
            note=note,
        )
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
    from yibao.domain.actors import Channel
    from yibao.services.access import staff as access_service

    if password is None:
        if not sys.stdin.isatty():
            fail("--password is required when there is no terminal")
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with services() as svc:
        access_service.create_staff(
            svc.uow(),
            actor=system_actor(),
            channel=Channel.CLI,
            username=username,
            name=name or username,
            password=password or "",
            role=role,
            division_code=division,
        )
        typer.echo(f"created {username} ({role} at {division})")


@staff_app.command("token")
def staff_token(
    username: str,
    label: Annotated[str, typer.Option(help="what the machine client is")] = "cli",
    days: Annotated[int, typer.Option(help="lifetime in days")] = 90,
) -> None:
    """Issue an API token for a machine client acting as this staff user."""
    from yibao.domain.actors import Channel
    from yibao.services.access import staff as access_service

    with services() as svc:
        token, _ = access_service.issue_api_token(
            svc.uow(), username=username, channel=Channel.CLI, label=label, days=days
        )
        typer.echo(token)


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
    from yibao.services.access import housekeeping

    with services() as svc:
        pruned = housekeeping.prune(
            svc.uow,
            ivr_call_days=ivr_call_days,
            staff_credential_days=staff_credential_days,
            dry_run=dry_run,
        )
    verb = "would delete 将删除" if dry_run else "deleted 已删除"
    for table, n in pruned.as_dict().items():
        typer.echo(f"{table:<18} {verb} {n}")
