"""The canary's always-valid test and the promotion step's alpha-spending plan: the bounds hold
at every look at the stated rate, the plan spends what its spending function says, a clear
lift is found, today's bootstrap is the fixed interval the simulator uses, and the simulator
runs."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest

from pipelines.experiments import lifecycle, sequential
from pipelines.experiments import simulate as sim

TEST = {"alpha": 0.1, "mixture_tau": 0.1, "confidence": 0.9}


def _streams(n_streams: int, users: int, looks: int, lift: float, seed: int):
    """Per stream and look: difference of the arms' user means and its variance. Users keep a
    personal level (lognormal) and add one noisy day per look, as the promoter's evidence does."""
    rng = np.random.default_rng(seed)
    level = rng.lognormal(3.0, 0.5, size=(n_streams, 2, users))
    level[:, 0] *= 1.0 + lift  # arm 0: the challenger
    total = np.zeros_like(level)
    out = []
    for k in range(1, looks + 1):
        total += rng.gamma(2.0, level / 2.0)
        y = total / k
        mean, var = y.mean(axis=2), y.var(axis=2, ddof=1) / users
        out.append((mean[:, 0] - mean[:, 1], var.sum(axis=1), mean[:, 1]))
    return out


def _canary(diff, var, champion):
    """The canary's always-valid bounds (diff -/+ the mSPRT's half width, as decide.py and the
    simulator compute them) with TEST's level and mixture (tau relative to the champion)."""
    h = sequential.half_width(var, TEST["mixture_tau"] * np.abs(champion), TEST["alpha"])
    return diff - h, diff + h


def test_bounds_cover_the_true_difference_at_every_look_at_the_stated_rate():
    looks = _streams(400, 200, 12, 0.0, seed=3)  # no difference: true diff 0
    missed_new = np.zeros(400, dtype=bool)
    missed_old = np.zeros(400, dtype=bool)
    for diff, var, champion in looks:
        low, _ = _canary(diff, var, champion)
        missed_new |= low > 0
        low_old, _ = sequential.fixed_interval(diff, var, 0.8)  # its lower bound: one-sided 90%
        missed_old |= low_old > 0
    # one-sided alpha 0.1: binomial(400, 0.1) stays under 56 with p > 0.99; in practice far under
    assert missed_new.sum() <= 56, missed_new.sum()
    # a fixed one-sided 90% bound looked at 12 times is wrong much more often than 10%
    assert missed_old.sum() > missed_new.sum() and missed_old.sum() > 56, (missed_old.sum(), missed_new.sum())


@pytest.mark.parametrize("spending", sequential.SPENDING)
def test_the_plan_spends_its_spending_function_at_each_look(spending):
    """On the canonical joint distribution (Brownian motion at the looks' information times),
    the share of paths that have crossed by look k is alpha(t_k), within Monte-Carlo error."""
    alpha, horizon, first, paths = 0.05, 11, 3, 200_000
    bounds = sequential.spending_boundaries(alpha, horizon, first, spending)
    assert np.all(np.isinf(bounds[:first])) and len(bounds) == horizon + 1
    t = np.arange(first, horizon + 1) / horizon
    rng = np.random.default_rng(11)
    b = np.cumsum(rng.normal(size=(paths, len(t))) * np.sqrt(np.diff(t, prepend=0.0)), axis=1)
    crossed = np.cumsum(b / np.sqrt(t) > bounds[first:], axis=1) > 0
    want = sequential.spent(t, alpha, spending)
    se = np.sqrt(want * (1 - want) / paths)
    assert np.all(np.abs(crossed.mean(axis=0) - want) < 4 * se + 1e-4), (crossed.mean(axis=0), want)
    assert abs(want[-1] - alpha) < 1e-12
    # the first look is the normal quantile of what is spent by then
    assert abs(bounds[first] - NormalDist().inv_cdf(1 - want[0])) < 1e-9


def test_the_plans_boundaries():
    obf = sequential.spending_boundaries(0.05, 11, 3, "obrien_fleming")[3:]
    pocock = sequential.spending_boundaries(0.05, 11, 3, "pocock")[3:]
    assert np.all(np.diff(obf) < 0)  # strict early, close to the fixed-sample 1.64 at the end
    assert 1.645 < obf[-1] < 1.9 and obf[0] > 3.0
    assert np.ptp(pocock[1:]) < 0.15 and pocock[-1] > obf[-1]  # Pocock: about flat, a higher last one
    # a smaller level (more challengers) raises every boundary
    assert np.all(sequential.spending_boundaries(0.05 / 3, 11, 3, "obrien_fleming")[3:] > obf)
    # the stored settings reach the plan: alpha split over the challengers
    test = {"alpha": 0.1, "min_days": 2, "horizon_days": 6, "spending": "pocock"}
    assert np.array_equal(sequential.plan(test, 2), sequential.spending_boundaries(0.05, 6, 2, "pocock"))
    with pytest.raises(ValueError, match="within the horizon"):
        sequential.spending_boundaries(0.05, 2, 3, "pocock")
    with pytest.raises(ValueError, match="unknown spending"):
        sequential.spent(0.5, 0.05, "linear")


def test_the_plan_holds_on_user_level_evidence_at_the_stated_rate():
    """The promoter's estimate (users' means over their days so far, a personal level each)
    with the plan's boundaries, looked at every day: wrong no more often than alpha."""
    looks = _streams(400, 200, 12, 0.0, seed=6)
    bounds = sequential.spending_boundaries(0.1, 12, 3, "obrien_fleming")
    wrong = np.zeros(400, dtype=bool)
    for m, (diff, var, _) in enumerate(looks, start=1):
        wrong |= diff > bounds[m] * np.sqrt(var)
    assert wrong.sum() <= 56, wrong.sum()  # binomial(400, 0.1) stays under 56 with p > 0.99
    lifted = _streams(100, 200, 12, 0.25, seed=7)
    found = np.zeros(100, dtype=bool)
    for m, (diff, var, _) in enumerate(lifted, start=1):
        found |= diff > bounds[m] * np.sqrt(var)
    assert found.mean() >= 0.9


def test_a_clear_lift_is_detected_and_the_bound_tightens():
    looks = _streams(50, 300, 8, 0.25, seed=4)
    lows = [_canary(d, v, c)[0] for d, v, c in looks]
    assert (lows[-1] > 0).mean() >= 0.9
    widths = [float(np.mean(d - lo)) for (d, _, _), lo in zip(looks, lows, strict=True)]
    assert widths[-1] < widths[0]


def test_half_width_solves_the_test_and_several_arms_widen_it():
    var, tau = np.array([4.0, 1.0]), np.array([3.0, 3.0])
    h = sequential.half_width(var, tau, 0.05)
    assert np.allclose(sequential.msprt_log_lr(h, var, tau), np.log(20), atol=1e-6)
    assert np.all(sequential.half_width(var, tau, 0.05 / 3) > h)  # Bonferroni over three challengers
    assert sequential.arm_alpha({"alpha": 0.05}, 3) == 0.05 / 3


def test_the_bootstrap_of_today_is_the_fixed_interval_the_simulator_uses():
    rng = np.random.default_rng(5)
    a, b = rng.exponential(30.0, 800) + 3.0, rng.exponential(30.0, 2400)
    diff, (lo, hi) = sequential.bootstrap_diff(a, b, 2000, 0.95, rng)
    var = a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)
    flo, fhi = sequential.fixed_interval(diff, var, 0.95)
    assert abs(lo - flo) < 0.1 * (fhi - flo) and abs(hi - fhi) < 0.1 * (fhi - flo)


def test_the_simulator_applies_both_rules_with_the_real_decision_code():
    cfg = lifecycle.settings()
    cfg["share_steps"] = [0.5, 1.0]
    big = sim.simulate(30, 8, 1500, 0.6, ["new", "old"], seed=1, cfg=cfg)
    new, old = big.rules
    assert (new.rule, old.rule) == ("new", "old")
    assert new.promoted >= 25 and old.promoted >= 25 and new.demoted == 0
    assert new.promoted_by_night[-1] == new.promoted and new.promoted_by_night[1] == 0  # min_days: not on night 2
    lo, hi = new.promoted_ci
    assert lo <= new.promoted_share <= hi
    aa = sim.simulate(30, 6, 1500, 0.0, ["new"], seed=2, cfg=cfg).rules[0]
    assert aa.promoted <= 3
    assert "new" in sim.render(big) and "old" in sim.render(big)


def test_wilson_interval():
    lo, hi = sim.wilson(100, 2000)
    assert 0.041 < lo < 0.05 < hi < 0.061
    lo, hi = sim.wilson(0, 10)
    assert lo < 1e-12 and 0.2 < hi < 0.35
