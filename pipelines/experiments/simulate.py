"""Many experiments, fast: per-user-day outcomes resampled night after night and judged by the
promoter's own decision code (``newsrec experiment simulate``).

Running the nightly pipeline per simulated night would take ~28 h for 2,000 experiments of 14
nights; what decides an experiment is only (1) the per-user-day dwell of each arm's users and
(2) the rule that turns it into keep/step/promote/demote. This module draws (1) from the
simulator's outcome model, vectorised over a chunk of experiments x users with numpy, and
applies (2) with :func:`pipelines.experiments.decide.judge` (the function the nightly
promoter calls) on evidence computed the way :func:`~pipelines.experiments.decide.evaluate_arm`
computes it: users' mean dwell per exposed day since the arm's current share took effect.

**Outcome model** (``experiments.simulate`` in params.yaml, after
``pipelines/warehouse/simulator``): a cohort user has an activity ~ Beta(2, 5) (clipped to
[0.02, 0.95]) and a rate of reads per shown list (``reads_per_list``, lognormal across users
with ``reads_per_list_cv``). On a night a user is active with their activity, has 1 +
Poisson(sessions - 1) sessions, each shows their list with ``recommended_session_share``; a
user shown no list that night has no user-day (as in ``ops.experiment_user_days``). Reads ~
Poisson(lists x rate), their dwell is a sum of lognormal reads (sigma 0.6, mean
``dwell_per_read_s``), drawn as the gamma with the same mean and variance. The challenger's
users read ``1 + lift`` times as much: the true lift of dwell per user-day.

**Arms** as :mod:`pipelines.experiments.arms` assigns them: a user hash uniform in [0, 1), the
challenger takes [0, share), the champion the rest; shares climb ``experiments.share_steps``
and evidence restarts at each step, so the same users keep their user effect across a step
(the canary's users stay in the challenger arm), as in the promoter. Timing as the nightly
run: night t's outcomes, then the decision, whose share serves from night t + 1.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from pipelines.core.config import params
from pipelines.experiments import decide, lifecycle, sequential
from pipelines.experiments.arms import CHAMPION
from pipelines.warehouse.simulator.impressions import DWELL_SIGMA

CHALLENGER = "challenger"


@dataclass
class Outcomes:
    """The per-user-day outcome model (see the module docstring)."""

    reads_per_list: float = 1.33
    reads_per_list_cv: float = 0.52
    dwell_per_read_s: float = 97.0
    sessions_per_active_user: float = 1.8
    recommended_session_share: float = 0.5

    @classmethod
    def from_params(cls) -> Outcomes:
        sim = params("simulator") or {}
        cfg = dict((params("experiments") or {}).get("simulate", {}))
        return cls(
            float(cfg.get("reads_per_list", cls.reads_per_list)),
            float(cfg.get("reads_per_list_cv", cls.reads_per_list_cv)),
            float(cfg.get("dwell_per_read_s", cls.dwell_per_read_s)),
            float(sim.get("sessions_per_active_user", cls.sessions_per_active_user)),
            float(sim.get("recommended_session_share", cls.recommended_session_share)),
        )


@dataclass
class RuleResult:
    rule: str
    experiments: int
    promoted: int
    demoted: int
    undecided: int
    promoted_share: float
    promoted_ci: tuple[float, float]  # Wilson 95% interval of the share promoted
    demoted_share: float
    median_promotion_night: float | None
    promoted_by_night: list[int]  # cumulative promotions after each night
    seconds: float


@dataclass
class SimulationResult:
    experiments: int
    nights: int
    users: int
    lift: float
    seed: int
    test: dict[str, Any]
    share_steps: list[float]
    outcomes: dict[str, float]
    rules: list[RuleResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k / n."""
    if n == 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _arms(share: float) -> list[dict[str, Any]]:
    return [
        {"arm": CHALLENGER, "kind": "challenger", "model_version": "2", "share": share, "status": "active",
         "since": None},
        {"arm": CHAMPION, "kind": "champion", "model_version": None, "share": 1.0 - share, "status": "active",
         "since": None},
    ]  # fmt: skip


def _arm_stats(y: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per experiment (row): users, mean and sample variance of ``y`` over ``mask``."""
    n = mask.sum(axis=1)
    total = np.where(mask, y, 0.0).sum(axis=1)
    mean = total / np.maximum(n, 1)
    dev = np.where(mask, y - mean[:, None], 0.0)
    var = (dev * dev).sum(axis=1) / np.maximum(n - 1, 1)
    return n, mean, var


def _chunk(
    rule: str, n_exp: int, nights: int, users: int, lift: float, cfg: dict[str, Any], out: Outcomes,
    rng: np.random.Generator, tick: Any,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Simulate ``n_exp`` experiments: the night each was promoted / demoted (0: never)."""
    test = cfg["test"]
    min_users = max(int(test["min_users"]), 2)
    steps = sorted(float(s) for s in cfg["share_steps"])
    activity = np.clip(rng.beta(2.0, 5.0, size=(n_exp, users)), 0.02, 0.95)
    cv2 = out.reads_per_list_cv**2
    rate = out.reads_per_list * rng.lognormal(-0.5 * math.log1p(cv2), math.sqrt(math.log1p(cv2)), (n_exp, users))
    slot = rng.random((n_exp, users))  # the arm hash
    read_cv2 = math.expm1(DWELL_SIGMA**2)  # variance / mean^2 of one read's dwell
    promoted_on = np.zeros(n_exp, dtype=np.int32)
    demoted_on = np.zeros(n_exp, dtype=np.int32)
    ids = np.arange(n_exp)  # the running experiments; every array below holds their rows only
    share = np.full(n_exp, steps[0])
    total = np.zeros((n_exp, users))
    days = np.zeros((n_exp, users), dtype=np.int32)
    evidence_nights = np.zeros(n_exp, dtype=np.int32)
    for night in range(1, nights + 1):
        shape = (len(ids), users)
        challenger = slot < share[:, None]
        # draws only where they matter: the active users, then those shown a list, then readers
        act = np.flatnonzero(rng.random(shape) < activity)
        lists = rng.binomial(1 + rng.poisson(max(out.sessions_per_active_user - 1.0, 0.0), len(act)),
                             out.recommended_session_share)  # fmt: skip
        shown, lists = act[lists > 0], lists[lists > 0]
        boost = np.where(challenger.ravel()[shown], 1.0 + lift, 1.0)
        reads = rng.poisson(lists * rate.ravel()[shown] * boost)
        readers, reads = shown[reads > 0], reads[reads > 0]
        total.ravel()[readers] += rng.gamma(reads / read_cv2, out.dwell_per_read_s * read_cv2)
        days.ravel()[shown] += 1
        evidence_nights += 1
        seen = days > 0
        y = total / np.maximum(days, 1)
        n_c, mean_c, var_c = _arm_stats(y, seen & challenger)
        n_b, mean_b, var_b = _arm_stats(y, seen & ~challenger)
        var = var_c / np.maximum(n_c, 1) + var_b / np.maximum(n_b, 1)
        stages = [decide.stage(steps, float(s)) for s in share]
        canary = np.array([s == "canary" for s in stages])
        half = np.zeros(len(ids))
        if rule == "new" and canary.any():  # the canary's half-width for every experiment at once
            tau = float(test["mixture_tau"]) * np.maximum(np.abs(mean_b[canary]), 1e-9)
            half[canary] = sequential.half_width(np.maximum(var[canary], 1e-12), tau, sequential.arm_alpha(test, 1))
        ended = np.zeros(len(ids), dtype=bool)
        for i in range(len(ids)):
            ev = decide.Evidence(int(n_c[i]), int(n_b[i]), int(evidence_nights[i]), stage=stages[i])
            if n_c[i] and n_b[i]:
                ev.mean_challenger, ev.mean_champion = float(mean_c[i]), float(mean_b[i])
                ev.diff = ev.mean_challenger - ev.mean_champion
            if ev.days >= int(test["min_days"]) and min(ev.n_challenger, ev.n_champion) >= min_users:
                if rule == "new":
                    decide.sequence_evidence(ev, float(var[i]), test, 1, half=float(half[i]) if canary[i] else None)
                else:
                    low, high = sequential.fixed_interval(ev.diff, float(var[i]), float(test["confidence"]))
                    ev.ci, ev.rule, ev.confidence = (float(low), float(high)), "fixed", float(test["confidence"])
            (d,) = decide.judge(cfg, _arms(float(share[i])), {CHALLENGER: ev})
            if d.decision == "step":
                share[i] = d.share_after
                total[i], days[i], evidence_nights[i] = 0.0, 0, 0  # evidence restarts at the new share
            elif d.decision == "promote":
                ended[i], promoted_on[ids[i]] = True, night
            elif d.decision == "demote":
                ended[i], demoted_on[ids[i]] = True, night
        tick(n_exp)
        if ended.any():
            keep = ~ended
            ids, share, evidence_nights = ids[keep], share[keep], evidence_nights[keep]
            activity, rate, slot, total, days = activity[keep], rate[keep], slot[keep], total[keep], days[keep]
        if not len(ids):
            tick(n_exp * (nights - night))
            break
    return promoted_on, demoted_on


def simulate(
    experiments: int, nights: int, users: int, lift: float, rules: list[str], seed: int = 0,
    progress: Any = None, cfg: dict[str, Any] | None = None,
) -> SimulationResult:  # fmt: skip
    """Run ``experiments`` simulated experiments per rule (the same simulated users for each rule).

    ``cfg``: the experiments settings (default: params.yaml's, as a new experiment stores them)."""
    cfg = cfg or lifecycle.settings()
    out = Outcomes.from_params()
    chunk = max(1, int(cfg.get("simulate", {}).get("chunk", 100)))
    result = SimulationResult(experiments, nights, users, lift, seed, cfg["test"], cfg["share_steps"], asdict(out))
    for rule in rules:
        if rule not in sequential.RULES:
            raise ValueError(f"unknown rule {rule!r}")
        started = time.perf_counter()
        promoted, demoted = [], []
        for c, lo in enumerate(range(0, experiments, chunk)):
            rng = np.random.default_rng([seed, c])  # the same worlds for every rule
            tick = (lambda k: progress.update(k)) if progress is not None else (lambda k: None)
            p, d = _chunk(rule, min(chunk, experiments - lo), nights, users, lift, cfg, out, rng, tick)
            promoted.append(p)
            demoted.append(d)
        p, d = np.concatenate(promoted), np.concatenate(demoted)
        k = int((p > 0).sum())
        result.rules.append(RuleResult(
            rule, experiments, k, int((d > 0).sum()), int(((p == 0) & (d == 0)).sum()), k / experiments,
            wilson(k, experiments), float((d > 0).mean()), float(np.median(p[p > 0])) if k else None,
            [int(((p > 0) & (p <= t)).sum()) for t in range(1, nights + 1)], round(time.perf_counter() - started, 1),
        ))  # fmt: skip
    return result


def render(result: SimulationResult) -> str:
    """The table ``newsrec experiment simulate`` prints."""
    t = result.test
    lines = [
        f"{result.experiments:,} simulated experiments x {result.nights} nights, {result.users:,} cohort users, "
        f"true lift {result.lift:+.1%}, share steps {result.share_steps}, seed {result.seed}",
        f"new: canary steps unless clearly worse (mSPRT, mixture tau {t['mixture_tau']} x champion mean), then "
        f"{t.get('spending', 'obrien_fleming')} alpha spending over {t.get('horizon_days', 11)} days, alpha "
        f"{t['alpha']}; old: fixed {t['confidence']:.0%} interval every night, a win to step; both: min "
        f"{t['min_days']} days, {t['min_users']} users per arm",
        "",
        f"{'rule':<5} {'promoted':>9} {'share':>7} {'95% Wilson':>17} {'demoted':>8} {'undecided':>9} "
        f"{'median night':>12} {'seconds':>8}",
    ]
    for r in result.rules:
        night = "-" if r.median_promotion_night is None else f"{r.median_promotion_night:g}"
        lines.append(
            f"{r.rule:<5} {r.promoted:>9,} {r.promoted_share:>7.2%} "
            f"{f'[{r.promoted_ci[0]:.2%}, {r.promoted_ci[1]:.2%}]':>17} {r.demoted:>8,} {r.undecided:>9,} "
            f"{night:>12} {r.seconds:>8.1f}"
        )
    return "\n".join(lines)
