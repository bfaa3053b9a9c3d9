"""The reader's HTTP contract: the bodies it answers with (and documents in its OpenAPI
schema), in one place so a change to the contract shows up in one diff."""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

MAX_ID = 2**63 - 1  # ids are bigint


class Region(StrEnum):
    LATAM = "LATAM"
    AFRICA = "AFRICA"
    NA = "NA"
    GLOBAL = "GLOBAL"


class Item(BaseModel):
    rank: int
    article_id: int
    title: str
    url: str
    category: str
    score: float
    reason: str


class RecommendationsOut(BaseModel):
    user_id: int
    batch_id: int
    model_version: str
    generated_at: datetime
    fallback: bool = Field(description="true: the user has no personal list; a regional or GLOBAL list")
    region: str | None
    arm: str | None = Field(None, description="experiment arm of the list, when the batch has one")
    items: list[Item]


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


class HealthOut(BaseModel):
    status: str = Field(
        description="ok | starting (explanations still warming up) | database_unavailable | no_live_batch;"
        " HTTP 503 unless ok"
    )
    database: bool
    ready: bool = Field(
        description="the start-up warm-up of explanations has finished (loaded or not): false means HTTP 503"
    )
    explanations: str = Field(description="warming | ready | unavailable | off (not warmed at start)")
    explanations_detail: str | None = Field(
        None, description="what the warm-up is waiting on, or why explanations are unavailable"
    )
    live_batch_id: int | None = None
    live_batch_age_s: float | None = None
    model_version: str | None = None
    switched_at: datetime | None = None


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[dict[str, str]] | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail


# What every keyed route documents besides its 200: the bodies of its errors.
ERROR_RESPONSES = {401: {"model": ErrorOut}, 422: {"model": ErrorOut}, 503: {"model": ErrorOut}}
