"""The quality gate on simulator data, with the real Great Expectations and PostgreSQL: a clean
day passes, each injected fault fails the right expectation at the right severity, results and
Data Docs are stored, and the CLI exits with the code a scheduler acts on."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipelines.core.config import get_settings, reset_caches
from pipelines.core.errors import NewsrecError
from pipelines.features import partitions
from pipelines.gates.quality import check_features, check_quality, check_raw
from pipelines.warehouse import simulator
from tests.helpers import query, run_cli, simulated_world, use_database

START = date(2026, 5, 4)
DAY = START + timedelta(days=4)


@pytest.fixture(scope="module")
def world(pg_server, migrated_template, tmp_path_factory):
    """Five clean days with features built for the last one (shared, read-only)."""
    home = tmp_path_factory.mktemp("quality_home")
    sim = {"users": 300, "articles_per_day": 150, "start": START, "seed": 21}
    with simulated_world(pg_server, migrated_template, home, "quality_world", 5, [DAY], **sim) as w:
        return w


@pytest.fixture
def in_world(world, monkeypatch):
    use_database(monkeypatch, world["url"], world["home"])
    return world


def _seed_with_fault(fault: str) -> date:
    """Three clean days, then a fourth day with ``fault``; returns the faulty day."""
    cfg = simulator.SimConfig.from_params(users=200, articles_per_day=60, start=START, seed=5)
    simulator.seed(cfg, 3)
    day = START + timedelta(days=3)
    simulator.simulate_day(day, [fault])
    return day


def test_clean_day_passes_both_stages_and_is_stored(in_world):
    results = check_quality(DAY, "all")
    assert [r.stage for r in results] == ["raw", "features"]
    for result in results:
        assert result.passed, result.render()
        assert result.failed() == [], result.render()
        assert result.counts["checks"] == result.counts["succeeded"] > 10
    raw, features = results
    assert raw.runtime == {} and features.runtime["users_signed_up"] > 300
    # stored: one result per stage, one row per check, the latest view, the run bookkeeping
    rows = query(
        "SELECT stage, passed, n_checks, suite_version, report_path FROM ops.quality_latest WHERE logical_date = %s "
        "ORDER BY stage",
        (DAY,),
    )
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("features", True, features.counts["checks"], "features-2"),
        ("raw", True, raw.counts["checks"], "raw-2"),
    ]
    (n_checks,) = query("SELECT count(*) FROM ops.quality_checks WHERE result_id = %s", (raw.result_id,))[0]
    assert n_checks == raw.counts["checks"]
    statuses = query("SELECT stage, status FROM ops.runs WHERE stage LIKE 'quality_%%' ORDER BY run_id")
    assert statuses[-2:] == [("quality_raw", "success"), ("quality_features", "success")]
    # Data Docs: one site per day whose index links this run's page of every asset
    site = get_settings().reports_dir / "quality" / DAY.isoformat()
    assert raw.report_path == site / "index.html" and raw.report_path.exists()
    index = raw.report_path.read_text()
    assert set(features.pages) == {"user_activity", "user_category", "article_engagement", "article_attributes"}
    for page in [*raw.pages.values(), *features.pages.values()]:
        assert Path(page).exists()
        assert str(Path(page).relative_to(site)) in index


EXPECTED_FAILURE = {
    "null-dwell": "raw_events.read_dwell_present",
    "negative-dwell": "raw_events.read_dwell_positive",
    "duplicates": "raw_events.event_id_unique",
    "unknown-articles": "raw_events.article_known",
    "thin-day": "raw_day.articles_in_band",
}


@pytest.mark.parametrize("fault", sorted(EXPECTED_FAILURE))
def test_each_fault_fails_exactly_its_critical_expectation(fresh_db, fault):
    day = _seed_with_fault(fault)
    result = check_raw(day)
    assert not result.passed
    failed = result.failed()
    assert [(o.name, o.severity) for o in failed] == [(EXPECTED_FAILURE[fault], "critical")], result.render()
    outcome = failed[0]
    assert outcome.examples, "a failure comes with examples"
    if fault == "null-dwell":
        assert all(e["dwell_seconds"] is None and e["event_id"] for e in outcome.examples)
        assert 2 < outcome.unexpected_percent < 7  # the simulator nulls ~5% of reads
    elif fault == "negative-dwell":
        assert all(e["dwell_seconds"] < 0 for e in outcome.examples)
    elif fault == "duplicates":
        repeated = query(
            "SELECT event_id FROM warehouse.events WHERE event_ts >= %s AND event_ts < %s "
            "GROUP BY event_id HAVING count(*) > 1",
            (day, day + timedelta(days=1)),
        )
        assert {e["event_id"] for e in outcome.examples} <= {r[0] for r in repeated}
    elif fault == "unknown-articles":
        assert all(e["article_id"] >= simulator.UNKNOWN_ARTICLE_BASE for e in outcome.examples)
    elif fault == "thin-day":
        (example,) = outcome.examples
        assert example["articles_ratio"] == pytest.approx(5 / 60)
    stored = query(
        "SELECT check_name, severity, examples FROM ops.quality_checks WHERE result_id = %s AND NOT success",
        (result.result_id,),
    )
    assert [(n, s) for n, s, _ in stored] == [(EXPECTED_FAILURE[fault], "critical")]
    assert len(stored[0][2]) == len(outcome.examples)


def test_warnings_let_the_gate_pass(fresh_db, tmp_path, monkeypatch):
    """No article history and overly long reads only warn."""
    with open(get_settings().params_file) as fh:
        data = yaml.safe_load(fh)
    data["quality"]["raw"]["article_history_days"] = 0  # nothing to compare the article count with
    data["quality"]["raw"]["dwell_max_s"] = 60  # many simulated reads last longer
    custom = tmp_path / "params.yaml"
    custom.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("NEWSREC_PARAMS_FILE", str(custom))
    reset_caches()
    cfg = simulator.SimConfig.from_params(users=200, articles_per_day=60, start=START, seed=5)
    simulator.seed(cfg, 2)
    result = check_raw(START + timedelta(days=1))
    assert result.passed, result.render()
    assert sorted((o.name, o.severity) for o in result.failed()) == [
        ("raw_day.article_history", "warning"),
        ("raw_events.read_dwell_at_most_max", "warning"),
    ]
    assert result.counts["warning_failed"] == 2 and result.counts["critical_failed"] == 0
    assert result.params["dwell_max_s"] == 60
    assert "WARNING  raw_day.article_history" in result.render()


def test_day_without_events_fails_freshness(fresh_db):
    cfg = simulator.SimConfig.from_params(users=200, articles_per_day=60, start=START, seed=5)
    simulator.seed(cfg, 2)
    result = check_raw(START + timedelta(days=5))
    names = {o.name for o in result.failed("critical")}
    assert "raw_day.has_events" in names and not result.passed


def test_features_gate_catches_a_broken_partition(in_world):
    path = partitions.view_path("user_activity", DAY)
    saved = path.read_bytes()
    frame = pd.read_parquet(path)
    broken = frame.iloc[2:].copy()  # two users lost
    broken.loc[broken.index[:3], "user_ctr_7d"] = 1.5  # more reads than impressions
    broken.loc[broken.index[3], "user_dwell_28d_s"] = -10.0
    broken.loc[broken.index[4], "user_region"] = None  # text read as a categorical: its null still counts
    broken.loc[broken.index[5], "user_reads_7d"] = None  # an int column with a null (read as float64)
    partitions.write_parquet_atomic(broken, path)
    try:
        result = check_features(DAY)
    finally:
        path.write_bytes(saved)
    failed = {o.name: o for o in result.failed()}
    assert set(failed) == {
        "user_activity.row_count",
        "user_activity.user_ctr_7d_range",
        "user_activity.user_dwell_28d_s_range",
        "user_activity.user_region_not_null",
        "user_activity.user_reads_7d_not_null",
    }, result.render()
    assert all(o.severity == "critical" for o in failed.values()) and not result.passed
    assert failed["user_activity.row_count"].observed == len(frame) - 2
    assert failed["user_activity.row_count"].expected == {"value": len(frame)}
    assert {e["user_ctr_7d"] for e in failed["user_activity.user_ctr_7d_range"].examples} == {1.5}
    assert failed["user_activity.user_region_not_null"].unexpected_count == 1
    assert [e["user_id"] for e in failed["user_activity.user_reads_7d_not_null"].examples] == [
        int(broken["user_id"].iloc[5])
    ]


def test_features_of_a_missing_day_are_a_clear_error(in_world):
    with pytest.raises(NewsrecError, match="features for .* are missing"):
        check_features(DAY + timedelta(days=30))


def test_cli_exit_codes(in_world, fresh_db, monkeypatch):
    """0 on a clean day, 1 with the failing expectation and examples on a faulty one."""
    faulty = _seed_with_fault("duplicates")
    proc = run_cli("check", "quality", "--date", faulty.isoformat(), "--stage", "raw")
    assert proc.returncode == 1, proc.stderr
    assert "quality raw" in proc.stdout and "FAILED" in proc.stdout
    assert "CRITICAL raw_events.event_id_unique" in proc.stdout and "e.g." in proc.stdout
    assert "Traceback" not in proc.stderr

    # the clean day in-process (the subprocess above already proved the real entry point)
    from typer.testing import CliRunner

    from pipelines.cli import app

    use_database(monkeypatch, in_world["url"], in_world["home"])
    outcome = CliRunner().invoke(app, ["check", "quality", "--date", DAY.isoformat()])
    assert outcome.exit_code == 0, outcome.output
    assert outcome.output.count("PASSED") == 2


def test_a_no_dwell_profile_marks_the_dwell_checks_not_applicable(fresh_db):
    """Reads without dwell fail the full profile (test above); a clicks-only source is not judged on dwell."""
    from pipelines.nightly.report import collect
    from pipelines.warehouse import profile

    cfg = simulator.SimConfig.from_params(users=200, articles_per_day=60, start=START, seed=5)
    simulator.seed(cfg, 3)
    day = START + timedelta(days=2)
    query("UPDATE warehouse.events SET dwell_seconds = NULL")
    profile.store({"source": "clicks-only", "dwell": False})
    result = check_raw(day)
    assert result.passed and result.failed() == [], result.render()
    dwell_checks = [
        "raw_events.read_dwell_at_most_max",
        "raw_events.read_dwell_positive",
        "raw_events.read_dwell_present",
    ]
    assert sorted(o.name for o in result.not_applicable) == dwell_checks
    assert result.counts["checks"] == result.counts["succeeded"] == len(result.outcomes) - 3
    assert "N/A      raw_events.read_dwell_present: not applicable: the source (clicks-only) lacks dwell" in (
        result.render()
    )
    stored = query(
        "SELECT check_name, success, status, note FROM ops.quality_checks WHERE result_id = %s AND success IS NULL "
        "ORDER BY 1",
        (result.result_id,),
    )
    assert [(n, s, st) for n, s, st, _ in stored] == [(n, None, "not applicable") for n in dwell_checks]
    assert all(note.endswith("lacks dwell") for *_, note in stored)
    latest = query(
        "SELECT n_checks, n_not_applicable, profile->>'source', (profile->>'dwell')::boolean FROM ops.quality_latest "
        "WHERE logical_date = %s AND stage = 'raw'",
        (day,),
    )
    assert latest == [(result.counts["checks"], 3, "clicks-only", False)]
    details = query("SELECT details->>'not_applicable', details->>'profile' FROM ops.runs WHERE run_id = %s",
                    (result.run_id,))  # fmt: skip
    assert details == [("3", "clicks-only")]
    (section,) = [s for s in collect(day) if s.title == "Quality gate"]
    assert "not applicable" in section.headers
    assert [r[: section.headers.index("report")] for r in section.rows] == [
        ["raw", True, result.counts["checks"], 0, 0, 3]
    ]
    assert section.note == ""  # not applicable is not a failure


def test_cold_start_band_checks_only_warn(fresh_db):
    """The second day of a new warehouse: a thin day outside the band warns ("not enough history")
    and the gate passes; with enough history the same fault fails it (the thin-day case above)."""
    cfg = simulator.SimConfig.from_params(users=200, articles_per_day=60, start=START, seed=5)
    simulator.seed(cfg, 1)
    first = check_raw(START)
    assert first.passed and first.failed() == [], first.render()  # one earlier day (the lead-in), in band
    day = START + timedelta(days=1)
    simulator.simulate_day(day, ["thin-day"])
    result = check_raw(day)
    assert result.passed, result.render()
    (band,) = result.failed()
    assert (band.name, band.severity) == ("raw_day.articles_in_band", "warning")
    assert band.note.startswith("not enough history: 2 earlier day(s) with data in the last 7 (at least 3 needed)")
    assert band.examples[0]["articles_ratio"] == pytest.approx(5 / 60)
    assert "WARNING  raw_day.articles_in_band: not enough history" in result.render()
    assert result.params["min_history_days"] == 3
    stored = query(
        "SELECT severity, status, note FROM ops.quality_checks WHERE result_id = %s AND check_name = %s",
        (result.result_id, "raw_day.articles_in_band"),
    )
    assert stored == [("warning", "failed", band.note)]


def test_the_features_gate_reads_the_profile_too(in_world):
    """The shared world's profile is changed for this test only and put back."""
    from pipelines.core import db
    from pipelines.warehouse import profile

    with db.transaction() as conn:
        before = profile.load(conn)
    profile.store({"dwell": False, "regions": False})
    try:
        result = check_features(DAY)
    finally:
        with db.transaction() as conn:
            profile.save(conn, before)
    assert result.passed and result.failed() == [], result.render()
    skipped = {o.name for o in result.not_applicable}
    assert {n for n in skipped if "dwell" not in n} == {
        "user_activity.user_region_not_null",
        "user_activity.user_region_known",
    }
    assert (
        "user_activity.user_dwell_28d_s_range" in skipped
        and "user_category.user_cat_dwell_share_28d_null_share" in skipped
    )
    assert not any("dwell" in o.name or "region" in o.name for o in result.outcomes if o.success is not None)
