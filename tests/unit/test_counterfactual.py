"""Counterfactual evaluation on hand-made logs whose examination propensities are known:
the position-based click model recovers them, and the IPS estimate of a ranking's discounted
dwell covers the true value (which the logged metric misses)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.core.config import params
from pipelines.model import counterfactual, propensity
from pipelines.model.propensity import Propensity

THETA = 1.0 / (np.arange(10) + 1.0)  # examination at positions 0..9 (position bias 1)


def _intervention_log(rng: np.random.Generator, n_articles: int = 400, shows: int = 200) -> pd.DataFrame:
    """Each article shown ``shows`` times at uniformly random positions (the intervention), clicked
    with probability theta_position x its relevance; counted per (article, source, position)."""
    relevance = rng.uniform(0.05, 0.9, size=n_articles)
    article = np.repeat(np.arange(n_articles), shows)
    position = rng.integers(0, 10, size=len(article))
    click = rng.random(len(article)) < THETA[position] * relevance[article]
    frame = pd.DataFrame({"article_id": article, "source": "logging policy", "position": position, "click": click})
    return (
        frame.groupby(["article_id", "source", "position"], as_index=False)
        .agg(impressions=("click", "size"), clicks=("click", "sum"))
        .astype({"impressions": float, "clicks": float})
    )


def test_position_based_model_recovers_known_propensities_from_interventions():
    cells = _intervention_log(np.random.default_rng(1))
    theta, info = propensity.fit_pbm(cells, min_impressions=50)
    assert len(theta) == 10 and theta[0] == 1.0
    assert np.max(np.abs(theta - THETA)) < 0.03, theta
    # the naive estimate (click rate by position relative to the top) is right here only because the
    # positions were random; the fit must not be worse than it
    naive = cells.groupby("position")["clicks"].sum() / cells.groupby("position")["impressions"].sum()
    assert np.max(np.abs(theta - THETA)) <= np.max(np.abs(naive.to_numpy() / naive.iloc[0] - THETA)) + 0.01
    assert info["iterations"] > 1


def test_the_accelerated_fit_reaches_plain_em_fixed_point_in_fewer_steps():
    """SQUAREM only speeds EM up: plain EM run to convergence (written out here, one step per
    loop) lands where fit_pbm does, and fit_pbm needs far fewer EM steps to get there."""
    rng = np.random.default_rng(3)
    cells = _intervention_log(rng, n_articles=300, shows=60)
    item = cells["article_id"].to_numpy()
    pos = cells["position"].to_numpy()
    n, c = cells["impressions"].to_numpy(), cells["clicks"].to_numpy()
    theta, gamma = np.full(10, 0.5), np.full(300, 0.3)
    plain_steps = 0
    for plain_steps in range(1, 20_001):  # noqa: B007
        t, g = theta[pos], gamma[item]
        rest = (n - c) / (1 - t * g)
        new_theta = np.bincount(pos, weights=c + rest * t * (1 - g), minlength=10) / np.bincount(pos, weights=n)
        gamma = np.bincount(item, weights=c + rest * (1 - t) * g, minlength=300) / np.bincount(item, weights=n)
        moved = np.max(np.abs(new_theta / new_theta[0] - theta / theta[0]))
        theta = new_theta
        if moved < 1e-9:
            break
    fitted, info = propensity.fit_pbm(cells, min_impressions=10, iterations=5_000, tol=1e-9)
    np.testing.assert_allclose(fitted, np.minimum(theta / theta[0], 1.0), atol=1e-5)
    assert info["iterations"] * 3 < plain_steps, (info, plain_steps)


def test_personalised_lists_are_left_out_of_the_fit_when_others_exist():
    rng = np.random.default_rng(2)
    cells = _intervention_log(rng)
    # a model that puts each article on top for exactly the readers who click: confounded
    confounded = pd.DataFrame({"article_id": np.arange(400), "source": "model 7", "position": 0,
                               "impressions": 50.0, "clicks": 50.0})  # fmt: skip
    with_model = pd.concat([cells, confounded], ignore_index=True)
    result = propensity.estimate_from_cells(with_model, {"min_impressions": 50})
    assert result.details["excluded"] == "impressions ordered by a personalised model"
    assert result.details["sources"] == ["logging policy"]
    assert np.max(np.abs(result.theta - THETA)) < 0.03
    only_model = propensity.estimate_from_cells(
        confounded.assign(position=np.arange(400) % 10), {"min_impressions": 10}
    )
    assert only_model.details["confounded"] is True


def _ranking_log(rng: np.random.Generator, users: int = 3000, days: int = 2, slate: int = 10):
    """Users' slates in a logging order unrelated to relevance; clicks = examined and relevant."""
    n = users * days * slate
    user = np.repeat(np.arange(users), days * slate)
    day = np.tile(np.repeat(np.arange(days), slate), users)
    position = np.tile(np.arange(slate), users * days)
    relevance = rng.beta(0.6, 2.0, size=n)
    expected_dwell = rng.uniform(20, 200, size=n)
    click = rng.random(n) < THETA[position] * relevance
    dwell = np.where(click, rng.exponential(expected_dwell), 0.0)
    return user, day, position, relevance, expected_dwell, click, dwell


def test_ips_estimate_covers_the_true_discounted_dwell_of_a_new_ranking():
    rng = np.random.default_rng(3)
    user, day, position, relevance, expected_dwell, click, dwell = _ranking_log(rng)
    groups = user * 10 + day
    ties = np.arange(len(user))
    truth_gain = relevance * expected_dwell
    good = truth_gain + rng.normal(0, 50, size=len(user))  # a model that knows the truth, noisily
    logging = -position.astype(float)  # the logging order itself
    true_dcg = {
        name: counterfactual.group_dcg(groups, truth_gain, scores, ties).mean()
        for name, scores in (("good", good), ("logging", logging))
    }
    log = counterfactual.Log(groups, user, THETA[position], click.astype(float), dwell)
    table = counterfactual.estimate(log, {"good": good, "logging": logging}, ties, clip=1e9, resamples=300)
    for name, truth in true_dcg.items():
        m = table["scorers"][name]
        lo, hi = m["ips_dcg@10_ci"]
        assert lo <= truth <= hi, (name, truth, m)
    assert table["clipped_share"] == 0.0
    # the logged (unweighted) DCG prefers the logging order; the IPS estimate, like the truth, does not
    naive = counterfactual.Log(groups, user, np.ones(len(user)), click.astype(float), dwell)
    logged = counterfactual.estimate(naive, {"good": good, "logging": logging}, ties, resamples=10)["scorers"]
    assert true_dcg["good"] > true_dcg["logging"]
    assert logged["logging"]["ips_dcg@10"] > logged["good"]["ips_dcg@10"]
    assert table["scorers"]["good"]["ips_dcg@10"] > table["scorers"]["good"]["ips_dcg@10_ci"][0]
    assert table["scorers"]["good"]["ips_ndcg@10"] > table["scorers"]["logging"]["ips_ndcg@10"]
    assert 0 < table["scorers"]["good"]["ips_ndcg@10"] <= 1


def test_clipping_caps_weights_and_reports_the_clipped_share():
    rng = np.random.default_rng(4)
    user, day, position, _, _, click, dwell = _ranking_log(rng, users=300)
    log = counterfactual.Log(user * 10 + day, user, THETA[position], click.astype(float), dwell)
    table = counterfactual.estimate(
        log, {"logging": -position.astype(float)}, np.arange(len(user)), clip=4, resamples=20
    )
    clicked_low = (click & (position >= 4)).sum() / click.sum()  # weight 1/theta = position + 1 > 4
    assert table["clipped_share"] == pytest.approx(clicked_low)
    assert log.weights(4).max() == 4


def test_without_positions_there_is_no_counterfactual_metric_and_the_caveat_says_why():
    unknown = Propensity(None, caveat=propensity.POSITIONS_UNKNOWN)
    with pytest.raises(ValueError, match="positions are unknown"):
        unknown.at(np.array([0, 1]))
    table = counterfactual.evaluate_split(None, {"model": np.zeros(3)}, unknown)
    assert table["available"] is False
    text = counterfactual.render(table)
    assert "not available" in text and "logged metric is reported instead" in text


def _paired_case(users: int = 1500):
    """A ranking log (logging order unrelated to relevance) and three models: one that knows the
    truth noisily, a random one, and a second random one of the same quality."""
    rng = np.random.default_rng(5)
    user, day, position, relevance, expected_dwell, click, dwell = _ranking_log(rng, users=users)
    log = counterfactual.Log(user * 10 + day, user, THETA[position], click.astype(float), dwell)
    good = relevance * expected_dwell + rng.normal(0, 50, size=len(user))
    return log, good, rng.random(len(user)), rng.random(len(user))


def test_paired_bootstrap_clears_the_margin_for_a_truly_better_challenger_only():
    log, good, random_a, random_b = _paired_case()
    ties = np.arange(len(good))
    kw = {"clip": 1e9, "resamples": 300, "confidence": 0.95, "seed": 0}
    better = counterfactual.paired_ips(log, good, random_a, ties, **kw)
    assert better.difference == pytest.approx(better.challenger - better.champion)
    assert better.lower <= better.difference <= better.upper
    assert better.clears(0.002) and better.lower > 0.05
    same = counterfactual.paired_ips(log, random_b, random_a, ties, **kw)
    assert same.lower < 0 < same.upper and not same.clears(0.002)
    itself = counterfactual.paired_ips(log, good, good, ties, **kw)
    assert (itself.difference, itself.lower, itself.upper) == (0.0, 0.0, 0.0) and not itself.clears(0.002)
    table = counterfactual.estimate(log, {"good": good, "random": random_a}, ties, clip=1e9, resamples=300)
    assert better.challenger == pytest.approx(table["scorers"]["good"]["ips_ndcg@10"])
    # pairing: for two similar models (champion and challenger usually are) the difference's
    # interval is far narrower than what the two models' separate intervals would give
    similar = good + np.random.default_rng(7).normal(0, 20, size=len(good))
    close = counterfactual.paired_ips(log, similar, good, ties, **kw)
    table = counterfactual.estimate(log, {"good": good, "similar": similar}, ties, clip=1e9, resamples=300)
    widths = [hi - lo for lo, hi in (table["scorers"][n]["ips_ndcg@10_ci"] for n in ("good", "similar"))]
    assert close.upper - close.lower < 0.5 * np.hypot(*widths), (close, widths)


def test_paired_bootstrap_on_the_logged_metric_matches_the_evaluation():
    from pipelines.model.ranking_metrics import ranking_metrics

    log, good, random_a, _ = _paired_case(users=400)
    labels = (log.clicks > 0).astype(np.int32) * (1 + (log.gains > 60))
    ties = np.arange(len(good))
    got = counterfactual.paired_logged(log.groups, log.users, labels, good, random_a, ties,
                                       resamples=200, confidence=0.95, seed=0, caveat="positions unknown")  # fmt: skip
    assert got.metric == "ndcg@10" and got.caveat == "positions unknown"
    assert got.challenger == pytest.approx(ranking_metrics(log.groups, labels, good, ties)["ndcg@10"])
    assert got.champion == pytest.approx(ranking_metrics(log.groups, labels, random_a, ties)["ndcg@10"])
    assert got.lower <= got.difference <= got.upper


def test_the_early_stopping_metric_is_the_evaluations_ips_ndcg():
    from types import SimpleNamespace

    rng = np.random.default_rng(6)
    user, day, position, relevance, _, click, dwell = _ranking_log(rng, users=200)
    position = np.where(rng.random(len(user)) < 0.02, -1, position)  # a few impressions without a position
    rows = pd.DataFrame({"day": day, "user_id": user, "event_id": rng.permutation(len(user)) + 10**6,
                         "is_read": click.astype(int), "dwell": dwell, "position": position})  # fmt: skip
    split = SimpleNamespace(rows=rows, positions=position)
    theta = Propensity(THETA)
    scores = relevance + rng.normal(0, 0.2, size=len(user))
    metric = counterfactual.IpsNdcg(split, theta, dwell=True)
    expected = counterfactual.evaluate_split(split, {"model": scores}, theta)["scorers"]["model"]["ips_ndcg@10"]
    assert metric(scores) == pytest.approx(expected, rel=1e-12)
    name, value, higher_is_better = metric.feval(scores, None)
    assert (name, higher_is_better) == ("ips_ndcg@10", True) and value == metric(scores)
    assert metric(-scores) < metric(scores)
    coarse = np.round(scores, 1)  # ties everywhere: broken as in every evaluation
    expected = counterfactual.evaluate_split(split, {"model": coarse}, theta)["scorers"]["model"]["ips_ndcg@10"]
    assert metric(coarse) == pytest.approx(expected, rel=1e-12)


def test_without_positions_the_gate_compares_on_the_logged_metric_and_says_so():
    from types import SimpleNamespace

    rng = np.random.default_rng(8)
    user, day, position, relevance, _, click, dwell = _ranking_log(rng, users=300)
    rows = pd.DataFrame({"day": day, "user_id": user, "event_id": np.arange(len(user)),
                         "is_read": click.astype(int), "dwell": dwell, "position": -1})  # fmt: skip
    split = SimpleNamespace(rows=rows, positions=np.full(len(user), -1), y=click.astype(np.int32))
    unknown = Propensity(None, caveat=propensity.POSITIONS_UNKNOWN)
    got = counterfactual.compare(split, relevance, rng.random(len(user)), unknown, dwell=True)
    assert (got.metric, got.estimator) == ("ndcg@10", "logged labels")
    assert "positions are unknown" in got.caveat
    assert got.lower > 0 and got.resamples == params("promotion")["comparison"]["resamples"]
    logged = SimpleNamespace(rows=rows.assign(position=position), positions=position, y=split.y)
    known = counterfactual.compare(logged, relevance, rng.random(len(user)), Propensity(THETA), dwell=True)
    assert known.metric == "ips_ndcg@10" and known.caveat is None
