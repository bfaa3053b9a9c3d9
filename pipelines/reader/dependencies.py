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

import asyncpg
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from pipelines.reader.http_errors import ApiError
from pipelines.reader.keys import KeyCache
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


async def get_pool(request: Request) -> asyncpg.Pool:
    """The app's pool (opened by the lifespan; it answers 503s while the database is down)."""
    return request.app.state.pool


def app_state(request: Request) -> tuple[Reader, asyncpg.Pool]:
    """The app's :class:`Reader` and pool, straight off the request (see the module's note)."""
    state = request.app.state
    return state.reader, state.pool


ReaderDep = Annotated[Reader, Depends(get_reader)]
PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]

api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key from `newsrec reader keys`")


async def require_key(request: Request, key: Annotated[str | None, Security(api_key)] = None) -> None:
    """401 unless the request carries a valid, unrevoked key. A router dependency, so it runs
    before the route's own parameters are validated: an anonymous client learns nothing
    about its input."""
    if not key:
        raise ApiError(401, "unauthorized", "missing API key (header X-API-Key)", {"WWW-Authenticate": "ApiKey"})
    reader, pool = app_state(request)
    if len(key) > MAX_KEY_CHARS or not await reader.keys.is_valid(key, lambda digest: reader.sql.key_id(pool, digest)):
        raise ApiError(401, "unauthorized", "invalid or revoked API key", {"WWW-Authenticate": "ApiKey"})
