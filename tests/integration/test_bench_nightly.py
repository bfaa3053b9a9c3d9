"""`newsrec bench nightly` at a tiny size: it builds its own world in its own home, runs every
stage and the references, and writes results that add up. Nothing here depends on how fast
this machine is (the seed-scale run is `make bench`). The children fork from a server that
imported the stack once (NEWSREC_BENCH_PRELOAD): each stage of a tiny world would otherwise be
mostly its imports, and what is tested is the harness, not the start-up."""

from __future__ import annotations

import json

import pytest

from pipelines.bench.stages import bench_stages
from pipelines.nightly import plan
from tests.helpers import run_cli

PRELOAD = ",".join((
    "pipelines.nightly.stages", "pipelines.model.train", "pipelines.warehouse.simulator", "pipelines.features.etl",
    "pipelines.serving.predictor", "pipelines.bench.etl", "pipelines.bench.reader", "great_expectations",
    "great_expectations.checkpoint", "evidently", "evidently.presets", "mlflow", "lleaves",
    # what the stages' children imported on their own (their profiles): Feast's offline stores (ibis,
    # sqlglot, duckdb), MLflow's SQL stores (every MlflowClient), the model flavor, Optuna, matplotlib
    "feast", "feast.infra.offline_stores.duckdb", "pipelines.features.store", "pipelines.features.online_write",
    "mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store", "mlflow.lightgbm",
    "optuna", "matplotlib.figure", "matplotlib.backends.backend_agg",
))  # fmt: skip
# every stage of the nightly plan, in its order (pipelines/nightly/plan.py); start_experiment is not run
STAGES = [
    "ingest (seeded day landed)", "quality (raw)", "business metrics", "features (Beam)", "quality (features)",
    "materialize (Feast online)", "drift", "propensity (examination by position)",
    "retrain decision", "train + evaluate + register", "decide experiments",
    "score + publish", "report",
]  # fmt: skip


def test_bench_nightly_runs_every_stage_and_writes_sane_results(tmp_path, monkeypatch):
    home, results = tmp_path / "bench-home", tmp_path / "results"
    monkeypatch.delenv("NEWSREC_DATABASE_URL", raising=False)  # run_cli passes this process's environment on
    monkeypatch.setenv("NEWSREC_BENCH_PRELOAD", PRELOAD)
    args = ["--users", "400", "--articles-per-day", "150", "--days", "4", "--train-days", "1", "--reader-seconds", "1"]
    try:
        proc = run_cli("bench", "nightly", *args, "--profile", "--home", str(home), "--results", str(results),
                       timeout=900)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
    finally:
        # as root pg_ctl runs as pgserver, which cannot enter pytest's private tmp folder:
        # `db stop` then shuts the postmaster down itself (it once leaked a server a run)
        stop = run_cli("db", "stop", env={"NEWSREC_HOME": str(home)})
    assert stop.returncode == 0 and stop.stdout.strip().endswith("stopped"), stop.stderr[-2000:]
    assert not (home / "pg" / "postmaster.pid").exists()

    data = json.loads((results / "nightly.json").read_text())
    assert [s["name"] for s in data["stages"]] == STAGES
    assert [s["name"] for s in data["setup"]] == ["seed warehouse", "backfill features", "propensity of the day before"]
    assert [s["stage"] for s in data["skipped_stages"]] == ["start_experiment"]
    for stage in data["stages"]:
        assert stage["seconds"] > 0 and stage["peak_rss_mb"] > 0, stage
    by_name = {s["name"]: s for s in data["stages"]}
    assert by_name["score + publish"]["details"]["published"] is True
    assert by_name["score + publish"]["rows"] > 0 and by_name["features (Beam)"]["rows"] > 0
    # side by side as the DAG schedules them: each stage after its upstream ones, all within the cycle
    assert data["cycle"]["schedule"] == "plan"
    by_task = {s.label: s.name for s in bench_stages()}
    for s in data["stages"]:
        start, end = s["details"]["started_s"], s["details"]["started_s"] + s["seconds"]
        assert 0 <= start and end <= data["cycle"]["seconds"] + 1, s["name"]
        for upstream in plan.stage(by_task[s["name"]]).after:
            if upstream != "start_experiment":
                up = next(u for u in data["stages"] if by_task[u["name"]] == upstream)
                assert up["details"]["started_s"] + up["seconds"] <= start + 0.5, (upstream, s["name"])
    night = data["cycle"]["night_memory"]
    assert night["processes_peak_mb"] > 100 and night["pg_peak_mb"] > 0
    assert night["together_peak_mb"] >= max(night["processes_peak_mb"], night["pg_peak_mb"])
    refs = data["references"]
    assert refs["copy"]["copy_in_rows_per_s"] > 0 and refs["predict"]["lleaves_rows_per_s"] > 0
    assert refs["etl"]["beam_seconds"] > 0 and refs["reader"]["cases"]
    measured = {r["stage"].split(",")[0] for r in data["ratios"]}
    assert {"scoring every active user", "feature ETL (whole window)", "reader", "materialize"} <= measured

    quality = data["ranking_quality"]
    assert quality["model_version"] == by_name["train + evaluate + register"]["details"]["version"]
    assert quality["truth_ndcg@10"]["oracle"] == pytest.approx(1.0)
    assert quality["gap_closed"]["oracle"] == pytest.approx(1.0)
    assert all(0 <= v <= 1 for v in quality["truth_ndcg@10"].values())
    assert quality["ceiling_trees"] >= 1 and quality["test_lists"] > 0
    # the ceiling learns from the truth itself: it must beat popularity even in a tiny world
    assert quality["truth_ndcg@10"]["ceiling"] > quality["truth_ndcg@10"]["popularity"]

    md = (results / "nightly.md").read_text()
    assert "## Ranking quality against the simulator's truth" in md and "| ceiling |" in md
    assert all(f"| {name} |" in md for name in STAGES)
    assert (results / "nightly.png").read_bytes()[:4] == b"\x89PNG"
    profiles = sorted(p.name for p in (results / "profiles").iterdir())
    assert len([p for p in profiles if p.endswith(".txt")]) == len(STAGES)
    assert len([p for p in profiles if p.endswith(".html")]) == 1  # the slowest stage's only


def test_a_history_too_short_for_training_is_refused_before_anything_is_built(tmp_path):
    proc = run_cli("bench", "nightly", "--days", "4", "--train-days", "2", "--home", str(tmp_path / "h"),
                   "--results", str(tmp_path / "r"))  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("newsrec: error: --days 4 is too short for --train-days 2")
    assert not (tmp_path / "h").exists() and not (tmp_path / "r").exists()
