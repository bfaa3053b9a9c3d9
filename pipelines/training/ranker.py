"""LightGBM LambdaRank with early stopping, and a hyper-parameter search whose state lives in
PostgreSQL (Optuna RDB storage), so an interrupted search resumes instead of starting over."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from pipelines import db
from pipelines.config import params
from pipelines.features.matrix import MatrixSpec
from pipelines.training.dataset import Split

log = logging.getLogger(__name__)


@dataclass
class SearchResult:
    best_params: dict[str, Any]
    best_value: float
    trials_done: int
    trials_resumed: int
    seconds: float


def lgb_params(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg = params("training")
    base = {
        "objective": "lambdarank",
        "metric": "ndcg",
        "eval_at": [10],
        "verbosity": -1,
        "seed": cfg.get("seed", 13),
        "deterministic": True,
        **cfg.get("lightgbm", {}),
    }
    base.update(overrides or {})
    return base


def fit(train: Split, valid: Split, spec: MatrixSpec, overrides: dict[str, Any] | None = None):
    """Train on ``train`` with early stopping on ``valid``; returns the booster."""
    import lightgbm as lgb

    p = lgb_params(overrides)
    rounds = int(p.pop("num_boost_round", 300))
    patience = int(p.pop("early_stopping_rounds", 20))
    categorical = list(spec.categorical)
    dtrain = lgb.Dataset(train.X, train.y, group=train.groups, categorical_feature=categorical, free_raw_data=False)
    dvalid = lgb.Dataset(valid.X, valid.y, group=valid.groups, categorical_feature=categorical, reference=dtrain)
    return lgb.train(
        p,
        dtrain,
        num_boost_round=rounds,
        valid_sets=[dvalid],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(patience, verbose=False)],
    )


def _suggest(trial, space: dict[str, list]) -> dict[str, Any]:
    chosen: dict[str, Any] = {}
    for name, (lo, hi) in space.items():
        if isinstance(lo, int) and isinstance(hi, int):
            chosen[name] = trial.suggest_int(name, lo, hi, log=hi / max(lo, 1) > 8)
        else:
            chosen[name] = trial.suggest_float(name, float(lo), float(hi), log=float(lo) > 0 and hi / lo > 8)
    return chosen


def storage_url() -> str:
    name = f"{db.main_database_name()}_optuna"
    db.ensure_database(name)
    return db.sqlalchemy_url(name)


def search(train: Split, valid: Split, spec: MatrixSpec, study_name: str, trials: int, minutes: float) -> SearchResult:
    """Run (or resume) a search of ``trials`` trials within ``minutes``; maximises NDCG@10 on ``valid``."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = params("training").get("search_space", {})
    study = optuna.create_study(
        study_name=study_name,
        storage=storage_url(),
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=params("training").get("seed", 13)),
    )
    # A trial left RUNNING belongs to a killed process (one training runs at a time): fail it.
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_state_values(stale._trial_id, state=TrialState.FAIL)
    done_before = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    remaining = max(trials - done_before, 0)

    def objective(trial) -> float:
        booster = fit(train, valid, spec, _suggest(trial, space))
        trial.set_user_attr("best_iteration", booster.best_iteration)
        return float(booster.best_score["valid"]["ndcg@10"])

    t0 = time.perf_counter()
    if remaining:
        study.optimize(objective, n_trials=remaining, timeout=minutes * 60, gc_after_trial=True)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return SearchResult({}, float("nan"), 0, done_before, time.perf_counter() - t0)
    best = study.best_trial
    return SearchResult(dict(best.params), float(best.value), len(complete), done_before, time.perf_counter() - t0)
