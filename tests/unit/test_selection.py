"""Top-k selection with a category cap: exact greedy semantics, reasons, edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.core.errors import DataError, NewsrecError
from pipelines.serving.selection import category_label, reason_for, select_top

CATEGORIES = ["sports", "news", "travel", "foodanddrink", "finance"]
SOURCES = ["taste", "interest", "trending", "fresh"]


def _random_scored(seed: int, users: int = 40, per_user: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = users * per_user
    category_of = rng.choice(CATEGORIES, size=200, p=[0.6, 0.1, 0.1, 0.1, 0.1])  # an article has one
    articles = rng.integers(1, 200, size=n)  # repeats inside a user on purpose
    return pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(users, dtype=np.int64) * 7 + 3, per_user),
            "article_id": articles,
            "score": rng.normal(size=n).round(1),  # ties on purpose
            "source": rng.choice(SOURCES, size=n),
            "category": category_of[articles],
        }
    )


def _greedy(frame: pd.DataFrame, k: int, cap: int) -> dict[int, list[int]]:
    """The specification, one user at a time: best score first (ties: lower article id),
    skip repeated articles and full categories, stop at k."""
    out: dict[int, list[int]] = {}
    for user, rows in frame.groupby("user_id"):
        rows = rows.sort_values(["score", "article_id"], ascending=[False, True], kind="stable")
        taken: list[int] = []
        per_cat: dict[str, int] = {}
        seen: set[int] = set()
        for art, cat in zip(rows["article_id"], rows["category"], strict=True):
            if len(taken) == k:
                break
            if art in seen:
                continue
            seen.add(art)
            if per_cat.get(cat, 0) >= cap:
                continue
            per_cat[cat] = per_cat.get(cat, 0) + 1
            taken.append(int(art))
        out[int(user)] = taken
    return out


@pytest.mark.parametrize("seed, k, cap", [(1, 10, 3), (2, 5, 1), (3, 10, 10), (4, 3, 2)])
def test_matches_the_greedy_specification(seed, k, cap):
    scored = _random_scored(seed)
    top = select_top(scored, k=k, max_per_category=cap)
    got = {int(u): rows.sort_values("rank")["article_id"].tolist() for u, rows in top.groupby("user_id")}
    assert got == _greedy(scored, k, cap)


def test_category_cap_ranks_and_order_hold():
    scored = _random_scored(7, users=200)
    top = select_top(scored, k=10, max_per_category=3)
    assert list(top.columns) == ["user_id", "rank", "article_id", "score", "reason"]
    cats = scored.drop_duplicates(["user_id", "article_id"]).set_index(["user_id", "article_id"])["category"]
    top_cats = cats.reindex(pd.MultiIndex.from_frame(top[["user_id", "article_id"]])).to_numpy()
    per_cat = pd.Series(1, index=pd.MultiIndex.from_arrays([top["user_id"], top_cats])).groupby(level=[0, 1]).sum()
    assert per_cat.max() <= 3
    for _, rows in top.groupby("user_id"):
        assert rows["rank"].tolist() == list(range(1, len(rows) + 1))
        assert rows["score"].is_monotonic_decreasing
        assert rows["article_id"].is_unique
    assert top["rank"].dtype == np.int16 and top["user_id"].dtype == np.int64


def test_cap_can_leave_a_list_short_rather_than_break_it():
    scored = pd.DataFrame(
        {
            "user_id": [1] * 6,
            "article_id": [10, 11, 12, 13, 14, 15],
            "score": [6.0, 5, 4, 3, 2, 1],
            "source": ["taste"] * 6,
            "category": ["sports"] * 5 + ["news"],
        }
    )
    top = select_top(scored, k=10, max_per_category=2)
    assert top["article_id"].tolist() == [10, 11, 15]
    assert top["rank"].tolist() == [1, 2, 3]


def test_reasons_come_from_source_and_category():
    scored = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 1, 1],
            "article_id": [1, 2, 3, 4, 5],
            "score": [5.0, 4, 3, 2, 1],
            "source": ["taste", "interest", "trending", "fresh", "mystery"],
            "category": ["sports", "foodanddrink", "news", "travel", "tv"],
        }
    )
    reasons = select_top(scored)["reason"].tolist()
    assert reasons == [
        "Because you read Sports",
        "Matches your interest in Food & Drink",
        "Trending in your region",
        "New today",
        "Recommended for you",
    ]
    assert category_label("middleeast") == "Middle East"
    assert reason_for("taste", None) == "Because you read your topics"


def test_missing_scores_are_ignored_and_arm_passes_through():
    scored = pd.DataFrame(
        {
            "user_id": [1, 1, 2],
            "article_id": [1, 2, 3],
            "score": [np.nan, 1.0, 2.0],
            "source": ["taste"] * 3,
            "category": ["a"] * 3,
            "arm": ["control", "control", "treatment"],
        }
    )
    top = select_top(scored)
    assert top[["user_id", "article_id", "arm"]].values.tolist() == [[1, 2, "control"], [2, 3, "treatment"]]


def test_empty_input_and_bad_arguments():
    empty = pd.DataFrame({c: [] for c in ["user_id", "article_id", "score", "source", "category"]})
    assert select_top(empty).empty
    with pytest.raises(DataError, match="category"):
        select_top(empty.drop(columns=["category"]))
    with pytest.raises(NewsrecError):
        select_top(_random_scored(1), k=0)


def test_a_large_frame_gives_every_user_ten_capped_items_best_first():
    """Many users at once (the vectorised path); its speed is the scoring benchmark's business."""
    rng = np.random.default_rng(0)
    users, per_user = 5_000, 60
    n = users * per_user
    scored = pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(users, dtype=np.int64), per_user),
            "article_id": rng.integers(0, 50_000, size=n),
            "score": rng.random(n),
            "source": np.array(SOURCES, dtype=object)[rng.integers(0, 4, size=n)],
            "category": np.array(CATEGORIES, dtype=object)[rng.integers(0, 5, size=n)],
        }
    )
    scored = scored.drop_duplicates(["user_id", "article_id"])
    top = select_top(scored)
    assert len(top) == users * 10
    assert top.groupby("user_id")["rank"].agg(list).map(lambda ranks: ranks == list(range(1, 11))).all()
    merged = top.merge(scored[["user_id", "article_id", "category"]], on=["user_id", "article_id"])
    assert merged.groupby(["user_id", "category"]).size().max() <= 3  # the category cap
    by_rank = top.sort_values(["user_id", "rank"])
    assert (by_rank.groupby("user_id")["score"].diff().dropna() <= 0).all()  # best first
