"""The bare apps the reader benchmark measures the reader against (module level, so that
``uvicorn pipelines.bench.bare_app:app`` can serve them).

- ``app`` (target ``bare``): the reader's route and a constant body shaped like the reader's
  (10 items) returned as a dict, no database, no auth, no metrics: the "FastAPI ceiling" of
  the stack notes, which the reader's targets are measured against;
- ``model_app`` (target ``bare-model``): the same constant through the reader's response
  model. FastAPI then serialises with pydantic straight to JSON bytes (as for the reader)
  instead of ``jsonable_encoder``, which is ~2.5x cheaper: the real framework ceiling.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from pipelines.bench.servers import ROUTE
from pipelines.reader.schemas import RecommendationsOut

_CATEGORIES = ("sports", "politics", "health", "finance", "travel")
BARE_BODY: dict[str, Any] = {
    "user_id": 1,
    "batch_id": 1,
    "model_version": "bench-bare",
    "generated_at": "2026-01-01T03:00:00Z",
    "fallback": False,
    "region": "NA",
    "arm": None,
    "items": [
        {
            "rank": rank,
            "article_id": 1_000_000 + rank,
            "title": f"A constant headline, number {rank}, of a usual length",
            "url": f"https://news.example.com/{_CATEGORIES[rank % 5]}/{1_000_000 + rank}",
            "category": _CATEGORIES[rank % 5],
            "score": round(1.0 - rank / 20, 4),
            "reason": f"Because you read {_CATEGORIES[rank % 5].title()}",
        }
        for rank in range(1, 11)
    ],
}
_BARE_MODEL = RecommendationsOut.model_validate(BARE_BODY)

# ``bare``: the constant as a plain dict, which FastAPI encodes with jsonable_encoder and
# json.dumps (the "FastAPI ceiling" of the stack notes is this kind of endpoint).
app = FastAPI(title="newsrec bench: bare FastAPI", docs_url=None, redoc_url=None, openapi_url=None)


@app.get(ROUTE)
async def bare_recommendations(user_id: int):  # no return annotation: no response model
    """The reader's route and response shape, from a constant: no database, key or metrics."""
    return BARE_BODY


# ``bare-model``: the same constant through the reader's response model, so FastAPI
# serialises it with pydantic straight to JSON bytes, as it does the reader's lists: what
# the reader would cost if the database, the API key and the metrics were free.
model_app = FastAPI(title="newsrec bench: bare FastAPI, response model", docs_url=None, redoc_url=None,
                    openapi_url=None)  # fmt: skip


@model_app.get(ROUTE, response_model=RecommendationsOut)
async def bare_model_recommendations(user_id: int) -> RecommendationsOut:
    """The reader's route, response model and serialisation, from a constant."""
    return _BARE_MODEL
