"""The scoring matrix of a chunk of candidates, gathered from a few rows of the shared path.

Every column of the model's matrix is a function of the candidate's article alone (article
features, its age at request time, its category code) or of the user and the article's
category (user features, user x category counts, the declared-interest match). So the
matrix of millions of candidate rows is the matrix of far fewer rows, repeated:
:func:`pipelines.features.matrix.to_array` (the one feature-to-matrix code path, shared with
training) runs once per pool article and once per distinct (user, category) of a chunk, and
the candidate rows take their values from those two small matrices. Which column depends on
what comes from the feature catalog; a model with a column this module cannot place is
scored through the full path instead (:func:`gather_plan` returns None), never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from pipelines.features.catalog import FEATURES, TIMESTAMP, VIEWS
from pipelines.features.matrix import MatrixSpec, to_array
from pipelines.features.retrieval import OfflineFeatures
from pipelines.serving.candidates import ArticlePool, CandidateChunk

# Matrix columns that are not catalog features: what each one is computed from.
ARTICLE_DERIVED = frozenset({"article_age_h"})  # published time and the (constant) request time
USER_CATEGORY_DERIVED = frozenset({"declared_interest_match"})  # the user's interests, the category
_NO_USER = -1  # a user id that has no features: the article rows need none


def column_levels(feature_names: tuple[str, ...]) -> dict[str, str] | None:
    """``article`` or ``user_category`` for every column, or None if one is unknown."""
    view_of = {f.name: f.view for f in FEATURES}
    levels: dict[str, str] = {}
    for name in feature_names:
        if name in ARTICLE_DERIVED:
            levels[name] = "article"
        elif name in USER_CATEGORY_DERIVED:
            levels[name] = "user_category"
        elif name in view_of:
            entities = set(VIEWS[view_of[name]].entities)
            if entities == {"article"}:
                levels[name] = "article"
            elif entities <= {"user", "category"}:
                levels[name] = "user_category"
            else:
                return None
        else:
            return None
    return levels


@dataclass
class GatherPlan:
    """The pool's article matrix for one model and the columns each level fills."""

    spec: MatrixSpec
    dtype: Any
    article_cols: np.ndarray
    other_cols: np.ndarray
    article_values: np.ndarray  # pool articles x article columns
    feature_category: np.ndarray  # per pool article: code of its category in the feature rows
    representative: np.ndarray  # per category code: one pool article of it
    other_names: tuple[str, ...] = ()  # the names of other_cols, in matrix order
    article_full: np.ndarray | None = None  # article_values at their matrix columns, +0.0 elsewhere (made on first use)


def gather_plan(
    spec: MatrixSpec, dtype: Any, features: OfflineFeatures, pool: ArticlePool, when: pd.Timestamp
) -> GatherPlan | None:
    """The article side of the gather, once per day and model; None when a column cannot be placed."""
    levels = column_levels(tuple(spec.feature_names))
    if levels is None:
        return None
    names = list(spec.feature_names)
    article_cols = np.array([i for i, n in enumerate(names) if levels[n] == "article"], dtype=np.intp)
    other_cols = np.array([i for i, n in enumerate(names) if levels[n] != "article"], dtype=np.intp)
    article_ids = pool.articles["article_id"].to_numpy(np.int64)
    rows = features.rows(_pairs(np.full(len(article_ids), _NO_USER, dtype=np.int64), article_ids, when))
    values = np.ascontiguousarray(to_array(rows, spec, dtype)[:, article_cols])
    # The user x category side keys on the category the feature rows carry (not the pool's).
    codes, _ = pd.factorize(rows["article_category"].to_numpy(object), use_na_sentinel=False)
    codes = codes.astype(np.int64)
    _, representative = np.unique(codes, return_index=True)
    return GatherPlan(
        spec, dtype, article_cols, other_cols, values, codes, representative.astype(np.int64),
        tuple(names[i] for i in other_cols),
    )  # fmt: skip


def candidate_matrix(
    plan: GatherPlan, features: OfflineFeatures, chunk: CandidateChunk, rows: np.ndarray | None, when: pd.Timestamp
) -> np.ndarray:
    """The model matrix of the chunk's candidate rows ``rows`` (all when None), equal to
    ``to_array(features.rows(pairs), spec, dtype)`` for those rows' (user, article) pairs."""
    gather = prepare(plan, features, chunk, rows, when)
    return gather.block(0, len(gather))


@dataclass
class ChunkGather:
    """What the matrix rows of a chunk are gathered from; :meth:`block` makes a range of them
    (scoring predicts block by block into one reused buffer: no chunk-sized matrix)."""

    plan: GatherPlan
    item: np.ndarray  # pool position of each row
    pair_values: np.ndarray  # the shared path's matrix of the chunk's distinct (user, category) pairs (+0.0 in
    # the article columns)
    pair_row: np.ndarray  # each row's pair

    def __len__(self) -> int:
        return len(self.item)

    def block(self, lo: int, hi: int, out: np.ndarray | None = None) -> np.ndarray:
        """Matrix rows lo..hi: the article matrix's rows OR-ed bitwise with the pair matrix's
        rows. Each column is +0.0 (all bits zero) in the matrix it does not come from, so the
        OR copies every value bit for bit, NaN and -0.0 included; two whole-row takes and one
        integer OR cost a third of a column-masked copy."""
        plan = self.plan
        width = len(plan.spec.feature_names)
        if plan.article_full is None:
            full = np.zeros((len(plan.article_values), width), dtype=plan.dtype)
            full[:, plan.article_cols] = plan.article_values
            plan.article_full = full
        bits = np.dtype(f"u{np.dtype(plan.dtype).itemsize}")
        out = np.empty((hi - lo, width), dtype=plan.dtype) if out is None else out[: hi - lo]
        articles, pairs, out_bits = plan.article_full.view(bits), self.pair_values.view(bits), out.view(bits)
        scratch = np.empty((min(_CACHE_ROWS, hi - lo), width), dtype=bits)
        for start in range(lo, hi, _CACHE_ROWS):
            end = min(hi, start + _CACHE_ROWS)
            part, other = out_bits[start - lo : end - lo], scratch[: end - start]
            np.take(articles, self.item[start:end], axis=0, out=part, mode="clip")
            np.take(pairs, self.pair_row[start:end], axis=0, out=other, mode="clip")
            np.bitwise_or(part, other, out=part)
        return out


_CACHE_ROWS = 16_384  # rows whose two passes stay in cache


def prepare(
    plan: GatherPlan, features: OfflineFeatures, chunk: CandidateChunk, rows: np.ndarray | None, when: pd.Timestamp
) -> ChunkGather:
    """The chunk's distinct (user, category) pairs through the shared path, and each row's pair."""
    owner = chunk.owner if rows is None else chunk.owner[rows]
    item = chunk.item if rows is None else chunk.item[rows]
    n_cat = len(plan.representative)
    key = owner * n_cat + plan.feature_category[item]
    present = np.zeros(len(chunk.user_ids) * n_cat, dtype=bool)
    present[key] = True
    distinct = np.flatnonzero(present)
    slot = np.cumsum(present) - 1  # distinct pair of each key
    article_ids = chunk.pool.articles["article_id"].to_numpy(np.int64)
    pair_rows = features.rows(
        _pairs(chunk.user_ids[distinct // n_cat], article_ids[plan.representative[distinct % n_cat]], when)
    )
    # only the user x category columns through the shared path (each column is computed on its
    # own there); the article columns stay +0.0, they come from the article matrix (see block)
    pair_values = np.zeros((len(distinct), len(plan.spec.feature_names)), dtype=plan.dtype)
    other_spec = replace(plan.spec, feature_names=plan.other_names)
    pair_values[:, plan.other_cols] = to_array(pair_rows, other_spec, plan.dtype)
    return ChunkGather(plan, item, pair_values, slot[key])


def _pairs(users: np.ndarray, articles: np.ndarray, when: pd.Timestamp) -> pd.DataFrame:
    return pd.DataFrame({"user_id": users, "article_id": articles, TIMESTAMP: when})
