"""The reader's statements (named files in sql/queries, asyncpg placeholders) as small
async functions over a connection pool."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipelines.core.sql import load


@dataclass
class ServedList:
    batch_id: int
    model_version: str
    generated_at: datetime
    fallback: bool
    region: str | None
    arm: str | None
    items: list[dict[str, Any]] = field(default_factory=list)


class ReaderQueries:
    """Loads the SQL once; each method is one round trip."""

    def __init__(self) -> None:
        self.recommendations_sql = load("reader_recommendations")
        self.health_sql = load("reader_health")
        self.api_key_sql = load("reader_api_key")

    async def recommendations(self, pool: Any, user_id: int, limit: int, region: str) -> ServedList | None:
        """The user's list from the live batch, else the fallback of ``region`` (else GLOBAL).
        None when no batch is live."""
        rows = await pool.fetch(self.recommendations_sql, user_id, limit, region)
        if not rows:
            return None
        head = rows[0]
        items = [
            {
                "rank": r["rank"],
                "article_id": r["article_id"],
                "title": r["title"],
                "url": r["url"],
                "category": r["category"],
                "score": r["score"],
                "reason": r["reason"],
            }
            for r in rows
            if r["rank"] is not None
        ]
        return ServedList(
            batch_id=head["batch_id"],
            model_version=head["model_version"],
            generated_at=head["created_at"],
            fallback=head["is_fallback"] is not False,
            region=head["region"] if items else region,
            arm=head["arm"],
            items=items,
        )

    async def health(self, pool: Any) -> Any:
        return await pool.fetchrow(self.health_sql)

    async def key_id(self, pool: Any, key_hash: str) -> int | None:
        return await pool.fetchval(self.api_key_sql, key_hash)
