"""The nightly run's stage entry points: one function per DAG task, and nothing else.

Airflow tasks, ``newsrec run-day`` / ``newsrec backfill`` (through :mod:`pipelines.nightly.runner`
and the stage plan) and the tests call these with the logical date as an ISO string or a
date. Each calls one stage of the package and returns a small JSON-able dict (it travels
through XCom); the real outputs go to the database or the feature store.

Every stage holds the locks of its write domains while it runs (:func:`_locked`, the domains
and their fixed order in :mod:`pipelines.core.locks`): the warehouse day D and the features of
D, exclusive for the stage that rewrites them (ingest, features) and shared, with the days
before D that a stage reads, for the others; its own ops rows of D; the model registry, the
experiments, the online store. So the stages the DAG draws side by side (materialize beside
drift and training) may run at the same time, while a backfill and the nightly run never
interleave writes of one day or read a day that the other is rewriting (``run_day`` holds
day D exclusive for the whole date).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from pipelines.core import alerts, cluster, locks
from pipelines.core.errors import GateFailed, NewsrecError, TransientError
from pipelines.core.faults import checkpoint
from pipelines.core.locks import EXCLUSIVE, SHARED
from pipelines.core.runs import record_run
from pipelines.experiments import business_metrics as experiment_metrics
from pipelines.experiments import decide, lifecycle
from pipelines.features import build
from pipelines.gates import drift as drift_check
from pipelines.gates import quality as quality_gate
from pipelines.gates import reference, retrain
from pipelines.model import dataset, promotion
from pipelines.model import propensity as position_propensity
from pipelines.model import train as training
from pipelines.nightly import report as nightly_report
from pipelines.serving import batch, publish
from pipelines.warehouse import simulator, summary

__all__ = ["GateFailed"]  # raised by quality(); callers catch it from here or from core.errors

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def as_date(day: str | date) -> date:
    return day if isinstance(day, date) else date.fromisoformat(day)


# (the stage's day, its bound arguments) -> the locks it needs besides its own rows of the day
Domains = Callable[[date, dict[str, Any]], list[locks.Lock]]


def _reads(d: date, args: dict[str, Any]) -> list[locks.Lock]:
    """The warehouse and the features of D and the days before it, shared."""
    return locks.read_window(d)


def _reads_warehouse(d: date, args: dict[str, Any]) -> list[locks.Lock]:
    """The warehouse of D and the days before it, shared (not their features)."""
    return locks.read_window(d, features=False)


def _raw_or_features(d: date, args: dict[str, Any]) -> list[locks.Lock]:
    return locks.read_window(d, features=args["stage"] != "raw")


def _locked(domains: Domains, rows: Callable[[dict[str, Any]], str] | None = None) -> Callable[[F], F]:
    """Run the stage holding its domains' locks and the lock of its own rows of the day (named
    by ``rows``, default the stage's name); free where ``run_day`` already holds them."""

    def decorate(stage: F) -> F:
        signature = inspect.signature(stage)

        def locks_for(*args: Any, **kwargs: Any) -> tuple[str, list[locks.Lock]]:
            """What a call with these arguments holds: (its name, its locks)."""
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            d = as_date(arguments["day"])
            name = rows(arguments) if rows else stage.__name__
            return f"{name} {d}", [*domains(d, arguments), locks.stage_of_day(name, d)]

        @functools.wraps(stage)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            checkpoint(f"stage:{stage.__name__}")
            with locks.hold(*locks_for(*args, **kwargs)):
                return stage(*args, **kwargs)

        wrapper.locks_for = locks_for  # type: ignore[attr-defined]  # the tests hold a stage's locks
        return wrapper  # type: ignore[return-value]

    return decorate


@_locked(lambda d, a: [locks.warehouse_day(d, EXCLUSIVE), *locks.read_window(d, features=False)])
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


@_locked(lambda d, a: [locks.features_day(d, EXCLUSIVE), *locks.read_window(d)])
def features(day: str | date, runner: str | None = None, dask_address: str | None = None) -> dict[str, Any]:
    with cluster.using(dask_address):
        result = build.build(as_date(day), runner=runner)
    return {"day": result.day.isoformat(), "rows": result.rows, "warnings": result.warnings}


@_locked(lambda d, a: [*locks.read_window(d), locks.online_store(EXCLUSIVE)])
def materialize(day: str | date) -> dict[str, Any]:
    from pipelines.features import store  # Feast: ~10 s of imports the other tasks (rollback) do not need

    rows, writes = store.materialize_online(as_date(day))
    return {
        "rows": rows,
        "values": sum(w.values for w in writes),
        "seconds": round(sum(w.seconds for w in writes), 3),
        "writes": {w.view: w.strategy for w in writes},
    }


@_locked(_raw_or_features, rows=lambda a: f"quality:{a['stage']}")
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


@_locked(lambda d, a: [*locks.read_window(d), locks.registry(SHARED)])
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


@_locked(_reads)
def report(day: str | date) -> dict[str, Any]:
    return {"report": str(nightly_report.write_nightly_report(as_date(day)))}


@_locked(_reads_warehouse)
def propensity(day: str | date) -> dict[str, Any]:
    """Day D's examination propensity by position, estimated from the logs of its window and
    stored with the day (a re-run replaces it), for tomorrow night's training: a training run
    of night D validates and tests with D-1's (see ``propensity.for_held_out``), stored by the
    night before, so tonight's training never waits for this stage."""
    d = as_date(day)
    with record_run("propensity", d) as run:
        result = position_propensity.for_day(d, refresh=True)
        log.info(position_propensity.render(result))
        out = result.to_dict()
        run.details.update(out)
    return out


@_locked(lambda d, a: [*locks.read_window(d), locks.registry(SHARED)])
def decide_retrain(day: str | date, drift_share: float | None = None, force: bool = False) -> dict[str, Any]:
    decision = retrain.decide(as_date(day), drift_share=drift_share, force=force)
    log.info(decision.render())
    return decision.to_dict()


@_locked(lambda d, a: [*locks.read_window(d), locks.registry(EXCLUSIVE)])
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


@_locked(_reads_warehouse)
def business_metrics(day: str | date) -> dict[str, Any]:
    """Day D's business metric (dwell from the published lists, per arm, region and cohort)."""
    return experiment_metrics.business_metrics(as_date(day))


@_locked(lambda d, a: [*locks.read_window(d), locks.registry(EXCLUSIVE), locks.experiments(EXCLUSIVE)])
def decide_experiments(day: str | date) -> dict[str, Any]:
    """Keep, step up, promote or demote the running experiment's challengers; runs before the
    publish of D so that tonight's lists (shown on D+1) follow the decision."""
    return decide.decide_experiments(as_date(day))


@_locked(lambda d, a: [locks.experiments(EXCLUSIVE)])
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


@_locked(lambda d, a: [*locks.read_window(d), locks.registry(SHARED), locks.experiments(SHARED)])
def score_and_publish(day: str | date, dry_run: bool = False, dask_address: str | None = None) -> dict[str, Any]:
    return batch.score_and_publish(as_date(day), dry_run=dry_run, dask_address=dask_address or None)


def rollback(what: str = "both", model_version: str | None = None, batch_id: int | None = None) -> dict[str, Any]:
    """On-call's one move back: the champion alias, the live batch, or both (each recorded)."""
    out: dict[str, Any] = {}
    if what in ("model", "both"):
        with locks.hold("rollback", [locks.registry(EXCLUSIVE)]):
            before, after = promotion.rollback_champion(model_version, reason="the newsrec_rollback DAG")
        out["champion"] = {"from": before, "to": after}
    if what in ("batch", "both"):
        out["live_batch"] = publish.rollback(batch_id)  # under the publish lock
    return out
