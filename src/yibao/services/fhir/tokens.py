"""OAuth2 client credentials for the FHIR interface.

An institution authenticates with its code (``client_id``) and the same
secret its HIS signs gateway requests with (``Institution.access_secret``):
one credential per institution, revoked or rotated in one place. The bearer
token it gets is signed, not stored: ``yb1.<payload>.<mac>``, the payload a
JSON of the institution, the scopes granted and the expiry (Unix seconds on
the injected clock), the mac an HMAC-SHA256 of it keyed with a key derived
from the server's secret key (``YIBAO_SECRET_KEY``). Each request checks the
mac, the expiry, the scope it needs and that the institution is still
active, so a suspended institution's token stops working at once.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from yibao.domain.actors import Channel
from yibao.domain.errors import DomainError, forbidden
from yibao.services.access.institution_auth import Caller
from yibao.services.tx import use_case
from yibao.store.models import Institution
from yibao.store.uow import UnitOfWork

SCOPES = (
    "system/Patient.read",
    "system/Coverage.read",
    "system/Account.read",
    "system/CoverageEligibilityRequest.write",
    "system/Claim.write",
    "system/ExplanationOfBenefit.read",
    "system/AuditEvent.read",
)
PREFIX = "yb1"
TOKEN_MAX = 2048


def _unauthorized(code: str, zh: str, en: str, field: str | None = None) -> DomainError:
    return DomainError(code=f"fhir.{code}", zh=zh, en=en, field=field, status=401)


def _key(secret_key: str) -> bytes:
    # a key of its own, so that a token is never valid as anything else signed
    return hmac.new(secret_key.encode(), b"yibao fhir bearer token", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Token:
    access_token: str
    expires_in: int
    scopes: tuple[str, ...]


def granted(scope: str | None) -> tuple[str, ...]:
    """The scopes asked for (all of them when none is named); an unknown one
    is refused naming it."""
    if scope is None or not scope.strip():
        return SCOPES
    asked = scope.split()
    unknown = [s for s in asked if s not in SCOPES]
    if unknown:
        raise DomainError(
            code="fhir.invalid_scope",
            zh=f"不支持的授权范围：{unknown[0][:80]}",
            en=f"unknown scope {unknown[0][:80]}; the scopes are {' '.join(SCOPES)}",
            field="scope",
            status=400,
        )
    return tuple(s for s in SCOPES if s in asked)


@use_case
def issue(
    uow: UnitOfWork,
    *,
    grant_type: str | None,
    client_id: str | None,
    client_secret: str | None,
    scope: str | None,
) -> Token:
    """``POST /fhir/R4/auth/token``: a bearer token for an active
    institution whose code and secret match; one answer for every wrong
    credential."""
    if grant_type != "client_credentials":
        raise DomainError(
            code="fhir.unsupported_grant_type",
            zh="grant_type应为client_credentials",
            en="grant_type is client_credentials",
            field="grant_type",
            status=400,
        )
    scopes = granted(scope)
    inst = None
    # an institution code is ASCII letters and digits; nothing else is looked up
    if client_id and len(client_id) <= 20 and client_id.isascii() and client_id.isalnum():
        inst = uow.session.execute(
            select(Institution).where(Institution.code == client_id)
        ).scalar_one_or_none()
    secret = (client_secret or "").encode("utf-8", "replace")
    expected = (inst.access_secret if inst else secrets.token_hex(16)).encode()
    if inst is None or not hmac.compare_digest(expected, secret) or inst.status != "active":
        raise _unauthorized(
            "invalid_client",
            "机构编码或密钥错误，或机构已暂停",
            "unknown client_id, wrong client_secret, or a suspended institution",
            "client_secret",
        )
    minutes = uow.settings.fhir_token_minutes
    exp = int((uow.clock.now() + dt.timedelta(minutes=minutes)).timestamp())
    payload = _b64(
        json.dumps(
            {"iss": inst.code, "scp": list(scopes), "exp": exp, "jti": secrets.token_hex(8)},
            separators=(",", ":"),
        ).encode()
    )
    mac = _b64(
        hmac.new(_key(uow.settings.effective_secret_key), payload.encode(), "sha256").digest()
    )
    caller = Caller.of(inst, inst.access_id, None, channel=Channel.FHIR)
    uow.audit(
        caller.record(
            channel=Channel.FHIR,
            action="fhir.token",
            subject=inst.code,
            detail={"scopes": list(scopes)},
        )
    )
    return Token(f"{PREFIX}.{payload}.{mac}", minutes * 60, scopes)


@use_case
def authenticate(uow: UnitOfWork, *, authorization: str | None, scope: str) -> Caller:
    """The institution behind ``Authorization: Bearer …``, if the token is
    ours, unexpired, grants ``scope`` and its institution is active."""
    if not authorization or not authorization[:7].lower() == "bearer ":
        raise _unauthorized(
            "no_token", "缺少访问令牌", "an Authorization: Bearer token is required"
        )
    token = authorization[7:].strip()
    bad = _unauthorized(
        "bad_token", "访问令牌无效或已过期", "the bearer token is invalid or expired"
    )
    parts = token.split(".")
    if len(token) > TOKEN_MAX or len(parts) != 3 or parts[0] != PREFIX:
        raise bad
    expected = _b64(
        hmac.new(_key(uow.settings.effective_secret_key), parts[1].encode(), "sha256").digest()
    )
    if not hmac.compare_digest(expected.encode(), parts[2].encode("utf-8", "replace")):
        raise bad
    try:
        claims = json.loads(_unb64(parts[1]))
        code, scopes, exp = str(claims["iss"]), list(claims["scp"]), int(claims["exp"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise bad from None
    if uow.clock.now().timestamp() >= exp:
        raise bad
    if scope not in scopes:
        raise forbidden(
            "fhir.insufficient_scope",
            f"访问令牌未获授权范围{scope}",
            f"the token does not grant {scope}",
        )
    inst = uow.session.execute(
        select(Institution).where(Institution.code == code)
    ).scalar_one_or_none()
    if inst is None or inst.status != "active":
        raise bad
    return Caller.of(inst, inst.access_id, None, channel=Channel.FHIR)
