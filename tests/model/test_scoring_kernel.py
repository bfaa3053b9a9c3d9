"""The scoring kernel (positions, gathered matrix, capped top k) gives the same lists as the
frame path it replaced, on the same world and model: same users, articles, ranks, scores,
reasons and model versions, bit for bit; and its gathered matrix is the shared path's."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.core.config import params
from pipelines.features.matrix import current_feature_names, to_array
from pipelines.features.retrieval import OfflineFeatures
from pipelines.features.transforms import request_time
from pipelines.serving import batch, scoring
from pipelines.serving.candidate_matrix import candidate_matrix, column_levels, gather_plan
from pipelines.serving.candidates import iter_candidate_arrays, iter_candidate_chunks
from pipelines.serving.selection import select_top
from tests.model.conftest import DAY

CHUNK_USERS = 211  # several chunks on the small world


def _frame_path_lists(day, engine: str) -> pd.DataFrame:
    """The scoring loop before the kernel (one arm): candidate frames -> feature rows ->
    to_array -> predict -> select_top."""
    sel = params("serving").get("selection", {})
    arms, _ = scoring.scoring_arms(day)
    (arm,) = arms
    predict = scoring.predictor(arm.model_version, engine)
    features, when = OfflineFeatures(day), request_time(day)
    out = []
    for chunk in iter_candidate_chunks(day, CHUNK_USERS):
        rows = features.rows(chunk[["user_id", "article_id"]].assign(event_timestamp=when))
        scores = predict(to_array(rows, predict.model.spec, predict.dtype))
        scored = chunk.assign(score=scores, model_version=np.full(len(chunk), arm.model_version, dtype=object))
        out.append(select_top(scored, k=int(sel.get("k", 10)), max_per_category=int(sel.get("max_per_category", 3))))
    return pd.concat(out, ignore_index=True)


def test_the_kernel_gives_the_frame_paths_lists_bit_for_bit(world):
    for engine in ("lleaves", "lightgbm"):
        new = batch.score(DAY, chunk_users=CHUNK_USERS, engine=engine).recommendations
        old = _frame_path_lists(DAY, engine)
        assert len(new) > 1_000 and new["user_id"].nunique() > 100
        pd.testing.assert_frame_equal(new, old, check_exact=True)
        np.testing.assert_array_equal(new["score"].to_numpy().view(np.uint32), old["score"].to_numpy().view(np.uint32))


def test_the_gathered_matrix_is_the_shared_paths_matrix(world):
    predict = scoring.predictor(scoring.scoring_arms(DAY)[0][0].model_version, "lleaves")
    features, when = OfflineFeatures(DAY), request_time(DAY)
    chunk = next(iter_candidate_arrays(DAY, CHUNK_USERS))
    plan = gather_plan(predict.model.spec, predict.dtype, features, chunk.pool, when)
    assert plan is not None
    frame = chunk.frame()
    expected = to_array(
        features.rows(frame[["user_id", "article_id"]].assign(event_timestamp=when)), predict.model.spec, predict.dtype
    )
    some = np.flatnonzero(np.arange(len(chunk)) % 3 == 1)  # an arm's subset of the rows
    for rows, want in ((None, expected), (some, expected[some])):
        got = candidate_matrix(plan, features, chunk, rows, when)
        assert got.shape == want.shape and got.dtype == want.dtype
        assert np.array_equal(got, want, equal_nan=True)
    assert np.isnan(expected).any() and (expected[:, list(plan.other_cols)] != 0).any()


def test_every_current_column_is_placed_and_an_unknown_one_is_not():
    levels = column_levels(current_feature_names())
    assert levels is not None and set(levels.values()) == {"article", "user_category"}
    assert levels["article_age_h"] == "article" and levels["user_region"] == "user_category"
    assert column_levels((*current_feature_names(), "some_new_feature")) is None
