"""LightGBM LambdaRank with early stopping, and a hyper-parameter search whose state lives in
PostgreSQL (Optuna RDB storage), so an interrupted search resumes instead of starting over.

Two objectives: ``plain`` LambdaRank takes the logged labels at face value; ``debiased`` is
LightGBM's unbiased LambdaRank, which is given each impression's logged slate position and
learns how much lower positions hide reads, so the trees learn taste rather than the old
policy's order. The position is only a training input: the model scores without it.
"""

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


OBJECTIVES = ("plain", "debiased")


def default_objective() -> str:
    return str(params("training").get("objective", "plain"))


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        from pipelines.errors import NewsrecError

        raise NewsrecError(f"unknown training objective {objective!r} (one of {', '.join(OBJECTIVES)})")
    return objective


def objective_params(objective: str) -> dict[str, Any]:
    """LightGBM parameters an objective adds (the position-bias regularization of unbiased LambdaRank)."""
    if check_objective(objective) == "plain":
        return {}
    cfg = params("training").get("debiased", {})
    return {"lambdarank_position_bias_regularization": float(cfg.get("position_bias_regularization", 0.0))}


def lgb_params(overrides: dict[str, Any] | None = None, objective: str = "plain") -> dict[str, Any]:
    cfg = params("training")
    base = {
        "objective": "lambdarank",
        "metric": "ndcg",
        "eval_at": [10],
        "verbosity": -1,
        "seed": cfg.get("seed", 13),
        "deterministic": True,
        **cfg.get("lightgbm", {}),
        **objective_params(objective),
    }
    base.update(overrides or {})
    return base


def fit(
    train: Split,
    valid: Split,
    spec: MatrixSpec,
    overrides: dict[str, Any] | None = None,
    objective: str = "plain",
    init_model: Any = None,
    rounds: int | None = None,
):
    """Train on ``train`` with early stopping on ``valid``; returns the booster.

    ``debiased`` hands LightGBM the logged positions; ``init_model`` (a booster) continues
    its trees instead of starting from zero (warm start), for at most ``rounds`` new trees.
    """
    import lightgbm as lgb

    p = lgb_params(overrides, objective)
    rounds = int(rounds if rounds is not None else p.pop("num_boost_round", 300))
    p.pop("num_boost_round", None)
    patience = int(p.pop("early_stopping_rounds", 20))
    categorical = list(spec.categorical)
    position = train.positions if objective == "debiased" else None
    dtrain = lgb.Dataset(
        train.X, train.y, group=train.groups, categorical_feature=categorical, free_raw_data=False, position=position
    )
    dvalid = lgb.Dataset(valid.X, valid.y, group=valid.groups, categorical_feature=categorical, reference=dtrain)
    return lgb.train(
        p,
        dtrain,
        num_boost_round=rounds,
        valid_sets=[dvalid],
        valid_names=["valid"],
        init_model=init_model,
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


def search(
    train: Split,
    valid: Split,
    spec: MatrixSpec,
    study_name: str,
    trials: int,
    minutes: float,
    objective: str = "plain",
) -> SearchResult:
    """Run (or resume) a search of ``trials`` trials within ``minutes``; maximises NDCG@10 on ``valid``.

    For ``debiased`` the position-bias regularization joins the space when
    ``training.debiased.regularization_range`` is set. Validation labels are themselves
    position-biased, so that search can only tune it against biased labels: off by default.
    """
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = dict(params("training").get("search_space", {}))
    reg_range = params("training").get("debiased", {}).get("regularization_range")
    if objective == "debiased" and reg_range:
        space["lambdarank_position_bias_regularization"] = [float(reg_range[0]), float(reg_range[1])]
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

    def score_trial(trial) -> float:
        booster = fit(train, valid, spec, _suggest(trial, space), objective)
        trial.set_user_attr("best_iteration", booster.best_iteration)
        return float(booster.best_score["valid"]["ndcg@10"])

    t0 = time.perf_counter()
    if remaining:
        study.optimize(score_trial, n_trials=remaining, timeout=minutes * 60, gc_after_trial=True)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return SearchResult({}, float("nan"), 0, done_before, time.perf_counter() - t0)
    best = study.best_trial
    return SearchResult(dict(best.params), float(best.value), len(complete), done_before, time.perf_counter() - t0)
