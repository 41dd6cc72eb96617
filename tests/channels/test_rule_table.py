"""Every channel gives the same answer because it calls the same decision.

One table: the card's state (active, lost, frozen, cancelled, replaced by a
reissue, in production) x the person's state (active, suspended for
arrears, deceased, emigrated, insured in another area without an
arrangement, presenting another person's card) x the channels (the HIS's
1101 and 2207, the self-service terminal, the telephone, the portal, the
counter, the staff API). For each cell the expected answer is
``domain.use.decide`` on the cell's facts, with the purpose and presenter of
the channel; each channel is driven through its public interface only and
must give that answer: the same refusal, naming the card's or the person's
state, or the balance. Adding a channel means adding one adapter below.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.channels.ivr_phone import TwimlCall, ivr_settings
from tests.helpers import CliRunner
from tests.his.client import His
from yibao.cli import app as cli_app
from yibao.domain.use import CardState, Decision, Named, PersonState, Presenter, Purpose, decide
from yibao.store.models import Card, Enrolment, Person

CARD_STATES = ["active", "lost", "frozen", "cancelled", "replaced", "in_production"]
PERSON_STATES = ["active", "suspended", "deceased", "emigrated", "other_area", "anothers_card"]

# words a refusal must say, in Chinese, for each refusal code
NAMES = {
    "card.lost": "挂失",
    "card.frozen": "冻结",
    "card.cancelled": "注销",
    "card.replaced": "补换",
    "card.not_issued": "尚未发放",
    "card.not_holder": "本人",
    "person.deceased": "死亡",
    "person.emigrated": "出国",
    "offsite.not_covered": "备案",
    "enrolment.suspended": "暂停",
}
CARD_STATUS_ZH = {
    "lost": "已挂失",
    "frozen": "已冻结",
    "cancelled": "已注销",
    "in_production": "制卡中",
    "active": "正常",
}


@dataclass
class Outcome:
    allowed: bool
    says: str  # what the channel showed, wrote or spoke


@dataclass
class Cell:
    card: str
    person: str
    p: dict[str, Any]  # the demo person whose data is asked for
    q: dict[str, Any]  # the person whose card is presented in the last row
    mdtrt_id: str = ""
    psn_no: str = ""

    @property
    def presented(self) -> dict[str, Any]:
        return self.q if self.person == "anothers_card" else self.p


# ---------------------------------------------------------------- the facts


def person_state(cell: Cell) -> PersonState:
    status = {"deceased": "deceased", "emigrated": "emigrated"}.get(cell.person, "active")
    return PersonState(
        id=int(cell.psn_no),
        name=cell.p["name"],
        certno=cell.p["certno"],
        status=status,
        enrolment="suspended" if cell.person == "suspended" else "active",
        insured_area="330100" if cell.person == "other_area" else "330502",
        arrangement=cell.person != "other_area",
    )


def card_state(cell: Cell, holder: int) -> CardState:
    status = {"active": "issued", "replaced": "cancelled"}.get(cell.card, cell.card)
    return CardState(cell.presented["card_no"], status, holder, cell.card == "replaced")


@dataclass(frozen=True)
class Channel:
    purpose: Purpose
    presenter: Presenter
    with_card: bool  # the channel presents the card, or reaches the person without it
    names_the_person: bool = False  # the request says who the person is, beside the card

    def expected(self, cell: Cell, q_id: int) -> Decision | None:
        """The decision, or None where the channel cannot express the cell (a
        terminal's or telephone's PIN proves the holder: no one there presents
        another person's card while naming themselves)."""
        another = cell.person == "anothers_card"
        if another and not self.names_the_person:
            return None
        person = person_state(cell)
        holder = q_id if another else person.id
        return decide(
            purpose=self.purpose,
            presenter=self.presenter,
            person=person,
            card=card_state(cell, holder) if self.with_card else None,
            named=Named(person.id, person.certno, person.name) if self.names_the_person else None,
        )


CHANNELS = {
    "his_1101": Channel(Purpose.INQUIRY, Presenter.INSTITUTION, True, True),
    "his_2207": Channel(Purpose.SETTLEMENT, Presenter.INSTITUTION, True, True),
    "terminal": Channel(Purpose.INQUIRY, Presenter.HOLDER, True),
    "telephone": Channel(Purpose.INQUIRY, Presenter.HOLDER, True),
    "portal": Channel(Purpose.INQUIRY, Presenter.HOLDER, False),
    "counter": Channel(Purpose.INQUIRY, Presenter.STAFF, False),
    "staff_api": Channel(Purpose.INQUIRY, Presenter.STAFF, False),
}


# ---------------------------------------------------------------- the adapters


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:300]
    return m.group(1)


class Adapters:
    def __init__(self, client: Any, his: His, token_for: Callable[[str], dict[str, str]]) -> None:
        self.client = client
        self.his = his
        self.token_for = token_for

    def his_1101(self, cell: Cell) -> Outcome:
        r = self.his.call(
            "1101",
            {
                "data": {
                    "mdtrt_cert_type": "03",
                    "mdtrt_cert_no": cell.presented["card_no"],
                    "card_sn": "",
                    "psn_cert_type": "01",
                    "certno": cell.p["certno"],
                    "psn_name": cell.p["name"],
                }
            },
        )
        if r["infcode"] == 0:
            info = r["output"]["insuinfo"][0]
            assert r["output"]["baseinfo"]["certno"] == cell.p["certno"]
            return Outcome(True, f"balc {info['balc']}")
        return Outcome(False, r["err_msg"])

    def his_2207(self, cell: Cell) -> Outcome:
        inp = self.his.settle_input(cell.mdtrt_id, cell.psn_no, cell.presented["card_no"], "30.00")
        r = self.his.call("2207", inp)
        return Outcome(r["infcode"] == 0, r["err_msg"] or "settled")

    def terminal(self, cell: Cell) -> Outcome:
        c = self.client
        token = csrf_of(c.get("/kiosk/").text)
        r = c.post("/kiosk/card", data={"card_no": cell.presented["card_no"], "csrf": token})
        if 'name="pin"' not in r.text and "/kiosk/pin" not in r.text:
            return Outcome(False, text_of(r.text))  # refused at the card reader
        token = csrf_of(r.text)
        r = c.post("/kiosk/pin", data={"pin": cell.presented["pin"], "csrf": token})
        shown = 'data-testid="balance"' in r.text
        says = text_of(r.text)
        c.post("/kiosk/logout")
        return Outcome(shown, says)

    def telephone(self, cell: Cell) -> Outcome:
        call = TwimlCall(self.client).dial()
        call.press("1").press("1").press(cell.presented["card_no"] + "#")
        call.press(cell.presented["phone_pin"])
        return Outcome("您的个人账户余额" in call.text, call.text)

    def portal(self, cell: Cell) -> Outcome:
        c = self.client
        token = csrf_of(c.get("/portal/login").text)
        r = c.post(
            "/portal/login",
            data={"login_id": cell.p["certno"], "password": cell.p["password"], "csrf": token},
        )
        shown = 'data-testid="balance"' in r.text
        says = text_of(r.text)
        if shown:
            c.post("/portal/logout", data={"csrf": csrf_of(r.text)})
        return Outcome(shown, says)

    def counter(self, cell: Cell) -> Outcome:
        c = self.client
        token = csrf_of(c.get("/counter/login").text)
        r = c.post(
            "/counter/login",
            data={"username": "wuxing", "password": "yibao-demo-2026", "csrf": token},
        )
        token = csrf_of(r.text)
        r = c.post(
            "/counter/visit",
            data={"account_no": cell.p["account_no"], "document": "id_card", "csrf": token},
        )
        shown = r.status_code == 200 and cell.p["certno"] in r.text
        says = text_of(r.text)
        c.post("/counter/logout", data={"csrf": csrf_of(r.text)})
        return Outcome(shown, says)

    def staff_api(self, cell: Cell) -> Outcome:
        r = self.client.get(
            f"/api/v1/persons/{cell.p['account_no']}", headers=self.token_for("wuxing")
        )
        if r.status_code != 200:
            return Outcome(False, r.text)
        body = r.json()
        cards = " ".join(f"{c['card_no']}:{c['status']}" for c in body.get("cards", []))
        return Outcome("balance" in body, f"{body.get('balance')} {cards}")


# ---------------------------------------------------------------- the cell


def prepare(cell: Cell, his: His, services: Any, clock: Any) -> int:
    """The person's visit registered while all is well, then the cell's states
    set on the card and the person. Returns the other person's id."""
    info = his.ok(
        "1101",
        {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": cell.p["card_no"], "card_sn": ""}},
    )
    cell.psn_no = info["baseinfo"]["psn_no"]
    cell.mdtrt_id = his.register(cell.psn_no, cell.p["card_no"])
    his.fees(cell.mdtrt_id, cell.psn_no, [("001101000010000", "10.00"), ("250101001", "20.00")])
    now = clock.now()
    with services.session_factory() as s, s.begin():
        q_id = s.execute(select(Person.id).where(Person.certno == cell.q["certno"])).scalar_one()
        pid = int(cell.psn_no)
        if cell.person in ("deceased", "emigrated"):
            s.execute(update(Person).where(Person.id == pid).values(status=cell.person))
        if cell.person == "suspended":
            s.execute(
                update(Enrolment)
                .where(Enrolment.person_id == pid)
                .values(status="suspended", suspended_since=dt.date(2026, 10, 1))
            )
        if cell.person == "other_area":
            s.execute(update(Enrolment).where(Enrolment.person_id == pid).values(area="330100"))
        card = s.execute(select(Card).where(Card.card_no == cell.presented["card_no"])).scalar_one()
        if cell.card == "replaced":
            card.status = "cancelled"
            s.flush()
            s.add(
                Card(
                    card_no=f"{int(card.card_no) + 9000:010d}"[-10:],
                    person_id=card.person_id,
                    kind=card.kind,
                    status="issued",
                    location="holder",
                    pin_hash=card.pin_hash,
                    replaces_card_id=card.id,
                    issued_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
        elif cell.card != "active":
            card.status = cell.card
    return q_id


CELLS = [(c, p) for p in PERSON_STATES for c in CARD_STATES]


@pytest.fixture
def settings(db_url, tmp_path):
    return ivr_settings(db_url, tmp_path)


@pytest.mark.parametrize(("card", "person"), CELLS, ids=[f"{c}-{p}" for c, p in CELLS])
def test_every_channel_gives_the_decision_of_the_table(
    card, person, client, demo, services, clock, token_for, env
):
    his = His(client, demo["institutions"][0], clock)
    his.sign_in()
    cell = Cell(card, person, demo["persons"][0], demo["persons"][1])
    # this client becomes the demo terminal, with a code staff issue on the command line
    issued = CliRunner(clock).invoke(cli_app, ["kiosk", "issue", "T-HZZX-01"])
    code = re.search(r": ([A-Z0-9]{8})\n", issued.output).group(1)
    page = client.get("/kiosk/activate", params={"terminal": "T-HZZX-01", "code": code})
    client.post(
        "/kiosk/activate",
        data={"terminal": "T-HZZX-01", "activation_code": code, "csrf": csrf_of(page.text)},
    )
    q_id = prepare(cell, his, services, clock)
    adapters = Adapters(client, his, token_for)
    wrong = []
    # 2207 last: allowed, it settles
    for name in ["his_1101", "terminal", "telephone", "portal", "counter", "staff_api", "his_2207"]:
        expected = CHANNELS[name].expected(cell, q_id)
        if expected is None:
            continue
        got = getattr(adapters, name)(cell)
        if got.allowed != expected.allowed:
            want = "allowed" if expected.allowed else f"refused ({expected.refusal.code})"
            wrong.append(f"{name}: expected {want}, got {got.allowed}: {got.says[:300]}")
            continue
        if not got.allowed:
            word = NAMES[expected.refusal.code]
            if word not in got.says:
                wrong.append(f"{name}: the refusal does not say {word!r}: {got.says[:300]}")
        elif CHANNELS[name].presenter is Presenter.STAFF and card not in ("active", "replaced"):
            shown = CARD_STATUS_ZH[card] if name == "counter" else card
            if shown not in got.says:
                wrong.append(f"{name}: the card's state {shown!r} is not shown: {got.says[:300]}")
    assert not wrong, "\n".join(wrong)
