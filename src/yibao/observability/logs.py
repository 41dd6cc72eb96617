"""Logs as one JSON object per line (``structlog``), for yibao's own
loggers and uvicorn's, through the standard library's logging
(``structlog.stdlib.ProcessorFormatter``): timestamp, level, event,
logger, and the request's ``request_id`` and ``channel`` when a request is
being served.

Every line passes ``mask`` last before it is written, exceptions included:
an ID number, a card number, or a value under a key named like a password,
PIN, secret, token, name or ID number is never written in clear.
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
from collections.abc import MutableMapping
from typing import IO, Any

import structlog
from stdnum import luhn
from structlog.typing import Processor

MASK = "***"
# 18-character resident ID numbers (GB 11643: 17 digits and a check
# character) wherever they stand in a text
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
# card numbers: 10 digits with a Luhn check digit (domain/ids.py)
_CARD_NUMBER = re.compile(r"(?<![0-9])[0-9]{10}(?![0-9])")
_SECRET_KEY = re.compile(r"pass|pin|secret|token|name|certno|cert_no|card_no|authorization", re.I)


def _mask_text(text: str) -> str:
    text = _ID_NUMBER.sub(MASK, text)
    if len(text) >= 10:
        text = _CARD_NUMBER.sub(lambda m: MASK if luhn.is_valid(m[0]) else m[0], text)
    return text


def _masked(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return _mask_text(value)
    if depth > 4:
        return value
    if isinstance(value, dict):
        return {
            k: MASK if isinstance(k, str) and _SECRET_KEY.search(k) else _masked(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_masked(v, depth + 1) for v in value]
    return value


# the names structlog itself uses for a line's parts: kept as they are
_OWN_KEYS = frozenset({"event", "level", "logger", "timestamp", "request_id", "channel"})


def mask(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The processor every line passes last before it is rendered."""
    for key in list(event):
        value = event[key]
        if key not in _OWN_KEYS and _SECRET_KEY.search(key):
            event[key] = MASK
        else:
            event[key] = _masked(value)
    return event


def _uvicorn_access(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """uvicorn's access line, its parts as fields: client, method, path, status."""
    args = event.pop("positional_args", None)  # the formatter's copy of record.args
    record = event.get("_record")
    access = record is not None and record.name == "uvicorn.access"
    if access and isinstance(args, tuple) and len(args) == 5:
        client, method, path, _version, status = args
        event.update(client=client, method=method, path=path, status=status)
        event["event"] = "http request"
    return event


def _shared() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _formatter() -> structlog.stdlib.ProcessorFormatter:
    """The JSON lines' formatter; made by ``uvicorn_log_config`` in each
    worker process too, where it also configures structlog there."""
    _configure_structlog()
    return structlog.stdlib.ProcessorFormatter(
        pass_foreign_args=True,
        foreign_pre_chain=[*_shared(), structlog.stdlib.ExtraAdder(), _uvicorn_access],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            mask,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
    )


def configure(level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Once at start-up: every logger (yibao's, uvicorn's, SQLAlchemy's) to
    one handler writing JSON lines to ``stream`` (standard output)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(_formatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_yibao", False):
            root.removeHandler(old)
    handler._yibao = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's loggers write through the root's handler, not their own
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        own = logging.getLogger(name)
        own.handlers.clear()
        own.propagate = True
    # the readiness check reads the migration scripts: alembic's set-up
    # chatter ("setup plugin …") is not an operator's news
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _configure_structlog() -> None:
    structlog.configure(
        processors=[
            *_shared(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def uvicorn_log_config(level: str = "INFO") -> dict[str, Any]:
    """``uvicorn.run(log_config=...)``: uvicorn applies it in each worker
    process, so every worker writes JSON lines too."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "yibao.observability.logs._formatter"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
            "alembic": {"level": "WARNING"},
        },
    }


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
