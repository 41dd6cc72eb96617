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
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, text

from yibao.domain.actors import Actor, Channel
from yibao.domain.audit import AuditRecord
from yibao.domain.errors import DomainError
from yibao.services.tx import use_case
from yibao.store.models import HisNonce
from yibao.store.types import UTCDateTime
from yibao.store.uow import UnitOfWork

WINDOW = dt.timedelta(minutes=5)
# the headers' forms: an access id and a nonce of visible ASCII as long as
# their columns, Unix seconds, a SHA-256 in hex
ACCESS_ID_MAX = 40
NONCE_MAX = 100
_VISIBLE = re.compile(r"[!-~]+")
_SECONDS = re.compile(r"[0-9]{1,12}")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


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
    # the channel its requests come by, named in every audit entry: the HIS
    # interface, or FHIR, whose Claim runs the HIS's own use cases
    channel: str = Channel.HIS

    @classmethod
    def of(
        cls,
        inst: Any,
        access_id: str,
        signed_in: bool | None,
        signed_with: tuple[str, str] = ("", ""),
        channel: str = Channel.HIS,
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
            channel,
        )

    @property
    def actor(self) -> InstitutionActor:
        return InstitutionActor(
            kind="institution",
            id=self.code,
            division=self.division,
            name=self.name,
            signed_with=self.signed_with,
        )

    def record(self, **what: Any) -> AuditRecord:
        return self.actor.record(**what)


@dataclass(frozen=True)
class InstitutionActor(Actor):
    """An institution's HIS as the actor of an audit entry, wherever the
    entry is written (a settlement, or the account summary of 1101): the
    envelope's cainfo and signtype go in the detail when the HIS sent them."""

    signed_with: tuple[str, str] = ("", "")

    def record(
        self,
        *,
        channel: str,
        action: str,
        person_id: int | None = None,
        subject: str = "",
        detail: dict[str, object] | None = None,
    ) -> AuditRecord:
        cainfo, signtype = self.signed_with
        if cainfo or signtype:
            detail = {**(detail or {}), "cainfo": cainfo, "signtype": signtype}
        return super().record(
            channel=channel, action=action, person_id=person_id, subject=subject, detail=detail
        )


def refuse(code: str, zh: str, en: str) -> DomainError:
    return DomainError(code=f"gateway.{code}", zh=zh, en=en, status=401)


def gateway_signature(timestamp: str, secret: str, nonce: str) -> str:
    return hashlib.sha256(f"{timestamp}{secret}{nonce}{timestamp}".encode()).hexdigest()


def body_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _missing_headers(**headers: str | None) -> None:
    missing = [name.replace("_", "-") for name, value in headers.items() if not value]
    if missing:
        raise refuse(
            "unsigned", f"缺少签名头：{', '.join(missing)}", f"missing {', '.join(missing)}"
        )


def check_headers(
    *, access_id: str | None, timestamp: str | None, nonce: str | None, signature: str | None
) -> tuple[str, str, str, str]:
    """The gateway headers, present and of their forms, or the refusal
    ("signature invalid" for a signature that cannot be one): a header of
    another form (a non-ASCII byte, an overlong nonce) is not authentic and
    changes nothing. Both the general path and the fast path read them here."""
    _missing_headers(
        x_tif_paasid=access_id,
        x_tif_timestamp=timestamp,
        x_tif_nonce=nonce,
        x_tif_signature=signature,
    )
    assert access_id and timestamp and nonce and signature
    access_id, timestamp = access_id.strip(), timestamp.strip()
    nonce, signature = nonce.strip(), signature.strip()
    if _VISIBLE.fullmatch(access_id) is None or len(access_id) > ACCESS_ID_MAX:
        raise refuse("unknown", "未知的接入机构(x-tif-paasid)", "unknown x-tif-paasid")
    if _SECONDS.fullmatch(timestamp) is None:
        raise refuse("bad_timestamp", "时间戳格式错误", "x-tif-timestamp is Unix seconds")
    if _VISIBLE.fullmatch(nonce) is None or len(nonce) > NONCE_MAX:
        raise refuse(
            "bad_nonce",
            f"x-tif-nonce应为最多{NONCE_MAX}个可见ASCII字符",
            f"x-tif-nonce is at most {NONCE_MAX} visible ASCII characters",
        )
    if _SHA256_HEX.fullmatch(signature) is None:
        raise refuse("bad_signature", "签名错误", "x-tif-signature does not match")
    return access_id, timestamp, nonce, signature


def _same(expected: str, given: str | None) -> bool:
    """A constant-time comparison of two hex digests, whatever bytes were sent."""
    sent = (given or "").strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected.encode(), sent)


# Claim the nonce and read the institution with its sign-in: every database
# has ON CONFLICT and RETURNING. A refused request's transaction rolls the
# claim back, so that a request that is not authentic changes nothing.
_CLAIM = text(
    "INSERT INTO his_nonces (access_id, nonce, at) VALUES (:a, :n, :at) "
    "ON CONFLICT DO NOTHING RETURNING id"
).bindparams(bindparam("at", type_=UTCDateTime()))
_INSTITUTION = text(
    "SELECT i.id, i.code, i.name, i.kind, i.level, i.division_code, i.access_id, "
    "i.access_secret, i.require_body_signature, i.status, "
    "EXISTS (SELECT 1 FROM his_sign_ins s WHERE s.sign_no = :s "
    "AND s.institution_code = i.code AND s.signed_out_at IS NULL) AS signed_in "
    "FROM institutions i WHERE i.access_id = :a"
)


def _not_signed_in() -> DomainError:
    return DomainError(
        code="his.not_signed_in",
        zh="未签到或签到编号无效，请先签到(9001)",
        en="sign_no is not a current sign-in of this institution; sign in with 9001",
        field="sign_no",
        status=401,
    )


@use_case
def authenticate(
    uow: UnitOfWork,
    *,
    access_id: str | None,
    timestamp: str | None,
    nonce: str | None,
    signature: str | None,
    body_sig: str | None,
    body: bytes,
    fixmedins_code: str,
    sign_no: str = "",
    needs_sign_in: bool = True,
    signed_with: tuple[str, str] = ("", ""),
) -> Caller:
    """The gateway's check of one HIS request: the headers, the institution,
    the envelope's institution and its sign-in; the nonce is claimed once.

    A request that is not authentic (no or a wrong signature, a stale
    timestamp, an unknown or suspended institution, a used nonce) changes
    nothing. An authentic one uses up its nonce even when it is then refused,
    here (another institution named, no current sign-in) or by the business
    use case that follows in its own transaction: a replay of it can never
    be answered differently.
    """
    access_id, timestamp, nonce, signature = check_headers(
        access_id=access_id, timestamp=timestamp, nonce=nonce, signature=signature
    )
    now = uow.clock.now()
    fresh = _claim(uow, access_id=access_id, nonce=nonce)
    inst = uow.session.execute(_INSTITUTION, {"a": access_id, "s": sign_no}).first()
    if inst is None:
        raise refuse("unknown", "未知的接入机构", f"unknown x-tif-paasid {access_id}")
    check_credentials(
        inst,
        timestamp=timestamp,
        nonce=nonce,
        signature=signature,
        body_sig=body_sig,
        body=body,
        now=now,
    )
    if not fresh:
        raise _replay()
    refusal = None
    if fixmedins_code != inst.code:
        refusal = DomainError(
            code="gateway.institution_mismatch",
            zh="fixmedins_code与接入凭证不符",
            en="fixmedins_code is not the institution of these credentials",
            field="fixmedins_code",
            status=403,
        )
    elif needs_sign_in and not inst.signed_in:
        refusal = _not_signed_in()
    if refusal is not None:
        uow.commit()  # the request was authentic: its nonce stays used
        raise refusal
    return Caller.of(inst, access_id, bool(inst.signed_in), signed_with)


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
    if not _same(gateway_signature(timestamp, inst.access_secret, nonce), signature):
        raise refuse("bad_signature", "签名错误", "x-tif-signature does not match")
    try:
        if _SECONDS.fullmatch(timestamp.strip()) is None:  # int() also reads "１２" and "1_2"
            raise ValueError(timestamp)
        sent = dt.datetime.fromtimestamp(int(timestamp), dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise refuse("bad_timestamp", "时间戳格式错误", "x-tif-timestamp is Unix seconds") from None
    if abs(now - sent) > WINDOW:
        raise refuse("stale", "时间戳超出5分钟", "x-tif-timestamp is more than 5 minutes off")
    if inst.require_body_signature and not _same(
        body_signature(inst.access_secret, body), body_sig
    ):
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


def _replay() -> DomainError:
    return refuse("replay", "重复的请求(nonce已使用)", "replayed request: nonce already used")


def _claim(uow: UnitOfWork, *, access_id: str, nonce: str) -> bool:
    """One statement; the unique key decides, whichever server got the first."""
    claimed = uow.session.execute(_CLAIM, {"a": access_id, "n": nonce, "at": uow.clock.now()})
    return claimed.first() is not None


def claim_nonce(uow: UnitOfWork, *, access_id: str, nonce: str) -> None:
    """Claim a nonce inside the caller's transaction; a used one is refused."""
    if not _claim(uow, access_id=access_id, nonce=nonce):
        raise _replay()


def purge_nonces(uow: UnitOfWork) -> int:
    """Nonces older than the window can never be accepted again anyway."""
    cutoff = uow.clock.now() - 2 * WINDOW
    result = uow.session.execute(delete(HisNonce).where(HisNonce.at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
