"""The evaluation as the field reports it: mean per-impression AUC, MRR and nDCG@5/@10.

These are the MIND benchmark's metrics (see :func:`ranking_metrics.impression_metrics`), measured
per impression (slate): the source's slate id where it logged one, else one user's impressions
at one time on one surface. The model is scored on the held-out day's rows through the one
feature-to-matrix path (:func:`evaluate.score_on_day`); the baselines score the same rows from
events strictly before the day (nothing of the day or later), over ``evaluation.history_days``:

- random: a seeded uniform score;
- popularity: the article's reads (clicks) in the earlier days;
- smoothed CTR: (clicked + a * prior) / (impressions + a) of the article's logged impressions
  in the earlier days, prior = the mean CTR of the day's articles then, a = ``ctr_prior_strength``;
- recency: newer publish time first (an article of unknown metadata has its first-seen time);
  not applicable when the data profile says the source has no publish times.

On simulated data the table also gives each scorer's NDCG@10 against the simulator's truth,
per impression; on an imported export of a simulated world (``newsrec warehouse export-mind``)
the truth comes from the ``truth.tsv`` written beside it, matched by the source's impression id
and list position (:func:`truth_from_file`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.config import params
from pipelines.core.errors import NewsrecError
from pipelines.model.dataset import Split
from pipelines.model.evaluate import oracle_scores, tiebreak
from pipelines.model.ranking_metrics import MIND_METRICS, impression_metrics, truth_ndcg
from pipelines.warehouse import profile

BASELINES = ("random", "popularity", "smoothed_ctr", "recency")


def _ts(moment: date | datetime) -> str:
    return f"{moment.isoformat()} 00:00:00+00"


def slates(conn: Any, day: date, event_ids: np.ndarray) -> np.ndarray:
    """The impression (slate) key of each of ``event_ids``, impressions of ``day``."""
    keys = db.read_frame(
        conn, queries.load("evaluate_impression_slates"), {"start": _ts(day), "end": _ts(day + timedelta(days=1))}
    )
    found = pd.Series(keys["slate"].to_numpy(), index=keys["event_id"].to_numpy()) if len(keys) else pd.Series()
    out = found.reindex(np.asarray(event_ids))
    if out.isna().any():
        raise ValueError(f"{int(out.isna().sum())} evaluated rows are not impressions of {day}")
    return out.to_numpy(dtype=object)


TRUTH_COLUMNS = ("impression_id", "position", "relevance", "expected_dwell")


def truth_from_file(conn: Any, day: date, event_ids: np.ndarray, path: Path) -> np.ndarray:
    """The true gain (relevance x expected dwell, as the simulator's own truth) of each of
    ``event_ids`` from a ``truth.tsv``, by the event's source impression id and position."""
    try:
        truth = pd.read_csv(path, sep="\t", dtype={"impression_id": str}, usecols=list(TRUTH_COLUMNS))
    except (OSError, ValueError) as exc:
        raise NewsrecError(f"{path}: not a truth.tsv of `newsrec warehouse export-mind` ({exc})") from exc
    keys = db.read_frame(
        conn, queries.load("evaluate_impression_positions"), {"start": _ts(day), "end": _ts(day + timedelta(days=1))}
    )
    keys["slate_id"] = keys["slate_id"].astype(str)  # read_frame parses the digits of the text column
    truth["gain"] = truth["relevance"] * truth["expected_dwell"]
    gains = keys.merge(
        truth[["impression_id", "position", "gain"]].drop_duplicates(["impression_id", "position"]),
        left_on=["slate_id", "position"],
        right_on=["impression_id", "position"],
        how="left",
    ).set_index("event_id")["gain"]
    out = gains.reindex(np.asarray(event_ids))
    missing = int(out.isna().sum())
    if missing:
        raise NewsrecError(
            f"{path}: {missing:,} of {len(out):,} impressions of {day} have no line in it "
            "(is it the export this warehouse was imported from?)"
        )
    return out.to_numpy(np.float64)


def article_history(conn: Any, day: date, article_ids: np.ndarray, history_days: int) -> pd.DataFrame:
    """Per article: reads, impressions and clicked impressions strictly before ``day``, publish time."""
    ids = sorted({int(a) for a in np.asarray(article_ids)})
    frame = db.read_frame(
        conn,
        queries.load("evaluate_article_history"),
        {"since": _ts(day - timedelta(days=history_days)), "before": _ts(day), "articles": ids},
    )
    return frame.set_index("article_id")


def baseline_scores(
    article_ids: np.ndarray,
    history: pd.DataFrame,
    *,
    publish_times: bool,
    prior_strength: float,
    seed: int,
) -> dict[str, np.ndarray | None]:
    """Each baseline's score per row (pure: from ``history``, known before the day); recency is
    None when publish times are unknown."""
    h = history.reindex(np.asarray(article_ids))
    reads = h["reads"].fillna(0).to_numpy(np.float64)
    shown = h["impressions"].fillna(0).to_numpy(np.float64)
    clicked = np.minimum(h["clicked"].fillna(0).to_numpy(np.float64), shown)
    total_shown = history["impressions"].sum()
    prior = float(np.minimum(history["clicked"], history["impressions"]).sum() / total_shown) if total_shown else 0.0
    return {
        "random": np.random.default_rng(seed).random(len(h)),
        "popularity": reads,
        "smoothed_ctr": (clicked + prior_strength * prior) / (shown + prior_strength),
        "recency": h["published_s"].fillna(0.0).to_numpy(np.float64) if publish_times else None,
    }


def load_baselines(conn: Any, day: date, article_ids: np.ndarray, cfg: dict[str, Any] | None = None) -> dict:
    """The baselines' scores for rows of ``day`` showing ``article_ids``, read through ``conn``."""
    cfg = params("evaluation") if cfg is None else cfg
    return baseline_scores(
        article_ids,
        article_history(conn, day, article_ids, int(cfg.get("history_days", 28))),
        publish_times=profile.load(conn).publish_times,
        prior_strength=float(cfg.get("ctr_prior_strength", 20)),
        seed=int(cfg.get("seed", 0)),
    )


def evaluate_impressions(split: Split, model_scores: np.ndarray, truth_file: Path | None = None) -> dict[str, Any]:
    """The table: the model and the four baselines x MIND's metrics, on one day's impressions;
    truth NDCG@10 from the simulator's truth, or from ``truth_file`` when given."""
    rows = split.rows
    days = sorted(set(rows["day"]))
    if len(days) != 1:
        raise ValueError(f"the per-impression evaluation takes one day, got {len(days)}")
    day = days[0]
    conn = db.connect()
    try:
        keys = slates(conn, day, rows["event_id"].to_numpy())
        scorers = {"model": np.asarray(model_scores, dtype=np.float64)}
        scorers.update(load_baselines(conn, day, rows["article_id"].to_numpy()))
        oracle = truth_from_file(conn, day, rows["event_id"].to_numpy(), truth_file) if truth_file else None
    finally:
        conn.close()
    clicks = (np.asarray(split.y) > 0).astype(np.int8)
    ties = tiebreak(rows)
    if oracle is None:
        oracle = oracle_scores(split)
    table: dict[str, Any] = {
        "day": str(day),
        "scorers": {},
        "not_applicable": [],
        "truth": str(truth_file) if truth_file else ("simulator" if oracle is not None else None),
    }
    for name, scores in scorers.items():
        if scores is None:
            table["not_applicable"].append(name)
            continue
        m = impression_metrics(keys, clicks, scores, ties)
        if oracle is not None:
            m["truth_ndcg@10"] = truth_ndcg(keys, oracle, scores, ties)
        table["scorers"][name] = m
    model = table["scorers"]["model"]
    table.update(impressions=model["impressions"], no_click=model["no_click"], all_clicked=model["all_clicked"])
    return table


def render(table: dict[str, Any]) -> str:
    """A Markdown table of the per-impression metrics, with what was skipped and why."""
    truth = any("truth_ndcg@10" in m for m in table["scorers"].values())
    head = "| scorer | AUC | MRR | nDCG@5 | nDCG@10 | impressions |" + (" truth NDCG@10 |" if truth else "")
    lines = [
        f"Per impression (the MIND benchmark's metrics) on {table['day']}:",
        "",
        head,
        "|---|---:|---:|---:|---:|---:|" + ("---:|" if truth else ""),
    ]
    for name, m in table["scorers"].items():
        cells = " | ".join(f"{m[k]:.4f}" for k in MIND_METRICS)
        extra = f" {m['truth_ndcg@10']:.4f} |" if truth else ""
        lines.append(f"| {name} | {cells} | {m['impressions']:,} |{extra}")
    for name in table["not_applicable"]:
        lines.append(f"| {name} | n/a | n/a | n/a | n/a | - |" + (" n/a |" if truth else ""))
    lines += [
        "",
        f"{table['impressions']:,} impressions with a click and a non-click; skipped: {table['no_click']:,} "
        f"without a click, {table['all_clicked']:,} with every article clicked (users without a click that "
        "day are not loaded). Baselines use only events before the day.",
    ]
    if table["not_applicable"]:
        lines.append(f"Not applicable: {', '.join(table['not_applicable'])} (the data profile has no publish times).")
    return "\n".join(lines)
