"""The capped top-k kernel on candidate positions gives select_top's lists exactly: same
users, ranks, articles, scores and sources, with ties, NaN scores and crowded categories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.serving import top_k
from pipelines.serving.selection import reason_for, select_top

SOURCES = np.array(["taste", "interest", "trending", "fresh"], dtype=object)


def _chunk(seed: int, users: int, pool: int, n_cat: int):
    """Candidates grouped by user (unique articles per user), scores rounded for ties."""
    rng = np.random.default_rng(seed)
    per_user = rng.integers(0, 120, size=users)
    owner = np.repeat(np.arange(users), per_user)
    item = np.concatenate([rng.choice(pool, size=n, replace=False) for n in per_user]).astype(np.int64)
    source = rng.integers(0, 4, size=len(owner)).astype(np.int8)
    scores = rng.normal(size=len(owner)).round(1) + 0.0  # + 0.0: no -0.0 (see supported)
    scores[rng.random(len(owner)) < 0.03] = np.nan
    category = rng.choice(n_cat, size=pool, p=np.r_[0.7, np.full(n_cat - 1, 0.3 / (n_cat - 1))])
    return owner, item, source, scores, category


@pytest.mark.parametrize("seed, k, cap, head", [(1, 10, 3, 48), (2, 10, 3, 4), (3, 5, 1, 7), (4, 10, 10, 48)])
def test_same_lists_as_select_top(seed, k, cap, head, monkeypatch):
    monkeypatch.setattr(top_k, "HEAD", head)  # a small head forces the redo over all candidates
    users, pool, n_cat = 300, 500, 6
    owner, item, source, scores, category = _chunk(seed, users, pool, n_cat)
    user_ids = np.arange(users, dtype=np.int64) * 5 + 2
    article_ids = np.arange(pool, dtype=np.int64) * 3 + 11  # pool positions are in article id order
    frame = pd.DataFrame(
        {
            "user_id": user_ids[owner],
            "article_id": article_ids[item],
            "score": scores,
            "source": SOURCES[source],
            "category": np.array([f"c{c}" for c in range(n_cat)], dtype=object)[category[item]],
        }
    )
    expected = select_top(frame, k=k, max_per_category=cap)
    assert top_k.supported(scores, source, pool)
    got = top_k.capped_top_k(owner, item, source, scores, category, users, k, cap)
    assert len(got.owner) == len(expected) > 500
    np.testing.assert_array_equal(user_ids[got.owner], expected["user_id"].to_numpy())
    np.testing.assert_array_equal(got.rank, expected["rank"].to_numpy())
    np.testing.assert_array_equal(article_ids[got.item], expected["article_id"].to_numpy())
    np.testing.assert_array_equal(got.score.view(np.uint32), expected["score"].to_numpy().view(np.uint32))
    names = np.array([f"c{c}" for c in range(n_cat)], dtype=object)
    reasons = [reason_for(SOURCES[s], names[category[i]]) for s, i in zip(got.source, got.item, strict=True)]
    assert reasons == expected["reason"].tolist()


def test_negative_zero_and_large_pools_are_left_to_select_top():
    source = np.zeros(3, dtype=np.int8)
    assert not top_k.supported(np.array([0.5, -0.0, 1.0]), source, 10)
    assert not top_k.supported(np.array([0.5, 0.0, 1.0]), source, 1 << 30)
    assert not top_k.supported(np.array([0.5, 0.0, 1.0]), np.array([0, 4, 1], dtype=np.int8), 10)
    assert top_k.supported(np.array([0.5, 0.0, 1.0]), source, 10)
