import datetime as dt
import random
import re

import pytest

from tests.db.employees import employ
from tests.helpers import SYSTEM, insure, new_certno
from yibao.domain.access import Role
from yibao.domain.actors import Channel
from yibao.services.access import staff as access_service
from yibao.services.registry import registry


def login(client, username, password="yibao-demo-2026"):
    r = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    return r


def test_healthz_and_openapi(client):
    assert client.get("/healthz").json()["status"] == "ok"
    doc = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/card-applications" in doc["paths"]
    assert "/api/v1/employer-batches" in doc["paths"]


def test_login_sets_a_secure_http_only_strict_cookie_and_changes_need_csrf(client, demo):
    r = login(client, "wuxing")
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
    csrf = r.json()["csrf_token"]
    assert client.get("/api/v1/auth/me").json()["username"] == "wuxing"
    body = {"certno": new_certno(), "name": "新人", "division_code": "330502001"}
    r = client.post("/api/v1/persons", json=body)
    assert r.status_code == 403 and r.json()["code"] == "auth.csrf"
    r = client.post("/api/v1/persons", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/v1/auth/me").status_code == 401


def test_wrong_password_then_lockout(client, demo):
    for _ in range(5):
        r = login(client, "nanxun", "wrong-password")
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
    # locked: the right password is refused, answered as any wrong log-in is
    r = login(client, "nanxun")
    assert r.status_code == 401 and r.json()["code"] == "auth.bad_credentials"


def test_api_token_for_machine_clients(client, demo):
    r = login(client, "wuxing")
    csrf = r.json()["csrf_token"]
    token = client.post(
        "/api/v1/auth/tokens", json={"label": "his-sync", "days": 7}, headers={"X-CSRF-Token": csrf}
    ).json()["token"]
    client.cookies.clear()
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/auth/me", headers=auth).json()["role"] == "county_clerk"
    assert (
        client.get("/api/v1/auth/me", headers={"Authorization": "Bearer nope"}).status_code == 401
    )


def test_bad_id_number_is_a_problem_naming_the_field(client, demo, token_for):
    certno = new_certno()
    wrong = certno[:-1] + ("1" if certno[-1] != "1" else "2")
    r = client.post(
        "/api/v1/persons",
        headers=token_for("wuxing"),
        json={"certno": wrong, "name": "错号", "division_code": "330502001"},
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["field"] == "certno" and body["errors"][0]["field"] == "certno"
    assert "check character" in body["detail"] and "校验位" in body["detail"]
    assert "Traceback" not in r.text


def test_request_validation_errors_are_problems_too(client, demo, token_for):
    r = client.post("/api/v1/persons", headers=token_for("wuxing"), json={"name": "无号"})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert {e["field"] for e in r.json()["errors"]} == {"certno", "division_code"}
    r = client.post(
        "/api/v1/persons",
        headers=token_for("wuxing"),
        content=b"{not json",
    )
    assert r.status_code == 422


def test_unknown_route_is_a_problem(client):
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


def test_card_application_paths_over_the_api(client, services, demo, token_for):
    wuxing, yuehe = token_for("wuxing"), token_for("yuehe")
    certno = new_certno()
    made = client.post(
        "/api/v1/persons",
        headers=wuxing,
        json={"certno": certno, "name": "接口", "division_code": "330502001"},
    )
    assert made.status_code == 201
    account_no = made.json()["account_no"]
    insure(services.uow(), certno)
    r = client.post(
        "/api/v1/card-applications",
        headers=yuehe,
        json={"path": "service_point", "certno": certno, "materials": ["id_card", "photo"]},
    )
    assert r.status_code == 201, r.text
    app = r.json()["application"]
    assert app["due_date"] == "2026-11-26" and app["state"] == "in_progress"
    card_no = r.json()["card"]["card_no"]
    due = client.get("/api/v1/card-applications?view=due", headers=yuehe).json()
    assert card_no in {a["card"]["card_no"] for a in due}
    assert client.post(f"/api/v1/cards/{card_no}/ready", headers=wuxing).json()["status"] == "ready"
    r = client.post(
        f"/api/v1/persons/{account_no}/cards/{card_no}/collect",
        headers=yuehe,
        json={"collector_certno": certno},
    )
    assert (
        r.status_code == 200
        and r.json()["card"]["status"] == "issued"
        and len(r.json()["initial_pin"]) == 6
    )
    history = client.get(f"/api/v1/cards/{card_no}", headers=yuehe).json()["history"]
    assert [h["event"] for h in history] == [
        "applied",
        "production_started",
        "produced",
        "collected",
    ]
    r = client.post(
        f"/api/v1/persons/{account_no}/cards/{card_no}/report-lost",
        headers=yuehe,
        json={"reason": "丢失"},
    )
    assert r.json()["status"] == "lost"
    r = client.post(
        f"/api/v1/persons/{account_no}/cards/{card_no}/reissue",
        headers=wuxing,
        json={"materials": ["id_card"], "reason": "丢失补卡"},
    )
    assert r.status_code == 201 and r.json()["card"]["status"] == "issued"


def test_employer_upload_over_the_api(client, services, demo, token_for):
    wuxing = token_for("wuxing")
    good = new_certno()
    client.post(
        "/api/v1/persons",
        headers=wuxing,
        json={"certno": good, "name": "员工", "division_code": "330502"},
    )
    employ(services.uow(), good, demo["employers"][0]["uscc"])  # on the roll (issue 15)
    csv = f"身份证号码,姓名\n{good},员工\n{good[:-1]}0,坏行\n".encode()
    if good.endswith("0"):
        csv = f"身份证号码,姓名\n{good},员工\n{good[:-1]}1,坏行\n".encode()
    r = client.post(
        "/api/v1/employer-batches",
        headers=wuxing,
        data={
            "employer_uscc": demo["employers"][0]["uscc"],
            "letter_ref": "介绍信001",
            "handler_certno": new_certno(),
            "handler_name": "王经办",
            "materials": ["letter_of_introduction", "handler_id_card"],
        },
        files={"file": ("staff.csv", csv, "text/csv")},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["accepted_rows"], body["rejected_rows"]) == (1, 1)
    bad = next(row for row in body["rows"] if row["status"] == "rejected")
    assert bad["row"] == 3 and bad["field"] == "certno"


def test_staff_of_one_county_never_see_a_person_of_another(client, services, demo, token_for):
    """A randomised probe: many persons in many counties, every clerk asks for
    every kind of look-up; outside their county the answer is always 404 or
    an empty list, never the data."""
    rng = random.Random(20261123)
    counties = ["330502", "330503", "330521"]
    clerks = {"330502": "wuxing", "330503": "nanxun", "330521": "deqing"}
    people = []
    work = services.uow()
    for i in range(30):
        county = rng.choice(counties)
        street = {"330502": "330502001", "330503": "330503001", "330521": "330521001"}[county]
        division = rng.choice([county, street])
        birth = dt.date(1950 + rng.randrange(60), 1 + rng.randrange(12), 1 + rng.randrange(28))
        person = registry.register_person(
            work,
            actor=SYSTEM,
            channel=Channel.CLI,
            certno=new_certno(county, birth),
            name=f"探测{i}",
            division_code=division,
        )
        people.append((county, person.account_no, person.certno, person.name))
    headers = {c: token_for(u) for c, u in clerks.items()}
    probes = 0
    for _ in range(150):
        county, account_no, certno, name = rng.choice(people)
        asker = rng.choice(counties)
        kind = rng.choice(["get", "certno", "name", "account"])
        if kind == "get":
            r = client.get(f"/api/v1/persons/{account_no}", headers=headers[asker])
            if asker == county:
                assert r.status_code == 200 and r.json()["certno"] == certno
            else:
                assert r.status_code == 404 and certno not in r.text and name not in r.text
        else:
            param = {
                "certno": ("certno", certno),
                "name": ("name", name),
                "account": ("account_no", account_no),
            }
            key, value = param[kind]
            r = client.get("/api/v1/persons", params={key: value}, headers=headers[asker])
            assert r.status_code == 200
            found = [p["certno"] for p in r.json()]
            assert found == ([certno] if asker == county else [])
        probes += 1
    assert probes == 150


def test_admins_see_their_whole_area_and_create_staff_only_inside_it(
    client, services, demo, token_for
):
    admin = token_for("admin")  # city admin of Huzhou
    for p in demo["persons"]:
        r = client.get(f"/api/v1/persons/{p['account_no']}", headers=admin)
        assert r.status_code == 200
        body = r.json()
        assert float(body["balance"]) > 0 and body["balance"].count(".") == 1
        assert body["insurance"]["insutype"] == "310"
        assert body["cards"][0]["status"] == "issued"
    ok = client.post(
        "/api/v1/staff",
        headers=admin,
        json={
            "username": "anji",
            "name": "安吉县中心",
            "password": "long-enough-pw",
            "role": "county_clerk",
            "division_code": "330523",
        },
    )
    assert ok.status_code == 201, ok.text
    out = client.post(
        "/api/v1/staff",
        headers=admin,
        json={
            "username": "gusu",
            "name": "姑苏",
            "password": "long-enough-pw",
            "role": "county_clerk",
            "division_code": "320508",
        },
    )
    assert out.status_code == 422 and out.json()["field"] == "division_code"
    wrong_level = client.post(
        "/api/v1/staff",
        headers=admin,
        json={
            "username": "x1",
            "name": "x",
            "password": "long-enough-pw",
            "role": "service_point_clerk",
            "division_code": "330523",
        },
    )
    assert wrong_level.status_code == 422
    clerk = token_for("wuxing")
    assert client.get("/api/v1/staff", headers=clerk).status_code == 403


def test_province_admin_reaches_the_demo_city_but_not_another_province(
    client, services, demo, token_for
):
    work = services.uow()
    person = registry.register_person(
        work,
        actor=SYSTEM,
        channel=Channel.CLI,
        certno=new_certno("320508"),
        name="苏州人",
        division_code="320508",
    )
    zj = token_for("zhejiang")
    assert (
        client.get(f"/api/v1/persons/{demo['persons'][0]['account_no']}", headers=zj).status_code
        == 200
    )
    assert client.get(f"/api/v1/persons/{person.account_no}", headers=zj).status_code == 404
    work = services.uow()
    access_service.create_staff(
        work,
        actor=SYSTEM,
        channel=Channel.CLI,
        username="nation",
        name="国家局",
        password="national-admin-pw",
        role=Role.NATIONAL_ADMIN.value,
        division_code="000000",
    )
    assert (
        client.get(f"/api/v1/persons/{person.account_no}", headers=token_for("nation")).status_code
        == 200
    )


def test_calendar_over_the_api(client, demo, token_for):
    admin = token_for("admin")
    r = client.get("/api/v1/calendar/add-working-days/2026-09-30/3", headers=admin)
    assert r.json()["date"] == "2026-10-10"
    r = client.put(
        "/api/v1/calendar/days/2027-10-01", headers=admin, json={"workday": False, "note": "国庆节"}
    )
    assert r.status_code == 200 and r.json()["source"] == "override"
    assert (
        client.put(
            "/api/v1/calendar/days/2027-10-01", headers=token_for("wuxing"), json={"workday": True}
        ).status_code
        == 403
    )


@pytest.mark.parametrize(
    "path", ["/api/v1/persons?certno=x", "/api/v1/card-applications", "/api/v1/employers"]
)
def test_everything_needs_a_login(client, path):
    r = client.get(path)
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")


def test_an_unexpected_failure_shows_no_internals(app, client, demo):
    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    r = client.get("/boom")
    assert r.status_code == 500
    assert "secret internal detail" not in r.text and "Traceback" not in r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_card_actions_over_the_api_are_about_the_persons_own_card(client, demo, token_for):
    wuxing = token_for("wuxing")
    zhang, other = demo["persons"][0], demo["persons"][1]
    base = f"/api/v1/persons/{zhang['account_no']}/cards"
    r = client.post(f"{base}/{other['card_no']}/pin", headers=wuxing, json={})
    assert r.status_code == 409 and r.json()["code"] == "card.not_holder"
    assert "initial_pin" not in r.json()
    r = client.post(f"{base}/{other['card_no']}/report-lost", headers=wuxing, json={})
    assert r.status_code == 409
    assert client.get(f"/api/v1/cards/{other['card_no']}", headers=wuxing).json()["status"] == (
        "issued"
    )
    # a person outside the caller's area is not found, whatever the card
    nanxun = token_for("nanxun")
    r = client.post(f"{base}/{zhang['card_no']}/report-lost", headers=nanxun, json={})
    assert r.status_code == 404


def test_the_staff_api_shows_a_lost_card_with_its_state_and_undoes_the_loss(
    client, demo, token_for
):
    wuxing = token_for("wuxing")
    zhang = demo["persons"][0]
    before = client.get(f"/api/v1/persons/{zhang['account_no']}", headers=wuxing).json()
    assert before["card"]["state"] == "issued" and before["suspended"] is False
    base = f"/api/v1/persons/{zhang['account_no']}/cards/{zhang['card_no']}"
    assert client.post(f"{base}/report-lost", headers=wuxing, json={}).json()["status"] == "lost"
    after = client.get(f"/api/v1/persons/{zhang['account_no']}", headers=wuxing).json()
    assert after["card"] == {
        "card_no": zhang["card_no"],
        "status": "lost",
        "state": "lost",
        "status_zh": "已挂失",
    }
    assert after["balance"] == before["balance"]  # staff still see the account
    r = client.post(f"{base}/found", headers=wuxing, json={"reason": "找到了"})
    assert r.status_code == 200 and r.json()["status"] == "issued"
    history = client.get(f"/api/v1/cards/{zhang['card_no']}", headers=wuxing).json()["history"]
    assert history[-1]["event"] == "found" and history[-1]["reason"] == "找到了"


def test_a_staff_request_records_the_credentials_last_use_at_most_every_five_minutes(
    client, services, clock, demo, token_for
):
    from sqlalchemy import select

    from yibao.services import security
    from yibao.store.models import StaffCredential

    headers = token_for("wuxing")
    digest = security.token_digest(headers["Authorization"][7:])

    def last_used():
        with services.uow() as work:
            return work.session.execute(
                select(StaffCredential.last_used_at).where(StaffCredential.token_hash == digest)
            ).scalar_one()

    assert last_used() is None
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    first = last_used()
    assert first == clock.now()
    clock.advance(dt.timedelta(minutes=4))
    client.get("/api/v1/auth/me", headers=headers)
    assert last_used() == first
    clock.advance(dt.timedelta(minutes=2))
    client.get("/api/v1/auth/me", headers=headers)
    assert last_used() == clock.now()


def test_docs_are_served_by_yibao_itself(client):
    """/docs loads Swagger UI from yibao's own static files: no CDN, works offline."""
    page = client.get("/docs")
    assert (
        page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    )
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/docs/assets/") for s in sources), sources
    assert "<script>" not in page.text  # no inline script
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200 and len(asset.content) > 0, source
    assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").text
    assert client.get("/redoc").status_code == 404  # FastAPI's ReDoc page loads from a CDN


def test_the_openapi_document_declares_the_refusals_with_their_problem_schema(client):
    doc = client.get("/api/v1/openapi.json").json()
    problem = {"$ref": "#/components/schemas/Problem"}
    assert set(doc["components"]["schemas"]["Problem"]["required"]) >= {"code", "detail", "status"}
    assert set(doc["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyCookie"}

    def refusals(path: str, method: str) -> dict[str, dict]:
        answers = doc["paths"][path][method]["responses"]
        return {
            code: answer["content"]["application/problem+json"]["schema"]
            for code, answer in answers.items()
            if not code.startswith("2")
        }

    person = refusals("/api/v1/persons/{account_no}", "get")
    assert person == dict.fromkeys(["401", "403", "404", "422", "503"], problem)
    lost = refusals("/api/v1/persons/{account_no}/cards/{card_no}/report-lost", "post")
    assert set(lost) == {"400", "401", "403", "404", "409", "422", "503"}
    assert set(refusals("/api/v1/auth/login", "post")) == {"400", "401", "422"}
    assert set(refusals("/api/v1/auth/me", "get")) == {"401", "503"}
