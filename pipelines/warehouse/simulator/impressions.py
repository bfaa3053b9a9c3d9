"""What readers make of the articles they are shown: the latent appeal of an article to a user
(P(worth reading), expected dwell), the impressions of a day and the reads they led to, and
their event rows (impressions first, then reads, ids in that order) with the oracle's truth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from pipelines.core.errors import NewsrecError
from pipelines.warehouse.simulator import world


@dataclass
class ShowableArticles:
    """Articles that can be shown on a day with their latent quality, sorted by publication time
    (the simulator's view; ``serving.candidates.ArticlePool`` is the recommender's)."""

    article_id: np.ndarray
    publication_id: np.ndarray
    category_idx: np.ndarray
    published_s: np.ndarray  # seconds since the epoch
    quality: np.ndarray

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> ShowableArticles:
        frame = frame.sort_values(["published_at", "article_id"], kind="stable")
        cat_index = {c: i for i, c in enumerate(world.CATEGORIES)}
        published = pd.to_datetime(frame["published_at"], utc=True)
        return cls(
            frame["article_id"].to_numpy(np.int64),
            frame["publication_id"].to_numpy(np.int64),
            frame["category"].map(cat_index).fillna(0).to_numpy(np.int64),
            ((published - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(np.float64),
            frame["quality"].to_numpy(np.float64),
        )


DWELL_SIGMA = 0.6


def appeal(
    cfg: world.SimConfig,
    users: world.Users,
    pubs: world.Publications,
    taste: np.ndarray,
    slot_user: np.ndarray,
    pub_idx: np.ndarray,
    cat: np.ndarray,
    quality: np.ndarray,
    age_s: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The latent truth of showing articles to users: P(worth reading), log-dwell mean, E[dwell]."""
    age_days = np.maximum(age_s, 0) / 86_400
    user_taste = taste[slot_user, cat]
    fav = (users.fav_pub[slot_user] == (pub_idx + 1)[:, None]) * users.fav_affinity[slot_user]
    home = pubs.frame["home_region"].to_numpy()[pub_idx]
    home_match = home == np.array(world.REGIONS)[users.region_idx[slot_user]]
    bias = world.region_category_bias(cfg)[users.region_idx[slot_user], cat]
    logit = (
        -2.3
        + 1.3 * np.log(len(world.CATEGORIES) * user_taste + 0.1)
        + 0.8 * quality
        + fav.sum(axis=1)
        + 0.4 * home_match
        + bias
        - 0.6 * age_days
    )
    relevance = 1 / (1 + np.exp(-logit))
    mu = np.log(25.0) + 1.6 * relevance + 0.15 * quality
    expected_dwell = np.exp(mu + DWELL_SIGMA**2 / 2)
    return relevance, mu, expected_dwell


@dataclass
class Shown:
    """Impressions of a day (one row each) and the reads they led to (rows of ``read_rows``)."""

    user: np.ndarray  # index into Users
    article_id: np.ndarray
    t: np.ndarray
    position: np.ndarray
    surface: np.ndarray
    relevance: np.ndarray
    expected_dwell: np.ndarray
    read_rows: np.ndarray
    read_t: np.ndarray
    dwell: np.ndarray  # per impression (used where read)
    batch_id: np.ndarray | None = None  # recommended impressions: the batch, arm and model shown
    arm: np.ndarray | None = None
    model_version: np.ndarray | None = None

    def subset(self, keep: np.ndarray) -> Shown:
        new_index = np.cumsum(keep) - 1
        read_keep = keep[self.read_rows]

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return a[keep] if a is not None else None

        return Shown(
            pick(self.user), pick(self.article_id), pick(self.t), pick(self.position), pick(self.surface),
            pick(self.relevance), pick(self.expected_dwell), new_index[self.read_rows[read_keep]],
            self.read_t[read_keep], pick(self.dwell), pick(self.batch_id), pick(self.arm), pick(self.model_version),
        )  # fmt: skip


def empty_events() -> pd.DataFrame:
    return pd.DataFrame(
        columns=["event_id", "impression_id", "user_id", "article_id", "event_type", "event_ts",
                 "position", "surface", "dwell_seconds"]
    )  # fmt: skip


def to_events(day: date, users: world.Users, parts: list[Shown]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Event rows (impressions first, then reads) with ids in that order, and the truth."""
    n_imp = sum(len(p.user) for p in parts)
    n_read = sum(len(p.read_rows) for p in parts)
    if n_imp + n_read >= world.EVENT_ID_STRIDE:
        raise NewsrecError("too many events for one day; lower --users")
    base_id = world.day_number(day) * world.EVENT_ID_STRIDE
    imp_ids = base_id + np.arange(n_imp, dtype=np.int64)
    read_ids = base_id + n_imp + np.arange(n_read, dtype=np.int64)
    offsets = np.cumsum([0] + [len(p.user) for p in parts])
    cat = np.concatenate
    read_rows = cat([p.read_rows + off for p, off in zip(parts, offsets, strict=False)])
    user = cat([p.user for p in parts])
    article = cat([p.article_id for p in parts])
    t = cat([p.t for p in parts])
    position = cat([p.position for p in parts])
    surface = cat([p.surface for p in parts])
    dwell = cat([p.dwell for p in parts])
    user_ids = users.frame["user_id"].to_numpy(np.int64)
    events = pd.DataFrame(
        {
            "event_id": np.r_[imp_ids, read_ids],
            "impression_id": pd.array(np.r_[imp_ids, imp_ids[read_rows]], dtype="Int64"),
            "user_id": np.r_[user_ids[user], user_ids[user[read_rows]]],
            "article_id": np.r_[article, article[read_rows]],
            "event_type": np.r_[np.full(n_imp, "impression"), np.full(n_read, "read")],
            "event_ts": pd.to_datetime(np.r_[t, cat([p.read_t for p in parts])], unit="s", utc=True).astype(
                "datetime64[us, UTC]"
            ),
            "position": np.r_[position, position[read_rows]].astype(np.int16),
            "surface": np.r_[surface, surface[read_rows]],
            "dwell_seconds": np.r_[np.full(n_imp, np.nan), dwell[read_rows].round(1)],
        }
    )
    if any(p.batch_id is not None for p in parts):
        for column in ("batch_id", "arm", "model_version"):
            values = cat(
                [
                    getattr(p, column) if getattr(p, column) is not None else np.full(len(p.user), None, dtype=object)
                    for p in parts
                ]
            ).astype(object)
            events[column] = np.r_[values, values[read_rows]]
        events["batch_id"] = pd.array(events["batch_id"], dtype="Int64")
    events["impression_id"] = events["impression_id"].where(events["event_type"] == "read")
    truth = pd.DataFrame(
        {
            "event_id": imp_ids,
            "day": day.isoformat(),
            "relevance": cat([p.relevance for p in parts]).astype(np.float32),
            "expected_dwell": cat([p.expected_dwell for p in parts]).astype(np.float32),
        }
    )
    return events, truth
