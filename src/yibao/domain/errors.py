"""Domain errors with a stable code, translated once per channel.

Every message is given in Simplified Chinese first and English second; a
channel decides how to show it (problem+json for the API, ``err_msg`` for the
HIS interface, a spoken prompt on the telephone).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class FieldProblem:
    field: str
    zh: str
    en: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": f"{self.zh} / {self.en}"}


@dataclass
class DomainError(Exception):
    """Base of every error a user may see. ``status`` is the HTTP analogue."""

    code: str
    zh: str
    en: str
    field: str | None = None
    status: int = 400
    problems: list[FieldProblem] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def message(self) -> str:
        prefix = f"{self.field}: " if self.field else ""
        return f"{prefix}{self.zh} / {self.en}"

    def __str__(self) -> str:
        return self.message


def invalid(field_name: str, zh: str, en: str, code: str = "invalid") -> DomainError:
    """A bad input value: names the field and the reason."""
    return DomainError(
        code=f"validation.{code}",
        zh=zh,
        en=en,
        field=field_name,
        status=422,
        problems=[FieldProblem(field_name, zh, en)],
    )


def not_found(what_zh: str, what_en: str, code: str = "not_found") -> DomainError:
    """Not found, or outside the caller's administrative area: the two look the same."""
    return DomainError(code=code, zh=f"未找到{what_zh}", en=f"{what_en} not found", status=404)


def conflict(code: str, zh: str, en: str, field_name: str | None = None) -> DomainError:
    return DomainError(code=code, zh=zh, en=en, field=field_name, status=409)


def forbidden(code: str, zh: str, en: str) -> DomainError:
    return DomainError(code=code, zh=zh, en=en, status=403)


def unauthorized(code: str, zh: str, en: str) -> DomainError:
    return DomainError(code=code, zh=zh, en=en, status=401)


def outcome_unknown() -> DomainError:
    """The database failed during the request: whether it took effect is not
    known here. A money-moving request is idempotent, so the answer is to
    send the same request again (the same msgid, the same Idempotency-Key)."""
    return DomainError(
        code="system.outcome_unknown",
        zh="数据库连接中断，本次请求的处理结果未知，请用相同的报文ID(msgid)或幂等键重新发送",
        en="the database failed during the request, so its outcome is unknown; "
        "send the same request again with the same msgid or Idempotency-Key",
        status=503,
    )
