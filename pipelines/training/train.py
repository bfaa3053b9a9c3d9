"""``train(day)``: dataset -> search -> final fit -> evaluation -> registry -> promotion gate.

Time split for logical date D: train on the days before D-1, stop early on D-1, evaluate on
D (the newest labelled day). The champion alias moves only at the very end and only through
the gate, so a run killed at any point leaves the champion as it was.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from pipelines import promotion, registry
from pipelines.config import params
from pipelines.errors import NewsrecError
from pipelines.features.matrix import to_matrix
from pipelines.training import dataset, evaluate, ranker

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    day: date
    version: str
    evaluation: dict[str, Any]
    search: ranker.SearchResult
    decision: promotion.Decision
    data_hash: str
    seconds: float
    rows: dict[str, int]

    def render(self) -> str:
        return "\n".join(
            [
                f"trained model version {self.version} for {self.day} in {self.seconds:.0f} s "
                f"(train {self.rows['train']:,} rows, valid {self.rows['valid']:,}, test {self.rows['test']:,}; "
                f"search: {self.search.trials_done} trials, {self.search.trials_resumed} resumed)",
                "",
                evaluate.render(self.evaluation),
                "",
                self.decision.render(),
            ]
        )


@dataclass
class Splits:
    train: dataset.Split
    valid: dataset.Split
    test: dataset.Split
    spec: Any
    window: tuple[date, date]


def load_splits(day: date, train_days: int | None = None) -> Splits:
    cfg = params("training")
    n = int(train_days or cfg.get("train_days", 5))
    seed = int(cfg.get("seed", 13))
    if n < 1:
        raise NewsrecError("train_days must be at least 1")
    first, last = day - timedelta(days=n + 1), day - timedelta(days=2)
    train, spec = dataset.load_split(first, last, max_groups=cfg.get("max_train_groups"), seed=seed)
    valid, _ = dataset.load_split(day - timedelta(days=1), day - timedelta(days=1), spec,
                                  max_groups=cfg.get("max_eval_groups"), seed=seed)  # fmt: skip
    test, _ = dataset.load_split(day, day, spec, max_groups=cfg.get("max_eval_groups"), seed=seed)
    return Splits(train, valid, test, spec, (first, last))


def champion_ndcg_on(split: dataset.Split) -> tuple[str | None, float | None]:
    """The champion's NDCG@10 on the same held-out rows (None if it cannot score them)."""
    version = registry.champion_version()
    if version is None:
        return None, None
    from pipelines.features.matrix import check_signature

    champ = registry.load(version)
    try:
        check_signature(champ.spec)
    except NewsrecError as exc:
        log.warning("champion %s: %s", version, exc)
        return version, None
    scores = champ.predict(to_matrix(split.rows, champ.spec))
    from pipelines.training.metrics import ranking_metrics

    gids = evaluate.group_ids(split.rows)
    return version, ranking_metrics(gids, split.y, scores, split.rows["event_id"].to_numpy())["ndcg@10"]


def train(
    day: date,
    trials: int | None = None,
    minutes: float | None = None,
    train_days: int | None = None,
) -> TrainResult:
    from pipelines.ops import record_run

    cfg = params("training")
    trials = int(trials if trials is not None else cfg.get("hpo", {}).get("trials", 8))
    minutes = float(minutes if minutes is not None else cfg.get("hpo", {}).get("minutes", 10))
    t0 = time.perf_counter()
    with record_run("train", day) as run:
        splits = load_splits(day, train_days)
        snapshot = dataset.dataset_dir() / f"train-{day.isoformat()}.parquet"
        data_hash = dataset.snapshot(splits.train, snapshot)
        existing = registry.find_version(logical_date=day.isoformat(), dvc_data_hash=data_hash, training_mode="full")
        if existing is not None:
            result = _reuse(day, existing["version"], splits, data_hash, t0)
            run.details.update(version=result.version, reused=True)
            return result
        study = f"ranker-{day.isoformat()}-{data_hash[:10]}"
        search = ranker.search(splits.train, splits.valid, splits.spec, study, trials, minutes)
        booster = ranker.fit(splits.train, splits.valid, splits.spec, search.best_params)
        scores = booster.predict(splits.test.X)
        table = evaluate.evaluate(splits.test, scores, seed=int(cfg.get("seed", 13)))
        tests = promotion.model_tests(booster.predict, splits.spec, splits.test.rows)
        metrics = {
            **table["overall"]["model"],
            "best_iteration": booster.best_iteration,
            "valid_ndcg@10": search.best_value,
        }
        lineage = {
            "run_name": f"ranker-{day.isoformat()}",
            "logical_date": day.isoformat(),
            "data_window": f"{splits.window[0]}..{splits.window[1]}",
            "valid_day": (day - timedelta(days=1)).isoformat(),
            "test_day": day.isoformat(),
            "dvc_data_hash": data_hash,
            "dataset_path": str(snapshot),
            "training_mode": "full",
            "hpo_study": study,
        }
        version = registry.register(
            booster,
            splits.spec,
            metrics,
            {**ranker.lgb_params(search.best_params), "trials": trials, "minutes": minutes},
            lineage,
            artifacts={"evaluation.json": _jsonable(table), "model_tests.json": _jsonable(tests)},
        )
        champion, champion_ndcg = champion_ndcg_on(splits.test)
        decision = promotion.decide(version, table["overall"], tests, champion, champion_ndcg)
        if decision.promoted:
            registry.set_champion(version)
        promotion.record(decision, day)
        registry.mirror_to_neptune(version, table["overall"]["model"], lineage)
        rows = {"train": len(splits.train.y), "valid": len(splits.valid.y), "test": len(splits.test.y)}
        run.details.update(
            version=version, promoted=decision.promoted, rows=rows, ndcg=table["overall"]["model"]["ndcg@10"]
        )
    return TrainResult(day, version, table, search, decision, data_hash, time.perf_counter() - t0, rows)


def _reuse(day: date, version: str, splits: Splits, data_hash: str, t0: float) -> TrainResult:
    """The same date and data were already trained and registered: report that version
    instead of registering an identical one (re-runs and backfills stay idempotent)."""
    model = registry.load(version)
    table = evaluate.evaluate(splits.test, model.predict(to_matrix(splits.test.rows, model.spec)),
                              seed=int(params("training").get("seed", 13)))  # fmt: skip
    earlier = promotion.latest_decision(version)
    if earlier is None:  # the run that registered it was killed before recording its gate decision
        earlier = _gate_unrecorded(day, version, model, splits, table)
    reasons = [f"version {version} was already trained on this date and data; reused"]
    decision = promotion.Decision(
        promoted=bool(earlier and earlier.promoted),
        challenger=version,
        champion=earlier.champion if earlier else None,
        reasons=reasons + (earlier.reasons if earlier else []),
    )
    rows = {"train": len(splits.train.y), "valid": len(splits.valid.y), "test": len(splits.test.y)}
    search = ranker.SearchResult({}, float("nan"), 0, 0, 0.0)
    return TrainResult(day, version, table, search, decision, data_hash, time.perf_counter() - t0, rows)


def _gate_unrecorded(day: date, version: str, model: Any, splits: Splits, table: dict[str, Any]) -> promotion.Decision:
    """Pass a registered version through the promotion gate as its killed run would have, and
    record the decision. A version that is champion already (killed after the alias moved)
    stays so; one trained for an older date than the champion's is never promoted over it."""
    current = registry.champion_version()
    if current == version:
        before = (registry.version_info(version) or {}).get("tags", {}).get("promoted_from")
        decision = promotion.Decision(True, version, before, ["promoted before its run was killed"])
    else:
        tests = promotion.model_tests(model.predict, splits.spec, splits.test.rows)
        champion, champion_ndcg = champion_ndcg_on(splits.test)
        decision = promotion.decide(version, table["overall"], tests, champion, champion_ndcg)
        newer = (registry.version_info(current) or {}).get("tags", {}).get("logical_date", "") if current else ""
        if decision.promoted and newer > day.isoformat():
            decision.promoted = False
            decision.reasons.append(f"champion {current} was trained for a later date ({newer})")
        if decision.promoted:
            registry.set_champion(version)
    promotion.record(decision, day)
    return decision


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if value != value else float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return value
