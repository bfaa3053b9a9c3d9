"""``train(day)``: dataset -> search -> final fit -> evaluation -> registry -> promotion gate.

Time split for logical date D: train on the days before D-1, stop early on D-1, evaluate on
D (the newest labelled day). The champion alias moves only at the very end and only through
the gate, so a run killed at any point leaves the champion as it was.

Two modes. ``full``: a search and a fit from scratch on the whole window, with the plain or
the position-debiased objective. ``warm``: when nothing drifted and the features are those
of the champion, continue the champion's trees (``init_model``) on the days it has not seen,
with its own parameters and objective, instead of spending the night on a search. Both
register a version tagged ``training_mode`` (and ``warm_from``) and pass the same gate.

The warehouse's data profile decides the labels and features (see :mod:`pipelines.model.dataset`)
and switches the debiased objective off where positions are unknown; the registered version
and the run's record say which profile it was trained under and why the objective changed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pipelines.core import cluster
from pipelines.core.config import params
from pipelines.core.errors import NewsrecError
from pipelines.core.jsonable import json_safe
from pipelines.core.runs import record_run
from pipelines.features.matrix import check_signature
from pipelines.model import counterfactual, dataset, evaluate, promotion, ranker, registry
from pipelines.model.dataset import Splits, load_splits
from pipelines.warehouse import profile as data_profile
from pipelines.warehouse.profile import DataProfile

log = logging.getLogger(__name__)


MODES = ("full", "warm")


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
    mode: str = "full"
    objective: str = "plain"
    warm_from: str | None = None
    engine: str = "local"  # or "dask": trained with DaskLGBMRanker on NEWSREC_DASK_ADDRESS
    note: str | None = None  # why the objective differs from the one asked for

    def render(self) -> str:
        how = (
            f"warm start from version {self.warm_from}"
            if self.mode == "warm"
            else f"search: {self.search.trials_done} trials, {self.search.trials_resumed} resumed"
        )
        return "\n".join(
            [
                f"trained model version {self.version} ({self.mode}, {self.objective}) for {self.day} in "
                f"{self.seconds:.0f} s (train {self.rows['train']:,} rows, valid {self.rows['valid']:,}, "
                f"test {self.rows['test']:,}; {how})"
                + (" on the Dask cluster" if self.engine == "dask" else "")
                + (f"\nnote: {self.note}" if self.note else ""),
                "",
                evaluate.render(self.evaluation),
                "",
                self.decision.render(),
            ]
        )


def champion_comparison(
    day: date, split: dataset.Split, scores: Any, profile: DataProfile = data_profile.FULL
) -> tuple[str | None, counterfactual.Paired | None]:
    """The champion, and the paired bootstrap of challenger ``scores`` - champion on the same
    held-out rows of ``day`` (:func:`pipelines.model.counterfactual.compare_on_day`); None when
    there is no champion or it cannot score the current features."""
    version = registry.champion_version()
    if version is None:
        return None, None
    champ = registry.load(version)
    try:
        check_signature(champ.spec, profile)
    except NewsrecError as exc:
        log.warning("champion %s: %s", version, exc)
        return version, None
    _, champion_scores = evaluate.score_on_day(champ, split=split)
    return version, counterfactual.compare_on_day(split, scores, champion_scores, day)


def train(
    day: date,
    trials: int | None = None,
    minutes: float | None = None,
    train_days: int | None = None,
    objective: str | None = None,
    mode: str = "full",
) -> TrainResult:
    """Train for logical date ``day``: ``full`` (search; ``objective`` or params.yaml's, where
    ``auto`` chooses plain vs debiased by the gate's rule: :func:`_choose_objective`) or ``warm``
    (continue the champion as of ``day`` with its parameters and objective)."""
    if mode not in MODES:
        raise NewsrecError(f"unknown training mode {mode!r} (full or warm)")
    if mode == "warm":
        return train_warm(day)
    requested = objective or ranker.default_objective()
    if requested != ranker.AUTO:
        ranker.check_objective(requested)
    # With NEWSREC_DASK_ADDRESS set the search and the final fit run on that cluster (checked
    # here, before any data is read); the model is registered and gated exactly as a local one.
    with cluster.client_for_stage("train") as client:
        return _train_full(day, trials, minutes, train_days, requested, client)


def _candidates(requested: str, on_dask: bool, profile: DataProfile) -> tuple[list[str], str | None]:
    """The objectives a run trains (the first gets the search) and the note on them."""
    if requested != ranker.AUTO:
        objective, why = ranker.objective_on(requested, on_dask, profile.positions_known)
        return [objective], why
    possible = [o for o in ranker.OBJECTIVES if ranker.objective_on(o, on_dask, profile.positions_known)[0] == o]
    skipped = [ranker.objective_on(o, on_dask, profile.positions_known)[1] for o in ranker.OBJECTIVES
               if o not in possible]  # fmt: skip
    incumbent = (registry.version_info(registry.CHAMPION) or {}).get("tags", {}).get("objective") if possible else None
    first = incumbent if incumbent in possible else "plain"
    return [first, *(o for o in possible if o != first)], "; ".join(w for w in skipped if w) or None


def _choose_objective(
    valid_day: date, splits: Splits, fitted: dict[str, Any]
) -> tuple[str, counterfactual.Paired | None]:
    """Plain vs debiased by the gate's rule: the first of ``fitted`` (the champion's objective,
    plain without one) is kept unless the other beats it on the validation day by the margin at
    the lower bound of the paired bootstrap over users (IPS NDCG@10; logged where positions are
    unknown). The validation day, not the test day: the test day stays untouched for the gate."""
    names = list(fitted)
    if len(names) == 1:
        return names[0], None
    incumbent, other = names
    comparison = counterfactual.compare_on_day(
        splits.valid, fitted[other].predict(splits.valid.X), fitted[incumbent].predict(splits.valid.X), valid_day
    )
    margin = float(params("promotion").get("margin", 0.002))
    return (other if comparison.clears(margin) else incumbent), comparison


def _fit_and_choose(
    valid_day: date, splits: Splits, candidates: list[str], best: dict[str, Any], client: Any, metric: Any
) -> tuple[str, Any, counterfactual.Paired | None, tuple[int, int] | None]:
    """Fit the candidate objectives with the parameters the search found (no second search) and
    keep one by :func:`_choose_objective`: ``(objective, booster, comparison, sampled)``.

    Where the training split holds more than ``training.auto.choice_groups`` query groups, the two
    objectives are compared as fitted on a seeded sample of that many groups, and only the one
    kept is then fitted on them all: at seed scale a full fit is ~5 minutes, and the choice is
    between objectives, which the same sample gives both (``sampled``: groups used, groups in all).
    """

    def fit(train: dataset.Split, objective: str) -> Any:
        return ranker.fit(train, splits.valid, splits.spec, best, objective, client=client, metric=metric)

    cfg = params("training")
    limit = int((cfg.get("auto") or {}).get("choice_groups") or 0)
    sample = splits.train
    if len(candidates) > 1 and limit:
        sample = dataset.subsample(splits.train, limit, int(cfg.get("seed", 13)))
    fitted = {o: fit(sample, o) for o in candidates}
    objective, comparison = _choose_objective(valid_day, splits, fitted)
    if sample is splits.train:
        return objective, fitted[objective], comparison, None
    return objective, fit(splits.train, objective), comparison, (sample.n_groups, splits.train.n_groups)


def _train_full(
    day: date, trials: int | None, minutes: float | None, train_days: int | None, requested: str, client: Any
) -> TrainResult:
    cfg = params("training")
    profile = data_profile.current()
    candidates, why = _candidates(requested, client is not None, profile)
    if why:
        log.warning("training the %s objective(s), not %s: %s", "/".join(candidates), requested, why)
    trials = int(trials if trials is not None else cfg.get("hpo", {}).get("trials", 8))
    minutes = float(minutes if minutes is not None else cfg.get("hpo", {}).get("minutes", 10))
    how = "rule" if requested == ranker.AUTO else "requested"
    t0 = time.perf_counter()
    with record_run("train", day) as run:
        run.details.update(data_profile=profile.summary())
        splits = load_splits(day, train_days, profile=profile)
        snapshot = dataset.dataset_dir() / f"train-{day.isoformat()}.parquet"
        data_hash = dataset.snapshot(splits.train, snapshot)
        # a cluster run reuses only a cluster-trained version (a local run reuses either)
        engine = {"training_engine": "dask"} if client is not None else {}
        asked = {"objective_choice": "rule"} if how == "rule" else {"objective": candidates[0]}
        existing = registry.find_version(
            logical_date=day.isoformat(), dvc_data_hash=data_hash, training_mode="full", **asked, **engine
        )
        if existing is not None:
            result = _reuse(day, existing["version"], splits, data_hash, t0)
            run.details.update(version=result.version, reused=True, mode="full", objective=result.objective)
            return result
        valid_day = day - timedelta(days=1)
        metric = counterfactual.validation_metric(splits.valid, valid_day)
        first = candidates[0]
        # a study scored by the IPS validation metric is another study ("-ips"): the trials of one
        # scored on the logged metric (interrupted before it existed, or positions unknown) never mix in
        study = (f"ranker-{day.isoformat()}-{data_hash[:10]}" + ("" if first == "plain" else f"-{first}")
                 + ("" if metric is None else "-ips"))  # fmt: skip
        search = ranker.search(splits.train, splits.valid, splits.spec, study, trials, minutes, first, client, metric)
        objective, model, comparison, sampled = _fit_and_choose(valid_day, splits, candidates, search.best_params,
                                                                client, metric)  # fmt: skip
        note = _choice_note(candidates, objective, comparison, why, sampled)
        lineage = _lineage(day, splits, data_hash, snapshot, "full", objective)
        lineage.update(hpo_study=study, training_engine="dask" if client is not None else "local",
                       objective_choice=how, validation_metric=metric.name if metric else "ndcg@10")  # fmt: skip
        if client is not None:
            lineage["dask_workers"] = str(len(client.scheduler_info().get("workers", {})))
        if note:
            lineage["objective_note"] = note
        if how == "requested" and objective != requested:
            lineage["objective_requested"] = requested
        hyper = {**ranker.lgb_params(search.best_params, objective), "trials": trials, "minutes": minutes}
        result = _register_and_gate(day, model, splits, hyper, lineage)
        _record(run.details, result, "full", objective, engine=lineage["training_engine"], objective_choice=how)
        if note:
            run.details.update(objective_note=note)
        if comparison is not None:
            run.details.update(objective_comparison=comparison.to_dict())
        if how == "requested" and objective != requested:
            run.details.update(objective_requested=requested)
    out = _result(result, search, data_hash, t0, "full", objective)
    out.engine = lineage["training_engine"]
    out.note = note
    return out


def _choice_note(
    candidates: list[str],
    objective: str,
    comparison: counterfactual.Paired | None,
    why: str | None,
    sampled: tuple[int, int] | None = None,
) -> str | None:
    """What the run record and the version's tags say about the objective: the comparison that
    chose it (and why an objective could not be trained)."""
    if comparison is None:
        return why
    incumbent, other = candidates
    verdict = (f"kept {incumbent} ({other} did not beat it by the margin)" if objective == incumbent
               else f"kept {other} (it beat {incumbent} by the margin)")  # fmt: skip
    note = f"{other} vs {incumbent} on the validation day: {comparison.summary()}; {verdict}"
    if sampled:
        note += f" (both fitted on {sampled[0]:,} of the {sampled[1]:,} training groups; the kept one then on all)"
    return note if not why else f"{note}; {why}"


def _record(details: dict[str, Any], result: _Gated, mode: str, objective: str, **extra: Any) -> None:
    """What ``ops.runs`` keeps of a training run."""
    details.update(
        version=result.version,
        promoted=result.decision.promoted,
        rows=result.rows,
        ndcg=result.evaluation["overall"]["model"]["ndcg@10"],
        mode=mode,
        objective=objective,
        **extra,
    )
    counterfactual_table = result.evaluation.get("counterfactual") or {}
    if counterfactual_table.get("available"):  # the unbiased estimate, where positions allow one
        details["ips_ndcg"] = counterfactual_table["scorers"]["model"]["ips_ndcg@10"]


def train_warm(day: date) -> TrainResult:
    """Continue the champion as of ``day`` on the days it has not seen (at most
    ``training.warm.train_days``), with its parameters and objective, for at most
    ``training.warm.num_boost_round`` new trees; early stopping on D-1 as in a full run."""
    cfg = params("training")
    warm = cfg.get("warm", {})
    t0 = time.perf_counter()
    with record_run("train", day) as run:
        info = registry.champion_as_of(day)
        if info is None:
            raise NewsrecError(f"no champion before {day} to warm-start from; train --mode full")
        champion = registry.load(info["version"])
        profile = data_profile.current()
        run.details.update(data_profile=profile.summary())
        check_signature(champion.spec, profile)  # a feature change needs a full retrain
        champion_objective = champion.tags.get("objective", "plain")
        objective, why = ranker.objective_on(champion_objective, False, profile.positions_known)
        seen_last = date.fromisoformat(champion.tags["data_window"].split("..")[1])
        n_new = int(warm.get("train_days", 2))
        first = min(max(seen_last + timedelta(days=1), day - timedelta(days=n_new + 1)), day - timedelta(days=2))
        splits = load_splits(day, spec=champion.spec, first=first, profile=profile)
        snapshot = dataset.dataset_dir() / f"train-{day.isoformat()}-warm.parquet"
        data_hash = dataset.snapshot(splits.train, snapshot)
        existing = registry.find_version(
            logical_date=day.isoformat(),
            dvc_data_hash=data_hash,
            training_mode="warm",
            warm_from=champion.version,
            objective=objective,
        )
        if existing is not None:
            result = _reuse(day, existing["version"], splits, data_hash, t0)
            run.details.update(version=result.version, reused=True, mode="warm", warm_from=champion.version)
            return result
        overrides = registry.registered_params(champion.version, ranker.lgb_params(objective=objective))
        rounds = int(warm.get("num_boost_round", 100))
        metric = counterfactual.validation_metric(splits.valid, day - timedelta(days=1))
        booster = ranker.fit(splits.train, splits.valid, splits.spec, overrides, objective,
                             init_model=champion.booster, rounds=rounds, metric=metric)  # fmt: skip
        lineage = _lineage(day, splits, data_hash, snapshot, "warm", objective)
        lineage.update(warm_from=champion.version, validation_metric=metric.name if metric else "ndcg@10")
        if why:
            lineage.update(objective_requested=champion_objective, objective_note=why)
        hyper = {**ranker.lgb_params(overrides, objective), "warm_rounds": rounds}
        valid_ndcg = ranker.valid_score(booster)[1]
        result = _register_and_gate(day, booster, splits, hyper, lineage)
        _record(run.details, result, "warm", objective, warm_from=champion.version)
        if why:
            run.details.update(objective_requested=champion_objective, objective_note=why)
    out = _result(result, ranker.SearchResult({}, valid_ndcg, 0, 0, 0.0), data_hash, t0, "warm", objective)
    out.warm_from = champion.version
    out.note = why
    return out


def _lineage(day: date, splits: Splits, data_hash: str, snapshot: Any, mode: str, objective: str) -> dict[str, str]:
    return {
        "run_name": f"ranker-{day.isoformat()}",
        "logical_date": day.isoformat(),
        "data_window": f"{splits.window[0]}..{splits.window[1]}",
        "valid_day": (day - timedelta(days=1)).isoformat(),
        "test_day": day.isoformat(),
        "dvc_data_hash": data_hash,
        "dataset_path": str(snapshot),
        "training_mode": mode,
        "objective": objective,
        "data_profile": splits.profile.summary(),
    }


@dataclass
class _Gated:
    day: date
    version: str
    evaluation: dict[str, Any]
    decision: promotion.Decision
    rows: dict[str, int]


def _register_and_gate(
    day: date, booster: Any, splits: Splits, hyper: dict[str, Any], lineage: dict[str, str]
) -> _Gated:
    """Evaluate, register with lineage, and promote only through the gate (full and warm alike)."""
    scores = booster.predict(splits.test.X)
    table = evaluate.evaluate(splits.test, scores, seed=int(params("training").get("seed", 13)))
    tests = promotion.model_tests(booster.predict, splits.spec, splits.test.rows)
    valid_name, valid_value = ranker.valid_score(booster)
    metrics = {
        **table["overall"]["model"],
        "best_iteration": booster.best_iteration,
        f"valid_{valid_name}": valid_value,
    }
    if "truth" in table:
        metrics["truth_ndcg@10"] = table["truth"]["model"]
    table["counterfactual"] = counterfactual.evaluate_day(splits.test, scores, day)  # recorded, not yet decided on
    if table["counterfactual"].get("available"):
        metrics["ips_ndcg@10"] = table["counterfactual"]["scorers"]["model"]["ips_ndcg@10"]
    version = registry.register(
        booster,
        splits.spec,
        metrics,
        hyper,
        lineage,
        artifacts={"evaluation.json": json_safe(table), "model_tests.json": json_safe(tests)},
    )
    champion, comparison = champion_comparison(day, splits.test, scores, splits.profile)
    decision = promotion.promote(promotion.decide(version, table["overall"], tests, champion, comparison), day)
    registry.mirror_to_neptune(version, table["overall"]["model"], lineage)
    rows = {"train": len(splits.train.y), "valid": len(splits.valid.y), "test": len(splits.test.y)}
    return _Gated(day, version, table, decision, rows)


def _result(
    gated: _Gated, search: ranker.SearchResult, data_hash: str, t0: float, mode: str, objective: str
) -> TrainResult:
    return TrainResult(
        gated.day,
        gated.version,
        gated.evaluation,
        search,
        gated.decision,
        data_hash,
        time.perf_counter() - t0,
        gated.rows,
        mode,
        objective,
    )


def _reuse(day: date, version: str, splits: Splits, data_hash: str, t0: float) -> TrainResult:
    """The same date and data were already trained and registered: report that version
    instead of registering an identical one (re-runs and backfills stay idempotent)."""
    model = registry.load(version)
    _, scores = evaluate.score_on_day(model, split=splits.test)
    table = evaluate.evaluate(splits.test, scores, seed=int(params("training").get("seed", 13)))
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
    tags = model.tags
    return TrainResult(
        day,
        version,
        table,
        search,
        decision,
        data_hash,
        time.perf_counter() - t0,
        rows,
        tags.get("training_mode", "full"),
        tags.get("objective", "plain"),
        tags.get("warm_from"),
    )


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
        _, scores = evaluate.score_on_day(model, split=splits.test)
        champion, comparison = champion_comparison(day, splits.test, scores, splits.profile)
        decision = promotion.decide(version, table["overall"], tests, champion, comparison)
        newer = (registry.version_info(current) or {}).get("tags", {}).get("logical_date", "") if current else ""
        if decision.promoted and newer > day.isoformat():
            decision.promoted = False
            decision.reasons.append(f"champion {current} was trained for a later date ({newer})")
        return promotion.promote(decision, day)
    promotion.record(decision, day)
    return decision
