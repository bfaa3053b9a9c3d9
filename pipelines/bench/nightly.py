"""The whole nightly cycle at seed scale, stage by stage, next to what this machine can do.

``newsrec bench nightly`` (``make bench``) builds a world in its own home (its own embedded
PostgreSQL, so the project's live data is never touched), then runs one nightly cycle for
the last seeded day. Each stage runs in a fresh process, as an Airflow task would, so its
wall time includes start-up and its peak RSS is its own (the PostgreSQL server's memory is
not in it). Then the references: COPY in/out, raw predict with the same model, the same
feature transform in plain pyarrow/pandas, a bare FastAPI endpoint (the reader benchmark).
Results: ``nightly.json`` (machine-readable), ``nightly.md`` and ``nightly.png``.
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

SEED_SCALE = {"users": 521_000, "articles_per_day": 144_000, "days": 7}


@dataclass
class BenchConfig:
    users: int = SEED_SCALE["users"]
    articles_per_day: int = SEED_SCALE["articles_per_day"]
    days: int = SEED_SCALE["days"]
    trials: int = 0  # the small fixed training budget: no search, params.yaml's parameters
    train_days: int = 2
    hpo_minutes: float = 5.0
    reader_seconds: int = 15
    profile: bool = False
    reuse_world: bool = False  # keep a world already built with the same sizes (developer loop)

    def validate(self) -> None:
        """Training reads the features of the day before its first day, then trains on
        ``train_days`` days and validates and tests on the last two."""
        from pipelines.core.errors import ConfigError

        if self.days < self.train_days + 3:
            raise ConfigError(
                f"--days {self.days} is too short for --train-days {self.train_days}: "
                f"needs at least {self.train_days + 3} (features of a day before training, validation and test days)"
            )

    @property
    def day(self) -> date:
        """The night under test: the last seeded day (yesterday)."""
        return datetime.now(UTC).date() - timedelta(days=1)

    @property
    def start(self) -> date:
        return self.day - timedelta(days=self.days - 1)


@dataclass
class StageResult:
    name: str
    seconds: float
    peak_rss_mb: float
    rows: int | None = None
    rows_label: str = ""
    part_of_cycle: bool = True
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float | None:
        return self.rows / self.seconds if self.rows and self.seconds else None


# --- what runs in each child process ---------------------------------------------------


def _peak_rss_mb() -> float:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def _in_child(fn: Callable[..., Any], args: tuple, profile_to: str | None) -> dict[str, Any]:
    """Run one stage; returns its output, seconds inside the process and peak RSS."""
    import logging

    logging.basicConfig(level=logging.WARNING)
    profiler = None
    if profile_to:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.01)
        profiler.start()
    t0 = time.perf_counter()
    try:
        out = fn(*args)
    finally:
        if profiler is not None:
            profiler.stop()
    seconds = time.perf_counter() - t0
    if profiler is not None:
        Path(profile_to).write_text(profiler.output_html())
        flat = profiler.output_text(unicode=False, color=False, flat=True).splitlines()[:60]
        tree = profiler.output_text(unicode=False, color=False)
        Path(profile_to).with_suffix(".txt").write_text("\n".join(flat) + "\n\n" + tree)
    return {"out": out, "inner_seconds": seconds, "peak_rss_mb": _peak_rss_mb()}


def seed_world(users: int, articles_per_day: int, start: str, days: int) -> dict[str, Any]:
    from pipelines.warehouse import simulator

    start_day = date.fromisoformat(start)
    cfg = simulator.SimConfig.from_params(users=users, articles_per_day=articles_per_day, start=start_day)
    results = simulator.seed(cfg, days)
    return {"impressions": sum(r.impressions for r in results), "reads": sum(r.reads for r in results)}


def backfill_features(first: str, last: str) -> dict[str, Any]:
    from pipelines.features import build

    results = build.backfill(date.fromisoformat(first), date.fromisoformat(last))
    return {"days": len(results)}


def quality_raw(day: str) -> dict[str, Any]:
    from pipelines.nightly import stages as nightly

    return nightly.quality(day, "raw")


def features(day: str) -> dict[str, Any]:
    from pipelines.nightly import stages as nightly

    return nightly.features(day)


def quality_features(day: str) -> dict[str, Any]:
    from pipelines.nightly import stages as nightly

    return nightly.quality(day, "features")


def materialize(day: str) -> dict[str, Any]:
    from pipelines.nightly import stages as nightly

    return nightly.materialize(day)


def drift(day: str) -> dict[str, Any]:
    from pipelines.nightly import stages as nightly

    return nightly.drift(day)


def decide_retrain(day: str) -> dict[str, Any]:
    from pipelines.nightly import stages as nightly

    return nightly.decide_retrain(day)


def train(day: str, trials: int, minutes: float, train_days: int) -> dict[str, Any]:
    """A full retrain with the bench's fixed budget (the nightly stage, with ``train_days``)."""
    from pipelines.model.train import train as run

    result = run(date.fromisoformat(day), trials=trials, minutes=minutes, train_days=train_days, mode="full")
    return {
        "version": result.version,
        "promoted": result.decision.promoted,
        "rows": result.rows,
        "ndcg@10": result.evaluation["overall"]["model"]["ndcg@10"],
    }


def score_and_publish(day: str) -> dict[str, Any]:
    from pipelines.nightly import stages as nightly

    return nightly.score_and_publish(day)


def report(day: str) -> dict[str, Any]:
    from pipelines.nightly import stages as nightly

    return nightly.report(day)


def copy_reference(rows: int) -> dict[str, Any]:
    """COPY in and out of a scratch table shaped like the serving table (rows/s)."""
    import numpy as np
    import pandas as pd

    from pipelines.core import db

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, 10**6, rows),
            "rank": rng.integers(1, 11, rows).astype(np.int16),
            "article_id": rng.integers(0, 10**7, rows),
            "score": rng.random(rows).astype(np.float32),
            "reason": np.array(["trending in your region", "because you read politics"], dtype=object)[
                rng.integers(0, 2, rows)
            ],
        }
    )
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS public.bench_copy")
            cur.execute(
                "CREATE UNLOGGED TABLE public.bench_copy (user_id bigint, rank smallint, article_id bigint, "
                "score real, reason text)"
            )
            t0 = time.perf_counter()
            db.copy_frame(cur, "public.bench_copy", frame)
            conn.commit()
            copy_in = time.perf_counter() - t0
        t0 = time.perf_counter()
        back = db.read_frame(conn, "SELECT * FROM public.bench_copy")
        copy_out = time.perf_counter() - t0
        with conn.cursor() as cur:
            cur.execute("DROP TABLE public.bench_copy")
        conn.commit()
    finally:
        conn.close()
    if len(back) != rows:
        raise RuntimeError(f"COPY reference read {len(back)} rows back, wrote {rows}")
    return {"rows": rows, "copy_in_rows_per_s": rows / copy_in, "copy_out_rows_per_s": rows / copy_out}


def predict_reference(rows: int) -> dict[str, Any]:
    """Raw predict rows/s of the champion on a matrix of its width: LightGBM's own and compiled."""
    import numpy as np

    from pipelines.serving.scoring import load_for_scoring
    from pipelines.serving.predictor import Predictor, threads

    model = load_for_scoring()
    rng = np.random.default_rng(0)
    X = rng.random((rows, len(model.spec.feature_names))) * 100
    X[rng.random(X.shape) < 0.05] = np.nan
    X32 = X.astype(np.float32)
    t0 = time.perf_counter()
    model.booster.predict(X32, num_threads=threads())
    lgb_s = time.perf_counter() - t0
    compiled = Predictor(model, "lleaves")
    compiled(X[:1000])
    t0 = time.perf_counter()
    compiled(X)
    lleaves_s = time.perf_counter() - t0
    return {
        "rows": rows,
        "model_version": model.version,
        "trees": model.booster.num_trees(),
        "lightgbm_rows_per_s": rows / lgb_s,
        "lleaves_rows_per_s": rows / lleaves_s,
    }


def etl_reference(day: str, results_dir: str) -> dict[str, Any]:
    from pipelines.bench import etl

    return etl.run(date.fromisoformat(day), Path(results_dir)).to_dict()


def reader_reference(results_dir: str, seconds: int) -> dict[str, Any]:
    from pipelines.bench import reader

    return reader.run(Path(results_dir), seconds, 20_000, [4, 32], 2.0, "auto", "auto", say=print).to_dict()


# --- the driver ---------------------------------------------------------------------------


def _run(fn: Callable[..., Any], *args: Any, profile_to: Path | None = None) -> tuple[dict[str, Any], float]:
    """``fn(*args)`` in a fresh process; returns the child's report and the wall seconds."""
    t0 = time.perf_counter()
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        child = pool.submit(_in_child, fn, args, str(profile_to) if profile_to else None).result()
    return child, time.perf_counter() - t0


def _total(value: Any) -> int | None:
    """A row count that stages report as a number or as counts per table."""
    if isinstance(value, dict):
        return sum(int(v) for v in value.values() if isinstance(v, (int, float)))
    return int(value) if isinstance(value, (int, float)) else None


def _count(sql: str, args: tuple = ()) -> int:
    from pipelines.core import db

    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return int(cur.fetchone()[0])


def _drop_models() -> None:
    """Forget every registered model and search of the bench's home, as in a new world (an
    identical model would otherwise be reused instead of trained)."""
    import shutil

    from psycopg2 import sql

    from pipelines.core import db
    from pipelines.core.config import get_settings

    conn = db.connect("postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for suffix in ("mlflow", "optuna"):
                name = sql.Identifier(f"{db.main_database_name()}_{suffix}")
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
    finally:
        conn.close()
    settings = get_settings()
    shutil.rmtree(settings.artifacts_dir, ignore_errors=True)
    shutil.rmtree(settings.home / "serving" / "models", ignore_errors=True)


def _world_matches(cfg: BenchConfig) -> bool:
    try:
        have = _count("SELECT count(*) FROM warehouse.users")
        days = _count("SELECT count(DISTINCT event_ts::date) FROM warehouse.events")
        last = _count("SELECT count(*) FROM warehouse.events WHERE event_ts::date = %s", (cfg.day,))
    except Exception:  # no database or no tables yet
        return False
    return days == cfg.days and last > 0 and abs(have - cfg.users) <= cfg.users * 0.05


def run(cfg: BenchConfig, home: Path, results_dir: Path, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Build the world (unless reused), run the cycle and the references, write the results."""
    from pipelines.core.config import reset_caches

    cfg.validate()
    os.environ["NEWSREC_HOME"] = str(home.resolve())
    os.environ.pop("NEWSREC_DATABASE_URL", None)  # the bench always uses its own embedded server
    reset_caches()
    results_dir.mkdir(parents=True, exist_ok=True)
    profiles = results_dir / "profiles"
    if cfg.profile:
        profiles.mkdir(exist_ok=True)
    day = cfg.day.isoformat()
    setup: list[StageResult] = []
    stages: list[StageResult] = []

    def stage(name: str, fn: Callable[..., Any], *args: Any, into: list[StageResult] = stages) -> dict[str, Any]:
        say(f"[bench] {name} ...")
        profile_to = profiles / f"{_slug(name)}.html" if cfg.profile and into is stages else None
        child, wall = _run(fn, *args, profile_to=profile_to)
        result = StageResult(name, wall, child["peak_rss_mb"], details=child["out"] or {})
        result.details["seconds_in_process"] = round(child["inner_seconds"], 2)
        result.part_of_cycle = into is stages
        into.append(result)
        say(f"[bench] {name}: {wall:.1f} s, peak RSS {result.peak_rss_mb:,.0f} MB")
        return result.details

    from pipelines.warehouse.migrations import migrate

    migrate()
    if cfg.reuse_world and _world_matches(cfg):
        say("[bench] reusing the world already built in this home (its models are dropped: training runs anew)")
        _drop_models()
    else:
        first = cfg.start.isoformat()
        stage("seed warehouse", seed_world, cfg.users, cfg.articles_per_day, first, cfg.days, into=setup)
        if cfg.days > 1:
            stage("backfill features", backfill_features, first,
                  (cfg.day - timedelta(days=1)).isoformat(), into=setup)  # fmt: skip
    events = _count(
        "SELECT count(*) FROM warehouse.events WHERE event_ts >= %s AND event_ts < %s",
        (cfg.day, cfg.day + timedelta(days=1)),
    )
    t_cycle = time.perf_counter()
    stage("quality (raw)", quality_raw, day)
    stages[-1].rows, stages[-1].rows_label = events, "events"
    built = stage("features (Beam)", features, day)
    stages[-1].rows, stages[-1].rows_label = events, "events"
    stage("quality (features)", quality_features, day)
    stages[-1].rows, stages[-1].rows_label = _total(built.get("rows")), "feature rows"
    online = stage("materialize (Feast online)", materialize, day)
    stages[-1].rows, stages[-1].rows_label = _total(online.get("rows")), "online rows"
    stage("drift", drift, day)
    stage("retrain decision", decide_retrain, day)
    trained = stage("train + evaluate + register", train, day, cfg.trials, cfg.hpo_minutes, cfg.train_days)
    stages[-1].rows, stages[-1].rows_label = _total(trained.get("rows")), "train+valid+test rows"
    scored = stage("score + publish", score_and_publish, day)
    stages[-1].rows, stages[-1].rows_label = scored.get("candidates"), "candidate rows"
    stage("report", report, day)
    cycle_wall = time.perf_counter() - t_cycle
    (results_dir / "nightly-stages.partial.json").write_text(json.dumps([asdict(s) for s in stages], default=str))

    say("[bench] references ...")
    refs: dict[str, Any] = {}
    refs["copy"], _ = _run(copy_reference, max(100_000, int(scored.get("rows") or 0)))
    refs["predict"], _ = _run(predict_reference, min(2_000_000, max(100_000, int(scored.get("candidates") or 0))))
    refs["etl"], _ = _run(etl_reference, day, str(results_dir))
    reader_child, reader_wall = _run(reader_reference, str(results_dir), cfg.reader_seconds)
    refs["reader"] = reader_child
    refs = {k: v["out"] for k, v in refs.items()}

    payload = _payload(cfg, setup, stages, cycle_wall, refs)
    if cfg.profile:
        payload["profile"] = _keep_slowest_profile(stages, profiles)
    (results_dir / "nightly.json").write_text(json.dumps(payload, indent=2, default=str))
    (results_dir / "nightly-stages.partial.json").unlink(missing_ok=True)
    _chart(stages, results_dir / "nightly.png")
    (results_dir / "nightly.md").write_text(render(payload) + "\n")
    return payload


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _keep_slowest_profile(stages: list[StageResult], folder: Path) -> str | None:
    """The interactive (HTML) profile of the slowest stage; every stage keeps its text one
    (self time per function, then the call tree)."""
    slowest = _slug(max(stages, key=lambda s: s.seconds).name)
    kept = None
    for path in folder.glob("*.html"):
        if path.stem == slowest:
            kept = str(path)
        else:
            path.unlink()
    return kept


def _ratios(stages: list[StageResult], refs: dict[str, Any]) -> list[dict[str, Any]]:
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
                    "ratio": score_s / raw_ll, "target": None})  # fmt: skip
    if scored.get("publish_seconds") and scored.get("rows"):
        publish_rps = scored["rows"] / scored["publish_seconds"]
        out.append({"stage": "publish", "measured": f"{publish_rps:,.0f} rows/s",
                    "reference": f"COPY in: {refs['copy']['copy_in_rows_per_s']:,.0f} rows/s",
                    "ratio": refs["copy"]["copy_in_rows_per_s"] / publish_rps, "target": None})  # fmt: skip
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


def _payload(cfg, setup, stages, cycle_wall, refs) -> dict[str, Any]:
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "config": {**asdict(cfg), "day": cfg.day.isoformat()},
        "setup": [{**asdict(s), "rows_per_s": s.rows_per_s} for s in setup],
        "stages": [{**asdict(s), "rows_per_s": s.rows_per_s} for s in stages],
        "cycle": {
            "seconds": cycle_wall,
            "peak_rss_mb": max((s.peak_rss_mb for s in stages), default=0.0),
            "target_seconds": 15 * 60,
            "target_peak_rss_mb": 8 * 1024,
        },
        "references": refs,
        "ratios": _ratios(stages, refs),
    }


def _chart(stages: list[StageResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s.name for s in stages][::-1]
    seconds = [s.seconds for s in stages][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2), dpi=100)
    ax.barh(names, seconds, color="#4477aa")
    for y, v in enumerate(seconds):
        ax.text(v, y, f" {v:.0f} s", va="center", fontsize=8)
    ax.set_xlabel("wall seconds")
    ax.set_title(f"newsrec nightly cycle: {sum(seconds) / 60:.1f} min", fontsize=10)
    ax.margins(x=0.15)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return ""
    return f"{value:,.{digits}f}"


def render(p: dict[str, Any]) -> str:
    cfg, cycle = p["config"], p["cycle"]
    lines = [
        f"# Nightly cycle benchmark, {cfg['day']}",
        "",
        f"{cfg['users']:,} users, {cfg['articles_per_day']:,} articles a day, {cfg['days']} days of history; "
        f"training budget {cfg['trials']} trial(s) on {cfg['train_days']} day(s). Measured {p['measured_at']} on "
        f"{p['machine']['cpus']} CPUs. Command: `newsrec bench nightly` (`make bench`).",
        "",
        f"**Whole cycle: {cycle['seconds'] / 60:.1f} min** (target 15), "
        f"**peak RSS {cycle['peak_rss_mb'] / 1024:.1f} GiB** (target 8; PostgreSQL's own memory not included).",
        "",
        "![time per stage](nightly.png)",
        "",
        "| stage | wall s | peak RSS MB | rows | rows/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in p["stages"]:
        label = f" {s['rows_label']}" if s["rows_label"] else ""
        lines.append(
            f"| {s['name']} | {s['seconds']:.1f} | {_n(s['peak_rss_mb'])} | {_n(s['rows'])}{label} "
            f"| {_n(s['rows_per_s'])} |"
        )
    if p["setup"]:
        lines += ["", "Setup (not part of the cycle):", ""]
        lines += [f"- {s['name']}: {s['seconds']:.0f} s, peak RSS {_n(s['peak_rss_mb'])} MB" for s in p["setup"]]
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
