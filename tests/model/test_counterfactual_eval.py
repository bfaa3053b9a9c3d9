"""The counterfactual metric where people read it: `newsrec evaluate` (beside the logged NDCG@10)
and the registry's evaluation record, on the shared trained world."""

from __future__ import annotations

import json
from datetime import timedelta

from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.model import counterfactual, registry
from tests.helpers import query
from tests.model.conftest import DAY


def test_evaluate_reports_the_counterfactual_metric_beside_the_logged_one(world):
    result = CliRunner().invoke(app, ["evaluate", "--date", str(DAY), "--json"])
    assert result.exit_code == 0, result.output
    table = json.loads(result.output)["counterfactual"]
    assert table["available"] is True and table["gain"] == "dwell_s"
    assert set(table["scorers"]) == {"model", "popularity", "recency", "random"}
    for m in table["scorers"].values():
        lo, hi = m["ips_ndcg@10_ci"]
        assert 0 <= lo <= m["ips_ndcg@10"] <= hi <= 1
    assert table["scorers"]["model"]["ips_ndcg@10"] > table["scorers"]["random"]["ips_ndcg@10"]
    theta = table["propensity"]["theta"]
    assert theta[0] == 1.0 and theta[-1] < 0.5  # the simulator's readers examine the bottom less
    # a held-out day is weighed with the estimate of the day before, stored with that day, from
    # the logs of a window that ends on it: the day's own clicks are not in the fit
    before = DAY - timedelta(days=1)
    assert table["propensity"]["window"][1] == before.isoformat()
    assert query("SELECT count(*), max(last_day) FROM ops.position_propensity WHERE logical_date = %s", (before,)) == [
        (len(theta), before)
    ]
    text = counterfactual.render(table, {"model": 0.5})  # what the command prints without --json
    assert "IPS NDCG@10" in text and "| model | 0.5000 |" in text and "Propensity by position" in text


def test_the_registered_evaluation_records_the_counterfactual_metric(world):
    info = registry.version_info(world["result"].version)
    metrics = registry.run_metrics(info["run_id"])
    assert 0 < metrics["ips_ndcg_at_10"] <= 1
    assert world["result"].evaluation["counterfactual"]["available"] is True
