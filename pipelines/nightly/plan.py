"""The nightly stage plan, declared once.

Every stage of a night, in an order that respects its dependencies. ``run_day`` (and with it
``newsrec run-day`` and ``newsrec backfill``) runs this list; the nightly benchmark runs the
same list stage by stage in fresh processes; ``dags/newsrec_nightly.py`` wires a task per
stage, and ``tests/dags/test_dags.py`` checks that its tasks and edges are these.

Each stage names the DAG task (``task``), the key of its result in ``run_day``'s output
(``step``), its upstream stages (``after``, the DAG's edges) and how ``run_day`` calls its
function in :mod:`pipelines.nightly.stages` (handed in by the caller, so that reading the plan
imports no stage) from the run's options and the results so far.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class RunOptions:
    """What a caller of ``run_day`` chooses (the DAG's params, the CLI's options)."""

    ingest_source: str = "simulate"
    force_retrain: bool = False
    trials: int | None = None
    minutes: float | None = None
    dry_run: bool = False
    dask_address: str | None = None
    experiment_challengers: tuple[str, ...] = ()
    experiment_popularity_share: float = 0.0
    experiment_cohort_size: int | None = None


Results = Mapping[str, dict[str, Any]]
# (the stages module, the day, the run's options, the results so far) -> the stage's result
Call = Callable[[ModuleType, date, RunOptions, Results], dict[str, Any]]


@dataclass(frozen=True)
class Stage:
    task: str  # the DAG task id
    step: str  # the key of its result in run_day's output (and the stage named in alerts)
    call: Call = field(repr=False)
    after: tuple[str, ...] = ()  # upstream tasks
    gate: bool = False  # a failed gate stops the night and is never retried
    runs_if: Callable[[Results], bool] | None = field(default=None, repr=False)  # None: always
    finally_: bool = False  # runs whatever happened before (the report)
    # slots of the Airflow pool MEMORY_POOL (GiB of peak RSS at seed scale, rounded up; 0: the
    # default pool): Airflow runs parallel tasks only while their sum fits the pool's size,
    # params.yaml nightly.memory.cap_gib (`newsrec airflow` creates the pool)
    memory_gib: int = 0


MEMORY_POOL = "newsrec_memory"


def memory_cap_gib() -> int:
    """The memory pool's slots: the night's memory cap in GiB (params.yaml nightly.memory.cap_gib)."""
    from pipelines.core.config import params

    return int(params().get("nightly", {}).get("memory", {}).get("cap_gib", 8))


STAGES: tuple[Stage, ...] = (
    Stage("ingest", "ingest", lambda s, d, o, r: s.ingest(d, o.ingest_source)),
    # a bad day stops here, before any feature of it is written
    Stage("raw_gate", "quality_raw", lambda s, d, o, r: s.quality(d, "raw"), ("ingest",), gate=True, memory_gib=2),
    # D's events answered the lists published the night before
    Stage(
        "business_metrics", "business_metrics", lambda s, d, o, r: s.business_metrics(d), ("raw_gate",), memory_gib=1
    ),
    Stage(
        "features",
        "features",
        lambda s, d, o, r: s.features(d, dask_address=o.dask_address),
        ("raw_gate",),
        memory_gib=3,
    ),
    Stage(
        "quality_gate", "quality", lambda s, d, o, r: s.quality(d, "features"), ("features",), gate=True, memory_gib=2
    ),
    # peaks at seed scale (bench/results/nightly.md, 2026-12-03): the bulk online write 0.8 GiB,
    # drift 0.8 and training 5.6 (each input frame dropped once its split holds it; 7.5 before)
    # fit the cap together, so materialize runs beside both
    Stage("materialize", "materialize", lambda s, d, o, r: s.materialize(d), ("quality_gate",), memory_gib=1),
    Stage("drift_check", "drift", lambda s, d, o, r: s.drift(d), ("quality_gate",), memory_gib=1),
    # D's examination propensity, for tomorrow's training (tonight's reads D-1's, stored last
    # night): on no stage's path; it reads only the warehouse (2.1 GiB at seed scale)
    Stage("propensity", "propensity", lambda s, d, o, r: s.propensity(d), ("raw_gate",), memory_gib=3),
    Stage(
        "retrain_checker",
        "retrain",
        lambda s, d, o, r: s.decide_retrain(d, r["drift"].get("share"), o.force_retrain),
        ("drift_check",),
    ),
    Stage(
        "train",
        "train",
        lambda s, d, o, r: s.train(d, o.trials, o.minutes, dask_address=o.dask_address),
        ("retrain_checker",),
        runs_if=lambda r: bool(r["retrain"]["retrain"]),
        memory_gib=6,
    ),
    Stage(
        "start_experiment",
        "start_experiment",
        lambda s, d, o, r: s.start_experiment(
            d,
            list(o.experiment_challengers),
            popularity_share=o.experiment_popularity_share,
            cohort_size=o.experiment_cohort_size,
        ),
    ),
    # before the publish: tonight's lists follow the decision
    Stage(
        "decide_experiments",
        "decide_experiments",
        lambda s, d, o, r: s.decide_experiments(d),
        ("business_metrics", "start_experiment", "train"),
    ),
    Stage(
        "score_and_publish",
        "publish",
        lambda s, d, o, r: s.score_and_publish(d, dry_run=o.dry_run, dask_address=o.dask_address),
        ("decide_experiments", "materialize"),
        memory_gib=3,
    ),
    Stage("report", "report", lambda s, d, o, r: s.report(d), ("score_and_publish",), finally_=True),
)


def stage(task: str) -> Stage:
    """The stage of a DAG task id."""
    for s in STAGES:
        if s.task == task:
            return s
    raise KeyError(f"no nightly stage {task!r}")
