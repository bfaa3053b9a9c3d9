"""The retrain checker on the trained world of test_training (real registry, real features)."""

from datetime import timedelta

from pipelines.gates import retrain
from pipelines.model import registry
from tests.helpers import query
from tests.model.conftest import DAY


def test_reasons_and_storage(world):
    nxt = DAY + timedelta(days=1)
    fresh = retrain.decide(nxt)
    assert fresh.retrain and fresh.mode == "warm"  # nothing calls for a full retrain: continue the champion
    assert fresh.champion == registry.champion_version()
    assert fresh.evidence["champion_ndcg_today"] > 0  # decay was measured on the next day's labels

    # the day the champion was trained for is judged against the champion before it (none),
    # exactly as its first run was: re-running a date gives the same decision
    again = retrain.decide(DAY)
    assert again.retrain and again.reasons == ["no champion yet"]

    drifted = retrain.decide(nxt, drift_share=0.9)
    assert drifted.retrain and any("feature drift" in r for r in drifted.reasons)

    forced = retrain.decide(nxt, force=True)
    assert forced.retrain and forced.reasons[0] == "forced by the user"

    old = retrain.decide(DAY + timedelta(days=30))
    assert old.retrain and any("days old" in r for r in old.reasons)

    rows = query("SELECT logical_date, retrain FROM ops.retrain_decisions ORDER BY decision_id")
    # one record per logical date: re-deciding a day replaces its record
    assert [r[0] for r in rows].count(nxt) == 1
    assert rows[-1] == (DAY + timedelta(days=30), True)
