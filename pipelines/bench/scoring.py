"""Scoring throughput: the batch scoring of a day (candidates, features, matrix, predict, top 10
with the category cap) per candidate row, next to compiled predict with the same model in the
same run, plus a digest of the lists, so that two scoring implementations run on the same
world can be compared for speed and for identical lists.

Two costs per candidate row: the whole ``score()`` (loading the registry's model and the
day's inputs included) and its kernel (the partitions' candidates-to-lists loop). Each in wall
and in CPU time: on a shared machine the CPU ratio is the steadier one."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any


@dataclass
class ScoringBenchmark:
    day: str
    model_version: str
    trees: int
    users: int
    candidates: int
    score_seconds: float
    kernel_seconds: float | None
    kernel_cpu_seconds: float | None
    predict_seconds_in_scoring: float
    reference_rows: int
    lightgbm_us_per_row: float
    compiled_us_per_row: float
    compiled_cpu_us_per_row: float
    publish_seconds: float
    rows_published: int
    lists_digest: str | None
    peak_rss_mb: float
    code: str = ""

    def per_row(self, seconds: float | None) -> float | None:
        return None if seconds is None else seconds / self.candidates * 1e6

    def to_dict(self) -> dict:
        kernel, kernel_cpu = self.per_row(self.kernel_seconds), self.per_row(self.kernel_cpu_seconds)
        whole = self.per_row(self.score_seconds)
        return {
            **asdict(self),
            "score_us_per_candidate_row": round(whole, 4),
            "kernel_us_per_candidate_row": None if kernel is None else round(kernel, 4),
            "kernel_cpu_us_per_candidate_row": None if kernel_cpu is None else round(kernel_cpu, 4),
            "score_over_compiled_predict": round(whole / self.compiled_us_per_row, 2),
            "kernel_over_compiled_predict": None if kernel is None else round(kernel / self.compiled_us_per_row, 2),
            "kernel_cpu_over_compiled_predict_cpu": None
            if kernel_cpu is None
            else round(kernel_cpu / self.compiled_cpu_us_per_row, 2),
        }

    def render(self) -> str:
        d = self.to_dict()

        def us(value: float | None) -> str:
            return "" if value is None else f"{value:.3f}"

        def x(value: float | None) -> str:
            return "" if value is None else f"{value}x"

        return "\n".join(
            [
                f"# Scoring benchmark, {self.day}",
                "",
                f"{self.users:,} users, {self.candidates:,} candidate rows, model v{self.model_version} "
                f"({self.trees} trees){f', code {self.code}' if self.code else ''}.",
                "",
                "| step | wall s | us per candidate row (wall) | us per row (CPU) | / compiled predict |",
                "|---|---:|---:|---:|---:|",
                f"| score() whole (model load, day inputs, candidates .. top 10) | {self.score_seconds:.1f} | "
                f"{us(self.per_row(self.score_seconds))} | | {x(d['score_over_compiled_predict'])} |",
                f"| kernel: candidates, features, matrix, predict, top 10 with the cap | "
                f"{us(self.kernel_seconds) if self.kernel_seconds is not None else ''} | "
                f"{us(self.per_row(self.kernel_seconds))} | {us(self.per_row(self.kernel_cpu_seconds))} | "
                f"{x(d['kernel_over_compiled_predict'])} wall, {x(d['kernel_cpu_over_compiled_predict_cpu'])} CPU |",
                f"| of which predict | {self.predict_seconds_in_scoring:.1f} | | | |",
                f"| compiled (lleaves) predict, same model, {self.reference_rows:,} rows, same run | | "
                f"{self.compiled_us_per_row:.3f} | {self.compiled_cpu_us_per_row:.3f} | 1x |",
                f"| LightGBM predict, same model, same rows | | {self.lightgbm_us_per_row:.3f} | | |",
                f"| publish ({self.rows_published:,} rows) | "
                f"{f'{self.publish_seconds:.1f}' if self.publish_seconds else 'not run'} | | | |",
                "",
                f"Lists digest: `{self.lists_digest}`. Peak RSS {self.peak_rss_mb:,.0f} MB.",
            ]
        )


def predict_reference(rows: int) -> dict[str, Any]:
    """Compiled and LightGBM predict of the champion on a matrix of its width (wall and CPU)."""
    import numpy as np

    from pipelines.serving import predictor, scoring

    model = scoring.load_for_scoring()
    rng = np.random.default_rng(0)
    X = rng.random((rows, len(model.spec.feature_names))) * 100
    X[rng.random(X.shape) < 0.05] = np.nan
    t0 = time.perf_counter()
    model.booster.predict(X.astype(np.float32), num_threads=predictor.threads())
    lgb_s = time.perf_counter() - t0
    compiled = predictor.Predictor(model, "lleaves")
    compiled(X[:1000])
    t0, c0 = time.perf_counter(), time.process_time()
    compiled(X)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"rows": rows, "trees": model.booster.num_trees(), "lightgbm_s": lgb_s, "wall_s": wall, "cpu_s": cpu}


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _code() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return out.stdout.strip()


def run(day: date, results_dir: Path, publish: bool = True, name: str = "scoring") -> ScoringBenchmark:
    """Score ``day`` with the champion, then the predict references in the same process; writes
    ``<name>.json`` and ``<name>.md``."""
    from pipelines.core.config import params
    from pipelines.model import registry
    from pipelines.serving.batch import score
    from pipelines.serving.list_digest import list_digest

    t0 = time.perf_counter()
    result = score(day)
    score_s = time.perf_counter() - t0
    ref = predict_reference(min(2_000_000, max(100_000, result.candidates)))
    publish_s = 0.0
    if publish:
        from pipelines.serving.publish import publish_batch

        folder = registry.export_for_serving(result.model_version)
        t1 = time.perf_counter()
        keep = int(params("serving").get("publish", {}).get("keep_batches", 3))
        publish_batch(day, result.model_version, result.recommendations, result.fallback, keep, model_key=folder.name)
        publish_s = time.perf_counter() - t1
    per = 1e6 / ref["rows"]
    bench = ScoringBenchmark(
        day.isoformat(), result.model_version, ref["trees"], result.users, result.candidates, score_s,
        getattr(result, "kernel_seconds", None), getattr(result, "kernel_cpu_seconds", None), result.predict_seconds,
        ref["rows"], ref["lightgbm_s"] * per, ref["wall_s"] * per, ref["cpu_s"] * per, publish_s,
        len(result.recommendations), list_digest(result.recommendations), _peak_rss_mb(), _code(),
    )  # fmt: skip
    results_dir.mkdir(parents=True, exist_ok=True)
    payload = {**bench.to_dict(), "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    (results_dir / f"{name}.json").write_text(json.dumps(payload, indent=2))
    (results_dir / f"{name}.md").write_text(bench.render() + "\n")
    return bench
