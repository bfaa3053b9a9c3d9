"""On-call through the real ``airflow dags test``: a failing gate reaches a person once (a
local SMTP server) and is not retried; a transient database error is retried and passes.

One run serves both tests (an ``airflow dags test`` process pays ~20 s of imports before its
first task): small world (500 users, 200 articles a day, three clean days before D), day D
loaded upstream with reads missing their dwell (``ingest: warehouse``), and the database
server ending ingest's session once. Ingest fails on its first try (transient), succeeds on
its second; the raw gate then fails on the bad day (permanent), once, with one e-mail; the
stages after it do not run and the report does.
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
from tests.helpers import admin_sql, query, use_database
from tests.integration.test_quality import EXPECTED_FAILURE
from tests.smtp_inbox import smtp_inbox

START = date(2026, 6, 1)
D = START + timedelta(days=3)  # three clean days before it
LOGICAL = f"{D + timedelta(days=1)}T02:00:00+00:00"  # the interval [D 02:00, D+1 02:00) is day D
FAULT = "null-dwell"


def _task_tries() -> dict[str, tuple[str, int]]:
    """(state, try number) of each task of the newest run of the nightly DAG."""
    with db.transaction(f"{db.main_database_name()}_airflow") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT task_id, state, try_number FROM task_instance WHERE run_id = "
            "(SELECT run_id FROM dag_run WHERE dag_id = 'newsrec_nightly' ORDER BY id DESC LIMIT 1)"
        )
        return {task: (state, tries) for task, state, tries in cur.fetchall()}


@pytest.fixture(scope="module")
def night(pg_server, migrated_template, airflow_db, tmp_path_factory) -> dict:
    """The one ``airflow dags test`` run of D and what it left: task tries, e-mails, alerts."""
    name = f"oncall{os.getpid()}"
    admin_sql(pg_server, f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
    home, faults = tmp_path_factory.mktemp("oncall_home"), tmp_path_factory.mktemp("oncall_faults")
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, pg_server.format(db=name), home)
        airflow_db()  # the metadata database: a migrated copy of the session's
        cfg = simulator.SimConfig.from_params(users=500, articles_per_day=200, start=START, seed=3)
        simulator.seed(cfg, 3)
        simulator.simulate_day(D, [FAULT])  # loaded upstream with reads missing their dwell
        # a 1 s first retry instead of 30 s: airflow_env() reads it from this process's environment
        mp.setenv("AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY", "1")
        env = {
            **os.environ,
            "NEWSREC_FAULT": "drop:stage:ingest",  # the server ends ingest's session once
            "NEWSREC_FAULT_DIR": str(faults),
        }
        airflow = str(Path(sys.executable).parent / "airflow")
        with smtp_inbox() as inbox:
            env = {**env, "NEWSREC_ALERT_URL": inbox.url, **airflow_env()}
            proc = subprocess.run(
                [airflow, "dags", "test", "newsrec_nightly", LOGICAL, "--conf", json.dumps({"ingest": "warehouse"})],
                env=env, capture_output=True, text=True, timeout=900,
            )  # fmt: skip
        yield {
            "log": proc.stdout[-3000:] + proc.stderr[-3000:],
            "dropped": (faults / "stage:ingest.dropped").exists(),
            "tries": _task_tries(),
            "texts": inbox.texts(),
            "alerts": query("SELECT task, kind, try_number, raised, notified FROM ops.alerts"),
            "events_of_d": query("SELECT count(*) FROM warehouse.events WHERE event_ts::date = %s", (D,))[0][0],
            "report": home.resolve() / "reports" / "nightly" / D.isoformat() / "report.html",
        }


@pytest.mark.slow
def test_a_failing_gate_sends_one_email_and_is_not_retried(night):
    tries, log = night["tries"], night["log"]
    assert tries["raw_gate"] == ("failed", 1), log  # GateFailed: failed at once, although retries=2
    assert tries["features"][0] == "upstream_failed" and tries["report"][0] == "success"
    # exactly one message, although the gate's notice and the failure callback both raised it
    assert len(night["texts"]) == 1, night["texts"]
    (text,) = night["texts"]
    report = night["report"]
    assert text.startswith(f"[newsrec] gate raw_gate failed for {D}"), text
    assert f"date:   {D}" in text and EXPECTED_FAILURE[FAULT] in text and report.as_uri() in text
    assert "run:    newsrec_nightly manual__" in text and "try 1" in text
    assert report.exists()  # the report task ran after the failure (trigger rule all_done)
    assert night["alerts"] == [("raw_gate", "gate", 1, 2, "sent")]


@pytest.mark.slow
def test_a_transient_database_error_is_retried_and_the_task_succeeds(night):
    assert night["dropped"], night["log"]  # the fault did fire
    assert night["tries"]["ingest"] == ("success", 2), night["log"]
    assert night["events_of_d"] > 0  # what the second try found loaded, and the gate then judged
    # a retry is no alert: the run's one alert and one e-mail are the gate's (the test above)
    assert [row[0] for row in night["alerts"]] == ["raw_gate"] and len(night["texts"]) == 1
