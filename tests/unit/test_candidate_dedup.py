"""Candidate dedup: for each (user, article) only the first row survives (the sources' priority
order), also when a chunk's sort key must be split across users."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.serving import candidates


def _first_rows(owner: np.ndarray, item: np.ndarray) -> np.ndarray:
    seen: set[tuple[int, int]] = set()
    keep = np.zeros(len(owner), dtype=bool)
    for r, pair in enumerate(zip(owner.tolist(), item.tolist(), strict=True)):
        if pair not in seen:
            seen.add(pair)
            keep[r] = True
    return keep


@pytest.mark.parametrize("key_bits", [63, 16, 12])  # 16 and 12: the key does not fit, the chunk is split
def test_first_of_each_article(key_bits, monkeypatch):
    monkeypatch.setattr(candidates, "_KEY_BITS", key_bits)
    rng = np.random.default_rng(key_bits)
    per_user = rng.integers(0, 40, size=60)  # some users without rows
    owner = np.repeat(np.arange(60) + 7, per_user)
    item = rng.integers(0, 30, size=len(owner))  # many repeats
    keep = candidates._first_of_each_article(owner, item, 70)
    assert keep.sum() < len(owner)
    np.testing.assert_array_equal(keep, _first_rows(owner, item))


def test_first_of_each_article_edges():
    assert candidates._first_of_each_article(np.zeros(0, np.int64), np.zeros(0, np.int64), 0).tolist() == []
    one = candidates._first_of_each_article(np.array([3, 3, 3]), np.array([0, 0, 0]), 4)
    assert one.tolist() == [True, False, False]
