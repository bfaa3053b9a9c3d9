"""The Apache Beam pipelines of the feature ETL.

Postgres is read inside DoFns with ``COPY ... TO STDOUT`` over user-id ranges (one range per
element), so the pipelines need no Java expansion service and run unchanged on the direct
runner's FnApiRunner, Dask, Flink, Spark or Dataflow. Elements are whole pandas frames,
never single rows: per-row Python would be ~100x slower.

Two pipelines run per day: ``run_partials`` turns days of events into daily partial files,
then ``run_features`` rolls the 28-day window up into the feature views and stages them for
:func:`pipelines.features.partitions.publish_day`. File writes assume a filesystem that all
workers share (local disk for in-process runners and a one-machine Dask cluster; a shared
mount or object store for a cluster of many machines). Every write is a whole file renamed
into place, so a task that a runner retries (a Dask worker killed mid-task) rewrites the same
file instead of adding to it.

With ``NEWSREC_DASK_ADDRESS`` set the same pipelines run on Beam's DaskRunner
(:func:`pipeline_options`). That runner has no metrics (``result.metrics()`` raises), so the
number of events read travels with the data: each day's article partial file carries it in
its Parquet metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any


def _drop_apitools_warning(record) -> bool:
    # Beam's GCP IO warns at import time that apitools is missing; newsrec does not use GCP.
    return not str(record.msg).startswith("apitools not found")


logging.getLogger().addFilter(_drop_apitools_warning)

import apache_beam as beam  # noqa: E402
import pandas as pd  # noqa: E402
from apache_beam.metrics import Metrics  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from pipelines.core import db  # noqa: E402
from pipelines.core.errors import ConfigError, NewsrecError  # noqa: E402
from pipelines.core.faults import checkpoint  # noqa: E402
from pipelines.features import partitions, transforms  # noqa: E402
from pipelines.features.catalog import ENTITY_KEYS, VIEWS  # noqa: E402

_EVENTS_SQL = """
SELECT e.event_id, e.user_id, e.article_id, a.category, e.event_type,
       extract(epoch FROM e.event_ts)::float8 AS ts, e.dwell_seconds, e.impression_id
FROM warehouse.events e
JOIN warehouse.articles a USING (article_id)
WHERE e.event_ts >= %(start)s AND e.event_ts < %(end)s
  AND e.user_id >= %(lo)s AND e.user_id < %(hi)s
"""
_USERS_SQL = """
SELECT user_id, region, signup_date, plan, declared_interests::text AS declared_interests
FROM warehouse.users WHERE user_id >= %(lo)s AND user_id < %(hi)s AND signup_date <= %(day)s
"""
_ARTICLES_SQL = """
SELECT a.article_id, a.category, p.trust_score, p.misinformation_flag::int AS misinformation_flag,
       extract(epoch FROM a.published_at)::bigint AS published_ts
FROM warehouse.articles a JOIN warehouse.publications p USING (publication_id)
WHERE a.published_at >= %(start)s AND a.published_at < %(end)s
"""


def _pa_types(spec: dict[str, str]) -> dict[str, Any]:
    import pyarrow as pa

    mapping = {"int64": pa.int64(), "float64": pa.float64(), "string": pa.string(), "bool": pa.bool_()}
    return {k: mapping[v] for k, v in spec.items()}


_EVENT_TYPES = {"event_id": "int64", "user_id": "int64", "article_id": "int64", "category": "string",
                "event_type": "string", "ts": "float64", "dwell_seconds": "float64",
                "impression_id": "int64"}  # fmt: skip
_USER_TYPES = {"user_id": "int64", "region": "string", "plan": "string", "declared_interests": "string"}
_ARTICLE_TYPES = {"article_id": "int64", "category": "string", "trust_score": "float64",
                  "misinformation_flag": "int64", "published_ts": "int64"}  # fmt: skip


def _day_bounds(day: date) -> dict[str, str]:
    return {
        "start": f"{day.isoformat()} 00:00:00+00",
        "end": f"{(day + timedelta(days=1)).isoformat()} 00:00:00+00",
    }


class _PostgresDoFn(beam.DoFn):
    """A DoFn with one Postgres connection per worker instance."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn = None

    def setup(self) -> None:
        import psycopg2

        self.conn = psycopg2.connect(self.dsn)
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")

    def teardown(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def query(self, sql: str, params: dict[str, Any], types: dict[str, str]) -> pd.DataFrame:

        frame = db.read_frame(self.conn, sql, params, _pa_types(types))
        if frame.empty and not len(frame.columns):
            frame = pd.DataFrame({c: pd.Series(dtype="object") for c in types})
        return frame


class ReadDayPartials(_PostgresDoFn):
    """(day, lo, hi) -> ((kind, day), partial frame) for the users in [lo, hi)."""

    def __init__(self, dsn: str) -> None:
        super().__init__(dsn)
        self.events_read = Metrics.counter("etl", "events_read")

    def process(self, element: tuple[str, int, int]) -> Iterable[tuple[tuple[str, str], tuple[pd.DataFrame, int]]]:
        day_iso, lo, hi = element
        day = date.fromisoformat(day_iso)
        events = self.query(_EVENTS_SQL, {**_day_bounds(day), "lo": lo, "hi": hi}, _EVENT_TYPES)
        self.events_read.inc(len(events))
        uc, art = transforms.event_partials(events)
        yield ("user_category", day_iso), (uc, 0)
        yield ("article", day_iso), (art, len(events))  # counted once, with the article partial


EVENTS_READ_KEY = b"newsrec.events_read"


class WritePartial(beam.DoFn):
    """Merge the shard partials of one (kind, day) and write the day's partial file; the
    article partial records how many events it was built from (runners without metrics)."""

    def __init__(self, features_root: str) -> None:
        self.features_root = features_root

    def process(
        self, element: tuple[tuple[str, str], Iterable[tuple[pd.DataFrame, int]]]
    ) -> Iterable[tuple[str, str, int]]:
        (kind, day_iso), parts = element
        parts = list(parts)
        frames = [frame for frame, _ in parts]
        merged = (
            transforms.merge_article_partials(frames) if kind == "article" else transforms.merge_user_partials(frames)
        )
        path = Path(self.features_root) / "_daily" / kind / f"{day_iso}.parquet"
        columns = transforms.ARTICLE_PARTIAL_COLUMNS if kind == "article" else transforms.UC_PARTIAL_COLUMNS
        schema = partitions.arrow_schema(columns)
        if kind == "article":
            schema = schema.with_metadata({EVENTS_READ_KEY: str(sum(n for _, n in parts)).encode()})
        partitions.write_parquet_atomic(merged, path, schema)
        yield kind, day_iso, len(merged)


class BuildUserViews(_PostgresDoFn):
    """(lo, hi) -> (view, frame): user_activity and user_category for one user range."""

    def __init__(self, dsn: str, day_iso: str, features_root: str) -> None:
        super().__init__(dsn)
        self.day_iso = day_iso
        self.features_root = features_root

    def process(self, element: tuple[int, int]) -> Iterable[tuple[str, pd.DataFrame]]:
        import pyarrow.parquet as pq

        lo, hi = element
        checkpoint("etl_user_views")  # reliability tests kill the worker here (pipelines.core.faults)
        day = date.fromisoformat(self.day_iso)
        users = self.query(_USERS_SQL, {"lo": lo, "hi": hi, "day": self.day_iso}, _USER_TYPES)
        partials: dict[date, pd.DataFrame] = {}
        for age in range(transforms.WINDOW_DAYS):
            d = day - timedelta(days=age)
            path = Path(self.features_root) / "_daily" / "user_category" / f"{d.isoformat()}.parquet"
            if path.exists():
                partials[d] = pq.read_table(path, filters=[("user_id", ">=", lo), ("user_id", "<", hi)]).to_pandas()
        activity, category = transforms.user_features(day, partials, users)
        yield "user_activity", activity
        yield "user_category", category


class BuildArticleViews(_PostgresDoFn):
    """day -> (view, frame): article_attributes (published on D) and article_engagement of D."""

    def __init__(self, dsn: str, features_root: str) -> None:
        super().__init__(dsn)
        self.features_root = features_root

    def process(self, day_iso: str) -> Iterable[tuple[str, pd.DataFrame]]:
        day = date.fromisoformat(day_iso)
        articles = self.query(_ARTICLES_SQL, _day_bounds(day), _ARTICLE_TYPES)
        yield "article_attributes", transforms.article_attributes(articles)
        partial = pd.read_parquet(Path(self.features_root) / "_daily" / "article" / f"{day_iso}.parquet")
        yield "article_engagement", transforms.article_engagement(day, partial)


class StageView(beam.DoFn):
    """Concatenate a view's frames in key order and write it into the staging folder."""

    def __init__(self, staging_dir: str) -> None:
        self.staging_dir = staging_dir

    def process(self, element: tuple[str, Iterable[pd.DataFrame]]) -> Iterable[tuple[str, int]]:
        view, frames = element
        keys = [ENTITY_KEYS[e][0] for e in VIEWS[view].entities]
        frames = list(frames)
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        frame = frame.sort_values(keys, kind="stable").reset_index(drop=True)
        partitions.write_parquet_atomic(frame, Path(self.staging_dir) / f"{view}.parquet", partitions.view_schema(view))
        yield view, len(frame)


DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
# Runner names that mean "the default": a configured Dask address replaces them.
_LOCAL_RUNNERS = {"FnApiRunner", "DirectRunner", "BundleBasedDirectRunner", "DaskRunner", DASK_RUNNER}


def pipeline_options(runner: str, beam_args: Sequence[str] = (), dask_address: str | None = None) -> PipelineOptions:
    """Beam options for ``runner``; with ``dask_address`` the DaskRunner on that scheduler.

    DaskRunner packs up to 128 created elements into one Dask partition (its default), which
    would put all user ranges into one task on one worker: one element per partition instead,
    so the ranges spread over the workers as they do on FnApiRunner.
    """
    if not dask_address:
        return PipelineOptions([f"--runner={runner}", *beam_args])
    if runner not in _LOCAL_RUNNERS:
        raise ConfigError(
            f"NEWSREC_DASK_ADDRESS sends the ETL to Dask, but the Beam runner is {runner}; unset one of them"
        )
    args = [f"--runner={DASK_RUNNER}", f"--dask_client_address={dask_address}", "--dask_connection_timeout=10"]
    if not any(a.startswith(("--dask_npartitions", "--dask_partition_size")) for a in beam_args):
        args.append("--dask_partition_size=1")
    return PipelineOptions([*args, *beam_args])


def _run(pipeline: beam.Pipeline, what: str) -> Any:
    """Run a pipeline to the end. A Dask worker that keeps dying is one line; the client that
    the DaskRunner opened (it never closes it) is closed here."""
    result = pipeline.run()
    try:
        result.wait_until_finish()
    except Exception as exc:
        if type(exc).__name__ == "KilledWorker":
            raise NewsrecError(
                f"the {what} failed: Dask workers died running it ({str(exc).splitlines()[0]}); nothing was published"
            ) from None
        raise
    finally:
        client = getattr(result, "client", None)
        if client is not None and hasattr(client, "close"):
            client.close()
    return result


def events_read(days: Sequence[date]) -> int:
    """Events the article partials of ``days`` were built from (their Parquet metadata)."""
    import pyarrow.parquet as pq

    total = 0
    for day in days:
        meta = pq.read_schema(partitions.partial_path("article", day)).metadata or {}
        total += int(meta.get(EVENTS_READ_KEY, b"0"))
    return total


def run_partials(days: Sequence[date], dsn: str, shards: Sequence[tuple[int, int]], options: PipelineOptions) -> int:
    """Write the daily partial files of ``days``; returns the number of events read."""
    root = str(partitions.root())
    pipeline = beam.Pipeline(options=options)
    _ = (
        pipeline
        | "day x user range" >> beam.Create([(d.isoformat(), lo, hi) for d in days for lo, hi in shards])
        | "spread" >> beam.Reshuffle()
        | "read events" >> beam.ParDo(ReadDayPartials(dsn))
        | "by kind and day" >> beam.GroupByKey()
        | "write partials" >> beam.ParDo(WritePartial(root))
    )
    _run(pipeline, "ETL of the daily partials")
    return events_read(days)


def run_features(
    day: date, dsn: str, shards: Sequence[tuple[int, int]], staging_dir: Path, options: PipelineOptions
) -> None:
    """Build every view of ``day`` into ``staging_dir`` (one Parquet file per view)."""
    root = str(partitions.root())
    day_iso = day.isoformat()
    pipeline = beam.Pipeline(options=options)
    users = (
        pipeline
        | "user ranges" >> beam.Create(list(shards))
        | "spread users" >> beam.Reshuffle()
        | "user views" >> beam.ParDo(BuildUserViews(dsn, day_iso, root))
    )
    articles = (
        pipeline | "the day" >> beam.Create([day_iso]) | "article views" >> beam.ParDo(BuildArticleViews(dsn, root))
    )
    _ = (
        (users, articles)
        | "all views" >> beam.Flatten()
        | "by view" >> beam.GroupByKey()
        | "stage" >> beam.ParDo(StageView(str(staging_dir)))
    )
    _run(pipeline, f"ETL of the feature views of {day_iso}")
