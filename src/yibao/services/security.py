"""Password and PIN hashing (argon2), and opaque tokens (stored as SHA-256)."""

from __future__ import annotations

import hashlib
import secrets
from functools import lru_cache

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_profile = "default"


def configure(profile: str) -> None:
    """Pick the argon2 cost: "default" (RFC 9106 low-memory) or "fast" for tests."""
    global _profile
    if profile not in ("default", "fast"):
        raise ValueError(f"unknown argon2 profile {profile!r}")
    _profile = profile
    _hasher.cache_clear()


@lru_cache(maxsize=2)
def _hasher() -> PasswordHasher:
    if _profile == "fast":
        return PasswordHasher.from_parameters(profiles.CHEAPEST)
    return PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)


def hash_secret(secret: str) -> str:
    return _hasher().hash(secret)


def verify_secret(stored: str | None, given: str) -> bool:
    if not stored:
        return False
    try:
        return _hasher().verify(stored, given)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_pin() -> str:
    return f"{secrets.randbelow(10**6):06d}"
