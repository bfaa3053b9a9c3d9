"""Pure parts of the data profile: which checks apply under a profile, cold-start downgrades,
results with not-applicable checks, and the warehouse contract as docs/data.md shows it."""

from __future__ import annotations

from datetime import date

import pytest

from pipelines.core.config import params
from pipelines.gates.quality import applicability, suites
from pipelines.gates.quality.gate import CheckOutcome, GateResult
from pipelines.warehouse import contract
from pipelines.warehouse.profile import FULL, PARTS, DataProfile
from tests.helpers import ROOT


def _resolve(stage: str, profile: DataProfile, history: int | None = None, min_days: int = 3):
    return applicability.resolve(suites.stage_checks(stage, params("quality")), profile, history, min_days, 7)


def test_the_full_profile_runs_every_check_unchanged():
    for stage in ("raw", "features"):
        run, skipped = _resolve(stage, FULL, history=7)
        assert skipped == [] and run == suites.stage_checks(stage, params("quality"))


def test_no_dwell_rules_out_exactly_the_dwell_checks():
    profile = FULL.with_parts(dwell=False, source="mind")
    run, skipped = _resolve("raw", profile, history=7)
    assert sorted(s.check.name for s in skipped) == [
        "raw_events.read_dwell_at_most_max",
        "raw_events.read_dwell_positive",
        "raw_events.read_dwell_present",
    ]
    assert all(s.reason == "not applicable: the source (mind) lacks dwell" for s in skipped)
    assert "raw_events.columns_present" in {c.name for c in run}  # the column must still exist
    run, skipped = _resolve("features", profile)
    names = {s.check.name for s in skipped}
    assert names and all("dwell" in n for n in names)
    assert "user_activity.user_dwell_7d_s_range" in names and "user_activity.user_ctr_7d_range" not in names
    assert not any("dwell" in c.name for c in run)


def test_each_absent_part_rules_out_its_checks():
    _, skipped = _resolve("features", FULL.with_parts(regions=False))
    assert [s.check.name for s in skipped] == ["user_activity.user_region_not_null", "user_activity.user_region_known"]
    _, skipped = _resolve("raw", FULL.with_parts(publish_times=False), history=7)
    assert {s.check.name for s in skipped} == {
        "raw_events.not_before_publication",
        "raw_day.articles_in_band",
        "raw_day.article_history",
    }
    _, skipped = _resolve("features", FULL.with_parts(publications=False))
    assert {s.check.column for s in skipped} == {"article_publication_trust", "article_publication_flagged"}


def test_band_checks_only_warn_without_enough_history():
    for history, severity in [(0, "warning"), (2, "warning"), (3, "critical"), (7, "critical")]:
        run, _ = _resolve("raw", FULL, history=history, min_days=3)
        band = {c.name: c for c in run}["raw_day.articles_in_band"]
        assert band.severity == severity, history
        assert ("note" in band.meta) == (severity == "warning")
    run, _ = _resolve("raw", FULL, history=1, min_days=3)
    by_name = {c.name: c for c in run}
    assert by_name["raw_day.articles_in_band"].meta["note"].startswith("not enough history: 1 earlier day(s)")
    # only band checks are downgraded
    assert by_name["raw_events.event_id_unique"].severity == "critical"
    assert [c.name for c in run if c.band] == ["raw_day.articles_in_band"]


def test_not_applicable_is_neither_passed_nor_failed():
    outcomes = [
        CheckOutcome("a.ok", "a", "expect_x", None, "critical", True),
        CheckOutcome("a.slow", "a", "expect_x", None, "warning", False),
        CheckOutcome("a.dwell", "a", "expect_x", None, "critical", None, note="not applicable: no dwell"),
    ]
    result = GateResult("raw", date(2026, 1, 5), "raw-2", True, outcomes, None)
    assert result.counts == {"checks": 2, "succeeded": 1, "critical_failed": 0, "warning_failed": 1}
    assert [o.name for o in result.not_applicable] == ["a.dwell"]
    assert [o.status for o in outcomes] == ["passed", "failed", "not applicable"]
    text = result.render()
    assert "failed of 2; 1 not applicable;" in text and "N/A      a.dwell: not applicable: no dwell" in text


def test_profile_parts_are_checked_names():
    assert FULL.absent == [] and not FULL.stored
    assert FULL.with_parts(dwell=False, positions_known=False).absent == ["dwell", "positions_known"]
    with pytest.raises(KeyError, match="unknown profile part"):
        FULL.with_parts(clicks=False)
    with pytest.raises(KeyError):
        FULL.has("clicks")
    needs = {n for c in suites.stage_checks("raw", params("quality")) for n in c.needs}
    needs |= {n for c in suites.stage_checks("features", params("quality")) for n in c.needs}
    assert needs <= set(PARTS)


def test_docs_show_the_contract_the_check_uses():
    """docs/data.md holds the contract tables exactly as the code renders them."""
    doc = (ROOT / "docs" / "data.md").read_text(encoding="utf-8")
    assert contract.markdown_tables() in doc
    required = {(c.table, c.name) for c in contract.CONTRACT if c.required}
    assert ("events", "event_ts") in required and ("events", "dwell_seconds") not in required
    parts = {c.part for c in contract.CONTRACT if c.part}
    assert parts <= set(PARTS)
