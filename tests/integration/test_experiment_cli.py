"""``newsrec experiment create|show|stop`` through the real CLI, against the real PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from pipelines.experiments.arms import serving_plan
from tests.helpers import query, run_cli

DAY = date(2026, 1, 6)


def _one_line_error(proc, fragment: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    # (MLflow may log its own migrations on first use; our error is exactly one line)
    lines = [line for line in proc.stderr.strip().splitlines() if "mlflow" not in line]
    assert len(lines) == 1 and lines[0].startswith("newsrec: error:") and fragment in lines[0], proc.stderr


def test_create_show_stop(fresh_db):
    from pipelines.warehouse import simulator

    simulator.seed(simulator.SimConfig.from_params(users=1000, articles_per_day=50, start=DAY, seed=1), 1)
    env = {"NEWSREC_DATABASE_URL": fresh_db}
    assert run_cli("experiment", "list", env=env).stdout.strip() == "no experiments yet"
    proc = run_cli("experiment", "create", "pilot-pop", "--popularity-share", "0.2", "--cohort-size", "300", env=env)
    try:
        assert proc.returncode == 0, proc.stderr
        assert "popularity" in proc.stdout and "0.20" in proc.stdout and "0.80" in proc.stdout
        (users,) = query("SELECT count(*) FROM warehouse.users")[0]
        assert query("SELECT status, cohort_size, cohort_share, salt FROM ops.experiments") == [
            ("running", 300, 300 / users, "pilot-pop")
        ]
        plan = serving_plan(DAY)
        assert plan is not None and [(a.name, a.share) for a in plan.arms] == [("popularity", 0.2), ("champion", 0.8)]
        ids = np.arange(1, users + 1)
        inside = plan.in_cohort(ids)
        assert abs(inside.sum() - 300) < 4 * np.sqrt(users * 0.5 * 0.5)
        assert (plan.assign(ids)[~inside] == "champion").all()

        # a second running experiment, unknown versions and bad shares are refused in one line
        _one_line_error(
            run_cli("experiment", "create", "second", "--popularity-share", "0.1", env=env), "already running"
        )
        _one_line_error(
            run_cli("experiment", "create", "ghost", "--challenger", "987", env=env), "unknown model version '987'"
        )
        _one_line_error(
            run_cli("experiment", "create", "bad", "--popularity-share", "0.3", "--champion-share", "0.6", env=env),
            "sum to 0.9, not 1",
        )
        assert query("SELECT count(*) FROM ops.experiments") == [(1,)]

        shown = run_cli("experiment", "show", env=env)
        assert shown.returncode == 0 and "pilot-pop" in shown.stdout and "running" in shown.stdout
        assert "300 users asked" in shown.stdout
    finally:
        stopped = run_cli("experiment", "stop", "pilot-pop", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert serving_plan(DAY) is None  # the next publish serves the champion to everyone
    assert query("SELECT status, stop_reason FROM ops.experiments") == [("stopped", "stopped by hand")]
    assert query("SELECT DISTINCT status FROM ops.experiment_arms") == [("ended",)]
    _one_line_error(run_cli("experiment", "stop", "pilot-pop", env=env), "is not running (it is stopped)")
    _one_line_error(run_cli("experiment", "show", "nope", env=env), "no experiment 'nope'")
    shown = run_cli("experiment", "show", "pilot-pop", env=env)
    assert "stopped" in shown.stdout
    listed = run_cli("experiment", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    (line,) = listed.stdout.strip().splitlines()
    assert line.split()[:3] == ["1", "pilot-pop", "stopped"] and "popularity:0.20:ended" in line, line


def test_the_dag_param_starts_one_experiment_idempotently(fresh_db):
    from pipelines.nightly import stages
    from pipelines.warehouse import simulator

    simulator.seed(simulator.SimConfig.from_params(users=200, articles_per_day=50, start=DAY, seed=1), 1)
    assert stages.start_experiment(DAY, []) == {"started": False}  # no param: nothing
    first = stages.start_experiment(DAY, [], popularity_share=0.3, cohort_size=100)
    assert first["started"] is True and first["experiment"] == f"{DAY}-vpopularity"
    assert serving_plan(DAY - timedelta(days=1)) is None and serving_plan(DAY) is not None  # from D's publish
    assert stages.start_experiment(DAY, [], popularity_share=0.3) == {
        "started": False, "experiment": first["experiment"], "status": "running"
    }  # fmt: skip
    refused = stages.start_experiment(DAY + timedelta(days=1), [], popularity_share=0.1)
    assert refused["started"] is False and "already running" in refused["refused"]
    unknown = stages.start_experiment(DAY + timedelta(days=1), ["12345"])
    assert unknown["started"] is False and "unknown model version '12345'" in unknown["refused"]
    assert query("SELECT count(*) FROM ops.experiments") == [(1,)]


def test_simulate_prints_both_rules_and_json():
    """`newsrec experiment simulate` on a tiny setting: no database, both rules, one table."""
    import json

    from typer.testing import CliRunner

    from pipelines.cli import app

    proc = run_cli("experiment", "simulate", "--experiments", "12", "--nights", "4", "--users", "600",
                   "--lift", "0.5", "--share-steps", "0.5,1.0")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = {cells[0]: cells for cells in map(str.split, proc.stdout.splitlines()) if cells[:1] in (["new"], ["old"])}
    assert set(rows) == {"new", "old"} and "12 simulated experiments x 4 nights" in proc.stdout, proc.stdout
    assert int(rows["new"][1]) + int(rows["new"][5]) + int(rows["new"][6]) == 12  # promoted + demoted + undecided
    out = CliRunner().invoke(app, ["experiment", "simulate", "--experiments", "5", "--nights", "3", "--users", "400",
                                   "--rule", "new", "--json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert [r["rule"] for r in data["rules"]] == ["new"] and data["rules"][0]["experiments"] == 5
    test = data["test"]  # params.yaml's defaults, as a new experiment stores them
    assert (test["alpha"], test["spending"], test["horizon_days"]) == (0.04, "obrien_fleming", 11)
    assert len(data["rules"][0]["promoted_by_night"]) == 3
    bad = CliRunner().invoke(app, ["experiment", "simulate", "--rule", "both-ways", "--experiments", "1"])
    assert bad.exit_code != 0 and "--rule must be new, old or both" in str(bad.exception)
