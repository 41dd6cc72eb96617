"""The wrapper every HTTP request passes through (``app.App.__call__``),
the HIS endpoint's bare handler included: the request id, the channel, the
request counter and the latency histogram."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from starlette.types import Message, Receive, Scope, Send

from yibao.observability import context, metrics

ASGI = Callable[[Scope, Receive, Send], Awaitable[None]]
HEADER = b"x-request-id"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _incoming(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == HEADER:
            return str(value.decode("latin-1"))
    return None


async def observe(app: ASGI, scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        await app(scope, receive, send)
        return
    channel = metrics.channel_of(scope["path"])
    rid = context.accept(_incoming(scope))
    tokens = context.bind(rid, channel)
    bound = structlog.contextvars.bind_contextvars(request_id=rid, channel=channel)
    status = 500  # what the server answers if the application never does
    started = time.perf_counter()

    async def send_with_id(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
            message = {**message, "headers": [*headers, (HEADER, rid.encode())]}
        await send(message)

    try:
        await app(scope, receive, send_with_id)
    finally:
        method = scope["method"] if scope["method"] in _METHODS else "other"
        metrics.REQUESTS.labels(channel, method, str(status)).inc()
        metrics.LATENCY.labels(channel).observe(time.perf_counter() - started)
        structlog.contextvars.reset_contextvars(**bound)
        context.unbind(tokens)
