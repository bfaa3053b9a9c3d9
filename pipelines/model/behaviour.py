"""Behavioural tests of a ranker: perturb what the model reads and check how it answers.

Each test changes feature columns that :func:`pipelines.features.matrix.to_matrix` turns into
the model's input, on held-out rows, and compares the scores with the unperturbed ones:

- ``invariance_plan``: whether a reader pays or is on a trial must not reorder their list
  (the plan is in the matrix as ``user_is_trial``; the ranking is about what they read).
- ``invariance_tenure``: among readers whose whole 28-day history is in the features, a
  longer tenure alone (+365 days) must not reorder their list.
- ``direction_affinity``: more affinity of the reader to the article's category (reads,
  dwell, share) must not lower scores on average.
- ``direction_freshness``: the same article published 6 hours later (newer, everything
  else equal) must not score lower on average.
- ``new_users``: the same lists as seen by a reader with no history (cold-start values
  of every user history feature) must still be ordered: most lists need a score range of at
  least ``tie_tolerance`` of a typical list's (not all ties).

Invariance is measured as the share of pairs of one list whose order flips; the limits
are in ``params.yaml`` (``promotion.tests``). The tests run on a seeded sample of lists so
they cost the same at every scale.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core.config import params
from pipelines.features.matrix import MatrixSpec, to_matrix

RULES = ("invariance_plan", "invariance_tenure", "direction_affinity", "direction_freshness", "new_users")
Predict = Callable[[pd.DataFrame], np.ndarray]

FRESHER_H = 6.0
TENURE_SHIFT_DAYS = 365
SETTLED_TENURE_DAYS = 28  # readers whose whole history window lies after their signup
# What a reader with no history has in each user history feature (features.transforms).
COLD_START: dict[str, float] = {
    "user_impressions_7d": 0, "user_reads_7d": 0, "user_ctr_7d": np.nan, "user_dwell_7d_s": 0.0,
    "user_reads_28d": 0, "user_dwell_28d_s": 0.0, "user_mean_dwell_28d_s": np.nan,
    "user_days_since_last_read": np.nan, "user_active_days_28d": 0, "user_tenure_days": 1, "user_is_trial": 1,
    "user_cat_impressions_28d": np.nan, "user_cat_reads_28d": np.nan, "user_cat_dwell_28d_s": np.nan,
    "user_cat_dwell_share_28d": np.nan, "user_cat_ctr_28d": np.nan,
}  # fmt: skip


def limits() -> dict[str, float]:
    cfg = params("promotion").get("tests", {})
    return {
        "max_groups": int(cfg.get("max_groups", 2000)),
        "max_flipped_pairs": float(cfg.get("max_flipped_pairs", 0.1)),
        "max_flipped_pairs_tenure": float(cfg.get("max_flipped_pairs_tenure", 0.25)),
        "min_ordered_new_user_lists": float(cfg.get("min_ordered_new_user_lists", 0.9)),
        "tie_tolerance": float(cfg.get("tie_tolerance", 0.05)),
    }


def sample_lists(rows: pd.DataFrame, max_groups: int, seed: int = 0) -> pd.DataFrame:
    """At most ``max_groups`` whole (day, user) lists of ``rows`` (seeded)."""
    keys = rows[["day", "user_id"]].drop_duplicates()
    if len(keys) > max_groups:
        keys = keys.sample(n=max_groups, random_state=seed)
        rows = rows.merge(keys, on=["day", "user_id"])
    return rows.reset_index(drop=True)


def list_ids(rows: pd.DataFrame) -> np.ndarray:
    return rows.groupby(["day", "user_id"], sort=False).ngroup().to_numpy()


def flipped_pairs(groups: np.ndarray, base: np.ndarray, moved: np.ndarray, eps: float = 1e-9) -> float:
    """The share of pairs in one list that the base scores order and the moved scores order
    the other way round (0 = the same ranking, 0.5 = unrelated)."""
    order = np.argsort(groups, kind="stable")
    g, b, m = groups[order], np.asarray(base, np.float64)[order], np.asarray(moved, np.float64)[order]
    bounds = np.flatnonzero(np.diff(g)) + 1
    flipped = counted = 0
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(g)], strict=True):
        if hi - lo < 2:
            continue
        db = b[lo:hi, None] - b[None, lo:hi]
        dm = m[lo:hi, None] - m[None, lo:hi]
        ordered = np.abs(db) > eps
        counted += int(ordered.sum())
        flipped += int((ordered & (np.sign(db) != np.sign(dm))).sum())
    return flipped / counted if counted else 0.0


def list_ranges(groups: np.ndarray, scores: np.ndarray) -> pd.Series:
    """Max minus min score of each list of two or more items."""
    frame = pd.DataFrame({"g": groups, "s": np.asarray(scores, np.float64)})
    stats = frame.groupby("g")["s"].agg(["max", "min", "size"])
    stats = stats[stats["size"] >= 2]
    return stats["max"] - stats["min"]


def ordered_lists(groups: np.ndarray, scores: np.ndarray, typical_range: float, tolerance: float) -> float:
    """The share of lists that are ordered: their score range is at least ``tolerance`` times
    ``typical_range`` (a list spread a hundred times thinner than usual is a tie in effect)."""
    ranges = list_ranges(groups, scores)
    return float((ranges > max(tolerance * typical_range, 1e-9)).mean()) if len(ranges) else 1.0


def _numeric(rows: pd.DataFrame, name: str) -> pd.Series:
    return pd.to_numeric(rows[name], errors="coerce")


def more_affinity(rows: pd.DataFrame) -> pd.DataFrame:
    keen = rows.copy()
    keen["user_cat_dwell_share_28d"] = (_numeric(keen, "user_cat_dwell_share_28d").fillna(0) + 0.3).clip(upper=1.0)
    for name, extra in (("user_cat_reads_28d", 3), ("user_cat_impressions_28d", 3), ("user_cat_dwell_28d_s", 180.0)):
        keen[name] = _numeric(keen, name).fillna(0) + extra
    keen["user_cat_ctr_28d"] = keen["user_cat_reads_28d"] / keen["user_cat_impressions_28d"]
    return keen


def fresher(rows: pd.DataFrame, hours: float = FRESHER_H) -> pd.DataFrame:
    """Each article published ``hours`` later, never after the request."""
    newer = rows.copy()
    ts = pd.to_datetime(newer["event_timestamp"], utc=True)
    request = ts.astype("int64").to_numpy() / {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[ts.dtype.unit]
    published = _numeric(newer, "article_published_ts").to_numpy(np.float64)
    newer["article_published_ts"] = np.minimum(published + hours * 3600.0, request)
    return newer


def other_plan(rows: pd.DataFrame) -> pd.DataFrame:
    flipped = rows.copy()
    flipped["user_is_trial"] = 1 - _numeric(flipped, "user_is_trial").fillna(0)
    return flipped


def longer_tenure(rows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    tenure = _numeric(rows, "user_tenure_days")
    settled = (tenure > SETTLED_TENURE_DAYS).to_numpy()
    older = rows.copy()
    older["user_tenure_days"] = tenure + TENURE_SHIFT_DAYS * settled
    return older, settled


def as_new_users(rows: pd.DataFrame) -> pd.DataFrame:
    cold = rows.copy()
    for name, value in COLD_START.items():
        if name in cold.columns:
            cold[name] = value
    return cold


def run(predict: Predict, spec: MatrixSpec, rows: pd.DataFrame) -> dict[str, Any]:
    """Every behavioural test on (a sample of) ``rows``: the measurements and a verdict each."""
    lim = limits()
    rows = sample_lists(rows, lim["max_groups"])
    if rows.empty:
        return {"rows": 0, "passed": {}}

    def score(frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(predict(to_matrix(frame, spec)), dtype=np.float64)

    groups = list_ids(rows)
    base = score(rows)
    plan = flipped_pairs(groups, base, score(other_plan(rows)))
    older, settled = longer_tenure(rows)
    tenure = flipped_pairs(groups[settled], base[settled], score(older)[settled]) if settled.any() else 0.0
    affinity = float(np.mean(score(more_affinity(rows)) - base))
    freshness = float(np.mean(score(fresher(rows)) - base))
    typical = float(list_ranges(groups, base).median()) if len(rows) > 1 else 0.0
    new_users = ordered_lists(groups, score(as_new_users(rows)), typical, lim["tie_tolerance"])
    out: dict[str, Any] = {
        "rows": len(rows),
        "lists": int(groups.max() + 1),
        "invariance_plan_flipped_pairs": plan,
        "invariance_tenure_flipped_pairs": tenure,
        "direction_affinity_mean_score_change": affinity,
        "direction_freshness_mean_score_change": freshness,
        "new_users_ordered_lists": new_users,
        "typical_list_score_range": typical,
        "limits": lim,
    }
    out["passed"] = {
        "invariance_plan": plan <= lim["max_flipped_pairs"],
        "invariance_tenure": tenure <= lim["max_flipped_pairs_tenure"],
        "direction_affinity": affinity >= 0.0,
        "direction_freshness": freshness >= 0.0,
        "new_users": new_users >= lim["min_ordered_new_user_lists"],
    }
    return out


def failures(tests: dict[str, Any]) -> list[tuple[str, str]]:
    """(rule, reason) for each behavioural test that failed."""
    lim = tests.get("limits", limits())
    passed = tests.get("passed", {})
    texts = {
        "invariance_plan": lambda: (
            f"changing only the reader's plan (trial/paid) flipped "
            f"{tests['invariance_plan_flipped_pairs']:.1%} of ordered pairs (limit {lim['max_flipped_pairs']:.0%})"
        ),
        "invariance_tenure": lambda: (
            f"a longer tenure alone (+{TENURE_SHIFT_DAYS} days) flipped "
            f"{tests['invariance_tenure_flipped_pairs']:.1%} of ordered pairs "
            f"(limit {lim['max_flipped_pairs_tenure']:.0%})"
        ),
        "direction_affinity": lambda: (
            "more affinity to the category changed scores by "
            f"{tests['direction_affinity_mean_score_change']:.3g} on average"
        ),
        "direction_freshness": lambda: (
            f"the same articles {FRESHER_H:g} h newer changed scores by "
            f"{tests['direction_freshness_mean_score_change']:.3g} on average"
        ),
        "new_users": lambda: (
            f"for readers with no history only {tests['new_users_ordered_lists']:.0%} of lists are ordered "
            f"(need {lim['min_ordered_new_user_lists']:.0%}; the rest spread under "
            f"{lim['tie_tolerance']:.0%} of a typical list's score range: ties in effect)"
        ),
    }
    return [(rule, texts[rule]()) for rule, ok in passed.items() if not ok and rule in texts]
