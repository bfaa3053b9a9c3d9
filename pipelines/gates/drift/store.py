"""Storage of drift verdicts in ``ops.drift_results`` (query ``drift_result_insert``)."""

from __future__ import annotations

import json

from pipelines.core import db, sql
from pipelines.gates.drift.result import DriftResult


def store_result(result: DriftResult) -> int:
    """Insert the verdict in its own transaction; returns its ``result_id``."""
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            sql.load("drift_result_insert"),
            {
                "run_id": result.run_id,
                "logical_date": result.day,
                "kind": result.kind,
                "reference_days": list(result.reference_days),
                "drifted": result.drifted,
                "drift_share": result.drift_share,
                "share_threshold": result.share_threshold,
                "n_columns": len(result.columns),
                "n_drifted": len(result.drifted_columns),
                "verdict": json.dumps(result.verdict()),
                "report_path": str(result.report_path) if result.report_path else None,
            },
        )
        return cur.fetchone()[0]
