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
