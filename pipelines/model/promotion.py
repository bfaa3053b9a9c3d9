"""The promotion gate: a challenger becomes champion only if it passes the model tests and
beats the champion on the same held-out data by a margin (an absolute floor plus a
no-regression rule). Every decision and its evidence goes to ``ops.model_decisions``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.config import params
from pipelines.features.matrix import MatrixSpec, to_matrix
from pipelines.model import evaluate, registry


@dataclass
class Decision:
    promoted: bool
    challenger: str
    champion: str | None
    reasons: list[str]
    evidence: dict[str, Any] = field(default_factory=dict)

    def render(self) -> str:
        verdict = "promoted" if self.promoted else "refused"
        return f"challenger {self.challenger} {verdict} (champion {self.champion or 'none'}): " + "; ".join(
            self.reasons
        )


def model_tests(predict: Callable[[pd.DataFrame], np.ndarray], spec: MatrixSpec, rows: pd.DataFrame) -> dict[str, Any]:
    """Behavioural tests on held-out rows: invariance and direction."""
    base = np.asarray(predict(to_matrix(rows, spec)))
    moved = rows.copy()
    moved["user_id"] = moved["user_id"] + 1_000_000_000
    invariance = float(np.max(np.abs(np.asarray(predict(to_matrix(moved, spec))) - base))) if len(rows) else 0.0
    keen = rows.copy()
    share = pd.to_numeric(keen["user_cat_dwell_share_28d"], errors="coerce").fillna(0)
    keen["user_cat_dwell_share_28d"] = (share + 0.3).clip(upper=1.0)
    for name, extra in (
        ("user_cat_reads_28d", 3),
        ("user_cat_impressions_28d", 3),
        ("user_cat_dwell_28d_s", 180.0),
    ):
        keen[name] = pd.to_numeric(keen[name], errors="coerce").fillna(0) + extra
    keen["user_cat_ctr_28d"] = keen["user_cat_reads_28d"] / keen["user_cat_impressions_28d"]
    direction = float(np.mean(np.asarray(predict(to_matrix(keen, spec))) - base)) if len(rows) else 0.0
    return {
        "invariance_max_abs_diff": invariance,
        "invariance_passed": invariance <= 1e-9,
        "direction_mean_score_change": direction,
        "direction_passed": direction >= 0.0,
    }


def decide(
    challenger: str,
    challenger_metrics: dict[str, dict[str, float]],
    tests: dict[str, Any],
    champion: str | None,
    champion_ndcg: float | None,
    online: dict[str, Any] | None = None,
) -> Decision:
    """Apply the gate. ``challenger_metrics`` is the evaluation table's 'overall' part.

    ``online``: the challenger won an online experiment against the champion (its evidence);
    readers' behaviour then replaces the held-out comparison with the champion, and every
    other rule (floor, popularity, model tests) applies as for a freshly trained model."""
    cfg = params("promotion")
    margin = float(cfg.get("margin", 0.002))
    floor = float(cfg.get("min_ndcg_at_10", 0.0))
    ndcg = challenger_metrics["model"]["ndcg@10"]
    reasons: list[str] = []
    ok = True
    if not ndcg >= floor:
        ok = False
        reasons.append(f"NDCG@10 {ndcg:.4f} is below the floor {floor:.4f}")
    popularity = challenger_metrics.get("popularity", {}).get("ndcg@10")
    if cfg.get("must_beat_popularity", True) and popularity is not None and not ndcg > popularity:
        ok = False
        reasons.append(f"NDCG@10 {ndcg:.4f} does not beat the popularity baseline {popularity:.4f}")
    if not tests["invariance_passed"]:
        ok = False
        reasons.append(
            f"invariance test failed: changing only the user id moved scores by {tests['invariance_max_abs_diff']:.3g}"
        )
    if not tests["direction_passed"]:
        ok = False
        change = tests["direction_mean_score_change"]
        reasons.append(
            f"direction test failed: more affinity to the category changed scores by {change:.3g} on average"
        )
    if online is not None:
        reasons.append(f"beat champion {champion or 'none'} online: {online.get('summary', 'experiment won')}")
    elif champion is None:
        reasons.append("no champion yet")
    elif champion_ndcg is None:
        reasons.append(f"champion {champion} cannot score the current features; judged on the floor only")
    elif ndcg < champion_ndcg + margin:
        ok = False
        reasons.append(f"NDCG@10 {ndcg:.4f} does not beat champion {champion} ({champion_ndcg:.4f}) by {margin}")
    else:
        reasons.append(f"NDCG@10 {ndcg:.4f} beats champion {champion} ({champion_ndcg:.4f}) by at least {margin}")
    if ok:
        reasons.append("all model tests passed")
    evidence = {"challenger_ndcg@10": ndcg, "champion_ndcg@10": champion_ndcg, "tests": tests, "margin": margin,
                "floor": floor, "popularity_ndcg@10": popularity}  # fmt: skip
    if online is not None:
        evidence["online"] = online
    return Decision(ok, challenger, champion, reasons, evidence)


def gate_online_winner(day: date, challenger: str, online: dict[str, Any]) -> Decision:
    """The training promotion gate for a challenger that won an online experiment: the same
    floor, popularity and model tests on day ``day``'s held-out impressions; the experiment's
    evidence stands in for the held-out comparison with the champion. Not applied (the caller
    moves the alias with :func:`promote` only when it passes)."""
    model = registry.load(challenger)
    split, scores = evaluate.score_on_day(model, day, max_groups=params("training").get("max_eval_groups"))
    table = evaluate.evaluate(split, scores)
    tests = model_tests(model.predict, model.spec, split.rows)
    return decide(challenger, table["overall"], tests, registry.champion_version(), None, online=online)


def promote(decision: Decision, logical_date: date | None, kind: str = "promotion") -> Decision:
    """The one place the champion alias moves (a gate's promotion, an experiment's winner, a
    manual promotion, a rollback to a named version): moves it when the decision says so and
    records the decision in ``ops.model_decisions`` either way."""
    if decision.promoted:
        before = registry.set_champion(decision.challenger)
        if decision.champion is None:
            decision.champion = before
    record(decision, logical_date, kind)
    return decision


def promote_by_hand(version: str) -> tuple[str | None, str]:
    """Make ``version`` champion outside the gate; recorded as a manual decision."""
    decision = promote(Decision(True, str(version), None, ["promoted by hand"]), None, kind="manual")
    return decision.champion, str(version)


def rollback_champion(version: str | None = None) -> tuple[str | None, str]:
    """Move the champion back: to ``version``, or one step to the version it replaced.
    Returns (from, to); the move is recorded as a rollback."""
    if version:
        decision = promote(Decision(True, str(version), None, ["rollback"]), None, kind="rollback")
        return decision.champion, str(version)
    before, after = registry.rollback()
    record(Decision(True, after, before, ["rollback"]), logical_date=None, kind="rollback")
    return before, after


def record(decision: Decision, logical_date: date | None, kind: str = "promotion") -> None:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            queries.load("promotion_insert_decision"),
            (
                logical_date,
                kind,
                decision.challenger,
                decision.champion,
                decision.promoted,
                json.dumps(decision.reasons),
                json.dumps(decision.evidence, default=float),
            ),
        )


def latest_decision(challenger: str) -> Decision | None:
    """The last gate decision recorded for a version, if any."""
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            queries.load("promotion_latest_decision"),
            (challenger,),
        )
        row = cur.fetchone()
    if row is None:
        return None
    return Decision(bool(row[0]), challenger, row[1], list(row[2]), dict(row[3]))
