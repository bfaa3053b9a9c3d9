"""Training, registry and promotion against the real stack: PostgreSQL, Feast, LightGBM,
Optuna (state in PostgreSQL) and MLflow (backend store in PostgreSQL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import lightgbm as lgb
import numpy as np
import pytest

from pipelines.core.errors import NewsrecError
from pipelines.features.matrix import MatrixSpec, check_signature, to_matrix
from pipelines.model import dataset, ranker, registry
from pipelines.model.train import load_splits, train
from tests.helpers import ROOT, query
from tests.model.conftest import DAY, TRAIN_DAYS, gate_a_model_fitted_on


def test_model_beats_baselines_and_closes_the_gap(world):
    overall = world["result"].evaluation["overall"]
    model = overall["model"]["ndcg@10"]
    assert model > overall["popularity"]["ndcg@10"] + 0.02
    assert model > overall["recency"]["ndcg@10"] + 0.02
    assert model > overall["random"]["ndcg@10"]
    assert overall["oracle"]["ndcg@10"] >= model - 0.01
    assert world["result"].evaluation["gap_closed"] > 0.3
    slices = world["result"].evaluation["slices"]
    assert {"region=LATAM", "region=AFRICA", "region=NA", "users=returning"} <= set(slices)
    for m in overall.values():
        assert 0 <= m["ndcg@10"] <= 1 and 0 <= m["map@10"] <= 1 and 0 <= m["recall@10"] <= 1


def test_first_model_is_registered_with_lineage_and_promoted(world):
    version = world["result"].version
    assert world["result"].decision.promoted
    assert registry.champion_version() == version
    tags = registry.version_info(version)["tags"]
    for key in ("data_window", "dvc_data_hash", "feature_service", "git_commit", "matrix_spec", "test_day"):
        assert tags.get(key), key
    assert tags["data_window"] == f"{DAY - timedelta(days=3)}..{DAY - timedelta(days=2)}"
    spec = MatrixSpec.from_dict(json.loads(tags["matrix_spec"]))
    check_signature(spec)
    loaded = registry.load("champion")
    assert loaded.booster.feature_name() == list(spec.feature_names)
    decisions = query("SELECT kind, promoted, challenger_version FROM ops.model_decisions")
    assert ("promotion", True, version) in decisions


def test_worse_challenger_is_refused_with_reasons(world):
    splits = load_splits(DAY, TRAIN_DAYS)
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(splits.train.y)  # labels that carry no signal
    decision, _ = gate_a_model_fitted_on(splits, shuffled, "bad", leaves=4, rounds=5)
    assert not decision.promoted
    assert any("does not beat champion" in r for r in decision.reasons)
    assert registry.champion_version() == world["result"].version


def test_rollback_restores_the_previous_champion(world):
    first = world["result"].version
    splits = load_splits(DAY, TRAIN_DAYS)
    booster = ranker.fit(splits.train, splits.valid, splits.spec, {"num_leaves": 7})
    second = registry.register(booster, splits.spec, {"ndcg@10": 0.5}, {}, {"logical_date": str(DAY)})
    assert registry.set_champion(second) == first
    assert registry.champion_version() == second
    assert registry.rollback() == (second, first)
    assert registry.champion_version() == first
    with pytest.raises(NewsrecError, match="no previous champion"):
        registry.rollback()


def test_scoring_refuses_a_model_whose_signature_does_not_match(world):
    from pipelines.serving.scoring import load_for_scoring

    assert load_for_scoring().version == registry.champion_version()
    splits = load_splits(DAY, TRAIN_DAYS)
    old_spec = MatrixSpec(splits.spec.feature_names[:-1] + ("user_shoe_size",), splits.spec.categorical)
    X = to_matrix(splits.train.rows, splits.spec).rename(columns={splits.spec.feature_names[-1]: "user_shoe_size"})
    booster = lgb.train(
        {"objective": "lambdarank", "verbosity": -1},
        lgb.Dataset(X, splits.train.y, group=splits.train.groups),
        num_boost_round=3,
    )
    version = registry.register(booster, old_spec, {}, {}, {"logical_date": str(DAY)})
    with pytest.raises(NewsrecError, match="signature does not match.*user_shoe_size"):
        load_for_scoring(version)


def test_killed_training_leaves_the_champion_and_the_search_resumes(world, tmp_path):
    import optuna

    champion_before = registry.champion_version()
    versions_before = {v["version"] for v in registry.list_versions()}
    env = {**os.environ}
    day = DAY - timedelta(days=1)  # another day: another study
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "train", "--date", str(day), "--trials", "40", "--minutes", "5",
         "--train-days", "1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    storage = ranker.storage_url()
    deadline = time.monotonic() + 240
    done = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            studies = [s for s in optuna.get_all_study_summaries(storage) if s.study_name.startswith(f"ranker-{day}")]
            if studies:
                study = optuna.load_study(study_name=studies[0].study_name, storage=storage)
                done = len([t for t in study.trials if t.state.name == "COMPLETE"])
                if done >= 1:
                    break
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert done >= 1, proc.stderr.read() if proc.stderr else ""
    assert registry.champion_version() == champion_before
    assert {v["version"] for v in registry.list_versions()} == versions_before
    # the re-run finds the finished trials and does not start over
    result = train(day, trials=done + 1, minutes=2, train_days=1)
    assert result.search.trials_resumed >= done
    assert result.search.trials_done == done + 1


def test_grades_follow_dwell_bands():
    dwell = np.array([0, 10, 29.9, 30, 119, 120, 600])
    read = np.array([0, 1, 1, 1, 1, 1, 1])
    assert dataset.grade(dwell, read, [30, 120]).tolist() == [0, 1, 1, 2, 2, 3, 3]
