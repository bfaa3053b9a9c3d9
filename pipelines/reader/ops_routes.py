"""The reader's operations routes, open without a key: health (database and live batch) and
the Prometheus metrics."""

import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from pipelines.reader.dependencies import PoolDep, ReaderDep
from pipelines.reader.http_errors import DB_ERRORS
from pipelines.reader.schemas import HealthOut

log = logging.getLogger(__name__)


def router() -> APIRouter:
    routes = APIRouter()

    @routes.get("/v1/health", response_model=HealthOut, responses={503: {"model": HealthOut}}, tags=["operations"])
    async def health(reader: ReaderDep, pool: PoolDep) -> Any:
        """Database reachable, and the live batch with its age in seconds. 503 when the
        database cannot be reached or nothing is published."""
        try:
            row = await reader.sql.health(pool)
        except DB_ERRORS as exc:
            log.error("reader: health check failed: %s: %s", type(exc).__name__, exc)
            return JSONResponse(HealthOut(status="database_unavailable", database=False).model_dump(), 503)
        if row is None or row["batch_id"] is None:
            return JSONResponse(HealthOut(status="no_live_batch", database=True).model_dump(), 503)
        reader.metrics.saw_batch(row["batch_id"], row["created_at"])
        return HealthOut(
            status="ok",
            database=True,
            live_batch_id=row["batch_id"],
            live_batch_age_s=round(row["age_s"], 3),
            model_version=row["model_version"],
            switched_at=row["switched_at"],
        )

    @routes.get("/metrics", include_in_schema=False)
    async def prometheus(reader: ReaderDep) -> Response:
        body, content_type = reader.metrics.render()
        return Response(body, media_type=content_type)

    return routes
