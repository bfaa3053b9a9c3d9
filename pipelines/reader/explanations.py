"""The explanation route of the reader: on-demand TreeSHAP for one recommended pair.

The first call loads LightGBM and Feast (a few seconds); they stay loaded afterwards. The
work runs in a thread so the event loop keeps answering list requests meanwhile.
"""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Request
from pydantic import BaseModel

from pipelines.core.sql import load

MAX_ID = 2**63 - 1


class Contribution(BaseModel):
    feature: str
    value: float | None
    contribution: float


class ExplanationOut(BaseModel):
    user_id: int
    article_id: int
    batch_id: int
    model_version: str
    rank: int
    published_score: float
    score: float
    base_value: float
    contributions: list[Contribution]


def add_explanation_route(app: FastAPI, require_key: Any, api_error: type, responses: dict) -> None:
    pair_sql = load("reader_explanation_pair")

    @app.get(
        "/v1/users/{user_id}/recommendations/{article_id}/explanation",
        response_model=ExplanationOut,
        responses={**responses, 404: responses.get(401, {})},
        dependencies=[Depends(require_key)],
        tags=["recommendations"],
    )
    async def explanation(
        request: Request,
        user_id: Annotated[int, Path(ge=0, le=MAX_ID, description="The user's id")],
        article_id: Annotated[int, Path(ge=0, le=MAX_ID, description="A recommended article's id")],
    ) -> ExplanationOut:
        """Why the live model ranked this article for this user: each feature's TreeSHAP
        contribution to the score (features as of the batch's day, from the online store)."""
        from starlette.concurrency import run_in_threadpool

        row = await request.app.state.pool.fetchrow(pair_sql, user_id, article_id)
        if row is None:
            raise api_error(404, "not_found", "this article is not in the user's live recommendations")
        from pipelines.core.errors import NewsrecError
        from pipelines.serving.explanations import explain
        from pipelines.reader.settings import reader_database_url

        try:
            result = await run_in_threadpool(
                explain, user_id, article_id, row["data_date"], row["model_version"], reader_database_url()
            )
        except NewsrecError as exc:
            raise api_error(503, "explanation_unavailable", str(exc)) from None
        return ExplanationOut(
            user_id=user_id,
            article_id=article_id,
            batch_id=row["batch_id"],
            rank=row["rank"],
            published_score=row["score"],
            **result,
        )
