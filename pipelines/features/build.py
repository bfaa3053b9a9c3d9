"""``build(day)``: the feature stage for one logical date, as the DAG, CLI and tests call it."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from pipelines.core import cluster, db, progress
from pipelines.core import sql as queries
from pipelines.core.config import get_settings
from pipelines.core.errors import NewsrecError
from pipelines.core.faults import checkpoint
from pipelines.core.runs import record_run
from pipelines.features import partitions
from pipelines.features.catalog import VIEWS
from pipelines.features.transforms import WINDOW_DAYS

log = logging.getLogger(__name__)

REQUIRED_COLUMNS: dict[tuple[str, str], set[str]] = {
    ("warehouse", "events"): {"event_id", "user_id", "article_id", "event_type", "event_ts", "dwell_seconds"},
    ("warehouse", "articles"): {"article_id", "publication_id", "category", "published_at"},
    ("warehouse", "users"): {"user_id", "region", "signup_date", "plan", "declared_interests"},
    ("warehouse", "publications"): {"publication_id", "trust_score", "misinformation_flag"},
}


@dataclass
class BuildResult:
    day: date
    rows: dict[str, int]
    events_read: int
    partial_days: int
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def render(self) -> str:
        views = ", ".join(f"{v} {n:,}" for v, n in self.rows.items())
        text = (
            f"{self.day}: {views} rows; read {self.events_read:,} events "
            f"({self.partial_days} day(s) of partials) in {self.seconds:.1f} s"
        )
        return text


def check_warehouse(conn) -> None:
    """Fail early, naming what is missing, when the warehouse is not what the ETL expects."""
    with conn.cursor() as cur:
        cur.execute(queries.load("features_warehouse_columns"))
        found: dict[tuple[str, str], set[str]] = {}
        for schema, table, column in cur.fetchall():
            found.setdefault((schema, table), set()).add(column)
    for (schema, table), needed in REQUIRED_COLUMNS.items():
        if (schema, table) not in found:
            raise NewsrecError(f"table {schema}.{table} is missing; run `newsrec db migrate`")
        missing = needed - found[(schema, table)]
        if missing:
            raise NewsrecError(f"table {schema}.{table} lacks column(s) {', '.join(sorted(missing))}")


ETL_USERS_PER_SHARD = 25_000
ETL_MAX_AUTO_SHARDS = 8


def user_ranges(conn, shards: int | None) -> list[tuple[int, int]]:
    """Split the user ids into ``shards`` half-open ranges of equal width; ``None``: one per
    ``ETL_USERS_PER_SHARD`` ids of the id span, at most ``ETL_MAX_AUTO_SHARDS``."""
    with conn.cursor() as cur:
        cur.execute(queries.load("features_user_id_range"))
        lo, hi = cur.fetchone()
    if lo is None:
        return [(0, 1)]
    hi += 1
    if shards is None:
        shards = min(ETL_MAX_AUTO_SHARDS, max(1, -(-(hi - lo) // ETL_USERS_PER_SHARD)))
    step = max(1, -(-(hi - lo) // shards))
    return [(start, min(start + step, hi)) for start in range(lo, hi, step)]


def days_with_events(conn) -> set[date]:
    """Days that have an events partition (a day without one has no events)."""
    with conn.cursor() as cur:
        cur.execute(queries.load("features_event_partitions"))
        names = [r[0] for r in cur.fetchall()]
    return {date(int(n[7:11]), int(n[11:13]), int(n[13:15])) for n in names if n.startswith("events_")}


def build(
    day: date,
    runner: str | None = None,
    beam_args: Sequence[str] = (),
    refresh_window: bool = False,
) -> BuildResult:
    """Compute every feature view of ``day`` and publish the day's partitions atomically.

    Re-running a day replaces it. Daily partials of earlier days in the 28-day window are
    reused when present (``refresh_window`` recomputes them from the warehouse).

    With a Dask address configured (``NEWSREC_DASK_ADDRESS``) the pipelines run on Beam's
    DaskRunner on that cluster, after the cluster was checked (workers, their packages, the
    database and the features folder reachable from every worker): a bad cluster fails here,
    before anything is read or written. Workers write only into the staging folder and the
    daily partials; this process publishes the day, so a failed or killed run leaves the
    published partitions and manifests of ``day`` as they were.
    """

    t0 = time.perf_counter()
    with cluster.client_for_stage("features") as client:
        address = None
        if client is not None:
            address = client.scheduler.address
            cluster.check_reach(client, db.database_url(), partitions.root())
        return _build(day, runner, beam_args, refresh_window, address, t0)


def _build(
    day: date, runner: str | None, beam_args: Sequence[str], refresh_window: bool, dask_address: str | None, t0: float
) -> BuildResult:
    from pipelines.features import etl

    settings = get_settings()
    warnings: list[str] = []
    with record_run("features", day) as run:
        conn = db.connect()
        try:
            check_warehouse(conn)
            shards = user_ranges(conn, settings.etl_shards)
            have_events = days_with_events(conn)
        finally:
            conn.close()
        window = [day - timedelta(days=age) for age in range(WINDOW_DAYS)]
        need = [
            d
            for d in window
            if d == day
            or (
                d in have_events
                and (
                    refresh_window
                    or not partitions.partial_path("user_category", d).exists()
                    or not partitions.partial_path("article", d).exists()
                )
            )
        ]
        dsn = db.database_url()
        options = etl.pipeline_options(runner or settings.beam_runner, beam_args, dask_address)
        events_read = etl.run_partials(need, dsn, shards, options)
        staging = partitions.root() / ".staging" / f"{day.isoformat()}.{_HOST}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        _remove_stale_staging(staging.parent)
        staging.mkdir(parents=True)
        try:
            etl.run_features(day, dsn, shards, staging, options)
            staged = {view: staging / f"{view}.parquet" for view in VIEWS}
            missing = [v for v, p in staged.items() if not p.exists()]
            if missing:
                raise NewsrecError(f"the ETL did not produce view(s) {', '.join(missing)} for {day}")
            rows = {view: _rows(path) for view, path in staged.items()}
            checkpoint("features_staged")
            if rows["article_engagement"] == 0:
                warnings.append(f"no events on {day}: engagement views are empty")
            if rows["article_attributes"] == 0:
                warnings.append(f"no articles published on {day}")
            partitions.publish_day(day, staged, {"rows": rows, "events_read": events_read, "run_id": run.run_id})
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        for w in warnings:
            log.warning(w)
        run.details.update(rows=rows, events_read=events_read, warnings=warnings, partial_days=len(need))
        if dask_address:
            run.details.update(dask_address=dask_address)
    return BuildResult(day, rows, events_read, len(need), time.perf_counter() - t0, warnings)


_HOST = socket.gethostname().replace(".", "_")


def _remove_stale_staging(folder: Path) -> None:
    """Remove staging folders that builds killed on this host left behind (their process is
    gone); the ``finally`` that normally removes them never ran. Nothing reads them."""
    if not folder.exists():
        return
    for path in folder.iterdir():
        parts = path.name.split(".")
        if len(parts) != 4 or parts[1] != _HOST or not parts[2].isdigit():
            continue
        try:
            os.kill(int(parts[2]), 0)
        except ProcessLookupError:
            log.warning("removing %s, left by a killed feature build", path)
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass


def _rows(path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def backfill(first: date, last: date, **kwargs) -> list[BuildResult]:
    """Build each day in [first, last] in order: the same as running the days one by one."""
    if last < first:
        raise NewsrecError(f"--to {last} is before --from {first}")
    results = []
    day = first
    with progress.bar((last - first).days + 1, "features", unit="day") as days:
        while day <= last:
            days.set_postfix_str(day.isoformat())
            results.append(build(day, **kwargs))
            days.update(1)
            day += timedelta(days=1)
    return results
