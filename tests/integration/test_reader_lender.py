"""The reader's connection lender against a real PostgreSQL: a bounded set of connections
shared by concurrent requests, reused after a server error, replaced after a cancelled round
trip or a transaction left open, and usable again once the database is reachable."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from pipelines.reader.lender import ConnectionLender


@pytest.fixture
def url(pg_server):
    return pg_server.format(db="postgres")


def test_concurrent_requests_share_at_most_size_connections(url):
    async def main() -> tuple[set[int], int]:
        lender = ConnectionLender(url, 3)
        await lender.open(1)
        try:
            pids = await asyncio.gather(
                *(lender.fetchval("SELECT pg_backend_pid() FROM pg_sleep(0.02)") for _ in range(30))
            )
            return set(pids), lender._opened
        finally:
            await lender.close()

    pids, opened = asyncio.run(main())
    assert len(pids) == 3 and opened == 3  # all three lent, none more


def test_a_server_error_keeps_the_connection_a_cancel_replaces_it(url):
    async def main() -> None:
        lender = ConnectionLender(url, 1)
        try:
            first = await lender.fetchval("SELECT pg_backend_pid()")
            with pytest.raises(asyncpg.DivisionByZeroError):
                await lender.fetchval("SELECT 1 / 0")
            assert await lender.fetchval("SELECT pg_backend_pid()") == first
            # Cancelled in the middle of its round trip: the connection is in doubt, terminated.
            slow = asyncio.create_task(lender.fetchval("SELECT pg_sleep(5)"))
            await asyncio.sleep(0.2)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            again = await lender.fetchval("SELECT pg_backend_pid()")
            assert again != first
            # A connection handed back inside a transaction is not lent again either.
            async with lender.acquire() as conn:
                await conn.execute("BEGIN")
            assert await lender.fetchval("SELECT pg_backend_pid()") not in (first, again)
            assert lender._opened == 1 and len(lender._idle) == 1
        finally:
            await lender.close()

    asyncio.run(main())


def test_waiters_get_the_connection_of_a_dropped_one(url):
    """One connection, three requests: the first is cancelled while the others wait; they
    still get answers (the right to open a replacement passes to a waiter)."""

    async def main() -> list[int]:
        lender = ConnectionLender(url, 1)
        try:
            slow = asyncio.create_task(lender.fetchval("SELECT pg_sleep(5)"))
            await asyncio.sleep(0.2)
            waiting = [asyncio.create_task(lender.fetchval("SELECT 7")) for _ in range(2)]
            await asyncio.sleep(0.1)
            slow.cancel()
            results = await asyncio.wait_for(asyncio.gather(*waiting), 10)
            assert lender._opened == 1
            return results
        finally:
            await lender.close()

    assert asyncio.run(main()) == [7, 7]


def test_an_unreachable_database_fails_each_request_then_recovers(url):
    async def main() -> None:
        lender = ConnectionLender("postgresql://nobody@127.0.0.1:1/nowhere", 2, timeout=2)
        with pytest.raises(OSError):
            await lender.fetchval("SELECT 1")
        with pytest.raises(OSError):
            await lender.fetchval("SELECT 1")
        assert lender._opened == 0  # the failed connects gave their places back
        lender.url = url  # the database is back
        assert await lender.fetchval("SELECT 1") == 1
        await lender.close()
        with pytest.raises(asyncpg.InterfaceError):
            await lender.fetchval("SELECT 1")

    asyncio.run(main())
