"""Batch scoring with the champion: candidates -> features -> matrix -> LightGBM -> top 10.

Users are scored chunk by chunk (memory stays bounded at seed scale) through the same
feature-to-matrix code as training, after the model's signature has been checked. Features
are those known at the end of day D; the request time for request-time features (article
age) is a configurable hour of D+1, when the lists are read.

When an experiment runs, each user's arm (a stable hash, see ``pipelines.experiments``)
decides which model ranks them: the champion, a challenger, or the popularity control; every
row carries its arm and model version. With a Dask address configured, partitions of users
are scored by the cluster's workers through the same function as in-process.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from pipelines.model import registry
from pipelines.core.config import params
from pipelines.features.matrix import check_signature, to_array
from pipelines.features.transforms import end_of_day
from pipelines.experiments.plan import serving_plan
from pipelines.core.faults import checkpoint
from pipelines.features.retrieval import OfflineFeatures
from pipelines.serving.candidates import iter_candidate_chunks
from pipelines.serving.selection import select_top
from pipelines.serving.selection import fallback_lists
from pipelines.core import db
from pipelines.core.config import get_settings
from pipelines.serving.predictor import Predictor
from pipelines.core.cluster import dask_address
from pipelines.core.cluster import check_workers, connect
from pipelines.core.errors import NewsrecError
from pipelines.core.runs import record_run
from pipelines.serving.publish import live_batch_id, publish_batch
from pipelines.gates.drift import check_score_drift

log = logging.getLogger(__name__)


def load_for_scoring(ref: str = registry.CHAMPION) -> registry.LoadedModel:
    """Load a model for scoring; refuses one whose signature differs from today's features."""
    model = registry.load(ref)
    check_signature(model.spec)
    return model


def request_time(day: date) -> pd.Timestamp:
    hours = float(params("scoring").get("request_offset_hours", 8))
    return pd.Timestamp(end_of_day(day)) + timedelta(hours=hours)


@dataclass(frozen=True)
class ArmScorer:
    """Who ranks which users: an experiment arm (``arm`` None when no experiment runs) and the
    model version that ranks its users (None: the popularity control, ranked by the prior)."""

    arm: str | None
    kind: str  # champion | challenger | popularity
    model_version: str | None


POPULARITY = "popularity"


def scoring_arms(day: date, model_ref: str = registry.CHAMPION) -> tuple[list[ArmScorer], Any]:
    """The arms of the publish of ``day`` and the experiment plan that assigns users to them.

    Without a running experiment (or when scoring an explicit model) one arm ranks everyone.
    Every model is loaded once here so that a signature mismatch stops the run before any
    user is scored."""
    champion = load_for_scoring(model_ref)
    plan = None
    if model_ref == registry.CHAMPION:

        plan = serving_plan(day)
    if plan is None:
        return [ArmScorer(None, "champion", champion.version)], None
    arms: list[ArmScorer] = []
    for arm in plan.arms:
        if arm.kind == "champion":
            version = champion.version
        elif arm.kind == POPULARITY:
            version = None
        else:
            version = load_for_scoring(str(arm.model_version)).version
        arms.append(ArmScorer(arm.name, arm.kind, version))
    if "champion" not in {a.arm for a in arms}:  # users outside the cohort
        arms.append(ArmScorer("champion", "champion", champion.version))
    return arms, plan


@dataclass
class PartitionResult:
    """What one partition of users produced (returned by a Dask worker or computed in-process)."""

    recommendations: pd.DataFrame
    users: int = 0
    candidates: int = 0
    predict_seconds: float = 0.0
    users_per_arm: dict[str, int] = field(default_factory=dict)


def score_partition(
    day: date,
    arms: list[ArmScorer],
    plan: Any = None,
    part: int = 0,
    parts: int = 1,
    chunk_users: int | None = None,
    engine: str | None = None,
) -> PartitionResult:
    """Rank the candidates of one partition of the active users (all of them when ``parts`` is
    1): candidates -> feature rows -> matrix -> each arm's model -> top k per user.

    The same function runs in-process and on Dask workers; it reads only the feature
    partitions, the warehouse and the registry, and writes nothing."""
    from tqdm.auto import tqdm


    sel = params("serving").get("selection", {})
    k, cap = int(sel.get("k", 10)), int(sel.get("max_per_category", 3))
    chunk_users = int(chunk_users or params("serving").get("candidates", {}).get("chunk_users", 50_000))
    versions = sorted({a.model_version for a in arms if a.model_version})
    predictors = {v: _predictor(v, engine) for v in versions}
    features = OfflineFeatures(day)
    when = request_time(day)
    out = PartitionResult(pd.DataFrame())
    parts_out: list[pd.DataFrame] = []
    label = "scoring" if parts == 1 else f"scoring {part + 1}/{parts}"
    with tqdm(desc=label, unit="user", disable=None) as bar:
        for chunk in iter_candidate_chunks(day, chunk_users, part, parts):
            if chunk.empty:
                continue
            checkpoint("score_partition")
            user_ids, user_pos = np.unique(chunk["user_id"].to_numpy(np.int64), return_inverse=True)
            arm_of_user = plan.assign(user_ids) if plan is not None else np.full(len(user_ids), None, object)
            arm_of_row = arm_of_user[user_pos]
            rows = features.rows(chunk[["user_id", "article_id"]].assign(event_timestamp=when))
            scores = np.empty(len(chunk), dtype=np.float64)
            version_of_row = np.full(len(chunk), None, dtype=object)
            for a in arms:
                mask = arm_of_row == a.arm if plan is not None else np.ones(len(chunk), dtype=bool)
                if not mask.any():
                    continue
                if plan is not None:
                    out.users_per_arm[str(a.arm)] = out.users_per_arm.get(str(a.arm), 0) + int(
                        np.count_nonzero(arm_of_user == a.arm)
                    )
                if a.model_version is None:  # popularity control: the candidate prior
                    scores[mask] = chunk["prior"].to_numpy(np.float64)[mask]
                    version_of_row[mask] = POPULARITY
                    continue
                predict = predictors[a.model_version]
                subset = rows if mask.all() else rows[mask]
                X = to_array(subset, predict.model.spec, predict.dtype)
                t1 = time.perf_counter()
                scores[mask] = predict(X)
                out.predict_seconds += time.perf_counter() - t1
                version_of_row[mask] = a.model_version
                del X, subset
            del rows
            scored = chunk.assign(score=scores, model_version=version_of_row)
            if plan is not None:
                scored["arm"] = arm_of_row
            parts_out.append(select_top(scored, k=k, max_per_category=cap))
            out.users += len(user_ids)
            out.candidates += len(chunk)
            bar.update(len(user_ids))
    out.recommendations = pd.concat(parts_out, ignore_index=True) if parts_out else pd.DataFrame()
    return out


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

    def summary(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "model_version": self.model_version,
            "users": self.users,
            "candidates": self.candidates,
            "rows": len(self.recommendations),
            "seconds": round(self.seconds, 1),
            "candidates_per_s": round(self.candidates / self.seconds) if self.seconds else None,
            "predict_seconds": round(self.predict_seconds, 1),
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
    compiled = {a.model_version: _predictor(a.model_version, engine) for a in arms if a.model_version}
    champion = next(a for a in arms if a.kind == "champion")
    first = compiled[str(champion.model_version)]
    address = _dask_address(dask_address)
    if address is None:
        results = [score_partition(day, arms, plan, 0, 1, chunk_users, engine)]
    else:
        results = _score_on_dask(address, day, arms, plan, chunk_users, engine)
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
    )


def _predictor(version: str, engine: str | None) -> Any:
    """One predictor per model version and process (a Dask worker keeps it between partitions),
    keyed by the registry's database and home too: version numbers repeat across registries."""

    return _cached_predictor(db.database_url(), str(get_settings().home), version, engine)


@functools.lru_cache(maxsize=4)
def _cached_predictor(database_url: str, home: str, version: str, engine: str | None) -> Any:

    return Predictor(registry.load(version), engine)


def _dask_address(explicit: str | None) -> str | None:

    return explicit or dask_address()


def _score_on_dask(
    address: str, day: date, arms: list[ArmScorer], plan: Any, chunk_users: int | None, engine: str | None
) -> list[PartitionResult]:
    """Score the partitions on the cluster. A worker lost mid-partition makes Dask run that
    partition again elsewhere (up to ``distributed.scheduler.allowed-failures``); past that
    the run stops with one line and nothing is published."""
    from distributed import as_completed
    from tqdm.auto import tqdm


    client = connect(address)
    try:
        check_workers(client)
        workers = len(client.scheduler_info().get("workers", {}))
        per_worker = int(params("scoring").get("dask", {}).get("partitions_per_worker", 2))
        parts = max(1, workers * per_worker)
        futures = [
            client.submit(
                score_partition,
                day,
                arms,
                plan,
                i,
                parts,
                chunk_users,
                engine,
                pure=False,
                key=f"score-{day}-{i}-{parts}-{time.time_ns()}",
            )
            for i in range(parts)
        ]
        results: list[PartitionResult] = []
        with tqdm(total=parts, desc=f"scoring on {address}", unit="partition", disable=None) as bar:
            try:
                for future in as_completed(futures):
                    results.append(future.result())
                    bar.update(1)
            except Exception as exc:
                for f in futures:
                    f.cancel()
                raise NewsrecError(
                    f"scoring on the Dask cluster at {address} failed, nothing published: "
                    f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                ) from exc
        return results
    finally:
        client.close()


def score_and_publish(
    day: date, dry_run: bool = False, model_ref: str = registry.CHAMPION, dask_address: str | None = None
) -> dict[str, Any]:
    """Score, then publish atomically (unless ``dry_run``); the live batch changes only on success."""

    with record_run("score_publish", day) as run:
        result = score(day, model_ref, dask_address=dask_address)
        summary = result.summary()
        summary["score_drift"] = score_drift_against_previous(day, result.recommendations)
        if dry_run:
            summary["published"] = False
        else:

            registry.export_for_serving(result.model_version)  # the reader explains with this file
            keep = int(params("serving").get("publish", {}).get("keep_batches", 3))
            t0 = time.perf_counter()
            summary["batch_id"] = publish_batch(
                day, result.model_version, result.recommendations, result.fallback, keep
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
            "SELECT r.score FROM serving.recommendations r WHERE r.batch_id = (SELECT max(batch_id) "
            "FROM serving.batches WHERE data_date < %s AND status IN ('complete', 'retired')) "
            "AND r.user_id %% 10 = 0 LIMIT 50000",
            (day,),
        )
    if before.empty:
        return None
    current = recommendations.loc[recommendations["user_id"] % 10 == 0, "score"].head(50_000)
    try:
        result = check_score_drift(day, current.to_numpy(), before["score"].to_numpy())
    except NewsrecError as exc:
        log.warning("score drift not measured: %s", exc)
        return None
    return {"drifted": result.drifted, "score": result.columns[0].score, "report": str(result.report_path)}
