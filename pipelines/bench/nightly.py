"""The whole nightly cycle at seed scale, stage by stage, next to what this machine can do.

``newsrec bench nightly`` (``make bench``) builds a world in its own home (its own embedded
PostgreSQL, so the project's live data is never touched), then runs one nightly cycle for
the last seeded day, its stages side by side as the DAG's scheduler would run them
(:mod:`pipelines.bench.schedule`; ``--serial``: one at a time). Each stage runs in a fresh
process, as an Airflow task would, so its wall time includes start-up and its peak memory is
its own (with the processes it starts); the PostgreSQL server's memory during the stage, and
every process of the night with the server, are sampled beside it (:mod:`pipelines.bench.pg_memory`). Then the
references: COPY in/out, raw predict with the same model, the same feature transform in plain
pyarrow/pandas, a bare FastAPI endpoint (the reader benchmark).
Results: ``nightly.json`` (machine-readable), ``nightly.md`` and ``nightly.png``.

Sizes and budget: :mod:`pipelines.bench.nightly_config`; the world:
:mod:`pipelines.bench.nightly_world`; the cycle's stages: :mod:`pipelines.bench.stages`;
the references: :mod:`pipelines.bench.nightly_references`; the results:
:mod:`pipelines.bench.nightly_report`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil

from pipelines.bench import (
    child_process,
    nightly_config,
    nightly_references,
    nightly_report,
    nightly_world,
    pg_memory,
    ranking_quality,
    schedule,
    stages,
)
from pipelines.core import config
from pipelines.nightly import plan
from pipelines.warehouse import migrations


def run(
    cfg: nightly_config.BenchConfig, home: Path, results_dir: Path, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Build the world (unless reused), run the cycle and the references, write the results."""
    cfg.validate()
    os.environ["NEWSREC_HOME"] = str(home.resolve())
    os.environ.pop("NEWSREC_DATABASE_URL", None)  # the bench always uses its own embedded server
    config.reset_caches()
    results_dir.mkdir(parents=True, exist_ok=True)
    profiles = results_dir / "profiles"
    if cfg.profile:
        profiles.mkdir(exist_ok=True)
    day = cfg.day.isoformat()
    setup: list[nightly_report.StageResult] = []
    cycle: list[nightly_report.StageResult] = []
    checks: list[nightly_report.StageResult] = []  # after the cycle, not part of it

    def measure(
        name: str, fn: Callable[..., Any], *args: Any, into: list[nightly_report.StageResult] = cycle
    ) -> dict[str, Any]:
        say(f"[bench] {name} ...")
        profile_to = profiles / f"{nightly_report.slug(name)}.html" if cfg.profile and into is cycle else None
        with pg_memory.PeakSampler(server) as pg:
            child, wall = child_process.run_in_child(fn, *args, profile_to=profile_to)
        result = nightly_report.StageResult(name, wall, child["peak_rss_mb"], pg.peak_mb, details=child["out"] or {})
        result.details["seconds_in_process"] = round(child["inner_seconds"], 2)
        result.part_of_cycle = into is cycle
        into.append(result)
        server_mb = f", PostgreSQL {pg.peak_mb:,.0f} MB" if pg.peak_mb is not None else ""
        say(f"[bench] {name}: {wall:.1f} s, peak RSS {result.peak_rss_mb:,.0f} MB{server_mb}")
        return result.details

    migrations.migrate()
    server = pg_memory.server_process()
    if cfg.reuse_world and nightly_world.world_matches(cfg):
        say("[bench] reusing the world already built in this home (its models are dropped: training runs anew)")
        nightly_world.drop_models()
    else:
        nightly_world.forget_world()  # a home that held another world keeps none of its models or features
        first = cfg.start.isoformat()
        measure("seed warehouse", nightly_world.seed_world, cfg.users, cfg.articles_per_day, first, cfg.days,
                into=setup)  # fmt: skip
        if cfg.days > 1:
            before = (cfg.day - timedelta(days=1)).isoformat()
            measure("backfill features", nightly_world.backfill_features, first, before, into=setup)
            # what the night before stored besides its features (its own propensity stage)
            measure("propensity of the day before", nightly_world.propensity_before, before, into=setup)
    night = stages.Night(day, cfg, nightly_world.events_of(cfg.day))
    skipped: list[dict[str, str]] = []
    t_cycle = time.perf_counter()

    def run_stage(stage: stages.BenchStage) -> None:
        started = time.perf_counter() - t_cycle
        night.done[stage.name] = measure(stage.label, stage.child, *stage.args(night))
        result = next(r for r in cycle if r.name == stage.label)
        result.details.update(started_s=round(started, 1))
        if stage.note is not None:
            result.details.update(stage.note(night))
        if stage.rows is not None:
            result.rows, result.rows_label = stage.rows(night), stage.rows_label

    for stage in stages.bench_stages():
        if stage.child is None:
            say(f"[bench] {stage.label}: not run, {stage.skipped}")
            skipped.append({"stage": stage.name, "name": stage.label, "reason": stage.skipped})
    with pg_memory.NightSampler(psutil.Process(), server) as memory:
        schedule.run(stages.bench_stages(), run_stage, serial=cfg.serial, cap_gib=plan.memory_cap_gib())
    cycle_wall = time.perf_counter() - t_cycle
    order = [s.label for s in stages.bench_stages()]
    cycle.sort(key=lambda r: order.index(r.name))
    (results_dir / "nightly-stages.partial.json").write_text(json.dumps([asdict(s) for s in cycle], default=str))

    quality = measure("ranking quality (truth, ceiling)", ranking_quality.measure, day, cfg.train_days, into=checks)
    say("[bench] references ...")
    refs = nightly_references.measure(day, results_dir, cfg.reader_seconds, night.done["score_and_publish"])

    payload = nightly_report.payload(cfg, setup, cycle, cycle_wall, refs, skipped, quality, memory.summary())
    if cfg.profile:
        payload["profile"] = nightly_report.keep_slowest_profile(cycle, profiles)
    (results_dir / "nightly.json").write_text(json.dumps(payload, indent=2, default=str))
    (results_dir / "nightly-stages.partial.json").unlink(missing_ok=True)
    nightly_report.chart(cycle, results_dir / "nightly.png")
    (results_dir / "nightly.md").write_text(nightly_report.render(payload) + "\n")
    return payload
