"""A trained world shared by the model tests: seeded warehouse, features, one champion."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipelines.features import build
from pipelines.model.train import train
from pipelines.warehouse import simulator
from tests.helpers import admin_sql, use_database

START = date(2026, 5, 4)
DAY = START + timedelta(days=5)  # test day; valid = DAY-1; train = DAY-3..DAY-2
TRAIN_DAYS = 2


SIDE_DATABASES = ("", "_mlflow", "_optuna")  # the main database and those named after it


def _build(url: str, home: Path):
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, url, home)
        cfg = simulator.SimConfig.from_params(users=700, articles_per_day=220, start=START, seed=5)
        simulator.seed(cfg, 7)  # the day after DAY has labels: the retrain checker measures decay on it
        build.backfill(START + timedelta(days=1), DAY)
        # debiased, as the model tests were written against (the nightly's auto choice between plain
        # and debiased is tested in test_debiased.py: at this size either can win, and the plain
        # champion decays past retrain.decay_margin on the next day, which the warm-start tests rule out)
        return train(DAY, trials=2, minutes=2, train_days=TRAIN_DAYS, objective="debiased")


def _pg(tool: str, url: str, *args: str) -> None:
    from pgserver._commands import POSTGRES_BIN_PATH

    subprocess.run([str(POSTGRES_BIN_PATH / tool), f"--dbname={url}", *args], check=True, capture_output=True,
                   timeout=600)  # fmt: skip


def _exists(pg_server: str, database: str) -> bool:
    import psycopg2

    conn = psycopg2.connect(pg_server.format(db="postgres"))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            return cur.fetchone() is not None
    finally:
        conn.close()


@pytest.fixture(scope="session")
def trained(pg_server, migrated_template, tmp_path_factory):
    """Session-scoped, not package-scoped: under pytest-xdist a worker may leave the package and come back.

    Built once per run: the first worker that needs it builds it in its own server and dumps its
    databases (pg_dump) beside its home and result; another worker restores those into its own
    server and copies the home (the MLflow artifacts stay where they were logged, read only)."""
    from filelock import FileLock

    name = "training_world"
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "model_world"
    shared.mkdir(exist_ok=True)
    home = tmp_path_factory.mktemp("training_home")
    url = pg_server.format(db=name)
    with FileLock(str(shared / "build.lock")):
        if not (shared / "result.pickle").exists():
            admin_sql(pg_server, f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
            result = _build(url, home)
            for suffix in SIDE_DATABASES:
                if _exists(pg_server, name + suffix):
                    _pg("pg_dump", pg_server.format(db=name + suffix), "--format=custom", f"--file={shared}/db{suffix}")
            shutil.copytree(home, shared / "home", symlinks=True)
            (shared / "result.pickle").write_bytes(pickle.dumps(result))
        else:
            result = pickle.loads((shared / "result.pickle").read_bytes())
            for suffix in SIDE_DATABASES:
                if (shared / f"db{suffix}").exists():
                    admin_sql(pg_server, f"CREATE DATABASE {name}{suffix}")
                    _pg("pg_restore", pg_server.format(db=name + suffix), "--no-owner", f"{shared}/db{suffix}")
            shutil.rmtree(home)
            shutil.copytree(shared / "home", home, symlinks=True)
            # The Feast registry names the builder's feature folder: let this copy apply its own.
            (home / "feast" / "registry.db").unlink(missing_ok=True)
    # returned outside the context: the environment must not point here for the rest of the session
    return {"url": url, "home": home, "result": result}


@pytest.fixture
def world(trained, monkeypatch):
    use_database(monkeypatch, trained["url"], trained["home"])
    return trained


def gate_a_model_fitted_on(splits, labels, name: str, leaves: int, rounds: int):
    """A LambdaRank model fitted on ``labels`` (instead of the logged ones) put through the
    promotion gate against the champion: (its decision, its evaluation table)."""
    import lightgbm as lgb

    from pipelines.model import evaluate, promotion
    from pipelines.model.train import champion_comparison

    booster = lgb.train(
        {"objective": "lambdarank", "verbosity": -1, "num_leaves": leaves, "seed": 1, "num_threads": 1},
        lgb.Dataset(splits.train.X, labels, group=splits.train.groups),
        num_boost_round=rounds,
    )
    table = evaluate.evaluate(splits.test, booster.predict(splits.test.X))
    tests = promotion.model_tests(booster.predict, splits.spec, splits.test.rows)
    champion, comparison = champion_comparison(DAY, splits.test, booster.predict(splits.test.X))
    return promotion.decide(name, table["overall"], tests, champion, comparison), table
