"""The rows of a published batch: the frames' checks before anything is written, and the
article details (title, url, category, publication) and user regions copied onto each row so
the reader answers with one primary-key lookup."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.errors import DataError, NewsrecError

log = logging.getLogger(__name__)

REC_COLUMNS = ("user_id", "rank", "article_id", "score", "reason")
FALLBACK_COLUMNS = ("region", "rank", "article_id", "score", "reason")
GLOBAL = "GLOBAL"


def check_frames(recommendations: pd.DataFrame, fallback: pd.DataFrame, keep: int) -> None:
    if keep < 1:
        raise NewsrecError("keep must be at least 1 (the live batch)")
    for name, frame, columns, key in (
        ("recommendations", recommendations, REC_COLUMNS, "user_id"),
        ("fallback", fallback, FALLBACK_COLUMNS, "region"),
    ):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataError(f"{name} lacks column(s) {', '.join(missing)}")
        if frame.empty:
            raise DataError(f"{name} is empty: refusing to publish a batch without it")
        if frame[list(columns)].isna().any().any():
            raise DataError(f"{name} has missing values in {', '.join(columns)}")
        ranks = frame["rank"].to_numpy()
        if ranks.min() < 1 or ranks.max() > 100:
            raise DataError(f"{name}: ranks must be within 1..100")
        if frame.duplicated([key, "rank"]).any():
            raise DataError(f"{name}: a {key} has the same rank twice")
    if GLOBAL not in set(fallback["region"]):
        raise DataError("fallback has no GLOBAL list (unknown users without a region need it)")


def _lookup(cur: Any, ids: np.ndarray, query: str) -> list[tuple]:
    """Run ``query`` (a named query's text) joined to a temporary table of ids (faster than a
    huge IN list)."""
    cur.execute(queries.load("publish_create_ids_table"))
    db.copy_frame(cur, "publish_ids", pd.DataFrame({"id": np.unique(ids).astype(np.int64)}))
    cur.execute(queries.load("publish_analyze_ids"))
    cur.execute(query)
    rows = cur.fetchall()
    cur.execute(queries.load("publish_clear_ids"))
    return rows


def denormalise(conn: Any, recs: pd.DataFrame, fallback: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add title, url, category and publication (and the user's region) from the warehouse.

    Unknown article ids are an error; articles of a publication flagged for misinformation
    since scoring are dropped and the ranks closed up.
    """
    article_ids = np.concatenate([recs["article_id"].to_numpy(np.int64), fallback["article_id"].to_numpy(np.int64)])
    with conn.cursor() as cur:
        rows = _lookup(
            cur,
            article_ids,
            queries.load("publish_article_info"),
        )
        info = pd.DataFrame(
            rows, columns=["article_id", "title", "url", "category", "publication", "flagged"]
        ).set_index("article_id")
        regions = _lookup(
            cur,
            recs["user_id"].to_numpy(np.int64),
            queries.load("publish_user_regions"),
        )
    conn.commit()
    known = pd.Index(info.index)
    unknown = np.setdiff1d(np.unique(article_ids), known.to_numpy(np.int64))
    if len(unknown):
        sample = ", ".join(str(a) for a in unknown[:5])
        raise DataError(f"{len(unknown)} article id(s) are not in the warehouse, e.g. {sample}")
    flagged = set(info.index[info["flagged"].astype(bool)])

    def complete(frame: pd.DataFrame, key: str) -> pd.DataFrame:
        out = frame.copy()
        if flagged:
            bad = out["article_id"].isin(flagged)
            if bad.any():
                log.warning("dropping %d row(s) of flagged publications from %s lists", int(bad.sum()), key)
                out = out[~bad].sort_values([key, "rank"], kind="stable")
                out["rank"] = out.groupby(key, sort=False).cumcount() + 1
        at = known.get_indexer(out["article_id"])
        for column in ("title", "url", "category", "publication"):
            out[column] = info[column].to_numpy(object)[at]
        return out

    recs = complete(recs, "user_id")
    region_of = pd.Series(dict(regions), dtype=object)
    recs["region"] = recs["user_id"].map(region_of).astype(object)
    return recs, complete(fallback, "region")
