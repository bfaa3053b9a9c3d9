"""The nightly bench's world, in its own home: seeded history and its features (the setup
children, run in fresh processes like the stages), or a world already built with the same
sizes, reused with its models dropped so that training runs anew.

The driver imports this module, so it imports nothing heavy at the top: a spawned child
starts with the driver's peak RSS (Linux keeps it across exec), which would inflate every
stage's measured peak. The simulator and the feature build load inside their children."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from typing import Any

from pipelines.bench import nightly_config
from pipelines.core import config, db


def seed_world(users: int, articles_per_day: int, start: str, days: int) -> dict[str, Any]:
    from pipelines.warehouse import simulator  # numpy, pandas: in this child only

    start_day = date.fromisoformat(start)
    cfg = simulator.SimConfig.from_params(users=users, articles_per_day=articles_per_day, start=start_day)
    results = simulator.seed(cfg, days)
    return {"impressions": sum(r.impressions for r in results), "reads": sum(r.reads for r in results)}


def backfill_features(first: str, last: str) -> dict[str, Any]:
    from pipelines.features import build  # numpy, pandas, pyarrow: in this child only

    results = build.backfill(date.fromisoformat(first), date.fromisoformat(last))
    return {"days": len(results)}


def propensity_before(day: str) -> dict[str, Any]:
    """The examination propensity of the day before the night, as that night's propensity stage
    stored it (training validates on that day and reads it)."""
    from pipelines.nightly import stages  # the stage itself, in this child only

    return stages.propensity(day)


def count(sql: str, args: tuple = ()) -> int:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return int(cur.fetchone()[0])


def events_of(day: date) -> int:
    """Events of the night under test (the rows of the stages that read the raw day)."""
    return count(
        "SELECT count(*) FROM warehouse.events WHERE event_ts >= %s AND event_ts < %s",
        (day, day + timedelta(days=1)),
    )


def drop_models() -> None:
    """Forget every registered model and search of the bench's home, as in a new world (an
    identical model would otherwise be reused instead of trained)."""
    from psycopg2 import sql

    conn = db.connect("postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for suffix in ("mlflow", "optuna"):
                name = sql.Identifier(f"{db.main_database_name()}_{suffix}")
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
    finally:
        conn.close()
    settings = config.get_settings()
    shutil.rmtree(settings.artifacts_dir, ignore_errors=True)
    shutil.rmtree(settings.home / "serving" / "models", ignore_errors=True)


def forget_world() -> None:
    """Before a world is built in a home that held another: its models (:func:`drop_models`)
    and its feature files. The build reuses the daily partials of earlier days it finds, so an
    old world's partials of the same dates would feed the new world's features (the active
    users, the lists) until a whole-window rebuild replaced them."""
    drop_models()
    shutil.rmtree(config.get_settings().features_dir, ignore_errors=True)


def world_matches(cfg: nightly_config.BenchConfig) -> bool:
    try:
        have = count("SELECT count(*) FROM warehouse.users")
        days = count("SELECT count(DISTINCT event_ts::date) FROM warehouse.events")
        last = count("SELECT count(*) FROM warehouse.events WHERE event_ts::date = %s", (cfg.day,))
    except Exception:  # no database or no tables yet
        return False
    return days == cfg.days and last > 0 and abs(have - cfg.users) <= cfg.users * 0.05
