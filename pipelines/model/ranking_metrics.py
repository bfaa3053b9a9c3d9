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


class GroupedRanking:
    """Ranking metrics of many scorers on one set of groups and labels: what depends only on
    them (the groups' ids and the ideal DCG, two sorts) is computed once, and
    each scorer then costs one sort (the gate's evaluation ranks five scorers, overall and per
    slice, on a validation-sized day)."""

    def __init__(self, groups: np.ndarray, labels: np.ndarray, tiebreak: np.ndarray | None = None, k: int = K):
        groups = np.asarray(groups)
        self.labels = np.asarray(labels, dtype=np.float64)
        self.tiebreak = np.arange(len(groups)) if tiebreak is None else np.asarray(tiebreak)
        self.k = k
        self.empty = len(groups) == 0
        if self.empty:
            return
        _, self.gid = np.unique(groups, return_inverse=True)
        self.n_groups = self.gid.max() + 1
        # ideal order: labels descending within each group
        ideal = np.lexsort((-self.labels, self.gid))
        gi, li = self.gid[ideal], self.labels[ideal]
        ri = _ranks(gi)
        self.idcg = np.bincount(
            gi, weights=np.where(ri <= k, (2**li - 1) / np.log2(ri + 1), 0.0), minlength=self.n_groups
        )

    def _ranked(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        order = _order(self.gid, np.asarray(scores, dtype=np.float64), self.tiebreak)
        g, lab = self.gid[order], self.labels[order]
        return g, lab, _ranks(g)

    def ndcg(self, scores: np.ndarray) -> float:
        """Mean NDCG@k over groups with a relevant item."""
        return self.metrics(scores, ndcg_only=True)["ndcg@10"]

    def metrics(self, scores: np.ndarray, ndcg_only: bool = False) -> dict[str, float]:
        """Mean NDCG@k, MAP@k and recall@k over groups with a relevant item, plus global AUC."""
        if self.empty:
            nan = float("nan")
            return {"ndcg@10": nan} if ndcg_only else {"ndcg@10": nan, "map@10": nan, "recall@10": nan, "auc": nan}
        g, lab, rank = self._ranked(scores)
        n_groups, k = self.n_groups, self.k
        top = rank <= k
        discount = 1.0 / np.log2(rank + 1)
        dcg = np.bincount(g, weights=np.where(top, (2**lab - 1) * discount, 0.0), minlength=n_groups)
        rel = (lab > 0).astype(np.float64)
        n_rel = np.bincount(g, weights=rel, minlength=n_groups)
        valid = n_rel > 0
        ndcg = float(np.mean(dcg[valid] / self.idcg[valid])) if valid.any() else float("nan")
        if ndcg_only:
            return {"ndcg@10": ndcg}
        # cumulative hits within each group, in rank order
        csum = np.cumsum(rel)
        starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
        offset = np.repeat(csum[starts] - rel[starts], np.diff(np.r_[starts, len(g)]))
        hits_cum = csum - offset
        precision_at_hit = np.where(top & (rel > 0), hits_cum / rank, 0.0)
        ap = np.bincount(g, weights=precision_at_hit, minlength=n_groups) / np.maximum(np.minimum(n_rel, k), 1)
        recall = np.bincount(g, weights=np.where(top, rel, 0.0), minlength=n_groups) / np.maximum(n_rel, 1)
        return {
            "ndcg@10": ndcg,
            "map@10": float(np.mean(ap[valid])) if valid.any() else float("nan"),
            "recall@10": float(np.mean(recall[valid])) if valid.any() else float("nan"),
            "auc": auc(self.labels > 0, scores),
        }


def ranking_metrics(
    groups: np.ndarray, labels: np.ndarray, scores: np.ndarray, tiebreak: np.ndarray | None = None, k: int = K
) -> dict[str, float]:
    """Mean NDCG@k, MAP@k and recall@k over groups with a relevant item, plus global AUC."""
    return GroupedRanking(groups, labels, tiebreak, k).metrics(scores)


def auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half), via ranks."""
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def truth_ranking(groups: np.ndarray, gain: np.ndarray, tiebreak: np.ndarray | None = None) -> GroupedRanking:
    """NDCG@10 whose gains are a latent truth (non-negative reals) instead of logged labels
    (``.ndcg(scores)`` of each scorer).

    Logged labels carry the logging policy's position bias; on the simulator the truth does
    not. Labels log2(1 + gain) make the 2^label - 1 gain of :func:`ranking_metrics` equal ``gain``.
    """
    labels = np.log2(1.0 + np.maximum(np.asarray(gain, dtype=np.float64), 0.0))
    return GroupedRanking(groups, labels, tiebreak)


def truth_ndcg(groups: np.ndarray, gain: np.ndarray, scores: np.ndarray, tiebreak: np.ndarray | None = None) -> float:
    """:func:`truth_ranking`'s NDCG@10 of one scorer."""
    return truth_ranking(groups, gain, tiebreak).ndcg(scores)


# --- Per-impression metrics, as the MIND benchmark reports them ---------------------------------
# MIND's evaluate.py scores each impression (one slate shown to one user at one time) on its own
# and averages over impressions: AUC (sklearn's roc_auc_score, ties count one half), MRR (the mean
# over the slate's clicked articles of 1 / their rank) and nDCG@5/@10 with gains 2^click - 1 (so
# 1 per click) and discounts log2(rank + 1). An impression with no click, or with every article
# clicked, ranks nothing (its AUC is undefined): it is skipped for all four metrics and counted.
# Score ties are broken by ``tiebreak`` for MRR and nDCG (MIND's argsort breaks them by list order,
# which would leak the display order).
MIND_METRICS = ("auc", "mrr", "ndcg@5", "ndcg@10")


def _group_starts(sorted_groups: np.ndarray) -> np.ndarray:
    """For each row of rows sorted by group, the index of its group's first row."""
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    return np.repeat(starts, np.diff(np.r_[starts, len(sorted_groups)]))


def impression_metrics(
    slates: np.ndarray, clicks: np.ndarray, scores: np.ndarray, tiebreak: np.ndarray | None = None
) -> dict[str, float | int]:
    """Mean per-impression AUC, MRR, nDCG@5 and nDCG@10 over slates with a click and a non-click.

    ``slates`` labels each row's impression (any hashable values), ``clicks`` is 0/1. Returns the
    four means, ``impressions`` (slates measured), ``no_click`` and ``all_clicked`` (slates skipped).
    """
    slates = np.asarray(slates)
    clicked = np.asarray(clicks, dtype=np.float64) > 0
    scores = np.asarray(scores, dtype=np.float64)
    tiebreak = np.arange(len(slates)) if tiebreak is None else np.asarray(tiebreak)
    out: dict[str, float | int] = dict.fromkeys(MIND_METRICS, float("nan"))
    out.update(impressions=0, no_click=0, all_clicked=0)
    if len(slates) == 0:
        return out
    _, gid = np.unique(slates, return_inverse=True)
    n_groups = gid.max() + 1
    size = np.bincount(gid, minlength=n_groups)
    n_pos = np.bincount(gid, weights=clicked, minlength=n_groups)
    valid = (n_pos > 0) & (n_pos < size)
    out.update(impressions=int(valid.sum()), no_click=int((n_pos == 0).sum()), all_clicked=int((n_pos == size).sum()))
    if not valid.any():
        return out
    # AUC: ascending mid-ranks of the scores within each slate (a run of tied scores shares the mean rank)
    asc = np.lexsort((scores, gid))
    g, s, pos = gid[asc], scores[asc], clicked[asc]
    run_start = np.r_[0, np.flatnonzero((np.diff(g) != 0) | (np.diff(s) != 0)) + 1]
    run_len = np.diff(np.r_[run_start, len(g)])
    mid = np.repeat(run_start + (run_len + 1) / 2.0, run_len) - _group_starts(g)  # 1-based within the slate
    rank_sum = np.bincount(g, weights=np.where(pos, mid, 0.0), minlength=n_groups)
    n_neg = size - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc_g = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    # MRR and nDCG: descending scores, ties broken by ``tiebreak``
    desc = _order(gid, scores, tiebreak)
    g, pos = gid[desc], clicked[desc]
    rank = _ranks(g)
    gain = np.where(pos, 1.0 / np.log2(rank + 1), 0.0)
    mrr_g = np.bincount(g, weights=np.where(pos, 1.0 / rank, 0.0), minlength=n_groups) / np.maximum(n_pos, 1)
    ideal_cum = np.cumsum(1.0 / np.log2(np.arange(1, size.max() + 1) + 1))  # iDCG of n clicks on top
    out.update(auc=float(auc_g[valid].mean()), mrr=float(mrr_g[valid].mean()))
    for k in (5, 10):
        dcg = np.bincount(g, weights=np.where(rank <= k, gain, 0.0), minlength=n_groups)
        idcg = ideal_cum[np.minimum(n_pos, k).astype(int) - 1]
        out[f"ndcg@{k}"] = float((dcg[valid] / idcg[valid]).mean())
    return out
