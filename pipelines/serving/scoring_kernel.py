"""One chunk of candidates scored on positions: matrix gathered from the shared feature path
(:mod:`pipelines.serving.candidate_matrix`), each arm's model, then the capped top k
(:mod:`pipelines.serving.top_k`). Per-row Python objects (source names, categories, arms)
are made only for the few rows of the lists.

The result equals the frame path of earlier releases (candidate frame -> feature rows ->
:func:`pipelines.features.matrix.to_array` -> predict -> :func:`pipelines.serving.selection.select_top`)
row for row; where the fast pieces cannot prove that (a matrix column of unknown origin, a
key that cannot hold the rows) the chunk goes through those very functions instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.features.matrix import to_array
from pipelines.features.retrieval import OfflineFeatures
from pipelines.serving import top_k
from pipelines.serving.candidate_matrix import GatherPlan, gather_plan, prepare
from pipelines.serving.candidates import SOURCES, CandidateChunk
from pipelines.serving.selection import reason_for, select_top

POPULARITY = "popularity"
PREDICT_ROWS = 131_072  # matrix rows per predict call: one buffer of ~27 MB, reused


@dataclass
class ChunkScore:
    recommendations: pd.DataFrame
    users: int
    predict_seconds: float
    users_per_arm: dict[str, int] = field(default_factory=dict)


class ChunkScorer:
    """Scores the chunks of one day and partition; holds what the chunks share (the feature
    partitions, the article side of each model's matrix, the pool's category codes)."""

    def __init__(self, features: OfflineFeatures, when: pd.Timestamp, k: int, cap: int) -> None:
        self.features, self.when, self.k, self.cap = features, when, k, cap
        self._plans: dict[str, GatherPlan | None] = {}
        self._pool: Any = None
        self._buffer: np.ndarray | None = None

    def score(self, chunk: CandidateChunk, arms: list[Any], plan: Any, predictors: dict[str, Any]) -> ChunkScore:
        """``arms``: :class:`pipelines.serving.scoring.ArmScorer`; ``plan``: the experiment plan or None."""
        self._use_pool(chunk)
        has = np.bincount(chunk.owner, minlength=len(chunk.user_ids)) > 0
        ranked = np.flatnonzero(has)
        arm_of_user = np.full(len(chunk.user_ids), None, dtype=object)
        if plan is not None:
            arm_of_user[ranked] = plan.assign(chunk.user_ids[ranked])
        arm_of_row = arm_of_user[chunk.owner]
        scores = np.empty(len(chunk), dtype=np.float64)
        version_of_user = np.full(len(chunk.user_ids), None, dtype=object)
        out = ChunkScore(pd.DataFrame(), int(has.sum()), 0.0)
        for a in arms:
            mask = arm_of_row == a.arm if plan is not None else None
            if mask is not None and not mask.any():
                continue
            if plan is not None:
                out.users_per_arm[str(a.arm)] = int(np.count_nonzero(arm_of_user[ranked] == a.arm))
            rows = None if mask is None or mask.all() else np.flatnonzero(mask)
            users = slice(None) if mask is None else (arm_of_user == a.arm)
            if a.model_version is None:  # popularity control: the candidate prior
                prior = self._prior[chunk.item]
                if rows is None:
                    scores[:] = prior
                else:
                    scores[rows] = prior[rows]
                version_of_user[users] = POPULARITY
                continue
            predicted, seconds = self._predict(a.model_version, predictors[a.model_version], chunk, rows)
            if rows is None:
                scores[:] = predicted
            else:
                scores[rows] = predicted
            out.predict_seconds += seconds
            version_of_user[users] = a.model_version
        extra = {"arm": arm_of_user} if plan is not None else {}
        out.recommendations = self._select(chunk, scores, {**extra, "model_version": version_of_user})
        return out

    def _use_pool(self, chunk: CandidateChunk) -> None:
        if self._pool is chunk.pool:
            return
        self._pool = chunk.pool
        self._plans.clear()
        arts = chunk.pool.articles
        self._article_ids = arts["article_id"].to_numpy(np.int64)
        self._prior = arts["prior"].to_numpy(np.float64)
        self._category = arts["category"].to_numpy(object)
        codes, _ = pd.factorize(self._category, use_na_sentinel=False)
        self._category_code = codes.astype(np.int64)
        self._n_categories = int(codes.max(initial=-1)) + 1

    def _predict(
        self, version: str, predict: Any, chunk: CandidateChunk, rows: np.ndarray | None
    ) -> tuple[np.ndarray, float]:
        """Scores of the rows (all when None) and the seconds spent in predict: block by block
        through one reused matrix buffer, or, for a model the gather cannot place, through the
        full path's matrix."""
        if version not in self._plans:
            self._plans[version] = gather_plan(predict.model.spec, predict.dtype, self.features, chunk.pool, self.when)
        plan = self._plans[version]
        if plan is None:
            owner = chunk.owner if rows is None else chunk.owner[rows]
            item = chunk.item if rows is None else chunk.item[rows]
            pairs = pd.DataFrame({"user_id": chunk.user_ids[owner], "article_id": self._article_ids[item]})
            X = to_array(self.features.rows(pairs.assign(event_timestamp=self.when)), predict.model.spec, predict.dtype)
            t1 = time.perf_counter()
            return predict(X), time.perf_counter() - t1
        gather = prepare(plan, self.features, chunk, rows, self.when)
        scores = np.empty(len(gather), dtype=np.float64)
        shape = (PREDICT_ROWS, len(plan.spec.feature_names))
        if self._buffer is None or self._buffer.shape != shape or self._buffer.dtype != plan.dtype:
            self._buffer = np.empty(shape, dtype=plan.dtype)
        seconds = 0.0
        for lo in range(0, len(gather), PREDICT_ROWS):
            hi = min(len(gather), lo + PREDICT_ROWS)
            X = gather.block(lo, hi, self._buffer)
            t1 = time.perf_counter()
            scores[lo:hi] = predict(X)
            seconds += time.perf_counter() - t1
        return scores, seconds

    def _select(self, chunk: CandidateChunk, scores: np.ndarray, per_user: dict[str, np.ndarray]) -> pd.DataFrame:
        if not top_k.supported(scores, chunk.source, chunk.pool.size, self._n_categories):
            scored = chunk.frame().assign(score=scores)
            for name, values in per_user.items():
                scored[name] = values[chunk.owner]
            return select_top(scored, k=self.k, max_per_category=self.cap)
        top = top_k.capped_top_k(
            chunk.owner, chunk.item, chunk.source, scores, self._category_code,
            len(chunk.user_ids), self.k, self.cap,
        )  # fmt: skip
        out = pd.DataFrame(
            {
                "user_id": chunk.user_ids[top.owner],
                "rank": top.rank,
                "article_id": self._article_ids[top.item],
                "score": top.score,
                "reason": self._reasons(top.source, top.item),
            }
        )
        for name, values in per_user.items():
            out[name] = values[top.owner]
        return out

    def _reasons(self, source: np.ndarray, item: np.ndarray) -> np.ndarray:
        """One reason per row, made once per distinct (source, category)."""
        if len(source) == 0:
            return np.array([], dtype=object)
        n_cat = int(self._category_code.max(initial=0)) + 1
        pair = source.astype(np.int64) * n_cat + self._category_code[item]
        distinct, inverse = np.unique(pair, return_inverse=True)
        first_item = item[np.unique(inverse, return_index=True)[1]]
        texts = np.array(
            [reason_for(SOURCES[p // n_cat], self._category[i]) for p, i in zip(distinct, first_item, strict=True)],
            dtype=object,
        )
        return texts[inverse]
