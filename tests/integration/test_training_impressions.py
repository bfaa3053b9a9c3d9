"""The training read of labelled impressions on a hand-made log: the same rows as the grouped
join it replaced (reads folded per impression), with an article the catalogue lacks, reads of
no dwell, several reads of one impression, a read after midnight and reads of other days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pyarrow as pa

from pipelines.core import db
from pipelines.model import dataset

DAY = date(2026, 6, 1)

# The query the training read used before: one GROUP BY of every impression row.
_GROUPED = """
SELECT i.event_id, i.user_id, i.article_id, a.category, i.event_ts AS event_timestamp, i.position,
       (i.event_ts AT TIME ZONE 'UTC')::date AS day,
       coalesce(max(r.dwell_seconds) FILTER (WHERE r.dwell_seconds > 0), 0)::float8 AS dwell,
       (count(r.event_id) > 0)::int AS is_read
FROM warehouse.events i
JOIN warehouse.articles a USING (article_id)
LEFT JOIN warehouse.events r
  ON r.impression_id = i.event_id AND r.event_type = 'read'
 AND r.event_ts >= %(start)s AND r.event_ts < %(end_reads)s
WHERE i.event_type = 'impression' AND i.event_ts >= %(start)s AND i.event_ts < %(end)s
GROUP BY i.event_id, i.user_id, i.article_id, a.category, i.event_ts, i.position
"""


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def _write_log() -> None:
    before, after = DAY - timedelta(days=1), DAY + timedelta(days=1)
    impressions = [  # event_id, user, article, ts, position
        (1, 7, 101, _at(DAY, 8), 0),
        (2, 7, 102, _at(DAY, 8), 1),
        (3, 7, 999, _at(DAY, 8), 2),  # article missing from the catalogue
        (4, 8, 101, _at(DAY, 23, 59), 0),
        (5, 8, 103, _at(DAY, 23, 59), 1),
        (6, 9, 102, _at(before, 10), 0),  # the day before: outside the read
        (7, 9, 103, _at(DAY, 0), 4),  # midnight exactly
        (8, 9, 999, _at(DAY + timedelta(days=1), 5), 0),  # the day after: an unknown article only
    ]
    reads = [  # event_id, impression_id, user, article, ts, dwell
        (11, 1, 7, 101, _at(DAY, 8, 1), 40.0),
        (12, 1, 7, 101, _at(DAY, 9), 75.0),  # a second read of one impression: the longest counts
        (13, 2, 7, 102, _at(DAY, 8, 2), 0.0),  # a read of no dwell is still a read
        (14, 4, 8, 101, _at(after, 0, 10), 20.0),  # after midnight
        (15, 6, 9, 102, _at(DAY, 1), 50.0),  # of an impression of the day before
        (16, None, 9, 103, _at(DAY, 2), 90.0),  # organic: no impression
        (17, 3, 7, 999, _at(DAY, 8, 3), 10.0),
    ]
    imp = pd.DataFrame(impressions, columns=["event_id", "user_id", "article_id", "event_ts", "position"])
    imp = imp.assign(event_type="impression", surface="home")
    rd = pd.DataFrame(
        reads, columns=["event_id", "impression_id", "user_id", "article_id", "event_ts", "dwell_seconds"]
    )
    rd = rd.assign(event_type="read", surface="home", impression_id=rd["impression_id"].astype("Int64"))
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO warehouse.publications VALUES (1, 'Daily', 'daily.example', 'GLOBAL', 'en', 0.9, false)"
        )
        for article, category in ((101, "news"), (102, "sports"), (103, "NA")):  # "NA" is a category, not a null
            cur.execute(
                "INSERT INTO warehouse.articles (article_id, publication_id, category, subcategory, title, url,"
                " language, published_at) VALUES (%s, 1, %s, 'x', 't', 'u', 'en', %s)",
                (article, category, _at(before, 0)),
            )
        for d in (before, DAY, after):
            cur.execute("SELECT warehouse.ensure_events_partition(%s)", (d,))
        db.copy_frame(cur, "warehouse.events", imp)
        db.copy_frame(cur, "warehouse.events", rd)


def test_the_training_read_equals_the_grouped_join(fresh_db) -> None:
    _write_log()
    table = dataset.impressions(DAY, DAY)
    conn = db.connect()
    try:
        conn.cursor().execute("SET TIME ZONE 'UTC'")
        bounds = {"start": _at(DAY, 0), "end": _at(DAY + timedelta(days=1), 0),
                  "end_reads": _at(DAY + timedelta(days=2), 0)}  # fmt: skip
        types = {"event_timestamp": pa.timestamp("ns", tz="UTC"), "day": pa.date32()}
        grouped = db.read_table(conn, _GROUPED, bounds, types)
    finally:
        conn.close()
    assert table.schema == grouped.schema
    assert table.sort_by("event_id").equals(grouped.sort_by("event_id"))
    rows = table.to_pandas().set_index("event_id")
    assert sorted(rows.index) == [1, 2, 4, 5, 7]  # not the unknown article, not the day before
    assert rows.loc[1, "dwell"] == 75.0 and rows.loc[2, "dwell"] == 0.0 and rows.loc[2, "is_read"] == 1
    assert rows.loc[4, "is_read"] == 1 and rows.loc[5, "is_read"] == 0 and rows.loc[7, "category"] == "NA"


def test_a_day_of_only_unknown_articles_reads_as_none(fresh_db) -> None:
    _write_log()
    after = DAY + timedelta(days=1)
    assert dataset.impressions(after, after) is None
    assert dataset.impressions(DAY - timedelta(days=1), DAY - timedelta(days=1)).num_rows == 1
