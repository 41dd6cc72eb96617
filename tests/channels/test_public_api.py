"""The public look-ups' JSON (issue 16): no log-in, pages and filters, a
refusal naming the field, the rate limit per client address, and the
staff's writes behind their permissions."""

import time

import pytest
from fastapi.testclient import TestClient

from yibao.app import create_app
from yibao.config import Settings

API = "/api/v1"


def test_institutions_without_login_by_filter_and_page(client, demo):
    r = client.get(f"{API}/public/institutions")
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 4 and body["page"] == 1 and body["pages"] == 1
    first = body["items"][0]
    assert set(first) >= {"code", "name", "kind", "level", "address", "telephone", "offsite"}
    r = client.get(f"{API}/public/institutions", params={"area": "330503"})
    assert [i["code"] for i in r.json()["items"]] == ["H33050300001"]
    r = client.get(f"{API}/public/institutions", params={"offsite": "true", "kind": "hospital"})
    assert {i["code"] for i in r.json()["items"]} == {"H33050200001", "H33050200002"}
    r = client.get(f"{API}/public/institutions", params={"size": 3, "page": 2})
    assert r.json()["total"] == 4 and len(r.json()["items"]) == 1 and r.json()["pages"] == 2


def test_catalogue_without_login_by_code_name_and_category(client, demo):
    r = client.get(f"{API}/public/catalogue", params={"q": "奥美拉唑"})
    [found] = r.json()["items"]
    assert found["category"] == "B" and found["selfpay_pct"] == "10.00"
    assert found["price"] == "28.60"
    r = client.get(f"{API}/public/catalogue", params={"category": "C", "size": 100})
    assert r.json()["total"] >= 4 and {i["category"] for i in r.json()["items"]} == {"C"}
    r = client.get(f"{API}/public/catalogue", params={"size": 100})
    assert r.json()["total"] == len(demo["catalogue"])


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("institutions", {"size": 101}, "size"),
        ("institutions", {"size": 0}, "size"),
        ("institutions", {"page": "x"}, "page"),
        ("institutions", {"area": "33x"}, "area"),
        ("institutions", {"kind": "clinic"}, "kind"),
        ("institutions", {"offsite": "maybe"}, "offsite"),
        ("catalogue", {"category": "Z"}, "category"),
        ("catalogue", {"q": "x" * 51}, "q"),
    ],
)
def test_a_bad_parameter_is_422_naming_the_field(client, demo, path, params, field):
    r = client.get(f"{API}/public/{path}", params=params)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == field


@pytest.fixture
def limited_client(db_url, tmp_path, clock, demo):
    settings = Settings(
        database_url=db_url,
        var_dir=tmp_path / "var",
        secret_key="test-secret-key",
        argon2_profile="fast",
        public_rate_limit="3/second",
    )
    app = create_app(settings, clock)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as c:
        yield c
    app.state.services.engine.dispose()


def test_the_rate_limit_answers_429_with_retry_after_then_recovers(limited_client):
    url = f"{API}/public/catalogue"
    assert [limited_client.get(url).status_code for _ in range(3)] == [200, 200, 200]
    refused = limited_client.get(f"{API}/public/institutions")  # one count for both
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "rate.limited" and refused.json()["status"] == 429
    wait = int(refused.headers["retry-after"])
    assert wait == 1
    time.sleep(1.05)  # the window is one second: wait it out, no longer
    assert limited_client.get(url).status_code == 200


def test_429_is_declared_for_the_public_operations(client):
    doc = client.get(f"{API}/openapi.json").json()
    for path in ("/api/v1/public/institutions", "/api/v1/public/catalogue"):
        op = doc["paths"][path]["get"]
        assert {"200", "422", "429"} <= set(op["responses"])
        assert "security" not in op


def test_staff_writes_need_a_login_and_the_permission(client, demo, token_for):
    body = {"address": "湖州市吴兴区新地址1号", "offsite": False}
    url = f"{API}/institutions/H33050200001/public"
    assert client.put(url, json=body).status_code == 401
    assert client.put(url, json=body, headers=token_for("wuxing")).status_code == 403
    r = client.put(url, json=body, headers=token_for("admin"))
    assert r.status_code == 200 and r.json()["address"] == "湖州市吴兴区新地址1号"
    assert r.json()["offsite"] is False
    public = client.get(f"{API}/public/institutions", params={"name": "中心医院"}).json()
    assert public["items"][0]["offsite"] is False

    item = {"name": "接口新增", "category": "B", "selfpay_bp": 1000, "price": "9.90"}
    url = f"{API}/catalogue/330500/APINEW001"
    assert client.put(url, json=item).status_code == 401
    assert client.put(url, json=item, headers=token_for("wuxing")).status_code == 403
    r = client.put(url, json=item, headers=token_for("admin"))
    assert r.status_code == 200 and r.json()["price"] == "9.90"
    bad = client.put(url, json={**item, "selfpay_bp": 0}, headers=token_for("admin"))
    assert bad.status_code == 422 and bad.json()["field"] == "selfpay_bp"
    assert (
        client.put(
            f"{API}/catalogue/110100/APINEW001", json=item, headers=token_for("admin")
        ).status_code
        == 404
    )

    changes = client.get(f"{API}/directory/changes", headers=token_for("admin")).json()
    assert changes[0]["subject"] == "330500/APINEW001" and changes[0]["by"] == "admin"
    assert client.get(f"{API}/directory/changes").status_code == 401
    assert client.get(f"{API}/directory/changes", headers=token_for("wuxing")).status_code == 403


def test_catalogue_import_over_the_api(client, demo, token_for):
    content = "code,name,category,selfpay_pct,price\nAPI1,一,A,,1\nAPI2,二,B,,1\n".encode()
    url = f"{API}/catalogue/330500/import"
    files = {"file": ("c.csv", content, "text/csv")}
    assert client.post(url, files=files).status_code == 401
    assert client.post(url, files=files, headers=token_for("wuxing")).status_code == 403
    r = client.post(url, files=files, headers=token_for("admin"))
    assert r.status_code == 200
    assert r.json()["accepted"] == 1 and r.json()["rejected"] == 1
    bad = [row for row in r.json()["rows"] if row["status"] == "rejected"]
    assert bad == [
        {
            "row": 3,
            "status": "rejected",
            "code": "API2",
            "field": "selfpay_pct",
            "reason": bad[0]["reason"],
            "zh": bad[0]["zh"],
            "en": bad[0]["en"],
        }
    ]


def test_a_catalogue_file_over_the_upload_limit_is_refused_naming_the_file(
    client, demo, token_for, monkeypatch
):
    settings = client.app.state.services.settings
    monkeypatch.setattr(settings, "upload_max_bytes", 64)
    content = ("code,name,category,selfpay_pct,price\n" + "BIG1,一,A,,1\n" * 10).encode()
    r = client.post(
        f"{API}/catalogue/330500/import",
        files={"file": ("c.csv", content, "text/csv")},
        headers=token_for("admin"),
    )
    assert r.status_code == 422, r.text
    assert (r.json()["field"], r.json()["code"]) == ("file", "validation.too_large")
    small = "code,name,category,selfpay_pct,price\nOK1,一,A,,1\n".encode()
    assert len(small) <= 64
    r = client.post(
        f"{API}/catalogue/330500/import",
        files={"file": ("c.csv", small, "text/csv")},
        headers=token_for("admin"),
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1
