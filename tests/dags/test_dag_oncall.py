"""On-call through the real ``airflow dags test``: a failing gate reaches a person once (a
local SMTP server) and is not retried; a transient database error is retried and passes.

Small world (500 users, 200 articles a day, three clean days before D), like the DAG's
end-to-end test; each test stops the run early (the gate, or by marking the heavy tasks
successful) so the pair runs in about the time of one night.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipelines.core import db
from pipelines.local.airflow import airflow_env
from pipelines.warehouse import simulator
from tests.helpers import query
from tests.integration.test_quality import EXPECTED_FAILURE
from tests.smtp_inbox import smtp_inbox

START = date(2026, 6, 1)
D = START + timedelta(days=3)  # three clean days before it
LOGICAL = f"{D + timedelta(days=1)}T02:00:00+00:00"  # the interval [D 02:00, D+1 02:00) is day D
FAULT = "null-dwell"
# everything after the raw gate: the transient test checks ingest's retry and the gate after it
LATER_TASKS = (
    "features|quality_gate|materialize|drift_check|retrain_checker|train|skip_training|business_metrics"
    "|start_experiment|decide_experiments|score_and_publish|report"
)


def _seed_history() -> None:
    cfg = simulator.SimConfig.from_params(users=500, articles_per_day=200, start=START, seed=3)
    simulator.seed(cfg, 3)


def _dags_test(env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra, **airflow_env()}  # the metadata database: a migrated copy (airflow_db)
    airflow = str(Path(sys.executable).parent / "airflow")
    return subprocess.run([airflow, "dags", "test", "newsrec_nightly", LOGICAL, *args], env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip


def _task_tries() -> dict[str, tuple[str, int]]:
    """(state, try number) of each task of the newest run of the nightly DAG."""
    with db.transaction(f"{db.main_database_name()}_airflow") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT task_id, state, try_number FROM task_instance WHERE run_id = "
            "(SELECT run_id FROM dag_run WHERE dag_id = 'newsrec_nightly' ORDER BY id DESC LIMIT 1)"
        )
        return {task: (state, tries) for task, state, tries in cur.fetchall()}


@pytest.mark.slow
def test_a_failing_gate_sends_one_email_and_is_not_retried(fresh_db, airflow_db):
    airflow_db()
    _seed_history()
    simulator.simulate_day(D, [FAULT])  # loaded upstream with reads missing their dwell
    check = EXPECTED_FAILURE[FAULT]
    with smtp_inbox() as inbox:
        proc = _dags_test({"NEWSREC_ALERT_URL": inbox.url}, "--conf", json.dumps({"ingest": "warehouse"}))
    log = proc.stdout[-3000:] + proc.stderr[-3000:]
    tries = _task_tries()
    assert tries["ingest"] == ("success", 1), log
    assert tries["raw_gate"] == ("failed", 1), log  # GateFailed: failed at once, although retries=2
    assert tries["features"][0] == "upstream_failed" and tries["report"][0] == "success"
    # exactly one message, although the gate's notice and the failure callback both raised it
    assert len(inbox.messages) == 1, inbox.texts()
    (text,) = inbox.texts()
    report = Path(os.environ["NEWSREC_HOME"]).resolve() / "reports" / "nightly" / D.isoformat() / "report.html"
    assert text.startswith(f"[newsrec] gate raw_gate failed for {D}"), text
    assert f"date:   {D}" in text and check in text and report.as_uri() in text
    assert "run:    newsrec_nightly manual__" in text and "try 1" in text
    assert report.exists()  # the report task ran after the failure (trigger rule all_done)
    rows = query("SELECT task, kind, try_number, raised, notified FROM ops.alerts WHERE logical_date = %s", (D,))
    assert rows == [("raw_gate", "gate", 1, 2, "sent")]


@pytest.mark.slow
def test_a_transient_database_error_is_retried_and_the_task_succeeds(fresh_db, airflow_db, tmp_path):
    airflow_db()
    _seed_history()
    faults = {
        "NEWSREC_FAULT": "drop:stage:ingest",  # the server ends ingest's session once
        "NEWSREC_FAULT_DIR": str(tmp_path),
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1",
    }
    with smtp_inbox() as inbox:
        proc = _dags_test({**faults, "NEWSREC_ALERT_URL": inbox.url}, "--mark-success-pattern", LATER_TASKS)
    log = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "stage:ingest.dropped").exists(), log  # the fault did fire
    tries = _task_tries()
    assert tries["ingest"] == ("success", 2), log
    assert tries["raw_gate"] == ("success", 1), log
    assert query("SELECT count(*) > 0 FROM warehouse.events WHERE event_ts::date = %s", (D,)) == [(True,)]
    assert inbox.messages == [] and query("SELECT count(*) FROM ops.alerts") == [(0,)]  # a retry is no alert
