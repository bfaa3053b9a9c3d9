"""The nightly report shows label drift with the reason it decides nothing, so a night whose
target drift is True and whose retrain checker says "no drift" reads consistently."""

from __future__ import annotations

from datetime import date, timedelta

from pipelines.gates.drift import ColumnDrift, DriftResult
from pipelines.gates.drift.store import store_result
from pipelines.nightly import report

DAY = date(2026, 4, 2)


def _verdict(kind: str, drifted: bool, share: float) -> DriftResult:
    columns = [ColumnDrift("clicked", "cat", "jensenshannon", 0.1, share, drifted)]
    return DriftResult(kind, DAY, [DAY - timedelta(days=1)], drifted, share, 0.2, columns)


def test_label_drift_comes_with_why_it_does_not_retrain(fresh_db):
    store_result(_verdict("features", False, 0.0))
    (drift,) = [s for s in report.collect(DAY) if s.title == "Drift"]
    assert drift.note == ""  # no label verdict: nothing to explain
    store_result(_verdict("target", True, 1.0))
    (drift,) = [s for s in report.collect(DAY) if s.title == "Drift"]
    assert [row[0] for row in drift.rows] == ["features", "target"]
    assert drift.note == report.LABEL_DRIFT_NOTE
    assert "Only feature drift feeds the retrain checker" in report.to_markdown(DAY, report.collect(DAY))
