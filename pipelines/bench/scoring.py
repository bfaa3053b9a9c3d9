"""Scoring throughput: the whole batch scoring of a day (candidates, features, matrix, predict,
top 10 with the category cap) per candidate row, next to raw predict with the same model in
the same run (LightGBM's own and compiled), plus a digest of the lists, so that two scoring
implementations run on the same world can be compared for speed and for identical lists."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path


@dataclass
class ScoringBenchmark:
    day: str
    model_version: str
    users: int
    candidates: int
    score_seconds: float
    predict_seconds_in_scoring: float
    raw_predict_rows_per_s: float
    compiled_predict_rows_per_s: float
    reference_rows: int
    publish_seconds: float
    rows_published: int
    lists_digest: str | None
    peak_rss_mb: float
    code: str = ""

    @property
    def us_per_row(self) -> float:
        return self.score_seconds / self.candidates * 1e6

    @property
    def compiled_us_per_row(self) -> float:
        return 1e6 / self.compiled_predict_rows_per_s

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "scoring_rows_per_s": round(self.candidates / self.score_seconds),
            "scoring_us_per_candidate_row": round(self.us_per_row, 4),
            "compiled_predict_us_per_row": round(self.compiled_us_per_row, 4),
            "scoring_over_compiled_predict": round(self.us_per_row / self.compiled_us_per_row, 2),
            "scoring_over_raw_predict": round(self.raw_predict_rows_per_s * self.us_per_row / 1e6, 2),
        }

    def render(self) -> str:
        d = self.to_dict()
        return "\n".join(
            [
                f"# Scoring benchmark, {self.day}",
                "",
                f"{self.users:,} users, {self.candidates:,} candidate rows, model v{self.model_version}"
                f"{f', code {self.code}' if self.code else ''}.",
                "",
                "| step | wall s | rows/s | us per row |",
                "|---|---:|---:|---:|",
                f"| batch scoring (candidates, features, matrix, predict, top 10 with the cap) | "
                f"{self.score_seconds:.1f} | {d['scoring_rows_per_s']:,} | {self.us_per_row:.3f} |",
                f"| of which predict | {self.predict_seconds_in_scoring:.1f} | | |",
                f"| raw LightGBM predict, same model, {self.reference_rows:,} rows (same run) | | "
                f"{self.raw_predict_rows_per_s:,.0f} | {1e6 / self.raw_predict_rows_per_s:.3f} |",
                f"| compiled (lleaves) predict, same model, {self.reference_rows:,} rows (same run) | | "
                f"{self.compiled_predict_rows_per_s:,.0f} | {self.compiled_us_per_row:.3f} |",
                f"| publish ({self.rows_published:,} rows) | {self.publish_seconds:.1f} | | |",
                "",
                f"Scoring per candidate row / compiled predict per row: **{d['scoring_over_compiled_predict']}x** "
                f"(LightGBM predict: {d['scoring_over_raw_predict']}x).",
                f"Lists digest: `{self.lists_digest}`. Peak RSS {self.peak_rss_mb:,.0f} MB.",
            ]
        )


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
    from pipelines.bench.nightly_references import predict_reference
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
    bench = ScoringBenchmark(
        day.isoformat(), result.model_version, result.users, result.candidates, score_s, result.predict_seconds,
        ref["lightgbm_rows_per_s"], ref["lleaves_rows_per_s"], ref["rows"], publish_s, len(result.recommendations),
        list_digest(result.recommendations), _peak_rss_mb(), _code(),
    )  # fmt: skip
    results_dir.mkdir(parents=True, exist_ok=True)
    payload = {**bench.to_dict(), "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    (results_dir / f"{name}.json").write_text(json.dumps(payload, indent=2))
    (results_dir / f"{name}.md").write_text(bench.render() + "\n")
    return bench
