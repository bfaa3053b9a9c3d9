"""The examination propensity stored with the day: estimated from hand-made logged impressions
(the same articles at random positions, plus a personalised model's confounded lists that the
fit must leave out), replaced on re-run, and absent (with the caveat) when positions are unknown."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from pipelines.core import db
from pipelines.model import counterfactual, propensity
from pipelines.warehouse import profile
from tests.helpers import query

DAY = date(2026, 6, 1)
THETA = 1.0 / (np.arange(10) + 1.0)


def _write_log(rng: np.random.Generator) -> None:
    """200 articles x 60 impressions at random positions (logging policy) and a model's list that
    always shows the article on top to readers who click it; reads point at their impressions."""
    n_articles, shows = 200, 60
    relevance = rng.uniform(0.1, 0.9, size=n_articles)
    article = np.repeat(np.arange(n_articles), shows)
    position = rng.integers(0, 10, size=len(article))
    clicked = rng.random(len(article)) < THETA[position] * relevance[article]
    model = np.arange(600) % n_articles  # personalised: on top, always clicked
    article = np.r_[article, model]
    position = np.r_[position, np.zeros(len(model), dtype=int)]
    clicked = np.r_[clicked, np.ones(len(model), dtype=bool)]
    version = np.r_[np.full(len(article) - len(model), None), np.full(len(model), "3")]
    ts = datetime(DAY.year, DAY.month, DAY.day, 12, tzinfo=UTC)
    n = len(article)
    impressions = pd.DataFrame(
        {"event_id": np.arange(n) + 1, "user_id": np.arange(n) % 500, "article_id": article + 10_000,
         "event_type": "impression", "event_ts": ts, "position": position, "surface": "home",
         "batch_id": np.where(version == None, None, 1), "model_version": version}  # noqa: E711
    )  # fmt: skip
    hit = np.flatnonzero(clicked)
    reads = pd.DataFrame(
        {"event_id": n + 1 + np.arange(len(hit)), "impression_id": hit + 1, "user_id": hit % 500,
         "article_id": article[hit] + 10_000, "event_type": "read", "event_ts": ts, "surface": "home",
         "dwell_seconds": 30.0}
    )  # fmt: skip
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute("SELECT warehouse.ensure_events_partition(%s)", (DAY,))
        db.copy_frame(cur, "warehouse.events", impressions)
        db.copy_frame(cur, "warehouse.events", reads)


def test_propensity_is_estimated_from_the_logs_stored_with_the_day_and_replaced(fresh_db):
    _write_log(np.random.default_rng(7))
    estimate = propensity.for_day(DAY)
    assert estimate.available and estimate.details["excluded"] == "impressions ordered by a personalised model"
    assert np.max(np.abs(estimate.theta - THETA)) < 0.08, estimate.theta
    rows = query("SELECT position, propensity, impressions, method, first_day, last_day FROM ops.position_propensity "
                 "WHERE logical_date = %s ORDER BY position", (DAY,))  # fmt: skip
    assert [r[0] for r in rows] == list(range(10)) and rows[0][1] == 1.0
    assert sum(r[2] for r in rows) == 200 * 60  # the model's 600 impressions were not read by the fit
    assert {(r[3], r[5]) for r in rows} == {("pbm-em", DAY)}
    with db.transaction() as conn:
        stored = propensity.load(conn, DAY)
    np.testing.assert_allclose(stored.theta, estimate.theta, rtol=1e-6)
    again = propensity.for_day(DAY, refresh=True)
    np.testing.assert_allclose(again.theta, estimate.theta, rtol=1e-6)
    assert query("SELECT count(*) FROM ops.position_propensity")[0][0] == 10


def test_only_model_ordered_lists_are_fitted_and_said_to_be_confounded(fresh_db):
    _write_log(np.random.default_rng(9))
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM warehouse.events WHERE event_type = 'impression' AND model_version IS NULL")
    estimate = propensity.for_day(DAY)
    assert estimate.available and estimate.details["confounded"] is True and estimate.details["excluded"] is None
    assert estimate.details["sources"] == ["model 3"] and int(estimate.impressions.sum()) == 600


def test_positions_unknown_means_no_estimate_and_the_logged_metric_with_a_caveat(fresh_db):
    _write_log(np.random.default_rng(8))
    with db.transaction() as conn:
        profile.save(conn, profile.full("mind").with_parts(positions_known=False), set_by="test")
    estimate = propensity.for_day(DAY)
    assert not estimate.available and "positions are unknown" in estimate.caveat
    assert query("SELECT count(*) FROM ops.position_propensity")[0][0] == 0
    table = counterfactual.evaluate_split(None, {"model": np.zeros(3)}, estimate)
    assert table["available"] is False
    assert "the logged metric is reported instead" in counterfactual.render(table)
    with pytest.raises(ValueError):
        estimate.at(np.array([0]))
