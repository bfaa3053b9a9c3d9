"""Pure pieces of the simulator, no database."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines.core.errors import NewsrecError
from pipelines.warehouse import simulator as sim
from pipelines.warehouse.simulator import behaviour

CFG = sim.SimConfig(users=500, articles_per_day=300, start=date(2026, 1, 1), seed=1)


def test_window_pick_respects_bounds():
    times = np.array([0.0, 10.0, 20.0, 30.0])
    t = np.array([5.0, 25.0, 30.0, -1.0])
    u = np.array([0.99, 0.0, 0.99, 0.5])
    idx = behaviour._pick_from_window(times, t, window_s=15.0, u=u)
    assert idx.tolist() == [0, 2, 3, -1]  # (t - window, t]: 10 is out for t=25


def test_articles_are_deterministic_and_in_their_day():
    pubs = sim.make_publications(CFG)
    a1, q1 = sim.make_articles(CFG, date(2026, 1, 2), pubs)
    a2, q2 = sim.make_articles(CFG, date(2026, 1, 2), pubs)
    pd.testing.assert_frame_equal(a1, a2)
    assert np.array_equal(q1, q2)
    assert len(a1) == 300 and a1["article_id"].is_unique
    assert (a1["published_at"].dt.date == date(2026, 1, 2)).all()
    assert set(a1["category"]) <= set(sim.CATEGORIES)
    thin, _ = sim.make_articles(CFG, date(2026, 1, 2), pubs, frozenset({"thin-day"}))
    assert len(thin) < 300 / 5


def test_users_have_normalised_tastes_and_declared_interests():
    pubs = sim.make_publications(CFG)
    users = sim.make_base_users(CFG, pubs)
    assert np.allclose(users.taste.sum(axis=1), 1.0)
    assert set(users.frame["region"]) == set(sim.REGIONS)
    assert (pd.to_datetime(users.frame["signup_date"]) < pd.Timestamp(CFG.start)).all()
    declared = users.frame["declared_interests"].str.strip("{}").str.split(",")
    assert declared.map(lambda xs: all(x in sim.CATEGORIES for x in xs if x)).all()


def test_drifted_taste_moves_mass_only_after_the_drift_date():
    cfg = sim.SimConfig(**{**CFG.__dict__, "drift_from": date(2026, 1, 10), "drift_strength": 0.5})
    taste = np.full((2, len(sim.CATEGORIES)), 1 / len(sim.CATEGORIES))
    assert sim.drifted_taste(cfg, taste, date(2026, 1, 9)) is taste
    after = sim.drifted_taste(cfg, taste, date(2026, 1, 10))
    drift_cols = [sim.CATEGORIES.index(c) for c in cfg.drift_categories]
    assert np.allclose(after.sum(axis=1), 1.0)
    assert (after[:, drift_cols] > taste[:, drift_cols]).all()


def test_faults_damage_what_they_say():
    events = pd.DataFrame(
        {
            "event_id": np.arange(100),
            "article_id": np.arange(100) + 1000,
            "event_type": ["read"] * 50 + ["impression"] * 50,
            "dwell_seconds": [30.0] * 50 + [np.nan] * 50,
        }
    )
    rng = np.random.default_rng(0)
    assert sim.inject_faults(events, frozenset({"null-dwell"}), rng)["dwell_seconds"].iloc[:50].isna().any()
    assert (sim.inject_faults(events, frozenset({"negative-dwell"}), rng)["dwell_seconds"] < 0).any()
    dup = sim.inject_faults(events, frozenset({"duplicates"}), rng)
    assert len(dup) > len(events) and dup["event_id"].duplicated().any()
    unk = sim.inject_faults(events, frozenset({"unknown-articles"}), rng)
    assert (unk["article_id"] >= sim.UNKNOWN_ARTICLE_BASE).any()


def test_config_round_trip_and_validation():
    cfg = sim.SimConfig(**{**CFG.__dict__, "drift_from": date(2026, 2, 1)})
    assert sim.SimConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(NewsrecError, match="drift categories"):
        sim.SimConfig(**{**CFG.__dict__, "drift_categories": ["astrology"]}).validate()
    with pytest.raises(NewsrecError, match="--users"):
        sim.SimConfig(**{**CFG.__dict__, "users": 3}).validate()
