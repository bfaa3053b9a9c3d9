"""Scoring with a running experiment: each user's arm decides who ranks their list, and every
row says which arm and which model it came from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.serving import batch
from pipelines.serving.candidates import iter_candidate_chunks
from tests.helpers import query
from tests.model.conftest import DAY


@pytest.fixture
def experiment(world):
    """Half of the users in the cohort; inside it, half champion and half popularity control."""
    (experiment_id,) = query(
        "INSERT INTO ops.experiments (name, salt, cohort_share) VALUES ('arms-test', 'arms-salt', 0.5) "
        "RETURNING experiment_id"
    )[0]
    query(
        "INSERT INTO ops.experiment_arms (experiment_id, arm, position, kind, model_version, share) VALUES "
        "(%s, 'champion', 0, 'champion', NULL, 0.5), (%s, 'popularity', 1, 'popularity', NULL, 0.5)",
        (experiment_id, experiment_id),
    )
    yield experiment_id
    query("DELETE FROM ops.experiments WHERE experiment_id = %s", (experiment_id,))


def test_each_arm_is_ranked_by_its_own_scorer(world, experiment):
    from pipelines.experiments.arms import serving_plan
    from pipelines.model import registry

    plain = batch.score(DAY, model_ref=registry.champion_version()).recommendations  # an explicit model: no arms
    assert "arm" not in plain
    result = batch.score(DAY)
    recs = result.recommendations
    plan = serving_plan(DAY)
    users = recs["user_id"].drop_duplicates().to_numpy()
    arm = pd.Series(plan.assign(users), index=users)
    assert (recs["arm"].to_numpy() == arm.loc[recs["user_id"]].to_numpy()).all()
    assert set(result.arms) == {"champion", "popularity"}
    assert sum(a["users"] for a in result.arms.values()) == result.users

    # a quarter of the users in the popularity control, within sampling error (binomial, 4 sd)
    n, share = len(users), float((arm == "popularity").mean())
    assert abs(share - 0.25) < 4 * np.sqrt(0.25 * 0.75 / n), (share, n)

    champion = recs[recs["arm"] == "champion"]
    assert set(champion["model_version"]) == {result.model_version}
    keys = ["user_id", "rank"]
    same = plain[plain["user_id"].isin(champion["user_id"])].sort_values(keys).reset_index(drop=True)
    assert same[keys + ["article_id"]].equals(champion.sort_values(keys).reset_index(drop=True)[keys + ["article_id"]])

    popular = recs[recs["arm"] == "popularity"]
    assert len(popular) > 100 and set(popular["model_version"]) == {"popularity"}
    cands = pd.concat(iter_candidate_chunks(DAY))
    prior = cands.set_index(["user_id", "article_id"])["prior"]
    expected = prior.loc[list(zip(popular["user_id"], popular["article_id"], strict=True))].to_numpy(np.float32)
    np.testing.assert_allclose(popular["score"].to_numpy(), expected, rtol=1e-6)
    # and the model's lists of those users differ from the popularity ones
    theirs = plain[plain["user_id"].isin(popular["user_id"])]
    assert not set(zip(theirs["user_id"], theirs["article_id"], strict=True)) == set(
        zip(popular["user_id"], popular["article_id"], strict=True)
    )


def test_a_stopped_experiment_returns_everyone_to_the_champion(world, experiment):
    query("UPDATE ops.experiments SET status = 'stopped' WHERE experiment_id = %s", (experiment,))
    result = batch.score(DAY)
    assert result.arms == {}
    assert "arm" not in result.recommendations
    assert set(result.recommendations["model_version"]) == {result.model_version}
