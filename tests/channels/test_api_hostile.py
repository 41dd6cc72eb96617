"""The staff API against a hostile or careless client (issue 14): every
malformed value is a 422 naming the field, never a 500 and never a stall;
staff stay inside their area; the log-in does not tell which users exist."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from sqlalchemy import select

from tests.channels.ivr_phone import PLATFORMS, ivr_settings
from yibao.store.models import AuditEntry


@pytest.fixture
def settings(db_url, tmp_path):
    # the telephone line's settings too, for the calls the agents' console reads
    return ivr_settings(db_url, tmp_path)


def refused(r, field: str) -> None:
    """A 422 problem naming ``field``, in both languages, without internals."""
    assert r.status_code == 422, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["field"] == field, body
    assert field in {e["field"] for e in body["errors"]}
    assert " / " in body["detail"]  # Chinese / English
    assert "Traceback" not in r.text and "Error(" not in r.text


# ---------------------------------------------------------------- the calendar


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/calendar/add-working-days/2026-01-01/100000000000", "days"),
        ("/calendar/add-working-days/2026-01-01/-1", "days"),
        ("/calendar/add-working-days/2026-01-01/3661", "days"),
        ("/calendar/add-working-days/2026-01-01/1²", "days"),
        ("/calendar/add-working-days/2026-01-01/１２", "days"),
        ("/calendar/add-working-days/9999-12-31/1", "start"),
        ("/calendar/add-working-days/0001-01-01/1", "start"),
        ("/calendar/add-working-days/2026-02-30/1", "start"),
        ("/calendar/99999999999999999999", "year"),
        ("/calendar/202⁶", "year"),
        ("/calendar/9999", "year"),
    ],
)
def test_the_calendar_refuses_what_it_cannot_count(client, demo, token_for, path, field):
    refused(client.get(f"/api/v1{path}", headers=token_for("admin")), field)


def test_the_largest_count_is_answered_at_once_and_healthz_never_waits(client, demo, token_for):
    admin = token_for("admin")
    begun = time.perf_counter()
    r = client.get("/api/v1/calendar/add-working-days/2026-01-01/3660", headers=admin)
    assert r.status_code == 200 and r.json()["date"].startswith("2040-")
    refused(
        client.get("/api/v1/calendar/add-working-days/2026-01-01/100000000000", headers=admin),
        "days",
    )
    assert client.get("/healthz").status_code == 200
    # day by day, 10^11 working days took 7 s and then failed; now both are arithmetic
    assert time.perf_counter() - begun < 2


def test_setting_a_day_at_year_9999_is_refused(client, demo, token_for):
    r = client.put(
        "/api/v1/calendar/days/9999-12-31", headers=token_for("admin"), json={"workday": False}
    )
    refused(r, "day")


# ---------------------------------------------------------------- malformed values everywhere

ZHANG_ACCOUNT = "3305025720001018"  # the demo city's first person (Wuxing)
ZHANG_CARD = "5720001014"
EMPLOYER = "91330502MA2B3C4D58"


def row(method, path, field, body=None, headers=None, role="wuxing"):
    """A request by a staff user who may make it (a county clerk unless said),
    with one malformed value in ``field``."""
    return pytest.param(
        role, method, path, body, headers or {}, field, id=f"{method} {path[:40]} {field}"
    )


KEY = {"Idempotency-Key": "hostile-key-0001"}
TRANSFER = {"certno": "330502198503120112", "from_area": "310101", "certificate_no": "SH-1"}
PERSON = {"certno": "330502198503120112", "name": "x", "division_code": "330502"}

# Each a value that once reached int(), Decimal or date arithmetic, or a type
# or length the route or its column did not expect.
HOSTILE = [
    # superscript and full-width digits: isdigit() says yes, int() says no (or reads another number)
    row("POST", f"/employers/{EMPLOYER}/assessments", "month", {"month": "2026-1²"}),
    row("POST", f"/employers/{EMPLOYER}/assessments", "month", {"month": "２０２６-１１"}),
    row(
        "POST",
        f"/employers/{EMPLOYER}/payments",
        "month",
        {"month": "2026-1²", "amount": "1.00", "reference": "R1"},
        KEY,
    ),
    row("GET", f"/persons/{ZHANG_ACCOUNT}/payment-records?start=2026-1²", "start"),
    row("GET", f"/persons/{ZHANG_ACCOUNT}/payment-records?end=9999-12", "end"),
    row("GET", "/persons/330502572000101²", "account_no"),
    row("GET", "/persons/３３０５０２５７２０００１０１８", "account_no"),
    row("GET", "/cards/572000101⁴", "card_no"),
    row("GET", "/persons?card_no=572000101⁴", "card_no"),
    row("GET", "/persons?certno=33050219850312011²", "certno"),
    row("POST", f"/persons/{ZHANG_ACCOUNT}/cards/{ZHANG_CARD}/pin", "pin", {"pin": "13579²"}),
    row("POST", f"/persons/{ZHANG_ACCOUNT}/phone-pin", "pin", {"pin": "８０２４６１"}),
    row("POST", "/persons", "certno", {**PERSON, "certno": "33050219850312011²"}),
    row("POST", "/persons", "division_code", {**PERSON, "division_code": "33050²"}),
    # amounts that overflow the decimal arithmetic, or are not ASCII digits
    row(
        "POST",
        f"/employers/{EMPLOYER}/payments",
        "amount",
        {"month": "2026-11", "amount": "1e999999", "reference": "R1"},
        KEY,
    ),
    row(
        "POST",
        f"/employers/{EMPLOYER}/payments",
        "amount",
        {"month": "2026-11", "amount": "１２３", "reference": "R1"},
        KEY,
    ),
    row("POST", "/transfers-in", "balance", {**TRANSFER, "balance": "1e999999"}),
    row("POST", "/transfers-in", "balance", {**TRANSFER, "balance": 1e308}),
    row(
        "POST",
        "/enrolment-applications",
        "subsidy_form.declared_base",
        {
            "certno": "330502198503120112",
            "materials": ["id_card"],
            "subsidy_form": {"resigned_on": "2026-10-31", "declared_base": "1e999999"},
        },
    ),
    # dates at year 9999 and impossible dates
    row("GET", f"/persons/{ZHANG_ACCOUNT}/statement.pdf?start=9999-12-31", "start"),
    row("GET", f"/persons/{ZHANG_ACCOUNT}/statement.pdf?end=9999-12-31", "end"),
    row("GET", f"/persons/{ZHANG_ACCOUNT}/statement.pdf?start=2026-02-30", "start"),
    row(
        "POST",
        "/enrolment-applications",
        "subsidy_form.resigned_on",
        {
            "certno": "330502198503120112",
            "materials": ["id_card"],
            "subsidy_form": {"resigned_on": "9999-12-31"},
        },
    ),
    row(
        "POST",
        "/institutions/H33050200001/equipment-failures",
        "start",
        {"start": "9999-12-31T23:59:59-14:00", "end": "2026-11-23T09:00:00+08:00", "reason": "x"},
        role="admin",
    ),
    # the wrong kind of value, and texts past their column
    row("POST", "/enrolment-applications/EA1/materials", "materials", {"materials": {"a": True}}),
    row("POST", "/persons", "name", {**PERSON, "name": "名" * 51}),
    row(
        "POST",
        f"/persons/{ZHANG_ACCOUNT}/closure",
        "reason",
        {"kind": "death", "reason": "x" * 201},
    ),
    row(
        "POST",
        f"/employers/{EMPLOYER}/payments",
        "Idempotency-Key",
        {"month": "2026-11", "amount": "1.00", "reference": "R1"},
        {"Idempotency-Key": "键键键".encode() * 3},  # raw UTF-8 bytes
    ),
    # a NUL or an unpaired surrogate (JSON "\u0000", "\ud800"): PostgreSQL refuses to
    # store the one, UTF-8 cannot encode the other for SQLite or the password hash
    row("POST", "/persons", "name", {**PERSON, "name": "张\x00伟"}),
    row("POST", "/persons", "name", {**PERSON, "name": "张\ud800"}),
    row("POST", "/auth/login", "username", {"username": "\ud800", "password": "x"}),
    row("POST", "/auth/login", "password", {"username": "wuxing", "password": "\ud800"}),
    row("GET", "/ivr/calls/" + "C" * 65, "call_id"),
    row("GET", "/card-applications/S2026¹", "app_no"),
]


@pytest.mark.parametrize(("role", "method", "path", "body", "headers", "field"), HOSTILE)
def test_a_malformed_value_is_a_422_naming_the_field(
    client, demo, token_for, role, method, path, body, headers, field
):
    if body is not None:
        # escaped as JSON sends it: a lone surrogate arrives as the six characters \ud800
        headers = {**headers, "Content-Type": "application/json"}
    r = client.request(
        method,
        f"/api/v1{path}",
        content=None if body is None else json.dumps(body),
        headers={**token_for(role), **headers},
    )
    refused(r, field)


# ---------------------------------------------------------------- staff inside their area


def test_a_call_is_not_found_by_staff_of_another_area(client, demo, token_for):
    p = demo["persons"][0]  # of Wuxing
    call = PLATFORMS["twiml"](client).dial()
    call.press("1").press("1").press(p["certno"] + "#").press(p["phone_pin"])
    path = f"/api/v1/ivr/calls/{call.call_id}"
    # proven but not transferred: the call is its person's, in Wuxing
    assert client.get(path, headers=token_for("wuxing")).json()["caller"] == call.caller
    assert client.get(path, headers=token_for("admin")).status_code == 200  # the whole city
    other = client.get(path, headers=token_for("nanxun"))
    assert other.status_code == 404 and other.json()["code"] == "call.not_found"
    assert call.caller not in other.text and p["account_no"] not in other.text
    # an unknown call looks the same
    unknown = client.get("/api/v1/ivr/calls/CA" + "0" * 32, headers=token_for("nanxun"))
    assert (unknown.status_code, unknown.json()) == (other.status_code, other.json())


def test_a_call_where_nobody_was_proven_is_shown_only_once_transferred(client, demo, token_for):
    call = PLATFORMS["twiml"](client).dial().press("1")
    path = f"/api/v1/ivr/calls/{call.call_id}"
    assert client.get(path, headers=token_for("wuxing")).status_code == 404
    call.press("0")  # transferred to the agents, who must see who is waiting
    body = client.get(path, headers=token_for("nanxun")).json()
    assert body["state"] == "transferred" and body["person"] is None


# ---------------------------------------------------------------- log-in


def _login(client, username, password):
    r = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    return r.status_code, r.headers["content-type"], r.json()


def test_a_locked_an_unknown_and_a_wrong_login_get_the_same_answer(client, services, clock, demo):
    good = "yibao-demo-2026"
    unknown = _login(client, "nobody-here", good)
    wrong = _login(client, "nanxun", "wrong-password")
    assert unknown == wrong and unknown[0] == 401
    for _ in range(4):
        assert _login(client, "nanxun", "wrong-password") == unknown
    # now locked: the right password is refused exactly as an unknown user is
    locked = _login(client, "nanxun", good)
    assert locked == unknown
    assert _login(client, "nanxun", "wrong-password") == unknown
    # every refusal of a known user counts and is audited, the locked ones too
    with services.uow() as work:
        failed = work.session.execute(
            select(AuditEntry).where(
                AuditEntry.action == "staff.login_failed", AuditEntry.subject == "nanxun"
            )
        ).scalars()
        assert sum(1 for _ in failed) == 7
    # the lock ends (15 minutes after the last failure), and the right password works
    clock.advance(dt.timedelta(minutes=16))
    status, _, body = _login(client, "nanxun", good)
    assert status == 200 and body["staff"]["username"] == "nanxun"
