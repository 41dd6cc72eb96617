"""Issue 3 over the staff API and the command line: seed 004 end to end,
closing an account, records, and employers' money."""

import subprocess

from sqlalchemy import select

from tests.helpers import CliRunner, new_certno
from yibao.cli import app as cli_app
from yibao.services.ledger import ledger
from yibao.store.models import AuditEntry

API = "/api/v1"
FORM = {
    "resigned_on": "2026-10-31",
    "former_employer": "湖州某某纺织有限公司",
    "declared_base": "5000.00",
    "debit_bank": "中国农业银行湖州分行",
    "debit_account": "6228480012345678901",
}
ALL = ["id_card", "id_card_copy", "photo", "resignation_papers", "household_register_copy"]


def cli(*args):
    return CliRunner().invoke(cli_app, list(args), catch_exceptions=False)


def pdf_text(tmp_path, content):
    path = tmp_path / "doc.pdf"
    path.write_bytes(content)
    return subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def audited(services, action):
    with services.uow() as work:
        return list(
            work.session.execute(
                select(AuditEntry.actor_id).where(AuditEntry.action == action)
            ).scalars()
        )


def test_seed_004_end_to_end_over_the_api_and_the_bank_files(
    client, demo, token_for, env, tmp_path, services
):
    h = token_for("wuxing")
    certno = new_certno()
    r = client.post(
        f"{API}/enrolment-applications",
        json={
            "certno": certno,
            "name": "沈灵活",
            "division_code": "330502001",
            "materials": ["id_card", "id_card_copy", "photo"],
            "subsidy_form": FORM,
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    app = r.json()
    assert [m["item"] for m in app["missing"]] == ["resignation_papers", "household_register_copy"]
    assert app["review_due"] == "2026-11-23"
    app_no = app["app_no"]
    assert [a["app_no"] for a in client.get(f"{API}/enrolment-applications", headers=h).json()] == [
        app_no
    ]

    r = client.post(f"{API}/enrolment-applications/{app_no}/approve", json={}, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "enrolment_application.materials_missing"
    assert "resignation papers" in r.json()["detail"]
    r = client.post(
        f"{API}/enrolment-applications/{app_no}/materials",
        json={"materials": ["resignation_papers", "household_register_copy"]},
        headers=h,
    )
    assert r.json()["missing"] == []
    r = client.post(f"{API}/enrolment-applications/{app_no}/approve", json={}, headers=h)
    assert r.status_code == 200, r.text
    voucher = r.json()["voucher"]
    assert voucher["total"] == "1350.00"  # 3 months x 5000 x (7 % + 2 %)
    assert voucher["schedule"][0] == {
        "month": "2026-11",
        "amount": "450.00",
        "due_date": "2026-11-30",
        "status": "due",
    }
    account_no = client.get(f"{API}/persons", params={"certno": certno}, headers=h).json()[0][
        "account_no"
    ]

    r = client.get(f"{API}/payment-vouchers/{voucher['voucher_no']}/pdf", headers=h)
    assert r.headers["content-type"] == "application/pdf"
    text = pdf_text(tmp_path, r.content)
    assert voucher["voucher_no"] in text and "1,350.00" in text and "450.00" in text

    r = client.post(
        f"{API}/card-applications",
        json={"path": "county_center", "certno": certno, "materials": ["id_card"], "pin": "135790"},
        headers=h,
    )
    assert r.status_code == 409 and r.json()["code"] == "card.not_eligible"

    out = tmp_path / "debit.csv"
    result = cli("bank", "debit-file", "--date", "2026-11-30", "-o", str(out))
    assert result.exit_code == 0 and "1 debit row(s)" in result.output
    _header, row = out.read_text(encoding="utf-8").strip().splitlines()
    debit_no = row.split(",")[0]
    assert row.split(",")[1:5] == [
        voucher["voucher_no"],
        "2026-11",
        "450.00",
        "中国农业银行湖州分行",
    ]
    ret = tmp_path / "return.csv"
    ret.write_text(f"debit_no,result,amount,bank_ref,reason\n{debit_no},paid,450.00,ABC1,\n")
    assert "paid 1, failed 0" in cli("bank", "return-file", str(ret)).output
    assert "paid 0, failed 0, already read 1" in cli("bank", "return-file", str(ret)).output

    records = client.get(f"{API}/persons/{account_no}/payment-records", headers=h).json()
    assert [(x["month"], x["status"]) for x in records] == [
        ("2027-01", "due"),
        ("2026-12", "due"),
        ("2026-11", "paid"),
    ]
    r = client.post(
        f"{API}/card-applications",
        json={"path": "county_center", "certno": certno, "materials": ["id_card"], "pin": "135790"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert r.json()["card"]["status"] == "issued"

    r = client.post(
        f"{API}/enrolment-applications/{app_no}/record-book",
        json={"number": "BL330502-0001"},
        headers=h,
    )
    assert r.json()["record_book_no"] == "BL330502-0001"
    with services.uow() as work:
        assert ledger.check(work.session).ok


def test_reject_without_a_reason_is_refused_and_other_counties_get_404(client, demo, token_for):
    h = token_for("wuxing")
    r = client.post(
        f"{API}/enrolment-applications",
        json={
            "certno": new_certno(),
            "name": "沈灵活",
            "division_code": "330502001",
            "materials": ALL,
            "subsidy_form": FORM,
        },
        headers=h,
    )
    app_no = r.json()["app_no"]
    r = client.post(f"{API}/enrolment-applications/{app_no}/reject", json={}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "reason"
    other = token_for("nanxun")
    r = client.post(
        f"{API}/enrolment-applications/{app_no}/reject", json={"reason": "x"}, headers=other
    )
    assert r.status_code == 404
    r = client.post(
        f"{API}/enrolment-applications/{app_no}/reject", json={"reason": "材料不实"}, headers=h
    )
    assert r.json()["status"] == "rejected" and r.json()["reject_reason"] == "材料不实"


def test_records_are_audited_reads_and_scoped(client, demo, token_for, services, tmp_path):
    zhang = demo["persons"][0]
    h = token_for("wuxing")
    base = f"{API}/persons/{zhang['account_no']}"
    records = client.get(f"{base}/payment-records", params={"start": "2026-01"}, headers=h).json()
    assert records and all(r["month"] >= "2026-01" for r in records)
    assert records[0]["status"] in ("paid", "due") and "." in records[0]["employer_amount"]
    rights = client.get(f"{base}/rights-records", headers=h).json()
    assert rights["enrolments"] and float(rights["balance"]) > 0
    r = client.get(
        f"{base}/statement.pdf", params={"start": "2026-01-01", "end": "2026-11-23"}, headers=h
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert zhang["account_no"] in pdf_text(tmp_path, r.content)
    for action in ("records.payment.read", "records.rights.read", "records.statement"):
        assert audited(services, action) == ["wuxing"]
    other = token_for("nanxun")
    for path in ("payment-records", "rights-records", "statement.pdf"):
        assert client.get(f"{base}/{path}", headers=other).status_code == 404


def test_closing_over_the_api_with_a_transfer_certificate(client, demo, token_for, tmp_path):
    zhang = demo["persons"][0]
    h = token_for("wuxing")
    body = {"kind": "transfer_out", "destination_area": "310101", "reason": "调往上海工作"}
    r = client.post(f"{API}/persons/{zhang['account_no']}/closure", json=body, headers=h)
    assert r.status_code == 201, r.text
    closure = r.json()
    assert closure["person_status"] == "transferred_out" and closure["card_no"] == zhang["card_no"]
    again = client.post(f"{API}/persons/{zhang['account_no']}/closure", json=body, headers=h)
    assert again.json() == closure  # a retry returns the first answer
    no = closure["closure_no"]
    cert = client.get(f"{API}/account-closures/{no}/certificate", headers=h).json()
    assert cert["balance_yuan"].replace(",", "") == closure["balance"] and cert["payments"]
    r = client.get(f"{API}/account-closures/{no}/certificate.pdf", headers=h)
    assert no in pdf_text(tmp_path, r.content)
    card = client.get(f"{API}/cards/{zhang['card_no']}", headers=h).json()
    assert card["status"] == "cancelled"
    r = client.post(f"{API}/account-closures/{no}/payout", json={"reference": "PAY-1"}, headers=h)
    assert r.json()["paid_reference"] == "PAY-1"
    assert (
        client.get(f"{API}/account-closures/{no}", headers=token_for("nanxun")).status_code == 404
    )


def test_transfer_in_over_the_api_credits_once(client, demo, token_for):
    h = token_for("wuxing")
    body = {
        "certno": new_certno(),
        "name": "赵转入",
        "division_code": "330502001",
        "from_area": "310101",
        "certificate_no": "SH-2026-0099",
        "balance": "1234.56",
    }
    first = client.post(f"{API}/transfers-in", json=body, headers=h)
    assert first.status_code == 201, first.text
    second = client.post(f"{API}/transfers-in", json=body, headers=h)
    assert first.json() == second.json() and first.json()["balance"] == "1234.56"


def test_employer_payment_needs_an_idempotency_key_and_a_retry_returns_the_first_answer(
    client, demo, token_for
):
    uscc = demo["employers"][0]["uscc"]
    h = token_for("wuxing_fund")
    r = client.post(f"{API}/employers/{uscc}/assessments", json={"month": "2026-12"}, headers=h)
    assert r.status_code == 201, r.text
    total = r.json()["total"]
    assert r.json()["persons"] > 0 and r.json()["status"] == "due"
    body = {"month": "2026-12", "amount": total, "reference": "ICBC-0001"}
    r = client.post(f"{API}/employers/{uscc}/payments", json=body, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "Idempotency-Key"
    keyed = {**h, "Idempotency-Key": "pay-2026-12-0001"}
    first = client.post(f"{API}/employers/{uscc}/payments", json=body, headers=keyed)
    second = client.post(f"{API}/employers/{uscc}/payments", json=body, headers=keyed)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    other = {**body, "amount": "1.00"}
    r = client.post(f"{API}/employers/{uscc}/payments", json=other, headers=keyed)
    assert r.status_code == 409 and r.json()["code"] == "idempotency.key_reused"
    r = client.post(f"{API}/employers/{uscc}/assessments", json={"month": "2026-12"}, headers=h)
    assert r.json()["status"] == "paid" and r.json()["paid_total"] == total


def test_arrears_are_listed_for_the_employer_in_scope_only(client, demo, token_for):
    late = demo["employers"][1]["uscc"]
    r = client.get(f"{API}/employers/{late}/arrears", headers=token_for("nanxun"))
    assert r.status_code == 200 and r.json()["months"] >= 2
    assert float(r.json()["outstanding"]) > 0
    assert (
        client.get(f"{API}/employers/{late}/arrears", headers=token_for("wuxing")).status_code
        == 404
    )


def test_cli_assess_and_suspensions(env, demo):
    result = cli("contributions", "assess", "--month", "2026-12")
    assert result.exit_code == 0, result.output
    assert "3 employer(s)" in result.output
    one = cli(
        "contributions", "assess", "--month", "2026-12", "--employer", demo["employers"][0]["uscc"]
    )
    assert one.exit_code == 0 and "1 employer(s)" in one.output
    result = cli("contributions", "suspensions")
    assert result.exit_code == 0 and "suspended" in result.output
