"""The bulk export route of the reader: the live batch as NDJSON, for the e-mail sender.

``GET /v1/recommendations/export?after_user_id=-1&limit=10000`` streams one line per user
(:mod:`pipelines.serving.ndjson`), ordered by user id. Paging is by keyset: when more users
follow, the response header ``X-Next-After-User-Id`` carries the ``after_user_id`` of the next
page; the last page has no such header. ``X-Batch-Id`` names the batch of every line.

A page is read in one read-only REPEATABLE READ transaction: the live pointer is read once and
the rows by that batch id, so a publish or rollback during the stream never mixes batches (the
open transaction also keeps a publish's pruning from dropping the batch's rows under it; the
prune is retried by the next publish). Rows come through a server-side cursor, a few thousand
at a time, so memory does not grow with the page. Pages are separate snapshots: a client that
needs one whole batch checks that ``X-Batch-Id`` stays the same from page to page.
"""

# No `from __future__ import annotations`: FastAPI reads the route signature at run time.
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from pipelines.core.sql import load
from pipelines.reader.dependencies import PoolDep, ReaderDep, require_key
from pipelines.reader.http_errors import ApiError
from pipelines.reader.lender import ConnectionLender
from pipelines.reader.prometheus import ReaderMetrics
from pipelines.reader.schemas import ERROR_RESPONSES, MAX_ID
from pipelines.reader.settings import ReaderParams
from pipelines.serving.ndjson import MEDIA_TYPE, UserLines

NEXT_HEADER = "X-Next-After-User-Id"
BATCH_HEADER = "X-Batch-Id"


class ExportQueries:
    def __init__(self) -> None:
        self.page_sql = load("reader_export_page")
        self.rows_sql = load("reader_export_rows")


@asynccontextmanager
async def export_page(
    conn: asyncpg.Connection, queries: ExportQueries, after_user_id: int, limit: int, fetch_rows: int
) -> AsyncIterator[tuple[Any, AsyncIterator[bytes]]]:
    """Inside one read-only snapshot: the page's row of ``reader_export_page`` (None when no
    batch is live) and an iterator over its lines, a chunk of bytes per round trip. The lines
    must be read before the block ends."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        page = await conn.fetchrow(queries.page_sql, after_user_id, limit)
        yield page, _lines(conn, queries, page, after_user_id, fetch_rows)


async def _lines(
    conn: asyncpg.Connection, queries: ExportQueries, page: Any, after_user_id: int, fetch_rows: int
) -> AsyncIterator[bytes]:
    if page is None or page["last_user_id"] is None:
        return
    lines = UserLines(page["batch_id"], page["model_version"])
    cursor = await conn.cursor(queries.rows_sql, page["batch_id"], after_user_id, page["last_user_id"])
    while rows := await cursor.fetch(fetch_rows):
        chunk = lines.feed(rows)
        if chunk:
            yield chunk
    tail = lines.close()
    if tail:
        yield tail


async def _no_lines() -> AsyncIterator[bytes]:
    return
    yield


class ExportResponse(StreamingResponse):
    """Opens the page when the response starts, so that its headers (next page, batch) can be
    set from the snapshot it then streams, and the pooled connection is held exactly while the
    response runs. An error before the first byte (no live batch, database down) still goes
    through the app's JSON error handlers. Its media type is set per response, not on the
    class, so the OpenAPI schema documents the error bodies as JSON (and the 200 as NDJSON)."""

    def __init__(
        self,
        pool: ConnectionLender,
        after_user_id: int,
        limit: int,
        *,
        queries: ExportQueries,
        fetch_rows: int,
        metrics: ReaderMetrics,
    ) -> None:
        super().__init__(content=_no_lines(), media_type=MEDIA_TYPE)  # the page's lines, once open
        self.pool = pool
        self.after_user_id = after_user_id
        self.limit = limit
        self.queries = queries
        self.fetch_rows = fetch_rows
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with (
            self.pool.acquire() as conn,
            export_page(conn, self.queries, self.after_user_id, self.limit, self.fetch_rows) as (page, lines),
        ):
            if page is None:
                raise ApiError(503, "no_live_batch", "no recommendations are published yet")
            self.metrics.saw_batch(page["batch_id"], page["created_at"])
            self.headers[BATCH_HEADER] = str(page["batch_id"])
            if page["more"]:
                self.headers[NEXT_HEADER] = str(page["last_user_id"])
            self.body_iterator = lines
            await super().__call__(scope, receive, send)


def router(p: ReaderParams) -> APIRouter:
    """The route, with the page sizes of ``p`` (they are part of its OpenAPI schema)."""
    routes = APIRouter(dependencies=[Depends(require_key)], tags=["recommendations"])
    queries = ExportQueries()
    documented = {
        200: {
            "description": "One JSON object per line and user, ordered by user id.",
            "content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
            "headers": {
                NEXT_HEADER: {
                    "description": "after_user_id of the next page; absent on the last page",
                    "schema": {"type": "integer"},
                },
                BATCH_HEADER: {"description": "the batch every line comes from", "schema": {"type": "integer"}},
            },
        },
        **ERROR_RESPONSES,
    }

    @routes.get("/v1/recommendations/export", response_class=ExportResponse, status_code=200, responses=documented)
    async def export(
        reader: ReaderDep,
        pool: PoolDep,
        after_user_id: Annotated[
            int, Query(ge=-1, le=MAX_ID, description="Start after this user id (-1: from the first user)")
        ] = -1,
        limit: Annotated[
            int, Query(ge=1, le=p.export_max_users, description="Users per page")
        ] = p.export_default_users,
    ) -> ExportResponse:
        """The live batch as NDJSON, one line per user: ``{"user_id", "batch_id",
        "model_version", "items": [{"rank", "article_id", "score", "reason"}, ...]}``. Page
        with ``after_user_id``: the next page starts after the ``X-Next-After-User-Id``
        header of this one; the last page has none. All lines of a response come from one
        batch (``X-Batch-Id``); when a publish switches batches between two pages, the
        header changes, and a client that needs one whole batch starts over."""
        return ExportResponse(
            pool, after_user_id, limit,
            queries=queries, fetch_rows=reader.params.export_fetch_rows, metrics=reader.metrics,
        )  # fmt: skip

    return routes
