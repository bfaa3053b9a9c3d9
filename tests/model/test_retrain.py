"""The retrain checker on the trained world of test_training (real registry, real features)."""

from datetime import timedelta

from pipelines import registry, retrain
from tests.helpers import query
from tests.model.conftest import DAY


def test_reasons_and_storage(world):
    fresh = retrain.decide(DAY)
    assert not fresh.retrain and fresh.mode == "none"
    assert fresh.champion == registry.champion_version()
    assert "champion_ndcg_today" in fresh.evidence  # decay was measured on the day's labels

    drifted = retrain.decide(DAY, drift_share=0.9)
    assert drifted.retrain and any("feature drift" in r for r in drifted.reasons)

    forced = retrain.decide(DAY, force=True)
    assert forced.retrain and forced.reasons[0] == "forced by the user"

    old = retrain.decide(DAY + timedelta(days=30))
    assert old.retrain and any("days old" in r for r in old.reasons)

    rows = query("SELECT logical_date, retrain FROM ops.retrain_decisions ORDER BY decision_id")
    # one record per logical date: re-deciding a day replaces its record
    assert [r[0] for r in rows].count(DAY) == 1
    assert rows[-1] == (DAY + timedelta(days=30), True)
