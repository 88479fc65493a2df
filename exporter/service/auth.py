"""Basic-auth checks against bcrypt hashes, cached (bcrypt is slow on purpose) and bounded.

- A successful check is cached for CACHE_SECONDS after its last use (sliding): a scraping Prometheus
  hashes once, then never waits behind anyone else's bcrypt.
- A failed check is cached too (FAILURE_CACHE_SECONDS): repeating a wrong password costs no bcrypt.
- At most MAX_CONCURRENT_HASHES bcrypt checks run at once (one core at most); beyond MAX_WAITING_HASHES
  queued checks a request is answered 429 without hashing (AuthBusy).
- A password bcrypt cannot check (over 72 bytes) is simply wrong: 401, never 500.
Only sha256(user \\0 password) digests are kept, never a password.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import time

import bcrypt

CACHE_SECONDS = 300.0  # longer than any scrape interval: a scraping Prometheus stays cached
FAILURE_CACHE_SECONDS = 60.0
CACHE_MAX = 1024
MAX_CONCURRENT_HASHES = 1
MAX_WAITING_HASHES = 32
# A hash to check against for unknown users, so timing does not tell which users exist.
_DUMMY_HASH = bcrypt.hashpw(b"not a password", bcrypt.gensalt(10))


class AuthBusy(Exception):
    """Too many password checks queued: answer 429 rather than queue more bcrypt work."""


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic ...` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # e.g. longer than bcrypt's 72 bytes: not a password that can match
        return False


def _remember(cache: dict[bytes, float], digest: bytes, expiry: float, now: float) -> None:
    if len(cache) >= CACHE_MAX:
        for key in [k for k, v in cache.items() if v <= now]:
            del cache[key]
        if len(cache) >= CACHE_MAX:
            cache.clear()
    cache[digest] = expiry


class BasicAuth:
    def __init__(self, users: dict[str, bytes]) -> None:
        self.users = users
        self._ok: dict[bytes, float] = {}  # digest → expiry
        self._failed: dict[bytes, float] = {}
        self._hashing: asyncio.Semaphore | None = None  # made in the running loop
        self._waiting = 0
        self.hashes = 0  # bcrypt checks run (tests and debugging)

    def _digest(self, user: str, password: str) -> bytes:
        return hashlib.sha256(user.encode() + b"\0" + password.encode()).digest()

    async def authenticate(self, header: str | None) -> str | None:
        """The user a valid `Authorization` header names, else None; raises AuthBusy when overloaded."""
        creds = parse_basic(header)
        if creds is None:
            return None
        user, password = creds
        digest = self._digest(user, password)
        now = time.monotonic()
        expiry = self._ok.get(digest)
        if expiry is not None and expiry > now:
            self._ok[digest] = now + CACHE_SECONDS
            return user
        failed = self._failed.get(digest)
        if failed is not None and failed > now:
            return None
        if self._waiting >= MAX_WAITING_HASHES:
            raise AuthBusy
        if self._hashing is None:
            self._hashing = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
        hashed = self.users.get(user)
        self._waiting += 1
        try:
            async with self._hashing:
                now = time.monotonic()  # another request may have checked the same pair meanwhile
                if self._ok.get(digest, 0) > now:
                    return user
                if self._failed.get(digest, 0) > now:
                    return None
                self.hashes += 1
                ok = await asyncio.to_thread(_checkpw, password.encode(), hashed or _DUMMY_HASH)
        finally:
            self._waiting -= 1
        ok = ok and hashed is not None
        now = time.monotonic()
        if ok:
            _remember(self._ok, digest, now + CACHE_SECONDS, now)
            return user
        _remember(self._failed, digest, now + FAILURE_CACHE_SECONDS, now)
        return None
