"""The stages of the nightly bench's cycle: every stage of the nightly plan, in the plan's
order (:func:`bench_stages`), and what runs in each stage's fresh process.

Each child below calls the nightly run's own stage function (:mod:`pipelines.nightly.stages`), as
the DAG task does, for the night under test. Where the bench departs from a night, it says
so in its results: ingest checks that the seeded day landed (the seed is the bench's
setup), no experiment is started (the DAG's default params start none), and training
always runs, a full retrain with the bench's fixed budget (see :func:`train`), whatever the
retrain checker decided (its decision is recorded next to the training). Children import
no more than the stage itself needs (what they would import anyway is loaded inside them):
their wall time and peak RSS are what the bench measures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pipelines.bench import nightly_config
from pipelines.core.errors import NewsrecError
from pipelines.nightly import plan


def _stages() -> Any:
    """The nightly stage functions, imported in the child that runs one: the driver stays light
    (a spawned child starts with the driver's peak RSS, which would then be every stage's)."""
    from pipelines.nightly import stages

    return stages


# --- what runs in each child process ---------------------------------------------------


def ingest(day: str) -> dict[str, Any]:
    """The bench's setup seeded the day: ingest checks that it landed, as with an upstream load."""
    return _stages().ingest(day, "warehouse")


def quality_raw(day: str) -> dict[str, Any]:
    return _stages().quality(day, "raw")


def features(day: str) -> dict[str, Any]:
    return _stages().features(day)


def quality_features(day: str) -> dict[str, Any]:
    return _stages().quality(day, "features")


def materialize(day: str) -> dict[str, Any]:
    return _stages().materialize(day)


def drift(day: str) -> dict[str, Any]:
    return _stages().drift(day)


def propensity(day: str) -> dict[str, Any]:
    return _stages().propensity(day)


def decide_retrain(day: str) -> dict[str, Any]:
    return _stages().decide_retrain(day)


def train(day: str, trials: int, minutes: float, train_days: int) -> dict[str, Any]:
    """A full retrain with the bench's fixed budget (the nightly stage, with ``train_days``)."""
    from pipelines.model.train import train as run  # numpy, pandas, MLflow: this child only

    result = run(date.fromisoformat(day), trials=trials, minutes=minutes, train_days=train_days, mode="full")
    return {
        "version": result.version,
        "promoted": result.decision.promoted,
        "rows": result.rows,
        "ndcg@10": result.evaluation["overall"]["model"]["ndcg@10"],
        "objective": result.objective,  # auto trains both where positions are known: the one kept
        "truth_ndcg@10": result.evaluation.get("truth", {}).get("model"),
    }


def business_metrics(day: str) -> dict[str, Any]:
    return _stages().business_metrics(day)


def decide_experiments(day: str) -> dict[str, Any]:
    return _stages().decide_experiments(day)


def score_and_publish(day: str) -> dict[str, Any]:
    return _stages().score_and_publish(day)


def report(day: str) -> dict[str, Any]:
    return _stages().report(day)


# --- the cycle ---------------------------------------------------------------------------


@dataclass
class Night:
    """What the stages of one bench night read: the day under test, the bench's budget, the
    day's events, and what each stage run so far returned (by stage name)."""

    day: str
    cfg: nightly_config.BenchConfig
    events: int
    done: dict[str, dict[str, Any]] = field(default_factory=dict)


def _day(night: Night) -> tuple:
    return (night.day,)


def _total(value: Any) -> int | None:
    """A row count that stages report as a number or as counts per table."""
    if isinstance(value, dict):
        return sum(int(v) for v in value.values() if isinstance(v, (int, float)))
    return int(value) if isinstance(value, (int, float)) else None


@dataclass(frozen=True)
class BenchStage:
    name: str  # the nightly run's stage (the DAG task id)
    label: str  # its name in nightly.json and nightly.md
    child: Callable[..., dict[str, Any]] | None  # module level: it runs in a spawned process; None: not run
    args: Callable[[Night], tuple] = _day
    rows_label: str = ""  # what the stage's rows count ("" for none)
    rows: Callable[[Night], int | None] | None = None
    note: Callable[[Night], dict[str, Any]] | None = None  # where the bench departs from a night
    skipped: str = ""  # why the bench does not run it (child None)


def _trained_anyway(night: Night) -> dict[str, Any]:
    said = night.done["retrain_checker"].get("retrain")
    return {"retrain_checker_said_retrain": said, "trained_because": "the bench always trains (fixed budget)"}


_BY_NAME = {
    s.name: s
    for s in (
        BenchStage("ingest", "ingest (seeded day landed)", ingest, rows_label="events", rows=lambda n: n.events),
        BenchStage("raw_gate", "quality (raw)", quality_raw, rows_label="events", rows=lambda n: n.events),
        BenchStage("features", "features (Beam)", features, rows_label="events", rows=lambda n: n.events),
        BenchStage("quality_gate", "quality (features)", quality_features, rows_label="feature rows",
                   rows=lambda n: _total(n.done["features"].get("rows"))),
        BenchStage("materialize", "materialize (Feast online)", materialize, rows_label="online rows",
                   rows=lambda n: _total(n.done["materialize"].get("rows"))),
        BenchStage("drift_check", "drift", drift),
        BenchStage("propensity", "propensity (examination by position)", propensity),
        BenchStage("retrain_checker", "retrain decision", decide_retrain),
        BenchStage("train", "train + evaluate + register", train,
                   args=lambda n: (n.day, n.cfg.trials, n.cfg.hpo_minutes, n.cfg.train_days),
                   rows_label="train+valid+test rows", rows=lambda n: _total(n.done["train"].get("rows")),
                   note=_trained_anyway),
        BenchStage("business_metrics", "business metrics", business_metrics, rows_label="impressions",
                   rows=lambda n: n.done["business_metrics"].get("impressions")),
        BenchStage("start_experiment", "start experiment", None,
                   skipped="the bench starts no experiment (the DAG's default params start none)"),
        BenchStage("decide_experiments", "decide experiments", decide_experiments),
        BenchStage("score_and_publish", "score + publish", score_and_publish, rows_label="candidate rows",
                   rows=lambda n: n.done["score_and_publish"].get("candidates")),
        BenchStage("report", "report", report),
    )
}  # fmt: skip


def bench_stages() -> list[BenchStage]:
    """The cycle the bench runs: every stage of the nightly plan, in the plan's order. The one
    place the bench learns the night's stages; a stage the bench does not know stops it
    (the bench must not drift from the night it measures)."""
    names = [stage.task for stage in plan.STAGES]
    unknown = [name for name in names if name not in _BY_NAME]
    if unknown:
        raise NewsrecError(f"the nightly bench has no child for the plan's stage(s) {', '.join(unknown)}")
    return [_BY_NAME[name] for name in names]
