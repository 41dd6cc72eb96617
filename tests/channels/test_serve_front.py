"""``yibao serve`` names uvicorn's fast front, uvloop and httptools (issue 18):
uvicorn's "auto" falls back without a word to asyncio's loop and h11 when
either is missing, and that front cost half again the server's CPU per
settlement in ``bench.settlement``."""

from __future__ import annotations

from typing import Any

import uvicorn

from tests.channels.test_cli_first import run, served  # noqa: F401


def test_serve_asks_uvicorn_for_uvloop_and_httptools(env, demo, served):  # noqa: F811
    result = run("serve", "--port", "18111")
    assert result.exit_code == 0, result.output
    assert served[0]["loop"] == "uvloop"
    assert served[0]["http"] == "httptools"


def test_serve_with_workers_asks_for_them_too(env, demo, served):  # noqa: F811
    result = run("serve", "--port", "18112", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert served[0]["app"] == "yibao.asgi:app"
    assert (served[0]["loop"], served[0]["http"]) == ("uvloop", "httptools")


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise AssertionError("not called")


def test_uvicorn_finds_both_installed() -> None:
    """Both come with uvicorn[standard], a dependency: uvicorn loads them."""
    config = uvicorn.Config(_app, loop="uvloop", http="httptools")
    config.load()
    assert config.http_protocol_class.__name__ == "HttpToolsProtocol"
    loop_factory = config.get_loop_factory()
    assert loop_factory is not None
    loop = loop_factory()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()
