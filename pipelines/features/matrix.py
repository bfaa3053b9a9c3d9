"""The one code path from feature rows to the model's input matrix.

Training (rows from Feast's point-in-time join) and scoring (rows read in bulk from the
latest offline partitions) both call :func:`to_matrix`, so a model sees the same columns,
order, dtypes and encodings in both. The :class:`MatrixSpec` is the model's signature: it is
stored with the model and checked before scoring.

Which features the matrix holds depends on the warehouse's data profile, in one place
(:func:`current_feature_names`): without dwell there are no dwell features (they would be
zeros that say nothing), without regions no region feature. The full profile (the
simulator's) gives every feature, as before profiles existed. The signature records the
profile it was trained under, and a model whose features are not those of the current
profile is refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core.errors import NewsrecError
from pipelines.features.catalog import FEATURE_SERVICE, FEATURES, TIMESTAMP
from pipelines.warehouse.profile import FULL, DataProfile

# Numeric features taken as they are (NaN stays NaN: LightGBM treats it as missing).
PASSTHROUGH: tuple[str, ...] = (
    "user_impressions_7d", "user_reads_7d", "user_ctr_7d", "user_dwell_7d_s", "user_reads_28d",
    "user_dwell_28d_s", "user_mean_dwell_28d_s", "user_days_since_last_read", "user_active_days_28d",
    "user_tenure_days", "user_is_trial", "article_publication_trust", "article_publication_flagged",
    "article_impressions_24h", "article_reads_24h", "article_ctr_24h", "article_mean_dwell_24h_s",
)  # fmt: skip
# User x category counts: a missing pair means "never saw this category", i.e. zero.
ZERO_IF_MISSING: tuple[str, ...] = (
    "user_cat_impressions_28d", "user_cat_reads_28d", "user_cat_dwell_28d_s",
    "user_cat_dwell_share_28d", "user_cat_ctr_28d",
)  # fmt: skip
# Computed from the row itself at request time.
DERIVED: tuple[str, ...] = ("article_age_h", "declared_interest_match")
# Categorical features, encoded with vocabularies fixed at training time.
CATEGORICAL: tuple[str, ...] = ("user_region", "article_category")

SOURCE_COLUMNS = tuple(f.name for f in FEATURES)
ALL_FEATURES: tuple[str, ...] = PASSTHROUGH + ZERO_IF_MISSING + DERIVED + CATEGORICAL
# The data-profile part a feature's values come from: without it the feature is left out.
PROFILE_NEEDS: dict[str, str] = {
    **{name: "dwell" for name in ALL_FEATURES if "dwell" in name},
    "user_region": "regions",
}


@dataclass(frozen=True)
class MatrixSpec:
    """Feature names in order, dtypes and categorical vocabularies: the model's signature."""

    feature_names: tuple[str, ...]
    categorical: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dtype: str = "float32"
    feature_service: str = FEATURE_SERVICE
    # the data profile trained under: source and parts (None: a model from before profiles)
    profile: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["feature_names"] = list(self.feature_names)
        data["categorical"] = {k: list(v) for k, v in self.categorical.items()}
        if self.profile is None:
            del data["profile"]  # a signature from before profiles reads back as it was written
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MatrixSpec:
        return cls(
            feature_names=tuple(data["feature_names"]),
            categorical={k: tuple(v) for k, v in data.get("categorical", {}).items()},
            dtype=data.get("dtype", "float32"),
            feature_service=data.get("feature_service", FEATURE_SERVICE),
            profile=data.get("profile"),
        )

    @property
    def profile_summary(self) -> str:
        """The profile trained under, in one line (the full one for models from before profiles)."""
        if self.profile is None:
            return "none recorded (the full profile)"
        return DataProfile.from_parts(self.profile).summary()

    @property
    def categorical_indices(self) -> list[int]:
        return [self.feature_names.index(c) for c in self.categorical]


def fit_spec(rows: pd.DataFrame, profile: DataProfile = FULL) -> MatrixSpec:
    """The spec for a training set under ``profile``: its feature order, vocabularies seen in ``rows``."""
    names = current_feature_names(profile)
    vocab = {name: tuple(sorted(str(v) for v in rows[name].dropna().unique())) for name in CATEGORICAL if name in names}
    return MatrixSpec(feature_names=names, categorical=vocab, profile=profile.parts())


def current_feature_names(profile: DataProfile = FULL) -> tuple[str, ...]:
    """The model's features, in order, under the data profile (every feature under the full one):
    the one list training and scoring build the matrix from."""
    return tuple(name for name in ALL_FEATURES if name not in PROFILE_NEEDS or profile.has(PROFILE_NEEDS[name]))


def trained_profile(spec: MatrixSpec) -> DataProfile:
    """The profile a model was trained under (the full one for models from before profiles)."""
    return FULL if spec.profile is None else DataProfile.from_parts(spec.profile)


def check_signature(spec: MatrixSpec, profile: DataProfile = FULL) -> None:
    """Refuse a model whose stored signature does not match today's feature code under the
    warehouse's data profile (scoring passes the stored profile)."""
    current = current_feature_names(profile)
    if tuple(spec.feature_names) != current:
        missing = [f for f in spec.feature_names if f not in current]
        left_out = [f for f in missing if f in ALL_FEATURES]
        gone = [f for f in missing if f not in ALL_FEATURES]
        extra = [f for f in current if f not in spec.feature_names]
        detail = []
        if gone:
            detail.append(f"model needs features that no longer exist: {', '.join(gone)}")
        if left_out:
            detail.append(f"model needs features the data profile leaves out: {', '.join(left_out)}")
        if extra:
            detail.append(f"features the model was not trained with: {', '.join(extra)}")
        if not detail:
            detail.append("same features in a different order")
        detail.append(
            f"trained under data profile {spec.profile_summary}; the warehouse's profile is {profile.summary()}"
        )
        raise NewsrecError("model signature does not match the current features (" + "; ".join(detail) + ")")
    if spec.feature_service != FEATURE_SERVICE:
        raise NewsrecError(
            f"model was trained on feature service {spec.feature_service!r}, scoring uses {FEATURE_SERVICE!r}"
        )


def to_matrix(rows: pd.DataFrame, spec: MatrixSpec) -> pd.DataFrame:
    """Model input for ``rows`` (feature columns + ``event_timestamp`` = request time)."""
    block = to_array(rows, spec)
    return pd.DataFrame(block, columns=list(spec.feature_names), index=rows.index, copy=False)


def to_array(rows: pd.DataFrame, spec: MatrixSpec, dtype: Any = None) -> np.ndarray:
    """:func:`to_matrix` as a bare C-ordered array; ``dtype`` widens the spec's dtype for
    engines that take float64 (the float32 values convert exactly, as LightGBM's own do).

    Scoring calls this on ~10M rows a chunk, so nothing here may loop in Python per row."""
    missing = [c for c in SOURCE_COLUMNS if c not in rows.columns and c not in ("user_declared_interests",)]
    if missing:
        raise NewsrecError(f"feature rows lack column(s): {', '.join(missing)}")
    wanted = set(spec.feature_names)
    out: dict[str, np.ndarray] = {}
    for name in PASSTHROUGH:
        if name in wanted:
            out[name] = _numeric(rows[name])
    for name in ZERO_IF_MISSING:
        if name in wanted:
            out[name] = np.nan_to_num(_numeric(rows[name]), nan=0.0)
    request = _as_datetime(rows[TIMESTAMP])
    request_s = request.astype("int64").to_numpy() / _ns_per_s(request)
    published = pd.to_numeric(rows["article_published_ts"], errors="coerce").to_numpy(np.float64, na_value=np.nan)
    out["article_age_h"] = ((request_s - published) / 3600.0).astype(np.float32)
    out["declared_interest_match"] = _declared_match(rows)
    for name in CATEGORICAL:
        if name in wanted:
            out[name] = _codes(rows[name], spec.categorical.get(name, ()))
    return _stack([out[name].astype(spec.dtype, copy=False) for name in spec.feature_names], len(rows),
                  np.dtype(dtype or spec.dtype))  # fmt: skip


_BLOCK_ROWS = 16_384  # a block of rows x features stays in cache


def _stack(columns: list[np.ndarray], n: int, dtype: np.dtype) -> np.ndarray:
    """Columns side by side in a C-ordered array, a block of rows at a time: writing one whole
    column at a time strides through memory (4.3 s vs 0.5 s for 4.7M x 26 in a micro-benchmark;
    in a whole scoring run most of that time is first-touch page faults of the new array)."""
    block = np.empty((n, len(columns)), dtype=dtype)
    if not columns:
        return block
    for lo in range(0, n, _BLOCK_ROWS):
        hi = min(n, lo + _BLOCK_ROWS)
        block[lo:hi] = np.stack([c[lo:hi] for c in columns], axis=1)
    return block


def _numeric(column: pd.Series) -> np.ndarray:
    if column.dtype.kind in "fiub":
        return column.to_numpy(dtype=np.float32, na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan)


def _codes(column: pd.Series, vocabulary: tuple[str, ...]) -> np.ndarray:
    """Vocabulary positions of the values (NaN when missing or unseen in training)."""
    codes, uniques = pd.factorize(column)
    known = {v: i for i, v in enumerate(vocabulary)}
    lookup = np.array([known.get(str(u), np.nan) for u in uniques] + [np.nan], dtype=np.float32)
    return lookup[codes]  # code -1 (missing) picks the trailing NaN


def _as_datetime(column: pd.Series) -> pd.Series:
    """The column as datetimes: a datetime64 column as it is (its int64 values are UTC epoch
    ticks either way), anything else through ``pd.to_datetime(utc=True)``. Skipping that call
    matters: on a datetime column of millions of rows pandas still turns a tenth of them into
    Timestamp objects to decide whether to cache."""
    if column.dtype.kind == "M":
        return column
    return pd.to_datetime(column, utc=True)


def _ns_per_s(column: pd.Series) -> float:
    dtype = _as_datetime(column).dtype
    unit = dtype.unit if isinstance(dtype, pd.DatetimeTZDtype) else np.datetime_data(dtype)[0]  # naive: numpy's
    return {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[unit]


def _declared_match(rows: pd.DataFrame) -> np.ndarray:
    """1 when the article's category is among the user's declared interests (a comma list).

    Decided once per distinct (interest list, category) pair: few of those, many rows."""
    interests = rows.get("user_declared_interests")
    if interests is None:
        return np.zeros(len(rows), dtype=np.float32)
    cat_codes, cats = pd.factorize(rows["article_category"])
    list_codes, lists = pd.factorize(interests)
    table = np.zeros((len(lists) + 1, len(cats) + 1), dtype=np.float32)  # last row/column: missing
    columns: dict[str, list[int]] = {}  # a category's name -> its column(s); an empty one never matches
    for j, cat in enumerate(cats):
        if bool(cat):
            columns.setdefault(str(cat), []).append(j)
    for i, declared in enumerate(lists):  # a list's few names, not every category
        for name in set(str(declared).split(",")):
            for j in columns.get(name, ()):
                table[i, j] = 1.0
    return table[list_codes, cat_codes]
