"""Files outside MLflow are keyed by the registry's identity of a version (its run id), not by
the version number: two databases sharing one NEWSREC_HOME both have a v1, and each scores and
explains with its own."""

from __future__ import annotations

import os

import lightgbm as lgb
import numpy as np
import pandas as pd

from pipelines.features.matrix import CATEGORICAL, MatrixSpec, current_feature_names
from pipelines.model import registry
from pipelines.serving.predictor import Predictor
from tests.helpers import admin_sql, use_database


def _register_random_model(seed: int) -> tuple[str, lgb.Booster, pd.DataFrame]:
    names = current_feature_names()
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.random((400, len(names))), columns=list(names))
    y = rng.integers(0, 3, 400)
    booster = lgb.train(
        {"objective": "lambdarank", "verbosity": -1, "num_leaves": 4, "seed": seed, "min_data_in_leaf": 5},
        lgb.Dataset(X, y, group=[20] * 20),
        num_boost_round=3 + seed,
    )
    spec = MatrixSpec(names, {c: () for c in CATEGORICAL})
    version = registry.register(booster, spec, {}, {}, {"logical_date": "2026-01-01"})
    return version, booster, X


def test_two_databases_sharing_a_home_keep_their_own_model_files(pg_server, migrated_template, monkeypatch, tmp_path):
    home = tmp_path / "home"
    exported = {}
    for seed in (1, 2):
        name = f"keys{os.getpid()}_{seed}"
        admin_sql(pg_server, f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
        use_database(monkeypatch, pg_server.format(db=name), home)
        version, booster, X = _register_random_model(seed)
        assert version == "1"  # the same number in both registries
        folder = registry.export_for_serving(version)
        assert folder == registry.serving_model_dir(version)
        assert folder.name == f"1-{registry.version_info('1')['run_id']}"
        exported[seed] = (folder, booster, X)
    (first, booster1, X), (second, booster2, _) = exported[1], exported[2]
    assert first != second and first.parent == second.parent
    # each folder holds its own registry's model, and the one scored is this database's
    from_files = [lgb.Booster(model_file=str(f / "model.txt")) for f in (first, second)]
    np.testing.assert_allclose(from_files[0].predict(X), booster1.predict(X))
    np.testing.assert_allclose(from_files[1].predict(X), booster2.predict(X))
    assert not np.allclose(booster1.predict(X), booster2.predict(X))
    # the environment points at the second database: its v1 is compiled from its own file (the
    # predictor checks the compiled scores against LightGBM's and would refuse another model's)
    predictor = Predictor(registry.load("1"), engine="lleaves")
    np.testing.assert_allclose(predictor(X.to_numpy(np.float64)), booster2.predict(X), atol=1e-9)
