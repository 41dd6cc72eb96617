"""When the database fails during an HIS request, whether it took effect is
unknown: the answer says so and to send the same msgid again (which the
idempotency layer makes safe), never "internal error". Tested with a real
PostgreSQL backend terminated (``pg_terminate_backend``) while the request
waits inside its write, on the general path and on the fast path."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from tests.helpers import wait_for_lock_waiters
from tests.his.apps import his_app, send_in_thread
from tests.his.client import His
from yibao.services.ledger import ledger
from yibao.store.models import Settlement

pytestmark = pytest.mark.postgresql_only


def _terminate_the_waiter(services: Any) -> int:
    """End the backend that waits on a lock, as a crash or an operator would."""
    with services.engine.connect() as conn:
        pid = conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        ).scalar_one()
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
    return int(pid)


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "general-path"])
def test_a_settlement_cut_off_by_the_database_answers_outcome_unknown(
    backend: str,
    fast_path: bool,
    settings: Any,
    demo: dict[str, Any],
    clock: Any,
    services: Any,
) -> None:
    inst, zhang = demo["institutions"][0], demo["persons"][0]
    with (
        his_app(settings, clock, fast_path=fast_path) as app,
        TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client,
    ):
        his = His(client, inst, clock)
        his.sign_in()
        psn_no = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
        mdtrt_id = his.register(psn_no, zhang["card_no"])
        his.fees(mdtrt_id, psn_no, [("250101001", "400.00")])
        inp = his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "400.00")
        msgid = his.msgid()
        served = app.state.his_fast.served if fast_path else 0
        with services.engine.connect() as holder:
            # the settlement's write waits on the visit's row
            holder.execute(
                text("SELECT 1 FROM visits WHERE mdtrt_id = :m FOR UPDATE"), {"m": mdtrt_id}
            )
            thread, answers = send_in_thread(app, inst, clock, his.sign_no, "2207", inp, msgid)
            assert wait_for_lock_waiters(services, 1)
            _terminate_the_waiter(services)
            holder.rollback()
        thread.join(60)
        assert answers, "no answer"
        cut = answers[0]
        assert cut["infcode"] == -1
        assert "outcome is unknown" in cut["err_msg"] and "msgid" in cut["err_msg"], cut
        assert "internal error" not in cut["err_msg"]
        if fast_path:
            assert app.state.his_fast.served == served + 1  # answered there, not handed on
        # the same msgid again: settled once
        again = his.ok("2207", inp, msgid=msgid)
        assert again["setlinfo"]["mdtrt_id"] == mdtrt_id
        assert his.ok("2207", inp, msgid=msgid) == again
    with services.uow() as u:
        assert u.session.execute(select(func.count()).select_from(Settlement)).scalar_one() == 1
        assert ledger.check(u.session).ok
