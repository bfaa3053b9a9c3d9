"""The reader's FastAPI app: recommendations by user, explanations, the bulk export, health,
Prometheus metrics, OpenAPI.

The app is assembled here from routers (one module per concern: ``recommendation_routes``,
``explanation_routes``, ``export_routes``, ``ops_routes``) that share their state through
the dependencies of :mod:`pipelines.reader.dependencies`. Errors follow
:mod:`pipelines.reader.http_errors`; the bodies are :mod:`pipelines.reader.schemas`.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI

from pipelines.reader import explanation_routes, http_errors, ops_routes, recommendation_routes, settings
from pipelines.reader.dependencies import Reader
from pipelines.reader.keys import KeyCache
from pipelines.reader.lender import ConnectionLender
from pipelines.reader.prometheus import MetricsMiddleware, ReaderMetrics
from pipelines.reader.queries import ReaderQueries
from pipelines.reader.settings import ReaderParams
from pipelines.reader.warmup import ExplanationWarmup, freeze_heap

log = logging.getLogger(__name__)


async def _open_connections(url: str, p: ReaderParams) -> ConnectionLender:
    """The app's connections, which do not need the database to be up: the app starts and
    answers 503 until the database is back (health checks tell, instead of a crash loop)."""
    lender = ConnectionLender(
        url,
        p.pool_max,
        timeout=5,
        command_timeout=p.statement_timeout_ms / 1000 + 1,
        server_settings={
            "application_name": "newsrec-reader",
            "statement_timeout": str(p.statement_timeout_ms),
            "default_transaction_read_only": "on",
            # Each statement is planned once per connection, not per execution: with array
            # parameters, PostgreSQL's default kept re-planning the list statement (custom
            # plans; ~1 ms of the server's CPU a list, against 0.18 ms with its generic plan).
            "plan_cache_mode": "force_generic_plan",
        },
    )
    try:
        await lender.open(p.pool_min)
    except (*http_errors.DB_ERRORS, asyncpg.ClientConfigurationError) as exc:
        log.error("reader: database not reachable at start (%s); answering 503 until it is", type(exc).__name__)
    return lender


def create_app(
    database_url: str | None = None, key_cache_seconds: float | None = None, warm_explanations: bool | None = None
) -> FastAPI:
    """The reader app. ``database_url`` defaults to :func:`reader_database_url` (resolved at
    startup); ``key_cache_seconds`` and ``warm_explanations`` override
    ``serving.reader.key_cache_seconds`` and ``serving.reader.warm_explanations``."""
    # Imported here: the export route brings pipelines.serving (its NDJSON lines), which
    # `import pipelines.reader.app` leaves out (tests/integration: test_reader_imports_nothing_heavy).
    from pipelines.reader import export_routes

    p = ReaderParams.from_params()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database_url or settings.reader_database_url()
        app.state.pool = await _open_connections(url, p)
        # In the background: the app answers (health: "starting") while explanations load.
        warming = asyncio.create_task(app.state.reader.warmup.start(app.state.pool), name="explanation-warmup")
        freeze_heap()
        try:
            yield
        finally:
            warming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await warming
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
    app.state.reader = Reader(
        params=p,
        metrics=ReaderMetrics(),
        sql=ReaderQueries(p.list_statements, p.list_batch_max),
        keys=KeyCache(p.key_cache_seconds if key_cache_seconds is None else key_cache_seconds),
        warmup=ExplanationWarmup(p.warm_explanations if warm_explanations is None else warm_explanations),
    )
    app.add_middleware(MetricsMiddleware, metrics=app.state.reader.metrics)
    http_errors.install(app)
    # In this order, the paths of the OpenAPI schema keep their order.
    app.include_router(recommendation_routes.router(p))
    app.include_router(ops_routes.router())
    app.include_router(explanation_routes.router())
    app.include_router(export_routes.router(p))
    return app
