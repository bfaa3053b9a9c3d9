"""A trained world shared by the model tests: seeded warehouse, features, one champion."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from pipelines.features import build
from pipelines.model.train import train
from pipelines.warehouse import simulator
from tests.helpers import admin_sql, use_database

START = date(2026, 5, 4)
DAY = START + timedelta(days=5)  # test day; valid = DAY-1; train = DAY-3..DAY-2
TRAIN_DAYS = 2


@pytest.fixture(scope="session")
def trained(pg_server, migrated_template, tmp_path_factory):
    """Session-scoped, not package-scoped: under pytest-xdist a worker may leave the package and come back."""
    name = "training_world"
    admin_sql(pg_server, f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
    home = tmp_path_factory.mktemp("training_home")
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, pg_server.format(db=name), home)
        cfg = simulator.SimConfig.from_params(users=700, articles_per_day=220, start=START, seed=5)
        simulator.seed(cfg, 7)  # the day after DAY has labels: the retrain checker measures decay on it
        build.backfill(START + timedelta(days=1), DAY)
        result = train(DAY, trials=2, minutes=2, train_days=TRAIN_DAYS)
    # returned outside the context: the environment must not point here for the rest of the session
    return {"url": pg_server.format(db=name), "home": home, "result": result}


@pytest.fixture
def world(trained, monkeypatch):
    use_database(monkeypatch, trained["url"], trained["home"])
    return trained


def gate_a_model_fitted_on(splits, labels, name: str, leaves: int, rounds: int):
    """A LambdaRank model fitted on ``labels`` (instead of the logged ones) put through the
    promotion gate against the champion: (its decision, its evaluation table)."""
    import lightgbm as lgb

    from pipelines.model import evaluate, promotion
    from pipelines.model.train import champion_ndcg_on

    booster = lgb.train(
        {"objective": "lambdarank", "verbosity": -1, "num_leaves": leaves, "seed": 1, "num_threads": 1},
        lgb.Dataset(splits.train.X, labels, group=splits.train.groups),
        num_boost_round=rounds,
    )
    table = evaluate.evaluate(splits.test, booster.predict(splits.test.X))
    tests = promotion.model_tests(booster.predict, splits.spec, splits.test.rows)
    champion, champion_ndcg = champion_ndcg_on(splits.test)
    return promotion.decide(name, table["overall"], tests, champion, champion_ndcg), table
