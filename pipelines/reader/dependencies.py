"""What the reader's routes share, as FastAPI dependencies: the app's knobs, metrics,
statements and key cache (:class:`Reader`), its connection pool, and the API-key check.

Everything lives on ``app.state`` (set by :func:`pipelines.reader.app.create_app` and its
lifespan), so the route modules hold no state and several apps can live in one process (the
tests build many). The dependencies are ``async def``: FastAPI would run plain functions in
its thread pool, a thread hop per request for a dictionary lookup.

The key check and the list route, run on every list request, read the app's state with
:func:`app_state` instead: each sub-dependency FastAPI resolves costs tens of microseconds of
a request's ~0.4 ms (profiled for issue 22), for an attribute read.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from pipelines.reader.http_errors import ApiError
from pipelines.reader.keys import KeyCache
from pipelines.reader.lender import ConnectionLender
from pipelines.reader.prometheus import ReaderMetrics
from pipelines.reader.queries import ReaderQueries
from pipelines.reader.settings import ReaderParams
from pipelines.reader.warmup import ExplanationWarmup

MAX_KEY_CHARS = 256


@dataclass(frozen=True)
class Reader:
    """One app's settings and the objects built from them (``warmup``: the explanation
    warm-up started by the lifespan, read by health)."""

    params: ReaderParams
    metrics: ReaderMetrics
    sql: ReaderQueries
    keys: KeyCache
    warmup: ExplanationWarmup


async def get_reader(request: Request) -> Reader:
    return request.app.state.reader


async def get_pool(request: Request) -> ConnectionLender:
    """The app's pool (opened by the lifespan; it answers 503s while the database is down)."""
    return request.app.state.pool


def app_state(request: Request) -> tuple[Reader, ConnectionLender]:
    """The app's :class:`Reader` and pool, straight off the request (see the module's note)."""
    state = request.app.state
    return state.reader, state.pool


ReaderDep = Annotated[Reader, Depends(get_reader)]
PoolDep = Annotated[ConnectionLender, Depends(get_pool)]


class RequireKey(APIKeyHeader):
    """The ``X-API-Key`` scheme of the OpenAPI schema and the check itself, in one
    dependency: 401 unless the request carries a valid, unrevoked key. A router dependency,
    so it runs before the route's own parameters are validated: an anonymous client learns
    nothing about its input. One dependency instead of a key check over the header scheme:
    FastAPI solves each (sub-)dependency on every request (see the module's note)."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        key = request.headers.get("x-api-key")
        if not key:
            raise ApiError(401, "unauthorized", "missing API key (header X-API-Key)", {"WWW-Authenticate": "ApiKey"})
        reader, pool = app_state(request)
        if len(key) > MAX_KEY_CHARS or not await reader.keys.is_valid(
            key, lambda digest: reader.sql.key_id(pool, digest)
        ):
            raise ApiError(401, "unauthorized", "invalid or revoked API key", {"WWW-Authenticate": "ApiKey"})


# The scheme keeps the name it had as a plain APIKeyHeader: the OpenAPI schema does not change.
require_key = RequireKey(
    name="X-API-Key",
    scheme_name="APIKeyHeader",
    auto_error=False,
    description="An API key from `newsrec reader keys`",
)
