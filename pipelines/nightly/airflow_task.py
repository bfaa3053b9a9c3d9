"""A nightly stage run as an Airflow task: retries by kind, and the task's alert scope.

Every task body of ``dags/newsrec_nightly.py`` and ``dags/newsrec_rollback.py`` calls its stage
through :func:`run`, the one place that decides what a failure means for Airflow
(:func:`pipelines.core.errors.failure_kind`):

- **permanent** (a gate's verdict, bad input, any other ``NewsrecError``): the task fails at
  once with ``AirflowFailException``; another try would fail the same way and only delay the
  alert;
- **transient** (the database refused or dropped the connection, a lock wait ran out, the
  Dask scheduler or a worker was lost): the error passes to Airflow, which retries the task
  with exponential backoff (the DAG's ``default_args``);
- **unknown** (a bug, a library's own exception): retried like a transient error, as Airflow
  does by default; its last try alerts.

Inside the stage, :func:`pipelines.core.alerts.scope` names the task try, so that a gate's
own notice and the failure callback that follows are one alert. This module is imported
only inside task bodies and callbacks, never when the scheduler parses the DAG.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from airflow.sdk.exceptions import AirflowFailException

from pipelines.core import alerts
from pipelines.core.errors import failure_kind

log = logging.getLogger(__name__)

T = TypeVar("T")


def run(context: Any, stage: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``stage(*args, **kwargs)`` for the task of ``context``; permanent failures fail the
    task without a retry, the others are Airflow's to retry."""
    ti = context["ti"]
    with alerts.scope(ti.dag_id, context["run_id"], ti.task_id, ti.try_number):
        try:
            return stage(*args, **kwargs)
        except Exception as exc:
            kind = failure_kind(exc)
            if kind == "permanent":
                raise AirflowFailException(alerts.describe_error(exc)) from exc
            log.warning("%s error in %s (try %s), retried while tries are left: %s", kind, ti.task_id,
                        ti.try_number, alerts.describe_error(exc))  # fmt: skip
            raise


def on_failure(context: Any, day: str | None) -> None:
    """The DAG's failure callback (the task's last try failed): one alert, unless the task
    raised it already (a gate's notice). ``day``: the data day, None for a DAG without one
    (the rollback)."""
    ti = context["task_instance"]
    alerts.record_task_failure(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        day=day,
        error=alerts.describe_error(context.get("exception")),
        try_number=ti.try_number,
        run_id=context.get("run_id"),
    )
