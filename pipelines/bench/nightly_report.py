"""The nightly bench's results: what each stage measured, each stage next to the reference
that bounds it, and the files ``nightly.json`` (:func:`payload`), ``nightly.md``
(:func:`render`) and ``nightly.png`` (:func:`chart`)."""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.bench import nightly_config, ranking_quality


@dataclass
class StageResult:
    name: str
    seconds: float
    peak_rss_mb: float
    pg_peak_mb: float | None = None  # the PostgreSQL server's summed PSS meanwhile (None: not local)
    rows: int | None = None
    rows_label: str = ""
    part_of_cycle: bool = True
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float | None:
        return self.rows / self.seconds if self.rows and self.seconds else None


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def keep_slowest_profile(stages: list[StageResult], folder: Path) -> str | None:
    """The interactive (HTML) profile of the slowest stage; every stage keeps its text one
    (self time per function, then the call tree)."""
    slowest = slug(max(stages, key=lambda s: s.seconds).name)
    kept = None
    for path in folder.glob("*.html"):
        if path.stem == slowest:
            kept = str(path)
        else:
            path.unlink()
    return kept


def ratios(stages: list[StageResult], refs: dict[str, Any]) -> list[dict[str, Any]]:
    """Each stage next to the reference that bounds it on this machine (ratio = stage time /
    reference time, except the reader's: its throughput / the bare endpoint's)."""
    by = {s.name: s for s in stages}
    out = []
    scored = by["score + publish"].details
    candidates = scored.get("candidates") or 0
    if candidates:
        score_s = scored.get("seconds") or 0.0
        raw_lgb = candidates / refs["predict"]["lightgbm_rows_per_s"]
        raw_ll = candidates / refs["predict"]["lleaves_rows_per_s"]
        out.append({"stage": "scoring every active user", "measured": f"{score_s:.1f} s",
                    "reference": f"raw LightGBM predict of as many rows: {raw_lgb:.1f} s",
                    "ratio": score_s / raw_lgb, "target": "<= 1.5x"})  # fmt: skip
        out.append({"stage": "scoring every active user", "measured": f"{score_s:.1f} s",
                    "reference": f"raw compiled (lleaves) predict of as many rows: {raw_ll:.1f} s",
                    "ratio": score_s / raw_ll, "target": "<= 10x"})  # fmt: skip
        kernel_s = scored.get("kernel_seconds") or score_s  # candidates to lists, no model loading
        out.append({"stage": "scoring kernel, per candidate row", "measured": f"{kernel_s / candidates * 1e6:.3f} us",
                    "reference": f"compiled predict: {raw_ll / candidates * 1e6:.3f} us a row "
                    f"(lists digest {scored.get('lists_digest')})",
                    "ratio": kernel_s / raw_ll, "target": "<= 10x"})  # fmt: skip
    if scored.get("publish_seconds") and scored.get("rows"):
        publish_rps = scored["rows"] / scored["publish_seconds"]
        out.append({"stage": "publish", "measured": f"{publish_rps:,.0f} rows/s",
                    "reference": f"COPY in: {refs['copy']['copy_in_rows_per_s']:,.0f} rows/s",
                    "ratio": refs["copy"]["copy_in_rows_per_s"] / publish_rps, "target": None})  # fmt: skip
    materialized = by.get("materialize (Feast online)")
    if materialized and materialized.details.get("values") and materialized.seconds:
        values = materialized.details["values"]
        copy_s = values / refs["copy"]["copy_in_rows_per_s"]
        write_s = materialized.details.get("seconds") or 0.0
        out.append({"stage": "materialize, (entity, feature) values", "measured": f"{materialized.seconds:.1f} s "
                    f"({values / materialized.seconds:,.0f} values/s; write path {write_s:.1f} s)",
                    "reference": f"COPY in of as many rows: {copy_s:.2f} s",
                    "ratio": materialized.seconds / copy_s, "target": None})  # fmt: skip
    etl = refs["etl"]
    out.append({"stage": "feature ETL (whole window)", "measured": f"Beam {etl['beam_seconds']:.1f} s",
                "reference": f"plain pyarrow/pandas {etl['plain_seconds']:.1f} s",
                "ratio": etl["beam_over_plain"], "target": "<= 2x"})  # fmt: skip
    reader = refs["reader"]
    for n, ratio in reader.get("ratios", {}).items():
        case = next(c for c in reader["cases"] if c["target"] == "reader" and str(c["connections"]) == n)
        bare = next(c for c in reader["cases"] if c["target"] == "bare" and str(c["connections"]) == n)
        out.append({"stage": f"reader, {n} connections",
                    "measured": f"{case['requests_per_s']:,.0f} req/s, p99 {case['p99_ms']:.2f} ms, "
                                f"{case['errors']} errors",
                    "reference": f"bare FastAPI {bare['requests_per_s']:,.0f} req/s",
                    "ratio": ratio, "target": ">= 0.70x" + (" and p99 < 5 ms" if n == "4" else "")})  # fmt: skip
    return out


def payload(
    cfg: nightly_config.BenchConfig,
    setup: list[StageResult],
    stages: list[StageResult],
    cycle_wall: float,
    refs: dict[str, Any],
    skipped: Sequence[dict[str, str]] = (),
    quality: dict[str, Any] | None = None,
    night_memory: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "config": {**asdict(cfg), "day": cfg.day.isoformat()},
        "setup": [{**asdict(s), "rows_per_s": s.rows_per_s} for s in setup],
        "stages": [{**asdict(s), "rows_per_s": s.rows_per_s} for s in stages],
        "skipped_stages": list(skipped),  # stages of the nightly plan the bench does not run, and why
        "cycle": {
            "seconds": cycle_wall,
            "peak_rss_mb": max((s.peak_rss_mb for s in stages), default=0.0),
            "pg_peak_mb": max((s.pg_peak_mb for s in stages if s.pg_peak_mb is not None), default=None),
            # an upper bound of the stage and the server together (their peaks may not coincide)
            "peak_with_pg_mb": max((s.peak_rss_mb + (s.pg_peak_mb or 0.0) for s in stages), default=0.0),
            # stages side by side as the DAG schedules them, or one at a time (--serial)
            "schedule": "serial" if cfg.serial else "plan",
            # every stage process and the server, sampled together through the cycle (pg_memory.NightSampler)
            "night_memory": night_memory,
            "target_seconds": 6 * 60,
            "target_peak_rss_mb": 8 * 1024,
        },
        "ranking_quality": quality,  # the promoted model against the truth (pipelines.bench.ranking_quality)
        "references": refs,
        "ratios": ratios(stages, refs),
    }


def chart(stages: list[StageResult], path: Path) -> None:
    """Each stage as a bar from its start to its end in the cycle (stages side by side overlap)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s.name for s in stages][::-1]
    seconds = [s.seconds for s in stages][::-1]
    starts = [float(s.details.get("started_s", 0.0)) for s in stages][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2), dpi=100)
    ax.barh(names, seconds, left=starts, color="#4477aa")
    for y, (x, v) in enumerate(zip(starts, seconds, strict=True)):
        ax.text(x + v, y, f" {v:.0f} s", va="center", fontsize=8)
    ax.set_xlabel("seconds into the cycle")
    wall = max((x + v for x, v in zip(starts, seconds, strict=True)), default=0.0)
    ax.set_title(f"newsrec nightly cycle: {wall / 60:.1f} min", fontsize=10)
    ax.margins(x=0.15)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return ""
    return f"{value:,.{digits}f}"


def _pg_line(cycle: dict[str, Any]) -> str:
    night = cycle.get("night_memory")
    if night:
        pg = night.get("pg_peak_mb")
        server = "" if pg is None else f", PostgreSQL's server at most {pg / 1024:.1f} GiB (summed PSS)"
        return (
            f"the stage processes together at most {night['processes_peak_mb'] / 1024:.1f} GiB{server}; "
            f"**both together at most {night['together_peak_mb'] / 1024:.1f} GiB** (target 8; sampled together "
            "through the cycle)."
        )
    if cycle.get("pg_peak_mb") is None:
        return "PostgreSQL's memory not measured (the server is not on this machine)."
    return (
        f"PostgreSQL's server at most {cycle['pg_peak_mb'] / 1024:.1f} GiB (summed PSS of its processes), "
        f"a stage and the server together at most {cycle['peak_with_pg_mb'] / 1024:.1f} GiB."
    )


def render(p: dict[str, Any]) -> str:
    cfg, cycle = p["config"], p["cycle"]
    lines = [
        f"# Nightly cycle benchmark, {cfg['day']}",
        "",
        f"{cfg['users']:,} users, {cfg['articles_per_day']:,} articles a day, {cfg['days']} days of history; "
        f"training budget {cfg['trials']} trial(s) on {cfg['train_days']} day(s). Measured {p['measured_at']} on "
        f"{p['machine']['cpus']} CPUs. Command: `newsrec bench nightly` (`make bench`).",
        "",
        f"**Whole cycle: {cycle['seconds'] / 60:.1f} min** (target {cycle.get('target_seconds', 900) / 60:.0f}; "
        + (
            "stages one at a time"
            if cycle.get("schedule") == "serial"
            else "stages side by side as the DAG schedules them: upstream done, memory slots within the cap"
        )  # fmt: skip
        + f"); the largest stage peak {cycle['peak_rss_mb'] / 1024:.1f} GiB, "
        + _pg_line(cycle),
        "",
        "![time per stage](nightly.png)",
        "",
        "| stage | starts at s | wall s | peak RSS MB | PostgreSQL MB | rows | rows/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in p["stages"]:
        label = f" {s['rows_label']}" if s["rows_label"] else ""
        lines.append(
            f"| {s['name']} | {_n(s['details'].get('started_s'), 1)} | {s['seconds']:.1f} | {_n(s['peak_rss_mb'])} "
            f"| {_n(s.get('pg_peak_mb'))} "
            f"| {_n(s['rows'])}{label} "
            f"| {_n(s['rows_per_s'])} |"
        )
    if p.get("skipped_stages"):
        lines += ["", "Not run: " + "; ".join(f"{s['name']} ({s['reason']})" for s in p["skipped_stages"]) + "."]
    if p["setup"]:
        lines += ["", "Setup (not part of the cycle):", ""]
        lines += [f"- {s['name']}: {s['seconds']:.0f} s, peak RSS {_n(s['peak_rss_mb'])} MB" for s in p["setup"]]
    if p.get("ranking_quality"):
        lines += ["", *ranking_quality.render(p["ranking_quality"])]
    refs = p["references"]
    lines += [
        "",
        "## Against what this machine can do",
        "",
        "| stage | measured | reference | ratio | target |",
        "|---|---|---|---:|---:|",
    ]
    for r in p["ratios"]:
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") is not None else ("pass" if r.get("passed") else "FAIL")
        target = r.get("target") or ""
        lines.append(f"| {r['stage']} | {r['measured']} | {r['reference']} | {ratio} | {target} |")
    copy, pred = refs["copy"], refs["predict"]
    lines += [
        "",
        f"- PostgreSQL COPY of {copy['rows']:,} serving-shaped rows: in {_n(copy['copy_in_rows_per_s'])} rows/s, "
        f"out {_n(copy['copy_out_rows_per_s'])} rows/s.",
        f"- Raw predict, model v{pred['model_version']} ({pred['trees']} trees) on {pred['rows']:,} rows: "
        f"LightGBM {_n(pred['lightgbm_rows_per_s'])} rows/s, lleaves {_n(pred['lleaves_rows_per_s'])} rows/s.",
        "- Feature ETL and reader details: etl.md and reader.md next to this file (same run).",
    ]
    if p.get("profile"):
        lines.append(
            f"- Profiles (pyinstrument): profiles/<stage>.txt for every stage, self time per function first; "
            f"the slowest stage's interactive one: profiles/{Path(p['profile']).name} (not committed, it is large)."
        )
    return "\n".join(lines)
