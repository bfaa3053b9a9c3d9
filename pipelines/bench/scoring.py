"""Scoring throughput: the whole batch scoring of a day vs raw LightGBM predict on a matrix of
the same size with the same model (what the machine can do for the model part alone)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np


@dataclass
class ScoringBenchmark:
    day: str
    model_version: str
    users: int
    candidates: int
    score_seconds: float
    predict_seconds_in_scoring: float
    raw_predict_seconds: float
    publish_seconds: float
    rows_published: int
    peak_rss_mb: float

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "scoring_rows_per_s": round(self.candidates / self.score_seconds),
            "raw_predict_rows_per_s": round(self.candidates / self.raw_predict_seconds),
            "scoring_over_raw_predict": round(self.score_seconds / self.raw_predict_seconds, 2),
        }

    def render(self) -> str:
        d = self.to_dict()
        return "\n".join(
            [
                f"# Scoring benchmark, {self.day}",
                "",
                f"{self.users:,} users, {self.candidates:,} candidate rows, model v{self.model_version}.",
                "",
                "| step | wall s | rows/s |",
                "|---|---:|---:|",
                f"| batch scoring (candidates, features, matrix, predict, top 10) | {self.score_seconds:.1f} "
                f"| {d['scoring_rows_per_s']:,} |",
                f"| of which LightGBM predict | {self.predict_seconds_in_scoring:.1f} | |",
                f"| raw LightGBM predict, same model, same matrix size | {self.raw_predict_seconds:.1f} "
                f"| {d['raw_predict_rows_per_s']:,} |",
                f"| publish ({self.rows_published:,} rows) | {self.publish_seconds:.1f} | |",
                "",
                f"Scoring / raw predict wall time: {d['scoring_over_raw_predict']}x.",
                f"Peak RSS {self.peak_rss_mb:,.0f} MB.",
            ]
        )


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(day: date, results_dir: Path, publish: bool = True) -> ScoringBenchmark:
    from pipelines.core.config import params
    from pipelines.model import registry
    from pipelines.serving.scoring import load_for_scoring, score

    t0 = time.perf_counter()
    result = score(day)
    score_s = time.perf_counter() - t0
    model = load_for_scoring(result.model_version)
    n_features = len(model.spec.feature_names)
    # Raw predict on a matrix of the same size, in the same chunks as scoring uses.
    rng = np.random.default_rng(0)
    chunk = 2_000_000
    raw_s = 0.0
    done = 0
    while done < result.candidates:
        rows = min(chunk, result.candidates - done)
        X = rng.random((rows, n_features), dtype=np.float32)
        t1 = time.perf_counter()
        model.predict(X)
        raw_s += time.perf_counter() - t1
        done += rows
    publish_s = 0.0
    if publish:
        from pipelines.serving.publish import publish_batch

        folder = registry.export_for_serving(result.model_version)
        t1 = time.perf_counter()
        keep = int(params("serving").get("publish", {}).get("keep_batches", 3))
        publish_batch(day, result.model_version, result.recommendations, result.fallback, keep, model_key=folder.name)
        publish_s = time.perf_counter() - t1
    bench = ScoringBenchmark(
        day.isoformat(), result.model_version, result.users, result.candidates, score_s, result.predict_seconds,
        raw_s, publish_s, len(result.recommendations), _peak_rss_mb(),
    )  # fmt: skip
    results_dir.mkdir(parents=True, exist_ok=True)
    payload = {**bench.to_dict(), "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    (results_dir / "scoring.json").write_text(json.dumps(payload, indent=2))
    (results_dir / "scoring.md").write_text(bench.render() + "\n")
    return bench
