"""The public look-up pages (issue 16): no log-in, filters and pages, both
languages, the pages' security headers, a bad value shown on the page."""

import pytest

from tests.channels.test_web_forms import counter_login, csrf_of, portal_login
from yibao.services.directory import directory


def test_the_landing_page_and_the_portal_link_to_the_look_ups(client, demo):
    landing = client.get("/").text
    assert 'href="/public/institutions"' in landing and 'href="/public/catalogue"' in landing
    # the portal's menu, once logged in, links them too
    person = demo["persons"][0]
    home = portal_login(client, person["certno"], person["password"])
    assert home.status_code == 200
    assert 'href="/public/institutions"' in home.text


def test_institutions_without_login_filtered(client, demo):
    r = client.get("/public/institutions")
    assert r.status_code == 200
    assert "湖州市中心医院" in r.text and "湖州市吴兴区红旗路198号" in r.text
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert r.headers["cache-control"] == "no-store"
    r = client.get("/public/institutions", params={"area": "330503"})
    assert "南浔区人民医院" in r.text and "湖州市中心医院" not in r.text
    r = client.get("/public/institutions", params={"offsite": "yes", "kind": "hospital"})
    assert "湖州市中心医院" in r.text and "南浔区人民医院" not in r.text
    r = client.get("/public/institutions", params={"kind": "pharmacy"})
    assert "湖州老百姓大药房月河店" in r.text and "湖州市中心医院" not in r.text


def test_catalogue_pages_and_search(client, demo):
    first = client.get("/public/catalogue")
    assert first.status_code == 200
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = client.get("/public/catalogue", params={"page": 2})
    assert 'rel="prev"' in second.text
    found = client.get("/public/catalogue", params={"q": "奥美拉唑"})
    assert "奥美拉唑肠溶胶囊" in found.text and "10.00%" in found.text and "28.60" in found.text
    none = client.get("/public/catalogue", params={"q": "没有这种药"})
    assert "没有符合条件的目录项目" in none.text


def test_the_pages_in_english(client, demo):
    r = client.get("/public/catalogue", params={"lang": "en", "category": "B"})
    assert r.status_code == 200
    assert "Medical catalogue" in r.text and "Category B" in r.text
    assert "乙类" not in r.text
    r = client.get("/public/institutions", params={"lang": "en"})
    assert "Designated institutions" in r.text and "Off-site settlement" in r.text


@pytest.mark.parametrize(
    ("path", "params", "field_text"),
    [
        ("/public/institutions", {"area": "33x"}, "地区"),
        ("/public/institutions", {"kind": "clinic"}, "机构类型"),
        ("/public/institutions", {"offsite": "maybe"}, "异地就医结算"),
        ("/public/institutions", {"page": "0"}, "页码"),
        ("/public/catalogue", {"category": "Z"}, "类别"),
        ("/public/catalogue", {"q": "x" * 51}, "名称"),
    ],
)
def test_a_bad_value_is_shown_on_the_page_naming_the_field(client, demo, path, params, field_text):
    r = client.get(path, params=params)
    assert r.status_code == 422
    assert 'role="alert"' in r.text and field_text in r.text
    assert "Traceback" not in r.text


def test_another_path_is_a_page_not_found(client, demo):
    r = client.get("/public/nothing-here")
    assert r.status_code == 404 and "没有这个页面" in r.text


# ---------------------------------------------------------------- the counter's maintenance


def test_the_city_administrator_keeps_the_directory_at_the_counter(client, demo, uow):
    token = counter_login(client, "admin")
    page = client.get("/counter/directory/")
    assert page.status_code == 200 and "湖州市中心医院" in page.text
    assert 'href="/counter/directory/"' in page.text  # in the counter's menu
    r = client.post(
        "/counter/directory/institution",
        data={
            "csrf": token,
            "code": "H33050300001",
            "name": "南浔区人民医院",
            "address": "湖州市南浔区柜台改址1号",
            "telephone": "0572-3029000",
            "offsite": "on",
        },
    )
    assert r.status_code == 200 and "已保存机构" in r.text
    assert "湖州市南浔区柜台改址1号" in r.text  # in the change history
    found = directory.find_institutions(uow, area="330503").items[0]
    assert found.offsite and found.address == "湖州市南浔区柜台改址1号"

    item = {
        "csrf": token,
        "area": "330500",
        "code": "CTR001",
        "name": "柜台新增",
        "category": "B",
        "selfpay_pct": "",
        "price": "5.5",
    }
    refused = client.post("/counter/directory/catalogue", data=item)
    assert refused.status_code == 422 and "乙类项目须有先行自付比例" in refused.text
    assert 'value="柜台新增"' in refused.text  # the form kept
    saved = client.post("/counter/directory/catalogue", data={**item, "selfpay_pct": "15"})
    assert saved.status_code == 200 and "330500/CTR001" in saved.text
    assert directory.find_catalogue(uow, q="CTR001").items[0].selfpay_bp == 1500

    content = "项目编码,项目名称,类别,先行自付比例,参考价格\nCTR002,好,A,,1\nCTR003,坏,X,,1\n"
    imported = client.post(
        "/counter/directory/import",
        data={"csrf": token, "area": "330500"},
        files={"file": ("c.csv", content.encode(), "text/csv")},
    )
    assert imported.status_code == 200
    assert 'data-testid="import-rows"' in imported.text and "目录类别应为" in imported.text
    assert directory.find_catalogue(uow, q="CTR00").total == 2  # CTR001 and CTR002


def test_a_county_clerk_may_not_keep_the_directory(client, demo, uow):
    token = counter_login(client, "wuxing")
    page = client.get("/counter/directory/")
    assert 'href="/counter/directory/"' not in csrf_of(page.text) + page.text.split("<main")[0]
    r = client.post(
        "/counter/directory/institution",
        data={"csrf": token, "code": "H33050200001", "name": "x", "address": "x"},
    )
    assert r.status_code == 403
    assert directory.find_institutions(uow, name="湖州市中心医院").items[0].address != "x"
