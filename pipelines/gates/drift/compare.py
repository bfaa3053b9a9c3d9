"""The comparison every drift gate shares: sample both sides (seeded), skip columns empty on
a side, run Evidently, save its HTML report and store the verdict."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from pipelines.core.config import get_settings, params
from pipelines.core.errors import NewsrecError
from pipelines.gates.drift import evidently_report, store
from pipelines.gates.drift.result import DriftResult, Kind

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame``, drawn with ``seed``; the frame itself when smaller."""
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed).reset_index(drop=True)


def compare_frames(
    kind: Kind,
    day: date,
    reference_days: list[date],
    current: pd.DataFrame,
    reference: pd.DataFrame,
    *,
    numerical: list[str],
    categorical: list[str],
    thresholds: dict[str, float],
    share_threshold: float,
    warnings: list[str],
    run_id: int | None,
    extra_stats: dict[str, Any] | None = None,
) -> DriftResult:
    """Sample, run Evidently, save its HTML report and store the verdict."""
    p = params("drift")
    rows, seed = int(p["sample_rows"]), int(p["seed"])
    stats: dict[str, Any] = {"rows": {"current": len(current), "reference": len(reference)}}
    current, reference = sample(current, rows, seed), sample(reference, rows, seed)
    stats["sampled"] = {"current": len(current), "reference": len(reference)}
    # Evidently cannot compare a column that is empty on either side; report and skip it.
    empty = [c for c in [*numerical, *categorical] if current[c].isna().all() or reference[c].isna().all()]
    for column in empty:
        warnings.append(f"column {column} has no values on one side; not compared")
    numerical = [c for c in numerical if c not in empty]
    categorical = [c for c in categorical if c not in empty]
    if not numerical and not categorical:
        raise NewsrecError(f"drift {kind} of {day}: no column has values on both sides")
    columns, share, snapshot = evidently_report.column_drift(
        current, reference, numerical, categorical, thresholds, share_threshold
    )
    stats.update(extra_stats or {})
    out_dir = get_settings().reports_dir / "drift" / day.isoformat()
    out_dir.mkdir(parents=True, exist_ok=True)
    report_path = out_dir / f"{kind}-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.html"
    snapshot.save_html(str(report_path))
    result = DriftResult(
        kind=kind,
        day=day,
        reference_days=list(reference_days),
        drifted=share >= share_threshold,
        drift_share=share,
        share_threshold=share_threshold,
        columns=columns,
        stats=stats,
        report_path=report_path,
        warnings=warnings,
        run_id=run_id,
    )
    result.result_id = store.store_result(result)
    if result.drifted:
        log.info("%s", result.render())
    return result
