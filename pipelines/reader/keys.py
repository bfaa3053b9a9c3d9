"""API keys of the reader: random tokens shown once, stored only as their sha256.

Managing keys (create, revoke, list) goes through the main database role; the reader only
checks hashes, with a short in-process cache so a revocation takes effect within seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipelines.core import sql as queries
from pipelines.core.errors import NewsrecError

PREFIX_CHARS = 6


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    key_id: int
    name: str
    prefix: str | None
    created_at: datetime
    revoked_at: datetime | None


def create_key(name: str) -> tuple[int, str]:
    """A new key for ``name``: returns (key_id, key). The key itself is not stored."""
    from pipelines.core import db

    name = name.strip()
    if not name or len(name) > 200:
        raise NewsrecError("a key needs a name of 1 to 200 characters")
    key = secrets.token_urlsafe(32)
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            queries.load("reader_key_insert"),
            (name, hash_key(key), key[:PREFIX_CHARS]),
        )
        key_id = int(cur.fetchone()[0])
    return key_id, key


def revoke_key(key_id: int) -> None:
    from pipelines.core import db

    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("reader_key_revoked_for_update"), (key_id,))
        row = cur.fetchone()
        if row is None:
            raise NewsrecError(f"no API key with id {key_id}")
        if row[0] is not None:
            raise NewsrecError(f"API key {key_id} was already revoked at {row[0]:%Y-%m-%d %H:%M:%S %Z}")
        cur.execute(queries.load("reader_key_revoke"), (key_id,))


def list_keys() -> list[KeyInfo]:
    from pipelines.core import db

    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("reader_keys_list"))
        return [KeyInfo(*row) for row in cur.fetchall()]


class _CheckAbandoned(Exception):
    """The request checking a key was cancelled before the database answered."""


class KeyCache:
    """Valid keys seen recently, each trusted for ``ttl_s`` seconds only. Looked up by the key
    itself, so a request with a cached key costs a dictionary lookup, not a sha256 (the key
    is in this process's memory with each request anyway; only its hash is ever stored)."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._valid_until: dict[str, float] = {}
        # one database check per key at a time: when a busy key's entry expires, the requests
        # that find it expired wait for the first one's check instead of each taking a
        # connection for the same answer (32 at once at 32 connections)
        self._checking: dict[str, asyncio.Future] = {}

    async def is_valid(self, key: str, fetch_key_id: Any) -> bool:
        """``fetch_key_id(hash)`` asks the database (None when unknown or revoked)."""
        while True:
            if self._valid_until.get(key, 0.0) > time.monotonic():
                return True
            pending = self._checking.get(key)
            if pending is None:
                break
            try:
                return await asyncio.shield(pending)  # shielded: a waiter that leaves cancels only itself
            except _CheckAbandoned:
                continue  # the check's own request went away mid-check: check again
        pending = self._checking[key] = asyncio.get_running_loop().create_future()
        try:
            valid = await fetch_key_id(hash_key(key)) is not None
        except BaseException as exc:
            pending.set_exception(exc if isinstance(exc, Exception) else _CheckAbandoned())
            pending.exception()  # retrieved: nobody may be waiting
            raise
        finally:
            del self._checking[key]
        if not valid:
            self._valid_until.pop(key, None)
        elif self.ttl_s > 0:
            if len(self._valid_until) > 10_000:  # keys are few; this only bounds a leak
                self._valid_until.clear()
            self._valid_until[key] = time.monotonic() + self.ttl_s
        pending.set_result(valid)
        return valid
