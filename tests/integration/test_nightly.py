"""Idempotence of the nightly run: re-running a date and backfilling dates leave the same
serving rows and ops verdicts as single nightly runs.

The backfill goes through the ``newsrec backfill`` command (typer's test runner, in this
process: what is tested is the command and the loop behind it, not a fresh interpreter's
imports)."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.features.build import backfill
from pipelines.nightly import runner
from tests.helpers import admin_sql, query, simulated_world, use_database

START = date(2026, 7, 1)
HISTORY = 7
D1 = START + timedelta(days=HISTORY)
DAYS = [D1, D1 + timedelta(days=1)]  # a first night (no champion: full training) and one after it
OPTIONS = {"trials": 1, "minutes": 1}


@pytest.fixture(scope="module")
def history(pg_server, migrated_template, tmp_path_factory) -> dict:
    """The seeded warehouse and its features up to the day before D1, built once; each run
    below starts from a copy (database and home)."""
    home = tmp_path_factory.mktemp("nightly_history") / "home"
    with simulated_world(pg_server, migrated_template, home, "nightly_history", HISTORY,
                         **{"users": 400, "articles_per_day": 160, "start": START, "seed": 8}):  # fmt: skip
        backfill(START, D1 - timedelta(days=1))
    return {"name": "nightly_history", "home": home}


def _world(pg_server, history, name, home, mp):
    """A copy of the history: a database cloned from it and its home copied; the environment points at it."""
    admin_sql(pg_server, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{history['name']}'")
    admin_sql(pg_server, f"CREATE DATABASE {name} TEMPLATE {history['name']}")
    shutil.copytree(history["home"], home, symlinks=True)
    use_database(mp, pg_server.format(db=name), home)


def _state() -> dict:
    live = query(
        "SELECT r.user_id, r.rank, r.article_id, round(r.score::numeric, 5), r.reason FROM serving.recommendations r "
        "JOIN serving.live l USING (batch_id) ORDER BY 1, 2"
    )
    fallback = query(
        "SELECT f.region, f.rank, f.article_id FROM serving.fallback_recommendations f "
        "JOIN serving.live l USING (batch_id) ORDER BY 1, 2"
    )
    per_day = query(
        "SELECT b.data_date, b.model_version, b.n_users, b.n_rows FROM serving.batches b "
        "WHERE b.status IN ('complete', 'retired') AND b.batch_id = (SELECT max(batch_id) FROM serving.batches x "
        "WHERE x.data_date = b.data_date AND x.status IN ('complete', 'retired')) ORDER BY 1"
    )
    retrain = query(
        "SELECT logical_date, retrain, mode, champion_version, reasons FROM ops.retrain_decisions ORDER BY 1"
    )
    quality = query(
        "SELECT logical_date, stage, passed, n_checks, n_critical_failed, n_warning_failed FROM ops.quality_latest "
        "ORDER BY 1, 2"
    )
    drift = query(
        "SELECT logical_date, kind, round(drift_share::numeric, 6), drifted, reference_days FROM ops.drift_latest "
        "ORDER BY 1, 2"
    )
    champion = query(
        "SELECT challenger_version FROM ops.model_decisions WHERE promoted ORDER BY decision_id DESC LIMIT 1"
    )
    return {"live": live, "fallback": fallback, "batches": per_day, "retrain": retrain, "quality": quality,
            "drift": drift, "champion": champion}  # fmt: skip


@pytest.fixture(scope="module")
def single_runs(pg_server, history, tmp_path_factory):
    """The reference: each date run once, in order."""
    with pytest.MonkeyPatch.context() as mp:
        _world(pg_server, history, "nightly_single", tmp_path_factory.mktemp("single") / "home", mp)
        for day in DAYS:
            runner.run_day(day, **OPTIONS)
        return _state()


def test_rerun_and_backfill_match_single_runs(single_runs, pg_server, history, tmp_path, monkeypatch):
    _world(pg_server, history, "nightly_backfill", tmp_path / "home", monkeypatch)
    # a backfill of every date through the CLI, then the last date again
    args = ["backfill", "--from", str(DAYS[0]), "--to", str(DAYS[-1]), "--ingest", "simulate", "--trials", "1",
            "--minutes", "1"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, f"{result.output[-3000:]}\n{result.exception!r}"
    assert result.stdout.count("batch ") == len(DAYS)
    runner.run_day(DAYS[-1], **OPTIONS)
    state = _state()
    assert state["live"] and state["live"] == single_runs["live"]
    for key in ("fallback", "batches", "retrain", "quality", "drift", "champion"):
        assert state[key] == single_runs[key], key
    # the re-run published a new batch with the same rows; exactly one batch is live
    assert query("SELECT count(*) FROM serving.live WHERE batch_id IS NOT NULL") == [(1,)]
    assert (
        query("SELECT count(*) FROM serving.batches WHERE data_date = %s AND status <> 'failed'", (DAYS[-1],))[0][0]
        == 2
    )
