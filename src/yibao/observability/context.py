"""The current request's id and channel, for the log lines, the HIS answer
and the audit entries written while it is served.

A ``ContextVar``: the thread pool that runs the synchronous services copies
the context (anyio does), so a service's audit entry sees its request's id."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar, Token

_request_id: ContextVar[str | None] = ContextVar("yibao_request_id", default=None)
_channel: ContextVar[str] = ContextVar("yibao_channel", default="")

# what an incoming X-Request-ID may be to be kept (a proxy's UUID, a
# platform's trace id); anything else is replaced, so a log line or an
# audit entry never carries a caller's free text
WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,63}")


def new_request_id() -> str:
    return secrets.token_hex(16)


def accept(incoming: str | None) -> str:
    """The incoming id if well-formed, else a new one."""
    if incoming and WELL_FORMED.fullmatch(incoming):
        return incoming
    return new_request_id()


def request_id() -> str | None:
    return _request_id.get()


def channel() -> str:
    return _channel.get()


Tokens = tuple[Token[str | None], Token[str]]


def bind(request_id: str, channel: str) -> Tokens:
    """Bind for the current context; returns what ``unbind`` restores."""
    return (_request_id.set(request_id), _channel.set(channel))


def unbind(tokens: Tokens) -> None:
    _request_id.reset(tokens[0])
    _channel.reset(tokens[1])
