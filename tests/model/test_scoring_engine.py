"""Batch scoring with the compiled model (lleaves) gives LightGBM's scores, and a compiled
library that is not the model is refused before it ranks anything."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from pipelines.core.errors import NewsrecError
from pipelines.model import registry
from pipelines.serving import batch, scoring
from pipelines.serving.predictor import LIBRARY, Predictor
from tests.model.conftest import DAY


def test_compiled_scores_equal_lightgbm_and_give_the_same_lists(world):
    plain = batch.score(DAY, engine="lightgbm")
    compiled = batch.score(DAY, engine="lleaves")
    assert (plain.engine, compiled.engine) == ("lightgbm", "lleaves")
    assert compiled.candidates == plain.candidates > 10_000
    keys = ["user_id", "rank"]
    a = plain.recommendations.sort_values(keys).reset_index(drop=True)
    b = compiled.recommendations.sort_values(keys).reset_index(drop=True)
    assert a[keys + ["article_id"]].equals(b[keys + ["article_id"]])
    np.testing.assert_allclose(b["score"], a["score"], rtol=0, atol=1e-9)
    assert (registry.serving_model_dir(compiled.model_version) / LIBRARY).exists()


def test_a_compiled_library_of_another_model_is_refused(world, tmp_path):
    import lleaves

    model = scoring.load_for_scoring()
    library = registry.export_for_serving(model.version) / LIBRARY
    n = len(model.spec.feature_names)
    rng = np.random.default_rng(3)
    X = rng.random((2_000, n))
    other = lgb.train({"objective": "regression", "verbose": -1, "num_leaves": 7}, lgb.Dataset(X, rng.random(2_000)), 5)
    other.save_model(str(tmp_path / "other.txt"))
    library.unlink(missing_ok=True)
    try:
        lleaves.Model(model_file=str(tmp_path / "other.txt")).compile(cache=str(library))
        predict = Predictor(model, "lleaves")
        with pytest.raises(NewsrecError, match="differs from LightGBM"):
            predict(X)
    finally:
        library.unlink(missing_ok=True)  # the next user compiles the real model again
