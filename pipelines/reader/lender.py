"""The reader's database connections: a few asyncpg connections, each lent to one request at a
time.

asyncpg's pool costs tens of microseconds a checkout on the reader's ~0.3 ms of CPU a list
request (profiled for issue 22): an acquire through an asyncio queue and a holder, a release
run in a task of its own under ``asyncio.shield``, timers for idle connections. The reader
needs less: its statements are single round trips outside transactions (asyncpg keeps each
one prepared per connection) and its session never changes (its settings are connection
parameters), so a checkout here is a ``list.pop`` and a return a ``list.append`` (or the
hand-over to the oldest waiting request).

A connection whose use ended in anything but a PostgreSQL error (a lost socket, a cancelled
request in the middle of a round trip) or still in a transaction is terminated instead of
returned; a later request opens a new one. Connections open lazily, up to ``size``: the app
starts and answers 503 while the database is down, and recovers when it is back.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import asyncpg

# What leaves a connection in doubt (besides a cancellation): it is terminated, not returned.
_BROKEN = (asyncpg.InterfaceError, OSError, TimeoutError)


class ConnectionLender:
    def __init__(self, url: str, size: int, **connect_options: Any) -> None:
        self.url = url
        self.size = max(1, size)
        self.connect_options = connect_options
        self._idle: list[asyncpg.Connection] = []
        self._waiters: collections.deque[asyncio.Future] = collections.deque()
        self._opened = 0  # connections open, being opened, or promised to a waiter to open
        self._closed = False

    async def open(self, count: int) -> None:
        """Open ``count`` connections now (the first requests then need no connect)."""
        for _ in range(min(count, self.size) - self._opened):
            self._opened += 1
            try:
                conn = await asyncpg.connect(self.url, **self.connect_options)
            except BaseException:
                self._opened -= 1
                raise
            self._give(conn)

    async def _take(self) -> asyncpg.Connection:
        if self._closed:
            raise asyncpg.InterfaceError("the reader's connections are closed")
        if self._idle:
            return self._idle.pop()
        if self._opened >= self.size:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                conn = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # handed over just as it was cancelled
                    self._pass_on(waiter.result())
                raise
            if conn is not None:
                return conn
            # None: a connection was dropped; this waiter opens its replacement (counted already).
        else:
            self._opened += 1
        try:
            return await asyncpg.connect(self.url, **self.connect_options)
        except BaseException:
            self._pass_on(None)
            raise

    def _pass_on(self, conn: asyncpg.Connection | None) -> None:
        """Hand ``conn`` (None: the right to open one) to the oldest waiter, else keep it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if conn is None:
            self._opened -= 1
        elif self._closed:
            self._opened -= 1
            conn.terminate()
        else:
            self._idle.append(conn)

    def _give(self, conn: asyncpg.Connection) -> None:
        if conn.is_closed() or conn.is_in_transaction():
            self._drop(conn)
        else:
            self._pass_on(conn)

    def _drop(self, conn: asyncpg.Connection) -> None:
        if not conn.is_closed():
            conn.terminate()
        self._pass_on(None)

    async def _run(self, method: str, sql: str, args: tuple) -> Any:
        conn = await self._take()
        try:
            result = await getattr(conn, method)(sql, *args)
        except asyncpg.PostgresError:
            self._give(conn)  # the server refused the statement; the connection is fine
            raise
        except BaseException:
            self._drop(conn)
            raise
        self._give(conn)
        return result

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await self._run("fetch", sql, args)

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        return await self._run("fetchrow", sql, args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._run("fetchval", sql, args)

    def acquire(self) -> _Lent:
        """``async with lender.acquire() as conn``: one connection for several statements (the
        export's transaction and cursor)."""
        return _Lent(self)

    async def close(self) -> None:
        """Close the idle connections; those lent out are terminated when they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._opened -= 1
            try:
                await asyncio.wait_for(conn.close(), 5)
            except (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresError):
                conn.terminate()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the reader's connections are closed"))


class _Lent:
    def __init__(self, lender: ConnectionLender) -> None:
        self.lender = lender
        self.conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        self.conn = await self.lender._take()
        return self.conn

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        if exc_type is None or (issubclass(exc_type, Exception) and not issubclass(exc_type, _BROKEN)):
            self.lender._give(conn)  # still in a transaction: dropped there
        else:
            self.lender._drop(conn)
