"""The nightly run: at 02:00 UTC, process the previous UTC day end to end.

This file only wires tasks. Every task imports `pipelines` inside its body and calls one
function of `pipelines.nightly.stages` through `pipelines.nightly.airflow_task.run`, so the
scheduler parses this file in milliseconds and everything also runs without Airflow
(`newsrec run-day`, `newsrec backfill`).

Retries by kind (`airflow_task.run`): a gate's verdict, bad input or any `NewsrecError` fails
the task at once; a lost connection, a lock timeout or a lost Dask worker is retried twice
with exponential backoff from Airflow's `[core] default_task_retry_delay` (30 s in
`newsrec airflow`), at most 10 min apart. The failure callback alerts on-call
(`pipelines.core.alerts`, `NEWSREC_ALERT_URL`), once per run, task and try.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, task

# Memory: tasks that may run side by side share the pool `newsrec_memory` (its slots: GiB of the
# night's memory cap, params.yaml nightly.memory.cap_gib); each task's slots are its peak in GiB
# (pipelines/nightly/plan.py memory_gib, checked by tests/dags), so parallel tasks wait for each
# other rather than peak together past the cap. Locks: each stage takes its own write-domain
# locks (pipelines/core/locks.py), so materialize and drift/training may overlap.
POOL = "newsrec_memory"

FEATURES = Asset("newsrec://features/daily")
CHAMPION = Asset("newsrec://registry/champion")
LIVE_BATCH = Asset("newsrec://serving/live")


def _day(context) -> str:
    # The data interval [D 02:00, D+1 02:00) stands for the UTC calendar day D.
    return context["data_interval_start"].date().isoformat()


def _alert(context) -> None:
    from pipelines.nightly import airflow_task

    airflow_task.on_failure(context, _day(context))


@dag(
    dag_id="newsrec_nightly",
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 2,  # transient errors only (airflow_task.run fails the others at once)
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "on_failure_callback": _alert,
    },
    params={
        "ingest": Param("simulate", enum=["simulate", "warehouse"], description="Simulate the day or use loaded data"),
        "force_retrain": Param(False, type="boolean", description="Train a challenger whatever the checker says"),
        "hpo_trials": Param(4, type="integer", minimum=1, description="Hyper-parameter search trials"),
        "hpo_minutes": Param(10, type="number", minimum=0.1, description="Search time budget in minutes"),
        "dry_run": Param(False, type="boolean", description="Score but do not publish (skip the live switch)"),
        "dask_address": Param(
            None,
            type=["null", "string"],
            description="Dask scheduler (tcp://host:8786) for the ETL, training and scoring "
            "(empty: NEWSREC_DASK_ADDRESS of the workers, else in-process)",
        ),
        "experiment_challengers": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Start an experiment from this run's publish: registered model versions to test "
            "against the champion (empty: none). Shares and tests: params.yaml experiments.",
        ),
        "experiment_popularity_share": Param(
            0.0, type="number", minimum=0, maximum=1, description="Share of a popularity control arm in that experiment"
        ),
        "experiment_cohort_size": Param(
            None, type=["null", "integer"], minimum=1, description="Pilot users in that experiment (empty: every user)"
        ),
    },
    tags=["newsrec"],
    doc_md=__doc__,
)
def newsrec_nightly():
    @task
    def ingest(params=None, **context) -> dict:
        from pipelines.nightly import airflow_task, stages

        return airflow_task.run(context, stages.ingest, _day(context), params["ingest"])

    @task(pool=POOL, pool_slots=2)
    def raw_gate(ingested: dict, **context) -> dict:
        from pipelines.nightly import airflow_task, stages

        return airflow_task.run(context, stages.quality, _day(context), "raw")

    @task(outlets=[FEATURES], pool=POOL, pool_slots=3)
    def features(passed_raw: dict, params=None, **context) -> dict:
        from pipelines.nightly import airflow_task, stages

        return airflow_task.run(context, stages.features, _day(context), dask_address=params["dask_address"])

    @task(pool=POOL, pool_slots=2)
    def quality_gate(built: dict, **context) -> dict:
        from pipelines.nightly import airflow_task, stages

        return airflow_task.run(context, stages.quality, _day(context), "features")

    @task(pool=POOL, pool_slots=1)
    def materialize(built: dict, **context) -> dict:
        from pipelines.nightly import airflow_task, stages

        return airflow_task.run(context, stages.materialize, _day(context))

    @task(pool=POOL, pool_slots=1)
    def drift_check(passed: dict, **context) -> dict:
        from pipelines.nightly import airflow_task, stages

        return airflow_task.run(context, stages.drift, _day(context))

    @task(pool=POOL, pool_slots=3)
    def propensity(passed_raw: dict, **context) -> dict:
        from pipelines.nightly import airflow_task, stages

        return airflow_task.run(context, stages.propensity, _day(context))

    @task.branch
    def retrain_checker(drift: dict, params=None, **context) -> str:
        from pipelines.nightly import airflow_task, stages

        decision = airflow_task.run(
            context, stages.decide_retrain, _day(context), drift.get("share"), params["force_retrain"]
        )
        return "train" if decision["retrain"] else "skip_training"

    @task(outlets=[CHAMPION], pool=POOL, pool_slots=6)
    def train(params=None, **context) -> dict:
        from pipelines.nightly import airflow_task, stages

        return airflow_task.run(
            context,
            stages.train,
            _day(context),
            params["hpo_trials"],
            params["hpo_minutes"],
            dask_address=params["dask_address"],
        )

    @task
    def skip_training() -> dict:
        return {"trained": False}

    @task(pool=POOL, pool_slots=1)
    def business_metrics(passed_raw: dict, **context) -> dict:
        from pipelines.nightly import airflow_task, stages

        return airflow_task.run(context, stages.business_metrics, _day(context))

    @task
    def start_experiment(params=None, **context) -> dict:
        from pipelines.nightly import airflow_task, stages

        return airflow_task.run(
            context,
            stages.start_experiment,
            _day(context),
            list(params["experiment_challengers"]),
            popularity_share=params["experiment_popularity_share"],
            cohort_size=params["experiment_cohort_size"],
        )

    @task(trigger_rule="none_failed_min_one_success")
    def decide_experiments(metrics: dict, started: dict, **context) -> dict:
        from pipelines.nightly import airflow_task, stages

        return airflow_task.run(context, stages.decide_experiments, _day(context))

    @task(trigger_rule="none_failed_min_one_success", outlets=[LIVE_BATCH], pool=POOL, pool_slots=3)
    def score_and_publish(params=None, **context) -> dict:
        from pipelines.nightly import airflow_task, stages

        return airflow_task.run(
            context,
            stages.score_and_publish,
            _day(context),
            dry_run=params["dry_run"],
            dask_address=params["dask_address"],
        )

    @task(trigger_rule="all_done")
    def report(**context) -> dict:
        from pipelines.nightly import airflow_task, stages

        return airflow_task.run(context, stages.report, _day(context))

    passed_raw = raw_gate(ingest())
    built = features(passed_raw)
    passed = quality_gate(built)
    online = materialize(passed)
    branch = retrain_checker(drift_check(passed))
    trained, skipped = train(), skip_training()
    branch >> [trained, skipped]
    propensity(passed_raw)  # for tomorrow's training: tonight's reads last night's
    # D's events answered last night's lists; the decision comes before tonight's publish
    decided = decide_experiments(business_metrics(passed_raw), start_experiment())
    [trained, skipped] >> decided
    published = score_and_publish()
    [decided, online] >> published
    published >> report()


newsrec_nightly()
