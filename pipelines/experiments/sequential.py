"""Intervals for the difference of two arms' mean per-user outcome, and how they are judged.

The promoter looks at the evidence every night and acts as soon as it is convincing, so a
fixed-level interval recomputed each night is wrong more often than its level says. Two
tests that stay valid under the nightly looks, one per kind of step:

**The promotion step: a group-sequential alpha-spending plan** (Lan & DeMets 1983). The
step before 100% has a planned horizon of ``horizon_days`` days of evidence and one look a
night from day ``min_days``. With the difference of the arms' means ``d`` (challenger -
champion) and its variance ``V = s_c^2 / n_c + s_b^2 / n_b``, the look after ``m`` days
promotes when ``Z_m = d / sqrt(V) > c_m`` (demotes when ``Z_m < -c_m``, the mirror test).
The boundaries come from a spending function ``alpha(t)`` (:func:`spent`: O'Brien-Fleming
type by default, or Pocock) at information time ``t_m = m / horizon``: ``c_m`` solves
``P(Z_m > c_m, Z_j <= c_j for j < m) = alpha(t_m) - alpha(t_{m-1})`` on the canonical joint
distribution (``Z_m`` standard normal, ``corr(Z_j, Z_m) = sqrt(t_j / t_m)``, a Brownian motion
seen at the looks), by recursive numerical integration (:func:`spending_boundaries`). So a
copy of the champion is promoted with probability <= alpha(1) = alpha over the whole plan,
and unlike the mSPRT the plan spends all of it (the mSPRT spent ~1% of 5% here), which is
where the power comes from.

Why it holds for the promoter's looks:

* the evidence: the estimate at night m is the difference of the users' means over their days
  so far; with a user effect and day-level noise the estimates of nights j <= m have
  covariance close to the variance at night m (independent increments in information 1/V),
  the canonical form. The normal approximation is the bootstrap's too (hundreds of users).
* the time: the plan uses days of evidence ``m / horizon`` as information time, not the
  unknown information. Here the information gained per day shrinks as the experiment runs
  (the users seen first are the active ones; measured: 1/V per day falls from 0.018 to 0.011
  over 11 days at 50% of 15,000 users), so the true ``corr(Z_j, Z_m) = sqrt(I_j / I_m)`` is at
  least the planned ``sqrt(j / m)``; by Slepian's inequality more correlated looks cross fixed
  boundaries less often, so the error stays <= alpha. Measured on the simulator's users, the
  correlations lie between the two and the realised level is about the nominal one (the
  estimated variance makes ``Z`` ~1% wider than standard), which is why the default alpha is
  0.04: the bar is 5%.
* a missed night is a look not made: crossing fewer boundaries is rarer, still <= alpha. A
  re-run of a night returns its recorded decision, so it is not a second look.
* past the horizon (more than ``horizon_days`` days of evidence at the promotion step) the
  alpha is spent: the arm stays undecided (no bounds), and the reasons say to stop the
  experiment. Keeping the last boundary would spend more than alpha.

**Canary steps: the always-valid mSPRT, for harm only.** A canary (every step below the
promotion step, 10% by default) is there to catch a clearly harmful challenger before it
reaches more readers, not to prove a win: it steps after ``min_days`` unless the upper
bound of its confidence sequence is below 0 (then it is demoted). A normal-mixture
sequential probability ratio test (mSPRT; Robbins 1970, Johari et al. 2017 "Always valid
inference") stays valid however often it is looked at, so a canary may keep looking. With a
half-normal mixing distribution of scale ``tau`` over the true difference theta > 0, the
mixture likelihood ratio against theta = 0 is

    L+(d) = 2 sqrt(V / (V + tau^2)) exp(tau^2 d^2 / (2 V (V + tau^2))) Phi(d tau / sqrt(V (V + tau^2)))

a nonnegative martingale of mean 1 when theta <= 0, so P(L+ ever reaches 1/alpha) <= alpha
(Ville's inequality); the demotion test is the mirror. Inverting both gives the bounds ``d - h``
and ``d + h`` with ``L+(h) = 1/alpha`` (:func:`half_width`). So a challenger at least as good
as the champion is demoted by the canary with probability <= alpha. ``tau`` is relative to
the champion arm's mean (``mixture_tau``, 0.05: differences of about 5%); it tunes when the
test is most powerful, never its validity. The promotion step's test does not depend on the
canary's days (its evidence restarts there); the canary's decision selects the arms that
reach it, on partly the same users, but it lets through every arm that is not clearly worse,
so it hardly selects (the A/A simulation measures the chain as a whole).

**Several challengers.** Each challenger is tested at ``alpha / k`` for ``k`` challengers of
the experiment (Bonferroni), in both tests: the chance that any copy of the champion is ever
promoted stays <= alpha (only the promotion step promotes). A copy can be demoted by either
test (the canary's, then the promotion step's mirror), each at alpha / k, so the chance that
any one is ever demoted is <= 2 alpha (measured: 3.3% at alpha 0.04).

**A new champion restarts the plan.** Evidence counts only days whose champion arm was served
by today's champion (:func:`pipelines.experiments.decide.evaluate_arm`): when training promotes
a model mid-experiment, the challenger is compared with a different model from then on, and
its promotion step starts a fresh plan (the bound above holds per champion it is tested
against, not per experiment).

**Today's rule, kept for the comparison only** (``newsrec experiment simulate --rule old``):
a fixed 95% percentile bootstrap interval recomputed every night (:func:`bootstrap_diff`),
a win needed to step; the simulator uses its normal approximation (:func:`fixed_interval`:
the bootstrap of a difference of means of hundreds of users converges to it; a unit test
checks they agree).
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist

import numpy as np
from scipy.special import log_ndtr, ndtr, ndtri

RULES = ("new", "old")
SPENDING = ("obrien_fleming", "pocock")


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


def spent(t: np.ndarray, alpha: float, spending: str) -> np.ndarray:
    """The Lan-DeMets spending function: the one-sided alpha spent by information time ``t``
    (0 < t <= 1; alpha(1) = alpha). ``obrien_fleming`` spends little early and keeps the last
    boundary near the fixed-sample one; ``pocock`` spends evenly in log time."""
    t = np.minimum(np.asarray(t, float), 1.0)
    if spending == "obrien_fleming":
        return 2.0 * (1.0 - ndtr(ndtri(1.0 - alpha / 2.0) / np.sqrt(t)))
    if spending == "pocock":
        return alpha * np.log1p((math.e - 1.0) * t)
    raise ValueError(f"unknown spending function {spending!r} (one of {', '.join(SPENDING)})")


@lru_cache(maxsize=64)
def _boundaries(alpha: float, times: tuple[float, ...], spending: str, grid: int) -> tuple[float, ...]:
    """z boundaries at the information ``times`` (increasing, last <= 1) by recursive numerical
    integration on the canonical joint distribution (Armitage, McPherson & Rowe 1969): the
    Brownian motion B(t) = Z sqrt(t) has independent N(0, dt) increments; the sub-density of B at
    look k over the paths that crossed no boundary yet is carried on a grid from -8 to the
    boundary b_k, and b_k solves P(B_k > b_k, no crossing before) = alpha(t_k) - alpha(t_{k-1})."""
    budget = np.diff(np.concatenate([[0.0], spent(np.asarray(times), alpha, spending)]))
    out: list[float] = []
    x = w = f = None  # grid, quadrature weights, sub-density at the previous look
    prev = 0.0
    for t, a in zip(times, budget, strict=True):
        sd = math.sqrt(t - prev)
        if f is None:
            b = sd * float(ndtri(1.0 - a))
        else:
            mass = w * f

            def tail(b: float, mass: np.ndarray = mass, x: np.ndarray = x, sd: float = sd) -> float:
                return float(mass @ ndtr((x - b) / sd))

            lo, hi = -8.0, 12.0
            for _ in range(60):  # tail(b) decreases in b
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if tail(mid) > a else (lo, mid)
            b = hi
        y = np.linspace(-8.0, b, grid)
        wy = np.full(grid, (b + 8.0) / (grid - 1))
        wy[[0, -1]] /= 2.0  # trapezoid
        if f is None:
            fy = np.exp(-0.5 * (y / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
        else:
            kernel = np.exp(-0.5 * ((y[:, None] - x[None, :]) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
            fy = kernel @ (w * f)
        x, w, f, prev = y, wy, fy, t
        out.append(b / math.sqrt(t))
    return tuple(out)


def spending_boundaries(alpha: float, horizon: int, first: int, spending: str, grid: int = 1500) -> np.ndarray:
    """The one-sided z boundary at each look of the promotion step's plan, indexed by days of
    evidence: entry m is the look after m days, at information time m / horizon, one a night
    from day ``first`` (``min_days``) to day ``horizon``; entries below ``first`` are inf (no
    look yet) and there is none past the horizon."""
    if not 1 <= first <= horizon:
        raise ValueError(f"the first look (day {first}) must be within the horizon (day {horizon})")
    times = tuple(m / horizon for m in range(first, horizon + 1))
    return np.concatenate([np.full(first, np.inf), _boundaries(float(alpha), times, spending, grid)])


def plan(test: dict, challengers: int) -> np.ndarray:
    """The boundaries of an experiment's promotion step (its stored ``test``: alpha split over
    the challengers, ``horizon_days``, ``min_days``, ``spending``; experiments stored before
    the plan get its defaults)."""
    return spending_boundaries(
        arm_alpha(test, challengers), int(test.get("horizon_days", 11)), int(test["min_days"]),
        str(test.get("spending", "obrien_fleming")),
    )  # fmt: skip
