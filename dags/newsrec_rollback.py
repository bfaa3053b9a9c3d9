"""Roll back from the UI: move the champion alias and/or the live serving batch.

Trigger with a model version (the champion becomes that version) and/or a batch id (the
live pointer moves to it). Empty values roll back one step.

This file only wires the task: it calls `pipelines.nightly.stages.rollback` through
`pipelines.nightly.airflow_task.run`, as the nightly's tasks do, so a permanent failure (no
previous champion, an unknown version or batch: a `NewsrecError`) fails at once with its
reason, and the failure callback alerts on-call once (`pipelines.core.alerts`,
`NEWSREC_ALERT_URL`). No automatic retry, whatever the error: "one step back" is not
idempotent (a retry after the champion moved would move it a second step); on-call
re-triggers with the version and batch named.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import Param, dag, task


def _alert(context) -> None:
    from pipelines.nightly import airflow_task

    airflow_task.on_failure(context, None)  # a rollback has no data day


@dag(
    dag_id="newsrec_rollback",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0, "on_failure_callback": _alert},
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
    def rollback(params=None, **context) -> dict:
        from pipelines.nightly import airflow_task, stages

        return airflow_task.run(context, stages.rollback, params["what"], params["model_version"], params["batch_id"])

    rollback()


newsrec_rollback()
