"""Feature rows for training (Feast point-in-time join) and for scoring (bulk, offline).

Both return one row per input row, in input order, with every feature column and the
request time in ``event_timestamp``, ready for :func:`pipelines.features.matrix.to_matrix`.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from pipelines.errors import NewsrecError
from pipelines.features import partitions
from pipelines.features.definitions import TIMESTAMP, VIEWS, view_features

_ROW = "__row"


def training_rows(entities: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time correct features for (user_id, article_id, category, event_timestamp).

    Every row gets the values known at its timestamp and never a later one (Feast's join;
    views' TTLs bound how old a value may be).
    """
    from pipelines.features.store import historical_features

    needed = {"user_id", "article_id", "category", TIMESTAMP}
    if not needed <= set(entities.columns):
        raise NewsrecError(f"entity rows need columns {sorted(needed)}")
    frame = entities.copy()
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True)
    frame[_ROW] = range(len(frame))
    joined = historical_features(frame)
    joined = joined.sort_values(_ROW).drop(columns=[_ROW]).set_index(entities.index)
    return joined


def scoring_rows(pairs: pd.DataFrame, day: date) -> pd.DataFrame:
    """Features as of the end of ``day`` for (user_id, article_id, event_timestamp) pairs.

    Reads the day's partitions directly (bulk, no per-row lookups); equals what the
    point-in-time join gives for request times within the day after ``day``.
    """
    partitions.require_day(day)
    frame = pairs[["user_id", "article_id", TIMESTAMP]].copy()
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True)
    frame[_ROW] = range(len(frame))

    attrs = _article_attributes(day, frame["article_id"].unique())
    frame = frame.merge(attrs, on="article_id", how="left")
    frame["category"] = frame["article_category"]
    user = _view_frame("user_activity", day, frame["user_id"].unique(), "user_id")
    frame = frame.merge(user, on="user_id", how="left")
    engagement = _view_frame("article_engagement", day, frame["article_id"].unique(), "article_id")
    frame = frame.merge(engagement, on="article_id", how="left")
    uc = pd.read_parquet(
        partitions.view_path("user_category", day),
        filters=[("user_id", "in", list(frame["user_id"].unique()))],
    )
    uc = uc.drop(columns=[TIMESTAMP])
    frame = frame.merge(uc, on=["user_id", "category"], how="left")
    return frame.sort_values(_ROW).drop(columns=[_ROW]).set_index(pairs.index)


def _view_frame(view: str, day: date, keys, key: str) -> pd.DataFrame:
    frame = pd.read_parquet(partitions.view_path(view, day), filters=[(key, "in", list(keys))])
    return frame.drop(columns=[TIMESTAMP])


def _article_attributes(day: date, article_ids) -> pd.DataFrame:
    """Attributes of articles published within the view's TTL before the end of ``day``."""
    ttl_days = VIEWS["article_attributes"].ttl.days
    frames = []
    for age in range(ttl_days):
        path = partitions.view_path("article_attributes", day - timedelta(days=age))
        if path.exists():
            frames.append(pd.read_parquet(path, filters=[("article_id", "in", list(article_ids))]))
    columns = ["article_id"] + [f.name for f in view_features("article_attributes")]
    if not frames:
        return pd.DataFrame(columns=columns)
    attrs = pd.concat(frames, ignore_index=True).sort_values(TIMESTAMP)
    return attrs.drop_duplicates("article_id", keep="last")[columns]
