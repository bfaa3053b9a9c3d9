"""The promoter/demoter's rules without a database: today's bootstrap interval and the decisions."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from pipelines.experiments import sequential
from pipelines.experiments.decide import plan_decisions
from pipelines.experiments.sequential import bootstrap_diff

DAY = date(2026, 3, 10)
TEST = {"alpha": 0.05, "mixture_tau": 0.05, "confidence": 0.95, "min_days": 3, "min_users": 100}
CONFIG = {"share_steps": [0.1, 0.5, 1.0], "min_champion_share": 0.1, "test": TEST}


def test_bootstrap_interval_covers_the_true_difference():
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(100):
        a = rng.exponential(20.0, size=400) + 2.0
        b = rng.exponential(20.0, size=600)
        diff, (lo, hi) = bootstrap_diff(a, b, 300, 0.95, rng)
        assert lo <= diff <= hi
        covered += lo <= 2.0 <= hi
    assert 88 <= covered <= 100  # nominal 95%; binomial(100, 0.95) is above 88 with p > 0.999


def _days(effects: dict[str, float], days: int = 3, users: int = 300, champion_version: str = "1") -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    for i in range(days):
        day = DAY - timedelta(days=days - 1 - i)
        for k, (arm, effect) in enumerate(effects.items()):
            ids = rng.choice(np.arange(100_000), size=users, replace=False) + k * 100_000  # disjoint per arm
            version = champion_version if arm == "champion" else arm
            for u, dwell in zip(ids, rng.exponential(30.0, size=users) + effect, strict=True):
                rows.append((day, int(u), arm, version, float(dwell)))
    return pd.DataFrame(rows, columns=["logical_date", "user_id", "arm", "model_version", "dwell_s"])


def _arms(**shares: float) -> list[dict]:
    out = [{"arm": a, "kind": "challenger", "model_version": a, "share": s, "status": "active", "since": None}
           for a, s in shares.items()]  # fmt: skip
    champion = 1.0 - sum(shares.values())
    return out + [{"arm": "champion", "kind": "champion", "model_version": None, "share": champion,
                   "status": "active", "since": None}]  # fmt: skip


def _decide(arms, frame):
    return {d.arm: d for d in plan_decisions({"experiment_id": 1, "config": CONFIG}, arms, frame, DAY)}


def test_canary_steps_unless_clearly_worse_and_the_best_gets_the_room():
    frame = _days({"champion": 0.0, "good": 15.0, "bad": -15.0, "same": 0.0})
    got = _decide(_arms(good=0.1, bad=0.1, same=0.1), frame)
    assert (got["good"].decision, got["good"].share_after) == ("step", 0.5)
    assert (got["bad"].decision, got["bad"].share_after) == ("demote", 0.0)
    # no clear harm would step it too, but the better estimate took the champion's room
    assert got["same"].decision == "keep" and "would leave the champion" in got["same"].reasons[0]
    assert got["same"].evidence["ci"][0] < 0 < got["same"].evidence["ci"][1]
    ev = got["good"].evidence
    assert ev["days"] == 3 and 880 <= ev["n_challenger"] <= 900 and ev["ci"][0] > 0
    # the canary's decisive statistic is recorded; three challengers share alpha (0.05 / 3 each)
    assert ev["rule"] == "msprt" and ev["stage"] == "canary" and abs(ev["alpha"] - 0.05 / 3) < 1e-12
    assert ev["log_lr"] > np.log(3 / 0.05)
    # alone, a challenger no better than the champion steps: the canary asks "is it safe", not "is it better"
    alone = _decide(_arms(same=0.1), _days({"champion": 0.0, "same": 0.0}))["same"]
    assert (alone.decision, alone.share_after) == ("step", 0.5) and "no clear harm" in alone.reasons[0]
    # the same evidence gives the same interval
    again = _decide(_arms(good=0.1, bad=0.1, same=0.1), frame)
    assert again["same"].evidence["ci"] == got["same"].evidence["ci"]


def test_the_promotion_step_needs_a_win_on_the_alpha_spending_plan():
    frame = _days({"champion": 0.0, "good": 15.0, "bad": -15.0, "same": 0.0})
    got = _decide(_arms(good=0.5, same=0.1), frame)
    assert got["good"].decision == "promote"
    ev = got["good"].evidence
    bound = sequential.plan(TEST, 2)[3]  # two challengers, the look after 3 days
    assert ev["rule"] == "group_sequential" and ev["stage"] == "promotion" and ev["horizon"] == 11
    assert ev["boundary"] == bound and abs(ev["diff"] - ev["ci"][0] - bound * ev["var"] ** 0.5) < 1e-9
    assert _decide(_arms(bad=0.5), frame)["bad"].decision == "demote"
    same = _decide(_arms(same=0.5), frame)["same"]
    assert same.decision == "keep" and same.evidence["ci"][0] < 0 < same.evidence["ci"][1]
    # the plan's boundary of the first look is stricter than the fixed 95% interval: a fixed-level
    # win is not enough
    assert bound > 1.96


def test_past_the_plans_horizon_the_arm_is_undecided():
    frame = _days({"champion": 0.0, "good": 15.0}, days=5)
    short = {**CONFIG, "test": {**TEST, "horizon_days": 4}}
    got = plan_decisions({"experiment_id": 1, "config": short}, _arms(good=0.5), frame, DAY)[0]
    assert got.decision == "keep" and got.evidence["ci"] is None and "alpha is spent" in got.reasons[0]
    assert got.evidence["days"] == 5 and got.evidence["horizon"] == 4


def test_no_decision_without_enough_days_or_users_and_no_room_to_step():
    few_days = _days({"champion": 0.0, "good": 30.0}, days=2)
    assert _decide(_arms(good=0.1), few_days)["good"].decision == "keep"
    few_users = _days({"champion": 0.0, "good": 30.0}, users=30)
    kept = _decide(_arms(good=0.1), few_users)["good"]
    assert kept.decision == "keep" and "not enough evidence" in kept.reasons[0]
    # a step that would leave the champion arm under min_champion_share waits
    crowded = _days({"champion": 0.0, "good": 15.0, "other": 0.0})
    got = _decide(_arms(good=0.2, other=0.6), crowded)
    assert got["good"].decision == "keep" and "would leave the champion" in got["good"].reasons[0]


def test_evidence_restarts_at_a_step_and_when_the_champion_changes():
    frame = _days({"champion": 0.0, "good": 15.0}, days=5)
    arms = _arms(good=0.5)
    arms[0]["since"] = DAY - timedelta(days=1)  # stepped up two days ago: 2 days of evidence
    assert _decide(arms, frame)["good"].evidence["days"] == 2
    changed = frame.copy()
    last = changed["logical_date"] == DAY
    changed.loc[last & (changed["arm"] == "champion"), "model_version"] = "9"  # a new champion tonight
    got = _decide(_arms(good=0.1), changed)["good"]
    assert got.evidence["days"] == 1 and got.evidence["champion_version"] == "9" and got.decision == "keep"


def test_one_promotion_a_night():
    frame = _days({"champion": 0.0, "a": 10.0, "b": 20.0})
    got = _decide(_arms(a=0.5, b=0.5 - 1e-12), frame)
    assert sorted(d.decision for d in got.values()) == ["keep", "promote"]
    assert got["b"].decision == "promote"
