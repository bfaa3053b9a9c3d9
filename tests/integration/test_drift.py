"""The drift gates on simulated drift (fixed seeds), with the real Evidently and PostgreSQL:
tastes move from a date on, and the check flags the shifted features and labels after that
date and not before; verdicts are stored and the HTML reports name the drifted columns."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from pipelines.core.errors import NewsrecError
from pipelines.gates import drift
from pipelines.warehouse import simulator
from tests.helpers import query, run_cli, simulated_world, use_database

# Feature drift needs full 28-day windows on both sides, else the windows filling up look like
# drift: reference days start on day 28 of the world.
START = date(2026, 6, 1)
DRIFT_FROM = START + timedelta(days=31)
REFERENCE = [START + timedelta(days=i) for i in (27, 28, 29)]
PRE = START + timedelta(days=30)
POST = START + timedelta(days=38)
DRIFT_CATEGORIES = ("politics", "health", "weather")


@pytest.fixture(scope="module")
def world(pg_server, migrated_template, tmp_path_factory):
    home = tmp_path_factory.mktemp("drift_home")
    sim = {"users": 300, "articles_per_day": 150, "start": START, "seed": 6, "drift_from": DRIFT_FROM}
    days = (POST - START).days + 1
    with simulated_world(pg_server, migrated_template, home, "drift_world", days, [*REFERENCE, PRE, POST], **sim) as w:
        return w


@pytest.fixture
def in_world(world, monkeypatch):
    use_database(monkeypatch, world["url"], world["home"])
    return world


def _shares(result: drift.DriftResult) -> str:
    return f"share {result.drift_share:.3f}, drifted {result.drifted_columns}"


def test_features_drift_after_the_drift_date_and_not_before(in_world):
    pre = drift.check_drift(PRE, REFERENCE)
    post = drift.check_drift(POST, REFERENCE)
    print(f"\npre-drift {PRE}: {_shares(pre)}\npost-drift {POST}: {_shares(post)}")
    shifted = {f"{drift.CATEGORY_SHARE}__{c}" for c in DRIFT_CATEGORIES}

    assert not pre.drifted and pre.drift_share < pre.share_threshold
    assert not set(pre.drifted_columns) & shifted
    assert post.drifted and post.drift_share >= post.share_threshold
    assert set(post.drifted_columns) & shifted, post.render()
    assert "user_ctr_7d" in post.drifted_columns  # readers click differently once tastes moved
    assert post.drift_share > pre.drift_share + 0.1
    # unchanged facts of the users do not drift
    assert not {"user_region", "user_is_trial", "user_tenure_days"} & set(post.drifted_columns)
    # every column carries its distance method and threshold (no p-value tests)
    assert {(c.method, c.kind) for c in post.columns} == {("wasserstein", "num"), ("jensenshannon", "cat")}
    assert all(c.threshold == 0.1 for c in post.columns)
    assert post.stats["rows"]["reference"] > post.stats["rows"]["current"] > 300


def test_verdict_is_stored_and_the_html_report_names_the_drifted_features(in_world):
    result = drift.check_drift(POST, REFERENCE)
    row = query(
        "SELECT kind, drifted, drift_share, n_drifted, reference_days, verdict, report_path "
        "FROM ops.drift_latest WHERE logical_date = %s AND kind = 'features'",
        (POST,),
    )[0]
    kind, drifted, share, n_drifted, reference_days, verdict, report_path = row
    assert (kind, drifted, n_drifted) == ("features", True, len(result.drifted_columns))
    assert share == pytest.approx(result.drift_share) and reference_days == REFERENCE
    assert verdict["drifted_columns"] == result.drifted_columns
    per_column = {c["column"]: c for c in verdict["columns"]}
    assert per_column["user_ctr_7d"]["drifted"] and per_column["user_ctr_7d"]["score"] >= 0.1
    html = result.report_path.read_text()
    assert report_path == str(result.report_path) and "drift" in str(result.report_path.parent.parent)
    for column in result.drifted_columns:
        assert column in html
    # each column's distribution is drawn; its values against the row index (the rows are users) are not
    assert html.count("DATA DISTRIBUTION") >= len(verdict["columns"]) and "DATA DRIFT" not in html
    assert query("SELECT status FROM ops.runs WHERE stage = 'drift_features' ORDER BY run_id DESC LIMIT 1") == [
        ("success",)
    ]


def test_missing_reference_days_warn_and_none_is_an_error(in_world):
    result = drift.check_drift(PRE, [*REFERENCE, START + timedelta(days=3)])  # day 3 was never built
    assert any("no data for reference day(s)" in w for w in result.warnings)
    assert result.reference_days == REFERENCE
    with pytest.raises(NewsrecError, match="needs at least 1 reference day"):
        drift.check_drift(PRE, [START + timedelta(days=3)])


def test_cli_exit_codes(in_world):
    args = ("--reference-from", REFERENCE[0].isoformat(), "--reference-to", REFERENCE[-1].isoformat())
    proc = run_cli("check", "drift", "--date", POST.isoformat(), "--kind", "features", *args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "DRIFTED" in proc.stdout and "user_ctr_7d" in proc.stdout and "report:" in proc.stdout
    # the quiet day in-process (the subprocess above already proved the real entry point)
    from typer.testing import CliRunner

    from pipelines.cli import app

    outcome = CliRunner().invoke(app, ["check", "drift", "--date", PRE.isoformat(), "--kind", "features", *args])
    assert outcome.exit_code == 0, outcome.output
    assert "ok (0 of" in outcome.output


def test_drift_compares_only_the_columns_the_profile_has(in_world):
    """A source without dwell or regions (MIND): no dwell columns, no per-category dwell shares,
    no region column, and the label drift compares the clicks only."""
    from pipelines.warehouse.profile import FULL

    mind_like = FULL.with_parts(source="mind", dwell=False, regions=False, positions_known=False)
    features = drift.check_drift(POST, REFERENCE, profile=mind_like)
    compared = {c.column for c in features.columns}
    assert compared and not [c for c in compared if "dwell" in c or "region" in c]
    assert {"user_ctr_7d", "user_reads_7d", "user_tenure_days"} <= compared
    assert features.stats["data_profile"].startswith("mind: no dwell")
    target = drift.check_target_drift(POST, REFERENCE, profile=mind_like)
    assert {c.column for c in target.columns} == {"clicked"}
    assert "read_dwell_s" not in target.report_path.read_text()


def test_a_sampled_day_builds_the_rows_sampling_the_whole_frames_keeps(in_world, monkeypatch, tmp_path):
    """The feature gate draws its sample before it builds rows (a seed-scale day is millions of
    them): the same rows in the same order as sampling the whole days' frames, the same share
    columns; the stored stats and the report say the statistics saw a sample."""
    import pandas as pd
    import yaml

    from pipelines.core.config import PROJECT_ROOT, reset_caches
    from pipelines.gates.drift import compare, features
    from pipelines.warehouse.profile import FULL

    data = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    data["drift"]["sample_rows"] = 200
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("NEWSREC_PARAMS_FILE", str(tmp_path / "params.yaml"))
    reset_caches()
    current, reference, known, sizes = features._sampled_frames(POST, REFERENCE, FULL)
    whole = {"current": drift.feature_frame(POST, FULL)}
    whole["reference"] = pd.concat([drift.feature_frame(d, FULL) for d in REFERENCE], ignore_index=True)
    assert sizes == {side: len(frame) for side, frame in whole.items()} and sizes["current"] > 200
    shares = sorted({c for frame in whole.values() for c in frame.columns if c.startswith(drift.CATEGORY_SHARE)})
    assert sorted(f"{drift.CATEGORY_SHARE}__{c}" for c in known) == shares
    numeric, categorical, _ = features.columns(FULL)
    order, fill = [*numeric, *categorical, *shares], dict.fromkeys(shares, 0.0)
    for side, built in (("current", current), ("reference", reference)):
        expected = compare.sample(whole[side].reindex(columns=order).fillna(fill), 200, int(data["drift"]["seed"]))
        pd.testing.assert_frame_equal(built.reindex(columns=order).fillna(fill), expected, check_exact=True)
    result = drift.check_drift(POST, REFERENCE, profile=FULL)
    assert result.stats["rows"] == sizes and result.stats["sampled"] == {"current": 200, "reference": 200}
    assert f"seeded sample (seed {data['drift']['seed']}" in result.report_path.read_text()


# Labels need volume: with ~100 clicks a day the dwell distribution of one day is too noisy for
# a distance threshold, so the target check gets its own, busier (and shorter) world.
T_START = date(2026, 8, 3)
T_DRIFT = T_START + timedelta(days=5)


@pytest.fixture
def busy_world(fresh_db):
    cfg = simulator.SimConfig.from_params(users=3000, articles_per_day=100, start=T_START, seed=9, drift_from=T_DRIFT)
    simulator.seed(cfg, 8)
    return fresh_db


def test_target_drift_after_the_drift_date_and_not_before(busy_world):
    reference = [T_START + timedelta(days=i) for i in range(3)]
    pre = drift.check_target_drift(T_START + timedelta(days=3), reference)
    post = drift.check_target_drift(T_START + timedelta(days=7), reference)
    print(f"\ntarget pre: {pre.scores}\ntarget post: {post.scores}")
    assert not pre.drifted and pre.drifted_columns == []
    assert post.drifted and sorted(post.drifted_columns) == ["clicked", "read_dwell_s"]
    labels = post.stats["labels"]
    assert labels["ctr_relative_change"] < -0.1  # drifted readers click less
    assert labels["current"]["mean_dwell_s"] < min(s["mean_dwell_s"] for s in labels["reference"].values())
    assert {c.column for c in post.columns} == {"clicked", "read_dwell_s"}
    assert "read_dwell_s" in post.report_path.read_text()
    assert query("SELECT count(*) FROM ops.drift_results WHERE kind = 'target'") == [(2,)]


def test_score_drift_is_stored_with_a_report(fresh_db):
    import numpy as np

    rng = np.random.default_rng(3)
    result = drift.check_score_drift(T_START, rng.normal(0.8, 1, 5000), rng.normal(0, 1, 5000))
    assert result.kind == "scores" and result.drifted and result.drifted_columns == ["score"]
    assert query("SELECT kind, drifted FROM ops.drift_results") == [("scores", True)]
    assert result.report_path.exists()
