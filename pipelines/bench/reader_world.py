"""The world the reader benchmark reads: the live batch, or (only when the warehouse is
empty, or when asked to replace it) a simulated world with a batch published without a
model; and the request paths rotated over during the load."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from pipelines.bench import servers
from pipelines.core import config, db
from pipelines.core.errors import NewsrecError
from pipelines.features import build
from pipelines.serving import candidates, publish, selection
from pipelines.warehouse import migrations, simulator

WORLDS = ("auto", "seed")
KNOWN_IDS = 3000
UNKNOWN_EVERY = 10  # one id in ten is unknown (fallback list)
SEED_DAYS = 3


@dataclass
class World:
    batch_id: int
    model_version: str
    personal_users: int
    built: bool
    build_seconds: float | None
    known_ids: int
    unknown_ids: int


def _query(sql: str, args: tuple = ()) -> list[tuple]:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else []


def _live_batch() -> tuple[int, str] | None:
    rows = _query("SELECT l.batch_id, b.model_version FROM serving.live l JOIN serving.batches b USING (batch_id)")
    return (int(rows[0][0]), str(rows[0][1])) if rows else None


def build_world(users: int, days: int = SEED_DAYS) -> int:
    """Replace the warehouse with a simulated world of ``users`` and publish a batch without a
    model (candidates, a deterministic score, capped top-k, fallback lists), as the tests do.
    Returns the batch id."""
    last = date.today() - timedelta(days=1)
    cfg = simulator.SimConfig.from_params(users=users, start=last - timedelta(days=days - 1))
    simulator.seed(cfg, days)
    build.build(last)
    sel = config.params("serving").get("selection", {})
    k, cap = int(sel.get("k", 10)), int(sel.get("max_per_category", 3))
    parts = []
    for chunk in candidates.iter_candidate_chunks(last):
        scored = chunk.assign(score=-((chunk["article_id"] * 2654435761) % 1000).astype(float))
        parts.append(selection.select_top(scored, k=k, max_per_category=cap))
    if not parts:
        raise NewsrecError("the simulated world produced no candidates; nothing to publish")
    top = pd.concat(parts, ignore_index=True)
    return publish.publish_batch(last, "bench-no-model", top, selection.fallback_lists(last, k=k))


def ensure_world(users: int, world: str = "auto") -> World:
    """The live batch to read. ``auto``: the live batch if there is one, else (only when the
    warehouse is empty) a new world of ``users``; ``seed``: always a new world (this
    REPLACES the warehouse of the current database)."""
    if world not in WORLDS:
        raise NewsrecError(f"--world must be one of {', '.join(WORLDS)}")
    migrations.migrate()
    live = _live_batch()
    built, took = False, None
    if world == "seed" or live is None:
        if world == "auto" and _query("SELECT EXISTS (SELECT 1 FROM warehouse.users)")[0][0]:
            raise NewsrecError(
                "no batch is live and the warehouse has data: publish a batch first "
                "(`newsrec run-day`), or pass --world seed to REPLACE the warehouse with a simulated one"
            )
        t0 = time.perf_counter()
        build_world(users)
        took = round(time.perf_counter() - t0, 1)
        built = True
        live = _live_batch()
        if live is None:
            raise NewsrecError("the benchmark's batch did not go live")
    batch_id, version = live
    (n_users,) = _query("SELECT n_users FROM serving.batches WHERE batch_id = %s", (batch_id,))[0]
    return World(batch_id, version, int(n_users or 0), built, took, 0, 0)


def request_paths(batch_id: int, known: int = KNOWN_IDS) -> tuple[list[str], int, int]:
    """Paths to rotate over: ``known`` users of the batch (a fixed pseudo-random sample) with
    one unknown id in ten, half of those asking for a regional fallback list."""
    ids = [
        int(u)
        for (u,) in _query(
            "SELECT user_id FROM serving.recommendations WHERE batch_id = %s AND rank = 1 "
            "ORDER BY md5(user_id::text) LIMIT %s",
            (batch_id, known),
        )
    ]
    (top,) = _query(
        "SELECT greatest((SELECT max(user_id) FROM warehouse.users), "
        "(SELECT max(user_id) FROM serving.recommendations WHERE batch_id = %s), 0)",
        (batch_id,),
    )[0]
    paths: list[str] = []
    unknown = 0
    for i, user in enumerate(ids):
        if i % (UNKNOWN_EVERY - 1) == 0:
            unknown += 1
            fresh = int(top) + 1000 + unknown
            suffix = "?region=NA" if unknown % 2 else ""
            paths.append(servers.ROUTE.format(user_id=fresh) + suffix)
        paths.append(servers.ROUTE.format(user_id=user))
    return paths, len(ids), unknown
