"""The feature stage end to end: Beam (FnApiRunner) against the real PostgreSQL, Parquet
partitions, Feast's point-in-time join, materialization and online reads."""

from __future__ import annotations

import hashlib
import os
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.core.errors import NewsrecError
from pipelines.features import build, matrix, partitions, retrieval, store
from pipelines.features.catalog import VIEWS, view_columns
from tests.helpers import query, simulated_world, use_database

START = date(2026, 4, 6)
D1, D2 = START + timedelta(days=2), START + timedelta(days=3)


@pytest.fixture(scope="module")
def world(pg_server, migrated_template, tmp_path_factory):
    """A 5-day simulated warehouse with features built for D1 and D2 (shared by this module)."""
    home = tmp_path_factory.mktemp("features_home")
    sim = {"users": 300, "articles_per_day": 150, "start": START, "seed": 21}
    with simulated_world(pg_server, migrated_template, home, "features_world", 5, [D1, D2], **sim) as w:
        yield {**w, "results": tuple(w["built"])}


@pytest.fixture
def in_world(world, monkeypatch):
    use_database(monkeypatch, world["url"], world["home"])
    return world


def _digest(path: Path) -> str:
    frame = pd.read_parquet(path)
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()


def test_two_days_then_rerun_replaces_the_first(in_world):
    for day in (D1, D2):
        assert partitions.read_manifest(day) is not None
        for view in VIEWS:
            assert partitions.view_path(view, day).exists()
    before = {v: _digest(partitions.view_path(v, D1)) for v in VIEWS}
    files_before = sorted(p.name for p in (partitions.root() / "user_activity").iterdir())
    rerun = build.build(D1)
    assert {v: _digest(partitions.view_path(v, D1)) for v in VIEWS} == before
    assert sorted(p.name for p in (partitions.root() / "user_activity").iterdir()) == files_before
    assert rerun.rows == in_world["results"][0].rows
    assert not list(partitions.root().rglob("*.tmp"))
    assert not list((partitions.root() / ".staging").iterdir())


def test_row_counts_match_the_warehouse(in_world):
    for day, result in zip((D1, D2), in_world["results"], strict=True):
        end = day + timedelta(days=1)
        (users,) = query("SELECT count(*) FROM warehouse.users WHERE signup_date <= %s", (day,))[0]
        assert result.rows["user_activity"] == users
        (shown,) = query(
            "SELECT count(DISTINCT article_id) FROM warehouse.events WHERE event_ts >= %s AND event_ts < %s",
            (day, end),
        )[0]
        assert result.rows["article_engagement"] == shown
        (published,) = query(
            "SELECT count(*) FROM warehouse.articles WHERE published_at >= %s AND published_at < %s",
            (day, end),
        )[0]
        assert result.rows["article_attributes"] == published


def test_hand_computed_values(in_world):
    activity = pd.read_parquet(partitions.view_path("user_activity", D2)).set_index("user_id")
    regions = dict(query("SELECT user_id, region FROM warehouse.users"))
    assert activity["user_region"].to_dict() == {u: regions[u] for u in activity.index}
    assert "NA" in set(activity["user_region"])  # the region code, not a missing value
    user = int(activity["user_reads_7d"].idxmax())
    lo = D2 - timedelta(days=6)
    reads, imps, dwell = query(
        "SELECT count(*) FILTER (WHERE event_type = 'read'), "
        "       count(*) FILTER (WHERE event_type = 'impression'), "
        "       sum(dwell_seconds) FILTER (WHERE event_type = 'read') "
        "FROM warehouse.events WHERE user_id = %s AND event_ts >= %s AND event_ts < %s",
        (user, lo, D2 + timedelta(days=1)),
    )[0]
    row = activity.loc[user]
    assert row["user_reads_7d"] == reads
    assert row["user_impressions_7d"] == imps
    assert row["user_dwell_7d_s"] == pytest.approx(float(dwell), rel=1e-5)
    assert row["user_ctr_7d"] == pytest.approx(reads / imps, rel=1e-5)

    shares = query(
        "SELECT a.category, sum(e.dwell_seconds) / sum(sum(e.dwell_seconds)) OVER () "
        "FROM warehouse.events e JOIN warehouse.articles a USING (article_id) "
        "WHERE e.user_id = %s AND e.event_type = 'read' AND e.event_ts < %s GROUP BY 1",
        (user, D2 + timedelta(days=1)),
    )
    uc = pd.read_parquet(partitions.view_path("user_category", D2))
    uc = uc[uc["user_id"] == user].set_index("category")
    for category, share in shares:
        assert uc.loc[category, "user_cat_dwell_share_28d"] == pytest.approx(float(share), rel=1e-4)

    engagement = pd.read_parquet(partitions.view_path("article_engagement", D2)).set_index("article_id")
    article = int(engagement["article_impressions_24h"].idxmax())
    (n,) = query(
        "SELECT count(*) FROM warehouse.events WHERE article_id = %s AND event_type = 'impression' "
        "AND event_ts >= %s AND event_ts < %s",
        (article, D2, D2 + timedelta(days=1)),
    )[0]
    assert engagement.loc[article, "article_impressions_24h"] == n


def test_backfill_equals_single_days(in_world, tmp_path, monkeypatch):
    reference = {v: _digest(partitions.view_path(v, D2)) for v in VIEWS}
    # a fresh features folder: backfill D1..D2 from nothing
    monkeypatch.setenv("NEWSREC_HOME", str(tmp_path / "other"))
    from pipelines.core.config import reset_caches

    reset_caches()
    results = build.backfill(D1, D2)
    assert [r.day for r in results] == [D1, D2]
    assert {v: _digest(partitions.view_path(v, D2)) for v in VIEWS} == reference


def test_online_features_after_materialize(in_world):
    rows = store.materialize(D2)
    assert rows["user_activity"] > 0
    activity = pd.read_parquet(partitions.view_path("user_activity", D2)).set_index("user_id")
    user = int(activity.index[5])
    attrs = pd.read_parquet(partitions.view_path("article_attributes", D2))
    article = int(attrs["article_id"].iloc[3])
    online = store.online_features(user, article)
    assert online["user_reads_28d"] == activity.loc[user, "user_reads_28d"]
    assert online["user_region"] == activity.loc[user, "user_region"]
    assert online["article_category"] == attrs["article_category"].iloc[3]
    assert online["article_published_ts"] == attrs["article_published_ts"].iloc[3]


def test_point_in_time_join_never_uses_future_values(in_world, tmp_path):
    """Plant a partition dated after the impression with absurd values: it must not leak."""
    activity = pd.read_parquet(partitions.view_path("user_activity", D2))
    user = int(activity["user_id"].iloc[0])
    future_day = D2 + timedelta(days=1)
    planted = activity.copy()
    planted["user_reads_28d"] = 999_999
    planted["event_timestamp"] = pd.Timestamp(future_day + timedelta(days=1), tz="UTC")
    future_file = partitions.view_path("user_activity", future_day)
    planted.to_parquet(future_file)
    try:
        attrs = pd.read_parquet(partitions.view_path("article_attributes", D2)).iloc[:1]
        article, category = int(attrs["article_id"].iloc[0]), attrs["article_category"].iloc[0]
        end_d2 = pd.Timestamp(D2 + timedelta(days=1), tz="UTC")
        entities = pd.DataFrame(
            {
                "user_id": [user] * 3,
                "article_id": [article] * 3,
                "category": [category] * 3,
                # during D2 (D1's partition), during D2+1 (D2's), after the planted stamp
                "event_timestamp": [
                    end_d2 - pd.Timedelta(hours=1),
                    end_d2 + pd.Timedelta(hours=12),
                    end_d2 + pd.Timedelta(days=1, hours=1),
                ],
            }
        )
        rows = retrieval.training_rows(entities)
        d1 = pd.read_parquet(partitions.view_path("user_activity", D1)).set_index("user_id")
        real = activity.set_index("user_id").loc[user, "user_reads_28d"]
        assert rows["user_reads_28d"].tolist() == [d1.loc[user, "user_reads_28d"], real, 999_999]
    finally:
        future_file.unlink()


def test_per_view_join_on_distinct_requests_equals_feast_whole_service_join(in_world):
    """training_rows joins each view on distinct (keys, as-of time) only; every row still gets
    exactly what Feast's join of the whole feature service on all rows gives, including rows at
    midnight exactly, users and articles no partition holds, and several rows of one request."""
    attrs = pd.concat([pd.read_parquet(partitions.view_path("article_attributes", d)) for d in (D1, D2)])
    activity = pd.read_parquet(partitions.view_path("user_activity", D1))
    shown = [set(pd.read_parquet(partitions.view_path("article_engagement", d))["article_id"]) for d in (D1, D2)]
    assert shown[0] - shown[1], "the world should hold articles shown on D1 and not on D2"
    rng = np.random.default_rng(5)
    n = 400
    users = rng.choice(np.append(activity["user_id"].to_numpy(), [10**9, 10**9 + 1]), size=n)
    picks = rng.integers(0, len(attrs), size=n)
    articles = np.where(rng.random(n) < 0.05, 10**9, attrs["article_id"].to_numpy()[picks])
    midnight = pd.Timestamp(D1, tz="UTC")
    times = midnight + pd.to_timedelta(rng.integers(0, 3 * 24, size=n), unit="h")
    # midnight exactly: the end of D1 or of D2, where the TTL bound sees the day before's row too
    times = times.where(rng.random(n) > 0.2, midnight + pd.to_timedelta(rng.integers(1, 3, size=n), unit="D"))
    entities = pd.DataFrame(
        {
            "user_id": users,
            "article_id": articles,
            "category": np.where(rng.random(n) < 0.05, "no-such-category", attrs["article_category"].to_numpy()[picks]),
            "event_timestamp": times,
        },
        index=pd.RangeIndex(1000, 1000 + n),
    )
    entities = pd.concat([entities, entities.iloc[:50]])  # repeated requests
    rows = retrieval.training_rows(entities)
    whole = store.historical_features(entities.reset_index(drop=True).assign(__row=np.arange(len(entities))))
    whole = whole.sort_values("__row").drop(columns="__row").set_index(entities.index)
    whole["event_timestamp"] = whole["event_timestamp"].astype(rows["event_timestamp"].dtype)  # us vs ns
    assert list(rows.columns) == list(whole.columns)
    pd.testing.assert_frame_equal(rows, whole)
    # the comparison has teeth: known and unknown values on both kinds of views
    assert rows["user_reads_28d"].notna().any() and rows["user_reads_28d"].isna().any()
    assert rows["article_category"].notna().any() and rows["article_category"].isna().any()
    assert rows["user_cat_reads_28d"].notna().any()


def test_training_and_scoring_paths_give_identical_matrices(in_world):
    """Feast's historical join and the bulk offline read feed to_matrix the same values."""
    attrs = pd.read_parquet(partitions.view_path("article_attributes", D2))
    activity = pd.read_parquet(partitions.view_path("user_activity", D2))
    rng = np.random.default_rng(0)
    users = rng.choice(activity["user_id"].to_numpy(), size=60)
    picks = rng.integers(0, len(attrs), size=60)
    request = pd.Timestamp(D2 + timedelta(days=1), tz="UTC") + pd.Timedelta(hours=6)
    pairs = pd.DataFrame(
        {
            "user_id": users,
            "article_id": attrs["article_id"].to_numpy()[picks],
            "event_timestamp": request,
        }
    )
    scoring = retrieval.scoring_rows(pairs, D2)
    entities = pairs.assign(category=attrs["article_category"].to_numpy()[picks])
    training = retrieval.training_rows(entities)
    spec = matrix.fit_spec(pd.concat([training, scoring]))
    a = matrix.to_matrix(training, spec)
    b = matrix.to_matrix(scoring, spec)
    assert list(a.columns) == list(spec.feature_names)
    assert a.shape == (60, len(spec.feature_names))
    pd.testing.assert_frame_equal(a, b)
    # the pairs carry real signal (not all missing)
    assert a["user_impressions_7d"].notna().all() and (a["article_age_h"] > 0).all()


def test_empty_day_gives_valid_empty_partitions_and_a_warning(in_world, caplog):
    empty_day = START + timedelta(days=60)  # beyond the 28-day window of any data
    result = build.build(empty_day)
    assert result.rows["article_engagement"] == 0 and result.rows["user_category"] == 0
    assert any("no events" in w for w in result.warnings)
    frame = pd.read_parquet(partitions.view_path("article_engagement", empty_day))
    assert list(frame.columns) == view_columns("article_engagement")
    assert "article_ctr_24h" in frame.columns
    assert partitions.read_manifest(empty_day) is not None
    import pyarrow as pa
    import pyarrow.parquet as pq

    # typed even when empty: a null-typed column would break DuckDB's join over all partitions
    assert pq.read_schema(partitions.view_path("user_category", empty_day)).field("category").type == pa.string()
    attrs = pd.read_parquet(partitions.view_path("article_attributes", D2)).iloc[:1]
    entities = pd.DataFrame(
        {
            "user_id": [int(pd.read_parquet(partitions.view_path("user_activity", D2))["user_id"].iloc[0])],
            "article_id": [int(attrs["article_id"].iloc[0])],
            "category": [attrs["article_category"].iloc[0]],
            "event_timestamp": [pd.Timestamp(D2 + timedelta(days=1), tz="UTC") + pd.Timedelta(hours=3)],
        }
    )
    assert retrieval.training_rows(entities)["user_reads_28d"].notna().all()


def test_wrong_schema_and_missing_table_fail_clearly(fresh_db):
    query("ALTER TABLE warehouse.publications RENAME COLUMN trust_score TO trust")
    with pytest.raises(NewsrecError, match="warehouse.publications lacks column.*trust_score"):
        build.build(D1)
    query("DROP TABLE warehouse.articles CASCADE")
    with pytest.raises(NewsrecError, match="table warehouse.articles is missing"):
        build.build(D1)
    assert not partitions.root().exists() or not list(partitions.root().rglob("*.parquet"))
    assert query("SELECT status FROM ops.runs WHERE stage = 'features'") == [("failed",), ("failed",)]


def test_failure_midway_keeps_the_published_day(in_world):
    """A crash inside the pipeline leaves the last complete partitions and manifest."""
    before = {v: _digest(partitions.view_path(v, D2)) for v in VIEWS}
    manifest = partitions.read_manifest(D2)
    broken = partitions.partial_path("user_category", D1)
    saved = broken.read_bytes()
    broken.write_bytes(b"not parquet")
    try:
        with pytest.raises(Exception, match="(?i)parquet"):
            build.build(D2)
    finally:
        broken.write_bytes(saved)
    assert partitions.read_manifest(D2) == manifest
    assert {v: _digest(partitions.view_path(v, D2)) for v in VIEWS} == before
    assert not list((partitions.root() / ".staging").iterdir())
    assert os.path.exists(partitions.manifest_path(D2))
