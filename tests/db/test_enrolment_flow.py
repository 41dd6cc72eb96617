"""Seed 004: the individual enrolment flow, from materials to a card."""

import datetime as dt
import subprocess

import pytest
from sqlalchemy import select

from tests.helpers import CITY, FUND_CLERK, NANXUN, WUXING, new_certno
from yibao.domain.actors import Channel
from yibao.domain.cards import Path
from yibao.domain.errors import DomainError
from yibao.services.cards import cards
from yibao.services.contributions import contributions, enrolment
from yibao.services.ledger import ledger
from yibao.store.models import AuditEntry, BankDebit, Payment, Person

ALL = list(enrolment.MATERIALS)
FORM = {
    "resigned_on": "2026-10-31",
    "former_employer": "湖州某某纺织有限公司",
    "debit_bank": "中国农业银行湖州分行",
    "debit_account": "6228480012345678901",
}


def submit(uow, certno=None, materials=ALL, form=FORM, actor=WUXING):
    app = enrolment.submit(
        uow,
        actor=actor,
        channel=Channel.API,
        certno=certno or new_certno(),
        name="沈灵活",
        division_code="330502001",
        materials=materials,
        subsidy_form=form,
    )
    return app.application.app_no


def approve(uow, app_no, actor=WUXING):
    done = enrolment.approve(uow, actor=actor, channel=Channel.API, app_no=app_no)
    assert done.voucher is not None
    return done.voucher.voucher.voucher_no


def debit_file(uow, day):
    text = enrolment.write_debit_file(uow, actor=FUND_CLERK, channel=Channel.CLI, day=day)
    lines = text.strip().splitlines()
    return lines[0], [line.split(",") for line in lines[1:]]


def read_return(uow, content):
    result = enrolment.read_return_file(
        uow, actor=FUND_CLERK, channel=Channel.CLI, content=content, filename="ret.csv"
    )
    return result


def test_missing_materials_are_recorded_and_named_and_block_approval(uow, demo):
    app_no = submit(uow, materials=["id_card", "photo"])
    app = enrolment.get_application(
        uow, actor=WUXING, channel=Channel.API, app_no=app_no
    ).application
    assert [m["item"] for m in app.missing] == [
        "id_card_copy",
        "resignation_papers",
        "household_register_copy",
    ]
    assert {m["item"]: m["checked"] for m in app.materials}["photo"] is True
    with pytest.raises(DomainError) as err:
        enrolment.approve(uow, actor=WUXING, channel=Channel.API, app_no=app_no)
    assert err.value.code == "enrolment_application.materials_missing"
    assert "户口簿复印件" in err.value.zh and "resignation papers" in err.value.en
    enrolment.add_materials(
        uow,
        actor=WUXING,
        channel=Channel.API,
        app_no=app_no,
        materials=["id_card_copy", "resignation_papers", "household_register_copy"],
    )
    assert approve(uow, app_no).startswith("PV")


def test_unknown_material_and_incomplete_subsidy_form_are_refused(uow, demo):
    with pytest.raises(DomainError) as err:
        submit(uow, materials=["id_card", "passport"])
    assert err.value.field == "materials" and "passport" in err.value.en
    with pytest.raises(DomainError) as err:
        submit(uow, form={**FORM, "debit_account": ""})
    assert err.value.field == "subsidy_form.debit_account"
    with pytest.raises(DomainError) as err:
        submit(uow, form={**FORM, "resigned_on": "2027-01-01"})
    assert err.value.field == "subsidy_form.resigned_on"


def test_reject_needs_a_reason_and_a_reviewed_application_cannot_be_reviewed_again(uow, demo):
    app_no = submit(uow)
    with pytest.raises(DomainError) as err:
        enrolment.reject(uow, actor=WUXING, channel=Channel.API, app_no=app_no, reason="  ")
    assert err.value.field == "reason"
    app = enrolment.reject(
        uow, actor=WUXING, channel=Channel.API, app_no=app_no, reason="离职证明不清晰"
    ).application
    assert app.status == "rejected" and app.reject_reason == "离职证明不清晰"
    with pytest.raises(DomainError) as err:
        enrolment.approve(uow, actor=WUXING, channel=Channel.API, app_no=app_no)
    assert err.value.code == "enrolment_application.reviewed"


def test_approval_enrols_a_flexible_employee_and_issues_a_printable_voucher(uow, demo, tmp_path):
    certno = new_certno()
    voucher_no = approve(uow, submit(uow, certno))
    found, person = enrolment.get_voucher(
        uow, actor=WUXING, channel=Channel.API, voucher_no=voucher_no
    )
    voucher = found.voucher
    with uow:
        current = contributions.current_enrolment(uow.session, person.id)
    assert current is not None
    assert (current.insutype, current.psn_type, current.status) == ("310", "flexible", "active")
    assert [s["month"] for s in voucher.schedule] == [202611, 202612, 202701]
    assert voucher.schedule[0]["due_date"] == "2026-11-30"  # a week after issue
    assert voucher.schedule[1]["due_date"] == "2026-12-25"
    assert voucher.total == sum(s["amount"] for s in voucher.schedule) > 0
    _, pdf = enrolment.voucher_document(
        uow, actor=WUXING, channel=Channel.API, voucher_no=voucher_no
    )
    path = tmp_path / "v.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert voucher_no in text
    assert enrolment.yuan(voucher.total) in text
    assert enrolment.DEMO_PAYEE["account"] in text
    assert "2026-12-25" in text


def test_bank_debit_and_return_files_pay_once_and_a_failed_row_stays_due(uow, demo, clock):
    certno = new_certno()
    voucher_no = approve(uow, submit(uow, certno))
    assert debit_file(uow, dt.date(2026, 11, 29))[1] == []  # nothing due yet
    header, rows = debit_file(uow, dt.date(2026, 11, 30))
    assert header == ",".join(enrolment.DEBIT_HEADER)
    assert len(rows) == 1 and rows[0][1] == voucher_no and rows[0][2] == "2026-11"
    assert rows[0][5] == FORM["debit_account"]
    # the same day again: the same rows, no new attempts
    assert debit_file(uow, dt.date(2026, 11, 30))[1] == rows
    debit_no, amount = rows[0][0], rows[0][3]

    failed = f"debit_no,result,amount,bank_ref,reason\n{debit_no},failed,{amount},B1,余额不足\n"
    assert read_return(uow, failed).failed == 1
    with uow:
        person = uow.session.execute(select(Person).where(Person.certno == certno)).scalar_one()
        assert not contributions.has_paid(uow.session, person.id)
    assert read_return(uow, failed).unchanged == 1  # re-read: nothing changes

    # the failed month is debited again in the next file
    rows2 = debit_file(uow, dt.date(2026, 12, 1))[1]
    assert len(rows2) == 1 and rows2[0][0] != debit_no and rows2[0][2] == "2026-11"
    paid = f"debit_no,result,amount,bank_ref,reason\n{rows2[0][0]},paid,{amount},B2,\n"
    first = read_return(uow, paid)
    assert (first.paid, first.failed, first.errors) == (1, 0, [])
    again = read_return(uow, paid)
    assert (again.paid, again.unchanged) == (0, 1)
    with uow:
        assert contributions.has_paid(uow.session, person.id)
        records = contributions.payment_records(uow.session, person.id)
        assert [(r.month, r.status) for r in sorted(records, key=lambda r: r.month)] == [
            (202611, "paid"),
            (202612, "due"),
            (202701, "due"),
        ]
        debits = uow.session.execute(select(BankDebit).order_by(BankDebit.id)).scalars().all()
        assert [d.status for d in debits] == ["failed", "paid"]
        trail = uow.session.execute(
            select(AuditEntry.action)
            .where(AuditEntry.person_id == person.id, AuditEntry.action.like("bank.%"))
            .order_by(AuditEntry.id)
        ).scalars()
        # the same-day rewrite of the file is audited too: the file went out again
        assert list(trail) == ["bank.debit", "bank.debit", "bank.debit_failed", "bank.debit"]
        assert ledger.check(uow.session).ok
        assert ledger.balance(uow.session, "BANK:CLEARING") < 0


def test_a_paid_row_with_another_amount_is_not_applied(uow, demo):
    approve(uow, submit(uow))
    rows = debit_file(uow, dt.date(2026, 11, 30))[1]
    result = read_return(uow, f"debit_no,result,amount\n{rows[0][0]},paid,1.00\n")
    assert result.paid == 0 and "not the debited one" in result.errors[0]
    result = read_return(uow, f"debit_no,result,amount\n{rows[0][0]},paid,{rows[0][3]}\n")
    assert result.paid == 1


def test_the_whole_flow_ends_in_a_card_after_the_first_payment(uow, demo):
    certno = new_certno()
    approve(uow, submit(uow, certno))
    with pytest.raises(DomainError) as err:
        cards.apply_for_card(
            uow,
            actor=WUXING,
            channel=Channel.API,
            path=Path.COUNTY_CENTER,
            certno=certno,
            materials=["id_card"],
            pin="135790",
        )
    assert err.value.code == "card.not_eligible"
    rows = debit_file(uow, dt.date(2026, 11, 30))[1]
    read_return(uow, f"debit_no,result,amount\n{rows[0][0]},paid,{rows[0][3]}\n")
    result = cards.apply_for_card(
        uow,
        actor=WUXING,
        channel=Channel.API,
        path=Path.COUNTY_CENTER,
        certno=certno,
        materials=["id_card"],
        pin="135790",
    )
    assert result.card.status == "issued"


def test_record_book_number_is_recorded_once(uow, demo):
    app_no = submit(uow)
    with pytest.raises(DomainError) as err:
        enrolment.issue_record_book(
            uow, actor=WUXING, channel=Channel.API, app_no=app_no, number="BL2026000123"
        )
    assert err.value.code == "enrolment_application.not_approved"
    approve(uow, app_no)
    app = enrolment.issue_record_book(
        uow, actor=WUXING, channel=Channel.API, app_no=app_no, number="BL2026000123"
    ).application
    assert app.record_book_no == "BL2026000123"
    with pytest.raises(DomainError) as err:
        enrolment.issue_record_book(
            uow, actor=WUXING, channel=Channel.API, app_no=app_no, number="BL2026000999"
        )
    assert err.value.code == "record_book.issued"


def test_other_areas_staff_do_not_see_the_application(uow, demo):
    app_no = submit(uow)
    with pytest.raises(DomainError) as err:
        enrolment.approve(uow, actor=NANXUN, channel=Channel.API, app_no=app_no)
    assert err.value.status == 404


def test_each_step_is_audited(uow, demo):
    app_no = submit(uow)
    approve(uow, app_no)
    with uow:
        actions = set(
            uow.session.execute(
                select(AuditEntry.action).where(AuditEntry.subject == app_no)
            ).scalars()
        )
    assert {"enrolment_application.submit", "enrolment_application.approve"} <= actions


def test_a_closed_account_gets_no_more_bank_debits(uow, demo):
    from yibao.services.closing import closing

    certno = new_certno()
    approve(uow, submit(uow, certno))
    with uow:
        person = uow.session.execute(select(Person).where(Person.certno == certno)).scalar_one()
    closing.close_account(
        uow, actor=WUXING, channel=Channel.API, account_no=person.account_no, kind="emigration"
    )
    assert debit_file(uow, dt.date(2026, 12, 31))[1] == []


@pytest.mark.postgresql_only
def test_the_same_return_file_read_twice_at_once_pays_once(services, demo):
    import threading

    certno = new_certno()
    approve(services.uow(), submit(services.uow(), certno))
    rows = debit_file(services.uow(), dt.date(2026, 11, 30))[1]
    content = f"debit_no,result,amount\n{rows[0][0]},paid,{rows[0][3]}\n"
    results = []
    barrier = threading.Barrier(2)

    def read() -> None:
        barrier.wait()
        results.append(read_return(services.uow(), content))

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted((r.paid, r.unchanged) for r in results) == [(0, 1), (1, 0)]
    with services.uow() as work:
        person = work.session.execute(select(Person).where(Person.certno == certno)).scalar_one()
        payments = work.session.execute(
            select(Payment.amount).where(Payment.person_id == person.id)
        ).scalars()
        assert list(payments) == [int(rows[0][3].replace(".", ""))]
        assert ledger.check(work.session).ok


def test_an_insured_person_or_one_with_an_open_application_cannot_apply_again(uow, demo):
    with pytest.raises(DomainError) as err:
        submit(uow, demo["persons"][0]["certno"])
    assert err.value.code == "enrolment.exists"
    certno = new_certno()
    submit(uow, certno)
    with pytest.raises(DomainError) as err:
        submit(uow, certno)
    assert err.value.code == "enrolment_application.open"


def _payee(uow, actor, area="330502", **kw):
    fields = {
        "bank": "湖州银行吴兴支行",
        "name": "吴兴区医保基金收入户",
        "account": "6201 0000 1111 22",
    }
    row = enrolment.set_collection_account(
        uow, actor=actor, channel=Channel.API, area=area, **(fields | kw)
    )
    return row.account


def test_the_voucher_prints_the_areas_own_collection_account_else_the_citys(uow, demo):
    from yibao.store.models import PaymentVoucher

    first = approve(uow, submit(uow))  # Wuxing has none of its own: the city's
    assert _payee(uow, CITY) == "62010000111122"  # set for Wuxing by the city's admin
    second = approve(uow, submit(uow))
    with uow:
        rows = {
            v.voucher_no: v
            for v in uow.session.scalars(
                select(PaymentVoucher).where(PaymentVoucher.voucher_no.in_([first, second]))
            )
        }
        assert rows[first].payee_account == enrolment.DEMO_PAYEE["account"]  # kept as issued
        assert rows[second].payee_account == "62010000111122"
        assert rows[second].payee_name == "吴兴区医保基金收入户"
        entry = uow.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "collection_account.set")
        ).all()[-1]
        assert entry.subject == "330502" and entry.detail["before"] is None


def test_without_a_collection_account_no_voucher_is_issued_and_nothing_changes(uow, demo):
    from yibao.store.models import CollectionAccount, Enrolment

    with uow:
        uow.session.execute(CollectionAccount.__table__.delete())
        uow.commit()
    app_no = submit(uow)
    with pytest.raises(DomainError) as err:
        enrolment.approve(uow, actor=WUXING, channel=Channel.API, app_no=app_no)
    assert err.value.code == "collection_account.missing" and err.value.field == "area"
    assert "330502" in err.value.en and "收入户" in err.value.zh
    found = enrolment.get_application(uow, actor=WUXING, channel=Channel.API, app_no=app_no)
    assert found.application.status == "submitted" and found.voucher is None
    with uow:
        assert not uow.session.scalars(
            select(Enrolment).where(Enrolment.person_id == found.person.id)
        ).all()


@pytest.mark.parametrize(
    ("actor", "kw", "what"),
    [
        (CITY, {"account": "12ab5678"}, "account"),
        (CITY, {"account": "1234567"}, "account"),
        (CITY, {"bank": " "}, "bank"),
        (CITY, {"name": ""}, "name"),
        (CITY, {"area": "999999"}, "area"),
        (CITY, {"area": "3305"}, "area"),
        (WUXING, {}, "access.forbidden"),  # a county clerk may not
    ],
)
def test_a_bad_collection_account_is_refused_naming_the_field(uow, demo, actor, kw, what):
    with pytest.raises(DomainError) as err:
        _payee(uow, actor, **kw)
    assert what in (err.value.field, err.value.code)


def test_a_county_admin_sets_only_the_accounts_of_the_own_area(uow, demo):
    from yibao.domain.access import Role
    from yibao.domain.actors import Actor

    county_admin = Actor.staff(username="wuxing_admin", division="330502", role=Role.COUNTY_ADMIN)
    assert _payee(uow, county_admin) == "62010000111122"
    with pytest.raises(DomainError) as err:
        _payee(uow, county_admin, area="330503")
    assert err.value.code == "access.out_of_area"
    seen = [r.area for r in enrolment.collection_accounts(uow, actor=county_admin)]
    assert seen == ["330500", "330502"]  # the city's, which it uses, and its own
