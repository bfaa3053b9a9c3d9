"""Score drift: two arrays of model scores (e.g. today's batch against the champion's
validation scores), as a pure check or with a report and a stored verdict."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from pipelines.core.config import params
from pipelines.core.errors import NewsrecError
from pipelines.gates.drift import compare, evidently_report
from pipelines.gates.drift.result import ColumnDrift, DriftResult

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def score_drift(current: Sequence[float] | np.ndarray, reference: Sequence[float] | np.ndarray) -> ColumnDrift:
    """Drift of model scores (e.g. today's batch vs the champion's validation scores); pure, no I/O."""
    frames = _score_frames(current, reference)
    columns, _share, _snapshot = evidently_report.column_drift(
        *frames, ["score"], [], {"score": float(params("drift")["scores"]["threshold"])}, 1.0
    )
    return columns[0]


def check_score_drift(
    day: date,
    current: Sequence[float] | np.ndarray,
    reference: Sequence[float] | np.ndarray,
    reference_days: Sequence[date] = (),
) -> DriftResult:
    """:func:`score_drift` with an HTML report and a row in ``ops.drift_results``."""
    current_frame, reference_frame = _score_frames(current, reference)
    threshold = float(params("drift")["scores"]["threshold"])
    return compare.compare_frames(
        "scores",
        day,
        list(reference_days),
        current_frame,
        reference_frame,
        numerical=["score"],
        categorical=[],
        thresholds={"score": threshold},
        share_threshold=1.0,
        warnings=[],
        run_id=None,
    )


def _score_frames(current: Any, reference: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    import numpy as np
    import pandas as pd

    cur = np.asarray(current, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if not np.isfinite(cur).any() or not np.isfinite(ref).any():
        raise NewsrecError("score drift needs finite scores on both sides")
    return pd.DataFrame({"score": cur}), pd.DataFrame({"score": ref})
