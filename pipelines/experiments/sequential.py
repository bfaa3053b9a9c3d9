"""Intervals for the difference of two arms' mean per-user outcome, and how they are judged.

**The always-valid test (the promoter's rule).** The promoter looks at the evidence every
night and acts as soon as it is convincing, so a fixed-level interval recomputed each night
is wrong more often than its level says. A normal-mixture sequential probability ratio test
(mSPRT; Robbins 1970, Johari et al. 2017 "Always valid inference") stays valid however often
it is looked at. With the difference of the arms' means ``d`` (challenger - champion), its
variance ``V = s_c^2 / n_c + s_b^2 / n_b`` and a half-normal mixing distribution of scale
``tau`` over the true difference theta > 0, the mixture likelihood ratio against theta = 0 is

    L+(d) = 2 sqrt(V / (V + tau^2)) exp(tau^2 d^2 / (2 V (V + tau^2))) Phi(d tau / sqrt(V (V + tau^2)))

a nonnegative martingale of mean 1 when theta <= 0, so P(L+ ever reaches 1/alpha) <= alpha
(Ville's inequality). Promotion is one-sided (the challenger is better), demotion the mirror
test. Inverting both gives the bounds ``d - h`` and ``d + h``, where ``L+(h) = 1/alpha``
(:func:`half_width`): each holds at every night at once with probability >= 1 - alpha.
A win (lower bound above 0) wrongly happens with probability <= alpha, so does a loss.

Why it applies to the promoter's evidence: the estimate at night k is the difference of the
users' means over their days so far. With a user effect and day-level noise, the covariance of
the estimates of nights j <= k is the variance at night k (the "canonical joint
distribution" of group-sequential designs: independent increments in information 1/V), the
condition under which a normal mixture martingale bounds every look. The arms' means are
averages of >= ``min_users`` users, so the normal approximation is the one the bootstrap
relied on too. ``tau`` is given relative to the champion arm's mean (``mixture_tau``,
e.g. 0.05 = differences of about 5% are expected): the mixture only tunes when the test
is most powerful, never its validity.

**Several challengers.** Each challenger is tested at ``alpha / k`` for ``k`` challengers of
the experiment (Bonferroni): the chance that any copy of the champion is ever promoted stays
<= alpha, and so does the chance that any one is ever demoted.

**Today's rule, kept for the comparison only** (``newsrec experiment simulate --rule old``):
a fixed 95% percentile bootstrap interval recomputed every night (:func:`bootstrap_diff`);
the simulator uses its normal approximation (:func:`fixed_interval`: the bootstrap of a
difference of means of hundreds of users converges to it; a unit test checks they agree).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from scipy.special import log_ndtr

RULES = ("new", "old")


def msprt_log_lr(diff: np.ndarray, var: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """log L+ of the one-sided normal-mixture SPRT of "the challenger is not better": the mixing
    distribution is the half-normal of scale ``tau`` over positive differences (arrays or floats)."""
    diff, var, tau2 = np.asarray(diff, float), np.asarray(var, float), np.asarray(tau, float) ** 2
    z = diff * np.sqrt(tau2 / (var * (var + tau2)))
    return (math.log(2.0) + 0.5 * np.log(var / (var + tau2)) + tau2 * diff**2 / (2 * var * (var + tau2))
            + log_ndtr(z))  # fmt: skip


def half_width(var: np.ndarray, tau: np.ndarray, alpha: float) -> np.ndarray:
    """The distance ``h`` from the estimate at which the one-sided test at level ``alpha``
    rejects: log L+(h) = log(1 / alpha). It does not depend on the estimate, so the bounds are
    ``diff - h`` (lower) and ``diff + h`` (upper). Solved by bisection (log L+ increases in h)."""
    var, tau = np.broadcast_arrays(np.asarray(var, float), np.asarray(tau, float))
    target = math.log(1 / alpha)
    sd = np.sqrt(var)
    lo, hi = np.zeros_like(sd), sd * 2.0
    while np.any(small := msprt_log_lr(hi, var, tau) < target):
        hi = np.where(small, hi * 2.0, hi)
    for _ in range(60):
        mid = (lo + hi) / 2
        below = msprt_log_lr(mid, var, tau) < target
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return hi


def confidence_sequence(
    diff: np.ndarray, var: np.ndarray, tau: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """The always-valid bounds (low, high) of the difference: each holds at every night at once
    with probability >= 1 - alpha (together a 1 - 2 alpha two-sided sequence)."""
    h = half_width(var, tau, alpha)
    return np.asarray(diff, float) - h, np.asarray(diff, float) + h


def fixed_interval(diff: np.ndarray, var: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Today's fixed-level interval as the simulator computes it: normal, two-sided."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    half = z * np.sqrt(np.asarray(var, float))
    return np.asarray(diff, float) - half, np.asarray(diff, float) + half


def bootstrap_diff(
    challenger: np.ndarray, champion: np.ndarray, resamples: int, confidence: float, rng: np.random.Generator
) -> tuple[float, tuple[float, float]]:
    """Today's rule: difference of means (challenger - champion) and its percentile bootstrap
    interval, resampling the users of each arm with replacement."""
    diff = float(challenger.mean() - champion.mean())
    boots = np.empty(resamples)
    step = max(1, 4_000_000 // max(len(challenger) + len(champion), 1))
    for lo in range(0, resamples, step):
        k = min(step, resamples - lo)
        a = challenger[rng.integers(0, len(challenger), size=(k, len(challenger)))].mean(axis=1)
        b = champion[rng.integers(0, len(champion), size=(k, len(champion)))].mean(axis=1)
        boots[lo : lo + k] = a - b
    alpha = 1.0 - confidence
    low, high = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return diff, (float(low), float(high))


def arm_alpha(test: dict, challengers: int) -> float:
    """The level each challenger is tested at: ``alpha`` split evenly over the challengers."""
    return float(test.get("alpha", 0.05)) / max(int(challengers), 1)  # experiments created before it: 0.05


def interval(
    rule: str, diff: np.ndarray, var: np.ndarray, champion_mean: np.ndarray, test: dict, challengers: int
) -> tuple[np.ndarray, np.ndarray]:
    """The interval a rule acts on: ``new`` the confidence sequence, ``old`` the fixed one."""
    if rule == "new":
        tau = float(test.get("mixture_tau", 0.05)) * np.maximum(np.abs(np.asarray(champion_mean, float)), 1e-9)
        return confidence_sequence(diff, var, tau, arm_alpha(test, challengers))
    if rule == "old":
        return fixed_interval(diff, var, float(test["confidence"]))
    raise ValueError(f"unknown rule {rule!r} (one of {', '.join(RULES)})")
