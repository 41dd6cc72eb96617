"""The counter console: a visit is about one person; their file comes from
the account summary, whatever their card's state."""

import re

from sqlalchemy import select

from tests.channels.test_web_forms import counter_login, csrf_of
from yibao.services import security
from yibao.store.models import AuditEntry, Card


def visit(client, token, person):
    r = client.post(
        "/counter/visit",
        data={"account_no": person["account_no"], "document": "id_card", "csrf": token},
    )
    assert r.status_code == 200 and person["certno"] in r.text, r.text[:300]
    return r


def test_a_clerk_visiting_one_person_cannot_reset_anothers_pin(client, demo, uow):
    token = counter_login(client, "wuxing")
    zhang, other = demo["persons"][0], demo["persons"][1]
    visit(client, token, zhang)
    r = client.post(
        f"/counter/person/{zhang['account_no']}/pin",
        data={"card_no": other["card_no"], "csrf": token},
    )
    assert r.status_code == 409
    assert "该卡不属于本次办理业务的参保人" in r.text
    assert "初始密码" not in r.text  # no PIN is shown on 张伟's page
    with uow:
        card = uow.session.execute(
            select(Card).where(Card.card_no == other["card_no"])
        ).scalar_one()
        assert security.verify_secret(card.pin_hash, other["pin"])
    # the same for a loss report and a cancellation
    for action in ("lost", "cancel"):
        r = client.post(
            f"/counter/person/{zhang['account_no']}/{action}",
            data={"card_no": other["card_no"], "reason": "x", "csrf": token},
        )
        assert r.status_code == 409, action
    # and for the visit's own person it works, the new PIN shown once
    r = client.post(
        f"/counter/person/{zhang['account_no']}/pin",
        data={"card_no": zhang["card_no"], "csrf": token},
    )
    assert r.status_code == 200 and re.search(r"初始密码.*<strong>\d{6}</strong>", r.text)


def test_an_action_for_a_person_without_their_visit_is_refused(client, demo):
    token = counter_login(client, "wuxing")
    zhang, other = demo["persons"][0], demo["persons"][1]
    visit(client, token, zhang)
    r = client.post(
        f"/counter/person/{other['account_no']}/pin",
        data={"card_no": other["card_no"], "csrf": token},
    )
    assert r.status_code == 403 and "请先核验并登记证件" in r.text


def test_staff_see_the_person_with_a_lost_card_and_can_undo_the_loss(client, demo, uow):
    token = counter_login(client, "wuxing")
    zhang = demo["persons"][0]
    page = visit(client, token, zhang)
    balance = re.search(r'data-testid="balance">([^<]+)<', page.text).group(1)
    base = f"/counter/person/{zhang['account_no']}"
    r = client.post(f"{base}/lost", data={"card_no": zhang["card_no"], "csrf": token})
    assert 'data-testid="card-status">已挂失' in r.text
    # the file still opens, with the balance and the card's state
    r = client.get(base)
    assert r.status_code == 200
    assert 'data-testid="card-status">已挂失' in r.text
    assert f'data-testid="balance">{balance}<' in r.text
    r = client.post(f"{base}/found", data={"card_no": zhang["card_no"], "csrf": csrf_of(r.text)})
    assert r.status_code == 200 and 'data-testid="card-status">正常' in r.text
    with uow:
        actions = list(
            uow.session.execute(
                select(AuditEntry.action).where(AuditEntry.subject == zhang["card_no"])
            ).scalars()
        )
        assert "card.reported_lost" in actions and "card.found" in actions
        # the page's balance is the account summary's read, audited as such
        assert "balance.read" in actions


def test_an_unknown_action_is_not_found(client, demo):
    token = counter_login(client, "wuxing")
    zhang = demo["persons"][0]
    visit(client, token, zhang)
    r = client.post(f"/counter/person/{zhang['account_no']}/explode", data={"csrf": token})
    assert r.status_code == 404
