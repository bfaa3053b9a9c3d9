"""Roll back from the UI: move the champion alias and/or the live serving batch.

Trigger with a model version (the champion becomes that version) and/or a batch id (the
live pointer moves to it). Empty values roll back one step.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import Param, dag, task


@dag(
    dag_id="newsrec_rollback",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    params={
        "what": Param("both", enum=["model", "batch", "both"], description="What to roll back"),
        "model_version": Param(None, type=["null", "string"], description="Champion to restore (empty: previous)"),
        "batch_id": Param(None, type=["null", "integer"], description="Batch to make live (empty: previous)"),
    },
    tags=["newsrec", "on-call"],
    doc_md=__doc__,
)
def newsrec_rollback():
    @task
    def rollback(params=None) -> dict:
        from pipelines.nightly import stages

        return stages.rollback(params["what"], params["model_version"], params["batch_id"])

    rollback()


newsrec_rollback()
