"""LightGBM LambdaRank with early stopping, and a hyper-parameter search whose state lives in
PostgreSQL (Optuna RDB storage), so an interrupted search resumes instead of starting over.

Two objectives: ``plain`` LambdaRank takes the logged labels at face value; ``debiased`` is
LightGBM's unbiased LambdaRank, which is given each impression's logged slate position and
learns how much lower positions hide reads, so the trees learn taste rather than the old
policy's order. The position is only a training input: the model scores without it.

On a Dask cluster (``client`` given, see :mod:`pipelines.core.cluster`) the same parameters train
with LightGBM's ``DaskLGBMRanker`` (data-parallel trees over the workers' partitions; every
partition holds whole query groups). Two limits of LightGBM's Dask interface shape that path:
it takes no ``position`` (so ``debiased`` cannot run there: :func:`objective_on` falls back to
``plain`` and the run says so), and it has no early stopping (a worker that stops alone hangs
the others). So the cluster trains every round and this process applies the same early
stopping rule afterwards, on the whole validation day, and keeps the best prefix of trees.

The validation metric (early stopping and the search objective) is the validation day's
unbiased IPS NDCG@10 when a ``metric`` (:class:`pipelines.model.counterfactual.IpsNdcg`, built
with that day's propensity) is given: the logged labels prefer models that copy the logging
order, which stopped the debiased model at 20 trees (issue 13). It runs as a LightGBM ``feval``
(LightGBM's own metric is then off, so early stopping watches this one alone); without it
(positions unknown) LightGBM's NDCG@10 on the logged labels.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core import db, progress
from pipelines.core.config import params
from pipelines.core.errors import NewsrecError
from pipelines.features.matrix import MatrixSpec
from pipelines.model.counterfactual import IpsNdcg, validation_metric_of
from pipelines.model.dataset import Split

log = logging.getLogger(__name__)


@dataclass
class SearchResult:
    best_params: dict[str, Any]
    best_value: float
    trials_done: int
    trials_resumed: int
    seconds: float


OBJECTIVES = ("plain", "debiased")
VALID_DAY = "valid_day"  # fit's default metric: the validation day's IPS NDCG@10 where it exists
AUTO = "auto"  # train both where positions are known, keep the one the gate's rule prefers (train.py)


def default_objective() -> str:
    """params.yaml's ``training.objective``: ``auto`` (chosen each run) or one of :data:`OBJECTIVES`."""
    return str(params("training").get("objective", AUTO))


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise NewsrecError(f"unknown training objective {objective!r} (one of {', '.join(OBJECTIVES)})")
    return objective


def objective_params(objective: str) -> dict[str, Any]:
    """LightGBM parameters an objective adds (the position-bias regularization of unbiased LambdaRank)."""
    if check_objective(objective) == "plain":
        return {}
    cfg = params("training").get("debiased", {})
    return {"lambdarank_position_bias_regularization": float(cfg.get("position_bias_regularization", 0.0))}


def objective_on(objective: str, on_dask: bool, positions_known: bool = True) -> tuple[str, str | None]:
    """The objective a run can use and why it differs from the one asked for (None: same).

    The unbiased LambdaRank learns from the logged positions, so it is off when the data
    profile says positions are unknown (MIND does not document that list order is display
    order): such a run trains ``plain``. LightGBM's Dask interface passes no ``position`` to
    its datasets, so it cannot train there either: a cluster run of ``debiased`` trains
    ``plain`` instead. The registered version then says ``objective=plain`` (with the
    objective that was asked for and why).
    """
    objective = check_objective(objective)
    if not positions_known and objective == "debiased":
        return "plain", (
            "debiased LambdaRank needs the logged slate positions, and the data profile says positions are unknown"
        )
    if on_dask and objective == "debiased":
        return "plain", "debiased LambdaRank needs positions, which LightGBM's Dask interface cannot take"
    return objective, None


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
    client: Any = None,
    metric: IpsNdcg | None | str = VALID_DAY,
):
    """Train on ``train`` with early stopping on ``valid``; returns the booster.

    ``debiased`` hands LightGBM the logged positions; ``init_model`` (a booster) continues
    its trees instead of starting from zero (warm start), for at most ``rounds`` new trees.
    With a Dask ``client`` the trees are trained on the cluster (:func:`fit_dask`). Early
    stopping watches ``metric`` (see the module's docstring): by default the validation day's own
    (:func:`pipelines.model.counterfactual.validation_metric_of`; a caller fitting several models
    on one day builds it once and passes it), None for LightGBM's NDCG@10 on the logged labels.
    """
    import lightgbm as lgb

    if isinstance(metric, str):
        if metric != VALID_DAY:
            raise ValueError(f"metric: an IpsNdcg, None or {VALID_DAY!r}")
        metric = validation_metric_of(valid)

    p = lgb_params(overrides, objective)
    rounds = int(rounds if rounds is not None else p.pop("num_boost_round", 300))
    p.pop("num_boost_round", None)
    patience = int(p.pop("early_stopping_rounds", 20))
    categorical = list(spec.categorical)
    if client is not None:
        if init_model is not None or objective != "plain":
            raise NewsrecError("training on Dask supports the plain objective from scratch only")
        return fit_dask(client, train, valid, categorical, p, rounds, patience, metric)
    if metric is not None:
        p["metric"] = "None"  # the feval alone decides early stopping
    position = train.positions if objective == "debiased" else None
    dtrain = lgb.Dataset(
        train.X, train.y, group=train.groups, categorical_feature=categorical, free_raw_data=False, position=position
    )
    dvalid = lgb.Dataset(valid.X, valid.y, group=valid.groups, categorical_feature=categorical, reference=dtrain)
    with progress.bar(rounds, "training trees", unit="tree") as trees:
        return lgb.train(
            p,
            dtrain,
            num_boost_round=rounds,
            valid_sets=[dvalid],
            valid_names=["valid"],
            init_model=init_model,
            feval=None if metric is None else metric.feval,
            callbacks=[lgb.early_stopping(patience, verbose=False), progress.boosting_callback(trees)],
        )


def valid_score(booster: Any) -> tuple[str, float]:
    """The validation metric's name and value at the best iteration (the one metric a fit watches)."""
    ((name, value),) = booster.best_score["valid"].items()
    return name, float(value)


def group_partitions(groups: np.ndarray, n_parts: int) -> list[tuple[int, int, int, int]]:
    """Split consecutive query groups into at most ``n_parts`` runs of whole groups of about
    equal rows: ``(first_group, end_group, first_row, end_row)`` each. A group never straddles
    two partitions (LightGBM ranks within a group on one worker)."""
    sizes = np.asarray(groups, dtype=np.int64)
    ends = np.cumsum(sizes)
    total = int(ends[-1]) if len(ends) else 0
    n_parts = max(1, min(int(n_parts), len(sizes)))
    # the group that contains each target row boundary ends the partition
    cuts = np.searchsorted(ends, [total * i / n_parts for i in range(1, n_parts)], side="left") + 1
    bounds = sorted(set([0, *cuts.tolist(), len(sizes)]))
    out = []
    for g0, g1 in zip(bounds[:-1], bounds[1:], strict=False):
        r0 = int(ends[g0 - 1]) if g0 else 0
        out.append((g0, g1, r0, int(ends[g1 - 1])))
    return out


def fit_dask(
    client: Any,
    train: Split,
    valid: Split,
    categorical: list[str],
    p: dict[str, Any],
    rounds: int,
    patience: int,
    metric: IpsNdcg | None = None,
):
    """``DaskLGBMRanker`` on the cluster: the training rows as partitions of whole query
    groups (two per worker), every round trained, then the early stopping rule of
    :func:`fit` applied on ``valid`` here. Returns a plain ``lightgbm.Booster`` whose
    ``best_iteration`` and ``best_score`` read as a local fit's."""
    import dask.array as da
    import dask.dataframe as dd
    import lightgbm as lgb

    workers = max(1, len(client.scheduler_info().get("workers", {})))
    parts = group_partitions(train.groups, 2 * workers)
    X = train.X.reset_index(drop=True)
    y = pd.Series(train.y, name="label")
    x_futures = client.scatter([X.iloc[r0:r1] for _, _, r0, r1 in parts])
    y_futures = client.scatter([y.iloc[r0:r1] for _, _, r0, r1 in parts])
    g_futures = client.scatter([np.asarray(train.groups[g0:g1]) for g0, g1, _, _ in parts])
    dX = dd.from_delayed(x_futures, meta=X.iloc[:0], verify_meta=False)
    dy = dd.from_delayed(y_futures, meta=y.iloc[:0], verify_meta=False)
    dg = da.concatenate(
        [da.from_delayed(f, shape=(g1 - g0,), dtype=np.asarray(train.groups).dtype)
         for f, (g0, g1, _, _) in zip(g_futures, parts, strict=True)]
    )  # fmt: skip
    params = {k: v for k, v in p.items() if k not in ("metric", "eval_at", "num_threads")}
    model = lgb.DaskLGBMRanker(client=client, n_estimators=rounds, **params)
    model.fit(dX, dy, group=dg, categorical_feature=categorical)
    booster = model.to_local().booster_
    best, best_score = best_prefix(booster, valid, patience, metric)
    booster.best_iteration = best
    name = "ndcg@10" if metric is None else metric.name
    booster.best_score = {"valid": {name: best_score}}
    log.info("Dask training: %d rounds, best %d (valid %s %.4f)", booster.current_iteration(), best, name, best_score)
    return booster


def best_prefix(booster: Any, valid: Split, patience: int, metric: IpsNdcg | None = None) -> tuple[int, float]:
    """The iteration early stopping would have kept: the best validation metric so far, until
    ``patience`` rounds in a row bring no improvement (LightGBM's rule, on ``metric`` or on its
    own metric: NDCG@10 over the validation day's query groups, ties in row order)."""
    raw = np.zeros(len(valid.y))
    best, best_score = 0, -np.inf
    ndcg = _lightgbm_ndcg(valid) if metric is None else metric
    for i in range(booster.current_iteration()):
        raw += booster.predict(valid.X, start_iteration=i, num_iteration=1, raw_score=True)
        score = ndcg(raw)
        if score > best_score:
            best, best_score = i + 1, score
        elif i + 1 - best >= patience:
            break
    return best, float(best_score)


def _lightgbm_ndcg(valid: Split):
    """NDCG@10 as LightGBM's metric computes it (label gain 2^l - 1, log2 discount, ties in
    row order, a group without relevant items scores 1)."""
    sizes = np.asarray(valid.groups, dtype=np.int64)
    gid = np.repeat(np.arange(len(sizes)), sizes)
    labels = np.asarray(valid.y, dtype=np.float64)
    row = np.arange(len(labels))

    def dcg(order: np.ndarray) -> np.ndarray:
        g, lab = gid[order], labels[order]
        starts = np.r_[0, np.cumsum(sizes)[:-1]]
        rank = np.arange(len(order)) - starts[g] + 1
        gain = np.where(rank <= 10, (2.0**lab - 1) / np.log2(rank + 1), 0.0)
        return np.bincount(g, weights=gain, minlength=len(sizes))

    ideal = dcg(np.lexsort((row, -labels, gid)))

    def score(raw: np.ndarray) -> float:
        actual = dcg(np.lexsort((row, -raw, gid)))
        values = np.where(ideal > 0, actual / np.where(ideal > 0, ideal, 1.0), 1.0)
        return float(values.mean())

    return score


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
    client: Any = None,
    metric: IpsNdcg | None = None,
) -> SearchResult:
    """Run (or resume) a search of ``trials`` trials within ``minutes``; maximises the validation
    metric on ``valid`` (``metric``, else LightGBM's NDCG@10: see the module's docstring).

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
        booster = fit(train, valid, spec, _suggest(trial, space), objective, client=client, metric=metric)
        trial.set_user_attr("best_iteration", booster.best_iteration)
        return valid_score(booster)[1]

    t0 = time.perf_counter()
    if remaining:
        with progress.bar(remaining, f"search ({minutes:g} min budget)", unit="trial") as trials_bar:
            study.optimize(
                score_trial,
                n_trials=remaining,
                timeout=minutes * 60,
                gc_after_trial=True,
                callbacks=[lambda study, trial: trials_bar.update(1)],
            )
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return SearchResult({}, float("nan"), 0, done_before, time.perf_counter() - t0)
    best = study.best_trial
    return SearchResult(dict(best.params), float(best.value), len(complete), done_before, time.perf_counter() - t0)
