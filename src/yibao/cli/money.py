"""Money: the ledger, contributions, and the bank's files (seed 004, regular
bank payment)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from yibao.cli.common import app, fail, services, system_actor

if TYPE_CHECKING:
    pass

ledger_app = typer.Typer(help="ledger 账务", no_args_is_help=True)
money_app = typer.Typer(help="contributions 缴费与个人账户划入", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
app.add_typer(money_app, name="contributions")


@ledger_app.command("check")
def ledger_check() -> None:
    """Prove that every balance equals the sum of its postings and every
    entry is the one its audit record describes; exit 1 if not."""
    from yibao.services.ledger import ledger

    with services() as svc:
        result = ledger.verify(svc.uow())
    if result.ok:
        typer.echo(
            f"ledger balanced 账务平衡: {result.accounts} accounts, {result.entries} entries, "
            "each as its audit record describes it"
        )
        return
    for problem in result.problems[:200]:
        typer.secho(problem, fg=typer.colors.RED, err=True)
    fail(f"ledger has {len(result.problems)} problem(s) 账务不平")


@money_app.command("post")
def contributions_post(
    month: Annotated[str, typer.Option(help="YYYY-MM")],
    chunk: Annotated[int, typer.Option(help="lines per transaction")] = 10_000,
    workers: Annotated[int, typer.Option(help="parallel connections (PostgreSQL)")] = 1,
) -> None:
    """Credit individual accounts with the month's paid contributions; a second run posts nothing."""
    import time

    from yibao.domain.errors import DomainError
    from yibao.services.contributions import contributions as cs

    try:
        m = cs.month_int(month)
    except DomainError as exc:
        fail(exc.message)
        return
    with services() as svc:
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
                backend=svc.backend,
            )
        seconds = time.perf_counter() - started
    rate = result.persons / seconds if seconds > 0 and result.persons else 0.0
    typer.echo(
        f"{month}: {result.persons} person(s) credited, {result.amount / 100:.2f} yuan, "
        f"{result.chunks} chunk(s), {seconds:.1f} s ({rate:,.0f} persons/s)"
    )


bank_app = typer.Typer(help="bank files 银行代扣文件", no_args_is_help=True)
payee_app = typer.Typer(
    help="the bureau's collection accounts 医保基金收入户 (on payment vouchers)",
    no_args_is_help=True,
)
bank_app.add_typer(payee_app, name="payee")


app.add_typer(bank_app, name="bank")


@payee_app.command("set")
def payee_set(
    area: Annotated[str, typer.Argument(help="the pooling area: a 6-digit division code")],
    bank: Annotated[str, typer.Option(help="the bank and branch 开户银行")],
    name: Annotated[str, typer.Option(help="the account name 户名")],
    account: Annotated[str, typer.Option(help="the account number 账号")],
) -> None:
    """Set the collection account printed on the area's payment vouchers from now on."""
    from yibao.domain.actors import Channel
    from yibao.services.contributions import enrolment

    with services() as svc:
        row = enrolment.set_collection_account(
            svc.uow(),
            actor=system_actor(),
            channel=Channel.CLI,
            area=area,
            bank=bank,
            name=name,
            account=account,
        )
        typer.echo(f"{row.area}  {row.bank}  {row.name}  {row.account}")


@payee_app.command("list")
def payee_list() -> None:
    """The collection accounts, by area."""
    from yibao.services.contributions import enrolment

    with services() as svc:
        rows = enrolment.collection_accounts(svc.uow(), actor=system_actor())
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
    from yibao.domain.actors import Channel
    from yibao.services.contributions import enrolment

    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        fail("--date is YYYY-MM-DD")
        return
    with services() as svc:
        content = enrolment.write_debit_file(
            svc.uow(), actor=system_actor(), channel=Channel.CLI, day=day
        )
    output.write_text(content, encoding="utf-8")
    rows = max(len(content.strip().splitlines()) - 1, 0)
    typer.echo(f"{rows} debit row(s) written to {output}")


@bank_app.command("return-file")
def return_file(
    path: Annotated[Path, typer.Argument(help="the bank's return file (CSV, UTF-8 or GB18030)")],
) -> None:
    """Read the bank's return file: paid rows are recorded once, failed rows stay due."""
    from yibao.domain.actors import Channel
    from yibao.services.contributions import enrolment

    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError:
        content = raw.decode("gb18030")
    with services() as svc:
        result = enrolment.read_return_file(
            svc.uow(),
            actor=system_actor(),
            channel=Channel.CLI,
            content=content,
            filename=path.name,
        )
    typer.echo(f"paid {result.paid}, failed {result.failed}, already read {result.unchanged}")
    for error in result.errors:
        typer.secho(error, fg=typer.colors.YELLOW, err=True)
    if result.errors:
        raise typer.Exit(1)


@money_app.command("assess")
def assess(
    month: Annotated[str, typer.Option("--month", help="YYYY-MM")],
    employer: Annotated[
        str | None, typer.Option("--employer", help="one employer's credit code")
    ] = None,
) -> None:
    """Assess the month for every employer (or one): employer and individual parts."""
    from yibao.domain.actors import Channel
    from yibao.services.contributions import contributions

    with services() as svc:
        m = contributions.month_int(month)
        done = contributions.assess_month(
            svc.uow(), actor=system_actor(), channel=Channel.CLI, month=m, employer_uscc=employer
        )
    typer.echo(
        f"{contributions.month_text(m)}: {done.employers} employer(s), {done.persons} person(s), "
        f"{done.total / 100:.2f} yuan assessed"
    )


@money_app.command("suspensions")
def suspensions() -> None:
    """Suspend benefits after the unpaid months of the rule; resume those paid up."""
    from yibao.domain.actors import Channel
    from yibao.services.contributions import contributions

    with services() as svc:
        result = contributions.apply_suspensions(
            svc.uow(), actor=system_actor(), channel=Channel.CLI
        )
    typer.echo(f"suspended {result['suspended']}, resumed {result['resumed']}")
