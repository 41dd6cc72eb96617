"""The audit log, the working-day calendar, staff users and daily housekeeping."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
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


def _checkpoint_files(path: Path) -> list[tuple[str, str]]:
    """The checkpoints in a directory (its ``*.json`` files), or one file."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    read = []
    for file in files:
        try:
            read.append((str(file), file.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"{file}: cannot be read 无法读取: {exc}")
    return read


CHECKPOINTS_HELP = (
    "a checkpoint file, or a directory of them (yibao audit checkpoint -o DIR): also prove "
    "that nothing before the newest checkpoint of each chain changed or vanished"
)


@audit_app.command("verify")
def audit_verify(
    checkpoints: Annotated[
        Path | None, typer.Option("--checkpoints", help=CHECKPOINTS_HELP)
    ] = None,
) -> None:
    """Check the audit log's keyed hash chains (and its checkpoints); exit 1
    on an entry edited, removed or forged."""
    from yibao.services.access import audit

    files = _checkpoint_files(checkpoints) if checkpoints is not None else []
    if checkpoints is not None and not files:
        fail(f"no checkpoint in 没有检查点: {checkpoints}")
    with services() as svc:
        done = audit.verify(svc.uow(), checkpoints=files)
    result = done.result
    if not result.ok:
        for problem in result.problems:
            typer.secho(problem, fg=typer.colors.RED, err=True)
        fail(
            f"audit log has been tampered with 审计日志被篡改: {len(result.problems)} problem(s) "
            f"in {result.entries} entries"
        )
    typer.echo(
        f"audit log intact 审计日志完整: {result.entries} entries verified "
        f"({result.keyed} keyed, {result.plain} written before the audit key)"
    )
    if files:
        typer.echo(
            f"{result.anchored} of {len(result.last)} chains as their newest checkpoint saw "
            f"them, from {done.checkpoints} checkpoint(s)"
        )
    else:
        typer.secho(
            "without --checkpoints, the removal of a chain's last entries or of a whole chain "
            "cannot be seen 未核对检查点",
            fg=typer.colors.YELLOW,
        )


@audit_app.command("checkpoint")
def audit_checkpoint(
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="a directory: a new checkpoint file in it; a file: written over; either way "
            "after checking the log against the checkpoints already there; default: standard "
            "output",
        ),
    ] = None,
) -> None:
    """Sign each chain's last entry (id, seq, hash) into a checkpoint to keep
    outside the database; run it on a schedule. 导出审计检查点"""
    from yibao.services.access import audit

    previous = _checkpoint_files(output) if output is not None and output.exists() else []
    with services() as svc:
        done = audit.checkpoint(svc.uow(), previous=previous)
    if done.text is None:
        for problem in done.result.problems:
            typer.secho(problem, fg=typer.colors.RED, err=True)
        fail(
            "no checkpoint made 未导出检查点: the audit log does not verify "
            f"({len(done.result.problems)} problem(s))"
        )
    if output is None:
        typer.echo(done.text, nl=False)
        return
    target = output
    if output.is_dir():
        target = (
            output / f"audit-checkpoint-{done.made_at.astimezone(dt.UTC):%Y%m%dT%H%M%S%fZ}.json"
        )
    try:
        # written whole, then moved into place: a reader never sees half a checkpoint
        part = target.with_name(f".{target.name}.part")
        part.write_text(done.text, encoding="utf-8")
        part.replace(target)
    except OSError as exc:
        fail(f"{target}: cannot be written 无法写入: {exc}")
    typer.echo(
        f"checkpoint of {len(done.result.last)} chains written 已导出检查点: {target} "
        f"(after {done.result.entries} entries verified from {len(previous)} earlier one(s) on)",
        err=True,
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
