"""A night without Airflow: every stage of the plan for one date, and backfills as a loop of
nights. ``newsrec run-day``, ``newsrec backfill`` and the tests call these."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from pipelines.core import alerts, locks, progress
from pipelines.core.errors import NewsrecError
from pipelines.nightly import plan, stages
from pipelines.nightly.stages import as_date

log = logging.getLogger(__name__)

SOURCE = "newsrec run-day"  # the source of its alerts


def run_day(
    day: str | date,
    ingest_source: str = "simulate",
    force_retrain: bool = False,
    trials: int | None = None,
    minutes: float | None = None,
    dry_run: bool = False,
    options: plan.RunOptions | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """All stages of one date in the plan's order, holding the data of the date exclusive and
    the days it reads shared throughout (a backfill and a nightly run take turns date by date;
    each stage adds the other locks it needs, :mod:`pipelines.core.locks`).

    A failed stage raises after an alert names it; the report is written whatever happened.
    ``on_stage`` hears each stage's task name as it starts (the backfill's progress bar)."""
    opts = options or plan.RunOptions(ingest_source, force_retrain, trials, minutes, dry_run)
    d = as_date(day)
    # the whole night sees one version of the days it reads: another run may not rewrite one of
    # them between two stages of this one (an Airflow run holds them stage by stage)
    with locks.hold(f"run-day {d}", [*locks.day(d, locks.EXCLUSIVE), *locks.read_window(d)]):
        return _run(d, opts, on_stage or (lambda task: None))


def _run(d: date, options: plan.RunOptions, on_stage: Callable[[str], None]) -> dict[str, Any]:
    steps: dict[str, Any] = {}
    t0 = time.perf_counter()
    finals = [s for s in plan.STAGES if s.finally_]
    current = plan.STAGES[0].step
    run_id = alerts.new_run_id(f"run-day {d}")  # a failing gate's notice and the alert below are one
    try:
        for stage in plan.STAGES:
            if stage.finally_ or (stage.runs_if is not None and not stage.runs_if(steps)):
                continue
            current = stage.step
            on_stage(stage.task)
            with alerts.scope(SOURCE, run_id, stage.step):
                steps[stage.step] = stage.call(stages, d, options, steps)
    except Exception as exc:
        alerts.record_task_failure(SOURCE, current, d, alerts.describe_error(exc), try_number=1, run_id=run_id)
        raise
    finally:
        for stage in finals:
            try:
                steps[stage.step] = stage.call(stages, d, options, steps)
            except Exception:  # noqa: BLE001 - the report must not hide the run's own outcome
                log.exception("could not run %s for %s", stage.task, d)
    steps["seconds"] = round(time.perf_counter() - t0, 1)
    return steps


def backfill(first: date, last: date, options: plan.RunOptions) -> Iterator[tuple[date, dict[str, Any]]]:
    """Run the nights ``first``..``last`` oldest first; stops at the first failing date. On a
    terminal a bar shows the dates done and left and the stage running."""
    if last < first:
        raise NewsrecError("--to is before --from")
    day = first
    with progress.bar((last - first).days + 1, "backfill", unit="night") as nights:
        while day <= last:
            result = run_day(day, options=replace(options), on_stage=_show_stage(nights, day))
            nights.update(1)
            yield day, result
            day += timedelta(days=1)


def _show_stage(bar: Any, day: date) -> Callable[[str], None]:
    return lambda task: bar.set_postfix_str(f"{day} {task}")
