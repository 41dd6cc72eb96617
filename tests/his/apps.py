"""The HIS tests' applications: one with the PostgreSQL fast path on or
off, and a request sent from a thread of its own (a second HIS)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from tests.his.client import His
from yibao.app import App, create_app


@contextmanager
def his_app(settings: Any, clock: Any, *, fast_path: bool) -> Iterator[App]:
    app = create_app(settings.model_copy(update={"his_fast_path": fast_path}), clock)
    try:
        yield app
    finally:
        app.state.services.engine.dispose()


def send_in_thread(
    app: Any, inst: dict[str, Any], clock: Any, sign_no: str, infno: str, inp: Any, msgid: str
) -> tuple[threading.Thread, list[dict[str, Any]]]:
    """Send one request from a new thread; its answer lands in the list."""
    out: list[dict[str, Any]] = []

    def send() -> None:
        with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as c:
            h = His(c, inst, clock)
            h.sign_no = sign_no
            out.append(h.call(infno, inp, msgid=msgid))

    thread = threading.Thread(target=send)
    thread.start()
    return thread, out
