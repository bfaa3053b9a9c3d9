"""`newsrec evaluate`'s per-impression table (MIND's metrics) on the trained world, and the
baselines' blindness to the evaluated day and later."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

import numpy as np
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.core import db
from pipelines.model import impression_eval, registry
from pipelines.model.evaluate import score_on_day
from tests.model.conftest import DAY


def test_table_has_the_model_and_four_baselines_and_the_model_beats_random(world):
    split, scores = score_on_day(registry.load("champion"), DAY)
    table = impression_eval.evaluate_impressions(split, scores)
    scorers = table["scorers"]
    assert set(scorers) == {"model", "random", "popularity", "smoothed_ctr", "recency"}
    assert table["not_applicable"] == []
    assert table["impressions"] > 100
    for m in scorers.values():
        for key in ("auc", "mrr", "ndcg@5", "ndcg@10", "truth_ndcg@10"):
            assert 0.0 <= m[key] <= 1.0, key
        assert m["impressions"] == table["impressions"]
    assert scorers["model"]["auc"] > scorers["random"]["auc"] + 0.03
    # slates are (user, time, surface) on the simulator: finer than the (user, day) query groups
    assert table["impressions"] > split.n_groups
    text = impression_eval.render(table)
    assert "| smoothed_ctr |" in text and "truth NDCG@10" in text and "without a click" in text


def test_evaluate_json_carries_the_per_impression_table(world):
    result = CliRunner().invoke(app, ["evaluate", "--date", str(DAY), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert set(doc["per_impression"]["scorers"]) == {"model", *impression_eval.BASELINES}
    assert doc["per_impression"]["scorers"]["model"]["impressions"] == doc["per_impression"]["impressions"] > 0
    assert "model" in doc["overall"] and "truth" in doc


def _insert(cur, event_id, user_id, article_id, kind, ts, impression_id=None, slate_id=None):
    cur.execute(
        "INSERT INTO warehouse.events (event_id, impression_id, user_id, article_id, event_type, event_ts,"
        " position, surface, dwell_seconds, slate_id) VALUES (%s, %s, %s, %s, %s, %s, 0, 'home', NULL, %s)",
        (event_id, impression_id, user_id, article_id, kind, ts, slate_id),
    )


def test_baselines_ignore_events_of_the_day_and_later(world):
    day_start = datetime.combine(DAY, time(), tzinfo=UTC)
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT article_id, min(user_id), (SELECT max(event_id) FROM warehouse.events) FROM warehouse.events"
                " WHERE event_type = 'impression' AND event_ts >= %s AND event_ts < %s"
                " GROUP BY article_id ORDER BY article_id LIMIT 20",
                (day_start, day_start + timedelta(days=1)),
            )
            found = cur.fetchall()
        articles = np.array([a for a, _, _ in found])
        article, user, next_id = found[0][0], found[0][1], found[0][2] + 1
        before = impression_eval.load_baselines(conn, DAY, articles)
        with conn.cursor() as cur:  # the day's and later events: an impression, its click, a read
            _insert(cur, next_id, user, article, "impression", day_start + timedelta(hours=1), slate_id="S1")
            _insert(cur, next_id + 1, user, article, "read", day_start + timedelta(hours=1, minutes=1), next_id)
            _insert(cur, next_id + 2, user, article, "read", day_start + timedelta(days=1, hours=2))
        after = impression_eval.load_baselines(conn, DAY, articles)
        for name in impression_eval.BASELINES:
            assert np.array_equal(before[name], after[name]), name
        # the source's slate id names the impression when it has one
        keys = impression_eval.slates(conn, DAY, np.array([next_id]))
        assert list(keys) == ["id:S1"]
        with conn.cursor() as cur:  # the same events a day earlier do count: the test can fail
            _insert(cur, next_id + 3, user, article, "impression", day_start - timedelta(hours=3))
            _insert(cur, next_id + 4, user, article, "read", day_start - timedelta(hours=2), next_id + 3)
        earlier = impression_eval.load_baselines(conn, DAY, articles)
        assert earlier["popularity"][0] == before["popularity"][0] + 1
        assert earlier["smoothed_ctr"][0] != before["smoothed_ctr"][0]
    finally:
        conn.rollback()
        conn.close()
