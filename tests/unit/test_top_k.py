"""The capped top-k kernel on candidate positions gives select_top's lists exactly: same
users, ranks, articles, scores and sources, with ties, NaN scores and crowded categories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.core.errors import NewsrecError
from pipelines.serving import top_k
from pipelines.serving.selection import reason_for, select_top

SOURCES = np.array(["taste", "interest", "trending", "fresh"], dtype=object)


def _chunk(seed: int, users: int, pool: int, n_cat: int, max_candidates: int = 120):
    """Candidates grouped by user (unique articles per user, some users without any), scores
    rounded for ties, a few NaN, one crowded category."""
    rng = np.random.default_rng(seed)
    per_user = rng.integers(0, max_candidates, size=users)
    owner = np.repeat(np.arange(users), per_user)
    item = np.concatenate([rng.choice(pool, size=n, replace=False) for n in per_user]).astype(np.int64)
    source = rng.integers(0, 4, size=len(owner)).astype(np.int8)
    scores = rng.normal(size=len(owner)).round(1) + 0.0  # + 0.0: no -0.0 (see supported)
    scores[rng.random(len(owner)) < 0.03] = np.nan
    category = rng.choice(n_cat, size=pool, p=np.r_[0.7, np.full(n_cat - 1, 0.3 / (n_cat - 1))])
    return owner, item, source, scores, category


def _frame(owner, item, source, scores, category, user_ids, article_ids, n_cat):
    return pd.DataFrame(
        {
            "user_id": user_ids[owner],
            "article_id": article_ids[item],
            "score": scores,
            "source": SOURCES[source],
            "category": np.array([f"c{c}" for c in range(n_cat)], dtype=object)[category[item]],
        }
    )


def _assert_same(got, expected, user_ids, article_ids, category, n_cat):
    np.testing.assert_array_equal(user_ids[got.owner], expected["user_id"].to_numpy())
    np.testing.assert_array_equal(got.rank, expected["rank"].to_numpy())
    np.testing.assert_array_equal(article_ids[got.item], expected["article_id"].to_numpy())
    np.testing.assert_array_equal(got.score.view(np.uint32), expected["score"].to_numpy().view(np.uint32))
    names = np.array([f"c{c}" for c in range(n_cat)], dtype=object)
    reasons = [reason_for(SOURCES[s], names[category[i]]) for s, i in zip(got.source, got.item, strict=True)]
    assert reasons == expected["reason"].tolist()


# k above a user's candidate count, the cap binding hard (cap 1, one crowded category), no cap in effect
@pytest.mark.parametrize(
    "seed, k, cap, max_candidates", [(1, 10, 3, 120), (2, 10, 3, 8), (3, 5, 1, 120), (4, 10, 10, 120), (5, 30, 2, 40)]
)
def test_same_lists_as_select_top(seed, k, cap, max_candidates):
    users, pool, n_cat = 300, 500, 6
    owner, item, source, scores, category = _chunk(seed, users, pool, n_cat, max_candidates)
    user_ids = np.arange(users, dtype=np.int64) * 5 + 2
    article_ids = np.arange(pool, dtype=np.int64) * 3 + 11  # pool positions are in article id order
    expected = select_top(
        _frame(owner, item, source, scores, category, user_ids, article_ids, n_cat), k=k, max_per_category=cap
    )
    assert top_k.supported(scores, source, pool, n_cat)
    got = top_k.capped_top_k(owner, item, source, scores, category, users, k, cap)
    assert len(got.owner) == len(expected) > 500
    short = expected.groupby("user_id").size()
    assert (short < k).any()  # some lists are not full (few candidates or the cap)
    per_cat = pd.Series(1, index=pd.MultiIndex.from_arrays([got.owner, category[got.item]])).groupby(level=[0, 1]).sum()
    assert per_cat.max() == min(cap, k)  # the cap binds somewhere and is never passed
    _assert_same(got, expected, user_ids, article_ids, category, n_cat)


def test_ties_go_to_the_lower_article_and_the_cap_counts_skipped_items():
    # one user: one clear best (c0), then five ties in article order; c0 is full after two,
    # so its later ties are skipped and the list fills from c1
    owner = np.zeros(6, dtype=np.int64)
    item = np.array([5, 4, 3, 2, 1, 0], dtype=np.int64)
    source = np.array([0, 1, 2, 3, 0, 1], dtype=np.int8)
    scores = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.9])
    category = np.array([0, 0, 0, 1, 0, 1])
    got = top_k.capped_top_k(owner, item, source, scores, category, 1, 4, 2)
    assert got.item.tolist() == [0, 1, 3, 5]
    assert got.rank.tolist() == [1, 2, 3, 4] and got.source.tolist() == [1, 0, 2, 0]
    ids = np.arange(6, dtype=np.int64)
    expected = select_top(_frame(owner, item, source, scores, category, ids[:1], ids, 2), k=4, max_per_category=2)
    _assert_same(got, expected, ids[:1], ids, category, 2)


def test_empty_chunks_and_users_without_candidates():
    category = np.array([0, 1, 0])
    empty = top_k.capped_top_k(
        *(np.zeros(0, dtype=np.int64),) * 2, np.zeros(0, dtype=np.int8), np.zeros(0), category, 5, 10, 3
    )
    assert len(empty.owner) == len(empty.rank) == len(empty.score) == 0
    nan = top_k.capped_top_k(
        np.array([1, 1]), np.array([0, 1]), np.zeros(2, dtype=np.int8), np.array([np.nan, np.nan]), category, 3, 10, 3
    )
    assert len(nan.owner) == 0
    one = top_k.capped_top_k(
        np.array([2]), np.array([1]), np.array([3], dtype=np.int8), np.array([-1.5]), category, 4, 10, 3
    )
    assert (
        one.owner.tolist() == [2]
        and one.rank.tolist() == [1]
        and one.item.tolist() == [1]
        and one.score.tolist() == [-1.5]
    )
    with pytest.raises(NewsrecError):
        top_k.capped_top_k(np.array([0]), np.array([0]), np.zeros(1, dtype=np.int8), np.array([1.0]), category, 1, 0, 3)


def test_negative_zero_and_large_pools_are_left_to_select_top():
    source = np.zeros(3, dtype=np.int8)
    assert not top_k.supported(np.array([0.5, -0.0, 1.0]), source, 10)
    assert not top_k.supported(np.array([0.5, 0.0, 1.0]), source, 1 << 30)
    assert not top_k.supported(np.array([0.5, 0.0, 1.0]), source, 1 << 20, 1 << 11)  # 20 + 11 bits > 30
    assert top_k.supported(np.array([0.5, 0.0, 1.0]), source, 1 << 20, 1 << 10)
    assert not top_k.supported(np.array([0.5, 0.0, 1.0]), np.array([0, 4, 1], dtype=np.int8), 10)
    assert top_k.supported(np.array([0.5, 0.0, 1.0]), source, 10)
