"""The training path as files, for DVC: export -> fit -> evaluate.

``export`` writes the same training snapshot that ``newsrec train`` hashes into the registry
(``dvc_data_hash``), plus the validation and test slices; ``fit`` retrains LightGBM
deterministically with a registered model's parameters (or params.yaml); ``evaluate`` writes
metrics and a per-slice table. So ``dvc repro`` reproduces a registered model's training from
its data hash, without Airflow and without the search.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core.errors import NewsrecError
from pipelines.features.matrix import MatrixSpec
from pipelines.model import dataset, registry
from pipelines.model.dataset import tie_order
from pipelines.model.ranker import AUTO, default_objective, lgb_params
from pipelines.model.ranking_metrics import ranking_metrics

KEYS = ["event_id", "user_id", "article_id", "day", "label"]
SLICE_COLUMNS = ["user_region", "user_tenure_days"]


def resolve_date(value: str) -> date:
    """An ISO date, or 'champion' for the logical date the current champion was trained for."""
    if value != "champion":
        return date.fromisoformat(value)
    info = registry.version_info(registry.CHAMPION)
    if info is None:
        raise NewsrecError("no champion yet: run the nightly job (make demo) or give --date")
    return date.fromisoformat(info["tags"]["logical_date"])


def export(day: date, out: Path) -> dict[str, Any]:
    splits = dataset.load_splits(day)
    out.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for name, split in (("train", splits.train), ("valid", splits.valid), ("test", splits.test)):
        hashes[name] = dataset.snapshot(split, out / f"{name}.parquet")
    slices = splits.test.rows[["event_id", "article_published_ts", *SLICE_COLUMNS]].reset_index(drop=True)
    slices.to_parquet(out / "test_slices.parquet", index=False)
    meta = {
        "logical_date": day.isoformat(),
        "data_window": f"{splits.window[0]}..{splits.window[1]}",
        "train_md5": hashes["train"],
        "spec": splits.spec.to_dict(),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


def _load(path: Path, spec: MatrixSpec) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, pd.DataFrame]:
    frame = pd.read_parquet(path)
    groups = frame.groupby(["day", "user_id"], sort=False).size().to_numpy()
    keys = frame[[*KEYS, "position"]] if "position" in frame else frame[KEYS]
    return frame[list(spec.feature_names)], frame["label"].to_numpy(np.int32), groups, keys


def fit(data: Path, model_out: Path, params_from: str = "champion") -> dict[str, Any]:
    """Retrain deterministically; parameters of a registered version, or params.yaml's.

    A registered version's refit trains as many trees as the version's own early stopping kept:
    the nightly stops on the validation day's unbiased IPS metric, which needs the day's
    propensity and reads from the database, and the snapshot holds neither. A refit from
    params.yaml has no such count: it early-stops on the logged labels' NDCG@10 (said in its
    result, ``stopped_on``)."""
    import lightgbm as lgb

    meta = json.loads((data / "meta.json").read_text())
    spec = MatrixSpec.from_dict(meta["spec"])
    X, y, groups, keys = _load(data / "train.parquet", spec)
    Xv, yv, gv, _ = _load(data / "valid.parquet", spec)
    overrides: dict[str, Any] = {}
    objective = default_objective()
    if objective == AUTO:  # the nightly's choice needs the registry's comparison: a params refit trains plain
        objective = "plain"
    kept = None
    if params_from != "params":
        info = registry.version_info(params_from)
        objective = (info or {}).get("tags", {}).get("objective", "plain")
        overrides = registry.registered_params(params_from, lgb_params(objective=objective))
        kept = registry.registered_rounds(params_from)
    p = lgb_params(overrides, objective)
    rounds = int(p.pop("num_boost_round", 300))
    patience = int(p.pop("early_stopping_rounds", 20))
    categorical = list(spec.categorical)
    # the debiased objective learns from the logged positions, which the snapshot keeps next to the keys
    position = keys["position"].to_numpy(np.int32) if objective == "debiased" and "position" in keys else None
    dtrain = lgb.Dataset(X, y, group=groups, categorical_feature=categorical, free_raw_data=False, position=position)
    if kept is not None:
        booster = lgb.train(p, dtrain, num_boost_round=kept)
        stopped_on = f"version {params_from}'s own early stopping"
    else:
        dvalid = lgb.Dataset(Xv, yv, group=gv, categorical_feature=categorical, reference=dtrain)
        booster = lgb.train(p, dtrain, num_boost_round=rounds, valid_sets=[dvalid],
                            callbacks=[lgb.early_stopping(patience, verbose=False)])  # fmt: skip
        stopped_on = "NDCG@10 of the validation day's logged labels"
    model_out.parent.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(model_out))
    trees = booster.best_iteration or booster.current_iteration()
    return {"trees": trees, "params_from": params_from, "objective": objective, "stopped_on": stopped_on}


def evaluate(data: Path, model_path: Path, metrics_out: Path, slices_out: Path) -> dict[str, Any]:
    import lightgbm as lgb

    meta = json.loads((data / "meta.json").read_text())
    spec = MatrixSpec.from_dict(meta["spec"])
    X, y, _, keys = _load(data / "test.parquet", spec)
    booster = lgb.Booster(model_file=str(model_path))
    scores = booster.predict(X)
    rows = keys.merge(pd.read_parquet(data / "test_slices.parquet"), on="event_id", how="left")
    gids = rows.groupby(["day", "user_id"], sort=False).ngroup().to_numpy()
    tie = tie_order(rows["event_id"].to_numpy())  # as in training's evaluation: not the slate order
    metrics = {"model": ranking_metrics(gids, y, scores, tie)}
    metrics["recency"] = ranking_metrics(gids, y, rows["article_published_ts"].to_numpy(np.float64), tie)
    table = []
    for region in sorted(rows["user_region"].dropna().unique()):
        mask = (rows["user_region"] == region).to_numpy()
        table.append({"slice": f"region={region}", **ranking_metrics(gids[mask], y[mask], scores[mask], tie[mask])})
    metrics_out.parent.mkdir(parents=True, exist_ok=True)
    metrics_out.write_text(json.dumps({"logical_date": meta["logical_date"], **metrics}, indent=2))
    slices_out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(table).to_csv(slices_out, index=False, float_format="%.6f")
    return metrics
