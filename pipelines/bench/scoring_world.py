"""A world for ``newsrec bench scoring`` in its own home (own embedded PostgreSQL): seeded
history, its features and one champion trained with the nightly bench's fixed budget. Built
once, then scored by several implementations (a git worktree of an older main, this tree)
so that their costs per candidate row and their lists' digests compare on the same world.

    NEWSREC_HOME=/tmp/scorebench/home python -m pipelines.bench.scoring_world 30000 8300 2026-11-20
    NEWSREC_HOME=/tmp/scorebench/home newsrec bench scoring --date 2026-11-20 --no-publish --name scoring_kernel_new
"""

from __future__ import annotations

import argparse
import os
from datetime import date, timedelta
from typing import Any


def build(users: int, articles_per_day: int, day: date, days: int = 6) -> dict[str, Any]:
    from pipelines.bench import nightly_world
    from pipelines.core import config
    from pipelines.model.train import train
    from pipelines.warehouse import migrations

    os.environ.pop("NEWSREC_DATABASE_URL", None)  # the world's own embedded server, never the live one
    config.reset_caches()
    migrations.migrate()
    start = day - timedelta(days=days - 1)
    seeded = nightly_world.seed_world(users, articles_per_day, start.isoformat(), days)
    nightly_world.backfill_features(start.isoformat(), day.isoformat())
    result = train(day, trials=0, minutes=2, train_days=2, mode="full")
    return {**seeded, "model_version": getattr(result, "version", None)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("users", type=int)
    parser.add_argument("articles_per_day", type=int)
    parser.add_argument("day", type=date.fromisoformat)
    parser.add_argument("--days", type=int, default=6)
    args = parser.parse_args()
    print(build(args.users, args.articles_per_day, args.day, args.days))
