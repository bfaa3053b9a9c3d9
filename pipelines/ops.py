"""Bookkeeping in the ``ops`` schema: one row per stage run with its outcome and details."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

from pipelines import db


class RunRecord:
    """Details a stage adds while it runs; stored when it ends."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.details: dict[str, Any] = {}


@contextlib.contextmanager
def record_run(stage: str, logical_date: date | None) -> Iterator[RunRecord]:
    """Write a 'running' row now and 'success' or 'failed' (with the error) at the end."""
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO ops.runs (stage, logical_date, status) VALUES (%s, %s, 'running') RETURNING run_id",
            (stage, logical_date),
        )
        record = RunRecord(cur.fetchone()[0])
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
                "UPDATE ops.runs SET status = %s, finished_at = now(), details = %s WHERE run_id = %s",
                (status, json.dumps(record.details, default=str), record.run_id),
            )
