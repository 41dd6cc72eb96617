"""JSON log lines from a real uvicorn: one request id shared by the log
line, the answer and the audit entry; nothing of a person's in clear."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select

from tests.his.client import His
from yibao.observability import logs
from yibao.store import auditlog
from yibao.store.models import AuditEntry


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Http:
    """The test HIS client's and the browser's requests, to a real server."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()

    def post(self, path: str, *, content: bytes | None = None, **kw: Any) -> requests.Response:
        if content is not None:
            kw["data"] = content
        return self.session.post(self.base + path, timeout=30, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.session.get(self.base + path, timeout=30, **kw)


class Served:
    def __init__(self, url: str, out: io.StringIO) -> None:
        self.url = url
        self.out = out

    def lines(self) -> list[dict[str, Any]]:
        """Every line written so far, each one JSON object (or the test fails)."""
        text = self.out.getvalue()
        assert text.endswith("\n")
        return [json.loads(line) for line in text.splitlines()]

    def with_id(self, rid: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("request_id") == rid]


@pytest.fixture
def served(app: Any, settings: Any) -> Iterator[Served]:
    """The app under a real uvicorn on 127.0.0.1, its access log on, and
    every log line of the process captured as ``yibao serve`` writes them."""
    import uvicorn

    settings.cookie_secure = False  # the test's client speaks plain HTTP
    out = io.StringIO()
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    logs.configure("INFO", stream=out)
    port = _free_port()
    # the lifespan closes the HIS fast path's pool on the server's own loop
    # log_level named: a server an earlier test started with "warning" left
    # uvicorn's loggers at that level, and the access line would be dropped
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        log_level="info",
        access_log=True,
        lifespan="on",
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", out)
    finally:
        srv.should_exit = True
        thread.join(10)
        root.handlers[:] = before[0]
        root.setLevel(before[1])


def _entry(services: Any, action: str) -> AuditEntry:
    with services.uow() as u:
        found = (
            u.session.execute(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id.desc())
            )
            .scalars()
            .first()
        )
    assert found is not None, action
    return found


def _nothing_personal(served: Served, *secrets: str) -> None:
    text = served.out.getvalue()
    for secret in secrets:
        assert secret not in text, secret


def test_a_his_settlement_shares_its_request_id_and_logs_nothing_personal(
    served: Served, demo: dict[str, Any], clock: Any, services: Any
) -> None:
    zhang = demo["persons"][0]
    http = Http(served.url)
    his = His(http, demo["institutions"][0], clock)
    his.sign_in()
    psn_no = his.person(zhang["card_no"])["baseinfo"]["psn_no"]
    mdtrt_id = his.register(psn_no, zhang["card_no"])
    his.fees(mdtrt_id, psn_no, [("250101001", "100.00")])
    body = json.dumps(
        his.envelope("2207", his.settle_input(mdtrt_id, psn_no, zhang["card_no"], "100.00")),
        ensure_ascii=False,
    ).encode()
    rid = "lb-7f3a9c2e-0001"  # a load balancer's id: well-formed, kept
    r = http.post(
        "/fsi/api/rsfComIfsService/callService",
        content=body,
        headers={**his.headers(body), "X-Request-ID": rid},
    )
    answer = r.json()
    assert answer["infcode"] == 0, answer
    # the answer's header and its body
    assert r.headers["x-request-id"] == rid and answer["request_id"] == rid
    # the audit entries the request wrote, the settlement's and its ledger entry's
    assert _entry(services, "his.settlement").detail["request_id"] == rid
    assert _entry(services, "ledger.entry").detail["request_id"] == rid
    # the id is part of the entries' keyed hash: the chain verifies with it
    with services.uow() as u:
        assert auditlog.verify(u.session).ok
    # the log line: uvicorn's access line, through the JSON formatter
    (line,) = served.with_id(rid)
    assert line["channel"] == "his" and line["status"] == 200 and line["method"] == "POST"
    assert line["logger"] == "uvicorn.access" and line["level"] == "info"
    assert line["event"] == "http request" and re.match(r"\d{4}-\d\d-\d\dT", line["timestamp"])
    # every request has its own id, and every line is JSON
    ids = [ln["request_id"] for ln in served.lines() if ln.get("logger") == "uvicorn.access"]
    assert len(ids) == 5 and len(set(ids)) == 5
    _nothing_personal(served, zhang["certno"], zhang["name"], zhang["card_no"])


def test_a_failed_portal_log_in_logs_neither_the_id_number_nor_the_password(
    served: Served, demo: dict[str, Any], services: Any
) -> None:
    p = demo["persons"][1]
    typed = "Wr0ng-but-close-" + p["password"]
    http = Http(served.url)
    page = http.get("/portal/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text[:300]
    r = http.post(
        "/portal/login",
        data={"login_id": p["certno"], "password": typed, "csrf": token[1]},
        headers={"X-Request-ID": "not a well-formed id!"},
    )
    # an ID number in a query (a mistyped link): masked in the access line
    http.get("/portal/login", params={"login_id": p["certno"]})
    assert r.status_code in (401, 422) and "portal" in str(r.url)
    rid = r.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)  # the malformed one was replaced
    assert _entry(services, "portal.login_failed").detail["request_id"] == rid
    (line,) = served.with_id(rid)
    assert line["channel"] == "portal" and line["path"] == "/portal/login"
    assert any("login_id=***" in ln.get("path", "") for ln in served.lines())
    _nothing_personal(served, p["certno"], p["name"], typed, p["password"])


def test_every_line_is_masked_exceptions_included() -> None:
    """The processor that masks runs on every line: an app's own, with an
    exception whose text carries an ID number, and keys named like secrets."""
    out = io.StringIO()
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    logs.configure("INFO", stream=out)
    try:
        certno = "330502199001011234"
        try:
            raise ValueError(f"no person {certno} with card 1000000016")
        except ValueError:
            logging.getLogger("yibao.test").exception("failed for %s", certno)
        logs.get_logger("yibao.test").warning(
            "login", password="s3cret!", pin="123456", certno=certno, name="张三", count=3
        )
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    failed, login = lines
    assert failed["event"] == "failed for ***" and failed["level"] == "error"
    assert "ValueError: no person *** with card ***" in failed["exception"]
    assert login["password"] == login["pin"] == login["certno"] == login["name"] == "***"
    assert login["count"] == 3 and login["logger"] == "yibao.test"
    text = out.getvalue()
    for secret in (certno, "1000000016", "s3cret!", "123456", "张三"):
        assert secret not in text


def test_alembic_set_up_chatter_is_not_logged_at_serve() -> None:
    """``yibao serve``'s readiness reads the migration scripts; alembic's
    INFO lines ("setup plugin …") would be noise in every start-up log."""
    import logging.config

    out = io.StringIO()
    root = logging.getLogger()
    before = (list(root.handlers), root.level, logging.getLogger("alembic").level)
    try:
        logs.configure("INFO", stream=out)
        logging.getLogger("alembic.runtime.plugins").info("setup plugin %s", "x")
        logging.getLogger("alembic").warning("a real warning")
        config = logs.uvicorn_log_config("INFO")
        assert config["loggers"]["alembic"]["level"] == "WARNING"
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])
        logging.getLogger("alembic").setLevel(before[2])
    text = out.getvalue()
    assert "setup plugin" not in text and "a real warning" in text
