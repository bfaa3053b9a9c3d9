"""DAG files: they import cleanly and fast, and the nightly DAG runs end to end in Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipelines.features.build import backfill
from pipelines.local.airflow import airflow_env, last_run_states
from pipelines.warehouse import simulator
from tests.helpers import ROOT, admin_sql, query, use_database

_PARSE = """
import json, sys, time
from pathlib import Path
from airflow.dag_processing.dagbag import DagBag
out = {}
for path in sorted(Path(sys.argv[1]).glob("*.py")):
    t0 = time.perf_counter()
    bag = DagBag(dag_folder=str(path))
    out[path.name] = {"seconds": time.perf_counter() - t0, "errors": {k: str(v) for k, v in bag.import_errors.items()},
                      "dags": sorted(bag.dag_ids)}
out["_heavy_modules_loaded"] = sorted(m for m in ("pipelines", "lightgbm", "feast", "apache_beam", "mlflow",
                                                  "great_expectations", "evidently", "pandas") if m in sys.modules)
dag = DagBag(dag_folder=str(Path(sys.argv[1]) / "newsrec_nightly.py")).dags["newsrec_nightly"]
out["_upstream"] = {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}
out["_pools"] = {t.task_id: [t.pool, t.pool_slots] for t in dag.tasks}
print(json.dumps(out))
"""


def _airflow_env() -> dict[str, str]:
    return {**os.environ, **airflow_env()}


@pytest.fixture(scope="module")
def parsed(pg_server, migrated_template, tmp_path_factory) -> dict:
    """One process (an Airflow import costs ~8 s) parses each DAG file and reads the nightly's edges."""
    name = f"dagparse{os.getpid()}"
    admin_sql(pg_server, f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, pg_server.format(db=name), tmp_path_factory.mktemp("dagparse_home"))
        proc = subprocess.run(
            [sys.executable, "-c", _PARSE, str(ROOT / "dags")], env=_airflow_env(), capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_dag_files_import_without_errors_and_parse_fast(parsed):
    result = dict(parsed)
    result.pop("_upstream")
    result.pop("_pools")
    assert result.pop("_heavy_modules_loaded") == []  # nothing heavy at parse time
    assert set(result) == {"newsrec_nightly.py", "newsrec_rollback.py"}
    for name, info in result.items():
        assert info["errors"] == {}, name
        assert info["seconds"] < 1.0, (name, info["seconds"])
    assert result["newsrec_nightly.py"]["dags"] == ["newsrec_nightly"]
    assert result["newsrec_rollback.py"]["dags"] == ["newsrec_rollback"]


@pytest.mark.slow
def test_nightly_dag_end_to_end_with_airflow_dags_test(fresh_db, airflow_db):
    airflow_db()  # a migrated metadata database (a copy of the session's), before airflow_env() below
    start = date(2026, 6, 1)
    days = 9
    last = start + timedelta(days=days - 1)
    cfg = simulator.SimConfig.from_params(users=500, articles_per_day=200, start=start, seed=3)
    simulator.seed(cfg, days - 1)  # the DAG's ingest simulates the last day
    backfill(start, last - timedelta(days=1))
    env = _airflow_env()
    airflow = str(Path(sys.executable).parent / "airflow")
    logical = f"{last + timedelta(days=1)}T02:00:00+00:00"
    conf = json.dumps({"hpo_trials": 2, "hpo_minutes": 2})
    proc = subprocess.run([airflow, "dags", "test", "newsrec_nightly", logical, "--conf", conf], env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    log = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, log
    states = last_run_states("newsrec_nightly")
    errors = "\n".join(line for line in proc.stdout.splitlines() if "error" in line.lower())[-6000:]
    assert states["train"] == "success" and states["skip_training"] == "skipped", errors  # no champion: it trains
    assert all(
        states[t] == "success" for t in ("ingest", "features", "quality_gate", "drift_check", "score_and_publish")
    )
    # the serving table holds a complete new batch, and it is live
    live = query(
        "SELECT b.batch_id, b.status, b.data_date, b.n_users, b.n_rows FROM serving.live l "
        "JOIN serving.batches b USING (batch_id)"
    )
    assert live and live[0][1] == "complete" and live[0][2] == last
    batch_id, _, _, n_users, n_rows = live[0]
    assert n_users > 0 and n_users * 5 <= n_rows <= n_users * 10
    counted = query("SELECT count(DISTINCT user_id), count(*) FROM serving.recommendations WHERE batch_id = %s",
                    (batch_id,))  # fmt: skip
    assert counted == [(n_users, n_rows)]
    assert query("SELECT count(*) FROM ops.retrain_decisions WHERE logical_date = %s", (last,)) == [(1,)]
    report = Path(os.environ["NEWSREC_HOME"]) / "reports" / "nightly" / last.isoformat() / "report.md"
    assert "Serving batches" in report.read_text()


def test_nightly_dag_wires_the_stage_plan(parsed):
    """The DAG's tasks and edges are the declared plan's (the plan is what run_day, backfill and
    the benchmark run); ``skip_training`` is the DAG's other branch of ``train``."""
    from pipelines.nightly import plan

    upstream = dict(parsed["_upstream"])
    assert upstream.pop("skip_training") == ["retrain_checker"]
    dag = {task: sorted(u for u in ups if u != "skip_training") for task, ups in upstream.items()}
    assert dag == {s.task: sorted(s.after) for s in plan.STAGES}
    assert [s.task for s in plan.STAGES if s.gate] == ["raw_gate", "quality_gate"]


def test_stage_plan_is_in_dependency_order_and_names_real_stages():
    from pipelines.nightly import plan

    seen: set[str] = set()
    for s in plan.STAGES:
        assert set(s.after) <= seen, (s.task, s.after)
        seen.add(s.task)
    assert len({s.step for s in plan.STAGES}) == len(plan.STAGES)
    assert plan.stage("train").runs_if is not None and plan.stage("report").finally_


def test_parallel_heavy_tasks_share_the_memory_pool(parsed):
    """Each heavy task takes its peak in GiB (the plan's ``memory_gib``) of the pool whose size is
    the memory cap, so tasks the DAG draws side by side never peak together past it; with
    today's peaks materialize runs beside drift and training (0.7 + 0.8 / 5.4 GiB)."""
    from pipelines.core.config import params
    from pipelines.local.airflow import memory_pool_command
    from pipelines.nightly import plan

    pools = parsed["_pools"]
    heavy = {task: slots for task, (pool, slots) in pools.items() if pool == plan.MEMORY_POOL}
    assert heavy == {s.task: s.memory_gib for s in plan.STAGES if s.memory_gib}
    assert all(pool == "default_pool" for task, (pool, _) in pools.items() if task not in heavy)
    cap = params()["nightly"]["memory"]["cap_gib"]
    assert memory_pool_command()[:4] == ["pools", "set", plan.MEMORY_POOL, str(cap)]
    assert max(heavy.values()) <= cap
    assert heavy["materialize"] + heavy["train"] <= cap and heavy["materialize"] + heavy["drift_check"] <= cap
