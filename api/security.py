"""Passwords (argon2), access tokens (JWT HS256), refresh tokens (random, stored as sha256) and the
login throttle (sliding window in memory when embedded, in Redis when scaled out)."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import jwt
import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so a login takes as long whether the user exists or
    not. Computed on first use, not at import."""
    return _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    account_id: int


class TokenError(Exception):
    """Missing, malformed, forged or expired token."""


def create_access_token(principal: Principal, secret: str, now: datetime, ttl: timedelta) -> str:
    claims = {
        "sub": str(principal.user_id),
        "acct": principal.account_id,
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_access_token(token: str, secret: str, now: datetime) -> Principal:
    return verify_access_token(token, secret, now)[0]


def verify_access_token(token: str, secret: str, now: datetime) -> tuple[Principal, int]:
    """The token's principal and expiry (epoch seconds), or TokenError."""
    try:
        # Expiry is checked against the injected clock (tests control time), not the wall clock.
        claims: dict[str, Any] = _minted_claims(token, secret) or jwt.decode(
            token, secret, algorithms=["HS256"], options={"verify_exp": False, "require": ["exp", "sub"]}
        )
        if claims.get("typ") != "access":
            raise TokenError("not an access token")
        if int(claims["exp"]) <= now.timestamp():
            raise TokenError("token expired")
        return Principal(user_id=int(claims["sub"]), account_id=int(claims["acct"])), int(claims["exp"])
    except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
        raise TokenError(str(exc) or "invalid token") from exc


# The header segment of every token create_access_token mints (derived from PyJWT, so it stays in step).
_MINTED_HEADER = jwt.encode({}, "k" * 32, algorithm="HS256").partition(".")[0]
_MINTED_CLAIMS = {"sub", "acct", "typ", "iat", "exp"}


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _minted_claims(token: str, secret: str) -> dict[str, Any] | None:
    """The claims of a token that is exactly what create_access_token mints (our HS256 header, a valid
    signature, a JSON object of its claims and no others), else None and PyJWT decides, with its own error.

    Why: PyJWT spent ~55 us per token (it re-checks the key's format, parses the header as JSON, builds
    dicts): a quarter of the API's CPU in a profile of the service bench's first seconds, when most of its
    10,000 accounts' tokens are new to the TokenCache; one HMAC call and one JSON parse take ~7 us. The
    signature is compared as its base64url text in constant time, so no lenient decoding is involved, and
    any other header (another algorithm, "none") takes PyJWT's path."""
    header, _, rest = token.partition(".")
    payload, dot, signature = rest.partition(".")
    if header != _MINTED_HEADER or not dot or not token.isascii():
        return None
    expected = _b64url(hmac.digest(secret.encode(), f"{header}.{payload}".encode(), "sha256"))
    if not hmac.compare_digest(expected, signature):
        return None
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(claims, dict) or not {"exp", "sub"} <= claims.keys() <= _MINTED_CLAIMS:
        return None
    iat = claims.get("iat")
    if iat is not None and not (isinstance(iat, int) and iat <= time.time()):
        return None  # PyJWT refuses an iat in the wall clock's future; let it say so
    return claims


class TokenCache:
    """Access tokens whose signature and claims have been verified, with their expiry.

    Why: a client sends the same token with every request until it expires, and verifying its HMAC and
    parsing its claims was about a tenth of the API's CPU per order. Expiry is still checked against the
    clock on every use; only tokens that verified are kept, and a full cache is simply emptied."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self._max = max_entries
        self._verified: dict[str, tuple[Principal, int]] = {}

    def principal(self, token: str, secret: str, now: datetime) -> Principal:
        hit = self._verified.get(token)
        if hit is None:
            principal, exp = verify_access_token(token, secret, now)
            if len(self._verified) >= self._max:
                self._verified.clear()
            self._verified[token] = (principal, exp)
            return principal
        principal, exp = hit
        if exp <= now.timestamp():
            del self._verified[token]
            raise TokenError("token expired")
        return principal


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Throttle(Protocol):
    def blocked(self, key: str) -> bool: ...

    def hit(self, key: str) -> None: ...

    def clear(self, key: str) -> None: ...


class MemoryThrottle:
    """Failed attempts per key in a sliding window of `window_s` seconds (one process)."""

    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        self._limit, self._window = limit, window_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self._window:
            hits.popleft()
        return hits

    def blocked(self, key: str) -> bool:
        with self._lock:
            return len(self._prune(key, time.monotonic())) >= self._limit

    def hit(self, key: str) -> None:
        with self._lock:
            self._prune(key, time.monotonic()).append(time.monotonic())

    def clear(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)


class RedisThrottle:
    """The same sliding window in a Redis sorted set, shared by every API process."""

    def __init__(self, redis_client: Any, limit: int, window_s: float = 60.0) -> None:
        self._redis, self._limit, self._window = redis_client, limit, window_s

    @staticmethod
    def _key(key: str) -> str:
        return f"throttle:{key}"

    def blocked(self, key: str) -> bool:
        now = time.time()
        pipe = self._redis.pipeline()
        pipe.zremrangebyscore(self._key(key), 0, now - self._window)
        pipe.zcard(self._key(key))
        return int(pipe.execute()[1]) >= self._limit

    def hit(self, key: str) -> None:
        now = time.time()
        pipe = self._redis.pipeline()
        pipe.zadd(self._key(key), {f"{now}:{secrets.token_hex(4)}": now})
        pipe.expire(self._key(key), int(self._window) + 1)
        pipe.execute()

    def clear(self, key: str) -> None:
        self._redis.delete(self._key(key))
