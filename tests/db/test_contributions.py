import datetime as dt
import subprocess

import pytest
from sqlalchemy import select

from tests.helpers import FUND_CLERK, SYSTEM, add_person, new_certno
from yibao.clock import CHINA
from yibao.domain import ledger as codes
from yibao.domain.actors import Channel
from yibao.domain.errors import DomainError
from yibao.services.contributions import contributions as cs
from yibao.services.inquiry import records
from yibao.services.ledger import ledger
from yibao.services.registry import registry
from yibao.store.models import Assessment, ContributionLine, Employer, Enrolment, Person

C = Channel.COUNTER


def make_employer(uow, n=1):
    from yibao.domain.ids import make_credit_code

    e = registry.register_employer(
        uow,
        actor=FUND_CLERK,
        channel=C,
        uscc=make_credit_code(f"9133050200AB{n:05d}"),
        name=f"测试企业{n}",
        division_code="330502",
    )
    return e


def hire(uow, employer, base, name="职工"):
    person = add_person(uow, paid=False, name=name)
    with uow:
        p = uow.session.get(Person, person.id)
        cs.enrol(
            uow,
            actor=FUND_CLERK,
            channel=C,
            person=p,
            insutype=cs.EMPLOYEE,
            psn_type="employee",
            start=dt.date(2026, 1, 1),
            base=base,
            employer=uow.session.get(Employer, employer.id),
        )
        uow.commit()
    return person


def test_rules_are_data_per_area_and_year_and_the_city_rule_applies_to_its_counties(uow, demo):
    with uow:
        rule = cs.rule_for(uow.session, area="330502", year=2026, insutype=cs.EMPLOYEE)
        assert rule.area == "330500" and rule.employer_rate_bp == 700
        cs.set_rule(
            uow,
            actor=SYSTEM,
            channel=C,
            area="330502",
            year=2026,
            insutype=cs.EMPLOYEE,
            base_floor=4_500_00,
            base_ceiling=20_000_00,
            employer_rate_bp=800,
            individual_rate_bp=200,
            account_share_bp=5000,
        )
        uow.commit()
    with uow:
        assert (
            cs.rule_for(
                uow.session, area="330502", year=2026, insutype=cs.EMPLOYEE
            ).employer_rate_bp
            == 800
        )
        assert (
            cs.rule_for(
                uow.session, area="330503", year=2026, insutype=cs.EMPLOYEE
            ).employer_rate_bp
            == 700
        )
        with pytest.raises(DomainError) as err:
            cs.rule_for(uow.session, area="320508", year=2026, insutype=cs.EMPLOYEE)
        assert err.value.code == "contribution.no_rule"


def test_monthly_assessment_splits_employer_and_individual_parts_per_employee(uow, demo):
    employer = make_employer(uow)
    hire(uow, employer, 6_000_00)
    hire(uow, employer, 3_000_00)  # below the floor of 4,200: assessed on the floor
    hire(uow, employer, 30_000_00)  # above the ceiling of 21,000
    a = cs.assess_employer(
        uow, actor=FUND_CLERK, channel=C, employer_uscc=employer.uscc, month=202611
    )
    with uow:
        lines = (
            uow.session.execute(
                select(ContributionLine)
                .where(
                    ContributionLine.month == 202611, ContributionLine.employer_id == employer.id
                )
                .order_by(ContributionLine.id)
            )
            .scalars()
            .all()
        )
    assert [x.base for x in lines] == [6_000_00, 4_200_00, 21_000_00]
    assert [x.employer_amount for x in lines] == [420_00, 294_00, 1_470_00]
    assert [x.individual_amount for x in lines] == [120_00, 84_00, 420_00]
    assert [x.account_credit for x in lines] == [120_00, 84_00, 420_00]
    assert (a.persons, a.employer_total, a.individual_total, a.status) == (
        3,
        2_184_00,
        624_00,
        "due",
    )
    assert a.due_date == dt.date(2026, 12, 15)
    # once per month
    again = cs.assess_employer(
        uow, actor=FUND_CLERK, channel=C, employer_uscc=employer.uscc, month=202611
    )
    assert again.id == a.id


def test_payment_in_full_marks_lines_paid_and_moves_money_through_the_ledger(uow, demo):
    employer = make_employer(uow)
    worker = hire(uow, employer, 5_000_00)
    a = cs.assess_employer(
        uow, actor=FUND_CLERK, channel=C, employer_uscc=employer.uscc, month=202611
    )
    with uow:
        bank_before = ledger.balance(uow.session, codes.BANK)
    cs.record_employer_payment(
        uow,
        actor=FUND_CLERK,
        channel=C,
        employer_uscc=employer.uscc,
        month=202611,
        amount=a.total,
        reference="回单001",
        key="p1",
    )
    with uow:
        line = uow.session.execute(
            select(ContributionLine).where(ContributionLine.person_id == worker.id)
        ).scalar_one()
        assert line.status == "paid" and line.paid_at is not None
        assert ledger.balance(uow.session, codes.BANK) == bank_before - a.total
        assert ledger.balance(uow.session, codes.ia_pending("330502")) == 100_00
    # retried with the same key: nothing more
    cs.record_employer_payment(
        uow,
        actor=FUND_CLERK,
        channel=C,
        employer_uscc=employer.uscc,
        month=202611,
        amount=a.total,
        reference="回单001",
        key="p1",
    )
    with uow:
        assert ledger.balance(uow.session, codes.BANK) == bank_before - a.total
        assert ledger.check(uow.session).ok


def test_partial_payment_keeps_the_month_in_arrears_and_overpayment_is_refused(uow, demo):
    employer = make_employer(uow)
    hire(uow, employer, 5_000_00)
    a = cs.assess_employer(
        uow, actor=FUND_CLERK, channel=C, employer_uscc=employer.uscc, month=202611
    )
    cs.record_employer_payment(
        uow,
        actor=FUND_CLERK,
        channel=C,
        employer_uscc=employer.uscc,
        month=202611,
        amount=100_00,
        reference="part",
        key="part",
    )
    with uow:
        assert uow.session.get(Assessment, a.id).status == "partial"
    with pytest.raises(DomainError) as err:
        cs.record_employer_payment(
            uow,
            actor=FUND_CLERK,
            channel=C,
            employer_uscc=employer.uscc,
            month=202611,
            amount=a.total,
            reference="too much",
            key="over",
        )
    assert err.value.field == "amount" and err.value.code == "validation.overpaid"


def test_benefits_are_suspended_after_the_grace_months_and_resume_on_payment(uow, clock, demo):
    employer = make_employer(uow)
    worker = hire(uow, employer, 5_000_00)
    months = [202607, 202608, 202609]
    for m in months:
        cs.assess_employer(uow, actor=FUND_CLERK, channel=C, employer_uscc=employer.uscc, month=m)
    with uow:  # 23 November: July, August and September are past due (15th of the next month)
        assert [
            a.month for a in cs.arrears(uow.session, employer_id=employer.id, today=clock.today())
        ] == months
    cs.apply_suspensions(uow, actor=FUND_CLERK, channel=C)
    with uow:
        e = uow.session.execute(
            select(Enrolment).where(Enrolment.person_id == worker.id)
        ).scalar_one()
        assert e.status == "suspended" and e.suspended_since == clock.today()
    for m in months:
        with uow:
            a = uow.session.execute(
                select(Assessment).where(
                    Assessment.employer_id == employer.id, Assessment.month == m
                )
            ).scalar_one()
        cs.record_employer_payment(
            uow,
            actor=FUND_CLERK,
            channel=C,
            employer_uscc=employer.uscc,
            month=m,
            amount=a.total,
            reference=f"补缴{m}",
            key=f"back-{m}",
        )
    with uow:
        e = uow.session.execute(
            select(Enrolment).where(Enrolment.person_id == worker.id)
        ).scalar_one()
        assert e.status == "active" and e.suspended_since is None


def test_demo_employer_in_arrears_has_its_employees_suspended(uow, demo):
    with uow:
        statuses = {
            p.name: cs.current_enrolment(uow.session, p.id).status
            for p in uow.session.execute(select(Person)).scalars()
            if cs.current_enrolment(uow.session, p.id) is not None
        }
    assert statuses["李娜"] == "suspended" and statuses["杨磊"] == "suspended"
    assert statuses["张伟"] == "active"


def test_monthly_posting_credits_accounts_once(uow, services, demo):
    employer = make_employer(uow)
    workers = [hire(uow, employer, 5_000_00 + i * 100_00, name=f"工{i}") for i in range(5)]
    a = cs.assess_employer(
        uow, actor=FUND_CLERK, channel=C, employer_uscc=employer.uscc, month=202611
    )
    cs.record_employer_payment(
        uow,
        actor=FUND_CLERK,
        channel=C,
        employer_uscc=employer.uscc,
        month=202611,
        amount=a.total,
        reference="r",
        key="k",
    )
    seen: list[int] = []
    result = cs.post_month(
        services.engine,
        month=202611,
        now=services.clock.now(),
        chunk_size=2,
        progress=seen.append,
        backend=services.backend,
    )
    assert result.persons == 5 and result.chunks == 3 and seen == [2, 2, 1]
    assert result.amount == sum(100_00 + i * 2_00 for i in range(5))
    again = cs.post_month(
        services.engine, month=202611, now=services.clock.now(), backend=services.backend
    )
    assert again.persons == 0 and again.amount == 0
    with uow:
        for i, w in enumerate(workers):
            assert ledger.individual_balance(uow.session, w.id) == 100_00 + i * 2_00
        assert ledger.balance(uow.session, codes.ia_pending("330502")) == 0
        assert ledger.check(uow.session).ok


def test_retiree_account_is_credited_from_the_pooled_fund(uow, services, demo):
    person = add_person(uow, paid=False, name="退休")
    with uow:
        p = uow.session.get(Person, person.id)
        e = cs.enrol(
            uow,
            actor=FUND_CLERK,
            channel=C,
            person=p,
            insutype=cs.EMPLOYEE,
            psn_type="retiree",
            start=dt.date(2026, 10, 1),
        )
        lines = cs.assess_person(
            uow, actor=FUND_CLERK, channel=C, enrolment=e, months=[202610, 202611]
        )
        uow.commit()
    assert [(x.status, x.account_credit, x.individual_amount) for x in lines] == [
        ("paid", 80_00, 0)
    ] * 2
    cs.post_month(services.engine, month=202610, now=services.clock.now(), backend=services.backend)
    cs.post_month(services.engine, month=202611, now=services.clock.now(), backend=services.backend)
    with uow:
        assert ledger.individual_balance(uow.session, person.id) == 160_00


def test_payment_records_show_whether_the_employer_paid(uow, demo):
    p = demo["persons"][2]  # 李娜, employer in arrears for the last three months
    with uow:
        person = uow.session.execute(
            select(Person).where(Person.certno == p["certno"])
        ).scalar_one()
        recs = cs.payment_records(uow.session, person.id)
    assert [r.status for r in recs[:3]] == ["due", "due", "due"]
    assert recs[3].status == "paid" and recs[3].paid_at is not None
    assert recs[0].payer == "南浔木业股份有限公司"
    assert recs[0].employer_amount == 490_00 and recs[0].individual_amount == 140_00


def test_statement_pdf_lists_both_records_for_the_period(uow, demo, tmp_path):
    p = demo["persons"][0]
    with uow:
        person = uow.session.execute(
            select(Person).where(Person.certno == p["certno"])
        ).scalar_one()
        pdf = records.statement_pdf(
            uow.session,
            person,
            start=dt.date(2026, 1, 1),
            end=dt.date(2026, 11, 30),
            now=dt.datetime(2026, 11, 23, 10, tzinfo=CHINA),
        )
    assert pdf.startswith(b"%PDF")
    path = tmp_path / "s.pdf"
    path.write_bytes(pdf)
    textual = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "张伟" in textual and "3305025720001018" in textual
    assert (
        "2026-10" in textual
        and "2025-12" not in textual.split("Payment records")[1].split("postings")[0]
    )
    assert "monthly account credit" in textual
    assert "330502********0112" in textual and p["certno"] not in textual


def test_enrolment_twice_in_one_scheme_is_refused(uow, demo):
    person = add_person(uow)
    with uow, pytest.raises(DomainError) as err:
        p = uow.session.get(Person, person.id)
        cs.enrol(
            uow,
            actor=FUND_CLERK,
            channel=C,
            person=p,
            insutype=cs.EMPLOYEE,
            psn_type="flexible",
            start=dt.date(2026, 11, 1),
        )
    assert err.value.code == "enrolment.exists"


def test_card_application_before_the_first_payment_is_refused_with_that_reason(uow, demo):
    from tests.helpers import WUXING
    from yibao.domain.cards import Path
    from yibao.services.cards import cards

    person = add_person(uow, paid=False, certno=new_certno())
    with pytest.raises(DomainError) as err:
        cards.apply_for_card(
            uow,
            actor=WUXING,
            channel=C,
            path=Path.COUNTY_CENTER,
            certno=person.certno,
            materials=["id_card"],
        )
    assert err.value.code == "card.not_eligible" and "first payment" in err.value.message


@pytest.mark.postgresql_only
def test_two_posting_runs_at_once_credit_each_line_once(uow, services, demo, backend):
    import threading

    employer = make_employer(uow)
    workers = [hire(uow, employer, 5_000_00, name=f"并{i}") for i in range(12)]
    a = cs.assess_employer(
        uow, actor=FUND_CLERK, channel=C, employer_uscc=employer.uscc, month=202611
    )
    cs.record_employer_payment(
        uow,
        actor=FUND_CLERK,
        channel=C,
        employer_uscc=employer.uscc,
        month=202611,
        amount=a.total,
        reference="r",
        key="k",
    )
    results = []

    def run() -> None:
        results.append(
            cs.post_month(
                services.engine,
                month=202611,
                now=services.clock.now(),
                chunk_size=1,
                workers=2,
                backend=services.backend,
            )
        )

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.persons for r in results) == 12
    with uow:
        assert all(ledger.individual_balance(uow.session, w.id) == 100_00 for w in workers)
        assert ledger.check(uow.session).ok
