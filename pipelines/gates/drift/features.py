"""Feature drift: the model-relevant user features of day D against the reference days'
feature partitions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

from pipelines.core import runs
from pipelines.core.config import params
from pipelines.features import partitions
from pipelines.gates.drift import compare, windows
from pipelines.gates.drift.result import DriftResult

if TYPE_CHECKING:
    import pandas as pd

# Model features of the user side (the views the ranker reads per user), plus each
# category's dwell share as the model sees it for a candidate of that category.
USER_NUMERIC = (
    "user_impressions_7d", "user_reads_7d", "user_ctr_7d", "user_dwell_7d_s", "user_reads_28d",
    "user_dwell_28d_s", "user_mean_dwell_28d_s", "user_days_since_last_read", "user_active_days_28d",
    "user_tenure_days", "user_is_trial",
)  # fmt: skip
USER_CATEGORICAL = ("user_region",)
CATEGORY_SHARE = "user_cat_dwell_share_28d"


def feature_frame(day: date) -> pd.DataFrame:
    """One row per user known on ``day``: model-relevant user features and, per category, the
    user's 28-day dwell share (0 when the user has none there, as the model reads it)."""
    import pandas as pd

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

    p = params("drift")
    with runs.record_run("drift_features", day) as run:
        partitions.require_day(day)
        current = feature_frame(day)
        used, warnings = windows.available_reference(
            day, reference_days, lambda d: partitions.read_manifest(d) is not None
        )
        reference = pd.concat([feature_frame(d) for d in used], ignore_index=True)
        # A category seen on one side only is a share of 0 on the other.
        shares = sorted(c for c in {*current.columns, *reference.columns} if c.startswith(CATEGORY_SHARE))
        current = current.reindex(columns=[*USER_NUMERIC, *USER_CATEGORICAL, *shares]).fillna(
            dict.fromkeys(shares, 0.0)
        )
        reference = reference.reindex(columns=current.columns).fillna(dict.fromkeys(shares, 0.0))
        result = compare.compare_frames(
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
