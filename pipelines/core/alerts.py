"""Alerts for on-call: a row in ``ops.alerts`` and an ERROR log line that log shippers catch."""

from __future__ import annotations

import logging
from datetime import date

from pipelines.core import db
from pipelines.core import sql as queries

log = logging.getLogger("newsrec.alerts")


def record_task_failure(
    dag_id: str, task_id: str, day: str | date | None, error: str, try_number: int | None = None
) -> None:
    """Never raises: an alert must not hide the failure that caused it."""
    log.error("ALERT %s.%s failed for %s (try %s): %s", dag_id, task_id, day, try_number, error)
    try:
        with db.transaction() as conn, conn.cursor() as cur:
            cur.execute(queries.load("alerts_insert"), (dag_id, task_id, day, try_number, error[:4000]))
    except Exception:  # noqa: BLE001 - the alert log line above is the fallback
        log.exception("could not store the alert in ops.alerts")
