"""The reader's API-key cache: concurrent checks of one key share one database lookup, a check
whose request goes away leaves the others to check again, a failed lookup fails its waiters."""

from __future__ import annotations

import asyncio

import pytest

from pipelines.reader.keys import KeyCache


def test_concurrent_checks_of_a_key_share_one_lookup_and_the_answer_is_cached():
    calls: list[str] = []

    async def lookup(digest: str) -> int | None:
        calls.append(digest)
        await asyncio.sleep(0.01)
        return 1

    async def go() -> list[bool]:
        cache = KeyCache(60)
        first = await asyncio.gather(*(cache.is_valid("k", lookup) for _ in range(20)))
        return [*first, await cache.is_valid("k", lookup)]

    assert asyncio.run(go()) == [True] * 21
    assert len(calls) == 1


def test_an_unknown_key_is_refused_and_never_cached():
    calls: list[str] = []

    async def lookup(digest: str) -> int | None:
        calls.append(digest)
        return None

    async def go() -> list[bool]:
        cache = KeyCache(60)
        return [await cache.is_valid("bad", lookup), await cache.is_valid("bad", lookup)]

    assert asyncio.run(go()) == [False, False]
    assert len(calls) == 2


def test_waiters_check_again_when_the_first_check_is_cancelled_and_share_a_failure():
    started = []

    async def slow(digest: str) -> int | None:
        started.append(digest)
        await asyncio.sleep(10 if len(started) == 1 else 0.01)
        return 1

    async def cancelled_first() -> tuple[bool, int]:
        cache = KeyCache(60)
        leader = asyncio.create_task(cache.is_valid("k", slow))
        await asyncio.sleep(0.01)  # the leader is asking the database
        waiter = asyncio.create_task(cache.is_valid("k", slow))
        await asyncio.sleep(0.01)
        leader.cancel()
        return await waiter, len(started)

    assert asyncio.run(cancelled_first()) == (True, 2)

    async def broken(digest: str) -> int | None:
        await asyncio.sleep(0.01)
        raise ConnectionError("database down")

    async def failing() -> list:
        cache = KeyCache(60)
        return await asyncio.gather(*(cache.is_valid("k", broken) for _ in range(3)), return_exceptions=True)

    out = asyncio.run(failing())
    assert all(isinstance(e, ConnectionError) for e in out)
    with pytest.raises(ConnectionError):
        asyncio.run(KeyCache(60).is_valid("k", broken))
