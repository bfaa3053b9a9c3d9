"""Bookkeeping in the ``ops`` schema: one row per stage run with its outcome and details."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import date
from typing import Any

from pipelines.core import db, sql as queries


class RunRecord:
    """Details a stage adds while it runs; stored when it ends."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.details: dict[str, Any] = {}


RUN_ROW_LOCK = 72064  # advisory-lock class of 'running' rows: held by the process running them
ABANDONED = "abandoned: the process running it is gone (killed, or it lost its database connection)"


@contextlib.contextmanager
def record_run(stage: str, logical_date: date | None) -> Iterator[RunRecord]:
    """Write a 'running' row now and 'success' or 'failed' (with the error) at the end.

    While it runs, the process holds an advisory lock on the row on a connection of its own;
    a process killed without a word loses that connection and with it the lock, so the next
    run marks its row failed (abandoned) instead of leaving it 'running' forever."""
    with db.transaction() as conn, conn.cursor() as cur:
        _abandon_dead_runs(cur)
        cur.execute(queries.load("ops_insert_run"), (stage, logical_date))
        record = RunRecord(cur.fetchone()[0])
    holder = db.connect()
    with holder.cursor() as cur:
        cur.execute(queries.load("ops_lock_run_row"), (RUN_ROW_LOCK, _lock_id(record.run_id)))
    holder.commit()
    record.details["pid"] = os.getpid()
    status = "failed"
    try:
        yield record
        status = "success"
    except BaseException as exc:
        record.details.setdefault("error", f"{type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        with contextlib.suppress(Exception), db.transaction() as conn, conn.cursor() as cur:
            cur.execute(
                queries.load("ops_finish_run"), (status, json.dumps(record.details, default=str), record.run_id)
            )
        with contextlib.suppress(Exception):
            holder.close()


def _lock_id(run_id: int) -> int:
    return int(run_id) % 2_147_483_647


def _abandon_dead_runs(cur: Any) -> None:
    """Fail the 'running' rows whose process no longer holds their lock (a transaction-level
    try-lock succeeds only for those, and is released at commit)."""
    cur.execute(queries.load("ops_abandon_dead_runs"), (ABANDONED, RUN_ROW_LOCK))


# --------------------------------------------------------------------------------------
# One nightly run at a time
# --------------------------------------------------------------------------------------

RUN_LOCK = 72063  # advisory-lock key of nightly runs (migrations use 72061, publishing 72062)
_held: dict[str, Any] = {"depth": 0, "conn": None}


def _lock_connection(wait_s: float, what: str) -> Any:
    """A new connection holding the session advisory lock ``RUN_LOCK`` (waits up to ``wait_s``)."""
    from psycopg2 import errors

    from pipelines.core.errors import NewsrecError

    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(queries.load("locks_set_timeout"), (f"{max(1, int(wait_s * 1000))}ms",))
            try:
                cur.execute(queries.load("locks_advisory_lock"), (RUN_LOCK,))
            except errors.LockNotAvailable:
                raise NewsrecError(
                    f"another nightly run has held the run lock for over {wait_s:.0f} s; {what} did not start"
                ) from None
            cur.execute(queries.load("locks_reset_timeout"))
        conn.commit()
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
    from pipelines.core.config import params

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
