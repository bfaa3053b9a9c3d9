"""The ops exporter: the nightly's outcome, the live batch and the newest drift verdicts as
Prometheus gauges, read from the ``ops`` and ``serving`` tables at every scrape
(``newsrec ops exporter``; rules in ``monitoring/rules/``).

Why a separate process and not more gauges on the reader's ``/metrics``:

- Airflow's failure callbacks do not fire when a task is killed or runs out of memory, so
  "no successful nightly in 26 h" must come from what the database holds, read from outside
  the pipelines. The reader could do it, but its role ``newsrec_reader`` reads ``serving``
  and ``feast_online`` only, and ``tests/reliability/test_reader_role.py`` pins that: the
  internet-facing service should not gain read access to ``ops`` (run errors, paths,
  evidence) to feed a metric.
- The alerts must not depend on each other's source: a reader that is down (or serving from
  a stale cache) must not also silence "no nightly", and a busy reader must not spend its
  pool on scrape queries.
- One uvicorn worker or several, the reader's counters are per process; these figures are
  per database, so one exporter instance is the natural shape.

The exporter logs in as ``newsrec_ops_exporter`` (migration 0013: SELECT on ``ops.runs``,
``ops.drift_results``/``ops.drift_latest``, ``serving.batches`` and ``serving.live``, nothing
else, read-only by default) or with ``NEWSREC_OPS_EXPORTER_DATABASE_URL``; its sessions are
read-only too (``default_transaction_read_only`` and ``statement_timeout`` set at connect).
A scrape opens one short connection and runs three small queries (grouped over ``ops.runs``,
one row of ``serving``, one row per drift kind). When the database cannot be read the scrape
still answers, with ``newsrec_ops_up 0`` and nothing else, so Prometheus can alert on that.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipelines.core import sql as queries
from pipelines.core.errors import ConfigError, NewsrecError

log = logging.getLogger(__name__)

STATEMENT_TIMEOUT_MS = 5000
EXPORTER_ROLE = "newsrec_ops_exporter"  # sql/migrations/0013_ops_exporter_role.sql


class ExporterEnv(BaseSettings):
    """``NEWSREC_OPS_EXPORTER_DATABASE_URL``: a full libpq URL for the exporter's login (e.g.
    with its role's password on a server that does not trust local connections)."""

    model_config = SettingsConfigDict(env_prefix="NEWSREC_OPS_EXPORTER_", extra="ignore")

    database_url: str | None = None


def as_exporter(url: str) -> str:
    """The same server and database as ``url``, logged in as the exporter's role (no
    password: the embedded server trusts local connections)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{EXPORTER_ROLE}@{host}"))


def exporter_database_url() -> str:
    """``NEWSREC_OPS_EXPORTER_DATABASE_URL`` if set, else the main database as the exporter's role."""
    explicit = ExporterEnv().database_url
    if explicit:
        if not urlsplit(explicit).scheme.startswith("postgres"):
            raise ConfigError("NEWSREC_OPS_EXPORTER_DATABASE_URL must be a postgresql:// URL")
        return explicit
    from pipelines.core import db

    return as_exporter(db.database_url())


def connect(url: str) -> Any:
    """A read-only session with a short statement timeout (a slow database makes a scrape
    fail, never pile up); the role's privileges refuse writes as well."""
    import psycopg2

    options = f"-c default_transaction_read_only=on -c statement_timeout={STATEMENT_TIMEOUT_MS}"
    conn = psycopg2.connect(url, connect_timeout=5, options=options, application_name="newsrec-ops-exporter")
    conn.set_session(readonly=True, autocommit=True)
    return conn


class OpsCollector(Collector):
    """Reads the figures at each scrape (no cache: a scrape every 15-60 s costs three small
    queries), so what Prometheus sees is what the database says now."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _read(self) -> dict[str, list[tuple]]:
        conn = connect(self.url)
        try:
            out = {}
            with conn.cursor() as cur:
                for name in ("runs", "live", "drift"):
                    cur.execute(queries.load(f"ops_exporter_{name}"))
                    out[name] = cur.fetchall()
            return out
        finally:
            conn.close()

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("newsrec_ops_up", "1 when this scrape read the ops tables, 0 when it could not")
        try:
            rows = self._read()
        except Exception as exc:  # any failure: say so in the metric, keep serving
            log.warning(
                "ops exporter: cannot read the database: %s", str(exc).strip().splitlines()[0] if str(exc) else exc
            )
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _run_metrics(rows["runs"])
        yield from _live_metrics(rows["live"])
        yield from _drift_metrics(rows["drift"])


def _run_metrics(rows: list[tuple]) -> Iterator[Metric]:
    finished = GaugeMetricFamily(
        "newsrec_ops_run_last_finished_timestamp_seconds",
        "When the newest run of a stage with this outcome ended (ops.runs.finished_at); the nightly "
        "succeeded when stage score_publish did",
        labels=["stage", "status"],
    )
    logical = GaugeMetricFamily(
        "newsrec_ops_run_last_logical_date_timestamp_seconds",
        "Newest logical date (00:00 UTC) of a run of a stage with this outcome",
        labels=["stage", "status"],
    )
    for stage, status, finished_at, logical_date in rows:
        if finished_at is not None:
            finished.add_metric([stage, status], finished_at)
        if logical_date is not None:
            logical.add_metric([stage, status], logical_date)
    yield finished
    yield logical


def _live_metrics(rows: list[tuple]) -> Iterator[Metric]:
    names = (
        ("newsrec_ops_live_batch_id", "The batch readers are served (serving.live; absent before the first publish)"),
        ("newsrec_ops_live_batch_created_timestamp_seconds", "When the live batch was written"),
        ("newsrec_ops_live_batch_data_date_timestamp_seconds", "The day (00:00 UTC) the live batch's lists are for"),
        ("newsrec_ops_live_switched_timestamp_seconds", "When the live pointer last switched"),
    )
    for i, (name, documentation) in enumerate(names):
        family = GaugeMetricFamily(name, documentation)
        for row in rows:
            family.add_metric([], float(row[i]))
        yield family


def _drift_metrics(rows: list[tuple]) -> Iterator[Metric]:
    share = GaugeMetricFamily(
        "newsrec_ops_drift_share", "Share of drifted columns in the newest drift verdict of a kind", labels=["kind"]
    )
    threshold = GaugeMetricFamily(
        "newsrec_ops_drift_share_threshold",
        "The share at which that verdict counts as drifted (params.yaml drift.<kind>.share_threshold when it ran)",
        labels=["kind"],
    )
    drifted = GaugeMetricFamily("newsrec_ops_drift_drifted", "1 when that verdict drifted", labels=["kind"])
    day = GaugeMetricFamily(
        "newsrec_ops_drift_logical_date_timestamp_seconds",
        "The logical date (00:00 UTC) of that verdict",
        labels=["kind"],
    )
    for kind, drift_share, share_threshold, was_drifted, logical_date in rows:
        share.add_metric([kind], drift_share)
        threshold.add_metric([kind], share_threshold)
        drifted.add_metric([kind], 1.0 if was_drifted else 0.0)
        day.add_metric([kind], logical_date)
    yield from (share, threshold, drifted, day)


def registry(url: str | None = None) -> CollectorRegistry:
    """A registry holding only the ops collector (no process or platform metrics: the
    exporter's own health is ``up`` and ``newsrec_ops_up``)."""
    made = CollectorRegistry(auto_describe=False)
    made.register(OpsCollector(url or exporter_database_url()))
    return made


def serve(host: str, port: int, url: str | None = None) -> Any:
    """Serve ``/metrics`` on ``host:port`` in a background thread; returns the HTTP server
    (its ``server_port`` is the bound port when ``port`` is 0)."""
    from prometheus_client import start_http_server

    made = registry(url)
    try:
        server, _thread = start_http_server(port, addr=host, registry=made)
    except OSError as exc:
        raise NewsrecError(f"ops exporter: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return server
