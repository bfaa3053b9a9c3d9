"""On-demand explanations: TreeSHAP contributions (LightGBM ``pred_contrib``) of the model
that produced the live batch, for one (user, article) pair.

Too slow to precompute for every published row (~600 rows/s), cheap for one. The model comes
from the file written at publish time (no MLflow in the reader); the user's and article's
features from Feast's online store; the user x category features (not materialized: too many
rows) from the offline partition of the batch's day.
"""

from __future__ import annotations

import json
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core.config import get_settings
from pipelines.core.errors import NewsrecError
from pipelines.features import partitions
from pipelines.features.catalog import TIMESTAMP
from pipelines.features.matrix import MatrixSpec, check_signature, to_matrix, trained_profile
from pipelines.features.transforms import request_time


@lru_cache(maxsize=4)
def serving_model(model_key: str) -> tuple[Any, MatrixSpec]:
    """The booster and signature in serving folder ``model_key`` (the batch's ``model_key``:
    ``<version>-<run id>``; batches published before keys existed name the bare version)."""
    import lightgbm as lgb

    folder = get_settings().serving_models_dir / str(model_key)
    if not (folder / "model.txt").exists():
        raise NewsrecError(f"model {model_key} is not exported for serving")
    spec = MatrixSpec.from_dict(json.loads((folder / "spec.json").read_text()))
    check_signature(spec, trained_profile(spec))  # scoring checked it against the warehouse's profile
    return lgb.Booster(model_file=str(folder / "model.txt")), spec


def feature_row(user_id: int, article_id: int, day: date, url: str | None = None) -> pd.DataFrame:
    from pipelines.features.store import online_features  # Feast: on first use only

    row = pd.DataFrame([online_features(user_id, article_id, url)])
    category = row["article_category"].iloc[0]
    uc = pd.read_parquet(
        partitions.view_path("user_category", day),
        filters=[("user_id", "=", int(user_id)), ("category", "=", str(category))],
    )
    for column in uc.columns:
        if column.startswith("user_cat_"):
            row[column] = uc[column].iloc[0] if len(uc) else np.nan
    row["category"] = category
    row[TIMESTAMP] = request_time(day)
    return row


def explain(
    user_id: int, article_id: int, day: date, version: str, url: str | None = None, model_key: str | None = None
) -> dict[str, Any]:
    booster, spec = serving_model(model_key or version)
    X = to_matrix(feature_row(user_id, article_id, day, url), spec)
    contributions = booster.predict(X, pred_contrib=True)[0]
    items = [
        {"feature": name, "value": _plain(X.iloc[0][name]), "contribution": float(c)}
        for name, c in zip(spec.feature_names, contributions[:-1], strict=True)
    ]
    items.sort(key=lambda item: -abs(item["contribution"]))
    return {
        "model_version": version,
        "score": float(contributions.sum()),
        "base_value": float(contributions[-1]),
        "contributions": items,
    }


def _plain(value: Any) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value
