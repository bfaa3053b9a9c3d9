"""The reader's FastAPI app: recommendations by user, the bulk export, health, Prometheus
metrics, OpenAPI.

Every error is a JSON body ``{"error": {"code", "message"}}``; bad input is a 4xx, a
database problem a 503 whose body never carries SQL or driver text (that goes to the log).
"""

# No `from __future__ import annotations` here: FastAPI reads the route signatures at run
# time, and they refer to objects local to create_app().
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, FastAPI, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipelines.reader.keys import KeyCache
from pipelines.reader.metrics import MetricsMiddleware, ReaderMetrics
from pipelines.reader.queries import ReaderQueries
from pipelines.reader.settings import ReaderParams

log = logging.getLogger(__name__)

MAX_ID = 2**63 - 1  # bigint
MAX_KEY_CHARS = 256
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


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


class HealthOut(BaseModel):
    status: str
    database: bool
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


class ApiError(StarletteHTTPException):
    def __init__(self, status_code: int, code: str, message: str, headers: dict | None = None) -> None:
        super().__init__(status_code, message, headers)
        self.code = code


_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message, **extra}
    return JSONResponse({"error": body}, status_code=status)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's reset query (advisory unlock, CLOSE ALL, UNLISTEN, RESET
    ALL): one more round trip per request, and the reader never changes session state (its
    settings are connection parameters). asyncpg still rolls back an open transaction."""


async def _open_pool(url: str, p: ReaderParams) -> asyncpg.Pool:
    """A pool that does not need the database to be up: the app starts and answers 503
    until the database is back (health checks tell, instead of a crash loop)."""
    options = {
        "max_size": p.pool_max,
        "reset": _keep_session,
        "timeout": 5,
        "command_timeout": p.statement_timeout_ms / 1000 + 1,
        "server_settings": {
            "application_name": "newsrec-reader",
            "statement_timeout": str(p.statement_timeout_ms),
            "default_transaction_read_only": "on",
        },
    }
    try:
        return await asyncpg.create_pool(url, min_size=min(p.pool_min, p.pool_max), **options)
    except (*DB_ERRORS, asyncpg.ClientConfigurationError) as exc:
        log.error("reader: database not reachable at start (%s); answering 503 until it is", type(exc).__name__)
        return await asyncpg.create_pool(url, min_size=0, **options)


def create_app(database_url: str | None = None, key_cache_seconds: float | None = None) -> FastAPI:
    """The reader app. ``database_url`` defaults to :func:`reader_database_url` (resolved at
    startup); ``key_cache_seconds`` overrides ``serving.reader.key_cache_seconds``."""
    p = ReaderParams.from_params()
    metrics = ReaderMetrics()
    sql = ReaderQueries()
    keys = KeyCache(p.key_cache_seconds if key_cache_seconds is None else key_cache_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from pipelines.reader.settings import reader_database_url

        url = database_url or reader_database_url()
        app.state.pool = await _open_pool(url, p)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(
        title="newsrec reader",
        version="1",
        summary="Today's recommended articles per user, from the live published batch.",
        lifespan=lifespan,
        # No 307 to the path without its trailing slash: the redirect would be built from the
        # client's Host header (an open redirect), and the API has no such paths anyway.
        redirect_slashes=False,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = getattr(exc, "code", None) or _CODES.get(exc.status_code, "error")
        response = _error(exc.status_code, code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The problems without the offending input: never echo what the client sent.
        fields = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p not in ("path", "query", "header")),
             "problem": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]  # fmt: skip
        return _error(422, "invalid_request", "the request is invalid", fields=fields)

    for error_type in DB_ERRORS:

        @app.exception_handler(error_type)
        async def database_error(request: Request, exc: Exception) -> JSONResponse:
            log.error("reader: database error on %s: %s: %s", request.url.path, type(exc).__name__, exc)
            return _error(503, "database_unavailable", "the recommendation store is not reachable; retry later")

    api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key from `newsrec reader keys`")

    async def require_key(request: Request, key: Annotated[str | None, Security(api_key)] = None) -> None:
        if not key:
            raise ApiError(401, "unauthorized", "missing API key (header X-API-Key)", {"WWW-Authenticate": "ApiKey"})
        pool = request.app.state.pool
        if len(key) > MAX_KEY_CHARS or not await keys.is_valid(key, lambda digest: sql.key_id(pool, digest)):
            raise ApiError(401, "unauthorized", "invalid or revoked API key", {"WWW-Authenticate": "ApiKey"})

    errors = {401: {"model": ErrorOut}, 422: {"model": ErrorOut}, 503: {"model": ErrorOut}}

    @app.get(
        "/v1/users/{user_id}/recommendations",
        response_model=RecommendationsOut,
        responses=errors,
        dependencies=[Depends(require_key)],
        tags=["recommendations"],
    )
    async def recommendations(
        request: Request,
        user_id: Annotated[int, Path(ge=0, le=MAX_ID, description="The user's id")],
        limit: Annotated[int, Query(ge=1, le=p.max_limit, description="How many items")] = p.default_limit,
        region: Annotated[
            Region | None, Query(description="Fallback list for users without a personal list (default GLOBAL)")
        ] = None,
    ) -> RecommendationsOut:
        """The user's ranked list from the live batch; users without one get the fallback
        list of ``region`` (or GLOBAL), marked ``fallback: true``."""
        served = await sql.recommendations(request.app.state.pool, user_id, limit, (region or Region.GLOBAL).value)
        if served is None:
            raise ApiError(503, "no_live_batch", "no recommendations are published yet")
        metrics.saw_batch(served.batch_id, served.generated_at)
        metrics.lists.labels("fallback" if served.fallback else "personal").inc()
        return RecommendationsOut(user_id=user_id, **served.__dict__)

    @app.get("/v1/health", response_model=HealthOut, responses={503: {"model": HealthOut}}, tags=["operations"])
    async def health(request: Request) -> Any:
        """Database reachable, and the live batch with its age in seconds. 503 when the
        database cannot be reached or nothing is published."""
        try:
            row = await sql.health(request.app.state.pool)
        except DB_ERRORS as exc:
            log.error("reader: health check failed: %s: %s", type(exc).__name__, exc)
            return JSONResponse(HealthOut(status="database_unavailable", database=False).model_dump(), 503)
        if row is None or row["batch_id"] is None:
            return JSONResponse(HealthOut(status="no_live_batch", database=True).model_dump(), 503)
        metrics.saw_batch(row["batch_id"], row["created_at"])
        return HealthOut(
            status="ok",
            database=True,
            live_batch_id=row["batch_id"],
            live_batch_age_s=round(row["age_s"], 3),
            model_version=row["model_version"],
            switched_at=row["switched_at"],
        )

    from pipelines.reader.explanations import add_explanation_route

    add_explanation_route(app, require_key, ApiError, errors)

    from pipelines.reader.export import add_export_route

    add_export_route(app, require_key, ApiError, errors, p, metrics)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return app
