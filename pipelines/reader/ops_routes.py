"""The reader's operations routes, open without a key: health (database and live batch) and
the Prometheus metrics."""

import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from pipelines.reader.dependencies import PoolDep, ReaderDep
from pipelines.reader.http_errors import DB_ERRORS
from pipelines.reader.schemas import HealthOut
from pipelines.reader.warmup import WARMING

log = logging.getLogger(__name__)


def router() -> APIRouter:
    routes = APIRouter()

    @routes.get("/v1/health", response_model=HealthOut, responses={503: {"model": HealthOut}}, tags=["operations"])
    async def health(reader: ReaderDep, pool: PoolDep) -> Any:
        """Database reachable, the live batch with its age in seconds, and whether the
        start-up warm-up of explanations has finished. 503 when the database cannot be
        reached, nothing is published, or the warm-up still runs (status ``starting``); a
        failed warm-up answers 200 (lists are served) with ``explanations: unavailable``."""
        state = reader.warmup.state  # read once: the warm-up thread may finish meanwhile
        warmup = {"ready": state != WARMING, "explanations": state, "explanations_detail": reader.warmup.detail}
        try:
            row = await reader.sql.health(pool)
        except DB_ERRORS as exc:
            log.error("reader: health check failed: %s: %s", type(exc).__name__, exc)
            return JSONResponse(HealthOut(status="database_unavailable", database=False, **warmup).model_dump(), 503)
        if row is None or row["batch_id"] is None:
            return JSONResponse(HealthOut(status="no_live_batch", database=True, **warmup).model_dump(), 503)
        reader.metrics.saw_batch(row["batch_id"], row["created_at"])
        body = HealthOut(
            status="ok" if warmup["ready"] else "starting",
            database=True,
            live_batch_id=row["batch_id"],
            live_batch_age_s=round(row["age_s"], 3),
            model_version=row["model_version"],
            switched_at=row["switched_at"],
            **warmup,
        )
        return body if warmup["ready"] else JSONResponse(body.model_dump(mode="json"), 503)

    @routes.get("/metrics", include_in_schema=False)
    async def prometheus(reader: ReaderDep) -> Response:
        body, content_type = reader.metrics.render()
        return Response(body, media_type=content_type)

    return routes
