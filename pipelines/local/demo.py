"""``make demo``: a small world, the real nightly DAG through Airflow, then one real request.

Steps: start the embedded database and migrate; seed a simulated warehouse (a few thousand
users, two weeks); build the feature history the first training needs; run the nightly DAG
for the newest day with ``airflow dags test`` (ingest, features, gates, retrain check,
training, scoring, publish, report); create an API key, start the reader and ask it for one
user's recommendations; print where everything is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from pipelines.core import db
from pipelines.core.config import get_settings, params
from pipelines.features.build import backfill
from pipelines.local.airflow import airflow_env, ensure_memory_pool, last_run_states
from pipelines.local.demo_reader import ask_reader
from pipelines.warehouse import simulator
from pipelines.warehouse.migrations import migrate


def _say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def run_dag(day: date, conf: dict | None = None) -> None:
    """``airflow dags test newsrec_nightly`` for logical day D (the run at D+1 02:00 UTC)."""

    env = {**os.environ, **airflow_env()}
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    ensure_memory_pool(env)
    logical = f"{(day + timedelta(days=1)).isoformat()}T02:00:00+00:00"
    args = [airflow, "dags", "test", "newsrec_nightly", logical]
    if conf:
        args += ["--conf", json.dumps(conf)]
    log = get_settings().home / "airflow" / f"dags-test-{day.isoformat()}.log"
    with open(log, "w") as fh:
        proc = subprocess.run(args, env=env, stdout=fh, stderr=subprocess.STDOUT)

    states = last_run_states("newsrec_nightly")
    for task, state in states.items():
        print(f"    {task:<20} {state}")
    if proc.returncode != 0 or any(s in ("failed", "upstream_failed") for s in states.values()):
        raise SystemExit(f"the nightly DAG failed; see {log}")


def build_world(last: date, days: int, users: int, articles_per_day: int) -> date:
    """Migrate, seed ``days`` simulated days ending at ``last`` and build the feature history
    the first training needs (every day before ``last``); return the first seeded day."""
    start = last - timedelta(days=days - 1)
    _say("database")
    print(f"    {db.redact(db.database_url())}")
    migrate()

    _say(f"seeding {users:,} users, {articles_per_day:,} articles/day, {start}..{last}")
    cfg = simulator.SimConfig.from_params(users=users, articles_per_day=articles_per_day, start=start)
    simulator.seed(cfg, days)

    _say(f"feature history {start}..{last - timedelta(days=1)} (Beam, FnApiRunner)")
    for result in backfill(start, last - timedelta(days=1)):
        print(f"    {result.render()}")
    return start


def main() -> None:

    t0 = time.perf_counter()
    cfg_demo = params("demo")
    last = date.today() - timedelta(days=1)
    build_world(last, int(cfg_demo.get("days", 14)), int(cfg_demo["users"]), int(cfg_demo["articles_per_day"]))

    _say(f"nightly DAG through Airflow for {last} (airflow dags test)")
    run_dag(last)

    _say("the reader")

    print(ask_reader())

    home = get_settings().home
    _say(f"done in {time.perf_counter() - t0:.0f} s. Where things are:")
    print(f"    nightly report   {home / 'reports' / 'nightly' / last.isoformat() / 'report.md'}")
    print(f"    quality docs     {home / 'reports' / 'quality' / last.isoformat()}")
    print(f"    drift report     {home / 'reports' / 'drift' / last.isoformat()}")
    print("    MLflow runs      newsrec model list; mlflow ui --backend-store-uri \"$(newsrec db url --sqlalchemy"
          " --database '{main}_mlflow')\"")  # fmt: skip
    print("    Airflow UI       make airflow   (then open http://localhost:8080)")


if __name__ == "__main__":
    main()
