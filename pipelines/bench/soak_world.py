"""The soak's world: its own database, a small simulated warehouse, deterministic batches
of random lists (no model: the soak is about serving, not ranking), and the publish and
rollback switches, each run in its own process (``python -m pipelines.bench.soak_world``)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any

from pipelines.core import config, db
from pipelines.core.errors import NewsrecError
from pipelines.serving import publish
from pipelines.warehouse import migrations, simulator

SEED = 20_261_125
ARTICLE_POOL = 120  # articles a batch draws each user's list from
SEED_DAYS = 2


@contextlib.contextmanager
def own_database(name: str | None) -> Iterator[str]:
    """Point this process (and the reader it starts) at database ``name`` on the same server
    (``{main}`` is the project's database), created and migrated if needed. ``None``: the
    current database."""
    if name is None:
        migrations.migrate()
        yield db.database_url()
        return
    target = name.replace("{main}", db.main_database_name())
    if not target.replace("_", "").isalnum():
        raise NewsrecError(f"--database must be letters, digits and underscores, got {name!r}")
    url = db.database_url(target)
    before = os.environ.get("NEWSREC_DATABASE_URL")
    os.environ["NEWSREC_DATABASE_URL"] = url
    config.reset_caches()
    try:
        migrations.migrate()
        yield url
    finally:
        if before is None:
            os.environ.pop("NEWSREC_DATABASE_URL", None)
        else:
            os.environ["NEWSREC_DATABASE_URL"] = before
        config.reset_caches()


def query(sql: str, args: tuple = ()) -> list[tuple]:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else []


class Batches:
    """Deterministic batches over the warehouse's users: batch ``salt`` gives each user k
    distinct unflagged articles drawn from a pool of recent ones, and every region (and
    GLOBAL) a fallback list; different salts give different lists."""

    def __init__(self, k: int) -> None:
        import numpy as np

        self.k = k
        self.users = np.array([u for (u,) in query("SELECT user_id FROM warehouse.users ORDER BY 1")])
        self.articles = np.array(
            [
                a
                for (a,) in query(
                    "SELECT a.article_id FROM warehouse.articles a JOIN warehouse.publications p USING "
                    "(publication_id) WHERE NOT p.misinformation_flag ORDER BY a.published_at DESC, 1 LIMIT %s",
                    (ARTICLE_POOL * 4,),
                )
            ]
        )
        if len(self.users) == 0 or len(self.articles) < 2 * k:
            raise NewsrecError(f"the soak needs users and at least {2 * k} unflagged articles in the warehouse")

    def frames(self, salt: int) -> tuple[Any, Any]:
        import numpy as np
        import pandas as pd

        rng = np.random.default_rng([SEED, salt])
        pool = rng.permutation(self.articles)[: min(ARTICLE_POOL, len(self.articles))]
        picks = np.argsort(rng.random((len(self.users), len(pool))), axis=1)[:, : self.k]
        n = len(self.users)
        recs = pd.DataFrame(
            {
                "user_id": np.repeat(self.users, self.k),
                "rank": np.tile(np.arange(1, self.k + 1), n),
                "article_id": pool[picks].ravel(),
                "score": np.tile(np.linspace(1.0, 0.1, self.k), n),
                "reason": f"Soak batch {salt}",
            }
        )
        fallback = pd.DataFrame(
            [
                (region, rank + 1, int(article), 1.0 / (rank + 1), f"Popular in {region}")
                for region in (*simulator.REGIONS, "GLOBAL")
                for rank, article in enumerate(rng.choice(pool, self.k, replace=False))
            ],
            columns=["region", "rank", "article_id", "score", "reason"],
        )
        return recs, fallback

    @staticmethod
    def expected(recs: Any, fallback: Any, users: Sequence[int]) -> dict[str, tuple[int, ...]]:
        """What a client must get from this batch: per sampled user, and per fallback region."""
        mine = recs[recs["user_id"].isin(users)].sort_values(["user_id", "rank"])
        out = {f"u{u}": tuple(int(a) for a in g["article_id"]) for u, g in mine.groupby("user_id")}
        for region, g in fallback.sort_values(["region", "rank"]).groupby("region"):
            out[f"r{region}"] = tuple(int(a) for a in g["article_id"])
        return out


def ensure_warehouse(users: int, world: str) -> bool:
    """A simulated warehouse of ``users`` in the soak's database, unless one is there
    (``world='seed'``: always a new one). True when it was built now."""
    if world == "auto" and query("SELECT EXISTS (SELECT 1 FROM warehouse.users)")[0][0]:
        return False
    start = date.today() - timedelta(days=SEED_DAYS)
    cfg = simulator.SimConfig.from_params(users=users, articles_per_day=max(200, ARTICLE_POOL * 2), start=start)
    simulator.seed(cfg, SEED_DAYS)
    return True


def switch_in_child(kind: str, day: date, salt: int | None, keep: int) -> int:
    """Publish batch ``salt`` (or roll back) in a new process; the batch that went live."""
    cmd = [sys.executable, "-m", "pipelines.bench.soak_world", kind, day.isoformat(), str(salt or 0), str(keep)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("LIVE ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{kind} failed ({proc.returncode}): {(proc.stderr.strip() or proc.stdout)[-300:]}")
    return int(line.split()[1])


def _child(kind: str, day: str, salt: str, keep: str) -> None:
    if kind == "rollback":
        print(f"LIVE {publish.rollback()}")
        return
    k = int(config.params("serving").get("selection", {}).get("k", 10))
    batch = publish.publish_batch(
        date.fromisoformat(day), f"soak-{salt}", *Batches(k).frames(int(salt)), keep=int(keep)
    )
    print(f"LIVE {batch}")


if __name__ == "__main__":  # one switch, run by switch_in_child
    _child(*sys.argv[1:5])
