"""The electronic medical insurance voucher (医保电子凭证): a signed,
single-use token valid for two minutes, shown as a QR code on a phone and
read by an institution's scanner (``mdtrt_cert_type`` 01).

``issue`` is the portal's use case; ``redeem`` is a step of the settlement
that reads the scanned token."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import select

from yibao.domain.actors import Actor
from yibao.domain.errors import DomainError, not_found
from yibao.services.tx import use_case
from yibao.store.models import EVoucher, Person
from yibao.store.uow import UnitOfWork

LIFETIME = dt.timedelta(minutes=2)
# After its first use, the same institution may present the token again for
# the rest of that visit (registration, fee upload, settlement).
VISIT_WINDOW = dt.timedelta(hours=12)


def _sign(secret: str, body: str) -> str:
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


@use_case
def issue(
    uow: UnitOfWork, *, channel: str, person_id: int, actor: Actor | None = None
) -> tuple[str, dt.datetime]:
    """A new token for the person, audited; returns it and when it expires.
    A person (the default actor) gets only their own."""
    if actor is None:
        person = uow.session.get(Person, person_id)
        if person is None:
            raise not_found("参保人员", "person", "person.not_found")
        actor = Actor(kind="person", id=str(person.id), division=person.division_code)
    if actor.kind != "system" and not (actor.kind == "person" and actor.id == str(person_id)):
        raise DomainError(
            code="voucher.not_own",
            zh="只能为本人生成电子凭证",
            en="a person may make an electronic voucher for themselves only",
            status=403,
        )
    now = uow.clock.now()
    expires = now + LIFETIME
    body = f"{person_id}.{int(expires.timestamp())}.{secrets.token_urlsafe(9)}"
    token = f"YB1.{body}.{_sign(uow.settings.effective_secret_key, body)}"
    uow.session.add(
        EVoucher(
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            person_id=person_id,
            issued_at=now,
            expires_at=expires,
            channel=channel,
        )
    )
    uow.session.flush()
    uow.audit(actor.record(channel=channel, action="voucher.issue", person_id=person_id))
    return token, expires


def _bad(code: str, zh: str, en: str) -> DomainError:
    return DomainError(code=f"voucher.{code}", zh=zh, en=en, field="mdtrt_cert_no", status=422)


def redeem(uow: UnitOfWork, *, token: str, institution: str) -> int:
    """Read a scanned token: returns the person's id and marks it used by this
    institution. An expired, forged or already used token is refused."""
    parts = (token or "").strip().split(".")
    # a token is ASCII: anything else is no token (and hmac compares only ASCII text)
    if len(parts) != 5 or parts[0] != "YB1" or not token.isascii():
        raise _bad("invalid", "电子凭证无效", "not a valid electronic voucher")
    body = ".".join(parts[1:4])
    if not hmac.compare_digest(parts[4], _sign(uow.settings.effective_secret_key, body)):
        raise _bad("invalid", "电子凭证无效", "not a valid electronic voucher")
    now = uow.clock.now()
    row = uow.session.execute(
        select(EVoucher)
        .where(EVoucher.token_hash == hashlib.sha256(token.strip().encode()).hexdigest())
        .with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise _bad("invalid", "电子凭证无效", "not a valid electronic voucher")
    if row.used_at is not None:
        if row.used_by == institution and now - row.used_at < VISIT_WINDOW:
            return row.person_id  # the same visit presenting it again
        raise _bad(
            "used",
            "电子凭证已使用，请刷新二维码",
            "the voucher was already used; refresh the QR code",
        )
    if now >= row.expires_at:
        raise _bad(
            "expired",
            "电子凭证已过期，请刷新二维码",
            "the voucher has expired; refresh the QR code",
        )
    row.used_at = now
    row.used_by = institution
    return row.person_id
