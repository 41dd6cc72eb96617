"""The employer's channel under /employer/ through a plain TestClient
(issue 15): log-in and its lock, the activation code from the counter, the
roll's hires and leavers, the contributions and arrears, each employee's
months, the batch upload; and the portal still showing an employee which
months the employer reported and paid."""

import re

from sqlalchemy import select

from tests.channels.test_web_forms import counter_login, csrf_of, portal_login
from tests.db.employees import add_employee
from tests.helpers import add_person, new_certno
from yibao.store.models import AuditEntry


def employer_login(client, uscc, password):
    token = csrf_of(client.get("/employer/login").text)
    return client.post("/employer/login", data={"uscc": uscc, "password": password, "csrf": token})


def signed_in(client, demo, index=0):
    e = demo["employers"][index]
    r = employer_login(client, e["uscc"], e["password"])
    assert r.status_code == 200 and str(r.url).endswith("/employer/"), r.text
    return csrf_of(r.text)


def test_an_employer_signs_in_under_the_pages_headers_and_cookie_flags(client, demo):
    r = client.get("/employer/")
    assert str(r.url).endswith("/employer/login")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    e = demo["employers"][1]
    r = employer_login(client, e["uscc"], e["password"])
    assert str(r.url).endswith("/employer/") and e["name"] in r.text
    session = next(
        c for c in r.history[0].headers.get_list("set-cookie") if "yb_employer_session" in c
    ).lower()
    assert "httponly" in session and "samesite=strict" in session and "secure" in session
    # the home page: its roll and its arrears (南浔木业 is three months behind)
    assert 'data-testid="roll-count">2 ' in r.text
    assert "2026-08、2026-09、2026-10" in r.text
    english = client.get("/employer/?lang=en").text
    assert "Employees insured" in english and "Months in arrears" in english
    assert not re.search(r"[\u4e00-\u9fff]", english.replace(e["name"], "").split("<main")[1])
    client.get("/employer/?lang=zh")
    r = client.post("/employer/logout", data={"csrf": csrf_of(r.text)})
    assert str(r.url).endswith("/employer/login")
    assert str(client.get("/employer/roll").url).endswith("/employer/login")


def test_wrong_passwords_lock_the_employer_and_a_form_needs_its_token(client, demo):
    e = demo["employers"][0]
    for _ in range(4):
        r = employer_login(client, e["uscc"], "Wrong@2026")
        assert r.status_code == 401 and "统一社会信用代码或密码错误" in r.text
        assert e["uscc"] in r.text  # the code is shown again, the password never
    r = employer_login(client, e["uscc"], "Wrong@2026")
    assert r.status_code == 429 and "15分钟" in r.text
    assert employer_login(client, e["uscc"], e["password"]).status_code == 429
    r = client.post("/employer/login", data={"uscc": e["uscc"], "password": e["password"]})
    assert r.status_code == 403 and "页面已过期" in r.text
    r = client.get("/employer/nothing-here")
    assert r.status_code == 404 and "没有这个页面" in r.text
    assert "default-src 'none'" in r.headers["content-security-policy"]


def test_the_county_center_issues_the_code_that_sets_the_password(client, demo):
    e = demo["employers"][0]
    token = counter_login(client, "wuxing")
    assert "单位激活码" in client.get("/counter/employer-code").text
    r = client.post("/counter/employer-code", data={"employer_uscc": "123", "csrf": token})
    assert r.status_code == 422 and "统一社会信用代码" in r.text
    r = client.post("/counter/employer-code", data={"employer_uscc": e["uscc"], "csrf": token})
    code = re.search(r'data-testid="employer-code">([A-Z0-9]{10})<', r.text)
    assert r.status_code == 200 and code, r.text
    other = demo["employers"][1]["uscc"]  # Nanxun's: not Wuxing's to issue
    r = client.post("/counter/employer-code", data={"employer_uscc": other, "csrf": token})
    assert r.status_code == 404
    client.cookies.clear()
    form = csrf_of(client.get("/employer/activate").text)
    data = {"uscc": e["uscc"], "code": code.group(1), "password": "Fresh@2026", "csrf": form}
    r = client.post("/employer/activate", data={**data, "password2": "Other@2026"})
    assert r.status_code == 422 and "两次输入的密码不一致" in r.text
    r = client.post("/employer/activate", data={**data, "password2": "Fresh@2026"})
    assert r.status_code == 200 and "密码已设置" in r.text
    assert employer_login(client, e["uscc"], e["password"]).status_code == 401
    assert str(employer_login(client, e["uscc"], "Fresh@2026").url).endswith("/employer/")


def test_hires_and_leavers_on_the_roll_page_audited_as_the_employer(client, demo, services):
    person = add_person(services.uow(), name="页面新人", paid=False)
    token = signed_in(client, demo)
    hire = {"certno": person.certno, "name": "页面新人", "csrf": token}
    r = client.post("/employer/roll/hire", data={**hire, "start": "2026-10-01"})
    assert r.status_code == 422 and "入职日期不能早于本月1日" in r.text
    assert person.certno in r.text  # the form comes back filled in
    r = client.post("/employer/roll/hire", data={**hire, "start": "2026-11-01", "base": "8000"})
    assert r.status_code == 200 and "已增员" in r.text
    roll = r.text[r.text.index('data-testid="roll"') :]
    assert f'href="/employer/roll/{person.account_no}">页面新人<' in roll and "8,000.00" in roll
    r = client.post(
        "/employer/roll/leave",
        data={"account_no": person.account_no, "end": "2026-11-30", "csrf": token},
    )
    assert r.status_code == 422 and "离职日期不能晚于今天" in r.text
    r = client.post(
        "/employer/roll/leave",
        data={"account_no": person.account_no, "end": "2026-11-20", "csrf": token},
    )
    assert r.status_code == 200 and "已减员" in r.text
    former = r.text[r.text.index('data-testid="former"') :]
    assert "页面新人" in former and "2026-11-20" in former
    uscc = demo["employers"][0]["uscc"]
    with services.uow() as uow:
        actions = {
            (a.action, a.actor_kind, a.actor_id, a.channel)
            for a in uow.session.execute(
                select(AuditEntry).where(AuditEntry.person_id == person.id)
            ).scalars()
        }
    for action in ("roll.hire", "roll.leave", "roll.read"):
        assert (action, "employer", uscc, "employer") in actions


def test_contributions_arrears_and_each_employees_months(client, demo):
    signed_in(client, demo, 1)
    r = client.get("/employer/contributions")
    months = r.text[r.text.index('data-testid="months"') :]
    assert r.status_code == 200 and "2026-10" in months and "2024-01" in months
    assert "欠缴3个月" in r.text and months.count("欠缴") == 3
    li_na = demo["persons"][2]
    r = client.get(f"/employer/roll/{li_na['account_no']}")
    rows = r.text[r.text.index('data-testid="employee-months"') :]
    assert r.status_code == 200 and rows.count("已缴") == 31 and rows.count("欠缴") == 3
    r = client.get(f"/employer/roll/{demo['persons'][0]['account_no']}")  # not theirs
    assert r.status_code == 404 and "本单位参保人员" in r.text
    english = client.get("/employer/contributions?lang=en").text
    assert "In arrears for 3 months" in english and "Paid" in english


def test_the_batch_upload_page_refuses_a_stranger_by_row(client, demo, services):
    uscc = demo["employers"][0]["uscc"]
    mine = add_employee(services.uow(), uscc, name="页面员工")
    stranger = add_person(services.uow(), name="页面路人")
    token = signed_in(client, demo)
    csv = f"身份证号码,姓名\n{stranger.certno},页面路人\n{mine.certno},页面员工\n"
    r = client.post(
        "/employer/batch",
        data={"handler_certno": new_certno(), "handler_name": "经办人", "csrf": token},
        files={"file": ("list.csv", csv.encode(), "text/csv")},
    )
    assert r.status_code == 200, r.text
    rows = r.text[r.text.index('data-testid="batch-rows"') :].split("</table>")[0]
    assert "受理 1" in r.text and "退回 1" in r.text
    assert "该人员不在本单位参保人员名单中" in rows and "页面员工" in rows
    english = client.get("/employer/batch?lang=en").text
    assert "the person is not on this employer&#39;s roll" in english
    assert "该人员不在本单位参保人员名单中" not in english
    r = client.post(
        "/employer/batch",
        data={"handler_certno": "123", "handler_name": "经办人", "csrf": token},
        files={"file": ("list.csv", csv.encode(), "text/csv")},
    )
    alert = re.search(r'role="alert">([^<]*)<', r.text)
    # in English, as chosen above; the form comes back with what was typed
    assert r.status_code == 422 and alert and "resident ID number" in alert.group(1)
    assert 'id="handler_name" name="handler_name" value="经办人"' in r.text


def test_an_employee_still_sees_which_months_the_employer_reported_and_paid(client, demo):
    """Issue 15, item 5: the portal's payment records name the employer and
    say of each month whether it was paid, the months in arrears included."""
    li_na = demo["persons"][2]
    r = portal_login(client, li_na["account_no"], li_na["password"])
    assert str(r.url).endswith("/portal/")
    rows = client.get("/portal/payments").text
    table = rows[rows.index("<tbody>") : rows.index("</tbody>")]
    status = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S):
        month = re.search(r"\d{4}-\d{2}", row)
        assert month and ("已缴" in row) != ("欠缴" in row), row
        status[month.group(0)] = "已缴" if "已缴" in row else "欠缴"
    assert status["2026-10"] == status["2026-09"] == status["2026-08"] == "欠缴"
    assert status["2026-07"] == status["2024-01"] == "已缴"
    assert table.count(demo["employers"][1]["name"]) == len(status) == 34
