"""Batch scoring with the champion: candidates -> features -> matrix -> LightGBM -> top 10.

Users are scored chunk by chunk (memory stays bounded at seed scale) through the same
feature-to-matrix code as training, after the model's signature has been checked. Features
are those known at the end of day D; the request time for request-time features (article
age) is a configurable hour of D+1, when the lists are read.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from pipelines import registry
from pipelines.config import params
from pipelines.features.matrix import check_signature, to_array
from pipelines.features.transforms import end_of_day

log = logging.getLogger(__name__)


def load_for_scoring(ref: str = registry.CHAMPION) -> registry.LoadedModel:
    """Load a model for scoring; refuses one whose signature differs from today's features."""
    model = registry.load(ref)
    check_signature(model.spec)
    return model


def request_time(day: date) -> pd.Timestamp:
    hours = float(params("scoring").get("request_offset_hours", 8))
    return pd.Timestamp(end_of_day(day)) + timedelta(hours=hours)


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
        }


def score(
    day: date, model_ref: str = registry.CHAMPION, chunk_users: int | None = None, engine: str | None = None
) -> ScoreResult:
    """Rank every active user's candidates with the model; top k per user plus fallback lists."""
    from tqdm.auto import tqdm

    from pipelines.features.retrieval import OfflineFeatures
    from pipelines.serving.candidates import iter_candidate_chunks
    from pipelines.serving.predictor import Predictor
    from pipelines.serving.selection import fallback_lists, select_top

    sel = params("serving").get("selection", {})
    k, cap = int(sel.get("k", 10)), int(sel.get("max_per_category", 3))
    chunk_users = int(chunk_users or params("serving").get("candidates", {}).get("chunk_users", 50_000))
    t0 = time.perf_counter()
    model = load_for_scoring(model_ref)
    predict = Predictor(model, engine)
    features = OfflineFeatures(day)
    when = request_time(day)
    parts: list[pd.DataFrame] = []
    users = candidates = 0
    predict_s = 0.0
    with tqdm(desc="scoring", unit="user", disable=None) as bar:
        for chunk in iter_candidate_chunks(day, chunk_users):
            if chunk.empty:
                continue
            rows = features.rows(chunk[["user_id", "article_id"]].assign(event_timestamp=when))
            X = to_array(rows, model.spec, predict.dtype)
            del rows
            t1 = time.perf_counter()
            scores = predict(X)
            predict_s += time.perf_counter() - t1
            parts.append(select_top(chunk.assign(score=scores), k=k, max_per_category=cap))
            n_users = chunk["user_id"].nunique()
            users += n_users
            candidates += len(chunk)
            bar.update(n_users)
    recommendations = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    fallback = fallback_lists(day, k=k)
    return ScoreResult(day, model.version, users, candidates, recommendations, fallback,
                       time.perf_counter() - t0, predict_s, predict.engine, predict.compile_seconds)  # fmt: skip


def score_and_publish(day: date, dry_run: bool = False, model_ref: str = registry.CHAMPION) -> dict[str, Any]:
    """Score, then publish atomically (unless ``dry_run``); the live batch changes only on success."""
    from pipelines.ops import record_run

    with record_run("score_publish", day) as run:
        result = score(day, model_ref)
        summary = result.summary()
        summary["score_drift"] = score_drift_against_previous(day, result.recommendations)
        if dry_run:
            summary["published"] = False
        else:
            from pipelines.serving.publish import publish_batch

            registry.export_for_serving(result.model_version)  # the reader explains with this file
            keep = int(params("serving").get("publish", {}).get("keep_batches", 3))
            t0 = time.perf_counter()
            summary["batch_id"] = publish_batch(
                day, result.model_version, result.recommendations, result.fallback, keep
            )
            summary["publish_seconds"] = round(time.perf_counter() - t0, 2)
            summary["published"] = True
        run.details.update(summary)
    return summary


def score_drift_against_previous(day: date, recommendations: pd.DataFrame) -> dict[str, Any] | None:
    """Drift of the new batch's scores against the newest batch of an earlier date (what readers
    saw the day before; a re-run of a day compares with the same batch), before the switch.

    Informational: it is stored in ``ops.drift_results`` and never blocks publishing."""
    from pipelines import db
    from pipelines.drift import check_score_drift
    from pipelines.errors import NewsrecError

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
