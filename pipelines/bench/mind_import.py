"""MIND import throughput: ``newsrec warehouse import-mind`` on 1 M impression rows, beside COPY.

A synthetic MIND folder (its lines out of time order, 20% of the articles missing from
news.tsv, a constant history per user as in MIND) is imported into the bench's own database
on the same server (``<main>_mind_bench`` by default: the import replaces the days it covers,
so it never runs on the project's warehouse). The reference, in the same run, is COPY of the
same number of rows into an unlogged scratch table (:func:`nightly_references.copy_reference`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from pipelines.bench import nightly_references, soak_world, stamp
from pipelines.warehouse import mind


@dataclass
class MindImportBenchmark:
    impression_rows: int  # user x article rows of behaviors.tsv
    events: int  # rows written to warehouse.events (impressions, clicks, history reads)
    lines: int
    users: int
    articles: int
    unknown_articles: int
    write_seconds: float  # writing the synthetic files (not part of the import)
    import_seconds: float
    phases: dict[str, float]
    copy_rows_per_s: float

    @property
    def impression_rows_per_s(self) -> float:
        return self.impression_rows / self.import_seconds

    @property
    def events_per_s(self) -> float:
        return self.events / self.import_seconds

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "impression_rows_per_s": round(self.impression_rows_per_s),
            "events_per_s": round(self.events_per_s),
            "copy_over_import": round(self.copy_rows_per_s / self.events_per_s, 2),
        }

    def render(self) -> str:
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in self.phases.items())
        return "\n".join(
            [
                "# MIND import benchmark",
                "",
                f"{self.impression_rows:,} impression rows in {self.lines:,} behaviors lines, {self.users:,} users, "
                f"{self.articles:,} articles ({self.unknown_articles:,} missing from news.tsv, kept); "
                f"{self.events:,} warehouse events written.",
                "",
                "| path | wall s | rows/s |",
                "|---|---:|---:|",
                f"| import-mind (impression rows) | {self.import_seconds:.1f} | {self.impression_rows_per_s:,.0f} |",
                f"| import-mind (events written) | {self.import_seconds:.1f} | {self.events_per_s:,.0f} |",
                f"| COPY reference, same rows, unlogged table | {self.events / self.copy_rows_per_s:.1f} | "
                f"{self.copy_rows_per_s:,.0f} |",
                "",
                f"Phases: {phases}. Goal: 1 M impression rows under 60 s.",
            ]
        )


def write_folder(folder: Path, rows: int, seed: int = 0) -> dict[str, int]:
    """A MIND folder with ``rows`` impression rows; returns its shape."""
    rng = np.random.default_rng(seed)
    n_articles = max(100, rows // 30)
    n_users = max(10, rows // 50)
    lengths = rng.integers(10, 41, size=rows // 10 + 1)
    ends = np.cumsum(lengths)
    n_lines = int(np.searchsorted(ends, rows) + 1)
    lengths = lengths[:n_lines].copy()
    lengths[-1] -= int(ends[n_lines - 1] - rows)
    line_user = rng.integers(1, n_users + 1, size=n_lines)
    start = datetime(2019, 11, 9, tzinfo=UTC).timestamp()
    line_ts = start + rng.uniform(0, 6 * 86_400, size=n_lines)  # not sorted: MIND's lines are not
    article = rng.integers(1, n_articles + 1, size=rows)
    clicked = rng.random(rows) < 0.04
    history_len = rng.integers(0, 31, size=n_users + 1)
    history = [" ".join(f"N{a}" for a in rng.integers(1, n_articles + 1, size=k)) for k in history_len]

    folder.mkdir(parents=True, exist_ok=True)
    in_news = rng.random(n_articles + 1) >= 0.2
    with (folder / "news.tsv").open("w", encoding="utf-8") as fh:
        for a in np.flatnonzero(in_news[1:]) + 1:
            fh.write(f"N{a}\tnews\tnewsus\tTitle {a}\tAbstract {a}\thttps://example.org/{a}\t[]\t[]\n")
    tokens = np.char.add(np.char.add("N", article.astype(str)), np.where(clicked, "-1", "-0"))
    bounds = np.r_[0, np.cumsum(lengths)]
    with (folder / "behaviors.tsv").open("w", encoding="utf-8") as fh:
        for i in range(n_lines):
            when = datetime.fromtimestamp(line_ts[i], UTC).strftime(mind.TIME_FORMAT)
            shown = " ".join(tokens[bounds[i] : bounds[i + 1]])
            fh.write(f"{i + 1}\tU{line_user[i]}\t{when}\t{history[line_user[i]]}\t{shown}\n")
    return {"lines": n_lines, "users": n_users, "articles": n_articles}


def run(results_dir: Path, rows: int = 1_000_000, database: str | None = "{main}_mind_bench") -> MindImportBenchmark:
    scratch = Path(tempfile.mkdtemp(prefix="mind-bench-"))
    try:
        t0 = time.perf_counter()
        shape = write_folder(scratch, rows)
        write_s = time.perf_counter() - t0
        with soak_world.own_database(database):
            t0 = time.perf_counter()
            result = mind.import_mind(scratch)
            import_s = time.perf_counter() - t0
            events = result.impressions + result.reads + result.history_reads
            reference = nightly_references.copy_reference(events)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    bench = MindImportBenchmark(
        impression_rows=result.impressions,
        events=events,
        lines=shape["lines"],
        users=result.users,
        articles=result.articles + result.unknown_articles,
        unknown_articles=result.unknown_articles,
        write_seconds=round(write_s, 2),
        import_seconds=round(import_s, 2),
        phases={k: round(v, 2) for k, v in result.seconds.items()},
        copy_rows_per_s=round(reference["copy_in_rows_per_s"]),
    )
    results_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        **bench.to_dict(),
        **stamp.measured(),
    }
    (results_dir / "mind_import.json").write_text(json.dumps(payload, indent=2))
    (results_dir / "mind_import.md").write_text(bench.render() + "\n")
    return bench
