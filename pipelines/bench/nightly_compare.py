"""Two runs of the nightly bench side by side: the same world and day, two versions of the code
(typically a git worktree of the previous main and this tree, run one after the other in the
same hour), stage by stage, so that each speed-up is a ratio measured on one machine at one
time, not against an old results file. ``newsrec bench compare-nightly``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _stages(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in run["stages"]}


def _quality(run: dict[str, Any]) -> dict[str, Any]:
    return (run.get("ranking_quality") or {}).get("truth_ndcg@10", {})


def render(before: dict[str, Any], after: dict[str, Any], before_label: str, after_label: str) -> str:
    """The markdown table of both runs: whole cycle, memory, each stage, ranking quality."""
    b, a = _stages(before), _stages(after)
    names = [s["name"] for s in after["stages"]] + [n for n in b if n not in a]

    def ratio(x: float | None, y: float | None) -> str:
        return f"{x / y:.2f}x" if x and y else ""

    def night_peak(run: dict[str, Any]) -> str:
        night = run["cycle"].get("night_memory")
        if night:
            return f"{night['together_peak_mb'] / 1024:.1f} GiB (sampled together)"
        bound = run["cycle"].get("peak_with_pg_mb")
        return f"{bound / 1024:.1f} GiB (largest stage + server, upper bound)" if bound else ""

    wb, wa = before["cycle"]["seconds"], after["cycle"]["seconds"]
    lines = [
        f"# Nightly bench side by side: {before_label} vs {after_label}",
        "",
        f"World: {after['config']['users']:,} users, {after['config']['articles_per_day']:,} articles a day, "
        f"{after['config']['days']} days; night {after['config']['day']}. Measured {before['measured_at']} "
        f"and {after['measured_at']} on {after['machine']['cpus']} CPUs.",
        "",
        f"| | {before_label} | {after_label} | speed-up |",
        "|---|---:|---:|---:|",
        f"| whole cycle | {wb / 60:.1f} min ({before['cycle'].get('schedule', 'serial')}) "
        f"| {wa / 60:.1f} min ({after['cycle'].get('schedule', 'serial')}) | {ratio(wb, wa)} |",
        f"| peak memory, processes + PostgreSQL | {night_peak(before)} | {night_peak(after)} | |",
        "",
        "| stage | before s | after s | speed-up | before peak MB | after peak MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        x, y = b.get(name, {}), a.get(name, {})
        xs, ys = x.get("seconds"), y.get("seconds")
        lines.append(
            f"| {name} | {'' if xs is None else f'{xs:.1f}'} | {'' if ys is None else f'{ys:.1f}'} | {ratio(xs, ys)} "
            f"| {x.get('peak_rss_mb', 0):,.0f} | {y.get('peak_rss_mb', 0):,.0f} |"
        )
    qb, qa = _quality(before), _quality(after)
    if qb and qa:
        lines += ["", "| truth NDCG@10 | before | after |", "|---|---:|---:|"]
        lines += [f"| {k} | {qb.get(k, float('nan')):.4f} | {qa.get(k, float('nan')):.4f} |" for k in qa]
    digests = [_stages(r).get("score + publish", {}).get("details", {}).get("lists_digest") for r in (before, after)]
    same = "the same lists" if digests[0] == digests[1] else "different lists: different models"
    lines += ["", f"Lists digest: {digests[0]} before, {digests[1]} after ({same})."]
    if after["cycle"].get("schedule") == "plan" and before["cycle"].get("schedule", "serial") == "serial":
        lines += ["", "The after run's stages ran side by side (as the DAG schedules them): a stage's wall time "
                  "includes the others' competition for the 2 cores, so its per-stage speed-up understates the "
                  "code's; the whole cycle is the night's wall either way."]  # fmt: skip
    return "\n".join(lines) + "\n"


def write(before: Path, after: Path, out: Path, before_label: str, after_label: str) -> str:
    text = render(json.loads(before.read_text()), json.loads(after.read_text()), before_label, after_label)
    out.write_text(text)
    return text
