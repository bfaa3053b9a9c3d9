"""A night without Airflow: every stage of the plan for one date, and backfills as a loop of
nights. ``newsrec run-day``, ``newsrec backfill`` and the tests call these."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from pipelines.core import alerts
from pipelines.core.errors import NewsrecError
from pipelines.core.locks import run_lock
from pipelines.nightly import plan
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
) -> dict[str, Any]:
    """All stages of one date in the plan's order, holding the nightly run lock throughout.

    A failed stage raises after an alert names it; the report is written whatever happened."""
    opts = options or plan.RunOptions(ingest_source, force_retrain, trials, minutes, dry_run)
    d = as_date(day)
    with run_lock(f"run-day {day}"):
        return _run(d, opts)


def _run(d: date, options: plan.RunOptions) -> dict[str, Any]:
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
            with alerts.scope(SOURCE, run_id, stage.step):
                steps[stage.step] = stage.call(d, options, steps)
    except Exception as exc:
        alerts.record_task_failure(SOURCE, current, d, alerts.describe_error(exc), try_number=1, run_id=run_id)
        raise
    finally:
        for stage in finals:
            try:
                steps[stage.step] = stage.call(d, options, steps)
            except Exception:  # noqa: BLE001 - the report must not hide the run's own outcome
                log.exception("could not run %s for %s", stage.task, d)
    steps["seconds"] = round(time.perf_counter() - t0, 1)
    return steps


def backfill(first: date, last: date, options: plan.RunOptions) -> Iterator[tuple[date, dict[str, Any]]]:
    """Run the nights ``first``..``last`` oldest first; stops at the first failing date."""
    if last < first:
        raise NewsrecError("--to is before --from")
    day = first
    while day <= last:
        yield day, run_day(day, options=replace(options))
        day += timedelta(days=1)
