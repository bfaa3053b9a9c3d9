"""The explanation route of the reader: on-demand TreeSHAP for one recommended pair.

LightGBM, Feast and the live model are loaded at start by :mod:`pipelines.reader.warmup`
(health says ``ready`` once they are); a request before that, or for a model published
later, loads what is missing. The work runs in a thread so the event loop keeps answering
list requests meanwhile.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from starlette.concurrency import run_in_threadpool

from pipelines.core.errors import NewsrecError
from pipelines.core.sql import load
from pipelines.reader import settings
from pipelines.reader.dependencies import PoolDep, ReaderDep, require_key
from pipelines.reader.http_errors import ApiError
from pipelines.reader.schemas import ERROR_RESPONSES, MAX_ID, ExplanationOut


def router() -> APIRouter:
    routes = APIRouter(dependencies=[Depends(require_key)], tags=["recommendations"])
    pair_sql = load("reader_explanation_pair")

    @routes.get(
        "/v1/users/{user_id}/recommendations/{article_id}/explanation",
        response_model=ExplanationOut,
        responses={**ERROR_RESPONSES, 404: ERROR_RESPONSES[401]},
    )
    async def explanation(
        reader: ReaderDep,
        pool: PoolDep,
        user_id: Annotated[int, Path(ge=0, le=MAX_ID, description="The user's id")],
        article_id: Annotated[int, Path(ge=0, le=MAX_ID, description="A recommended article's id")],
    ) -> ExplanationOut:
        """Why the live model ranked this article for this user: each feature's TreeSHAP
        contribution to the score (features as of the batch's day, from the online store)."""
        row = await pool.fetchrow(pair_sql, user_id, article_id)
        if row is None:
            raise ApiError(404, "not_found", "this article is not in the user's live recommendations")
        from pipelines.serving.explanations import explain  # numpy, pandas, LightGBM, Feast: warmed at start

        try:
            result = await run_in_threadpool(
                explain,
                user_id,
                article_id,
                row["data_date"],
                row["model_version"],
                settings.reader_database_url(),
                model_key=row["model_key"],
            )
        except NewsrecError as exc:
            raise ApiError(503, "explanation_unavailable", str(exc)) from None
        reader.warmup.served(row["model_key"])
        return ExplanationOut(
            user_id=user_id,
            article_id=article_id,
            batch_id=row["batch_id"],
            rank=row["rank"],
            published_score=row["score"],
            **result,
        )

    return routes
