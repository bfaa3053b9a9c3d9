"""The vectorised ranking metrics against a plain loop over groups, on data with score ties,
groups without a relevant item and groups longer than k; one GroupedRanking reused for
several scorers gives what a fresh one gives each."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipelines.model.ranking_metrics import GroupedRanking, ranking_metrics, truth_ranking


def _loop(groups, labels, scores, ties, k=10):
    ndcg, ap, recall = [], [], []
    for g in np.unique(groups):
        at = np.flatnonzero(groups == g)
        order = sorted(at, key=lambda i: (-scores[i], ties[i]))
        lab = labels[order]
        rel = lab > 0
        if not rel.any():
            continue
        dcg = sum((2 ** lab[r] - 1) / math.log2(r + 2) for r in range(min(k, len(lab))))
        best = sorted(labels[at], reverse=True)
        idcg = sum((2 ** best[r] - 1) / math.log2(r + 2) for r in range(min(k, len(best))))
        ndcg.append(dcg / idcg)
        hits = np.cumsum(rel)
        ap.append(sum(hits[r] / (r + 1) for r in range(min(k, len(lab))) if rel[r]) / max(min(rel.sum(), k), 1))
        recall.append(rel[:k].sum() / rel.sum())
    return np.mean(ndcg), np.mean(ap), np.mean(recall)


def test_grouped_ranking_matches_a_loop_over_groups_and_can_be_reused():
    rng = np.random.default_rng(7)
    groups = np.repeat(rng.permutation(300), rng.integers(1, 25, 300))
    labels = np.where(rng.random(len(groups)) < 0.2, rng.integers(1, 4, len(groups)), 0).astype(float)
    ties = rng.permutation(len(groups))
    scorers = [rng.integers(0, 4, len(groups)).astype(float), rng.random(len(groups)), labels + rng.random(len(groups))]
    reused = GroupedRanking(groups, labels, ties)
    for scores in scorers:
        got = reused.metrics(scores)
        ndcg, ap, recall = _loop(groups, labels, scores, ties)
        assert got["ndcg@10"] == pytest.approx(ndcg, rel=1e-12)
        assert got["map@10"] == pytest.approx(ap, rel=1e-12)
        assert got["recall@10"] == pytest.approx(recall, rel=1e-12)
        assert got == ranking_metrics(groups, labels, scores, ties)
        assert reused.ndcg(scores) == got["ndcg@10"]
    gain = rng.random(len(groups)) * (labels > 0)
    truth = truth_ranking(groups, gain, ties)
    assert truth.ndcg(scorers[1]) == pytest.approx(_loop(groups, np.log2(1 + gain), scorers[1], ties)[0], rel=1e-12)


def test_no_rows_give_nan():
    empty = GroupedRanking(np.array([]), np.array([]))
    assert all(math.isnan(v) for v in empty.metrics(np.array([])).values())
