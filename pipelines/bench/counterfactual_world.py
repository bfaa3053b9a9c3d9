"""The counterfactual benchmark's worlds: each in its own database on the same server and its
own home (features, MLflow artifacts), built from scratch by the simulator.

Timeline (S = start, D = S + 6 the held-out day): days S..S+3 are the old logging policy's
(organic); the champion is trained for S+3 (train S+1, validate S+2) and registered. With the
closed loop on, its lists are published every night from S+3 and half the sessions of
S+4..S+6 show them (``recommended_session_share``): the logs of the training and test days are
then shaped by the champion. With it off, S+4..S+6 stay organic and the champion is only
another model. The fresh models are trained for D (train S+3..S+4, validate S+5).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from pipelines.core import config, db

START = date(2026, 3, 2)
ORGANIC_DAYS = 4  # S..S+3 before the champion's first lists
LOOP_DAYS = 3  # S+4..S+6
HELD_OUT = START + timedelta(days=ORGANIC_DAYS + LOOP_DAYS - 1)
CHAMPION_DAY = START + timedelta(days=ORGANIC_DAYS - 1)


@dataclass(frozen=True)
class WorldSpec:
    position_bias: float
    closed_loop: bool
    users: int = 1500
    articles_per_day: int = 300
    seed: int = 11

    @property
    def tag(self) -> str:
        return f"b{str(self.position_bias).replace('.', 'p')}_{'loop' if self.closed_loop else 'open'}"

    @property
    def label(self) -> str:
        return f"bias {self.position_bias:g}, closed loop {'on' if self.closed_loop else 'off'}"


def _drop(names: list[str]) -> None:
    from psycopg2 import sql

    conn = db.connect("postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        conn.close()


def _params_file(folder: Path) -> Path:
    """params.yaml as it is, except scoring with LightGBM's own predict (compiling each
    champion with lleaves would cost ~26 s per world for the same scores)."""
    data = yaml.safe_load(config.get_settings().params_file.read_text())
    data["scoring"]["engine"] = "lightgbm"
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@contextlib.contextmanager
def own_world(spec: WorldSpec, keep: bool = False) -> Iterator[Path]:
    """Point this process at a fresh database ``<main>_cf_<tag>`` (its MLflow and Optuna side
    databases dropped too) and a fresh home; restore the environment after (and drop the
    databases unless ``keep``)."""
    from pipelines.warehouse import migrations

    name = f"{db.main_database_name()}_cf_{spec.tag}"
    side = [name, f"{name}_mlflow", f"{name}_optuna"]
    url = db.database_url(name)
    _drop(side)
    saved = {k: os.environ.get(k) for k in ("NEWSREC_DATABASE_URL", "NEWSREC_HOME", "NEWSREC_PARAMS_FILE")}
    with tempfile.TemporaryDirectory(prefix=f"cf-{spec.tag}-") as tmp:
        home = Path(tmp)
        params_path = _params_file(home)
        os.environ.update(
            NEWSREC_DATABASE_URL=url, NEWSREC_HOME=str(home / "home"), NEWSREC_PARAMS_FILE=str(params_path)
        )
        config.reset_caches()
        try:
            migrations.migrate()
            yield home
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            config.reset_caches()
            if not keep:
                _drop(side)


def build(spec: WorldSpec) -> dict[str, Any]:
    """Seed the world, train and register the champion, run the closed loop (or not) to the
    held-out day; returns the champion's booster and what was simulated."""
    from pipelines.features import build as features
    from pipelines.model import dataset, promotion, ranker, registry
    from pipelines.nightly import stages
    from pipelines.warehouse import simulator

    cfg = simulator.SimConfig.from_params(
        users=spec.users, articles_per_day=spec.articles_per_day, start=START, seed=spec.seed,
        position_bias=spec.position_bias,
    )  # fmt: skip
    days = ORGANIC_DAYS if spec.closed_loop else ORGANIC_DAYS + LOOP_DAYS
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    simulator.seed(cfg, days)
    seconds["seed"] = time.perf_counter() - t0
    features.backfill(START, CHAMPION_DAY)
    seconds["features"] = time.perf_counter() - t0 - seconds["seed"]
    splits = dataset.load_splits(CHAMPION_DAY, train_days=1)
    # the closed loop's champion: a plain model on the logged metric, as counterfactual.md was measured
    champion = ranker.fit(splits.train, splits.valid, splits.spec, objective="plain", metric=None)
    seconds["champion"] = time.perf_counter() - t0 - sum(seconds.values())
    recommended = 0
    if spec.closed_loop:
        lineage = {"logical_date": CHAMPION_DAY.isoformat(), "data_window": f"{START}..{CHAMPION_DAY}"}
        version = registry.register(champion, splits.spec, {}, {"variant": "champion"}, {**lineage, "run_name": "cf"})
        reasons = ["the benchmark world's closed-loop champion (set by the counterfactual bench, not the gate)"]
        promotion.promote(
            promotion.Decision(True, str(version), None, reasons, {"bench": "counterfactual"}), CHAMPION_DAY
        )
        stages.score_and_publish(CHAMPION_DAY)
        for offset in range(1, LOOP_DAYS + 1):
            day = CHAMPION_DAY + timedelta(days=offset)
            recommended += simulator.simulate_day(day).recommended
            if day < HELD_OUT:
                features.build(day)
                stages.score_and_publish(day)
    else:
        features.backfill(CHAMPION_DAY + timedelta(days=1), HELD_OUT - timedelta(days=1))
    seconds["loop" if spec.closed_loop else "organic days"] = time.perf_counter() - t0 - sum(seconds.values())
    return {
        "champion": champion,
        "champion_spec": splits.spec,
        "recommended_impressions": recommended,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
