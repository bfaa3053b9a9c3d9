"""The promoter/demoter: each night, per running experiment, keep, step up, promote or demote
each challenger arm on the business metric.

**The evidence.** For challenger arm C and the champion arm, take every cohort user exposed to
the arm's lists on the days of evidence (``ops.experiment_user_days``) and their mean
recommended dwell per exposed day; the estimate is the difference of the arms' means over
users, with the variance of that difference. No decision before ``min_days`` days and
``min_users`` users per arm of evidence. Each test runs at ``experiments.test.alpha`` split
over the experiment's challengers (:mod:`pipelines.experiments.sequential`, where the math
is). Then (:func:`judge`, pure: the same function ``newsrec experiment simulate`` applies
night after night):

* **canary steps** (every step below the one before 100%; 10% by default): the question is
  "is it safe to show more readers", not "is it better". Upper bound of the always-valid
  mSPRT confidence sequence below 0 (clearly worse): C is demoted; otherwise it climbs to the
  next of ``experiments.share_steps`` as soon as it has ``min_days`` of evidence;
* **the promotion step** (the one before 100%; 50% by default): a group-sequential test
  with Lan-DeMets alpha spending over the nights of a planned ``horizon_days``. Lower bound
  above 0: C wins and is promoted: it passes the training promotion gate (floor, popularity,
  model tests on D's held-out impressions, the online win standing in for the held-out
  comparison) and becomes champion; the experiment ends ``promoted``. Upper bound below 0:
  demoted (share 0; its users return to the champion). Otherwise keep. After
  ``horizon_days`` of evidence the plan's alpha is spent: the arm stays, undecided, and
  the reasons say to stop the experiment.

Why a copy of the champion is still promoted with probability <= alpha: only the promotion
step promotes, on its own days (a step moves the hash intervals, so its evidence restarts),
and its test holds whatever came before; the canary decision that let C reach it looked at
other days of partly the same users, but it steps nearly every arm that is not clearly
worse, so it selects on them hardly at all (the A/A simulation measures the whole chain).
A harmful challenger gets through a canary unless the canary's bound already shows it, and
then meets the promotion test in the other direction, which demotes it.

When several challengers may step the same night and the champion arm has room for only some
(``min_champion_share``), the best estimate goes first.

**Days of evidence** of an arm: from the day its current share took effect and only days
whose champion arm was served by today's champion model (a champion promoted by training
mid-experiment restarts it too).

Timing: day D's metric answers the lists published the night before; the decision, taken
before D's publish in the same night, shapes the lists shown on D+1, so the new share's
evidence starts on D+1. Decisions of a day are taken once: a re-run returns them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core import alerts, db
from pipelines.core import sql as queries
from pipelines.core.faults import checkpoint
from pipelines.core.runs import record_run
from pipelines.experiments import sequential
from pipelines.experiments.arms import CHAMPION
from pipelines.model import promotion


@dataclass
class Evidence:
    n_challenger: int
    n_champion: int
    days: int
    mean_challenger: float | None = None
    mean_champion: float | None = None
    diff: float | None = None
    ci: tuple[float, float] | None = None
    confidence: float = 0.95
    resamples: int = 0  # bootstrap resamples of the old rule (0: the confidence sequence)
    first_day: str | None = None
    champion_version: str | None = None
    rule: str = "msprt"  # msprt: confidence sequence (canary); group_sequential: the promotion step's
    # alpha-spending plan; fixed / bootstrap: the old fixed interval (step on a win)
    stage: str = "promotion"  # canary | promotion
    var: float | None = None  # variance of the difference of the means
    alpha: float | None = None  # level of this arm's test (alpha split over the challengers)
    tau: float | None = None  # mixture standard deviation, seconds
    log_lr: float | None = None  # log one-sided mixture likelihood ratio (in the direction of diff); decisive
    # at log(1 / alpha)
    boundary: float | None = None  # group_sequential: the z boundary of this look (days of evidence)
    horizon: int | None = None  # group_sequential: the plan's last look (days of evidence); later: undecided

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ci"] = list(self.ci) if self.ci else None
        return out


@dataclass
class ArmDecision:
    arm: str
    model_version: str | None
    decision: str  # keep | step | promote | demote | refused
    share_before: float
    share_after: float
    reasons: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)


def _mode(values: pd.Series) -> Any:
    return values.mode().iloc[0] if values.notna().any() else None


def _user_means(frame: pd.DataFrame, arm: str) -> np.ndarray:
    rows = frame[frame["arm"] == arm]
    return rows.groupby("user_id")["dwell_s"].mean().to_numpy(np.float64)


def evaluate_arm(
    frame: pd.DataFrame, arm: str, since: date | None, test: dict[str, Any], challengers: int = 1,
    stage: str = "promotion",
) -> Evidence:  # fmt: skip
    """The evidence for one challenger arm against the champion arm (``frame``: user-days),
    with the interval of its ``stage`` at ``alpha / challengers``."""
    if since is not None:
        frame = frame[frame["logical_date"] >= since]
    # only days whose champion arm was served by the newest champion model
    champ = frame[frame["arm"] == CHAMPION]
    version = None
    if len(champ):
        by_day = champ.groupby("logical_date")["model_version"].agg(_mode)
        version = by_day.iloc[-1]
        frame = frame[frame["logical_date"].isin(by_day.index[by_day == version])]
    both = frame[frame["arm"].isin([arm, CHAMPION])]
    days = both.groupby("logical_date")["arm"].nunique()
    a, b = _user_means(both, arm), _user_means(both, CHAMPION)
    ev = Evidence(len(a), len(b), int((days == 2).sum()),
                  first_day=str(days.index.min()) if len(days) else None, champion_version=version,
                  stage=stage)  # fmt: skip
    if len(a) and len(b):
        ev.mean_challenger, ev.mean_champion = float(a.mean()), float(b.mean())
        ev.diff = ev.mean_challenger - ev.mean_champion
    if ev.days >= int(test["min_days"]) and min(len(a), len(b)) >= max(int(test["min_users"]), 2):
        var = float(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        sequence_evidence(ev, var, test, challengers)
    return ev


def sequence_evidence(
    ev: Evidence, var: float, test: dict[str, Any], challengers: int, half: float | None = None
) -> Evidence:
    """Fill in the bounds of ``ev`` (means, days and stage set) from the variance of the
    difference: the mSPRT confidence sequence at a canary step, the alpha-spending plan's
    boundary of this look at the promotion step (none past the plan's horizon).

    ``half``: the canary's :func:`sequential.half_width` of this variance, when computed
    already (the simulator computes it for thousands of experiments at once)."""
    ev.alpha = sequential.arm_alpha(test, challengers)
    ev.confidence = 1.0 - ev.alpha
    ev.var = max(var, 1e-12)
    if ev.stage == "canary":
        ev.rule = "msprt"
        ev.tau = float(test.get("mixture_tau", 0.05)) * max(abs(float(ev.mean_champion)), 1e-9)
        h = float(sequential.half_width(ev.var, ev.tau, ev.alpha)) if half is None else float(half)
        ev.log_lr = float(sequential.msprt_log_lr(abs(ev.diff), ev.var, ev.tau))
    else:
        ev.rule = "group_sequential"
        bounds = sequential.plan(test, challengers)
        ev.horizon = len(bounds) - 1
        if ev.days > ev.horizon:
            return ev  # the plan's alpha is spent: no bounds, undecided
        ev.boundary = float(bounds[ev.days])
        h = ev.boundary * ev.var**0.5
    ev.ci = (ev.diff - h, ev.diff + h)
    return ev


def stage(steps: list[float], share: float) -> str:
    """``promotion`` at the step before 100% (a win there promotes), ``canary`` below it."""
    nxt = _next_share(sorted(steps), share)
    return "promotion" if nxt is None or nxt >= max(steps) - 1e-9 else "canary"


def _next_share(steps: list[float], share: float) -> float | None:
    """The next step above ``share`` (None when ``share`` is at or above the last one)."""
    higher = [s for s in steps if s > share + 1e-9]
    return min(higher) if higher else None


def challenger_count(arms: list[dict[str, Any]]) -> int:
    """Challengers the experiment started with (whatever their status now): alpha's divisor."""
    return sum(1 for a in arms if a["kind"] == "challenger")


def plan_decisions(
    experiment: dict[str, Any], arms: list[dict[str, Any]], frame: pd.DataFrame, day: date
) -> list[ArmDecision]:
    """Decisions for every active challenger (pure: no database, no registry)."""
    test, steps = experiment["config"]["test"], [float(s) for s in experiment["config"]["share_steps"]]
    k = challenger_count(arms)
    evidence = {
        a["arm"]: evaluate_arm(frame, a["arm"], a["since"], test, k, stage(steps, float(a["share"])))
        for a in arms if _is_tested(a)
    }  # fmt: skip
    return judge(experiment["config"], arms, evidence)


def _is_tested(arm: dict[str, Any]) -> bool:
    return arm["kind"] == "challenger" and arm["status"] == "active" and arm["share"] > 0


def judge(cfg: dict[str, Any], arms: list[dict[str, Any]], evidence: dict[str, Evidence]) -> list[ArmDecision]:
    """Turn each active challenger's evidence into keep, step, promote or demote (pure).

    ``evidence`` holds an :class:`Evidence` per active challenger (``ci`` None: not enough
    yet, or past the plan's horizon). The nightly promoter and ``newsrec experiment simulate``
    both call this. Decisions come best estimate first."""
    test = cfg["test"]
    steps = sorted(float(s) for s in cfg["share_steps"])
    min_champion = float(cfg.get("min_champion_share", 0.1))
    shares = {a["arm"]: float(a["share"]) for a in arms}
    out: list[ArmDecision] = []
    tested = [a for a in arms if _is_tested(a)]
    # the best estimate first: it gets the champion's room for a step when there is not enough for all
    tested.sort(key=lambda a: np.inf if evidence[a["arm"]].diff is None else -evidence[a["arm"]].diff)
    for arm in tested:
        ev = evidence[arm["arm"]]
        share = shares[arm["arm"]]
        d = ArmDecision(arm["arm"], arm["model_version"], "keep", share, share, evidence=ev.to_dict())
        nxt = _next_share(steps, share)
        canary = ev.rule == "msprt" and stage(steps, share) == "canary"  # the old rule steps on a win only
        if ev.ci is None:
            if ev.horizon is not None and ev.days > ev.horizon:
                d.reasons.append(
                    f"undecided after the plan's {ev.horizon} days of evidence (its alpha is spent): "
                    "stop the experiment (newsrec experiment stop)"
                )
            else:
                d.reasons.append(
                    f"not enough evidence yet: {ev.days} day(s), {ev.n_challenger}/{ev.n_champion} users "
                    f"(needs {test['min_days']} days and {test['min_users']} users per arm)"
                )
        elif ev.ci[1] < 0:
            d.decision = "demote"
            d.share_after = 0.0
            shares[CHAMPION] = shares.get(CHAMPION, 0.0) + share
            shares[arm["arm"]] = 0.0
            d.reasons.append(f"loses: dwell/user {ev.diff:.2f} s, CI below 0")
        elif canary or ev.ci[0] > 0:
            why = (f"no clear harm at share {share:.2f} (dwell/user {ev.diff:+.2f} s, upper bound {ev.ci[1]:+.2f})"
                   if canary else f"wins at share {share:.2f} (dwell/user +{ev.diff:.2f} s, CI above 0)")  # fmt: skip
            if nxt is None or nxt >= steps[-1] - 1e-9:
                d.decision = "promote"
                d.share_after = 1.0
                d.reasons.append(why)
            else:
                champion_after = shares.get(CHAMPION, 0.0) - (nxt - share)
                if champion_after < min_champion - 1e-9:
                    d.reasons.append(f"{why}, but a step to {nxt:.2f} would leave the champion {champion_after:.2f}")
                else:
                    d.decision = "step"
                    d.share_after = nxt
                    shares[CHAMPION] = champion_after
                    shares[arm["arm"]] = nxt
                    d.reasons.append(f"{why}: steps to {nxt:.2f}")
        else:
            d.reasons.append(f"no difference yet: CI [{ev.ci[0]:.2f}, {ev.ci[1]:.2f}] contains 0")
        out.append(d)
    # at most one promotion a night: the largest lower bound wins, the others wait
    promoted = [d for d in out if d.decision == "promote"]
    if len(promoted) > 1:
        best = max(promoted, key=lambda d: d.evidence["ci"][0])
        for d in promoted:
            if d is not best:
                d.decision, d.share_after = "keep", d.share_before
                d.reasons.append(f"{best.arm} is promoted tonight")
    return out


def _load(cur: Any, experiment_id: int, day: date) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    cur.execute(queries.load("experiments_arms"), (experiment_id,))
    keys = ("arm", "kind", "model_version", "share", "step", "status", "since")
    arms = [dict(zip(keys, r, strict=True)) for r in cur.fetchall()]
    cur.execute(queries.load("experiments_user_days"), (experiment_id, day))
    frame = pd.DataFrame(cur.fetchall(), columns=["logical_date", "user_id", "arm", "model_version", "dwell_s"])
    frame["dwell_s"] = frame["dwell_s"].astype(np.float64)
    return arms, frame


def decide(day: date) -> dict[str, Any]:
    """The nightly stage: decide for the running experiment (if any) and record it.

    The experiment's state (shares, steps, statuses) and the decisions are written in one
    transaction; a promotion moves the champion alias through the promotion gate just before
    it commits, so a crash before leaves everything as it was and a re-run decides the same."""

    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("experiments_lock_running"))
        row = cur.fetchone()
        if row is None:
            return {"day": day.isoformat(), "experiment": None, "decisions": []}
        experiment = {"experiment_id": int(row[0]), "name": row[1], "config": row[2]}
        cur.execute(queries.load("experiments_decisions_of_day"), (experiment["experiment_id"], day))
        done = cur.fetchall()
        if done:  # decided already: a re-run of the night returns what was decided
            return {"day": day.isoformat(), "experiment": row[1], "decisions": [
                {"arm": a, "decision": d, "share_before": b, "share_after": s} for a, d, b, s in done
            ], "rerun": True}  # fmt: skip
        arms, frame = _load(cur, experiment["experiment_id"], day)
        decisions = plan_decisions(experiment, arms, frame, day)
        gate: promotion.Decision | None = None
        for d in decisions:
            if d.decision != "promote":
                continue
            ev = d.evidence
            online = {**ev, "experiment": experiment["name"], "arm": d.arm,
                      "summary": f"dwell/user {ev['mean_challenger']:.1f} s vs {ev['mean_champion']:.1f} s, "
                                 f"bounds of the difference [{ev['ci'][0]:.2f}, {ev['ci'][1]:.2f}] at the "
                                 f"alpha-spending plan's look after {ev['days']} days (z boundary "
                                 f"{ev['boundary']:.2f}, alpha {ev['alpha']:.3g})"}  # fmt: skip
            gate = promotion.gate_online_winner(day, str(d.model_version), online)
            if not gate.promoted:
                d.decision, d.share_after = "refused", 0.0
                d.reasons.append("the promotion gate refused it: " + "; ".join(gate.reasons))
            else:
                d.reasons.append("passed the promotion gate")
        _write(cur, experiment["experiment_id"], day, arms, decisions)
        checkpoint("experiment_decide_before_commit")
        if gate is not None and gate.promoted:
            promotion.promote(gate, day, kind="experiment")
    return {"day": day.isoformat(), "experiment": experiment["name"],
            "decisions": [{"arm": d.arm, "decision": d.decision, "share_before": d.share_before,
                           "share_after": d.share_after, "reasons": d.reasons} for d in decisions]}  # fmt: skip


def _write(cur: Any, experiment_id: int, day: date, arms: list[dict[str, Any]], decisions: list[ArmDecision]) -> None:
    """Shares, statuses, share history, decisions, and the experiment's end if it ended."""
    effective = day + timedelta(days=1)  # the new share shapes the lists shown on D+1
    champion_share = next((float(a["share"]) for a in arms if a["arm"] == CHAMPION), 0.0)
    changed: dict[str, tuple[float, str, str | None]] = {}
    ended: str | None = None
    for d in decisions:
        cur.execute(
            queries.load("experiments_insert_decision"),
            (experiment_id, day, d.arm, d.model_version, d.decision, d.share_before, d.share_after,
             json.dumps(d.reasons), json.dumps(d.evidence, default=float)),
        )  # fmt: skip
        if d.decision == "step":
            champion_share -= d.share_after - d.share_before
            changed[d.arm] = (d.share_after, "active", f"won at {d.share_before:.2f}")
        elif d.decision in ("demote", "refused"):
            champion_share += d.share_before
            changed[d.arm] = (0.0, "demoted", "demoted" if d.decision == "demote" else "refused by the gate")
        elif d.decision == "promote":
            ended = "promoted"
            changed[d.arm] = (1.0, "promoted", "promoted to champion")
    if changed:
        changed.setdefault(CHAMPION, (max(champion_share, 0.0), "active", "rebalanced"))
    for arm, (share_value, status, reason) in changed.items():
        share = round(share_value, 9)
        step = 1 if reason and reason.startswith("won") else 0
        cur.execute(
            queries.load("experiments_update_arm"),
            (share, status, step, bool(step), effective, experiment_id, arm),
        )
        cur.execute(queries.load("experiments_insert_share_history"), (experiment_id, arm, effective, share, reason))
    if ended is None and decisions:
        cur.execute(queries.load("experiments_active_challengers"), (experiment_id,))
        if cur.fetchone()[0] == 0:  # every challenger is out: nothing left to learn
            ended = "demoted"
    if ended:
        reason = "a challenger won and became champion" if ended == "promoted" else "every challenger was demoted"
        cur.execute(queries.load("experiments_end"), (ended, day, reason, experiment_id))
        cur.execute(queries.load("experiments_end_arms"), (experiment_id,))


def decide_experiments(day: date) -> dict[str, Any]:
    """The nightly stage, recorded as a run in ``ops.runs``. A decision that changes something
    (step, promote, demote, refused) is an alert to on-call: one per experiment and day,
    whatever the re-runs (:func:`pipelines.core.alerts.experiment_decisions`)."""

    with record_run("decide_experiments", day) as run:
        out = decide(day)
        run.details.update(out)
    alerts.experiment_decisions(day, out)
    return out
