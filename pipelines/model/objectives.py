"""Plain vs position-debiased LambdaRank on the same splits: whether debiasing pays is a
measurement (``newsrec train --compare-objectives``), not a belief. Nothing is registered.

Where the data profile says positions are unknown there is nothing to debias with: only the
plain objective is fitted, and the result says why."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from pipelines.core.config import params
from pipelines.model import counterfactual, dataset, evaluate, ranker
from pipelines.warehouse import profile as data_profile


def compare_objectives(
    day: date, train_days: int | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Plain and debiased LambdaRank fitted on the same splits with the same parameters (no
    search, nothing registered), measured on D against the logged labels and, on the
    simulator, against the truth: whether debiasing pays is a measurement, not a belief."""
    profile = data_profile.current()
    splits = dataset.load_splits(day, train_days, profile=profile)
    seed = int(params("training").get("seed", 13))
    objectives = [o for o in ranker.OBJECTIVES if ranker.objective_on(o, False, profile.positions_known)[0] == o]
    skipped = {o: ranker.objective_on(o, False, profile.positions_known)[1] for o in ranker.OBJECTIVES
               if o not in objectives}  # fmt: skip
    metric = counterfactual.validation_metric_of(splits.valid)  # early stopping as the nightly's
    out: dict[str, Any] = {
        "day": day.isoformat(),
        "stopped_on": metric.name if metric is not None else "ndcg@10 of the logged labels",
        "test_rows": len(splits.test.y),
        "train_rows": len(splits.train.y),
        "data_profile": profile.summary(),
        "skipped": skipped,
        "scorers": {},
    }
    for objective in objectives:
        t0 = time.perf_counter()
        booster = ranker.fit(splits.train, splits.valid, splits.spec, overrides, objective, metric=metric)
        seconds = time.perf_counter() - t0
        table = evaluate.evaluate(splits.test, booster.predict(splits.test.X), seed=seed)
        for name, m in table["overall"].items():
            key = objective if name == "model" else name
            if key in out["scorers"]:
                continue
            out["scorers"][key] = {"logged_ndcg@10": m["ndcg@10"], "truth_ndcg@10": table.get("truth", {}).get(name)}
        out["scorers"][objective].update(seconds=seconds, best_iteration=booster.best_iteration)
    scorers = out["scorers"]
    for kind in ("logged_ndcg@10", "truth_ndcg@10"):
        values = {name: m[kind] for name, m in scorers.items() if m[kind] is not None}
        if {"popularity", "oracle"} <= set(values):
            for objective in objectives:
                scorers[objective][kind.replace("ndcg@10", "gap_closed")] = evaluate.gap_closed(values, objective)
    return out


def render_comparison(result: dict[str, Any]) -> str:
    """A Markdown table of :func:`compare_objectives`."""
    lines = [
        f"plain vs debiased on {result['day']} (train {result['train_rows']:,} rows, test {result['test_rows']:,}; "
        f"early stopping on the validation day's {result['stopped_on']})",
        "",
        "| scorer | NDCG@10 (logged labels) | gap closed (logged) | NDCG@10 (truth) | gap closed (truth) |",
        "|---|---:|---:|---:|---:|",
    ]

    def fmt(value: Any, pct: bool = False) -> str:
        if value is None or value != value:
            return ""
        return f"{value:.1%}" if pct else f"{value:.4f}"

    for name, m in result["scorers"].items():
        lines.append(
            f"| {name} | {fmt(m['logged_ndcg@10'])} | {fmt(m.get('logged_gap_closed'), True)} | "
            f"{fmt(m['truth_ndcg@10'])} | {fmt(m.get('truth_gap_closed'), True)} |"
        )
    for name, why in result.get("skipped", {}).items():
        lines += ["", f"{name}: not fitted ({why})"]
    return "\n".join(lines)
