"""The promotion gate: a challenger becomes champion only if it passes the model tests and
beats the champion on the same held-out data by a margin (an absolute floor plus a
no-regression rule). Every decision and its evidence goes to ``ops.model_decisions``.

The margin rule is decided on evidence, not on two point estimates: both models score the same
held-out users' impressions, and a paired bootstrap over users
(:func:`pipelines.model.counterfactual.paired_ips`) gives the distribution of the difference
challenger - champion of the unbiased (IPS) NDCG@10. The challenger passes only when the
one-sided lower confidence bound of that difference (``promotion.comparison.confidence``,
95%: the gate only asks "better by the margin?", so a one-sided bound spends the whole 5% on
the one error that matters, a false promotion) reaches ``promotion.margin``. Where the data
profile says positions are unknown the same paired bootstrap runs on the logged NDCG@10 and
the evidence says so.

The floor and popularity rules stay on the logged NDCG@10 point estimates: they are sanity
bounds against a broken model (not a comparison of two good ones), their thresholds were set
on the logged scale, and they then mean the same on every data profile. The logged metric's
bias towards the logging order matters most in the champion comparison, where the champion's
own lists shaped the logs (issue 12), and that is the rule that uses the unbiased metric."""

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
from pipelines.core.errors import NewsrecError
from pipelines.features.matrix import MatrixSpec, check_signature
from pipelines.model import behaviour, evaluate, registry
from pipelines.model.counterfactual import Paired
from pipelines.warehouse import profile as data_profile


@dataclass
class Decision:
    promoted: bool
    challenger: str
    champion: str | None
    reasons: list[str]
    evidence: dict[str, Any] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)  # the gate rules that refused

    def render(self) -> str:
        verdict = "promoted" if self.promoted else "refused"
        return f"challenger {self.challenger} {verdict} (champion {self.champion or 'none'}): " + "; ".join(
            self.reasons
        )


def model_tests(predict: Callable[[pd.DataFrame], np.ndarray], spec: MatrixSpec, rows: pd.DataFrame) -> dict[str, Any]:
    """Behavioural tests on held-out rows (:mod:`pipelines.model.behaviour`): invariance to
    the reader's plan and tenure, direction for affinity and freshness, new users' lists."""
    return behaviour.run(predict, spec, rows)


RULES = ("floor", "popularity", *behaviour.RULES, "margin")


def decide(
    challenger: str,
    challenger_metrics: dict[str, dict[str, float]],
    tests: dict[str, Any],
    champion: str | None,
    comparison: Paired | None,
    online: dict[str, Any] | None = None,
) -> Decision:
    """Apply the gate. ``challenger_metrics`` is the evaluation table's 'overall' part;
    ``comparison`` the paired bootstrap of challenger - champion on the same held-out users
    (:func:`pipelines.model.train.champion_comparison`; None when the champion cannot score
    the current features).

    Every rule of :data:`RULES` can refuse; a refusal names its rules in ``Decision.failed``
    (and ``evidence['failed_rules']``).

    ``online``: the challenger won an online experiment against the champion (its evidence);
    readers' behaviour then replaces the held-out comparison with the champion, and every
    other rule (floor, popularity, model tests) applies as for a freshly trained model."""
    cfg = params("promotion")
    margin = float(cfg.get("margin", 0.002))
    floor = float(cfg.get("min_ndcg_at_10", 0.0))
    ndcg = challenger_metrics["model"]["ndcg@10"]
    reasons: list[str] = []
    failed: list[str] = []

    def refuse(rule: str, reason: str) -> None:
        failed.append(rule)
        reasons.append(f"{rule}: {reason}")

    if not ndcg >= floor:
        refuse("floor", f"NDCG@10 {ndcg:.4f} is below the floor {floor:.4f}")
    popularity = challenger_metrics.get("popularity", {}).get("ndcg@10")
    if cfg.get("must_beat_popularity", True) and popularity is not None and not ndcg > popularity:
        refuse("popularity", f"NDCG@10 {ndcg:.4f} does not beat the popularity baseline {popularity:.4f}")
    for rule, reason in behaviour.failures(tests):
        refuse(rule, f"test failed: {reason}")
    if online is not None:
        reasons.append(f"beat champion {champion or 'none'} online: {online.get('summary', 'experiment won')}")
    elif champion is None:
        reasons.append("no champion yet")
    elif comparison is None:
        reasons.append(f"champion {champion} cannot score the current features; judged on the floor only")
    elif not comparison.clears(margin):
        refuse("margin", f"does not beat champion {champion} by the margin {margin}: {comparison.summary()}")
    else:
        reasons.append(f"beats champion {champion} by the margin {margin}: {comparison.summary()}")
    ok = not failed
    if ok:
        reasons.append("all model tests passed")
    logged_champion = comparison.champion if comparison is not None and comparison.metric == "ndcg@10" else None
    evidence = {"challenger_ndcg@10": ndcg, "champion_ndcg@10": logged_champion, "tests": tests, "margin": margin,
                "floor": floor, "popularity_ndcg@10": popularity, "failed_rules": failed}  # fmt: skip
    if comparison is not None and online is None:
        evidence["comparison"] = comparison.to_dict()
    if online is not None:
        evidence["online"] = online
    return Decision(ok, challenger, champion, reasons, evidence, failed)


def gate_online_winner(day: date, challenger: str, online: dict[str, Any]) -> Decision:
    """The training promotion gate for a challenger that won an online experiment: the same
    floor, popularity and model tests on day ``day``'s held-out impressions; the experiment's
    evidence stands in for the held-out comparison with the champion. Not applied (the caller
    moves the alias with :func:`promote` only when it passes)."""
    model = registry.load(challenger)
    split, scores = evaluate.score_on_day(model, day, **evaluate.held_out_sample())
    table = evaluate.evaluate(split, scores)
    tests = model_tests(model.predict, model.spec, split.rows)
    return decide(challenger, table["overall"], tests, registry.champion_version(), None, online=online)


def promote(decision: Decision, logical_date: date | None, kind: str = "promotion") -> Decision:
    """The one function that moves the champion alias and the one that records the move in
    ``ops.model_decisions``: the gate's promotion, an experiment's winner, a manual override
    and a rollback all come through here. Moves the alias when the decision says so (a
    rollback one step back, ``evidence['one_step']``, walks the registry's chain back) and
    records the decision either way; a move the registry refuses is recorded as refused, with
    the registry's reason, and raised."""
    if decision.promoted:
        try:
            if kind == "rollback" and decision.evidence.get("one_step"):
                before, _ = registry.rollback()
            else:
                before = registry.set_champion(decision.challenger)
        except NewsrecError as exc:
            decision.promoted = False
            decision.reasons.append(f"the registry refused: {exc}")
            record(decision, logical_date, kind)
            raise
        if decision.champion is None:
            decision.champion = before
    record(decision, logical_date, kind)
    return decision


def missing_parts(version: str) -> list[str]:
    """What a registered version lacks to be served: empty for a complete version (registered
    completely, a matrix signature that matches today's features, its DVC data hash and its
    evaluation record, as :func:`pipelines.model.train` registers every version)."""
    info = registry.version_info(str(version))
    if info is None:
        return [f"no model version {version} in the registry"]
    tags, missing = info["tags"], []
    if tags.get("complete") != "true":
        missing.append("it was not registered completely")
    try:
        check_signature(MatrixSpec.from_dict(json.loads(tags["matrix_spec"])), data_profile.current())
    except (KeyError, ValueError, TypeError):
        missing.append("no matrix signature")
    except NewsrecError as exc:
        missing.append(str(exc))
    if not tags.get("dvc_data_hash"):
        missing.append("no DVC data hash (dvc_data_hash)")
    if "evaluation.json" not in registry.run_artifact_names(info["run_id"]) or "ndcg_at_10" not in (
        registry.run_metrics(info["run_id"])
    ):
        missing.append("no evaluation record (evaluation.json and NDCG@10 of its run)")
    return missing


def promote_by_hand(version: str, reason: str) -> tuple[str | None, str]:
    """Make ``version`` champion outside the gate: an explicit override, refused without a
    reason or for an incomplete version, and recorded as kind 'override' with the reason."""
    reason = (reason or "").strip()
    if not reason:
        raise NewsrecError("a manual promotion overrides the promotion gate: give the reason (--reason)")
    missing = missing_parts(str(version))
    if missing:
        raise NewsrecError(f"version {version} is incomplete, not promoted: " + "; ".join(missing))
    evidence = {"override_reason": reason, "by": _operator(), "gate": _last_gate(str(version))}
    decision = Decision(True, str(version), None, [f"override of the promotion gate: {reason}"], evidence)
    promote(decision, None, kind="override")
    return decision.champion, str(version)


def rollback_champion(version: str | None = None, reason: str = "") -> tuple[str | None, str]:
    """Move the champion back: to ``version``, or one step to the version it replaced.
    Returns (from, to); the move (or the registry's refusal) is recorded as a rollback."""
    why = ["rollback" + (f": {reason}" if reason else "")]
    evidence: dict[str, Any] = {"by": _operator(), "reason": reason}
    if version:
        decision = Decision(True, str(version), None, why, evidence)
        missing = [m for m in missing_parts(str(version)) if "registered completely" in m or "no model" in m]
        if missing:  # a former champion was complete; anything else is not a way back
            decision.promoted = False
            decision.reasons.append(f"cannot roll back to version {version}: " + "; ".join(missing))
            record(decision, None, "rollback")
            raise NewsrecError(decision.reasons[-1])
        promote(decision, None, kind="rollback")
        return decision.champion, str(version)
    current, previous = registry.champion_version(), registry.previous_champion()
    # challenger None (recorded as NULL) when there is nothing to go back to: the registry refuses
    decision = Decision(True, previous, current, why, {**evidence, "one_step": True})  # type: ignore[arg-type]
    promote(decision, None, kind="rollback")
    return current, str(previous)


def _operator() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _last_gate(version: str) -> dict[str, Any] | None:
    gate = latest_decision(version)
    return None if gate is None else {"promoted": gate.promoted, "reasons": gate.reasons}


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
