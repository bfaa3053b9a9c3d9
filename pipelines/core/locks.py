"""Every advisory lock of the project, and the nightly run lock.

The keys live here so that no two parts of the code pick the same number by accident; each
names what it serialises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from psycopg2 import errors

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.config import params
from pipelines.core.errors import TransientError

MIGRATIONS = 72061  # transaction lock: one migration run at a time
PUBLISH = 72062  # session lock: one publish (batch write and live switch) at a time
NIGHTLY_RUN = 72063  # session lock: stages of different nightly runs never interleave
RUN_ROWS = 72064  # lock class (with the run id) of 'running' ops.runs rows, held by their process


def take(conn: Any, key: int, wait_s: float, floor_ms: int = 0) -> bool:
    """Take session advisory lock ``key`` on ``conn``, waiting up to ``wait_s`` seconds (0 ms
    means no limit in PostgreSQL, hence ``floor_ms``). False when it timed out (``conn`` is then
    rolled back); True when held (committed: the lock outlives the transaction)."""
    with conn.cursor() as cur:
        cur.execute(queries.load("locks_set_timeout"), (f"{max(floor_ms, int(wait_s * 1000))}ms",))
        try:
            cur.execute(queries.load("locks_advisory_lock"), (key,))
        except errors.LockNotAvailable:
            conn.rollback()
            return False
        cur.execute(queries.load("locks_reset_timeout"))
    conn.commit()
    return True


_held: dict[str, Any] = {"depth": 0, "conn": None}


def _lock_connection(wait_s: float, what: str) -> Any:
    """A new connection holding the nightly run lock (waits up to ``wait_s``)."""
    conn = db.connect()
    try:
        if not take(conn, NIGHTLY_RUN, wait_s, floor_ms=1):
            raise TransientError(
                f"another nightly run has held the run lock for over {wait_s:.0f} s; {what} did not start"
            )
    except BaseException:
        conn.close()
        raise
    return conn


def _lock_alive(conn: Any) -> bool:
    try:
        with conn.cursor() as cur:
            cur.execute(queries.load("locks_connection_alive"))
        conn.rollback()
        return True
    except Exception:  # noqa: BLE001 - a dead connection (e.g. the server restarted) lost the lock
        return False


@contextlib.contextmanager
def run_lock(what: str) -> Iterator[None]:
    """Hold the nightly run lock: stages of different runs (a backfill and the nightly DAG,
    two CLI runs) never interleave, because day D reads what the runs of earlier days wrote
    (partials, the champion, the live batch). Re-entrant within a process: ``run_day`` holds
    it for the whole date and each stage inside takes it again for free; an Airflow task
    takes it for its own stage. If the server restarted since the lock was taken, the lost
    lock is taken again before the next stage runs."""
    wait_s = float(params().get("nightly", {}).get("lock_wait_seconds", 3 * 3600))
    if _held["depth"] and not _lock_alive(_held["conn"]):
        with contextlib.suppress(Exception):
            _held["conn"].close()
        _held["conn"] = _lock_connection(wait_s, what)
    if not _held["depth"]:
        _held["conn"] = _lock_connection(wait_s, what)
    _held["depth"] += 1
    try:
        yield
    finally:
        _held["depth"] -= 1
        if not _held["depth"]:
            conn, _held["conn"] = _held["conn"], None
            with contextlib.suppress(Exception):
                conn.close()  # closing the session releases the advisory lock
