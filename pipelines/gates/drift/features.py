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
    import numpy as np
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
    return _frame(day, profile, None)[0]


def _frame(day: date, profile: DataProfile, rows: np.ndarray | None) -> tuple[pd.DataFrame, set[str]]:
    """:func:`feature_frame`, of only the users at positions ``rows`` of the day's
    ``user_activity`` partition (in that order) when given, and the categories the whole
    day's frame has a share column for. Of a sample, the shares are pivoted for the drawn
    users alone (filtered in Arrow: the day's millions of rows never reach pandas), and a
    category none of them has gets no column here (the caller adds it from the set)."""
    import pandas as pd

    numeric, categorical, with_shares = columns(profile)
    activity = partitions.read_view("user_activity", day, ["user_id", *numeric, *categorical])
    if rows is not None:
        activity = activity.iloc[rows].reset_index(drop=True)
    if not with_shares:
        for name in numeric:
            activity[name] = activity[name].astype("float64")
        return activity.drop(columns="user_id").reset_index(drop=True), set()
    categories, known = _category_shares(day, None if rows is None else activity["user_id"])
    shares = categories.pivot_table(index="user_id", columns="category", values=CATEGORY_SHARE, aggfunc="first")
    known = known if known is not None else set(shares.columns)
    shares = shares.reindex(activity["user_id"]).fillna(0.0)
    shares.columns = [f"{CATEGORY_SHARE}__{c}" for c in shares.columns]
    frame = pd.concat([activity.set_index("user_id"), shares.astype("float64")], axis=1)
    for name in numeric:
        frame[name] = frame[name].astype("float64")
    return frame.reset_index(drop=True), known


def _category_shares(day: date, users: pd.Series | None) -> tuple[pd.DataFrame, set[str] | None]:
    """The day's ``user_category`` shares (of ``users`` only, when given) and, for a subset, the
    categories with a share for at least one user of the day (what ``pivot_table`` keeps of
    the whole day)."""
    if users is None:
        return partitions.read_view("user_category", day, ["user_id", "category", CATEGORY_SHARE]), None
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    partitions.require_day(day)
    path = partitions.view_path("user_category", day)
    # Categories read as dictionaries (4x cheaper than decoding millions of strings); the
    # drawn users' rows get the file's own string type back before they reach pandas.
    table = pq.read_table(path, columns=["user_id", "category", CATEGORY_SHARE], read_dictionary=["category"])
    valid = pc.and_(pc.is_valid(table["category"]), pc.is_valid(table[CATEGORY_SHARE]))
    known: set[str] = set()
    for chunk in table["category"].filter(valid).chunks:
        known.update(chunk.dictionary.take(pc.unique(chunk.indices)).to_pylist())
    mine = table.filter(pc.is_in(table["user_id"], value_set=pa.array(users.to_numpy())))
    strings = pc.cast(mine["category"], pq.read_schema(path).field("category").type)
    return mine.set_column(1, "category", strings).to_pandas(), known


def _users(day: date) -> int:
    """Rows of the day's ``user_activity`` partition (from its metadata, no rows read)."""
    import pyarrow.parquet as pq

    partitions.require_day(day)
    return pq.ParquetFile(partitions.view_path("user_activity", day)).metadata.num_rows


def check_drift(day: date, reference_days: Sequence[date], profile: DataProfile | None = None) -> DriftResult:
    """Feature drift of ``day`` against ``reference_days`` (their feature partitions must exist),
    on the columns of ``profile`` (default: the warehouse's stored profile)."""

    p = params("drift")
    profile = profile or data_profile.current()
    numeric, categorical, _ = columns(profile)
    with runs.record_run("drift_features", day) as run:
        partitions.require_day(day)
        used, warnings = windows.available_reference(
            day, reference_days, lambda d: partitions.read_manifest(d) is not None
        )
        current, reference, known, sizes = _sampled_frames(day, used, profile)
        # A category seen on one side only is a share of 0 on the other.
        shares = sorted({f"{CATEGORY_SHARE}__{c}" for c in known})
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
            rows_before_sampling=sizes,
        )
        run.details.update(drifted=result.drifted, drift_share=result.drift_share, result_id=result.result_id)
    return result


def _sampled_frames(
    day: date, used: list[date], profile: DataProfile
) -> tuple[pd.DataFrame, pd.DataFrame, set[str], dict[str, int]]:
    """The current and reference frames as ``compare.sample`` would draw them from the whole
    days' frames (same seed, same rows, same order), building only the drawn users' rows; the
    categories with a share on either side; the sizes of the whole frames."""
    import numpy as np
    import pandas as pd

    p = params("drift")
    rows, seed = int(p["sample_rows"]), int(p["seed"])
    sizes = {"current": _users(day), "reference": sum(_users(d) for d in used)}
    current, known = _frame(day, profile, compare.sample_positions(sizes["current"], rows, seed))
    picked = compare.sample_positions(sizes["reference"], rows, seed)
    parts, order, start = [], [], 0
    for d in used:
        end = start + _users(d)
        mine = None if picked is None else np.flatnonzero((picked >= start) & (picked < end))
        frame, categories = _frame(d, profile, None if mine is None else picked[mine] - start)
        parts.append(frame)
        order.append(mine)
        known |= categories
        start = end
    reference = pd.concat(parts, ignore_index=True)
    if picked is not None:
        # Each day built its drawn rows in day order; put them back in the order drawn.
        reference = reference.iloc[np.argsort(np.concatenate(order), kind="stable")].reset_index(drop=True)
    return current, reference, known, sizes
