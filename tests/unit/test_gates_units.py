"""Pure parts of the gates: suite definitions, result objects, score drift, CLI wiring."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import numpy as np
import pytest

from pipelines.core.config import params
from pipelines.core.errors import NewsrecError
from pipelines.core.jsonable import json_safe
from pipelines.features.catalog import FEATURES, VIEWS
from pipelines.gates import drift
from pipelines.gates.quality import suites
from pipelines.gates.quality.gate import CheckOutcome, GateResult
from tests.helpers import ROOT, run_cli


@pytest.mark.parametrize("stage", ["raw", "features"])
def test_suites_are_well_formed_and_build_in_great_expectations(stage):
    import great_expectations as gx

    gx.get_context(mode="ephemeral")  # suites need an active context
    checks = suites.stage_checks(stage, params("quality"))
    names = [c.name for c in checks]
    assert len(names) == len(set(names)), "check names are stable ids: unique per stage"
    assert {c.severity for c in checks} == {"critical", "warning"}
    assert all(c.why for c in checks)
    assert stage in suites.SUITE_VERSIONS
    for asset in sorted({c.asset for c in checks}):
        suite = suites.build_suite(stage, asset, checks)
        mine = [c for c in checks if c.asset == asset]
        assert suite.name == f"{stage}.{asset}"
        assert suite.meta["newsrec_suite_version"] == suites.SUITE_VERSIONS[stage]
        assert [e.meta["check"] for e in suite.expectations] == [c.name for c in mine]
        assert [str(e.severity.value) for e in suite.expectations] == [c.severity for c in mine]


def test_every_numeric_feature_has_a_sane_range():
    """A new feature must get a range (or be declared nullable) before the gate accepts it."""
    numeric = {f.name for f in FEATURES if f.dtype != "string"}
    assert numeric == set(suites.FEATURE_RANGES)
    nullable = set(params("quality")["features"]["max_null_share"])
    assert nullable <= {f.name for f in FEATURES}
    feature_assets = {c.asset for c in suites.stage_checks("features", params("quality"))}
    assert feature_assets == set(VIEWS)


def test_raw_thresholds_come_from_params():
    p = params("quality")
    p["raw"] = {**p["raw"], "dwell_max_s": 60, "article_band": [0.8, 1.2]}
    checks = {c.name: c for c in suites.raw_checks(p["raw"])}
    assert checks["raw_events.read_dwell_at_most_max"].kwargs["max_value"] == 60
    assert checks["raw_day.articles_in_band"].kwargs == {"column": "articles_ratio", "min_value": 0.8, "max_value": 1.2}
    assert checks["raw_events.read_dwell_present"].reads_only


def _outcome(name: str, severity: str, success: bool, **extra) -> CheckOutcome:
    return CheckOutcome(name, name.split(".")[0], "expect_x", None, severity, success, **extra)  # type: ignore[arg-type]


def test_only_critical_failures_fail_the_gate():
    warning_only = [_outcome("a.ok", "critical", True), _outcome("a.slow", "warning", False)]
    result = GateResult("raw", date(2026, 1, 5), "raw-2", True, warning_only, None)
    assert result.counts == {"checks": 2, "succeeded": 1, "critical_failed": 0, "warning_failed": 1}
    failing = _outcome(
        "raw_events.read_dwell_positive",
        "critical",
        False,
        unexpected_count=3,
        element_count=60,
        unexpected_percent=5.0,
        examples=[{"event_id": 7, "dwell_seconds": -3.5}],
    )
    result = GateResult("raw", date(2026, 1, 5), "raw-2", False, [*warning_only, failing], None)
    text = result.render()
    assert "FAILED (1 critical and 1 warning" in text
    assert "CRITICAL raw_events.read_dwell_positive: 3 of 60 rows unexpected (5.00%)" in text
    assert '"dwell_seconds": -3.5' in text
    assert text.index("CRITICAL") < text.index("WARNING")
    assert result.to_dict()["counts"]["critical_failed"] == 1


def test_json_safe_gives_what_jsonb_accepts():
    value = {"a": float("nan"), "b": np.float32(1.5), "c": [np.int64(3), np.bool_(True)], 4: date(2026, 1, 2)}
    assert json_safe(value) == {"a": None, "b": 1.5, "c": [3, True], "4": "2026-01-02"}


def test_score_drift_uses_a_distance_and_flags_a_shift():
    rng = np.random.default_rng(7)
    reference = rng.normal(0.0, 1.0, 20_000)
    same = drift.score_drift(rng.normal(0.0, 1.0, 20_000), reference)
    shifted = drift.score_drift(rng.normal(0.5, 1.0, 20_000), reference)
    assert same.method == shifted.method == "wasserstein" and same.threshold == 0.1
    assert not same.drifted and same.score < 0.05
    assert shifted.drifted and shifted.score == pytest.approx(0.5, abs=0.05)
    with pytest.raises(NewsrecError, match="finite scores"):
        drift.score_drift([np.nan], reference)


def test_reference_windows():
    day = date(2026, 3, 10)
    assert drift.default_reference_days(day, 3) == [date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9)]
    assert len(drift.default_reference_days(day)) == params("drift")["reference_days"]
    assert drift.reference_range(date(2026, 3, 1), date(2026, 3, 3))[-1] == date(2026, 3, 3)
    with pytest.raises(NewsrecError, match="before --reference-from"):
        drift.reference_range(date(2026, 3, 3), date(2026, 3, 1))


def test_cli_startup_stays_light():
    """`newsrec --help` must not pay for Great Expectations or Evidently (~4 s each)."""
    code = (
        "import sys, pipelines.cli; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('great_expectations', 'evidently')]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("check", "quality", "--date", "2026-01-05", "--stage", "bogus"), "choose raw, features or all"),
        (("check", "quality"), "Missing option '--date'"),
        (("check", "drift", "--date", "2026-01-05", "--reference-from", "2026-01-01"), "give both"),
        (("check", "drift", "--date", "2026-01-05", "--kind", "scores"), "choose features, target or all"),
    ],
)
def test_cli_usage_errors_exit_2(args, fragment):
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert fragment in proc.stderr and "Traceback" not in proc.stderr
