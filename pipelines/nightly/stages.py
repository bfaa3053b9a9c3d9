"""The nightly run's stage entry points: one function per DAG task, and nothing else.

Airflow tasks, ``newsrec run-day`` / ``newsrec backfill`` (through :mod:`pipelines.nightly.runner`
and the stage plan) and the tests call these with the logical date as an ISO string or a
date. Each calls one stage of the package and returns a small JSON-able dict (it travels
through XCom); the real outputs go to the database or the feature store.

Every stage runs under the nightly run lock (:func:`pipelines.core.locks.run_lock`): a backfill
and the nightly DAG started together take turns stage by stage (``run_day`` holds the lock
for a whole date), so they never interleave writes of the same day or read a day
half-rewritten.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from pipelines.core import alerts, cluster
from pipelines.core.errors import GateFailed, NewsrecError, TransientError
from pipelines.core.faults import checkpoint
from pipelines.core.locks import run_lock
from pipelines.core.runs import record_run
from pipelines.experiments import business_metrics as experiment_metrics
from pipelines.experiments import decide, lifecycle
from pipelines.features import build
from pipelines.gates import drift as drift_check
from pipelines.gates import quality as quality_gate
from pipelines.gates import reference, retrain
from pipelines.model import dataset, promotion
from pipelines.model import train as training
from pipelines.nightly import report as nightly_report
from pipelines.serving import batch, publish
from pipelines.warehouse import simulator, summary

__all__ = ["GateFailed"]  # raised by quality(); callers catch it from here or from core.errors

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def as_date(day: str | date) -> date:
    return day if isinstance(day, date) else date.fromisoformat(day)


def _locked(stage: F) -> F:
    """Run the stage under the nightly run lock (free when ``run_day`` already holds it)."""

    @functools.wraps(stage)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        checkpoint(f"stage:{stage.__name__}")
        with run_lock(stage.__name__):
            return stage(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@_locked
def ingest(day: str | date, source: str = "simulate") -> dict[str, Any]:
    """Bring day D into the warehouse: simulate it, or check that an upstream load landed."""
    d = as_date(day)
    if source == "simulate":
        result = simulator.simulate_day(d)
        return {"day": d.isoformat(), "impressions": result.impressions, "reads": result.reads}
    if source == "warehouse":
        events = summary.events_in_day(d)
        if not events:
            raise NewsrecError(f"no events loaded for {d}: the upstream load has not landed")
        summary.analyze_loaded_day(d)  # the upstream load left the planner no statistics
        return {"day": d.isoformat(), "events": events}
    raise NewsrecError(f"unknown ingest source {source!r} (simulate or warehouse)")


@_locked
def features(day: str | date, runner: str | None = None, dask_address: str | None = None) -> dict[str, Any]:
    with cluster.using(dask_address):
        result = build.build(as_date(day), runner=runner)
    return {"day": result.day.isoformat(), "rows": result.rows, "warnings": result.warnings}


@_locked
def materialize(day: str | date) -> dict[str, Any]:
    from pipelines.features import store  # Feast: ~10 s of imports the other tasks (rollback) do not need

    rows, writes = store.materialize_online(as_date(day))
    return {
        "rows": rows,
        "values": sum(w.values for w in writes),
        "seconds": round(sum(w.seconds for w in writes), 3),
        "writes": {w.view: w.strategy for w in writes},
    }


@_locked
def quality(day: str | date, stage: str = "all") -> dict[str, Any]:
    """Quality stages ("raw" before the features are built, "features" after, or "all");
    raises :class:`GateFailed` on a critical failure, at the first stage that fails, after
    the gate's own alert (inside a run: the task's failure callback then sends nothing more).
    A database that cannot be reached is not a verdict: its TransientError passes as it is."""
    results = []
    try:
        for name in ("raw", "features") if stage == "all" else (stage,):
            try:
                (result,) = quality_gate.check_quality(as_date(day), name)
            except (GateFailed, TransientError):
                raise
            except NewsrecError as exc:  # e.g. a table or column renamed upstream: too broken to validate
                raise GateFailed(f"quality {name} {as_date(day)}: FAILED: {exc}") from exc
            results.append(result)
            log.info(result.render())
            if not result.passed:
                raise GateFailed(result.headline())
    except GateFailed as failed:
        alerts.gate_failed(as_date(day), failed)
        raise
    return {
        "passed": True,
        "warnings": sum(r.counts["warning_failed"] for r in results),
        "reports": [str(r.report_path) for r in results if r.report_path],
    }


@_locked
def drift(day: str | date) -> dict[str, Any]:
    """Feature and target drift against the champion's training window (informs retraining)."""
    d = as_date(day)
    window = reference.drift_reference(d)
    out: dict[str, Any] = {"reference": [r.isoformat() for r in window]}
    try:
        features_result = drift_check.check_drift(d, window)
        target_result = drift_check.check_target_drift(d, window)
    except TransientError:
        raise  # a lost database is retried, not read as "no reference"
    except NewsrecError as exc:
        # Drift only informs the retrain checker; without a usable reference it says so.
        log.warning("drift check skipped for %s: %s", d, exc)
        out.update(share=None, drifted=None, error=str(exc))
        return out
    log.info(features_result.render())
    log.info(target_result.render())
    out.update(
        share=features_result.drift_share,
        drifted=features_result.drifted,
        drifted_columns=features_result.drifted_columns,
        target_drifted=target_result.drifted,
        reports=[str(r.report_path) for r in (features_result, target_result) if r.report_path],
    )
    return out


def report(day: str | date) -> dict[str, Any]:
    return {"report": str(nightly_report.write_nightly_report(as_date(day)))}


@_locked
def decide_retrain(day: str | date, drift_share: float | None = None, force: bool = False) -> dict[str, Any]:
    decision = retrain.decide(as_date(day), drift_share=drift_share, force=force)
    log.info(decision.render())
    return decision.to_dict()


@_locked
def train(
    day: str | date,
    trials: int | None = None,
    minutes: float | None = None,
    mode: str | None = None,
    dask_address: str | None = None,
) -> dict[str, Any]:
    """Train in the mode the retrain checker recorded for the day (warm or full) unless told."""
    d = as_date(day)
    try:
        dataset.training_window(d)
    except dataset.NotEnoughHistory as short:  # a new warehouse: nothing to learn from yet
        log.warning("train %s skipped: %s", d, short)
        with record_run("train", d) as run:
            run.details.update({"trained": False, "reason": str(short)})
        return {"trained": False, "reason": str(short)}
    with cluster.using(dask_address):
        result = training.train(d, trials=trials, minutes=minutes, mode=mode or retrain.recorded_mode(d))
    log.info(result.render())
    return {
        "trained": True,
        "mode": result.mode,
        "warm_from": result.warm_from,
        "version": result.version,
        "promoted": result.decision.promoted,
        "reasons": result.decision.reasons,
        "ndcg@10": result.evaluation["overall"]["model"]["ndcg@10"],
    }


@_locked
def business_metrics(day: str | date) -> dict[str, Any]:
    """Day D's business metric (dwell from the published lists, per arm, region and cohort)."""
    return experiment_metrics.business_metrics(as_date(day))


@_locked
def decide_experiments(day: str | date) -> dict[str, Any]:
    """Keep, step up, promote or demote the running experiment's challengers; runs before the
    publish of D so that tonight's lists (shown on D+1) follow the decision."""
    return decide.decide_experiments(as_date(day))


def start_experiment(
    day: str | date,
    challengers: list[str],
    challenger_share: float | None = None,
    popularity_share: float = 0.0,
    cohort_size: int | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Start an experiment from the DAG's params (idempotent; a refusal is returned, not raised)."""
    return lifecycle.start_from_params(as_date(day), challengers, challenger_share, popularity_share, cohort_size, name)


@_locked
def score_and_publish(day: str | date, dry_run: bool = False, dask_address: str | None = None) -> dict[str, Any]:
    return batch.score_and_publish(as_date(day), dry_run=dry_run, dask_address=dask_address or None)


def rollback(what: str = "both", model_version: str | None = None, batch_id: int | None = None) -> dict[str, Any]:
    """On-call's one move back: the champion alias, the live batch, or both (each recorded)."""
    out: dict[str, Any] = {}
    if what in ("model", "both"):
        before, after = promotion.rollback_champion(model_version, reason="the newsrec_rollback DAG")
        out["champion"] = {"from": before, "to": after}
    if what in ("batch", "both"):
        out["live_batch"] = publish.rollback(batch_id)
    return out
