"""The nightly run's stage entry points: one function per DAG task.

Airflow tasks, ``newsrec run-day`` / ``newsrec backfill`` and the tests all call these, with
the logical date as an ISO string or a date. Each returns a small JSON-able dict (it travels
through XCom) and writes its real outputs to the database or the feature store.

Every stage runs under the nightly run lock (:func:`pipelines.core.runs.run_lock`): a backfill and
the nightly DAG started together take turns stage by stage (``run_day`` holds the lock for a
whole date), so they never interleave writes of the same day or read a day half-rewritten.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, TypeVar

from pipelines.core.errors import NewsrecError

log = logging.getLogger(__name__)


def _date(day: str | date) -> date:
    return day if isinstance(day, date) else date.fromisoformat(day)


F = TypeVar("F", bound=Callable[..., Any])


def _locked(stage: F) -> F:
    """Run the stage under the nightly run lock (free when ``run_day`` already holds it)."""

    @functools.wraps(stage)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pipelines.core.faults import checkpoint
        from pipelines.core.runs import run_lock

        checkpoint(f"stage:{stage.__name__}")
        with run_lock(stage.__name__):
            return stage(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@_locked
def ingest(day: str | date, source: str = "simulate") -> dict[str, Any]:
    """Bring day D into the warehouse: simulate it, or check that an upstream load landed."""
    d = _date(day)
    if source == "simulate":
        from pipelines.warehouse import simulator

        result = simulator.simulate_day(d)
        return {"day": d.isoformat(), "impressions": result.impressions, "reads": result.reads}
    if source == "warehouse":
        from pipelines.core import db

        with db.transaction() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM warehouse.events WHERE event_ts >= %s AND event_ts < %s",
                (d, d + timedelta(days=1)),
            )
            (events,) = cur.fetchone()
        if not events:
            raise NewsrecError(f"no events loaded for {d}: the upstream load has not landed")
        return {"day": d.isoformat(), "events": int(events)}
    raise NewsrecError(f"unknown ingest source {source!r} (simulate or warehouse)")


@_locked
def features(day: str | date, runner: str | None = None, dask_address: str | None = None) -> dict[str, Any]:
    from pipelines.core import cluster
    from pipelines.features.build import build

    with cluster.using(dask_address):
        result = build(_date(day), runner=runner)
    return {"day": result.day.isoformat(), "rows": result.rows, "warnings": result.warnings}


@_locked
def materialize(day: str | date) -> dict[str, Any]:
    from pipelines.features.store import materialize as run

    return {"rows": run(_date(day))}


class GateFailed(NewsrecError):
    """A critical quality check failed: nothing downstream may run. The message is one line
    (the failing checks and the report); the full verdict is logged and stored in ops."""


@_locked
def quality(day: str | date, stage: str = "all") -> dict[str, Any]:
    """Quality stages ("raw" before the features are built, "features" after, or "all");
    raises :class:`GateFailed` on a critical failure, at the first stage that fails."""
    from pipelines.gates.quality import check_quality

    results = []
    for name in ("raw", "features") if stage == "all" else (stage,):
        try:
            (result,) = check_quality(_date(day), name)
        except GateFailed:
            raise
        except NewsrecError as exc:  # e.g. a table or column renamed upstream: too broken to validate
            raise GateFailed(f"quality {name} {_date(day)}: FAILED: {exc}") from exc
        results.append(result)
        if not result.passed:
            log.info(result.render())
            raise GateFailed(result.headline())
        log.info(result.render())
    return {
        "passed": True,
        "warnings": sum(r.counts["warning_failed"] for r in results),
        "reports": [str(r.report_path) for r in results if r.report_path],
    }


def drift_reference(day: date) -> list[date]:
    """The champion's training window when there is one, else the days before ``day``."""
    from pipelines.gates import drift as drift_check
    from pipelines.model import registry

    info = registry.champion_as_of(day)
    window = (info or {}).get("tags", {}).get("data_window")
    if window:
        first, last = (date.fromisoformat(x) for x in window.split(".."))
        return drift_check.reference_range(first, last)
    return drift_check.default_reference_days(day)


@_locked
def drift(day: str | date) -> dict[str, Any]:
    """Feature and target drift against the champion's training window (informs retraining)."""
    from pipelines.gates import drift as drift_check

    d = _date(day)
    reference = drift_reference(d)
    out: dict[str, Any] = {"reference": [r.isoformat() for r in reference]}
    try:
        features_result = drift_check.check_drift(d, reference)
        target_result = drift_check.check_target_drift(d, reference)
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
    from pipelines.nightly.report import write_nightly_report

    path = write_nightly_report(_date(day))
    return {"report": str(path)}


@_locked
def decide_retrain(day: str | date, drift_share: float | None = None, force: bool = False) -> dict[str, Any]:
    from pipelines.gates import retrain

    decision = retrain.decide(_date(day), drift_share=drift_share, force=force)
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
    from pipelines.core import cluster
    from pipelines.gates.retrain import recorded_mode
    from pipelines.model.train import train as run

    d = _date(day)
    with cluster.using(dask_address):
        result = run(d, trials=trials, minutes=minutes, mode=mode or recorded_mode(d))
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
    from pipelines.experiments.business_metrics import business_metrics as run

    return run(_date(day))


@_locked
def decide_experiments(day: str | date) -> dict[str, Any]:
    """Keep, step up, promote or demote the running experiment's challengers; runs before the
    publish of D so that tonight's lists (shown on D+1) follow the decision."""
    from pipelines.experiments.decide import decide_experiments as run

    return run(_date(day))


def start_experiment(
    day: str | date,
    challengers: list[str],
    challenger_share: float | None = None,
    popularity_share: float = 0.0,
    cohort_size: int | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Start an experiment from the DAG's params (served from the publish of D on).

    Idempotent: a re-run finds the experiment it created. A refusal (another experiment is
    running, an unknown version, bad shares) is logged and returned, never raised: the night's
    publish must not wait for a mistyped param."""
    from pipelines.experiments import lifecycle

    d = _date(day)
    if not challengers and not popularity_share:
        return {"started": False}
    name = name or f"{d}-" + "-".join(f"v{v}" for v in challengers or ["popularity"])
    try:
        existing = lifecycle.get(name)
    except NewsrecError:
        existing = None
    if existing is not None:
        return {"started": False, "experiment": name, "status": existing.status}
    try:
        info = lifecycle.create(name, challengers, challenger_share, popularity_share, None, cohort_size, started_on=d)
    except NewsrecError as exc:
        log.warning("experiment %s not started: %s", name, exc)
        return {"started": False, "experiment": name, "refused": str(exc)}
    return {"started": True, "experiment": info.name, "experiment_id": info.experiment_id}


@_locked
def score_and_publish(day: str | date, dry_run: bool = False, dask_address: str | None = None) -> dict[str, Any]:
    from pipelines.serving.scoring import score_and_publish as run

    return run(_date(day), dry_run=dry_run, dask_address=dask_address or None)


def rollback(what: str = "both", model_version: str | None = None, batch_id: int | None = None) -> dict[str, Any]:
    """On-call's one move back: the champion alias, the live batch, or both."""
    from pipelines.model import promotion, registry

    out: dict[str, Any] = {}
    if what in ("model", "both"):
        if model_version:
            before = registry.set_champion(str(model_version))
            after = str(model_version)
        else:
            before, after = registry.rollback()
        promotion.record(promotion.Decision(True, after, before, ["rollback"]), logical_date=None, kind="rollback")
        out["champion"] = {"from": before, "to": after}
    if what in ("batch", "both"):
        from pipelines.serving import publish

        out["live_batch"] = publish.rollback(batch_id)
    return out


def run_day(
    day: str | date,
    ingest_source: str = "simulate",
    force_retrain: bool = False,
    trials: int | None = None,
    minutes: float | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """All stages of one date in DAG order, without Airflow (backfills, the CLI, tests),
    holding the nightly run lock throughout."""
    from pipelines.core.runs import run_lock

    with run_lock(f"run-day {day}"):
        return _run_day(_date(day), ingest_source, force_retrain, trials, minutes, dry_run)


def _run_day(
    d: date, ingest_source: str, force_retrain: bool, trials: int | None, minutes: float | None, dry_run: bool
) -> dict[str, Any]:
    steps: dict[str, Any] = {}
    t0 = time.perf_counter()
    current = "ingest"
    try:
        steps["ingest"] = ingest(d, ingest_source)
        current = "quality_raw"  # a bad day stops here, before any feature of it is written
        steps["quality_raw"] = quality(d, "raw")
        current = "business_metrics"  # D's events answered the lists published the night before
        steps["business_metrics"] = business_metrics(d)
        current = "features"
        steps["features"] = features(d)
        current = "quality"
        steps["quality"] = quality(d, "features")
        current = "materialize"
        steps["materialize"] = materialize(d)
        current = "drift"
        steps["drift"] = drift(d)
        current = "retrain"
        steps["retrain"] = decide_retrain(d, steps["drift"].get("share"), force_retrain)
        if steps["retrain"]["retrain"]:
            current = "train"
            steps["train"] = train(d, trials, minutes)
        current = "decide_experiments"  # before the publish: tonight's lists follow the decision
        steps["decide_experiments"] = decide_experiments(d)
        current = "publish"
        steps["publish"] = score_and_publish(d, dry_run=dry_run)
    except Exception as exc:
        from pipelines.core.alerts import record_task_failure

        record_task_failure("newsrec run-day", current, d, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        try:
            steps["report"] = report(d)
        except Exception:  # noqa: BLE001 - the report must not hide the run's own outcome
            log.exception("could not write the nightly report for %s", d)
    steps["seconds"] = round(time.perf_counter() - t0, 1)
    return steps
