"""The real ``newsrec`` command in a subprocess: help, bad input, one-line errors."""

from pathlib import Path

import pytest

from tests.helpers import query, run_cli

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "mind_small"


def _no_traceback(proc):
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


def test_help_lists_commands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for group in ("db", "warehouse"):
        assert group in proc.stdout
    for sub in (("db", "--help"), ("warehouse", "seed", "--help"), ("warehouse", "import-mind", "--help")):
        assert run_cli(*sub).returncode == 0


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("warehouse", "seed", "--no-such-flag"), "No such option"),
        (("warehouse", "simulate-day", "--date", "2026-13-45"), "Invalid value for '--date'"),
        (("warehouse", "seed", "--users", "3"), "Invalid value for '--users'"),
        (("warehouse", "simulate-day"), "Missing option '--date'"),
        (("model", "promote", "3"), "Missing option '--reason'"),  # a manual promotion is an override
    ],
)
def test_bad_arguments_exit_2_without_traceback(args, fragment):
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert fragment in proc.stderr
    _no_traceback(proc)


def test_unreachable_database_is_one_line(tmp_path):
    env = {
        "NEWSREC_DATABASE_URL": "postgresql://nobody:secret@127.0.0.1:1/nowhere",
        "NEWSREC_HOME": str(tmp_path),
    }
    proc = run_cli("warehouse", "summary", env=env)
    assert proc.returncode == 1
    _no_traceback(proc)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("newsrec: error: cannot connect")
    assert "secret" not in proc.stderr  # the password is redacted


def test_malformed_mind_file_is_one_line_and_loads_nothing(fresh_db, tmp_path):
    folder = tmp_path / "mind"
    folder.mkdir()
    (folder / "news.tsv").write_text((SAMPLE / "news.tsv").read_text())
    (folder / "behaviors.tsv").write_text("1\tU1\tnot a time\t\tN1001-1\n")
    proc = run_cli("warehouse", "import-mind", str(folder), env={"NEWSREC_DATABASE_URL": fresh_db})
    assert proc.returncode == 1
    _no_traceback(proc)
    assert proc.stderr.strip() == (
        f"newsrec: error: {folder / 'behaviors.tsv'}:1: bad time 'not a time' (expected %m/%d/%Y %I:%M:%S %p)"
    )
    assert query("SELECT count(*) FROM warehouse.articles") == [(0,)]


def test_seed_simulate_and_summary_through_the_cli(fresh_db):
    env = {"NEWSREC_DATABASE_URL": fresh_db}
    proc = run_cli(
        "warehouse",
        "seed",
        "--users",
        "200",
        "--articles-per-day",
        "80",
        "--days",
        "1",
        "--start",
        "2026-02-01",
        "--seed",
        "5",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "seeded 200 users" in proc.stdout
    proc = run_cli("warehouse", "simulate-day", "--date", "2026-02-02", "--fault", "thin-day", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "faults: thin-day" in proc.stdout
    proc = run_cli("warehouse", "summary", env=env)
    assert proc.returncode == 0
    assert "2026-02-02" in proc.stdout and "users LATAM" in proc.stdout
    proc = run_cli("warehouse", "simulate-day", "--date", "2026-02-03", "--fault", "gremlins", env=env)
    assert proc.returncode == 1
    assert proc.stderr.startswith("newsrec: error: unknown fault 'gremlins'")


def test_db_commands_against_external_url(fresh_db):
    env = {"NEWSREC_DATABASE_URL": fresh_db}
    assert run_cli("db", "migrate", env=env).stdout.strip() == "up to date"
    status = run_cli("db", "status", env=env)
    assert status.returncode == 0 and "external PostgreSQL" in status.stdout and "running" in status.stdout
    assert run_cli("db", "url", env=env).stdout.strip() == fresh_db
    stop = run_cli("db", "stop", env=env)
    assert stop.returncode == 1 and "not managed by newsrec" in stop.stderr
