"""Top-k selection: each user's best k scored candidates, at most a few per category, with a
short reason per item; and the cold-start fallback lists per region.

The category cap is a greedy pass in score order (an item is skipped when its category is
already full), done with sorts and run-length counters instead of a loop over users, so it
keeps up with ~100M scored rows a night. Reasons come from the candidate source and
category, which costs nothing at batch time (per-item TreeSHAP would take hours).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.config import params
from pipelines.core.errors import DataError, NewsrecError
from pipelines.serving.candidates import CandidateParams, load_pool

GLOBAL = "GLOBAL"
REQUIRED = ("user_id", "article_id", "score", "source", "category")
OUTPUT = ("user_id", "rank", "article_id", "score", "reason")

REASONS = {
    "taste": "Because you read {category}",
    "interest": "Matches your interest in {category}",
    "trending": "Trending in your region",
    "fresh": "New today",
}
DEFAULT_REASON = "Recommended for you"
# Display names where title-casing the category id reads badly (simulator and MIND ids).
CATEGORY_LABELS = {
    "foodanddrink": "Food & Drink",
    "tv": "TV",
    "middleeast": "Middle East",
    "northamerica": "North America",
    "news": "News",
}


def category_label(category: Any) -> str:
    text = "" if category is None or (isinstance(category, float) and np.isnan(category)) else str(category)
    return CATEGORY_LABELS.get(text, text.replace("_", " ").title() or "your topics")


def reason_for(source: Any, category: Any) -> str:
    template = REASONS.get(str(source), DEFAULT_REASON)
    return template.format(category=category_label(category))


def _run_position(keys: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal consecutive keys."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.arange(n, dtype=np.int64)
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(keys[1:], keys[:-1], out=starts[1:])
    return idx - np.maximum.accumulate(np.where(starts, idx, 0))


def _score_order(group_codes: np.ndarray, scores: np.ndarray, articles: np.ndarray) -> np.ndarray:
    """Row order by group, score descending, then article id: one sort of a 64-bit key
    (group code, order-preserving bits of the float32 score), then a second sort only over
    exact ties. ~10x faster than a three-key lexsort at 10M rows. Scores compare at float32
    precision, which is what the serving tables store."""
    bits = (scores + np.float32(0)).view(np.uint32)  # + 0 turns -0.0 into 0.0
    ascending = np.where(bits & np.uint32(0x80000000), ~bits, bits | np.uint32(0x80000000))
    key = (group_codes.astype(np.uint64) << np.uint64(32)) | (~ascending).astype(np.uint64)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    same = sorted_key[1:] == sorted_key[:-1]
    if same.any():
        tied = np.zeros(len(order), dtype=bool)
        tied[1:] |= same
        tied[:-1] |= same
        at = np.flatnonzero(tied)
        rows = order[at]
        order[at] = rows[np.lexsort((articles[rows], sorted_key[at]))]
    return order


def capped_top(frame: pd.DataFrame, group: str, k: int, max_per_category: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of the greedy top-k per ``group`` (score desc, then article_id) with at most
    ``max_per_category`` per category; returns them in rank order and their ranks (1..k)."""
    if k < 1 or max_per_category < 1:
        raise NewsrecError("k and max_per_category must be at least 1")
    scores = frame["score"].to_numpy(np.float32)
    rows = np.flatnonzero(~np.isnan(scores))  # rows without a score are ignored
    group_codes = pd.factorize(frame[group].to_numpy()[rows])[0]
    articles = frame["article_id"].to_numpy(np.int64)[rows]
    order = _score_order(group_codes, scores[rows], articles)
    g = group_codes[order].astype(np.int64)
    # The same article twice for one group: keep its best-scored (earliest) row. A hash of
    # (group, article) codes: much cheaper than another sort at 10M rows.
    article_codes = pd.factorize(articles[order])[0].astype(np.int64)
    pair = g * (int(article_codes.max(initial=0)) + 1) + article_codes
    first = ~pd.Series(pair).duplicated().to_numpy()
    order, g = order[first], g[first]

    cat_codes = pd.factorize(frame["category"].to_numpy()[rows[order]], use_na_sentinel=False)[0]
    n_cat = int(cat_codes.max()) + 1 if len(cat_codes) else 1
    group_cat = g * n_cat + cat_codes
    by_cat = np.argsort(group_cat, kind="stable")  # stable: score order kept inside each run
    cat_rank = np.empty(len(order), dtype=np.int64)
    cat_rank[by_cat] = _run_position(group_cat[by_cat])
    allowed = cat_rank < max_per_category
    order, g = order[allowed], g[allowed]

    rank = _run_position(g) + 1
    within = rank <= k
    return frame.iloc[rows[order[within]]], rank[within]


def _reasons(source: np.ndarray, category: np.ndarray) -> np.ndarray:
    """One reason per row, computed once per distinct (source, category) pair."""
    if len(source) == 0:
        return np.array([], dtype=object)
    pairs = pd.MultiIndex.from_arrays([source, category])
    codes, uniques = pd.factorize(pairs)
    texts = np.array([reason_for(s, c) for s, c in uniques], dtype=object)
    return texts[codes]


def select_top(scored: pd.DataFrame, k: int = 10, max_per_category: int = 3) -> pd.DataFrame:
    """Each user's top ``k`` by score, at most ``max_per_category`` per category, ranked 1..k,
    with a reason per item: columns user_id, rank, article_id, score, reason (and ``arm`` and
    ``model_version`` when the input has them). Rows without a score are ignored; ties go to the lower article id.
    """
    missing = [c for c in REQUIRED if c not in scored.columns]
    if missing:
        raise DataError(f"scored frame lacks column(s) {', '.join(missing)}")
    top, rank = capped_top(scored, "user_id", k, max_per_category)
    out = pd.DataFrame(
        {
            "user_id": top["user_id"].to_numpy(np.int64),
            "rank": rank.astype(np.int16),
            "article_id": top["article_id"].to_numpy(np.int64),
            "score": top["score"].to_numpy(np.float32),
            "reason": _reasons(top["source"].to_numpy(object), top["category"].to_numpy(object)),
        }
    )
    for column in ("arm", "model_version"):
        if column in scored.columns:
            out[column] = top[column].to_numpy(object)
    return out


def fallback_lists(day: date, k: int = 10) -> pd.DataFrame:
    """Cold-start lists for users without a personal list: per region (most read on D by the
    region's users) and GLOBAL (most read overall), from recent unflagged articles, filled up
    with the freshest popular ones where reads are thin. Same category cap as personal lists.
    Columns region, rank, article_id, score, reason.
    """

    cap = int(params("serving").get("selection", {}).get("max_per_category", 3))
    p = CandidateParams.from_params()
    conn = db.connect()
    try:
        pool = load_pool(conn, day, p)
        with conn.cursor() as cur:
            cur.execute(queries.load("serving_user_regions"))
            regions = [r[0] for r in cur.fetchall()]
    finally:
        conn.close()
    arts = pool.articles
    if arts.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _FALLBACK_TYPES.items()})
    # Articles without reads rank after any read one, in order of their prior.
    prior_rank = arts["prior"].rank(method="first", ascending=True).to_numpy() / (len(arts) + 1)
    frames = []
    totals = pool.region_reads.groupby("pos")["reads"].sum()
    for region in [*regions, GLOBAL]:
        if region == GLOBAL:
            reads = totals
        else:
            reads = pool.region_reads[pool.region_reads["region"] == region].set_index("pos")["reads"]
        reads = reads.reindex(arts.index, fill_value=0).to_numpy(np.float64)
        frames.append(
            pd.DataFrame(
                {
                    "region": region,
                    "article_id": arts["article_id"].to_numpy(np.int64),
                    "score": reads + prior_rank,
                    "category": arts["category"].to_numpy(object),
                    "read": reads > 0,
                }
            )
        )
    scored = pd.concat(frames, ignore_index=True)
    top, rank = capped_top(scored, "region", k, cap)
    popular = np.where(top["region"] == GLOBAL, "Popular right now", "Popular in " + top["region"].astype(str))
    return pd.DataFrame(
        {
            "region": top["region"].to_numpy(object),
            "rank": rank.astype(np.int16),
            "article_id": top["article_id"].to_numpy(np.int64),
            "score": top["score"].to_numpy(np.float32),
            "reason": np.where(top["read"].to_numpy(bool), popular, REASONS["fresh"]).astype(object),
        }
    )


_FALLBACK_TYPES = {"region": object, "rank": np.int16, "article_id": np.int64, "score": np.float32, "reason": object}
