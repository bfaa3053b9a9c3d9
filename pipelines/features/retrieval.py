"""Feature rows for training (Feast point-in-time join) and for scoring (bulk, offline).

Both return one row per input row, in input order, with every feature column and the
request time in ``event_timestamp``, ready for :func:`pipelines.features.matrix.to_matrix`.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
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
    return OfflineFeatures(day, articles=pairs["article_id"].unique()).rows(pairs)


class OfflineFeatures:
    """The feature partitions of one day held in memory, for many lookups (batch scoring).

    Lookups are index-based (no joins): a chunk of millions of candidate pairs gets its
    feature rows in a few vectorised takes.
    """

    def __init__(self, day: date, articles=None) -> None:
        partitions.require_day(day)
        self.day = day
        user = pd.read_parquet(partitions.view_path("user_activity", day)).drop(columns=[TIMESTAMP])
        self.user = user.set_index("user_id")
        engagement = pd.read_parquet(partitions.view_path("article_engagement", day)).drop(columns=[TIMESTAMP])
        self.engagement = engagement.set_index("article_id")
        self.attributes = _article_attributes(day, articles).set_index("article_id")
        uc = pd.read_parquet(partitions.view_path("user_category", day)).drop(columns=[TIMESTAMP])
        self.categories = {c: i for i, c in enumerate(sorted(uc["category"].unique()))}
        self.uc_index = pd.Index(
            uc["user_id"].to_numpy(np.int64) * 1024 + uc["category"].map(self.categories).to_numpy()
        )
        self.uc = uc.drop(columns=["user_id", "category"]).reset_index(drop=True)

    def rows(self, pairs: pd.DataFrame) -> pd.DataFrame:
        """Feature rows for the pairs, in their order, with their request time."""
        out = {
            "user_id": pairs["user_id"].to_numpy(np.int64),
            "article_id": pairs["article_id"].to_numpy(np.int64),
            TIMESTAMP: pd.to_datetime(pairs[TIMESTAMP], utc=True).to_numpy(),
        }
        frames = [pd.DataFrame(out, index=pairs.index)]
        frames.append(_take(self.attributes, out["article_id"], pairs.index))
        category = frames[-1]["article_category"]
        frames.append(_take(self.user, out["user_id"], pairs.index))
        frames.append(_take(self.engagement, out["article_id"], pairs.index))
        codes = category.map(self.categories)
        keys = out["user_id"] * 1024 + codes.fillna(-1).to_numpy(np.int64)
        pos = self.uc_index.get_indexer(keys)
        pos[codes.isna().to_numpy()] = -1
        frames.append(_take_positions(self.uc, pos, pairs.index))
        result = pd.concat(frames, axis=1)
        result["category"] = category
        return result


def _take(table: pd.DataFrame, keys: np.ndarray, index: pd.Index) -> pd.DataFrame:
    return _take_positions(table.reset_index(drop=True), table.index.get_indexer(keys), index)


def _take_positions(table: pd.DataFrame, pos: np.ndarray, index: pd.Index) -> pd.DataFrame:
    """Rows of ``table`` at ``pos`` (-1 = missing -> NaN/None), one per key."""
    missing = pos < 0
    taken = table.take(np.where(missing, 0, pos)) if len(table) else table.reindex(range(len(pos)))
    taken = taken.reset_index(drop=True)
    if missing.any():
        taken = taken.astype(
            {c: ("float64" if taken[c].dtype.kind in "iub" else taken[c].dtype) for c in taken.columns}
        )
        taken.loc[missing, :] = None
    taken.index = index
    return taken


def _article_attributes(day: date, article_ids) -> pd.DataFrame:
    """Attributes of articles published within the view's TTL before the end of ``day``."""
    ttl_days = VIEWS["article_attributes"].ttl.days
    frames = []
    for age in range(ttl_days):
        path = partitions.view_path("article_attributes", day - timedelta(days=age))
        if path.exists():
            filters = None if article_ids is None else [("article_id", "in", list(article_ids))]
            frames.append(pd.read_parquet(path, filters=filters))
    columns = ["article_id"] + [f.name for f in view_features("article_attributes")]
    if not frames:
        return pd.DataFrame(columns=columns)
    attrs = pd.concat(frames, ignore_index=True).sort_values(TIMESTAMP)
    return attrs.drop_duplicates("article_id", keep="last")[columns]
