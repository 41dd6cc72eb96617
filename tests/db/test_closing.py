"""Closing an account (seed 000, part three, item 4): every fen ends in a named account."""

import subprocess

import pytest
from sqlalchemy import exists, func, select

from tests.helpers import FUND_CLERK, NANXUN, WUXING, new_certno
from yibao.domain import ledger as codes
from yibao.domain.actors import Channel
from yibao.services.closing import closing
from yibao.services.contributions import contributions
from yibao.services.ledger import ledger
from yibao.store.models import AuditEntry, Card, ContributionLine, IaCreditClaim, Person


def person_of(uow, account_no):
    return uow.session.execute(select(Person).where(Person.account_no == account_no)).scalar_one()


def state(uow, account_no):
    """(balance of IA, unposted credits, live card statuses) of a demo person."""
    with uow:
        person = person_of(uow, account_no)
        pending = uow.session.execute(
            select(func.coalesce(func.sum(ContributionLine.account_credit), 0)).where(
                ContributionLine.person_id == person.id,
                ContributionLine.status == "paid",
                ~exists().where(IaCreditClaim.line_id == ContributionLine.id),
            )
        ).scalar_one()
        return person.id, ledger.individual_balance(uow.session, person.id), int(pending)


def close(uow, account_no, kind, **kw):
    closure, _person = closing.close_account(
        uow, actor=WUXING, channel=Channel.API, account_no=account_no, kind=kind, **kw
    )
    return closure


def check_clean(uow):
    with uow:
        result = ledger.check(uow.session)
        assert result.ok, result.problems


@pytest.mark.parametrize(
    ("kind", "status", "payable"),
    [
        ("emigration", "emigrated", codes.payable_person),
        ("death", "deceased", codes.payable_heirs),
    ],
)
def test_closing_terminates_moves_the_whole_balance_and_cancels_the_card(
    uow, demo, kind, status, payable
):
    zhang = demo["persons"][0]
    pid, balance, pending = state(uow, zhang["account_no"])
    assert balance + pending > 0
    closure = close(uow, zhang["account_no"], kind, reason="test")
    assert closure.balance == balance + pending  # credits received but not yet posted go too
    with uow:
        person = person_of(uow, zhang["account_no"])
        assert person.status == status
        assert all(e.status == "terminated" for e in contributions.enrolments_of(uow.session, pid))
        assert ledger.individual_balance(uow.session, pid) == 0
        assert ledger.balance(uow.session, payable(pid)) == closure.balance
        card = uow.session.execute(
            select(Card).where(Card.card_no == zhang["card_no"])
        ).scalar_one()
        assert card.status == "cancelled"
        assert closure.card_no == zhang["card_no"] and closure.card_returned_at == "330502"
    check_clean(uow)
    # a retry returns the first answer and moves nothing
    again = close(uow, zhang["account_no"], kind, reason="test")
    assert again.closure_no == closure.closure_no
    with uow:
        assert ledger.balance(uow.session, payable(pid)) == closure.balance


def test_emigration_pays_the_balance_out_to_the_person_once(uow, demo):
    zhang = demo["persons"][0]
    closure = close(uow, zhang["account_no"], "emigration")
    pid = closure.person_id
    with uow:
        bank_before = ledger.balance(uow.session, codes.BANK)
    for _ in range(2):
        paid, _ = closing.pay_out(
            uow,
            actor=WUXING,
            channel=Channel.API,
            closure_no=closure.closure_no,
            reference="ICBC-20261123-1",
        )
    with uow:
        assert ledger.balance(uow.session, codes.payable_person(pid)) == 0
        assert ledger.balance(uow.session, codes.BANK) == bank_before + closure.balance
        assert paid.recipient_certno == zhang["certno"]
    check_clean(uow)


def test_death_balance_goes_to_the_heirs_recorded_with_who_received_it(uow, demo):
    chen = demo["persons"][4]
    closure = close(
        uow, chen["account_no"], "death", reason="死亡证明 2026-11-20", card_returned=False
    )
    # the card is cancelled even when the family could not hand it back
    assert closure.card_no == chen["card_no"] and closure.card_returned_at is None
    with pytest.raises(Exception) as err:
        closing.pay_out(
            uow,
            actor=WUXING,
            channel=Channel.API,
            closure_no=closure.closure_no,
            reference="R1",
        )
    assert getattr(err.value, "field", None) == "recipient_name"
    heir = new_certno()
    paid, _ = closing.pay_out(
        uow,
        actor=WUXING,
        channel=Channel.API,
        closure_no=closure.closure_no,
        reference="R1",
        recipient_name="陈明",
        recipient_certno=heir,
        relation="子女",
    )
    assert (paid.recipient_name, paid.recipient_certno, paid.recipient_relation) == (
        "陈明",
        heir,
        "子女",
    )
    with uow:
        assert ledger.balance(uow.session, codes.payable_heirs(closure.person_id)) == 0
    check_clean(uow)


def test_transfer_out_moves_the_balance_to_the_destination_and_gives_a_certificate(
    uow, demo, tmp_path
):
    zhang = demo["persons"][0]
    with pytest.raises(Exception) as err:
        close(uow, zhang["account_no"], "transfer_out", destination_area="330503")
    assert getattr(err.value, "field", None) == "destination_area"  # same city
    closure = close(uow, zhang["account_no"], "transfer_out", destination_area="310101")
    with uow:
        assert person_of(uow, zhang["account_no"]).status == "transferred_out"
        assert ledger.balance(uow.session, codes.payable_area("310101")) == closure.balance > 0
    cert = closure.certificate
    assert cert["to_area"] == "310101" and cert["balance"] == closure.balance
    assert cert["certificate_no"] == closure.closure_no
    assert {e["status"] for e in cert["enrolments"]} == {"terminated"}
    assert cert["paid_months"] > 0 and cert["payments"][0]["status"] in ("paid", "due")
    c, person = closing.get_closure(
        uow, actor=WUXING, channel=Channel.API, closure_no=closure.closure_no
    )
    pdf = closing.certificate_pdf(c, person)
    path = tmp_path / "c.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout
    assert closure.closure_no in text and "310101" in text
    assert closing.yuan(closure.balance) in text
    check_clean(uow)


def test_transfer_in_creates_the_enrolment_and_credits_the_balance_once(uow, demo):
    certno = new_certno()
    for _ in range(2):
        person = closing.transfer_in(
            uow,
            actor=WUXING,
            channel=Channel.API,
            certno=certno,
            name="赵转入",
            division_code="330502001",
            from_area="310101",
            certificate_no="SH-2026-0042",
            balance=123456,
        ).person
    with uow:
        assert ledger.individual_balance(uow.session, person.id) == 123456
        assert ledger.balance(uow.session, codes.incoming_area("310101")) == -123456
        current = contributions.current_enrolment(uow.session, person.id)
        assert current is not None and current.psn_type == "flexible"
    check_clean(uow)


def test_staff_of_another_county_cannot_close_the_account(uow, demo):
    zhang = demo["persons"][0]
    with pytest.raises(Exception) as err:
        closing.close_account(
            uow, actor=NANXUN, channel=Channel.API, account_no=zhang["account_no"], kind="death"
        )
    assert getattr(err.value, "status", None) == 404


def test_a_contribution_clerk_cannot_cancel_cards_so_cannot_close(uow, demo):
    zhang = demo["persons"][0]
    with pytest.raises(Exception) as err:
        closing.close_account(
            uow,
            actor=FUND_CLERK,
            channel=Channel.API,
            account_no=zhang["account_no"],
            kind="death",
        )
    assert getattr(err.value, "status", None) == 403


def test_closing_is_audited(uow, demo):
    zhang = demo["persons"][0]
    closure = close(uow, zhang["account_no"], "emigration")
    with uow:
        actions = set(
            uow.session.execute(
                select(AuditEntry.action).where(AuditEntry.person_id == closure.person_id)
            ).scalars()
        )
    assert "account.close.emigration" in actions
