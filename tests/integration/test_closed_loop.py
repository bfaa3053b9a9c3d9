"""The closed loop: a simulated day shows each active user the list the live batch holds."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from pipelines.serving.publish import publish_batch
from pipelines.warehouse import simulator
from tests.helpers import query

START = date(2026, 4, 6)
D = START + timedelta(days=2)


def _events(day: date) -> pd.DataFrame:
    import pyarrow as pa

    from pipelines.core import db

    with db.transaction() as conn:
        return db.read_frame(
            conn,
            "SELECT event_id, impression_id, user_id, article_id, event_type, event_ts, position, surface, "
            "dwell_seconds, batch_id, arm, model_version FROM warehouse.events WHERE event_ts >= %s AND event_ts < %s",
            (day, day + timedelta(days=1)),
            {"arm": pa.string(), "model_version": pa.string(), "surface": pa.string()},
        )


def _publish_lists(day: date) -> tuple[int, pd.DataFrame, pd.DataFrame]:
    """A batch of hand-made lists through the real publish: half the users get a personal list
    (arms alternate), the others only the regional fallback lists."""
    articles = query(
        "SELECT article_id FROM warehouse.articles WHERE published_at >= %s AND published_at < %s ORDER BY article_id",
        (day - timedelta(days=1), day + timedelta(days=1)),
    )
    ids = np.array([a for (a,) in articles])
    users = np.array([u for (u,) in query("SELECT user_id FROM warehouse.users ORDER BY user_id")])
    rng = np.random.default_rng(5)
    listed = users[users % 2 == 0]
    rows = [
        (u, r + 1, int(a), 1.0 - r / 10, "test", "champion" if u % 4 == 0 else "challenger", "7" if u % 4 else "6")
        for u in listed
        for r, a in enumerate(rng.choice(ids, size=10, replace=False))
    ]
    recs = pd.DataFrame(rows, columns=["user_id", "rank", "article_id", "score", "reason", "arm", "model_version"])
    fallback = pd.DataFrame(
        [(region, r + 1, int(a), 1.0, "Trending") for region in ("LATAM", "AFRICA", "NA", "GLOBAL")
         for r, a in enumerate(rng.choice(ids, size=10, replace=False))],
        columns=["region", "rank", "article_id", "score", "reason"],
    )  # fmt: skip
    batch = publish_batch(day, "6", recs, fallback, keep=3)
    return batch, recs, fallback


def test_simulate_day_shows_the_live_lists_with_position_bias(fresh_db):
    cfg = simulator.SimConfig.from_params(users=1500, articles_per_day=300, start=START, seed=4)
    simulator.seed(cfg, 2)
    before = simulator.simulate_day(D)  # no live batch: every session is organic, as always
    assert before.batch_id is None and before.recommended == 0
    organic_only = _events(D)
    assert (organic_only["surface"] != simulator.REC_SURFACE).all() and organic_only["batch_id"].isna().all()

    batch, recs, fallback = _publish_lists(D - timedelta(days=1))
    result = simulator.simulate_day(D)
    assert result.batch_id == batch and result.recommended > 0
    events = _events(D)
    rec = events[events["surface"] == simulator.REC_SURFACE]
    imp = rec[rec["event_type"] == "impression"]
    assert (rec["batch_id"] == batch).all()
    # a share of the sessions showed lists (params: recommended_session_share), the rest browsed
    share = len(imp) / events["event_type"].eq("impression").sum()
    assert 0.3 < share < 0.7

    # personal lists: exactly the user's items, at their ranks, with the row's arm and model
    personal = imp[imp["user_id"] % 2 == 0].merge(recs, on=["user_id", "article_id"], how="left")
    assert personal["rank"].notna().all()
    assert (personal["position"] == personal["rank"] - 1).all()
    assert (personal["arm_x"] == personal["arm_y"]).all()
    assert (personal["model_version_x"] == personal["model_version_y"]).all()
    per_session = personal.groupby(["user_id", "event_ts"]).size()
    assert (per_session == 10).mean() > 0.95  # whole lists are shown (an unpublished article never)

    # users without a list saw their region's fallback list, without an arm
    region = dict(query("SELECT user_id, region FROM warehouse.users"))
    others = imp[imp["user_id"] % 2 == 1]
    assert len(others) and others["arm"].isna().all()
    fb = {(r, a): k for r, k, a in fallback[["region", "rank", "article_id"]].itertuples(index=False)}
    ranks = [fb.get((region[u], a)) for u, a in others[["user_id", "article_id"]].itertuples(index=False)]
    assert all(k is not None for k in ranks)
    assert (others["position"].to_numpy() == np.array(ranks) - 1).all()

    # the position bias: top positions are read far more often than the bottom ones
    read = imp["event_id"].isin(rec.loc[rec["event_type"] == "read", "impression_id"])
    ctr = read.groupby(imp["position"]).mean()
    assert ctr.loc[0] > 2 * ctr.loc[5:9].mean()
    reads = rec[rec["event_type"] == "read"]
    assert (reads["dwell_seconds"] > 0).all()

    # organic sessions are exactly those of the run without a live batch (their draws are unchanged)
    key = ["user_id", "article_id", "event_type", "event_ts", "position", "surface", "dwell_seconds"]
    organic = events[events["surface"] != simulator.REC_SURFACE][key]
    assert len(organic) < len(organic_only)
    assert len(organic.merge(organic_only[key], on=key)) == len(organic)

    # re-running the day (after tonight's publish switched the live batch) shows the same batch
    _publish_lists(D)
    again = simulator.simulate_day(D)
    assert again.batch_id == batch
    pd.testing.assert_frame_equal(
        _events(D).sort_values("event_id", ignore_index=True), events.sort_values("event_id", ignore_index=True)
    )


def test_business_metrics_per_arm_region_cohort_and_idempotent(fresh_db):
    from pipelines.experiments import business_metrics as metrics
    from pipelines.experiments import lifecycle
    from pipelines.experiments.arms import serving_plan

    cfg = simulator.SimConfig.from_params(users=1500, articles_per_day=300, start=START, seed=4)
    simulator.seed(cfg, 2)
    exp = lifecycle.create("metrics", [], popularity_share=0.5, cohort_size=1000)
    plan = serving_plan(D - timedelta(days=1))
    batch, recs, _ = _publish_lists(D - timedelta(days=1))
    # the lists' arms as scoring writes them: the plan's assignment (outside the cohort: champion)
    query("UPDATE serving.recommendations SET arm = 'champion'")
    pop = [int(u) for u in recs["user_id"].unique() if plan.assign(np.array([u]))[0] == "popularity"]
    query("UPDATE serving.recommendations SET arm = 'popularity', model_version = 'popularity' "
          "WHERE user_id = ANY(%s)", (pop,))  # fmt: skip
    simulator.simulate_day(D)

    first = metrics.business_metrics(D)
    columns = (
        "logical_date, experiment_id, arm, region, in_cohort, model_version, active_users, impressions, "
        "reads, dwell_s, dwell_per_user_s, ctr, coverage, diversity"
    )  # all but computed_at
    rows = query(f"SELECT {columns} FROM ops.business_metrics ORDER BY arm, region, in_cohort")
    days = query("SELECT * FROM ops.experiment_user_days ORDER BY user_id")
    assert first["experiment_id"] == exp.experiment_id and first["batches"] == [batch]
    assert metrics.business_metrics(D) == first  # re-running D replaces D's rows
    assert query(f"SELECT {columns} FROM ops.business_metrics ORDER BY arm, region, in_cohort") == rows
    assert query("SELECT * FROM ops.experiment_user_days ORDER BY user_id") == days

    arms = {r[0] for r in query("SELECT DISTINCT arm FROM ops.business_metrics")}
    assert arms == {"champion", "popularity", "fallback"}
    assert {r[0] for r in query("SELECT DISTINCT region FROM ops.business_metrics")} == {"LATAM", "AFRICA", "NA"}
    # popularity users are all in the cohort; champion users on both sides of it
    assert query("SELECT DISTINCT in_cohort FROM ops.business_metrics WHERE arm = 'popularity'") == [(True,)]
    assert {r[0] for r in query("SELECT in_cohort FROM ops.business_metrics WHERE arm = 'champion'")} == {True, False}
    # the numbers are those of the warehouse: dwell of reads of recommended impressions, impressions, users
    (expected,) = query(
        "SELECT count(DISTINCT i.user_id), count(*), count(r.event_id), coalesce(sum(r.dwell_seconds), 0) "
        "FROM warehouse.events i LEFT JOIN warehouse.events r ON r.impression_id = i.event_id "
        "AND r.event_type = 'read' WHERE i.event_type = 'impression' AND i.batch_id IS NOT NULL"
    )
    (got,) = query("SELECT sum(active_users), sum(impressions), sum(reads), sum(dwell_s) FROM ops.business_metrics")
    assert got[:3] == expected[:3] and abs(got[3] - float(expected[3])) < 1e-3 * max(1.0, float(expected[3]))
    (ratio,) = query("SELECT bool_and(abs(dwell_per_user_s - dwell_s / active_users) < 1e-9 "
                     "AND ctr = reads::float8 / impressions AND coverage > 0 AND coverage <= 1 "
                     "AND diversity >= 1 AND diversity <= 10) FROM ops.business_metrics")[0]  # fmt: skip
    assert ratio is True
    # one user-day per exposed cohort user with a personal list, for the statistical test
    in_cohort = plan.in_cohort(np.array([d[2] for d in days]))
    assert len(days) > 50 and in_cohort.all()
    assert {d[3] for d in days} == {"champion", "popularity"}
