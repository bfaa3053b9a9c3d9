"""MIND's per-impression metrics on hand-made slates, and the baselines' arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipelines.model.impression_eval import baseline_scores, render
from pipelines.model.ranking_metrics import impression_metrics

L2 = math.log2


def _one(clicks, scores, tiebreak=None):
    n = len(clicks)
    return impression_metrics(np.zeros(n, dtype=int), np.array(clicks), np.array(scores, dtype=float), tiebreak)


def test_perfect_slate():
    m = _one([1, 0, 0], [0.9, 0.5, 0.1])
    assert (m["auc"], m["mrr"], m["ndcg@5"], m["ndcg@10"], m["impressions"]) == (1.0, 1.0, 1.0, 1.0, 1)


def test_two_clicks_ranked_second_and_fourth():
    m = _one([0, 1, 0, 1], [4, 3, 2, 1])
    assert m["auc"] == pytest.approx(0.25)  # of the 4 (click, non-click) pairs only (3 > 2) is right
    assert m["mrr"] == pytest.approx((1 / 2 + 1 / 4) / 2)  # MIND: mean of 1/rank over the clicks
    ndcg = (1 / L2(3) + 1 / L2(5)) / (1 + 1 / L2(3))
    assert m["ndcg@5"] == pytest.approx(ndcg) and m["ndcg@10"] == pytest.approx(ndcg)


def test_cutoff_separates_ndcg_at_5_and_10():
    m = _one([0, 0, 0, 0, 0, 0, 1, 0], [8, 7, 6, 5, 4, 3, 2, 1])
    assert m["ndcg@5"] == 0.0
    assert m["ndcg@10"] == pytest.approx(1 / L2(8))
    assert m["mrr"] == pytest.approx(1 / 7)
    assert m["auc"] == pytest.approx(1 / 7)


def test_ties_count_half_in_auc_and_follow_the_tiebreak_in_ranks():
    first = _one([1, 0], [0.5, 0.5], tiebreak=np.array([0, 1]))
    last = _one([1, 0], [0.5, 0.5], tiebreak=np.array([1, 0]))
    assert first["auc"] == last["auc"] == 0.5
    assert first["mrr"] == 1.0 and last["mrr"] == 0.5
    assert last["ndcg@10"] == pytest.approx(1 / L2(3))
    # a click tied with one of two non-clicks: beats one, ties one -> (1 + 0.5) / 2
    assert _one([1, 0, 0], [2, 2, 1])["auc"] == pytest.approx(0.75)


def test_slates_without_a_click_or_all_clicked_are_skipped_and_counted():
    slates = np.array(["a", "a", "b", "b", "c", "d", "d"])
    clicks = np.array([1, 0, 0, 0, 1, 1, 1])
    scores = np.array([0.0, 1.0, 0.3, 0.2, 0.5, 0.1, 0.9])
    m = impression_metrics(slates, clicks, scores)
    assert (m["impressions"], m["no_click"], m["all_clicked"]) == (1, 1, 2)
    assert m["auc"] == 0.0 and m["mrr"] == 0.5  # slate "a" alone: its click ranked second
    none = impression_metrics(np.array([1, 1]), np.array([0, 0]), np.array([0.1, 0.2]))
    assert none["impressions"] == 0 and math.isnan(none["auc"]) and none["no_click"] == 1


def _mind(clicks: np.ndarray, scores: np.ndarray) -> tuple[float, float, float, float]:
    """The benchmark's definitions, one slate at a time, for distinct scores."""
    order = np.argsort(-scores)
    ranked = clicks[order]
    pos, neg = scores[clicks == 1], scores[clicks == 0]
    auc = np.mean([p > q for p in pos for q in neg])
    mrr = np.sum(ranked / np.arange(1, len(ranked) + 1)) / ranked.sum()

    def ndcg(k):
        disc = 1 / np.log2(np.arange(2, len(clicks) + 2))[:k]
        ideal = np.sort(clicks)[::-1][:k]
        return np.sum(ranked[:k] * disc) / np.sum(ideal * disc)

    return auc, mrr, ndcg(5), ndcg(10)


def test_mean_over_slates_matches_the_benchmarks_definitions():
    rng = np.random.default_rng(3)
    slates, clicks, scores, ref = [], [], [], []
    for s in range(60):
        n = int(rng.integers(2, 25))
        c = (rng.random(n) < 0.25).astype(int)
        c[rng.integers(n)] = 1
        x = rng.random(n)
        slates += [s] * n
        clicks += list(c)
        scores += list(x)
        if 0 < c.sum() < n:
            ref.append(_mind(c, x))
    m = impression_metrics(np.array(slates), np.array(clicks), np.array(scores))
    assert m["impressions"] == len(ref)
    for name, value in zip(("auc", "mrr", "ndcg@5", "ndcg@10"), np.mean(ref, axis=0), strict=True):
        assert m[name] == pytest.approx(value)


def test_baselines_from_history():
    history = pd.DataFrame(
        {"published_s": [100.0, 300.0], "reads": [5.0, 0.0], "impressions": [10.0, 0.0], "clicked": [4.0, 0.0]},
        index=pd.Index([1, 2], name="article_id"),
    )
    b = baseline_scores(np.array([2, 1, 3]), history, publish_times=True, prior_strength=10, seed=0)
    assert list(b["popularity"]) == [0.0, 5.0, 0.0]  # article 3: no history
    prior = 4 / 10
    assert b["smoothed_ctr"] == pytest.approx([prior, (4 + 10 * prior) / 20, prior])
    assert list(b["recency"][:2]) == [300.0, 100.0]
    assert np.array_equal(b["random"], baseline_scores(np.array([2, 1, 3]), history, publish_times=True,
                                                       prior_strength=10, seed=0)["random"])  # fmt: skip
    assert baseline_scores(np.array([1]), history, publish_times=False, prior_strength=10, seed=0)["recency"] is None


def test_render_marks_recency_not_applicable_and_the_skipped_slates():
    m = {"auc": 0.7, "mrr": 0.5, "ndcg@5": 0.6, "ndcg@10": 0.65, "impressions": 3, "no_click": 2, "all_clicked": 1}
    table = {"day": "2026-05-09", "scorers": {"model": m, "random": m}, "not_applicable": ["recency"],
             "impressions": 3, "no_click": 2, "all_clicked": 1}  # fmt: skip
    text = render(table)
    assert "| recency | n/a | n/a | n/a | n/a | - |" in text
    assert "skipped: 2 without a click, 1 with every article clicked" in text
    assert "| model | 0.7000 | 0.5000 | 0.6000 | 0.6500 | 3 |" in text and "truth" not in text
