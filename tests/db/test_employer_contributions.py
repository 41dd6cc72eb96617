"""What an employer sees of its contributions (issue 15; Social Insurance
Law art. 4): each month's assessment, what it paid and when, its arrears,
and each employee's months, paid and unpaid; every read of an employee's
months audited as the employer's. SQLite and PostgreSQL."""

import pytest
from sqlalchemy import select

from tests.helpers import NANXUN, WUXING
from yibao.domain.actors import Channel
from yibao.domain.errors import DomainError
from yibao.services.access.employer_login import employer_actor
from yibao.services.contributions import contributions as cs
from yibao.store.models import AuditEntry, Employer

E = Channel.EMPLOYER


def _actor(services, uscc):
    with services.uow() as uow:
        return employer_actor(
            uow.session.execute(select(Employer).where(Employer.uscc == uscc)).scalar_one()
        )


def test_each_month_with_its_payments_and_the_arrears(services, demo):
    uscc = demo["employers"][1]["uscc"]  # behind by three months in the demo
    account = cs.employer_account(
        services.uow(), actor=_actor(services, uscc), channel=E, employer_uscc=uscc
    )
    months = [m.month for m in account.months]
    assert months == sorted(months, reverse=True) and months[0] == 202610
    assert [m.month for m in account.arrears] == [202608, 202609, 202610]
    assert account.arrears_total == sum(m.total for m in account.arrears) > 0
    paid = [m for m in account.months if m.status == "paid"]
    assert paid and all(m.payments and sum(p.amount for p in m.payments) == m.total for m in paid)
    assert all(not m.payments and m.outstanding == m.total for m in account.arrears)
    # the employer paid up: nothing in arrears
    first = demo["employers"][0]["uscc"]
    assert (
        cs.employer_account(
            services.uow(), actor=_actor(services, first), channel=E, employer_uscc=first
        ).arrears
        == []
    )
    # staff of the area read it too; staff elsewhere do not find it
    assert cs.employer_account(
        services.uow(), actor=NANXUN, channel=Channel.COUNTER, employer_uscc=uscc
    ).arrears
    with pytest.raises(DomainError) as refused:
        cs.employer_account(
            services.uow(), actor=WUXING, channel=Channel.COUNTER, employer_uscc=uscc
        )
    assert refused.value.code == "employer.not_found"


def test_an_employees_months_paid_and_unpaid_are_the_employers_to_read(services, demo):
    uscc = demo["employers"][1]["uscc"]
    me = _actor(services, uscc)
    li_na = demo["persons"][2]
    history = cs.employee_history(
        services.uow(), actor=me, channel=E, employer_uscc=uscc, account_no=li_na["account_no"]
    )
    assert history.person.name == li_na["name"]
    status = {m.month: (m.status, m.paid_at is not None) for m in history.months}
    assert status[202610] == status[202609] == status[202608] == ("due", False)
    assert status[202607] == ("paid", True) and status[202401] == ("paid", True)
    assert len(history.months) == len(status) == 34  # January 2024 to October 2026
    # another employer's employee is not found on this one's channel
    with pytest.raises(DomainError) as refused:
        cs.employee_history(
            services.uow(),
            actor=me,
            channel=E,
            employer_uscc=uscc,
            account_no=demo["persons"][0]["account_no"],
        )
    assert refused.value.code == "roll.not_found"
    with services.uow() as uow:
        reads = list(
            uow.session.execute(
                select(AuditEntry).where(
                    AuditEntry.action == "records.payment.read",
                    AuditEntry.actor_kind == "employer",
                )
            ).scalars()
        )
    assert [(a.actor_id, a.subject) for a in reads] == [(uscc, uscc)]
    assert reads[0].person_id == history.person.id
