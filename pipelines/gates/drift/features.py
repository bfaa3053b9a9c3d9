"""Feature drift: the model-relevant user features of day D against the reference days'
feature partitions.

Only the columns the model has under the warehouse's data profile are compared
(:func:`columns`): without dwell no dwell columns (nor the per-category dwell shares), without
regions no region column; the full profile compares them all."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

from pipelines.core import runs
from pipelines.core.config import params
from pipelines.features import partitions
from pipelines.features.matrix import current_feature_names
from pipelines.gates.drift import compare, windows
from pipelines.gates.drift.result import DriftResult
from pipelines.warehouse import profile as data_profile
from pipelines.warehouse.profile import DataProfile

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


def columns(profile: DataProfile = data_profile.FULL) -> tuple[list[str], list[str], bool]:
    """The numeric and categorical user columns compared under ``profile``, and whether the
    per-category dwell shares are: those among the model's features under it."""
    model = set(current_feature_names(profile))
    return [c for c in USER_NUMERIC if c in model], [c for c in USER_CATEGORICAL if c in model], CATEGORY_SHARE in model


def feature_frame(day: date, profile: DataProfile = data_profile.FULL) -> pd.DataFrame:
    """One row per user known on ``day``: model-relevant user features and, per category, the
    user's 28-day dwell share (0 when the user has none there, as the model reads it); only
    the columns of :func:`columns` under ``profile``."""
    import pandas as pd

    numeric, categorical, with_shares = columns(profile)
    activity = partitions.read_view("user_activity", day, ["user_id", *numeric, *categorical])
    if not with_shares:
        for name in numeric:
            activity[name] = activity[name].astype("float64")
        return activity.drop(columns="user_id").reset_index(drop=True)
    categories = partitions.read_view("user_category", day, ["user_id", "category", CATEGORY_SHARE])
    shares = categories.pivot_table(index="user_id", columns="category", values=CATEGORY_SHARE, aggfunc="first")
    shares = shares.reindex(activity["user_id"]).fillna(0.0)
    shares.columns = [f"{CATEGORY_SHARE}__{c}" for c in shares.columns]
    frame = pd.concat([activity.set_index("user_id"), shares.astype("float64")], axis=1)
    for name in numeric:
        frame[name] = frame[name].astype("float64")
    return frame.reset_index(drop=True)


def check_drift(day: date, reference_days: Sequence[date], profile: DataProfile | None = None) -> DriftResult:
    """Feature drift of ``day`` against ``reference_days`` (their feature partitions must exist),
    on the columns of ``profile`` (default: the warehouse's stored profile)."""
    import pandas as pd

    p = params("drift")
    profile = profile or data_profile.current()
    numeric, categorical, _ = columns(profile)
    with runs.record_run("drift_features", day) as run:
        partitions.require_day(day)
        current = feature_frame(day, profile)
        used, warnings = windows.available_reference(
            day, reference_days, lambda d: partitions.read_manifest(d) is not None
        )
        reference = pd.concat([feature_frame(d, profile) for d in used], ignore_index=True)
        # A category seen on one side only is a share of 0 on the other.
        shares = sorted(c for c in {*current.columns, *reference.columns} if c.startswith(CATEGORY_SHARE))
        current = current.reindex(columns=[*numeric, *categorical, *shares]).fillna(dict.fromkeys(shares, 0.0))
        reference = reference.reindex(columns=current.columns).fillna(dict.fromkeys(shares, 0.0))
        result = compare.compare_frames(
            "features",
            day,
            used,
            current,
            reference,
            numerical=[*numeric, *shares],
            categorical=categorical,
            thresholds={},
            share_threshold=float(p["features"]["share_threshold"]),
            warnings=warnings,
            run_id=run.run_id,
            extra_stats={"data_profile": profile.summary()},
        )
        run.details.update(drifted=result.drifted, drift_share=result.drift_share, result_id=result.result_id)
    return result
