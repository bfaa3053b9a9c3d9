"""Target (label) drift: click-through and dwell of day D's impressions against the reference
days', from the warehouse events (queries ``drift_label_stats`` and ``drift_labels_sample``).
A source without dwell (its data profile) compares the clicks only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pipelines.core import db, runs, sql
from pipelines.core.config import params
from pipelines.core.errors import NewsrecError
from pipelines.gates.drift import compare, windows
from pipelines.gates.drift.result import DriftResult
from pipelines.warehouse import profile as data_profile
from pipelines.warehouse.profile import DataProfile

if TYPE_CHECKING:
    import pandas as pd

TARGET_COLUMNS = ("clicked", "read_dwell_s")
# The data-profile part a label column needs.
TARGET_NEEDS = {"read_dwell_s": "dwell"}


def target_columns(profile: DataProfile = data_profile.FULL) -> list[str]:
    """The label columns compared under ``profile``."""
    return [c for c in TARGET_COLUMNS if c not in TARGET_NEEDS or profile.has(TARGET_NEEDS[c])]


def _bounds(day: date) -> dict[str, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return {"start": start, "end": start + timedelta(days=1), "reads_end": start + timedelta(days=1, hours=1)}


def label_stats(conn: Any, day: date) -> dict[str, Any]:
    """Impressions, clicks, CTR and dwell of one day (exact, not sampled)."""
    with conn.cursor() as cur:
        cur.execute(sql.load("drift_label_stats"), _bounds(day))
        impressions, clicks, mean_dwell, median_dwell = cur.fetchone()
    return {
        "impressions": int(impressions),
        "clicks": int(clicks),
        "ctr": clicks / impressions if impressions else None,
        "mean_dwell_s": float(mean_dwell) if mean_dwell is not None else None,
        "median_dwell_s": float(median_dwell) if median_dwell is not None else None,
    }


def _labels(conn: Any, day: date, impressions: int, rows: int, seed: int) -> pd.DataFrame:
    """A seeded sample of about ``rows`` of the day's impressions with their labels."""
    import pyarrow as pa

    percent = 100.0 if impressions <= rows else 100.0 * rows / impressions
    return db.read_frame(
        conn,
        sql.load("drift_labels_sample"),
        {**_bounds(day), "percent": percent, "seed": seed},
        {"clicked": pa.int64(), "read_dwell_s": pa.float64()},
    )


def check_target_drift(day: date, reference_days: Sequence[date], profile: DataProfile | None = None) -> DriftResult:
    """Label drift: click-through and dwell of D's impressions against the reference days (the
    columns of ``profile``, default the warehouse's stored profile)."""
    import pandas as pd

    p = params("drift")
    profile = profile or data_profile.current()
    compared = target_columns(profile)
    rows, seed = int(p["sample_rows"]), int(p["seed"])
    with runs.record_run("drift_target", day) as run:
        conn = db.connect()
        try:
            current_stats = label_stats(conn, day)
            if not current_stats["impressions"]:
                raise NewsrecError(f"no impressions on {day}: nothing to compare")
            stats = {d: label_stats(conn, d) for d in reference_days}
            used, warnings = windows.available_reference(day, reference_days, lambda d: stats[d]["impressions"] > 0)
            current = _labels(conn, day, current_stats["impressions"], rows, seed)
            per_day = max(1, rows // len(used))
            reference = pd.concat(
                [_labels(conn, d, stats[d]["impressions"], per_day, seed) for d in used], ignore_index=True
            )
        finally:
            conn.close()
        pooled_impressions = sum(stats[d]["impressions"] for d in used)
        pooled_clicks = sum(stats[d]["clicks"] for d in used)
        reference_ctr = pooled_clicks / pooled_impressions
        label_summary = {
            "current": current_stats,
            "reference": {d.isoformat(): stats[d] for d in used},
            "reference_ctr": reference_ctr,
            "ctr_relative_change": (current_stats["ctr"] / reference_ctr - 1.0) if reference_ctr else None,
        }
        thresholds = {k: float(v) for k, v in p["target"]["column_thresholds"].items() if k in compared}
        result = compare.compare_frames(
            "target",
            day,
            used,
            current,
            reference,
            numerical=compared,
            categorical=[],
            thresholds=thresholds,
            share_threshold=float(p["target"]["share_threshold"]),
            warnings=warnings,
            run_id=run.run_id,
            extra_stats={"labels": label_summary, "data_profile": profile.summary()},
        )
        run.details.update(drifted=result.drifted, drift_share=result.drift_share, result_id=result.result_id)
    return result
