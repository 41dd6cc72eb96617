"""The platform gateway's authentication of a designated institution's HIS.

HIS clients sign every request the way they sign for the national
platform's gateway: ``x-tif-signature`` = hex SHA-256 of timestamp + token +
nonce + timestamp. That covers no byte of the body, so the interface is
served behind TLS and an institution can be required to add an HMAC-SHA256
of the raw body (``x-yb-body-signature``). Nonces are kept in the database:
the app servers are stateless, a replay may reach any of them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from yibao.domain.actors import Actor
from yibao.domain.audit import AuditRecord
from yibao.domain.errors import DomainError
from yibao.store.models import HisNonce, Institution
from yibao.store.uow import UnitOfWork

WINDOW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Caller:
    """The authenticated institution, as the services need it."""

    id: int
    code: str
    name: str
    kind: str
    level: str
    division: str
    access_id: str
    # whether the envelope's sign_no is a current sign-in, when already known
    signed_in: bool | None = None
    # the envelope's cainfo and signtype: a province's SM2/SM4 signature of
    # the body, recorded with every audit entry of the request (not verified)
    signed_with: tuple[str, str] = ("", "")

    @classmethod
    def of(
        cls,
        inst: Any,
        access_id: str,
        signed_in: bool | None,
        signed_with: tuple[str, str] = ("", ""),
    ) -> Caller:
        """From an institution row (or anything that reads like one)."""
        return cls(
            inst.id,
            inst.code,
            inst.name,
            inst.kind,
            inst.level,
            inst.division_code,
            access_id,
            signed_in,
            signed_with,
        )

    @property
    def actor(self) -> Actor:
        return Actor(kind="institution", id=self.code, division=self.division, name=self.name)

    def record(self, *, detail: dict[str, object] | None = None, **what: Any) -> AuditRecord:
        """``actor.record``, with the envelope's cainfo and signtype in the
        detail when the HIS sent them."""
        cainfo, signtype = self.signed_with
        if cainfo or signtype:
            detail = {**(detail or {}), "cainfo": cainfo, "signtype": signtype}
        return self.actor.record(detail=detail, **what)


# cainfo beyond this is cut in the audit entry (an SM2 signature is ~100 characters)
SIGNED_WITH_MAX = 4096


def signed_with(env: dict[str, Any]) -> tuple[str, str]:
    """The envelope's ``cainfo`` and ``signtype``, as strings."""
    return (
        str(env.get("cainfo") or "")[:SIGNED_WITH_MAX],
        str(env.get("signtype") or "")[:SIGNED_WITH_MAX],
    )


def refuse(code: str, zh: str, en: str) -> DomainError:
    return DomainError(code=f"gateway.{code}", zh=zh, en=en, status=401)


def gateway_signature(timestamp: str, secret: str, nonce: str) -> str:
    return hashlib.sha256(f"{timestamp}{secret}{nonce}{timestamp}".encode()).hexdigest()


def body_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def authenticate(
    uow: UnitOfWork,
    *,
    access_id: str | None,
    timestamp: str | None,
    nonce: str | None,
    signature: str | None,
    body_sig: str | None,
    body: bytes,
    sign_no: str = "",
    signed_with: tuple[str, str] = ("", ""),
) -> Caller:
    """Check the headers and claim the nonce (inside the caller's unit of
    work, so that a refused request changes nothing)."""
    missing = [
        name
        for name, value in (
            ("x-tif-paasid", access_id),
            ("x-tif-timestamp", timestamp),
            ("x-tif-nonce", nonce),
            ("x-tif-signature", signature),
        )
        if not value
    ]
    if missing:
        raise refuse(
            "unsigned", f"缺少签名头：{', '.join(missing)}", f"missing {', '.join(missing)}"
        )
    assert access_id and timestamp and nonce and signature
    if len(nonce) > 100:
        raise refuse("bad_nonce", "x-tif-nonce过长", "x-tif-nonce is too long")
    fresh: bool | None = None
    signed_in: bool | None = None
    if uow.session.get_bind().dialect.name == "postgresql":
        # One round trip: the institution, the nonce claimed and the sign-in
        # checked together. A refused request rolls the claim back.
        row = uow.session.execute(
            text(
                "WITH n AS (INSERT INTO his_nonces (access_id, nonce, at) "
                "VALUES (:a, :n, :at) ON CONFLICT DO NOTHING RETURNING id) "
                "SELECT i.id, i.code, i.name, i.kind, i.level, i.division_code, i.access_id, "
                "i.access_secret, i.require_body_signature, i.status, "
                "EXISTS (SELECT 1 FROM n) AS fresh, "
                "EXISTS (SELECT 1 FROM his_sign_ins s WHERE s.sign_no = :s "
                "AND s.institution_code = i.code AND s.signed_out_at IS NULL) AS signed_in "
                "FROM institutions i WHERE i.access_id = :a"
            ),
            {"a": access_id, "n": nonce, "at": uow.clock.now(), "s": sign_no},
        ).first()
        inst: Any = row  # a row reads like an Institution: inst.code, inst.status, ...
        if row is not None:
            fresh, signed_in = bool(row.fresh), bool(row.signed_in)
    else:
        inst = uow.session.execute(
            select(Institution).where(Institution.access_id == access_id)
        ).scalar_one_or_none()
    if inst is None:
        raise refuse("unknown", "未知的接入机构", f"unknown x-tif-paasid {access_id}")
    check_credentials(
        inst,
        timestamp=timestamp,
        nonce=nonce,
        signature=signature,
        body_sig=body_sig,
        body=body,
        now=uow.clock.now(),
    )
    if fresh is None:
        claim_nonce(uow, access_id=access_id, nonce=nonce)
    elif not fresh:
        raise refuse("replay", "重复的请求(nonce已使用)", "replayed request: nonce already used")
    return Caller.of(inst, access_id, signed_in, signed_with)


def check_credentials(
    inst: Any,
    *,
    timestamp: str,
    nonce: str,
    signature: str,
    body_sig: str | None,
    body: bytes,
    now: dt.datetime,
) -> None:
    """The signature, the timestamp, the body signature where required and
    the institution's status; ``inst`` reads like an Institution."""
    expected = gateway_signature(timestamp, inst.access_secret, nonce)
    if not hmac.compare_digest(expected, signature.strip().lower()):
        raise refuse("bad_signature", "签名错误", "x-tif-signature does not match")
    try:
        sent = dt.datetime.fromtimestamp(int(timestamp), dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise refuse("bad_timestamp", "时间戳格式错误", "x-tif-timestamp is Unix seconds") from None
    if abs(now - sent) > WINDOW:
        raise refuse("stale", "时间戳超出5分钟", "x-tif-timestamp is more than 5 minutes off")
    if inst.require_body_signature:
        want = body_signature(inst.access_secret, body)
        if not body_sig or not hmac.compare_digest(want, body_sig.strip().lower()):
            raise refuse(
                "bad_body_signature",
                "报文签名缺失或错误(x-yb-body-signature)",
                "x-yb-body-signature is missing or does not match the body",
            )
    if inst.status != "active":
        raise DomainError(
            code="institution.suspended",
            zh="该定点医药机构已暂停医保服务",
            en="this institution's designation is suspended",
            status=403,
        )


def claim_nonce(uow: UnitOfWork, *, access_id: str, nonce: str) -> None:
    """One statement; the unique key decides, whichever server got the first."""
    values = {"access_id": access_id, "nonce": nonce, "at": uow.clock.now()}
    if uow.session.get_bind().dialect.name == "postgresql":
        stmt: Any = pg_insert(HisNonce).values(**values).on_conflict_do_nothing()
    else:
        stmt = sqlite_insert(HisNonce).values(**values).on_conflict_do_nothing()
    claimed = uow.session.execute(stmt.returning(HisNonce.id)).first()
    if claimed is None:
        raise refuse("replay", "重复的请求(nonce已使用)", "replayed request: nonce already used")


def purge_nonces(uow: UnitOfWork) -> int:
    """Nonces older than the window can never be accepted again anyway."""
    cutoff = uow.clock.now() - 2 * WINDOW
    result = uow.session.execute(delete(HisNonce).where(HisNonce.at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
