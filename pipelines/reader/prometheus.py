"""Prometheus metrics of the reader: requests and latency by route template and status.

Each app gets its own registry (tests build several apps in one process). With several
uvicorn workers (``serving.reader.workers``), ``newsrec reader serve`` starts them in
prometheus_client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` names a fresh folder for
that start, every worker writes its samples there, and ``/metrics``, whichever worker
answers it, adds up all of them (the live-batch gauges: the value set most recently).
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The folder of multiprocess mode, when prometheus_client was imported in it."""
    return None if values.ValueClass is values.MutexValue else os.environ.get(MULTIPROC_ENV)


_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ReaderMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["method", "route", "status"]
        self.requests = Counter(
            "newsrec_reader_requests", "HTTP requests by route template and status", labels, registry=self.registry
        )
        self.latency = Histogram(
            "newsrec_reader_request_duration_seconds",
            "Time to answer a request, by route template and status",
            labels,
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.lists = Counter(
            "newsrec_reader_lists", "Recommendation lists served, by kind (personal or fallback)", ["kind"],
            registry=self.registry,
        )  # fmt: skip
        # Both kinds exported from the start (0 until served), without a labels() per request.
        self._list_kinds = {
            fallback: self.lists.labels("fallback" if fallback else "personal") for fallback in (False, True)
        }
        self.live_batch = Gauge(
            "newsrec_reader_live_batch_id", "Live batch last seen", registry=self.registry,
            multiprocess_mode="mostrecent",
        )  # fmt: skip
        self.live_generated = Gauge(
            "newsrec_reader_live_batch_created_timestamp_seconds",
            "When the live batch this reader last served was written (0 until a request; the stale-batch "
            "alert reads newsrec_ops_live_batch_created_timestamp_seconds of the ops exporter)",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self._seen_batch: int | None = None

    def saw_batch(self, batch_id: int, created_at: Any) -> None:
        """Set the gauges when the batch changes (each set takes a lock; lists call this on
        every request, of the same batch nearly always)."""
        if batch_id == self._seen_batch:
            return
        self.live_batch.set(batch_id)
        self.live_generated.set(created_at.timestamp())
        self._seen_batch = batch_id

    def served_list(self, fallback: bool) -> None:
        self._list_kinds[fallback].inc()

    def render(self) -> tuple[bytes, str]:
        """This app's samples; in multiprocess mode those every worker wrote."""
        folder = multiprocess_dir()
        if folder is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=folder)
        return generate_latest(merged), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware: times every HTTP request and labels it with the matched route's
    template (``/v1/users/{user_id}/recommendations``), never the raw path, so label values
    stay few. Unmatched paths count as ``unmatched``."""

    def __init__(self, app: Any, metrics: ReaderMetrics) -> None:
        self.app = app
        self.metrics = metrics
        # The counter and histogram children by (method, route, status): ``labels()`` takes a
        # lock and builds the key on every call; the label sets are few (route templates).
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            labels = (scope.get("method", ""), route, str(status))
            children = self._children.get(labels)
            if children is None:
                children = self._children[labels] = (
                    self.metrics.requests.labels(*labels), self.metrics.latency.labels(*labels)
                )  # fmt: skip
            children[0].inc()
            children[1].observe(time.perf_counter() - start)
