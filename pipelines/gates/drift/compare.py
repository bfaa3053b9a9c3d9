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
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)


def sample_positions(length: int, rows: int, seed: int) -> np.ndarray | None:
    """The positions :func:`sample` keeps of a frame of ``length`` rows, in its order (None: all
    of them), without the frame: the gates that read a big day pick its rows first."""
    import numpy as np

    # What DataFrame.sample(n=rows, random_state=seed) draws: only the length and seed matter.
    return None if length <= rows else np.random.RandomState(seed).choice(length, size=rows, replace=False)


def sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame``, drawn with ``seed``; the frame itself when smaller."""
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed).reset_index(drop=True)


def sample_note(stats: dict[str, Any], seed: int) -> str:
    """The report's line on the rows its statistics saw (all, or a seeded sample of how many)."""
    parts = [f"{side} {stats['sampled'][side]:,} of {stats['rows'][side]:,} rows" for side in ("current", "reference")]
    sampled = stats["sampled"] != stats["rows"]
    how = f"a seeded sample (seed {seed}, drift.sample_rows)" if sampled else "all rows"
    return f"Statistics computed on {how}: {', '.join(parts)}."


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
    rows_before_sampling: dict[str, int] | None = None,
) -> DriftResult:
    """Sample, run Evidently, save its HTML report and store the verdict. A gate that sampled
    its frames already (with :func:`sample_positions`) gives their sizes before sampling."""
    p = params("drift")
    rows, seed = int(p["sample_rows"]), int(p["seed"])
    stats: dict[str, Any] = {"rows": rows_before_sampling or {"current": len(current), "reference": len(reference)}}
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
        current, reference, numerical, categorical, thresholds, share_threshold, note=sample_note(stats, seed)
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
