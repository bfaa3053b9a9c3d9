"""Bookkeeping in the ``ops`` schema: one row per stage run with its outcome and details."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import date
from typing import Any

from pipelines.core import db, locks
from pipelines.core import sql as queries


class RunRecord:
    """Details a stage adds while it runs; stored when it ends."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.details: dict[str, Any] = {}


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
        cur.execute(queries.load("ops_lock_run_row"), (locks.RUN_ROWS, _lock_id(record.run_id)))
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
    cur.execute(queries.load("ops_abandon_dead_runs"), (ABANDONED, locks.RUN_ROWS))


def latest_success(stage: str, logical_date: date) -> dict[str, Any] | None:
    """The details of ``stage``'s newest successful run for ``logical_date`` (None: none yet)."""
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("ops_latest_success_details"), {"stage": stage, "day": logical_date})
        row = cur.fetchone()
    return dict(row[0]) if row else None
