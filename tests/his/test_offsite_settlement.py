"""Care in another area (异地就医备案) from the HIS side (issue 16): a
designated institution of the destination area (Huzhou) settles a person
insured in Suzhou (``insuplc_admdvs`` 320508 ≠ the institution's area)
under the insured area's benefit policy, only while a filing covers the
visit; without one, the refusal says why and how to file. On PostgreSQL the
fast path gives way to the general path, and the two answer alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import START, SYSTEM, add_person
from tests.his.client import His
from yibao import demo as demo_service
from yibao.app import create_app
from yibao.domain.actors import Channel
from yibao.services.access.person_login import person_actor
from yibao.services.contributions import contributions
from yibao.services.settlement import offsite, policy

TODAY = START.date()
# the home area's policy (Suzhou, level 3: 90 %, no deductible) differs from
# the destination's (the demo's Huzhou: 75 % after a 300 yuan deductible)
HOME_RATIO, DEST_RATIO, DEST_DEDUCTIBLE = 9000, 7500, 300_00
TOTAL = "400.00"
LINES = [("250101001", TOTAL)]  # a category A service: all of it is in scope
OWN = {"setl_id", "mdtrt_id", "setl_time"}


@pytest.fixture
def suzhou(services: Any, demo: dict[str, Any]) -> Any:
    """A person insured in Suzhou (320508), with Suzhou's benefit policy."""
    with services.uow() as u:
        contributions.set_rule(
            u,
            actor=SYSTEM,
            channel=Channel.CLI,
            area="320500",
            year=2026,
            insutype="310",
            **demo_service.RULE,
        )
        u.commit()
    policy.set_policy(
        services.uow(),
        actor=SYSTEM,
        channel=Channel.CLI,
        insutype="310",
        area="320500",
        year=2026,
        deductible=0,
        fund_cap=10**9,
        ratios={"3": HOME_RATIO},
    )
    return add_person(services.uow(), division="320508", name="苏州人")


def _visit(person: Any, clock: Any) -> dict[str, Any]:
    return {
        "psn_no": str(person.id),
        "begntime": clock.now().strftime("%Y-%m-%d %H:%M:%S"),
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": person.certno,
    }


def _settle_input(his: His, mdtrt_id: str, person: Any) -> dict[str, Any]:
    inp = his.settle_input(mdtrt_id, str(person.id), person.certno, TOTAL, acct="0")
    inp["data"]["mdtrt_cert_type"] = "02"
    return inp


def _file(services: Any, person: Any, **given: Any) -> offsite.FilingView:
    fields: dict[str, Any] = {"kind": "living", "visit_area": "330500", "start": TODAY, **given}
    return offsite.file(
        services.uow(),
        actor=person_actor(person),
        channel=Channel.PORTAL,
        person_id=person.id,
        **fields,
    )


def _settle(his: His, person: Any, clock: Any, infno: str = "2207") -> dict[str, Any]:
    mdtrt_id = his.ok("2201", {"data": _visit(person, clock)})["data"]["mdtrt_id"]
    his.fees(mdtrt_id, str(person.id), LINES)
    return his.ok(infno, _settle_input(his, mdtrt_id, person))


def test_the_destination_settles_under_the_home_policy(
    his: His, suzhou: Any, services: Any, clock: Any
) -> None:
    info = his.ok("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": suzhou.certno}})
    assert info["insuinfo"][0]["insuplc_admdvs"] == "320508"
    assert demo_service.fixtures()["institutions"][0]["division"][:4] == "3305"

    refused = his.call("2201", {"data": _visit(suzhou, clock)})
    assert refused["infcode"] == -1
    assert "未办理本地的异地就医备案" in refused["err_msg"]
    assert "网上服务大厅“异地就医备案”" in refused["err_msg"] and "counter" in refused["err_msg"]

    _file(services, suzhou)
    pre = _settle(his, suzhou, clock, "2206")["setlinfo"]
    out = _settle(his, suzhou, clock)["setlinfo"]
    home = 400_00 * HOME_RATIO // 10000
    destination = (400_00 - DEST_DEDUCTIBLE) * DEST_RATIO // 10000
    assert round(out["hifp_pay"] * 100) == home != destination
    assert round(out["psn_cash_pay"] * 100) == 400_00 - home
    assert out["clr_optins"] == "320508" and pre["hifp_pay"] == out["hifp_pay"]


def test_a_cancelled_filing_no_longer_covers_a_registered_visit(
    his: His, suzhou: Any, services: Any, clock: Any
) -> None:
    filing = _file(services, suzhou)
    mdtrt_id = his.ok("2201", {"data": _visit(suzhou, clock)})["data"]["mdtrt_id"]
    his.fees(mdtrt_id, str(suzhou.id), LINES)
    offsite.cancel(
        services.uow(),
        actor=person_actor(suzhou),
        channel=Channel.PORTAL,
        person_id=suzhou.id,
        filing_id=filing.id,
    )
    refused = his.call("2207", _settle_input(his, mdtrt_id, suzhou))
    assert refused["infcode"] == -1
    assert "异地就医备案已撤销" in refused["err_msg"] and "was cancelled" in refused["err_msg"]
    again = his.call("2201", {"data": _visit(suzhou, clock)})
    assert again["infcode"] == -1 and "file one" in again["err_msg"]


def test_an_expired_referral_no_longer_covers(
    his: His, suzhou: Any, services: Any, clock: Any
) -> None:
    _file(services, suzhou, kind="referral", end=TODAY + dt.timedelta(days=2))
    assert _settle(his, suzhou, clock)["setlinfo"]["hifp_pay"] > 0
    clock.advance(dt.timedelta(days=3))
    his.sign_in()
    refused = his.call("2201", {"data": _visit(suzhou, clock)})
    assert refused["infcode"] == -1 and "异地就医备案已过期" in refused["err_msg"]


@pytest.fixture
def general(settings: Any, clock: Any) -> Iterator[TestClient]:
    """The same database served with the fast path switched off."""
    application = create_app(settings.model_copy(update={"his_fast_path": False}), clock)
    with TestClient(application, base_url="https://testserver") as c:
        yield c
    application.state.services.engine.dispose()


@pytest.mark.postgresql_only
def test_the_fast_path_gives_way_and_both_paths_agree(
    his: His,
    general: TestClient,
    app: Any,
    demo: dict[str, Any],
    suzhou: Any,
    services: Any,
    clock: Any,
) -> None:
    fast = app.state.his_fast
    assert fast is not None
    slow = His(general, demo["institutions"][0], clock)
    slow.sign_no = his.sign_no
    _file(services, suzhou)
    served, gave_way = fast.served, fast.gave_way
    by_fast_app = _settle(his, suzhou, clock)
    assert fast.served == served and fast.gave_way > gave_way
    # the first settlement used the year's usage: cancel it, then settle again
    his.ok(
        "2208",
        {
            "data": {
                "setl_id": by_fast_app["setlinfo"]["setl_id"],
                "mdtrt_id": by_fast_app["setlinfo"]["mdtrt_id"],
                "psn_no": str(suzhou.id),
            }
        },
    )
    by_general = _settle(slow, suzhou, clock)
    assert {k: v for k, v in by_fast_app["setlinfo"].items() if k not in OWN} == {
        k: v for k, v in by_general["setlinfo"].items() if k not in OWN
    }
