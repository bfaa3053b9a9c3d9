"""The reader's statements (named files in sql/queries, asyncpg placeholders) as small
async functions over a connection pool."""

from __future__ import annotations

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


class ReaderQueries:
    """Loads the SQL once; each method is one round trip."""

    def __init__(self) -> None:
        self.recommendations_sql = load("reader_recommendations")
        self.health_sql = load("reader_health")
        self.api_key_sql = load("reader_api_key")

    async def recommendations(self, pool: Any, user_id: int, limit: int, region: str) -> ServedList | None:
        """The user's list from the live batch, else the fallback of ``region`` (else GLOBAL).
        None when no batch is live."""
        row = await pool.fetchrow(self.recommendations_sql, user_id, limit, region)
        if row is None:
            return None
        return ServedList(row[0], row[1], row[2], row[3].encode())

    async def health(self, pool: Any) -> Any:
        return await pool.fetchrow(self.health_sql)

    async def key_id(self, pool: Any, key_hash: str) -> int | None:
        return await pool.fetchval(self.api_key_sql, key_hash)
