"""The ops exporter (``newsrec ops exporter``) against the real PostgreSQL: a published batch,
ops.runs rows written by ``record_run`` (a success, a failure and a run killed with SIGKILL,
which no Airflow callback would report) and drift verdicts stored by the drift gate's own
``store_result``; scraped over HTTP from the real command, logged in as its own read-only
role, parsed as Prometheus text."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg2
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pipelines.core import runs
from pipelines.core.config import params
from pipelines.gates.drift.result import ColumnDrift, DriftResult
from pipelines.gates.drift.store import store_result
from pipelines.monitoring import ops_exporter
from pipelines.reader.prometheus import ReaderMetrics
from pipelines.serving import publish
from tests.helpers import ROOT, query, run_cli, simulated_world
from tests.integration.test_publish import batch_frames

START = date(2026, 5, 4)
DAY = START + timedelta(days=1)
SIM = {"users": 80, "articles_per_day": 40, "start": START, "seed": 23}


def _epoch(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def _verdict(kind: str, day: date, share: float, threshold: float) -> DriftResult:
    columns = [ColumnDrift(f"c{i}", "num", "wasserstein", 0.1, 0.3 if i < share * 4 else 0.01, i < share * 4)
               for i in range(4)]  # fmt: skip
    return DriftResult(kind, day, [day - timedelta(days=1)], share >= threshold, share, threshold, columns)


@pytest.fixture(scope="module")
def world(pg_server, migrated_template, tmp_path_factory):
    """One published batch; score_publish succeeded for START, failed for DAY, and a third run
    of it was killed mid-way; feature drift of START (calm) and DAY (drifted), target of DAY."""
    with simulated_world(pg_server, migrated_template, tmp_path_factory.mktemp("opsx"), "ops_exporter", 2, **SIM) as w:
        recs, fallback = batch_frames()
        batch = publish.publish_batch(DAY, "v-exporter", recs, fallback)
        with runs.record_run("score_publish", START):
            pass
        with pytest.raises(RuntimeError), runs.record_run("score_publish", DAY):
            raise RuntimeError("the candidate pool was empty")
        killer = (
            "import os, signal\nfrom datetime import date\nfrom pipelines.core.runs import record_run\n"
            f"with record_run('score_publish', date.fromisoformat('{DAY}')):\n    os.kill(os.getpid(), signal.SIGKILL)"
        )
        killed = subprocess.run([sys.executable, "-c", killer], cwd=ROOT, env=os.environ.copy(), timeout=120)
        assert killed.returncode == -signal.SIGKILL
        drift = params("drift")
        store_result(_verdict("features", START, 0.0, float(drift["features"]["share_threshold"])))
        store_result(_verdict("features", DAY, 0.25, float(drift["features"]["share_threshold"])))
        store_result(_verdict("target", DAY, 0.0, float(drift["target"]["share_threshold"])))
        yield {**w, "batch": batch}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_exporter(tmp_path) -> Iterator[str]:
    """The real ``newsrec ops exporter`` on a free loopback port; yields its /metrics URL."""
    port = _free_port()
    log = (tmp_path / "exporter.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "ops", "exporter", "--port", str(port)],
        cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "exporter.log").read_text()
            with contextlib.suppress(OSError):
                urllib.request.urlopen(url, timeout=5).close()
                break
            assert time.monotonic() < deadline, "the exporter did not answer within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture(scope="module")
def scraped(world, tmp_path_factory) -> dict[tuple[str, tuple], float]:
    with running_exporter(tmp_path_factory.mktemp("opsx-log")) as url:
        return _samples(urllib.request.urlopen(url, timeout=30).read().decode())


def test_the_live_batch_as_the_database_has_it(world, scraped):
    ((created, switched),) = query(
        "SELECT extract(epoch FROM b.created_at)::float8, extract(epoch FROM l.switched_at)::float8 "
        "FROM serving.live l JOIN serving.batches b USING (batch_id)"
    )
    assert scraped[("newsrec_ops_up", ())] == 1
    assert scraped[("newsrec_ops_live_batch_id", ())] == world["batch"]
    assert scraped[("newsrec_ops_live_batch_created_timestamp_seconds", ())] == pytest.approx(created)
    assert scraped[("newsrec_ops_live_switched_timestamp_seconds", ())] == pytest.approx(switched)
    assert scraped[("newsrec_ops_live_batch_data_date_timestamp_seconds", ())] == _epoch(DAY)


def test_the_nightly_outcome_survives_a_killed_task(world, scraped):
    """The killed run left a 'running' row (nothing reported it); the exporter shows the
    last success (START's) and the failure (DAY's), so "no successful nightly" can fire."""
    rows = query("SELECT logical_date, status FROM ops.runs WHERE stage = 'score_publish' ORDER BY run_id")
    assert rows == [(START, "success"), (DAY, "failed"), (DAY, "running")]
    ((success_end,),) = query(
        "SELECT extract(epoch FROM finished_at)::float8 FROM ops.runs "
        "WHERE stage = 'score_publish' AND status = 'success'"
    )
    finished = "newsrec_ops_run_last_finished_timestamp_seconds"
    logical = "newsrec_ops_run_last_logical_date_timestamp_seconds"
    success = (("stage", "score_publish"), ("status", "success"))
    failed = (("stage", "score_publish"), ("status", "failed"))
    assert scraped[(finished, success)] == pytest.approx(success_end)
    assert scraped[(finished, failed)] > scraped[(finished, success)]
    assert scraped[(logical, success)] == _epoch(START)
    assert scraped[(logical, failed)] == _epoch(DAY)
    assert not [k for k in scraped if ("status", "running") in k[1]]
    # publish_batch recorded its own run; every stage with a finished run is there.
    assert (finished, (("stage", "publish"), ("status", "success"))) in scraped


def test_the_newest_drift_verdict_per_kind_with_params_threshold(world, scraped):
    drift = params("drift")
    features, target = (("kind", "features"),), (("kind", "target"),)
    assert scraped[("newsrec_ops_drift_share", features)] == 0.25  # DAY's, not START's 0.0
    assert scraped[("newsrec_ops_drift_share_threshold", features)] == float(drift["features"]["share_threshold"])
    assert scraped[("newsrec_ops_drift_drifted", features)] == 1
    assert scraped[("newsrec_ops_drift_logical_date_timestamp_seconds", features)] == _epoch(DAY)
    assert scraped[("newsrec_ops_drift_share", target)] == 0.0
    assert scraped[("newsrec_ops_drift_share_threshold", target)] == float(drift["target"]["share_threshold"])
    assert scraped[("newsrec_ops_drift_drifted", target)] == 0
    assert not [k for k in scraped if ("kind", "scores") in k[1]]


def test_its_role_reads_five_relations_and_writes_nothing(world):
    """``newsrec_ops_exporter`` (migration 0013) may SELECT what the three queries read and
    nothing else in the catalog, holds no write privilege, and its sessions are read-only."""
    relations = query(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_%%'"
    )
    assert len(relations) > 30
    readable, writable = set(), []
    for (name,) in relations:
        for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"):
            (granted,) = query("SELECT has_table_privilege(%s, %s, %s)", (ops_exporter.EXPORTER_ROLE, name, privilege))[
                0
            ]
            if granted and privilege == "SELECT":
                readable.add(name)
            elif granted:
                writable.append((name, privilege))
    assert readable == {"ops.runs", "ops.drift_results", "ops.drift_latest", "serving.batches", "serving.live"}
    assert writable == []
    conn = ops_exporter.connect(ops_exporter.as_exporter(world["url"]))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user")
            assert cur.fetchone() == (ops_exporter.EXPORTER_ROLE,)
            for statement in ("UPDATE serving.live SET batch_id = NULL", "DELETE FROM ops.runs"):
                with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
                    cur.execute(statement)
            cur.execute("BEGIN READ WRITE")
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("UPDATE serving.live SET batch_id = NULL")
            cur.execute("ROLLBACK")
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("SELECT 1 FROM serving.recommendations LIMIT 1")
    finally:
        conn.close()
    assert query("SELECT batch_id FROM serving.live") == [(world["batch"],)]


def test_an_empty_database_and_an_unreachable_one(fresh_db, pg_server):
    """Before the first night: up, and no live batch, run or drift series (the rules' absent()
    case). A database that cannot be read: newsrec_ops_up 0 and nothing else."""
    empty = _samples(generate_latest(ops_exporter.registry(ops_exporter.as_exporter(fresh_db))).decode())
    assert empty == {("newsrec_ops_up", ()): 1.0}
    gone = _samples(generate_latest(ops_exporter.registry(pg_server.format(db="no_such_database"))).decode())
    assert gone == {("newsrec_ops_up", ()): 0.0}


def test_every_metric_the_rules_use_is_exported(scraped):
    """A renamed gauge would leave its rule silently empty: each newsrec_* series a rule reads
    is exported by the reader (after one request) or by this exporter (on a real database)."""
    text = "\n".join(p.read_text() for p in (ROOT / "monitoring" / "rules").glob("*.yml"))
    used = set(re.findall(r"\b(newsrec_[a-z0-9_]+)", text))
    assert {"newsrec_ops_drift_share", "newsrec_reader_requests_total"} <= used
    reader = ReaderMetrics()
    reader.requests.labels("GET", "/v1/health", "200").inc()
    reader.latency.labels("GET", "/v1/health", "200").observe(0.01)
    exported = {s.name for f in text_string_to_metric_families(reader.render()[0].decode()) for s in f.samples}
    exported |= {name for name, _ in scraped}
    assert used - exported == set()


def test_a_busy_port_is_a_one_line_error(fresh_db):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        proc = run_cli("ops", "exporter", "--port", str(busy.getsockname()[1]), timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "cannot listen on 127.0.0.1:" in proc.stderr and "Traceback" not in proc.stderr
