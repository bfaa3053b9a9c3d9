"""The retrain checker: one function that decides whether tonight trains, and why.

Retrain when there is no champion, feature drift passes its threshold, the champion's metric
on the newest labels decayed by more than a margin, the feature set changed, the champion is
older than N days, or somebody forces it: those give a ``full`` retrain (search, fit from
scratch). When none holds, ``retrain.warm_start`` makes it a ``warm`` retrain (continue the
champion on the days it has not seen, with its parameters: minutes instead of the night's
search budget); without it the night keeps the champion (``none``). The decision and all
reasons go to ``ops.retrain_decisions``; the DAG branches on the returned object and the
train task reads the mode back (:func:`recorded_mode`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.config import params
from pipelines.core.errors import NewsrecError, TransientError
from pipelines.features.catalog import FEATURE_SERVICE
from pipelines.features.matrix import MatrixSpec, current_feature_names
from pipelines.model import evaluate, registry
from pipelines.warehouse import profile as data_profile

log = logging.getLogger(__name__)


@dataclass
class RetrainDecision:
    day: date
    retrain: bool
    mode: str  # "full" | "warm" | "none"
    champion: str | None
    reasons: list[str]
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["day"] = self.day.isoformat()
        return data

    def render(self) -> str:
        verdict = f"retrain ({self.mode})" if self.retrain else "no retraining"
        return f"{self.day}: {verdict}: " + "; ".join(self.reasons)


def champion_decay(day: date, version: str) -> tuple[float | None, float | None]:
    """(NDCG@10 at registration, NDCG@10 on ``day``'s labels) of the champion."""
    model = registry.load(version)
    try:
        split, scores = evaluate.score_on_day(model, day, **evaluate.held_out_sample())
    except TransientError:
        raise  # the database went away: retry the stage, do not decide without the measurement
    except NewsrecError as exc:
        log.warning("cannot measure the champion on %s: %s", day, exc)
        return None, None
    now = evaluate.ndcg_at_10(split, scores)
    at_registration = registry.run_metrics(model.run_id).get("ndcg_at_10")
    return at_registration, now


def latest_drift_share(day: date) -> float | None:
    """The share of drifted features in the day's latest feature-drift result, if any."""
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("retrain_latest_drift_share"), (day,))
        row = cur.fetchone()
    return float(row[0]) if row else None


def decide(day: date, drift_share: float | None = None, force: bool = False) -> RetrainDecision:
    """Decide for logical date ``day``; ``drift_share`` is the drift check's share of drifted features."""
    cfg = params("retrain")
    reasons: list[str] = []
    evidence: dict[str, Any] = {"drift_share": drift_share}
    info = registry.champion_as_of(day)
    champion = info["version"] if info else None
    if force:
        reasons.append("forced by the user")
    if info is None:
        reasons.append("no champion yet")
    else:
        spec = MatrixSpec.from_dict(json.loads(info["tags"]["matrix_spec"]))
        features = current_feature_names(data_profile.current())
        if tuple(spec.feature_names) != features or spec.feature_service != FEATURE_SERVICE:
            reasons.append("the feature set changed since the champion was trained")
        trained_on = date.fromisoformat(info["tags"].get("logical_date", day.isoformat()))
        age = (day - trained_on).days
        evidence["champion_age_days"] = age
        if age > int(cfg.get("max_model_age_days", 7)):
            reasons.append(f"the champion is {age} days old (limit {cfg.get('max_model_age_days', 7)})")
        threshold = float(params("drift").get("features", {}).get("share_threshold", 0.2))
        if drift_share is not None and drift_share >= threshold:
            reasons.append(f"feature drift: {drift_share:.0%} of features drifted (threshold {threshold:.0%})")
        if cfg.get("check_decay", True) and not reasons:
            before, now = champion_decay(day, champion)
            evidence.update(champion_ndcg_at_registration=before, champion_ndcg_today=now)
            margin = float(cfg.get("decay_margin", 0.02))
            if before is not None and now is not None and now < before - margin:
                reasons.append(f"the champion's NDCG@10 decayed from {before:.4f} to {now:.4f} (margin {margin})")
    retrain = bool(reasons)
    mode = "full" if retrain else "none"
    if not retrain and cfg.get("warm_start", True):
        retrain, mode = True, "warm"
        reasons.append(f"warm start from champion {champion}: fresh, no drift, no decay, same features")
    elif not retrain:
        reasons.append("champion is fresh, no drift, no decay, same features")
    decision = RetrainDecision(day, retrain, mode, champion, reasons, evidence)
    _record(decision)
    return decision


def recorded_mode(day: date) -> str:
    """The training mode the checker chose for ``day`` ("full" when it never ran: an explicit
    or forced training run with no decision on record trains from scratch)."""
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("retrain_recorded_mode"), (day,))
        row = cur.fetchone()
    return "warm" if row and row[0] == "warm" else "full"


def _record(decision: RetrainDecision) -> None:
    """Replace the day's decision: re-running a date leaves one record, like a single run."""
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("retrain_delete_day"), (decision.day,))
        cur.execute(
            queries.load("retrain_insert_decision"),
            (
                decision.day,
                datetime.now(UTC),
                decision.retrain,
                decision.mode,
                decision.champion,
                json.dumps(decision.reasons),
                json.dumps(decision.evidence, default=str),
            ),
        )
