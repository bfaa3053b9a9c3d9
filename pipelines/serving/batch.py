"""The night's batch: score every active user (in-process or on Dask), measure the scores'
drift against what readers saw before, then publish atomically. Nothing is written before
every partition came back; the live batch changes only on success."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.cluster import dask_address
from pipelines.core.config import params
from pipelines.core.errors import NewsrecError, TransientError
from pipelines.core.runs import record_run
from pipelines.gates.drift import check_score_drift
from pipelines.model import registry
from pipelines.serving import distributed
from pipelines.serving.list_digest import list_digest
from pipelines.serving.publish import live_batch_id, publish_batch
from pipelines.serving.scoring import predictor, score_partition, scoring_arms
from pipelines.serving.selection import fallback_lists

log = logging.getLogger(__name__)


@dataclass
class ScoreResult:
    day: date
    model_version: str
    users: int
    candidates: int
    recommendations: pd.DataFrame
    fallback: pd.DataFrame
    seconds: float
    predict_seconds: float
    engine: str = "lightgbm"
    compile_seconds: float = 0.0
    partitions: int = 1
    dask_address: str | None = None
    arms: dict[str, Any] = field(default_factory=dict)
    kernel_seconds: float = 0.0  # the partitions' candidates-to-lists time (no loading)
    kernel_cpu_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "model_version": self.model_version,
            "users": self.users,
            "candidates": self.candidates,
            "rows": len(self.recommendations),
            "lists_digest": list_digest(self.recommendations),
            "seconds": round(self.seconds, 1),
            "candidates_per_s": round(self.candidates / self.seconds) if self.seconds else None,
            "predict_seconds": round(self.predict_seconds, 1),
            "kernel_seconds": round(self.kernel_seconds, 2),
            "engine": self.engine,
            "compile_seconds": round(self.compile_seconds, 1),
            "partitions": self.partitions,
            "dask_address": self.dask_address,
            "arms": self.arms,
        }


def score(
    day: date,
    model_ref: str = registry.CHAMPION,
    chunk_users: int | None = None,
    engine: str | None = None,
    dask_address: str | None = None,
) -> ScoreResult:
    """Rank every active user's candidates; top k per user plus fallback lists.

    With a Dask address (argument or ``NEWSREC_DASK_ADDRESS``) the users are split into
    partitions that the cluster's workers score with :func:`score_partition`; otherwise one
    partition runs in this process. Either way nothing is written here: publishing stays
    one atomic switch after every partition came back."""

    t0 = time.perf_counter()
    arms, plan = scoring_arms(day, model_ref)
    # Compile (lleaves) once here, before any worker needs the library; it is cached per version.
    compiled = {a.model_version: predictor(a.model_version, engine) for a in arms if a.model_version}
    champion = next(a for a in arms if a.kind == "champion")
    first = compiled[str(champion.model_version)]
    address = _dask_address(dask_address)
    if address is None:
        results = [score_partition(day, arms, plan, 0, 1, chunk_users, engine)]
    else:
        results = distributed.score_on_dask(address, day, arms, plan, chunk_users, engine)
    frames = [r.recommendations for r in results if len(r.recommendations)]
    recommendations = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    users_per_arm: dict[str, int] = {}
    for r in results:
        for arm, n in r.users_per_arm.items():
            users_per_arm[arm] = users_per_arm.get(arm, 0) + n
    arm_info = {
        a.arm: {"kind": a.kind, "model_version": a.model_version, "users": users_per_arm.get(str(a.arm), 0)}
        for a in arms
        if a.arm is not None
    }
    return ScoreResult(
        day,
        str(champion.model_version),
        sum(r.users for r in results),
        sum(r.candidates for r in results),
        recommendations,
        fallback_lists(day, k=int(params("serving").get("selection", {}).get("k", 10))),
        time.perf_counter() - t0,
        sum(r.predict_seconds for r in results),
        first.engine,
        sum(p.compile_seconds for p in compiled.values()),
        len(results),
        address,
        arm_info,
        sum(r.seconds for r in results),
        sum(r.cpu_seconds for r in results),
    )


def _dask_address(explicit: str | None) -> str | None:

    return explicit or dask_address()


def score_and_publish(
    day: date, dry_run: bool = False, model_ref: str = registry.CHAMPION, dask_address: str | None = None
) -> dict[str, Any]:
    """Score, then publish atomically (unless ``dry_run``); the live batch changes only on success."""

    with record_run("score_publish", day) as run:
        if model_ref == registry.CHAMPION and registry.champion_version() is None:
            # the first nights of a new warehouse: no model yet, so the live lists stay as they are
            summary = {"published": False, "reason": "no champion yet: nothing scored, the live batch is unchanged"}
            log.warning("score_publish %s: %s", day, summary["reason"])
            run.details.update(summary)
            return summary
        result = score(day, model_ref, dask_address=dask_address)
        summary = result.summary()
        summary["score_drift"] = score_drift_against_previous(day, result.recommendations)
        if dry_run:
            summary["published"] = False
        else:
            folder = registry.export_for_serving(result.model_version)  # the reader explains with this file
            keep = int(params("serving").get("publish", {}).get("keep_batches", 3))
            t0 = time.perf_counter()
            summary["batch_id"] = publish_batch(
                day, result.model_version, result.recommendations, result.fallback, keep, model_key=folder.name
            )
            summary["publish_seconds"] = round(time.perf_counter() - t0, 2)
            summary["published"] = True
            summary["live"] = live_batch_id() == summary["batch_id"]  # False: a later date is live
        run.details.update(summary)
    return summary


def score_drift_against_previous(day: date, recommendations: pd.DataFrame) -> dict[str, Any] | None:
    """Drift of the new batch's scores against the newest batch of an earlier date (what readers
    saw the day before; a re-run of a day compares with the same batch), before the switch.

    Informational: it is stored in ``ops.drift_results`` and never blocks publishing."""

    if recommendations.empty:
        return None
    with db.transaction() as conn:
        before = db.read_frame(
            conn,
            queries.load("serving_previous_scores"),
            (day,),
        )
    if before.empty:
        return None
    current = recommendations.loc[recommendations["user_id"] % 10 == 0, "score"].head(50_000)
    try:
        result = check_score_drift(day, current.to_numpy(), before["score"].to_numpy())
    except TransientError:
        raise
    except NewsrecError as exc:
        log.warning("score drift not measured: %s", exc)
        return None
    return {"drifted": result.drifted, "score": result.columns[0].score, "report": str(result.report_path)}
