"""Experiment assignment without a database: stable, shares within sampling error, cohorts."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from pipelines.core.errors import NewsrecError
from pipelines.experiments.arms import Arm, ServingPlan, unit_hash
from pipelines.experiments.lifecycle import arm_specs

USERS = np.arange(1, 200_001, dtype=np.int64)


def _plan(cohort_share: float = 1.0, salt: str = "exp-a", shares=(0.1, 0.1, 0.1)) -> ServingPlan:
    arms = (
        Arm("challenger-v2", "challenger", "2", shares[0]),
        Arm("challenger-v3", "challenger", "3", shares[1]),
        Arm("popularity", "popularity", None, shares[2]),
        Arm("champion", "champion", None, 1 - sum(shares)),
    )
    return ServingPlan(1, "exp-a", salt, arms, cohort_share)


def test_hash_is_uniform_and_independent_across_keys():
    u = unit_hash(USERS, "k1")
    v = unit_hash(USERS, "k2")
    assert u.min() >= 0 and u.max() < 1
    counts = np.histogram(u, bins=20, range=(0, 1))[0]
    expected = len(USERS) / 20
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 43.8  # chi-square, 19 degrees of freedom, p = 0.001
    assert abs(np.corrcoef(u, v)[0, 1]) < 0.01
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01  # neighbouring ids are unrelated


def test_assignment_is_the_same_across_calls_orders_and_processes():
    plan = _plan()
    first = plan.assign(USERS)
    assert (plan.assign(USERS) == first).all()
    perm = np.random.default_rng(0).permutation(len(USERS))
    assert (plan.assign(USERS[perm]) == first[perm]).all()
    # a fresh interpreter (another PYTHONHASHSEED) gives the same arms
    code = (
        "import numpy as np; from pipelines.experiments.arms import unit_hash; "
        "print(','.join(f'{x:.17g}' for x in unit_hash(np.arange(1, 6), 'exp-a/arm')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""})  # fmt: skip
    assert [float(x) for x in out.stdout.strip().split(",")] == unit_hash(np.arange(1, 6), "exp-a/arm").tolist()


def test_arm_shares_match_the_configuration_within_sampling_error():
    plan = _plan(shares=(0.1, 0.05, 0.2))
    arms = plan.assign(USERS)
    names, counts = np.unique(arms, return_counts=True)
    observed = dict(zip(names, counts, strict=True))
    expected = {a.name: a.share * len(USERS) for a in plan.arms}
    assert set(observed) == set(expected)
    chi2 = sum((observed[k] - expected[k]) ** 2 / expected[k] for k in expected)
    assert chi2 < 16.27  # chi-square, 3 degrees of freedom, p = 0.001


def test_cohort_size_and_users_outside_get_the_champion():
    plan = _plan(cohort_share=0.075)
    inside = plan.in_cohort(USERS)
    n = len(USERS)
    sd = np.sqrt(n * 0.075 * 0.925)
    assert abs(inside.sum() - 0.075 * n) < 4 * sd  # 15,000 pilot users out of 200,000
    arms = plan.assign(USERS)
    assert (arms[~inside] == "champion").all()
    in_arms = arms[inside]
    share = (in_arms == "challenger-v2").mean()
    assert abs(share - 0.1) < 4 * np.sqrt(0.1 * 0.9 / inside.sum())
    # cohort and arm hashes are independent: the cohort is not made of one arm's users
    assert abs((_plan().assign(USERS)[inside] == "popularity").mean() - 0.1) < 0.01


def test_another_salt_reshuffles_and_growing_a_share_keeps_earlier_arms():
    a = _plan(salt="one").assign(USERS)
    b = _plan(salt="two").assign(USERS)
    both = (a == "challenger-v2") & (b == "challenger-v2")
    assert abs(both.mean() - 0.01) < 0.002  # independent: 10% x 10%
    before = _plan().assign(USERS)
    grown = _plan(shares=(0.5, 0.1, 0.1)).assign(USERS)
    assert (grown[before == "challenger-v2"] == "challenger-v2").all()  # the first arm only gains users
    assert (grown == "challenger-v2").mean() == pytest.approx(0.5, abs=0.005)


def test_arm_specs_check_shares():
    arms = arm_specs(["4"], 0.2, 0.1)
    assert [(a.name, a.kind, a.share) for a in arms] == [
        ("challenger", "challenger", 0.2), ("popularity", "popularity", 0.1), ("champion", "champion", 0.7),
    ]  # fmt: skip
    assert [a.name for a in arm_specs(["4", "5"], 0.1)][:2] == ["challenger-v4", "challenger-v5"]
    with pytest.raises(NewsrecError, match="sum to 1.1"):
        arm_specs(["4"], 0.3, 0.1, champion_share=0.7)
    with pytest.raises(NewsrecError, match="not 1"):
        arm_specs(["4", "5", "6"], 0.4)
    with pytest.raises(NewsrecError, match="needs a challenger"):
        arm_specs([], 0.1)
