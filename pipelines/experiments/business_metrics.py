"""The business metric, nightly: what readers did with the published lists on day D.

Day D's recommended impressions (``warehouse.events`` rows with a ``batch_id``) answered the
batch published the night before; each carries the batch, arm and model that produced its
list, recorded when it was shown, so nothing here depends on batches that publish may have
retired since. Per arm, region and cohort:

* ``dwell_per_user_s``: dwell seconds of reads of recommended impressions per active
  user-day, where an active user-day is a user shown their list at least once that day;
* ``ctr``: reads / recommended impressions;
* ``coverage``: distinct recommended articles shown / articles published in the candidate
  window of the batch (``serving.candidates.window_hours`` before the end of D-1);
* ``diversity``: mean number of distinct categories in a user's shown list.

Rows go to ``ops.business_metrics`` (every user), and for the experiment that produced the
batch, one row per exposed cohort user to ``ops.experiment_user_days``: what the
promoter/demoter resamples. Re-running D replaces D's rows. Impressions of the regional
fallback lists (users without a personal list) count as arm ``fallback``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.config import params
from pipelines.core.runs import record_run
from pipelines.experiments.arms import ServingPlan

FALLBACK = "fallback"


@dataclass
class MetricsResult:
    day: date
    experiment_id: int | None
    batch_ids: list[int]
    users: int
    impressions: int
    table: pd.DataFrame  # the ops.business_metrics rows of the day

    def summary(self) -> dict[str, Any]:
        by_arm = (
            self.table.groupby("arm")[["active_users", "dwell_s"]].sum().assign(
                dwell_per_user_s=lambda f: (f["dwell_s"] / f["active_users"]).round(2)
            )
            if len(self.table)
            else pd.DataFrame()
        )  # fmt: skip
        return {
            "day": self.day.isoformat(),
            "experiment_id": self.experiment_id,
            "batches": self.batch_ids,
            "users": self.users,
            "impressions": self.impressions,
            "dwell_per_user_s": {str(k): float(v) for k, v in by_arm.get("dwell_per_user_s", {}).items()},
        }


def experiment_of_batch(cur: Any, batch_id: int) -> tuple[int, str, float] | None:
    """The experiment (id, salt, cohort share) whose plan the batch was scored with: the one
    running when the batch was created, from the batch's logical date on."""
    cur.execute(queries.load("business_metrics_batch_experiment"), (batch_id,))
    row = cur.fetchone()
    return (int(row[0]), row[1], float(row[2])) if row else None


def _window_articles(cur: Any, day: date) -> int:
    """Articles the batch shown on ``day`` could recommend: those of its candidate window."""
    hours = float(params("serving").get("candidates", {}).get("window_hours", 48))
    end = datetime(day.year, day.month, day.day, tzinfo=UTC)
    cur.execute(queries.load("business_metrics_window_articles"), (end - timedelta(hours=hours), end))
    return int(cur.fetchone()[0])


def user_days(impressions: pd.DataFrame) -> pd.DataFrame:
    """One row per user and arm of the day: impressions, reads, dwell, distinct categories."""
    if impressions.empty:
        return pd.DataFrame(
            columns=["user_id", "arm", "region", "model_version", "impressions", "reads", "dwell_s", "categories"]
        )
    grouped = impressions.groupby(["user_id", "arm", "region"], sort=True)
    out = grouped.agg(
        impressions=("event_id", "size"),
        reads=("is_read", "sum"),
        dwell_s=("dwell", "sum"),
        categories=("category", "nunique"),
        model_version=("model_version", lambda s: s.mode().iloc[0] if s.notna().any() else None),
    ).reset_index()
    return out


def aggregate(days: pd.DataFrame, impressions: pd.DataFrame, window_articles: int) -> pd.DataFrame:
    """The ops.business_metrics rows: per arm, region and cohort."""
    keys = ["arm", "region", "in_cohort"]
    if days.empty:
        return pd.DataFrame(columns=[*keys, "model_version", "active_users", "impressions", "reads", "dwell_s",
                                     "dwell_per_user_s", "ctr", "coverage", "diversity"])  # fmt: skip
    table = days.groupby(keys, sort=True).agg(
        active_users=("user_id", "nunique"),
        impressions=("impressions", "sum"),
        reads=("reads", "sum"),
        dwell_s=("dwell_s", "sum"),
        diversity=("categories", "mean"),
        model_version=("model_version", lambda s: s.mode().iloc[0] if s.notna().any() else None),
    )
    shown = impressions.groupby(keys, sort=True)["article_id"].nunique()
    table["coverage"] = shown / window_articles if window_articles else np.nan
    table["dwell_per_user_s"] = table["dwell_s"] / table["active_users"]
    table["ctr"] = table["reads"] / table["impressions"]
    return table.reset_index()


def compute(day: date) -> MetricsResult:
    """Compute and store day D's business metric (replacing D's rows)."""
    import pyarrow as pa

    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    with db.transaction() as conn, conn.cursor() as cur:
        imp = db.read_frame(
            conn, queries.load("business_metrics_impressions"), {"start": start, "end": start + timedelta(days=1)},
            {"arm": pa.string(), "model_version": pa.string(), "category": pa.string(), "region": pa.string()},
        )  # fmt: skip
        batch_ids = sorted(int(b) for b in imp["batch_id"].unique()) if len(imp) else []
        experiment = None
        if batch_ids:
            main_batch = int(imp["batch_id"].mode().iloc[0])
            experiment = experiment_of_batch(cur, main_batch)
        window = _window_articles(cur, day)
        if len(imp):
            personal = imp["model_version"].notna()
            imp["arm"] = imp["arm"].where(imp["arm"].notna(), np.where(personal, "champion", FALLBACK))
            if experiment is not None:
                plan = ServingPlan(experiment[0], "", experiment[1], (), experiment[2])
                imp["in_cohort"] = plan.in_cohort(imp["user_id"].to_numpy())
            else:
                imp["in_cohort"] = False
        else:
            imp = imp.assign(in_cohort=pd.Series(dtype=bool))
        cohort_of = imp.drop_duplicates("user_id").set_index("user_id")["in_cohort"] if len(imp) else None
        days = user_days(imp)
        if len(days):
            days["in_cohort"] = cohort_of.loc[days["user_id"]].to_numpy()
        table = aggregate(days, imp, window)
        cur.execute(queries.load("business_metrics_delete_day"), (day,))
        cur.execute(queries.load("business_metrics_delete_user_days"), (day,))
        if len(table):
            db.copy_frame(
                cur,
                "ops.business_metrics",
                table.assign(logical_date=day, experiment_id=experiment[0] if experiment else None)[
                    ["logical_date", "experiment_id", "arm", "region", "in_cohort", "model_version", "active_users",
                     "impressions", "reads", "dwell_s", "dwell_per_user_s", "ctr", "coverage", "diversity"]
                ].astype({"experiment_id": "Int64"}),
            )  # fmt: skip
        if experiment is not None and len(days):
            rows = days[days["in_cohort"] & (days["arm"] != FALLBACK)]
            db.copy_frame(
                cur,
                "ops.experiment_user_days",
                rows.assign(experiment_id=experiment[0], logical_date=day)[
                    ["experiment_id", "logical_date", "user_id", "arm", "model_version", "region", "impressions",
                     "reads", "dwell_s"]
                ],
            )  # fmt: skip
    return MetricsResult(day, experiment[0] if experiment else None, batch_ids, int(days["user_id"].nunique())
                         if len(days) else 0, len(imp), table)  # fmt: skip


def business_metrics(day: date) -> dict[str, Any]:
    """The nightly stage: compute D's metric, recorded as a run in ``ops.runs``."""

    with record_run("business_metrics", day) as run:
        result = compute(day)
        run.details.update(result.summary())
    return result.summary()
