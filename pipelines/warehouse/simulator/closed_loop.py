"""The closed loop: sessions that show the lists the serving tables published the night before
(a user's personal list, else the region's fallback list, else the global one) instead of the
old policy's slate, read with the same examination and latent truth as organic sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.warehouse.simulator import impressions, world

REC_SURFACE = "recs"  # surface of impressions (and their reads) that showed a published list


@dataclass
class LiveLists:
    """A published batch as the simulated readers see it (personal lists, regional fallbacks)."""

    batch_id: int
    lists: pd.DataFrame  # user_id, rank, article_id, arm, model_version
    fallback: pd.DataFrame  # region, rank, article_id
    articles: pd.DataFrame  # article_id, publication_id, category_idx, published_s, quality


@dataclass
class Recommended:
    session: np.ndarray  # sessions that showed a list
    shown: impressions.Shown


def recommended_impressions(
    cfg: world.SimConfig,
    day: date,
    users: world.Users,
    pubs: world.Publications,
    taste: np.ndarray,
    live: LiveLists,
    sess_user: np.ndarray,
    sess_t: np.ndarray,
    rec_session: np.ndarray,
    rng: np.random.Generator,
) -> Recommended | None:
    """Impressions of the sessions that show the user's list (or the region's fallback list),
    at their ranks, examined with the same position bias, read as the latent truth says."""
    user_ids = users.frame["user_id"].to_numpy(np.int64)
    pos_of = pd.Series(np.arange(len(user_ids)), index=user_ids)
    lists = live.lists[live.lists["user_id"].isin(pos_of.index)]
    lists = lists.assign(user=pos_of.loc[lists["user_id"]].to_numpy())
    has_list = np.zeros(len(user_ids), dtype=bool)
    has_list[lists["user"].to_numpy()] = True
    sessions = np.flatnonzero(rec_session)
    if not len(sessions):
        return None
    frame = pd.DataFrame({"session": sessions, "user": sess_user[sessions]})
    personal = frame[has_list[frame["user"].to_numpy()]].merge(lists.drop(columns="user_id"), on="user")
    others = frame[~has_list[frame["user"].to_numpy()]]
    others = others.assign(region=np.array(world.REGIONS)[users.region_idx[others["user"].to_numpy()]])
    regional = others.merge(live.fallback, on="region")
    missing = others[~others["session"].isin(regional["session"])]
    global_list = live.fallback[live.fallback["region"] == "GLOBAL"].drop(columns="region")
    global_ = missing.drop(columns="region").merge(global_list, how="cross")
    fallback = pd.concat([regional.drop(columns="region"), global_], ignore_index=True)
    fallback = fallback.assign(arm=None, model_version=None)
    shown = pd.concat([personal, fallback], ignore_index=True)
    shown = shown.merge(live.articles, on="article_id")  # unknown articles cannot be shown
    shown["t"] = sess_t[shown["session"].to_numpy()]
    shown = shown[shown["published_s"] <= shown["t"]]
    if shown.empty:
        return None
    shown = shown.sort_values(["session", "rank"], kind="stable").reset_index(drop=True)
    user = shown["user"].to_numpy(np.int64)
    pub_idx = shown["publication_id"].to_numpy(np.int64) - 1
    quality = shown["quality"].to_numpy(np.float64)
    relevance, mu, expected_dwell = impressions.appeal(
        cfg, users, pubs, taste, user, pub_idx, shown["category_idx"].to_numpy(np.int64), quality,
        shown["t"].to_numpy() - shown["published_s"].to_numpy(),
    )  # fmt: skip
    position = shown["rank"].to_numpy(np.int64) - 1
    examine = (1.0 / (position + 1.0)) ** cfg.position_bias
    clicked = rng.random(len(shown)) < relevance * examine
    dwell = np.clip(rng.lognormal(mu, impressions.DWELL_SIGMA), 1, 1800)
    read_rows = np.flatnonzero(clicked)
    day_end = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() + 86_399
    t = shown["t"].to_numpy(np.float64)
    read_t = np.minimum(t[read_rows] + rng.uniform(3, 120, size=len(read_rows)), day_end)
    n = len(shown)
    return Recommended(
        shown["session"].unique(),
        impressions.Shown(
            user=user,
            article_id=shown["article_id"].to_numpy(np.int64),
            t=t,
            position=position,
            surface=np.full(n, REC_SURFACE, dtype=object),
            relevance=relevance,
            expected_dwell=expected_dwell,
            read_rows=read_rows,
            read_t=read_t,
            dwell=dwell,
            batch_id=np.full(n, live.batch_id, dtype=object),
            arm=shown["arm"].to_numpy(object),
            model_version=shown["model_version"].to_numpy(object),
        ),
    )


def shown_batch(conn: Any, day: date) -> int | None:
    """The batch whose lists readers see on ``day``: the live one when it was published for an
    earlier date (the nightly case: D-1's batch while D is simulated), else the newest complete
    batch of an earlier date (re-running a past day shows what was live then, if still kept)."""
    with conn.cursor() as cur:
        cur.execute(queries.load("sim_shown_batch"), {"day": day})
        batch_id = cur.fetchone()[0]
    return int(batch_id) if batch_id is not None else None


def load_live_lists(conn: Any, day: date) -> LiveLists | None:
    """The published lists shown on ``day`` with what the simulator needs of their articles."""
    import pyarrow as pa

    batch_id = shown_batch(conn, day)
    if batch_id is None:
        return None
    batch = {"batch_id": batch_id}
    lists = db.read_frame(
        conn, queries.load("sim_live_lists"), batch, {"arm": pa.string(), "model_version": pa.string()}
    )
    fallback = db.read_frame(conn, queries.load("sim_live_fallback"), batch)
    articles = db.read_frame(conn, queries.load("sim_live_articles"), batch)
    if lists.empty and fallback.empty:
        return None
    if lists.empty:
        lists = pd.DataFrame(columns=["user_id", "rank", "article_id", "arm", "model_version"])
    fallback = fallback if not fallback.empty else pd.DataFrame(columns=["region", "rank", "article_id"])
    for frame in (lists, fallback):
        for column in ("rank", "article_id"):
            frame[column] = frame[column].astype(np.int64)
    lists["user_id"] = lists["user_id"].astype(np.int64)
    for column in ("arm", "model_version"):
        lists[column] = lists[column].astype(object).where(lists[column].notna(), None)
    pool = impressions.ShowableArticles.from_frame(articles) if not articles.empty else None
    table = pd.DataFrame(
        {
            "article_id": pool.article_id if pool else np.array([], np.int64),
            "publication_id": pool.publication_id if pool else np.array([], np.int64),
            "category_idx": pool.category_idx if pool else np.array([], np.int64),
            "published_s": pool.published_s if pool else np.array([], np.float64),
            "quality": pool.quality if pool else np.array([], np.float64),
        }
    )
    return LiveLists(batch_id, lists, fallback, table)
