"""Ranking metrics over query groups, vectorised (no Python loop over groups).

NDCG uses graded gains 2^label - 1; MAP, recall and AUC treat any read (label > 0) as
relevant. Group means are taken over groups that have at least one relevant item. Ties in
scores are broken by the given tie-breaker, so a constant score ranks in a fixed order.
"""

from __future__ import annotations

import numpy as np

K = 10


def _order(groups: np.ndarray, scores: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    return np.lexsort((tiebreak, -scores, groups))


def _ranks(sorted_groups: np.ndarray) -> np.ndarray:
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    sizes = np.diff(np.r_[starts, len(sorted_groups)])
    return np.arange(len(sorted_groups)) - np.repeat(starts, sizes) + 1


def ranking_metrics(
    groups: np.ndarray, labels: np.ndarray, scores: np.ndarray, tiebreak: np.ndarray | None = None, k: int = K
) -> dict[str, float]:
    """Mean NDCG@k, MAP@k and recall@k over groups with a relevant item, plus global AUC."""
    groups = np.asarray(groups)
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    tiebreak = np.arange(len(groups)) if tiebreak is None else np.asarray(tiebreak)
    if len(groups) == 0:
        return {
            "ndcg@10": float("nan"),
            "map@10": float("nan"),
            "recall@10": float("nan"),
            "auc": float("nan"),
        }
    _, gid = np.unique(groups, return_inverse=True)
    order = _order(gid, scores, tiebreak)
    g, lab = gid[order], labels[order]
    rank = _ranks(g)
    n_groups = gid.max() + 1
    top = rank <= k
    discount = 1.0 / np.log2(rank + 1)
    dcg = np.bincount(g, weights=np.where(top, (2**lab - 1) * discount, 0.0), minlength=n_groups)
    # ideal order: labels descending within each group
    ideal = np.lexsort((-labels, gid))
    gi, li = gid[ideal], labels[ideal]
    ri = _ranks(gi)
    idcg = np.bincount(gi, weights=np.where(ri <= k, (2**li - 1) / np.log2(ri + 1), 0.0), minlength=n_groups)
    rel = (lab > 0).astype(np.float64)
    n_rel = np.bincount(g, weights=rel, minlength=n_groups)
    # cumulative hits within each group, in rank order
    csum = np.cumsum(rel)
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    offset = np.repeat(csum[starts] - rel[starts], np.diff(np.r_[starts, len(g)]))
    hits_cum = csum - offset
    precision_at_hit = np.where(top & (rel > 0), hits_cum / rank, 0.0)
    ap = np.bincount(g, weights=precision_at_hit, minlength=n_groups) / np.maximum(np.minimum(n_rel, k), 1)
    recall = np.bincount(g, weights=np.where(top, rel, 0.0), minlength=n_groups) / np.maximum(n_rel, 1)
    valid = n_rel > 0
    return {
        "ndcg@10": float(np.mean(dcg[valid] / idcg[valid])) if valid.any() else float("nan"),
        "map@10": float(np.mean(ap[valid])) if valid.any() else float("nan"),
        "recall@10": float(np.mean(recall[valid])) if valid.any() else float("nan"),
        "auc": auc(labels > 0, scores),
    }


def auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half), via ranks."""
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def truth_ndcg(groups: np.ndarray, gain: np.ndarray, scores: np.ndarray, tiebreak: np.ndarray | None = None) -> float:
    """NDCG@10 whose gains are a latent truth (non-negative reals) instead of logged labels.

    Logged labels carry the logging policy's position bias; on the simulator the truth does
    not. Labels log2(1 + gain) make the 2^label - 1 gain of :func:`ranking_metrics` equal ``gain``.
    """
    labels = np.log2(1.0 + np.maximum(np.asarray(gain, dtype=np.float64), 0.0))
    return ranking_metrics(groups, labels, scores, tiebreak)["ndcg@10"]
