"""Offline evaluation on a held-out day, next to baselines computed the same way.

Baselines use only what was known before the day: popularity = reads by users of the same
region on the previous day (ties: newer first); recency = newest first; random = seeded.
On simulator data the oracle ranks by the latent expected dwell (``sim`` schema, read here and
nowhere else in the pipelines), which gives the headroom: the share of the gap from
popularity to the oracle that the model closes.

Logged labels are themselves position-biased (readers read what is on top), so on the
simulator every scorer is also measured against the truth: NDCG@10 whose gain is the latent
expected dwell of an impression if examined (relevance x expected dwell). The oracle scores
1.0 there by construction, and the truth gap closed is (model - popularity) / (1 - popularity).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.config import params
from pipelines.features.matrix import to_matrix
from pipelines.model import dataset
from pipelines.model.dataset import Split, tie_order
from pipelines.model.ranking_metrics import GroupedRanking, ranking_metrics, truth_ranking

if TYPE_CHECKING:
    from pipelines.model.registry import LoadedModel

NEW_USER_DAYS = 14


def group_ids(rows: pd.DataFrame) -> np.ndarray:
    return rows.groupby(["day", "user_id"], sort=False).ngroup().to_numpy()


def tiebreak(rows: pd.DataFrame) -> np.ndarray:
    """Ties in scores are broken in a fixed order that is not the logged slate order."""
    return tie_order(rows["event_id"].to_numpy())


def score_on_day(
    model: LoadedModel,
    day: date | None = None,
    *,
    split: Split | None = None,
    max_groups: int | None = None,
    sample_seed: int = 0,
) -> tuple[Split, np.ndarray]:
    """A registered model's scores on held-out day ``day`` (or on a ``split`` already loaded):
    the one way the gate, the retrain checker, training and ``newsrec evaluate`` score a model.
    Sampling (``max_groups``, ``sample_seed``) stays the caller's choice."""
    if split is None:
        if day is None:
            raise ValueError("score_on_day needs a day or a split")
        split, _ = dataset.load_split(day, day, model.spec, max_groups=max_groups, seed=sample_seed)
    return split, np.asarray(model.predict(to_matrix(split.rows, model.spec)))


def held_out_sample() -> dict[str, Any]:
    """The sample rule of a held-out day, as training's test split draws it
    (:func:`pipelines.model.dataset.load_splits`: ``max_eval_groups`` lists, seeded with
    ``training.seed``): a metric measured later on another day (the retrain checker's decay,
    the gate of an experiment's winner) is then comparable with the one registered."""
    cfg = params("training")
    return {"max_groups": cfg.get("max_eval_groups"), "sample_seed": int(cfg.get("seed", 13))}


def ndcg_at_10(split: Split, scores: np.ndarray) -> float:
    """NDCG@10 of ``scores`` on ``split``'s logged labels (ties broken as in every evaluation)."""
    return ranking_metrics(group_ids(split.rows), split.y, scores, tiebreak(split.rows))["ndcg@10"]


def baseline_scores(split: Split, seed: int = 0) -> dict[str, np.ndarray]:
    rows = split.rows
    days = sorted(set(rows["day"]))
    start, end = min(days) - timedelta(days=1), max(days)
    conn = db.connect()
    try:
        regional = db.read_frame(
            conn,
            queries.load("evaluate_regional_reads"),
            {"start": f"{start} 00:00:00+00", "end": f"{end} 00:00:00+00"},
        )
    finally:
        conn.close()
    recency = pd.to_numeric(rows["article_published_ts"], errors="coerce").fillna(0).to_numpy(np.float64)
    if regional.empty:
        popular = np.zeros(len(rows))
    else:
        popular = (
            rows[["user_region", "article_id"]]
            .merge(regional, on=["user_region", "article_id"], how="left")["reads"]
            .fillna(0)
            .to_numpy()
        )
    scale = max(recency.max() - recency.min(), 1.0)
    return {
        "popularity": popular + 0.5 * (recency - recency.min()) / scale,  # ties: newer first
        "recency": recency,
        "random": np.random.default_rng(seed).random(len(rows)),
    }


def oracle_scores(split: Split) -> np.ndarray | None:
    """Expected dwell from the simulator's truth, or None on non-simulated data."""
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(queries.load("evaluate_sim_truth_exists"))
            if cur.fetchone()[0] is None:
                return None
        truth = db.read_frame(
            conn,
            queries.load("evaluate_sim_truth_gains"),
            {"days": sorted({str(d) for d in split.rows["day"]})},
        )
    finally:
        conn.close()
    if truth.empty:
        return None
    gain = split.rows[["event_id"]].merge(truth, on="event_id", how="left")["gain"]
    if gain.isna().any():
        return None
    return gain.to_numpy(np.float64)


def _slices(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    tenure = pd.to_numeric(rows["user_tenure_days"], errors="coerce").fillna(0).to_numpy()
    out = {f"region={r}": (rows["user_region"] == r).to_numpy() for r in sorted(rows["user_region"].dropna().unique())}
    out["users=new"] = tenure <= NEW_USER_DAYS
    out["users=returning"] = tenure > NEW_USER_DAYS
    return out


def evaluate(split: Split, model_scores: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Metrics of the model, the baselines and (on simulated data) the oracle, overall and by slice."""
    scorers: dict[str, np.ndarray] = {"model": np.asarray(model_scores, dtype=np.float64)}
    scorers.update(baseline_scores(split, seed))
    oracle = oracle_scores(split)
    if oracle is not None:
        scorers["oracle"] = oracle
    gids = group_ids(split.rows)
    labels = split.y
    ties = tiebreak(split.rows)
    table: dict[str, Any] = {"overall": {}, "slices": {}, "rows": len(labels), "groups": int(gids.max() + 1)}
    ranking = GroupedRanking(gids, labels, ties)
    for name, scores in scorers.items():
        table["overall"][name] = ranking.metrics(scores)
    for slice_name, mask in _slices(split.rows).items():
        if mask.sum() == 0:
            continue
        in_slice = GroupedRanking(gids[mask], labels[mask], ties[mask])
        table["slices"][slice_name] = {name: in_slice.metrics(scores[mask]) for name, scores in scorers.items()}
    overall = table["overall"]
    if "oracle" in overall:
        table["gap_closed"] = gap_closed({name: m["ndcg@10"] for name, m in overall.items()})
        truth = truth_ranking(gids, oracle, ties)
        table["truth"] = {name: truth.ndcg(scores) for name, scores in scorers.items()}
        table["truth_gap_closed"] = gap_closed(table["truth"])
    return table


def gap_closed(ndcg: dict[str, float], model: str = "model") -> float:
    """The share of the popularity-to-oracle NDCG@10 gap that ``model`` closes."""
    pop, orc = ndcg["popularity"], ndcg["oracle"]
    return (ndcg[model] - pop) / (orc - pop) if orc > pop else float("nan")


def render(table: dict[str, Any]) -> str:
    """A Markdown table of the overall metrics."""
    lines = ["| scorer | NDCG@10 | MAP@10 | recall@10 | AUC |", "|---|---:|---:|---:|---:|"]
    for name, m in table["overall"].items():
        lines.append(f"| {name} | {m['ndcg@10']:.4f} | {m['map@10']:.4f} | {m['recall@10']:.4f} | {m['auc']:.4f} |")
    if "gap_closed" in table:
        lines.append("")
        lines.append(f"Share of the popularity-to-oracle NDCG@10 gap closed by the model: {table['gap_closed']:.1%}")
    if "truth" in table:
        truth = ", ".join(f"{name} {value:.4f}" for name, value in table["truth"].items())
        lines.append(
            f"NDCG@10 against the simulator's truth: {truth}; gap closed by the model: {table['truth_gap_closed']:.1%}"
        )
    return "\n".join(lines)
