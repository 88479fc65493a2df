"""Basic-auth checks against bcrypt hashes, cached briefly (bcrypt is slow on purpose)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import time

import bcrypt

CACHE_SECONDS = 60.0
CACHE_MAX = 1024
# A hash to check against for unknown users, so timing does not tell which users exist.
_DUMMY_HASH = bcrypt.hashpw(b"not a password", bcrypt.gensalt(10))


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


class BasicAuth:
    def __init__(self, users: dict[str, bytes]) -> None:
        self.users = users
        # sha256(user \0 password) → expiry; only successful checks, never the password itself
        self._ok: dict[bytes, float] = {}

    def _digest(self, user: str, password: str) -> bytes:
        return hashlib.sha256(user.encode() + b"\0" + password.encode()).digest()

    async def check(self, header: str | None) -> bool:
        creds = parse_basic(header)
        if creds is None:
            return False
        user, password = creds
        digest = self._digest(user, password)
        now = time.monotonic()
        expiry = self._ok.get(digest)
        if expiry is not None and expiry > now:
            return True
        hashed = self.users.get(user)
        ok = await asyncio.to_thread(bcrypt.checkpw, password.encode(), hashed or _DUMMY_HASH)
        ok = ok and hashed is not None
        if ok:
            if len(self._ok) >= CACHE_MAX:
                self._ok = {k: v for k, v in self._ok.items() if v > now}
                if len(self._ok) >= CACHE_MAX:
                    self._ok.clear()
            self._ok[digest] = now + CACHE_SECONDS
        return ok
