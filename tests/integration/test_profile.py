"""The data profile and the warehouse contract on the real PostgreSQL: no profile means the full
one, a stored one round-trips, the simulator stores the full one, inference reads a dwell-less
warehouse, and `newsrec warehouse check` names each missing required part."""

from __future__ import annotations

from datetime import date

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.core import db
from pipelines.core.errors import NewsrecError
from pipelines.warehouse import profile, simulator
from pipelines.warehouse.summary import summarize
from tests.helpers import query

START = date(2026, 5, 4)


def _seed(days: int = 1) -> None:
    cfg = simulator.SimConfig.from_params(users=200, articles_per_day=60, start=START, seed=5)
    simulator.seed(cfg, days)


def _load() -> profile.DataProfile:
    with db.transaction() as conn:
        return profile.load(conn)


def test_no_profile_is_the_full_one_and_a_stored_one_round_trips(fresh_db):
    assert _load() == profile.FULL and not _load().stored and _load().absent == []
    stored = profile.store({"source": "mind", "dwell": False, "positions_known": False}, set_by="a test")
    loaded = _load()
    assert loaded == stored and loaded.stored and loaded.set_at is not None
    assert (loaded.source, loaded.set_by, loaded.absent) == ("mind", "a test", ["dwell", "positions_known"])
    # changes apply to the stored profile; there is only ever one row
    again = profile.store({"regions": False})
    assert again.source == "mind" and again.absent == ["dwell", "regions", "positions_known"]
    assert query("SELECT count(*) FROM warehouse.profile") == [(1,)]
    assert "Data profile: source mind (set by" in summarize().render()
    # a warehouse migrated before profiles existed reads as the full profile and refuses a write
    query("DROP TABLE warehouse.profile")
    assert _load() == profile.FULL
    with pytest.raises(NewsrecError, match="run `newsrec db migrate`"):
        profile.store({"dwell": False})


def test_simulator_stores_the_full_profile_and_infer_reads_a_dwell_less_warehouse(fresh_db):
    _seed(1)
    stored = _load()
    assert (stored.source, stored.stored, stored.absent) == ("simulator", True, [])
    with db.transaction() as conn:
        assert profile.infer(conn).absent == []  # the simulator's data shows every part
    query("UPDATE warehouse.events SET dwell_seconds = NULL, position = NULL")
    query("UPDATE warehouse.publications SET trust_score = 0.5")
    with db.transaction() as conn:
        inferred = profile.infer(conn)
    assert inferred.absent == ["dwell", "publications", "positions_known"] and not inferred.stored
    assert _load().absent == []  # inferring stores nothing

    runner = CliRunner()
    out = runner.invoke(app, ["warehouse", "profile", "--infer", "--source", "team"])
    assert out.exit_code == 0, out.output
    assert "Stored data profile: source team (set by newsrec warehouse profile" in out.output
    assert (_load().source, _load().absent) == ("team", ["dwell", "publications", "positions_known"])
    out = runner.invoke(app, ["warehouse", "profile", "--dwell", "--positions", "unknown"])
    assert out.exit_code == 0 and _load().absent == ["publications", "positions_known"]
    shown = runner.invoke(app, ["warehouse", "profile"]).output
    assert "  dwell            yes" in shown and "  positions_known  no " in shown
    assert runner.invoke(app, ["warehouse", "profile", "--positions", "maybe"]).exit_code == 2


def test_check_names_each_missing_required_part(fresh_db):
    runner = CliRunner()
    empty = runner.invoke(app, ["warehouse", "check"])
    assert empty.exit_code == 1
    missing = [line.strip() for line in empty.output.splitlines() if line.startswith("  MISSING")]
    assert missing == [
        "MISSING no users in warehouse.users (nobody to recommend to)",
        "MISSING no articles in warehouse.articles (nothing to recommend)",
        "MISSING no impressions in warehouse.events (the trainer learns from impressions)",
        "MISSING no reads linked to an impression (impression_id) in warehouse.events (no click labels)",
    ]
    _seed(1)
    ok = runner.invoke(app, ["warehouse", "check"])
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("warehouse meets the contract") and "Inferred profile: source simulator" in ok.output
    assert "MISSING" not in ok.output and "differs" not in ok.output

    # a copy of the warehouse schema with a table and two columns gone
    query("ALTER TABLE warehouse.users DROP COLUMN signup_date")
    query("ALTER TABLE warehouse.events DROP COLUMN dwell_seconds")
    query("DROP TABLE warehouse.publications CASCADE")
    broken = runner.invoke(app, ["warehouse", "check"])
    assert broken.exit_code == 1
    lines = broken.output.splitlines()
    assert lines[0] == "warehouse FAILS the contract (3 missing)"
    assert [line for line in lines if line.startswith("  MISSING")] == [
        "  MISSING table warehouse.publications (required; `newsrec db migrate` creates it)",
        "  MISSING column warehouse.events.dwell_seconds (may be empty, but the SQL reads it: "
        "dwell features, dwell-graded labels, the dwell checks)",
        "  MISSING column warehouse.users.signup_date (required: the users served on D and their user features)",
    ]
    # the parts whose columns are gone are inferred absent; the stored (full) profile differs
    assert "  dwell            no " in broken.output and "  publications     no " in broken.output
    assert "the stored profile (simulator) differs on: dwell, publications" in broken.output
