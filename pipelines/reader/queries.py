"""The reader's statements (named files in sql/queries, asyncpg placeholders) as small
async functions over a connection pool.

List requests share round trips (:class:`ListReads`): on the benchmark's 2 cores a list
request cost ~0.23 ms of the reader's CPU and ~0.13 ms of PostgreSQL's, most of both spent
per statement (the driver's call, the protocol, the executor's start), not per row. The
requests that arrive while a statement runs wait for it to end and then go together, in one
statement over arrays. An idle reader sends each request at once, so a lone request waits
for no one; under load a request waits at most for the statement ahead of it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipelines.core.sql import load


@dataclass(frozen=True)
class ServedList:
    """A user's list as the route answers it: ``body`` is the response's JSON (built by the
    statement, see sql/queries/reader_recommendations.sql); the rest is for the metrics."""

    batch_id: int
    generated_at: datetime
    fallback: bool
    body: bytes


class ListReads:
    """The list requests of one app, sent as at most ``in_flight`` statements at a time of at
    most ``max_batch`` requests each (one statement, so one snapshot: a batch never mixes
    live batches). A failed statement fails each of its requests with the driver's error;
    a request that goes away (its client left) leaves the statement running for the others."""

    def __init__(self, sql: str, in_flight: int, max_batch: int) -> None:
        self.sql = sql
        self.in_flight = max(1, in_flight)
        self.max_batch = max(1, max_batch)
        self._waiting: list[tuple[int, int, str, asyncio.Future]] = []
        self._senders = 0
        self._tasks: set[asyncio.Task] = set()  # strong references while they run

    async def read(self, pool: Any, user_id: int, limit: int, region: str) -> ServedList | None:
        """The user's list from the live batch, else the fallback of ``region`` (else GLOBAL).
        None when no batch is live."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((user_id, limit, region, done))
        if self._senders < self.in_flight:
            self._senders += 1
            task = asyncio.get_running_loop().create_task(self._send(pool))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await done

    async def _send(self, pool: Any) -> None:
        """Send what waits, one statement after another, until nothing does."""
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
                try:
                    rows = await pool.fetch(
                        self.sql, [b[0] for b in batch], [b[1] for b in batch], [b[2] for b in batch]
                    )
                except Exception as exc:
                    for *_, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                except BaseException:  # cancelled (the app is stopping): so are its requests
                    for *_, done in batch:
                        done.cancel()
                    raise
                served: list[ServedList | None] = [None] * len(batch)
                for row in rows:
                    served[row[0] - 1] = ServedList(row[1], row[2], row[3], row[4].encode())
                for (*_, done), one in zip(batch, served, strict=True):
                    if not done.done():
                        done.set_result(one)
        finally:
            self._senders -= 1


class ReaderQueries:
    """Loads the SQL once; each method is one round trip (list reads: shared, see
    :class:`ListReads`)."""

    def __init__(self, in_flight: int = 1, max_batch: int = 64) -> None:
        self.lists = ListReads(load("reader_recommendations"), in_flight, max_batch)
        self.health_sql = load("reader_health")
        self.api_key_sql = load("reader_api_key")

    async def recommendations(self, pool: Any, user_id: int, limit: int, region: str) -> ServedList | None:
        """The user's list from the live batch, else the fallback of ``region`` (else GLOBAL).
        None when no batch is live."""
        return await self.lists.read(pool, user_id, limit, region)

    async def health(self, pool: Any) -> Any:
        return await pool.fetchrow(self.health_sql)

    async def key_id(self, pool: Any, key_hash: str) -> int | None:
        return await pool.fetchval(self.api_key_sql, key_hash)
