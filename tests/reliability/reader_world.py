"""What the reader's reliability tests read: a seeded warehouse with one published batch
(every user but UNKNOWN_USER has a personal list), a valid and a revoked API key, and the
real reader served by uvicorn on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from pipelines.bench import servers
from pipelines.reader.keys import create_key, revoke_key
from pipelines.serving import publish
from tests.helpers import simulated_world
from tests.integration.test_publish import batch_frames

START = date(2026, 4, 6)
DAY = START + timedelta(days=1)
UNKNOWN_USER = 7  # left out of the published batch: gets a fallback list
ROUTE = "/v1/users/{}/recommendations"
EXPLAIN = "/v1/users/{}/recommendations/{}/explanation"
SIM = {"users": 120, "articles_per_day": 60, "start": START, "seed": 61}


@contextlib.contextmanager
def served_world(pg_server: str, template: str, home: Path, name: str) -> Iterator[dict]:
    """A database with one live batch and two API keys (one revoked); the environment
    points at it inside the block."""
    with simulated_world(pg_server, template, home, name, 2, **SIM) as world:
        recs, fallback = batch_frames(skip_users=(UNKNOWN_USER,))
        batch = publish.publish_batch(DAY, "reliability", recs, fallback)
        key_id, key = create_key("reliability")
        revoked_id, revoked = create_key("reliability-revoked")
        revoke_key(revoked_id)
        yield {**world, "batch": batch, "key": key, "key_id": key_id, "revoked": revoked, "recs": recs,
               "fallback": fallback, "known_user": int(recs["user_id"].iloc[0])}  # fmt: skip


@contextlib.contextmanager
def running_reader(log_dir: Path) -> Iterator[str]:
    """``newsrec reader serve`` (uvicorn, ``serving.reader.workers`` workers) on a free loopback port, against the
    database the environment points at; yields its base URL and stops it on the way out."""
    with servers.serving("reader", "/v1/health", {}, log_dir) as (base, _pid):
        yield base
