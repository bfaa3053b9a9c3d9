"""Drift gates with Evidently: features, labels (target) and model scores of day D against
reference days.

``check_drift(day, reference_days)`` compares the model-relevant user features of D with those
of the reference days (the 7 days before D by default; the retrain checker passes the
champion's training window). ``check_target_drift`` does the same for the labels (click and
dwell of D's impressions), and ``score_drift`` / ``check_score_drift`` take two arrays of model
scores (wired in once batch scoring exists).

Both sides are sampled (``drift.sample_rows``, seeded) and compared with distance methods
(normed Wasserstein for numbers, Jensen-Shannon for categories): p-value tests call almost
everything drifted at large n. A column drifted when its distance reaches its threshold; the
day drifted when the share of drifted columns reaches ``share_threshold``. The verdict goes
to ``ops.drift_results`` as JSON and an HTML report to ``$NEWSREC_HOME/reports/drift/<day>/``.
Evidently is imported only when a check runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pipelines.core import db
from pipelines.core.config import get_settings, params
from pipelines.core.errors import NewsrecError
from pipelines.gates.quality.gate import json_safe

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)

Kind = Literal["features", "target", "scores"]

# Model features of the user side (the views the ranker reads per user), plus each
# category's dwell share as the model sees it for a candidate of that category.
USER_NUMERIC = (
    "user_impressions_7d", "user_reads_7d", "user_ctr_7d", "user_dwell_7d_s", "user_reads_28d",
    "user_dwell_28d_s", "user_mean_dwell_28d_s", "user_days_since_last_read", "user_active_days_28d",
    "user_tenure_days", "user_is_trial",
)  # fmt: skip
USER_CATEGORICAL = ("user_region",)
CATEGORY_SHARE = "user_cat_dwell_share_28d"


@dataclass
class ColumnDrift:
    column: str
    kind: str  # "num" | "cat"
    method: str
    threshold: float
    score: float | None
    drifted: bool


@dataclass
class DriftResult:
    """Machine-readable drift verdict of one day against its reference days."""

    kind: Kind
    day: date | None
    reference_days: list[date]
    drifted: bool
    drift_share: float
    share_threshold: float
    columns: list[ColumnDrift]
    stats: dict[str, Any] = field(default_factory=dict)
    report_path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    result_id: int | None = None
    run_id: int | None = None

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def scores(self) -> dict[str, float | None]:
        return {c.column: c.score for c in self.columns}

    def verdict(self) -> dict[str, Any]:
        """The JSON stored in ``ops.drift_results.verdict``."""
        return json_safe(
            {
                "kind": self.kind,
                "drifted": self.drifted,
                "drift_share": self.drift_share,
                "share_threshold": self.share_threshold,
                "n_columns": len(self.columns),
                "n_drifted": len(self.drifted_columns),
                "drifted_columns": self.drifted_columns,
                "columns": [asdict(c) for c in self.columns],
                "stats": self.stats,
                "warnings": self.warnings,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.verdict(),
            "day": self.day.isoformat() if self.day else None,
            "reference_days": [d.isoformat() for d in self.reference_days],
            "report_path": str(self.report_path) if self.report_path else None,
            "result_id": self.result_id,
        }

    def render(self) -> str:
        ref = _describe_days(self.reference_days)
        head = (
            f"drift {self.kind} {self.day} vs {ref}: {'DRIFTED' if self.drifted else 'ok'} "
            f"({len(self.drifted_columns)} of {len(self.columns)} columns drifted, share "
            f"{self.drift_share:.2f}, threshold {self.share_threshold:.2f})"
        )
        lines = [head]
        for c in sorted(self.columns, key=lambda c: -(c.score or 0.0)):
            if c.drifted:
                lines.append(f"  DRIFTED  {c.column}: {c.method} {c.score:.3f} >= {c.threshold:g}")
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        if self.report_path:
            lines.append(f"  report: {self.report_path}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Reference windows
# --------------------------------------------------------------------------------------


def default_reference_days(day: date, n: int | None = None) -> list[date]:
    """The ``n`` days before ``day`` (``drift.reference_days`` by default), oldest first."""
    n = int(params("drift")["reference_days"]) if n is None else n
    return [day - timedelta(days=i) for i in range(n, 0, -1)]


def reference_range(first: date, last: date) -> list[date]:
    """Every day in [first, last]."""
    if last < first:
        raise NewsrecError(f"--reference-to {last} is before --reference-from {first}")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _describe_days(days: Sequence[date]) -> str:
    if not days:
        return "no reference"
    days = sorted(days)
    contiguous = (days[-1] - days[0]).days == len(days) - 1
    if len(days) == 1:
        return str(days[0])
    return f"{days[0]}..{days[-1]}" if contiguous else f"{len(days)} days {days[0]}..{days[-1]}"


# --------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------


def feature_frame(day: date) -> pd.DataFrame:
    """One row per user known on ``day``: model-relevant user features and, per category, the
    user's 28-day dwell share (0 when the user has none there, as the model reads it)."""
    import pandas as pd

    from pipelines.features import partitions

    activity = partitions.read_view("user_activity", day, ["user_id", *USER_NUMERIC, *USER_CATEGORICAL])
    categories = partitions.read_view("user_category", day, ["user_id", "category", CATEGORY_SHARE])
    shares = categories.pivot_table(index="user_id", columns="category", values=CATEGORY_SHARE, aggfunc="first")
    shares = shares.reindex(activity["user_id"]).fillna(0.0)
    shares.columns = [f"{CATEGORY_SHARE}__{c}" for c in shares.columns]
    frame = pd.concat([activity.set_index("user_id"), shares.astype("float64")], axis=1)
    for name in USER_NUMERIC:
        frame[name] = frame[name].astype("float64")
    return frame.reset_index(drop=True)


def check_drift(day: date, reference_days: Sequence[date]) -> DriftResult:
    """Feature drift of ``day`` against ``reference_days`` (their feature partitions must exist)."""
    import pandas as pd

    from pipelines.features import partitions
    from pipelines.core.runs import record_run

    p = params("drift")
    with record_run("drift_features", day) as run:
        partitions.require_day(day)
        current = feature_frame(day)
        used, warnings = _available_reference(day, reference_days, lambda d: partitions.read_manifest(d) is not None)
        reference = pd.concat([feature_frame(d) for d in used], ignore_index=True)
        # A category seen on one side only is a share of 0 on the other.
        shares = sorted(c for c in {*current.columns, *reference.columns} if c.startswith(CATEGORY_SHARE))
        current = current.reindex(columns=[*USER_NUMERIC, *USER_CATEGORICAL, *shares]).fillna(
            dict.fromkeys(shares, 0.0)
        )
        reference = reference.reindex(columns=current.columns).fillna(dict.fromkeys(shares, 0.0))
        result = _compare(
            "features",
            day,
            used,
            current,
            reference,
            numerical=[*USER_NUMERIC, *shares],
            categorical=list(USER_CATEGORICAL),
            thresholds={},
            share_threshold=float(p["features"]["share_threshold"]),
            warnings=warnings,
            run_id=run.run_id,
        )
        run.details.update(drifted=result.drifted, drift_share=result.drift_share, result_id=result.result_id)
    return result


# --------------------------------------------------------------------------------------
# Target: the labels of D's impressions
# --------------------------------------------------------------------------------------

_LABEL_STATS_SQL = """
SELECT count(*) FILTER (WHERE event_type = 'impression') AS impressions,
       count(*) FILTER (WHERE event_type = 'read' AND impression_id IS NOT NULL) AS clicks,
       avg(dwell_seconds) FILTER (WHERE event_type = 'read') AS mean_dwell_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY dwell_seconds) FILTER (WHERE event_type = 'read')
           AS median_dwell_s
FROM warehouse.events
WHERE event_ts >= %(start)s AND event_ts < %(end)s
"""
# A seeded sample of D's impressions with their label: clicked (0/1) and the dwell of the click.
# Reads may land a little after midnight, hence the grace on their window.
_LABELS_SQL = """
WITH clicks AS (
    SELECT impression_id, max(dwell_seconds) AS dwell_seconds
    FROM warehouse.events
    WHERE event_type = 'read' AND impression_id IS NOT NULL
      AND event_ts >= %(start)s AND event_ts < %(reads_end)s
    GROUP BY impression_id
)
SELECT (c.impression_id IS NOT NULL)::int AS clicked, c.dwell_seconds AS read_dwell_s
FROM warehouse.events AS i TABLESAMPLE BERNOULLI (%(percent)s) REPEATABLE (%(seed)s)
LEFT JOIN clicks AS c ON c.impression_id = i.event_id
WHERE i.event_type = 'impression' AND i.event_ts >= %(start)s AND i.event_ts < %(end)s
"""
TARGET_COLUMNS = ("clicked", "read_dwell_s")


def _bounds(day: date) -> dict[str, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return {"start": start, "end": start + timedelta(days=1), "reads_end": start + timedelta(days=1, hours=1)}


def label_stats(conn: Any, day: date) -> dict[str, Any]:
    """Impressions, clicks, CTR and dwell of one day (exact, not sampled)."""
    with conn.cursor() as cur:
        cur.execute(_LABEL_STATS_SQL, _bounds(day))
        impressions, clicks, mean_dwell, median_dwell = cur.fetchone()
    return {
        "impressions": int(impressions),
        "clicks": int(clicks),
        "ctr": clicks / impressions if impressions else None,
        "mean_dwell_s": float(mean_dwell) if mean_dwell is not None else None,
        "median_dwell_s": float(median_dwell) if median_dwell is not None else None,
    }


def _labels(conn: Any, day: date, impressions: int, rows: int, seed: int) -> pd.DataFrame:
    import pyarrow as pa

    percent = 100.0 if impressions <= rows else 100.0 * rows / impressions
    return db.read_frame(
        conn,
        _LABELS_SQL,
        {**_bounds(day), "percent": percent, "seed": seed},
        {"clicked": pa.int64(), "read_dwell_s": pa.float64()},
    )


def check_target_drift(day: date, reference_days: Sequence[date]) -> DriftResult:
    """Label drift: click-through and dwell of D's impressions against the reference days."""
    import pandas as pd

    from pipelines.core.runs import record_run

    p = params("drift")
    rows, seed = int(p["sample_rows"]), int(p["seed"])
    with record_run("drift_target", day) as run:
        conn = db.connect()
        try:
            current_stats = label_stats(conn, day)
            if not current_stats["impressions"]:
                raise NewsrecError(f"no impressions on {day}: nothing to compare")
            stats = {d: label_stats(conn, d) for d in reference_days}
            used, warnings = _available_reference(day, reference_days, lambda d: stats[d]["impressions"] > 0)
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
        thresholds = {k: float(v) for k, v in p["target"]["column_thresholds"].items()}
        result = _compare(
            "target",
            day,
            used,
            current,
            reference,
            numerical=list(TARGET_COLUMNS),
            categorical=[],
            thresholds=thresholds,
            share_threshold=float(p["target"]["share_threshold"]),
            warnings=warnings,
            run_id=run.run_id,
            extra_stats={"labels": label_summary},
        )
        run.details.update(drifted=result.drifted, drift_share=result.drift_share, result_id=result.result_id)
    return result


# --------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------


def score_drift(current: Sequence[float] | np.ndarray, reference: Sequence[float] | np.ndarray) -> ColumnDrift:
    """Drift of model scores (e.g. today's batch vs the champion's validation scores); pure, no I/O."""
    frames = _score_frames(current, reference)
    columns, _share, _snapshot = _evidently(
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
    return _compare(
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


# --------------------------------------------------------------------------------------
# The comparison itself
# --------------------------------------------------------------------------------------


def _available_reference(day: date, wanted: Sequence[date], has_data: Any) -> tuple[list[date], list[str]]:
    """Reference days that have data; missing ones become warnings, too few an error."""
    wanted = sorted(set(wanted))
    warnings: list[str] = []
    if day in wanted:
        warnings.append(f"the reference includes {day} itself")
    used = [d for d in wanted if has_data(d)]
    missing = [d for d in wanted if d not in used]
    if missing:
        warnings.append(f"no data for reference day(s) {', '.join(map(str, missing))}; compared without them")
    minimum = max(1, int(params("drift")["min_reference_days"]))
    if len(used) < minimum:
        raise NewsrecError(
            f"drift of {day} needs at least {minimum} reference day(s) with data; "
            f"found {len(used)} of {len(wanted)} ({_describe_days(wanted)})"
        )
    return used, warnings


def _sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed).reset_index(drop=True)


def _compare(
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
    current, reference = _sample(current, rows, seed), _sample(reference, rows, seed)
    stats["sampled"] = {"current": len(current), "reference": len(reference)}
    # Evidently cannot compare a column that is empty on either side; report and skip it.
    empty = [c for c in [*numerical, *categorical] if current[c].isna().all() or reference[c].isna().all()]
    for column in empty:
        warnings.append(f"column {column} has no values on one side; not compared")
    numerical = [c for c in numerical if c not in empty]
    categorical = [c for c in categorical if c not in empty]
    if not numerical and not categorical:
        raise NewsrecError(f"drift {kind} of {day}: no column has values on both sides")
    columns, share, snapshot = _evidently(current, reference, numerical, categorical, thresholds, share_threshold)
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
    result.result_id = _store(result)
    if result.drifted:
        log.info("%s", result.render())
    return result


def _evidently(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    thresholds: dict[str, float],
    share_threshold: float,
) -> tuple[list[ColumnDrift], float, Any]:
    """Per-column drift (score, method, threshold, Evidently's own drifted verdict) and the share."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    p = params("drift")
    columns = [*numerical, *categorical]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    preset = DataDriftPreset(
        columns=columns,
        num_method=p["num_method"],
        cat_method=p["cat_method"],
        threshold=float(p["column_threshold"]),
        per_column_threshold={k: v for k, v in thresholds.items() if k in columns} or None,
        drift_share=share_threshold,
    )
    snapshot = Report([preset], include_tests=True).run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    body = snapshot.dict()
    failed = {
        t["metric_config"]["params"].get("column")
        for t in body["tests"]
        if t["metric_config"]["params"].get("type", "").endswith("ValueDrift") and t["status"] == "FAIL"
    }
    out: list[ColumnDrift] = []
    share = 0.0
    for metric in body["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config["type"].endswith("ValueDrift"):
            name = config["column"]
            score = metric["value"]
            out.append(
                ColumnDrift(
                    column=name,
                    kind="cat" if name in categorical else "num",
                    method=config["method"],
                    threshold=float(config["threshold"]),
                    score=float(score) if score is not None else None,
                    drifted=name in failed,
                )
            )
    return out, share, snapshot


def _store(result: DriftResult) -> int:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO ops.drift_results (run_id, logical_date, kind, reference_days, drifted, drift_share, "
            "share_threshold, n_columns, n_drifted, verdict, report_path) "
            "VALUES (%s, %s, %s, %s::date[], %s, %s, %s, %s, %s, %s, %s) RETURNING result_id",
            (
                result.run_id,
                result.day,
                result.kind,
                list(result.reference_days),
                result.drifted,
                result.drift_share,
                result.share_threshold,
                len(result.columns),
                len(result.drifted_columns),
                json.dumps(result.verdict()),
                str(result.report_path) if result.report_path else None,
            ),
        )
        return cur.fetchone()[0]
