"""Care in another area (异地就医备案, issue 16) on the portal and at the
counter: both file, list and cancel through the same use cases, so a
refusal says the same thing (naming the field) and a filing made at one is
seen and cancelled at the other."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.channels.test_counter_15 import visit
from tests.channels.test_web_forms import counter_login, csrf_of, portal_login
from yibao.store.models import AuditEntry, CrossAreaFiling

FILING = {"kind": "living", "visit_area": "320500", "start": "2026-11-23", "end": ""}


def _portal(client, person):
    r = portal_login(client, person["account_no"], person["password"])
    assert r.status_code == 200
    return client.get("/portal/offsite")


def _states(html: str) -> dict[str, str]:
    rows = re.findall(
        r'data-filing="(\d+)">.*?data-testid="offsite-state">([^<]+)<', html, flags=re.S
    )
    return dict(rows)


def test_the_portal_files_lists_and_cancels(client, demo, services):
    person = demo["persons"][0]
    home = portal_login(client, person["account_no"], person["password"])
    assert 'href="/portal/offsite"' in home.text
    page = client.get("/portal/offsite")
    assert page.status_code == 200 and "暂无备案" in page.text
    r = client.post("/portal/offsite", data={**FILING, "csrf": csrf_of(page.text)})
    assert r.status_code == 200 and 'data-testid="done"' in r.text
    with services.uow() as u:
        row = u.session.execute(select(CrossAreaFiling)).scalar_one()
        assert (row.kind, row.visit_area, row.channel) == ("living", "320500", "portal")
    assert _states(r.text) == {str(row.id): "有效"}
    r = client.post(f"/portal/offsite/{row.id}/cancel", data={"csrf": csrf_of(r.text)})
    assert r.status_code == 200 and _states(r.text) == {str(row.id): "已撤销"}
    assert 'data-testid="offsite-cancel"' not in r.text
    english = client.get("/portal/offsite?lang=en")
    assert "Care in another area" in english.text and "Cancelled" in english.text
    with services.uow() as u:
        actions = set(
            u.session.execute(
                select(AuditEntry.action).where(AuditEntry.person_id == row.person_id)
            ).scalars()
        )
    assert {"offsite.file", "offsite.cancel", "offsite.list"} <= actions


def test_a_portal_refusal_names_the_field_beside_the_list(client, demo):
    person = demo["persons"][0]
    page = _portal(client, person)
    token = csrf_of(page.text)
    r = client.post("/portal/offsite", data={**FILING, "visit_area": "330503", "csrf": token})
    assert r.status_code == 422 and "就医地应在本市以外" in r.text
    assert 'value="330503"' in r.text and 'data-testid="offsite-list"' in r.text
    r = client.post(
        "/portal/offsite",
        data={**FILING, "kind": "referral", "csrf": token},
    )
    assert r.status_code == 422 and "转诊转院备案须填写结束日期" in r.text
    r = client.post("/portal/offsite", data={**FILING, "start": "2026-13-01", "csrf": token})
    assert r.status_code == 422 and "开始日期" in r.text
    english = client.post(
        "/portal/offsite?lang=en", data={**FILING, "visit_area": "999999", "csrf": token}
    )
    assert english.status_code == 422 and "not a division code in use" in english.text


def test_a_person_cannot_cancel_anothers_filing(client, demo, services):
    owner, other = demo["persons"][0], demo["persons"][1]
    page = _portal(client, owner)
    client.post("/portal/offsite", data={**FILING, "csrf": csrf_of(page.text)})
    with services.uow() as u:
        filing_id = u.session.execute(select(CrossAreaFiling.id)).scalar_one()
    client.post("/portal/logout", data={"csrf": csrf_of(page.text)})
    page = _portal(client, other)
    r = client.post(f"/portal/offsite/{filing_id}/cancel", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 404
    with services.uow() as u:
        assert u.session.get(CrossAreaFiling, filing_id).state == "active"


def test_the_counter_files_and_cancels_for_the_visits_person(client, demo, services):
    person = demo["persons"][0]
    token = counter_login(client)
    shown = visit(client, token, person)
    base = f"/counter/person/{person['account_no']}/offsite"
    assert f'href="{base}"' in shown.text
    page = client.get(base)
    assert page.status_code == 200 and "暂无备案" in page.text
    token = csrf_of(page.text)
    refused = client.post(
        f"{base}/file",
        data={**FILING, "kind": "referral", "visit_area": "310101", "csrf": token},
    )
    assert refused.status_code == 422 and "转诊转院备案须填写结束日期" in refused.text
    assert 'value="310101"' in refused.text
    r = client.post(
        f"{base}/file",
        data={
            **FILING,
            "kind": "referral",
            "visit_area": "310101",
            "end": "2026-12-31",
            "csrf": token,
        },
    )
    assert r.status_code == 200 and 'data-testid="done"' in r.text
    with services.uow() as u:
        row = u.session.execute(select(CrossAreaFiling)).scalar_one()
        assert (row.channel, row.filed_by) == ("counter", "staff:wuxing")
    assert _states(r.text) == {str(row.id): "有效"}
    r = client.post(f"{base}/{row.id}/cancel", data={"csrf": csrf_of(r.text)})
    assert r.status_code == 200 and _states(r.text) == {str(row.id): "已撤销"}
    again = client.post(f"{base}/{row.id}/cancel", data={"csrf": csrf_of(r.text)})
    assert again.status_code == 409 and "该备案已撤销，不能撤销" in again.text


def test_the_counter_needs_the_visit_and_the_portal_sees_the_counters_filing(client, demo):
    person = demo["persons"][0]
    token = counter_login(client)
    base = f"/counter/person/{person['account_no']}/offsite"
    no_visit = client.get(base)
    assert no_visit.status_code == 403 and "请先核验并登记证件" in no_visit.text
    refused = client.post(f"{base}/file", data={**FILING, "csrf": token})
    assert refused.status_code == 403 and "请先核验并登记证件" in refused.text
    visit(client, token, person)
    filed = client.post(f"{base}/file", data={**FILING, "csrf": token})
    assert filed.status_code == 200
    client.post("/counter/logout", data={"csrf": csrf_of(filed.text)})
    page = _portal(client, person)
    assert list(_states(page.text).values()) == ["有效"]
