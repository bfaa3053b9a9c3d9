"""What the suites validate: frames of day D and the run-time values they are checked against.

Checks that need other tables (unknown users or articles, events before publication, the
article count against earlier days) are computed in SQL into columns of the validated frame,
so each of them is one plain expectation with failing rows to show.
"""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from pipelines.core import db
from pipelines.core.errors import NewsrecError
from pipelines.features import partitions
from pipelines.features.catalog import VIEWS
from pipelines.gates.quality import dtypes

# Events of D with lookup flags. ``e.*`` keeps the table's real columns, so a schema change
# shows up in the columns check instead of being hidden by a fixed select list.
_RAW_EVENTS_SQL = """
SELECT e.*,
       extract(epoch FROM e.event_ts - %(start)s) / 3600.0 AS event_hour,
       (u.user_id IS NOT NULL)::text AS user_known,
       (a.article_id IS NOT NULL)::text AS article_known,
       coalesce(a.metadata_known, true)::text AS article_metadata_known,  -- missing: article_known
       (e.event_ts >= a.published_at)::text AS after_publication
FROM warehouse.events AS e
LEFT JOIN warehouse.users AS u ON u.user_id = e.user_id
LEFT JOIN warehouse.articles AS a ON a.article_id = e.article_id
WHERE e.event_ts >= %(start)s AND e.event_ts < %(end)s
"""
_ARTICLES_PER_DAY_SQL = """
SELECT (published_at AT TIME ZONE 'UTC')::date AS day, count(*)
FROM warehouse.articles
WHERE published_at >= %(first)s AND published_at < %(end)s
GROUP BY 1
"""
_EXPECTED_FEATURE_ROWS_SQL = """
SELECT
  (SELECT count(*) FROM warehouse.users WHERE signup_date <= %(day)s) AS users_signed_up,
  (SELECT count(DISTINCT e.article_id) FROM warehouse.events AS e
     JOIN warehouse.articles AS a ON a.article_id = e.article_id
    WHERE e.event_ts >= %(start)s AND e.event_ts < %(end)s) AS articles_shown,
  (SELECT count(*) FROM warehouse.articles
    WHERE published_at >= %(start)s AND published_at < %(end)s) AS articles_published
"""


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _raw_types() -> dict[str, Any]:
    import pyarrow as pa

    return {
        "event_id": pa.int64(),
        "impression_id": pa.int64(),
        "user_id": pa.int64(),
        "article_id": pa.int64(),
        "event_type": pa.string(),
        "event_ts": pa.string(),
        "surface": pa.string(),
        "dwell_seconds": pa.float64(),
        "event_hour": pa.float64(),
        "user_known": pa.bool_(),
        "article_known": pa.bool_(),
        "article_metadata_known": pa.bool_(),
        "after_publication": pa.bool_(),
    }


def raw_frames(day: date, history_days: int) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """``raw_events`` (one row per event of D) and ``raw_day`` (one summary row).

    ``raw_day.articles_ratio`` is the number of articles published on D over the median of the
    previous ``history_days`` days that had any (the median, so that one bad day in the window
    does not move the band); it is NULL without history, which the band check lets pass and
    the history check reports.
    """
    start, end = day_bounds(day)
    import psycopg2

    conn = db.connect()
    try:
        events = db.read_frame(conn, _RAW_EVENTS_SQL, {"start": start, "end": end}, _raw_types())
        with conn.cursor() as cur:
            cur.execute(_ARTICLES_PER_DAY_SQL, {"first": start - timedelta(days=history_days), "end": end})
            per_day = dict(cur.fetchall())
    except (psycopg2.errors.UndefinedColumn, psycopg2.errors.UndefinedTable) as exc:
        # Too broken to validate at all: say what is missing instead of a traceback.
        raise NewsrecError(f"cannot read the raw extract of {day}: {str(exc).splitlines()[0]}") from exc
    finally:
        conn.close()
    if events.empty and not len(events.columns):  # defensive: COPY always sends the header
        events = pd.DataFrame({c: pd.Series(dtype="object") for c in _raw_types()})
    published = int(per_day.pop(day, 0))
    history = [n for d, n in per_day.items() if d < day and n > 0]
    median = statistics.median(history) if history else None
    summary = pd.DataFrame(
        {
            "day": [day.isoformat()],
            "n_events": [len(events)],
            "latest_event_hour": [float(events["event_hour"].max()) if len(events) else float("nan")],
            "articles_published": [published],
            "articles_trailing_median": [float(median) if median is not None else float("nan")],
            "history_days": [len(history)],
            "articles_ratio": [published / median if median else float("nan")],
        }
    )
    return {"raw_events": events, "raw_day": summary}, {}


def feature_frames(day: date) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Each feature view's partition of D, and the row counts the warehouse says they must have.

    ``articles_shown`` counts known articles only: the ETL drops events of unknown articles
    (the raw gate reports those), so the features gate checks the ETL, not the feed, here.
    """
    partitions.require_day(day)
    # read straight into the dtypes GE validates fast (the same values as partitions.read_view)
    frames = {view: dtypes.read_parquet(partitions.view_path(view, day)) for view in VIEWS}
    start, end = day_bounds(day)
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(_EXPECTED_FEATURE_ROWS_SQL, {"day": day, "start": start, "end": end})
        users, shown, published = cur.fetchone()
    expected = {"users_signed_up": int(users), "articles_shown": int(shown), "articles_published": int(published)}
    return frames, expected


# Columns that identify a failing row in the examples, per asset.
INDEX_COLUMNS: dict[str, list[str]] = {
    "raw_events": ["event_id", "user_id", "article_id"],
    "raw_day": ["day"],
    "user_activity": ["user_id"],
    "user_category": ["user_id", "category"],
    "article_engagement": ["article_id"],
    "article_attributes": ["article_id"],
}
