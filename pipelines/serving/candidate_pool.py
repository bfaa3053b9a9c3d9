"""The per-day side of candidate generation: what every user of day D shares, loaded once.

The article pool (unflagged articles of the recent window, their engagement on D and a
popularity ``prior``), its ranked lists per category and per region and its freshest slice
(:func:`load_pool`, also read by the fallback lists), plus the day's active users, their top
categories, declared interests and recent reads (:func:`load_day_inputs`). The per-chunk
generation over these is in :mod:`pipelines.serving.candidates`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.config import known_fields, params
from pipelines.core.errors import ConfigError
from pipelines.features import partitions
from pipelines.warehouse.unknown_articles import UNKNOWN_CATEGORY

# The day's summary line keeps the logger of the candidate generation it belongs to.
log = logging.getLogger("pipelines.serving.candidates")


@dataclass(frozen=True)
class CandidateParams:
    """The ``serving.candidates`` section of params.yaml."""

    window_hours: float = 48.0
    max_per_user: int = 200
    chunk_users: int = 4_000
    new_user_days: int = 14
    read_exclusion_days: int = 7
    taste_categories: int = 3
    share_taste: float = 0.45
    share_interest: float = 0.15
    share_trending: float = 0.25
    share_fresh: float = 0.15
    trending_per_region: int = 200
    fresh_hours: float = 12.0
    fresh_pool: int = 1000
    freshness_decay_per_day: float = 1.0

    @classmethod
    def from_params(cls, **overrides: Any) -> CandidateParams:
        raw = dict(params("serving").get("candidates", {}))
        shares = raw.pop("shares", {}) or {}
        values = known_fields(cls, raw)
        values.update({f"share_{k}": v for k, v in shares.items() if f"share_{k}" in cls.__dataclass_fields__})
        values.update({k: v for k, v in overrides.items() if v is not None})
        made = cls(**values)
        made.validate()
        return made

    def validate(self) -> None:
        if self.max_per_user < 1 or self.window_hours <= 0 or self.taste_categories < 1:
            raise ConfigError("serving.candidates: max_per_user, window_hours, taste_categories must be > 0")
        shares = (self.share_taste, self.share_interest, self.share_trending, self.share_fresh)
        if min(shares) < 0 or abs(sum(shares) - 1.0) > 1e-6:
            raise ConfigError("serving.candidates.shares must be >= 0 and sum to 1")


@dataclass(frozen=True)
class RankedLists:
    """Several ranked lists of article positions stored flat, for vectorised slicing.

    List ``i`` (named ``keys[i]``) is ``items[starts[i] : starts[i] + lengths[i]]``.
    """

    keys: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    items: np.ndarray

    @classmethod
    def from_sorted(cls, keys: np.ndarray, items: np.ndarray) -> RankedLists:
        """``keys`` must be grouped (sorted) with each group's items in rank order."""
        if len(keys) == 0:
            empty = np.array([], dtype=np.int64)
            return cls(np.array([], dtype=object), empty, empty, empty)
        names, starts, lengths = np.unique(keys, return_index=True, return_counts=True)
        return cls(names, starts.astype(np.int64), lengths.astype(np.int64), items.astype(np.int64))

    def lookup(self, names: np.ndarray) -> np.ndarray:
        """Index of each name's list, -1 where there is none."""
        if len(self.keys) == 0 or len(names) == 0:
            return np.full(len(names), -1, dtype=np.int64)
        idx = np.searchsorted(self.keys, names)
        idx = np.minimum(idx, len(self.keys) - 1)
        return np.where(self.keys[idx] == names, idx, -1).astype(np.int64)

    def length_of(self, list_idx: np.ndarray) -> np.ndarray:
        if len(self.keys) == 0:
            return np.zeros(len(list_idx), dtype=np.int64)
        return np.where(list_idx >= 0, self.lengths[np.maximum(list_idx, 0)], 0)


@dataclass
class ArticlePool:
    """The articles that may be recommended for a day, and ranked lists over them.

    ``articles`` is positional (row i = article position i): article_id, publication_id,
    category, published_at, reads and dwell_s on D, and ``prior`` (engagement on D minus an
    age penalty; orders the category lists). ``region_reads`` has region, pos, reads, dwell_s.
    """

    day: date
    window_start: datetime
    window_end: datetime
    articles: pd.DataFrame
    by_category: RankedLists
    by_region: RankedLists
    fresh: np.ndarray
    region_reads: pd.DataFrame

    @property
    def size(self) -> int:
        return len(self.articles)


def day_bounds(day: date, window_hours: float) -> tuple[datetime, datetime]:
    """[start, end) of the candidate window: ``window_hours`` before the end of D (UTC)."""
    end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    return end - timedelta(hours=window_hours), end


def _types(**names: str) -> dict[str, Any]:
    """pyarrow column types for db.read_frame, so that empty results keep their dtypes."""
    import pyarrow as pa

    known = {
        "int64": pa.int64(),
        "float64": pa.float64(),
        "string": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    return {column: known[kind] for column, kind in names.items()}


def load_pool(conn: Any, day: date, p: CandidateParams) -> ArticlePool:
    """Read the day's candidate articles and their engagement on D from the warehouse."""
    start, end = day_bounds(day, p.window_hours)
    bounds = {"window_start": start, "window_end": end, "day_start": end - timedelta(days=1)}
    articles = db.read_frame(
        conn,
        queries.load("serving_candidate_pool"),
        bounds,
        _types(article_id="int64", publication_id="int64", category="string", published_at="timestamp"),
    )
    articles = articles.sort_values("article_id", kind="stable").reset_index(drop=True)
    articles["category"] = articles["category"].astype(object)
    reads = db.read_frame(
        conn,
        queries.load("serving_reads_by_region"),
        bounds,
        _types(region="string", article_id="int64", reads="int64", dwell_s="float64"),
    )
    # db.read_frame parses the text 'NA' as NULL; users.region is NOT NULL, so a NULL here is NA.
    reads["region"] = reads["region"].fillna("NA").astype(object)
    positions = pd.Index(articles["article_id"]).get_indexer(reads["article_id"])
    reads = reads.assign(pos=positions)[positions >= 0]

    totals = reads.groupby("pos")[["reads", "dwell_s"]].sum()
    articles["reads"] = totals["reads"].reindex(articles.index, fill_value=0).to_numpy(np.int64)
    articles["dwell_s"] = totals["dwell_s"].reindex(articles.index, fill_value=0.0).to_numpy(np.float64)
    age_days = (end - articles["published_at"]).dt.total_seconds().to_numpy() / 86_400.0
    articles["prior"] = np.log1p(articles["dwell_s"].to_numpy()) - p.freshness_decay_per_day * age_days

    by_cat = articles.assign(pos=articles.index).sort_values(
        ["category", "prior", "article_id"], ascending=[True, False, True], kind="stable"
    )
    by_category = RankedLists.from_sorted(by_cat["category"].to_numpy(object), by_cat["pos"].to_numpy(np.int64))

    trending = reads.sort_values(
        ["region", "reads", "dwell_s", "article_id"], ascending=[True, False, False, True], kind="stable"
    )
    trending = trending[trending.groupby("region").cumcount() < p.trending_per_region]
    by_region = RankedLists.from_sorted(trending["region"].to_numpy(object), trending["pos"].to_numpy(np.int64))

    newest = articles.assign(pos=articles.index).sort_values(
        ["published_at", "article_id"], ascending=[False, True], kind="stable"
    )
    recent = newest[newest["published_at"] >= end - timedelta(hours=p.fresh_hours)]
    fresh = (recent if len(recent) else newest)["pos"].to_numpy(np.int64)[: p.fresh_pool]
    region_reads = reads[["region", "pos", "reads", "dwell_s"]].reset_index(drop=True)
    return ArticlePool(day, start, end, articles, by_category, by_region, fresh, region_reads)


@dataclass
class DayInputs:
    """Everything shared by the chunks of one day."""

    pool: ArticlePool
    users: pd.DataFrame  # user_id (sorted), region, is_new
    taste: pd.DataFrame  # user_id, category, share (normalised over the user's top categories)
    interests: pd.DataFrame  # user_id, category
    reads: pd.DataFrame  # user_id, pos (sorted by user_id)


def load_day_inputs(day: date, p: CandidateParams) -> DayInputs:
    partitions.require_day(day)  # fail before reading the warehouse
    _, end = day_bounds(day, p.window_hours)
    conn = db.connect()
    try:
        pool = load_pool(conn, day, p)
        users = db.read_frame(
            conn,
            queries.load("serving_users"),
            {"day": day, "new_since": day - timedelta(days=p.new_user_days)},
            _types(user_id="int64", region="string", interests="string", is_new="int64"),
        )
        reads_since = min(pool.window_start, end - timedelta(days=p.read_exclusion_days))
        reads = db.read_frame(
            conn,
            queries.load("serving_user_reads"),
            {"reads_since": reads_since, "window_start": pool.window_start, "window_end": end},
            _types(user_id="int64", article_id="int64"),
        )
    finally:
        conn.close()
    users["region"] = users["region"].fillna("NA").astype(object)  # 'NA' read back as NULL, see above
    users["interests"] = users["interests"].fillna("").astype(str)

    # Active: any impression in the feature window (28 days) or a recent signup.
    activity = partitions.read_view("user_activity", day, columns=["user_id", "user_active_days_28d"])
    seen = activity.loc[activity["user_active_days_28d"] > 0, "user_id"].to_numpy(np.int64)
    active = users["user_id"].isin(seen) | (users["is_new"] == 1)
    users = users[active].sort_values("user_id").reset_index(drop=True)
    users["user_id"] = users["user_id"].astype(np.int64)

    shares = partitions.read_view("user_category", day, columns=["user_id", "category", "user_cat_dwell_share_28d"])
    shares = shares[
        (shares["user_cat_dwell_share_28d"] > 0)
        & shares["user_id"].isin(users["user_id"])
        & (shares["category"] != UNKNOWN_CATEGORY)  # reads of unknown-metadata articles: no candidates there
    ]
    shares = shares.sort_values(
        ["user_id", "user_cat_dwell_share_28d", "category"], ascending=[True, False, True], kind="stable"
    )
    shares = shares[shares.groupby("user_id").cumcount() < p.taste_categories]
    total = shares.groupby("user_id")["user_cat_dwell_share_28d"].transform("sum")
    taste = pd.DataFrame(
        {
            "user_id": shares["user_id"].to_numpy(np.int64),
            "category": shares["category"].to_numpy(object),
            "share": (shares["user_cat_dwell_share_28d"] / total).to_numpy(np.float64),
        }
    )

    interests = users[["user_id", "interests"]].assign(category=users["interests"].str.split(","))
    interests = interests.explode("category")
    interests = interests[interests["category"].notna() & (interests["category"] != "")]
    interests = interests[["user_id", "category"]].drop_duplicates().reset_index(drop=True)
    interests["category"] = interests["category"].astype(object)

    positions = pd.Index(pool.articles["article_id"]).get_indexer(reads["article_id"])
    reads = pd.DataFrame({"user_id": reads["user_id"].to_numpy(np.int64), "pos": positions})
    reads = reads[reads["pos"] >= 0].sort_values(["user_id", "pos"]).reset_index(drop=True)
    log.info(
        "candidates %s: %d active users, %d articles, %d taste rows, %d recent reads",
        day, len(users), pool.size, len(taste), len(reads),
    )  # fmt: skip
    return DayInputs(pool, users[["user_id", "region", "is_new"]], taste, interests, reads)
