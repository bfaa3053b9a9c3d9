"""Offline evaluation on a held-out day, next to baselines computed the same way.

Baselines use only what was known before the day: popularity = reads by users of the same
region on the previous day (ties: newer first); recency = newest first; random = seeded.
On simulator data the oracle ranks by the latent expected dwell (``sim`` schema, read here and
nowhere else in the pipelines), which gives the headroom: the share of the gap from
popularity to the oracle that the model closes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from pipelines import db
from pipelines.training.dataset import Split
from pipelines.training.metrics import ranking_metrics

NEW_USER_DAYS = 14

_REGIONAL_READS_SQL = """
SELECT u.region AS user_region, e.article_id, count(*)::float8 AS reads
FROM warehouse.events e JOIN warehouse.users u USING (user_id)
WHERE e.event_type = 'read' AND e.event_ts >= %(start)s AND e.event_ts < %(end)s
GROUP BY 1, 2
"""


def group_ids(rows: pd.DataFrame) -> np.ndarray:
    return rows.groupby(["day", "user_id"], sort=False).ngroup().to_numpy()


def baseline_scores(split: Split, seed: int = 0) -> dict[str, np.ndarray]:
    rows = split.rows
    days = sorted(set(rows["day"]))
    start, end = min(days) - timedelta(days=1), max(days)
    conn = db.connect()
    try:
        regional = db.read_frame(
            conn, _REGIONAL_READS_SQL, {"start": f"{start} 00:00:00+00", "end": f"{end} 00:00:00+00"}
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
            cur.execute("SELECT to_regclass('sim.impression_truth')")
            if cur.fetchone()[0] is None:
                return None
        truth = db.read_frame(
            conn,
            "SELECT event_id, relevance * expected_dwell AS gain FROM sim.impression_truth "
            "WHERE day = ANY(%(days)s::date[])",
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
    tiebreak = split.rows["event_id"].to_numpy()
    table: dict[str, Any] = {"overall": {}, "slices": {}, "rows": len(labels), "groups": int(gids.max() + 1)}
    for name, scores in scorers.items():
        table["overall"][name] = ranking_metrics(gids, labels, scores, tiebreak)
    for slice_name, mask in _slices(split.rows).items():
        if mask.sum() == 0:
            continue
        table["slices"][slice_name] = {
            name: ranking_metrics(gids[mask], labels[mask], scores[mask], tiebreak[mask])
            for name, scores in scorers.items()
        }
    overall = table["overall"]
    if "oracle" in overall:
        pop, orc, mod = (overall[n]["ndcg@10"] for n in ("popularity", "oracle", "model"))
        table["gap_closed"] = (mod - pop) / (orc - pop) if orc > pop else float("nan")
    return table


def render(table: dict[str, Any]) -> str:
    """A Markdown table of the overall metrics."""
    lines = ["| scorer | NDCG@10 | MAP@10 | recall@10 | AUC |", "|---|---:|---:|---:|---:|"]
    for name, m in table["overall"].items():
        lines.append(f"| {name} | {m['ndcg@10']:.4f} | {m['map@10']:.4f} | {m['recall@10']:.4f} | {m['auc']:.4f} |")
    if "gap_closed" in table:
        lines.append("")
        lines.append(f"Share of the popularity-to-oracle NDCG@10 gap closed by the model: {table['gap_closed']:.1%}")
    return "\n".join(lines)
