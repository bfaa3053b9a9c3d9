"""The reader's main route: a user's ranked list from the live batch (or a fallback list).

The body is the JSON of :class:`~pipelines.reader.schemas.RecommendationsOut`, written by the
statement itself (sql/queries/reader_recommendations.sql) and answered as it comes: no rows
to decode, no model to validate and serialise again, the largest share of a request's work
once FastAPI has validated its input. The route still declares the model as its
``response_model``, so the OpenAPI schema and /docs document the same contract, and
tests/integration/test_reader.py checks that the bodies are the JSON the model wrote.
"""

# No `from __future__ import annotations` in the route modules: FastAPI reads the route
# signatures at run time, and they refer to objects local to router().
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from pipelines.reader.dependencies import app_state, require_key
from pipelines.reader.http_errors import ApiError
from pipelines.reader.schemas import ERROR_RESPONSES, MAX_ID, RecommendationsOut, Region
from pipelines.reader.settings import ReaderParams

MEDIA_TYPE = "application/json"  # what FastAPI answers a response model with


def router(p: ReaderParams) -> APIRouter:
    """The route, with the limits of ``p`` (they are part of its OpenAPI schema)."""
    routes = APIRouter(dependencies=[Depends(require_key)], tags=["recommendations"])

    @routes.get("/v1/users/{user_id}/recommendations", response_model=RecommendationsOut, responses=ERROR_RESPONSES)
    async def recommendations(
        request: Request,
        user_id: Annotated[int, Path(ge=0, le=MAX_ID, description="The user's id")],
        limit: Annotated[int, Query(ge=1, le=p.max_limit, description="How many items")] = p.default_limit,
        region: Annotated[
            Region | None, Query(description="Fallback list for users without a personal list (default GLOBAL)")
        ] = None,
    ) -> Response:
        """The user's ranked list from the live batch; users without one get the fallback
        list of ``region`` (or GLOBAL), marked ``fallback: true``."""
        reader, pool = app_state(request)
        served = await reader.sql.recommendations(pool, user_id, limit, (region or Region.GLOBAL).value)
        if served is None:
            raise ApiError(503, "no_live_batch", "no recommendations are published yet")
        reader.metrics.saw_batch(served.batch_id, served.generated_at)
        reader.metrics.served_list(served.fallback)
        return Response(served.body, media_type=MEDIA_TYPE)

    return routes
