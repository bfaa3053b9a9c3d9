"""The Evidently wrapper: one data-drift report over two frames, read back as per-column
verdicts and the share of drifted columns. Evidently is imported only when a report runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.core.config import params
from pipelines.gates.drift.result import ColumnDrift

if TYPE_CHECKING:
    import pandas as pd


def column_drift(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    thresholds: dict[str, float],
    share_threshold: float,
) -> tuple[list[ColumnDrift], float, Any]:
    """Per-column drift (score, method, threshold, Evidently's own drifted verdict), the share
    of drifted columns and Evidently's snapshot (for its HTML report)."""
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
