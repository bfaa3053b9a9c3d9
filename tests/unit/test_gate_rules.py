"""Every rule of the promotion gate can refuse: for each one a model built to fail it (a small
LightGBM model fitted on labels that violate the rule) and a gate decision that names it.

Pure: hand-made feature rows of a few hundred lists, no database; each fit takes well under
a second. The metric rules (floor, popularity, margin) are fed metric tables directly; the
trained world's versions of them are in tests/model/test_gate_world.py."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from pipelines.core.config import params
from pipelines.features.matrix import SOURCE_COLUMNS, fit_spec, to_matrix
from pipelines.model import behaviour, counterfactual, promotion

CATEGORIES = ("news", "sports", "business", "culture", "science")
LISTS, PER_LIST = 300, 10
GOOD = {"model": {"ndcg@10": 0.55}, "popularity": {"ndcg@10": 0.41}}


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return make_rows()


def make_rows() -> pd.DataFrame:
    """Lists of 10 candidates for 300 (day, user) pairs; user features constant per list."""
    rng = np.random.default_rng(3)
    n = LISTS * PER_LIST
    user = np.repeat(np.arange(LISTS), PER_LIST)
    request = pd.Timestamp("2026-05-09 04:00", tz="UTC")
    per_user = {
        "user_impressions_7d": rng.integers(5, 80, LISTS), "user_reads_7d": rng.integers(1, 20, LISTS),
        "user_ctr_7d": rng.uniform(0.05, 0.4, LISTS), "user_dwell_7d_s": rng.uniform(30, 900, LISTS),
        "user_reads_28d": rng.integers(1, 60, LISTS), "user_dwell_28d_s": rng.uniform(60, 3000, LISTS),
        "user_mean_dwell_28d_s": rng.uniform(20, 120, LISTS), "user_days_since_last_read": rng.uniform(0, 5, LISTS),
        "user_active_days_28d": rng.integers(1, 28, LISTS), "user_tenure_days": rng.integers(30, 900, LISTS),
        "user_is_trial": rng.integers(0, 2, LISTS), "user_region": rng.choice(["LATAM", "AFRICA", "NA"], LISTS),
        "user_declared_interests": rng.choice(["news,sports", "business", ""], LISTS),
    }  # fmt: skip
    frame = pd.DataFrame({name: values[user] for name, values in per_user.items()})
    frame["user_id"] = user
    frame["day"] = request.date()
    frame["event_id"] = np.arange(n)
    frame["event_timestamp"] = request
    frame["article_category"] = rng.choice(CATEGORIES, n)
    frame["article_published_ts"] = (request.timestamp() - rng.uniform(0.5, 40, n) * 3600).astype(np.int64)
    for name, values in {
        "article_impressions_24h": rng.integers(10, 500, n), "article_reads_24h": rng.integers(0, 100, n),
        "article_ctr_24h": rng.uniform(0, 0.3, n), "article_mean_dwell_24h_s": rng.uniform(10, 200, n),
        "article_publication_trust": rng.uniform(0.2, 1, n), "article_publication_flagged": rng.integers(0, 2, n),
        "user_cat_impressions_28d": rng.integers(0, 30, n), "user_cat_reads_28d": rng.integers(0, 10, n),
        "user_cat_dwell_28d_s": rng.uniform(0, 600, n), "user_cat_dwell_share_28d": rng.uniform(0, 0.6, n),
        "user_cat_ctr_28d": rng.uniform(0, 0.5, n),
    }.items():  # fmt: skip
        frame[name] = values
    assert set(SOURCE_COLUMNS) <= set(frame.columns)
    return frame


def good_label(m: pd.DataFrame) -> np.ndarray:
    """What a sound ranker learns: article quality, the reader's affinity, freshness."""
    return (
        5 * m["article_ctr_24h"] + 2 * m["user_cat_dwell_share_28d"] + m["article_publication_trust"]
        - 0.03 * m["article_age_h"]
    ).to_numpy()  # fmt: skip


def fit(rows: pd.DataFrame, label, train_rows: pd.DataFrame | None = None):
    """A small LightGBM model fitted on ``label(matrix)``; returns its predict and the spec."""
    spec = fit_spec(rows)
    X = to_matrix(rows if train_rows is None else train_rows, spec)
    booster = lgb.train(
        {"objective": "regression", "num_leaves": 15, "min_data_in_leaf": 5, "learning_rate": 0.2,
         "verbosity": -1, "seed": 1, "num_threads": 1, "deterministic": True},
        lgb.Dataset(X, label(X)), num_boost_round=40,
    )  # fmt: skip
    return booster.predict, spec


def gate(predict, spec, rows, metrics=GOOD, champion=None, comparison=None) -> promotion.Decision:
    tests = promotion.model_tests(predict, spec, rows)
    return promotion.decide("challenger", metrics, tests, champion, comparison)


def paired(challenger: float, champion: float, lower: float) -> counterfactual.Paired:
    """A paired comparison on the logged metric with the given point estimates and lower bound."""
    diff = challenger - champion
    return counterfactual.Paired("ndcg@10", "logged labels", challenger, champion, diff, lower, 2 * diff - lower,
                                 0.95, 500, 300, 300)  # fmt: skip


def test_a_sound_model_passes_every_rule(rows):
    predict, spec = fit(rows, good_label)
    decision = gate(predict, spec, rows)
    assert decision.promoted, decision.reasons
    assert decision.failed == [] and decision.evidence["failed_rules"] == []
    assert set(decision.evidence["tests"]["passed"]) == set(behaviour.RULES)


def _only(decision: promotion.Decision, rule: str) -> None:
    assert not decision.promoted
    assert decision.failed == [rule], decision.reasons
    assert any(r.startswith(f"{rule}: ") for r in decision.reasons), decision.reasons


def test_invariance_plan_refuses_a_model_that_ranks_by_the_readers_plan(rows):
    def label(m):  # trial readers are pushed towards sports, paying ones away from it
        sports = (m["article_category"] == spec.categorical["article_category"].index("sports")).to_numpy()
        return good_label(m) + 3 * sports * (2 * m["user_is_trial"].to_numpy() - 1)

    spec = fit_spec(rows)
    predict, spec = fit(rows, label)
    decision = gate(predict, spec, rows)
    _only(decision, "invariance_plan")
    assert decision.evidence["tests"]["invariance_plan_flipped_pairs"] > 0.1


def test_invariance_tenure_refuses_a_model_that_ranks_by_tenure(rows):
    def label(m):  # long-standing readers get stale, low-quality articles on top
        veteran = (m["user_tenure_days"] > 600).to_numpy()
        return np.where(veteran, -good_label(m), good_label(m))

    predict, spec = fit(rows, label)
    _only(gate(predict, spec, rows), "invariance_tenure")


def test_direction_affinity_refuses_a_model_that_punishes_affinity(rows):
    predict, spec = fit(rows, lambda m: good_label(m) - 6 * m["user_cat_dwell_share_28d"].to_numpy())
    decision = gate(predict, spec, rows)
    _only(decision, "direction_affinity")
    assert decision.evidence["tests"]["direction_affinity_mean_score_change"] < 0


def test_direction_freshness_refuses_a_model_that_prefers_old_articles(rows):
    predict, spec = fit(rows, lambda m: good_label(m) + 0.1 * m["article_age_h"].to_numpy())
    decision = gate(predict, spec, rows)
    _only(decision, "direction_freshness")
    assert decision.evidence["tests"]["direction_freshness_mean_score_change"] < 0


def test_new_users_refuses_a_model_that_ties_every_list_without_history(rows):
    # trained on a world where readers without history carry no signal: a constant label
    rng = np.random.default_rng(4)
    cold_users = rng.random(LISTS) < 0.4
    train_rows = rows.copy()
    cold = cold_users[rows["user_id"].to_numpy()]
    train_rows.loc[cold] = behaviour.as_new_users(rows.loc[cold])
    predict, spec = fit(rows, lambda m: np.where(m["user_reads_28d"].to_numpy() > 0, good_label(m), 0.0), train_rows)
    decision = gate(predict, spec, rows)
    _only(decision, "new_users")
    assert decision.evidence["tests"]["new_users_ordered_lists"] < 0.5


def test_floor_refuses_a_model_below_the_absolute_ndcg(rows):
    predict, spec = fit(rows, good_label)
    weak = {"model": {"ndcg@10": 0.15}, "popularity": {"ndcg@10": 0.1}}
    _only(gate(predict, spec, rows, metrics=weak), "floor")


def test_popularity_refuses_a_model_that_does_not_beat_popularity(rows):
    predict, spec = fit(rows, good_label)
    _only(gate(predict, spec, rows, metrics={"model": {"ndcg@10": 0.4}, "popularity": {"ndcg@10": 0.41}}), "popularity")


def test_margin_refuses_a_challenger_that_only_ties_the_champion(rows):
    predict, spec = fit(rows, good_label)
    tie = paired(0.55, 0.549, lower=-0.004)  # 0.55 < 0.549 + 0.002, and the interval holds 0
    decision = gate(predict, spec, rows, champion="7", comparison=tie)
    _only(decision, "margin")
    assert "does not beat champion 7" in decision.reasons[-1]
    assert decision.evidence["comparison"]["difference"] == pytest.approx(0.001)
    assert decision.evidence["champion_ndcg@10"] == 0.549
    assert gate(predict, spec, rows, champion="7", comparison=paired(0.55, 0.547, lower=0.0021)).promoted


def _one_user_better_log(users: int = 40) -> tuple[counterfactual.Log, np.ndarray, np.ndarray]:
    """One read per user at logged position 9; the champion ranks it last for everyone, the
    challenger first for one user only: a real gain, carried by a single user."""
    groups = np.repeat(np.arange(users), 10)
    position = np.tile(np.arange(10), users)
    clicks = (position == 9).astype(np.float64)
    log = counterfactual.Log(groups, groups.copy(), 1.0 / (position + 1.0), clicks, np.full(len(groups), 60.0))
    champion = -position.astype(np.float64)
    challenger = np.where(groups == 0, position, -position).astype(np.float64)
    return log, challenger, champion


def test_margin_refuses_a_challenger_whose_interval_does_not_clear_it_although_its_point_estimate_does(rows):
    log, challenger, champion = _one_user_better_log()
    comparison = counterfactual.paired_ips(log, challenger, champion, np.arange(len(challenger)), clip=50,
                                           resamples=500, confidence=0.95, seed=0)  # fmt: skip
    margin = params("promotion")["margin"]
    assert comparison.difference > margin  # the old rule (point estimates) would have promoted it
    assert comparison.lower < margin
    predict, spec = fit(rows, good_label)
    decision = gate(predict, spec, rows, champion="7", comparison=comparison)
    _only(decision, "margin")
    assert decision.evidence["comparison"]["metric"] == "ips_ndcg@10"
    assert decision.evidence["comparison"]["lower"] == comparison.lower
    assert "95% one-sided" in decision.reasons[-1] and "IPS" in decision.reasons[-1]


def test_the_flipped_pair_measure_and_ordered_lists():
    groups = np.array([0, 0, 0, 1, 1])
    base = np.array([3.0, 2.0, 1.0, 1.0, 2.0])
    assert behaviour.flipped_pairs(groups, base, base + 5) == 0.0
    assert behaviour.flipped_pairs(groups, base, -base) == 1.0
    assert behaviour.flipped_pairs(groups, base, np.array([3.0, 1.0, 2.0, 1.0, 2.0])) == pytest.approx(2 / 8)
    assert behaviour.ordered_lists(groups, np.array([1.0, 1.0, 1.0, 0.0, 2.0]), 2.0, 0.05) == 0.5
    assert behaviour.ordered_lists(groups, np.array([1.0, 1.01, 1.0, 0.0, 2.0]), 2.0, 0.05) == 0.5  # 1% of 2
    assert behaviour.ordered_lists(groups, np.array([1.0, 1.2, 1.0, 0.0, 2.0]), 2.0, 0.05) == 1.0
