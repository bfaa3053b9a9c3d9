"""The one code path from feature rows to the model's input matrix.

Training (rows from Feast's point-in-time join) and scoring (rows read in bulk from the
latest offline partitions) both call :func:`to_matrix`, so a model sees the same columns,
order, dtypes and encodings in both. The :class:`MatrixSpec` is the model's signature: it is
stored with the model and checked before scoring.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.errors import NewsrecError
from pipelines.features.definitions import FEATURE_SERVICE, FEATURES, TIMESTAMP

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


@dataclass(frozen=True)
class MatrixSpec:
    """Feature names in order, dtypes and categorical vocabularies: the model's signature."""

    feature_names: tuple[str, ...]
    categorical: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dtype: str = "float32"
    feature_service: str = FEATURE_SERVICE

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["feature_names"] = list(self.feature_names)
        data["categorical"] = {k: list(v) for k, v in self.categorical.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MatrixSpec:
        return cls(
            feature_names=tuple(data["feature_names"]),
            categorical={k: tuple(v) for k, v in data.get("categorical", {}).items()},
            dtype=data.get("dtype", "float32"),
            feature_service=data.get("feature_service", FEATURE_SERVICE),
        )

    @property
    def categorical_indices(self) -> list[int]:
        return [self.feature_names.index(c) for c in self.categorical]


def fit_spec(rows: pd.DataFrame) -> MatrixSpec:
    """The spec for a training set: current feature order, vocabularies seen in ``rows``."""
    vocab = {name: tuple(sorted(str(v) for v in rows[name].dropna().unique())) for name in CATEGORICAL}
    return MatrixSpec(feature_names=PASSTHROUGH + ZERO_IF_MISSING + DERIVED + CATEGORICAL, categorical=vocab)


def current_feature_names() -> tuple[str, ...]:
    return PASSTHROUGH + ZERO_IF_MISSING + DERIVED + CATEGORICAL


def check_signature(spec: MatrixSpec) -> None:
    """Refuse a model whose stored signature does not match today's feature code."""
    current = current_feature_names()
    if tuple(spec.feature_names) != current:
        missing = [f for f in spec.feature_names if f not in current]
        extra = [f for f in current if f not in spec.feature_names]
        detail = []
        if missing:
            detail.append(f"model needs features that no longer exist: {', '.join(missing)}")
        if extra:
            detail.append(f"features the model was not trained with: {', '.join(extra)}")
        if not detail:
            detail.append("same features in a different order")
        raise NewsrecError("model signature does not match the current features (" + "; ".join(detail) + ")")
    if spec.feature_service != FEATURE_SERVICE:
        raise NewsrecError(
            f"model was trained on feature service {spec.feature_service!r}, scoring uses {FEATURE_SERVICE!r}"
        )


def to_matrix(rows: pd.DataFrame, spec: MatrixSpec) -> pd.DataFrame:
    """Model input for ``rows`` (feature columns + ``event_timestamp`` = request time)."""
    missing = [c for c in SOURCE_COLUMNS if c not in rows.columns and c not in ("user_declared_interests",)]
    if missing:
        raise NewsrecError(f"feature rows lack column(s): {', '.join(missing)}")
    out: dict[str, np.ndarray] = {}
    for name in PASSTHROUGH:
        out[name] = pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan)
    for name in ZERO_IF_MISSING:
        values = pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan)
        out[name] = np.nan_to_num(values, nan=0.0)
    request_s = pd.to_datetime(rows[TIMESTAMP], utc=True).astype("int64").to_numpy() / _ns_per_s(rows[TIMESTAMP])
    published = pd.to_numeric(rows["article_published_ts"], errors="coerce").to_numpy(np.float64, na_value=np.nan)
    out["article_age_h"] = ((request_s - published) / 3600.0).astype(np.float32)
    out["declared_interest_match"] = _declared_match(rows).astype(np.float32)
    for name in CATEGORICAL:
        vocab = {v: i for i, v in enumerate(spec.categorical.get(name, ()))}
        codes = rows[name].map(vocab)
        out[name] = pd.to_numeric(codes, errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan)
    matrix = pd.DataFrame({name: out[name] for name in spec.feature_names}, index=rows.index)
    return matrix.astype(spec.dtype)


def _ns_per_s(column: pd.Series) -> float:
    unit = pd.to_datetime(column, utc=True).dtype.unit
    return {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[unit]


def _declared_match(rows: pd.DataFrame) -> np.ndarray:
    interests = rows.get("user_declared_interests")
    if interests is None:
        return np.zeros(len(rows))
    cats = rows["article_category"].fillna("").astype(str).to_numpy()
    lists = interests.fillna("").astype(str).to_numpy()
    return np.fromiter(
        (bool(c) and c in lst.split(",") for c, lst in zip(cats, lists, strict=True)),
        dtype=bool,
        count=len(rows),
    )
