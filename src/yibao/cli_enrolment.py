"""Issue 3's commands: bank debit and return files (seed 004, regular bank
payment), employers' monthly assessment and the suspension sweep.

``bank_app`` is mounted as ``yibao bank``; ``add_contribution_commands``
adds ``assess`` and ``suspensions`` to the ``yibao contributions`` group.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from yibao.services.context import Actor

bank_app = typer.Typer(help="bank files 银行代扣文件", no_args_is_help=True)
payee_app = typer.Typer(
    help="the bureau's collection accounts 医保基金收入户 (on payment vouchers)",
    no_args_is_help=True,
)
bank_app.add_typer(payee_app, name="payee")


def _actor() -> Actor:
    from yibao.services.context import Actor

    return Actor.system("cli")


@payee_app.command("set")
def payee_set(
    area: Annotated[str, typer.Argument(help="the pooling area: a 6-digit division code")],
    bank: Annotated[str, typer.Option(help="the bank and branch 开户银行")],
    name: Annotated[str, typer.Option(help="the account name 户名")],
    account: Annotated[str, typer.Option(help="the account number 账号")],
) -> None:
    """Set the collection account printed on the area's payment vouchers from now on."""
    from yibao.cli import _services
    from yibao.services import enrolment
    from yibao.services.context import Channel

    with _services() as svc, svc.uow() as work:
        row = enrolment.set_collection_account(
            work,
            actor=_actor(),
            channel=Channel.CLI,
            area=area,
            bank=bank,
            name=name,
            account=account,
        )
        work.commit()
        typer.echo(f"{row.area}  {row.bank}  {row.name}  {row.account}")


@payee_app.command("list")
def payee_list() -> None:
    """The collection accounts, by area."""
    from yibao.cli import _services
    from yibao.services import enrolment

    with _services() as svc, svc.uow() as work:
        rows = enrolment.collection_accounts(work, actor=_actor())
        for row in rows:
            typer.echo(f"{row.area}  {row.bank}  {row.name}  {row.account}")
        if not rows:
            typer.echo("no collection account is set 尚未设置收入户")


@bank_app.command("debit-file")
def debit_file(
    date: Annotated[str, typer.Option("--date", help="the debit day, YYYY-MM-DD")],
    output: Annotated[Path, typer.Option("-o", "--output", help="the CSV file to write")],
) -> None:
    """Write the bank debit file (CSV) of every voucher month due on that day."""
    from yibao.cli import _fail, _services
    from yibao.services import enrolment
    from yibao.services.context import Channel

    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        _fail("--date is YYYY-MM-DD")
        return
    with _services() as svc, svc.uow() as work:
        content = enrolment.write_debit_file(work, actor=_actor(), channel=Channel.CLI, day=day)
        output.write_text(content, encoding="utf-8")
        work.commit()
    rows = max(len(content.strip().splitlines()) - 1, 0)
    typer.echo(f"{rows} debit row(s) written to {output}")


@bank_app.command("return-file")
def return_file(
    path: Annotated[Path, typer.Argument(help="the bank's return file (CSV, UTF-8 or GB18030)")],
) -> None:
    """Read the bank's return file: paid rows are recorded once, failed rows stay due."""
    from yibao.cli import _services
    from yibao.services import enrolment
    from yibao.services.context import Channel

    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError:
        content = raw.decode("gb18030")
    with _services() as svc, svc.uow() as work:
        result = enrolment.read_return_file(
            work, actor=_actor(), channel=Channel.CLI, content=content, filename=path.name
        )
        work.commit()
    typer.echo(f"paid {result.paid}, failed {result.failed}, already read {result.unchanged}")
    for error in result.errors:
        typer.secho(error, fg=typer.colors.YELLOW, err=True)
    if result.errors:
        raise typer.Exit(1)


def add_contribution_commands(group: typer.Typer) -> None:
    @group.command("assess")
    def assess(
        month: Annotated[str, typer.Option("--month", help="YYYY-MM")],
        employer: Annotated[
            str | None, typer.Option("--employer", help="one employer's credit code")
        ] = None,
    ) -> None:
        """Assess the month for every employer (or one): employer and individual parts."""
        from sqlalchemy import select

        from yibao.cli import _services
        from yibao.services import contributions
        from yibao.services.context import Channel
        from yibao.store.models import Employer

        m = contributions.month_int(month)
        with _services() as svc, svc.uow() as work:
            if employer:
                codes = [employer.strip().upper()]
            else:
                codes = list(
                    work.session.execute(select(Employer.uscc).order_by(Employer.uscc)).scalars()
                )
            total = persons = 0
            for uscc in codes:
                a = contributions.assess_employer(
                    work, actor=_actor(), channel=Channel.CLI, employer_uscc=uscc, month=m
                )
                total += a.total
                persons += a.persons
            work.commit()
        typer.echo(
            f"{contributions.month_text(m)}: {len(codes)} employer(s), {persons} person(s), "
            f"{total / 100:.2f} yuan assessed"
        )

    @group.command("suspensions")
    def suspensions() -> None:
        """Suspend benefits after the unpaid months of the rule; resume those paid up."""
        from yibao.cli import _services
        from yibao.services import contributions
        from yibao.services.context import Channel

        with _services() as svc, svc.uow() as work:
            result = contributions.apply_suspensions(work, actor=_actor(), channel=Channel.CLI)
            work.commit()
        typer.echo(f"suspended {result['suspended']}, resumed {result['resumed']}")
