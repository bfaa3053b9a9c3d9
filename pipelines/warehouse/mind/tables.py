"""Warehouse rows (articles, users, events) from parsed MIND frames (no database).

MIND has no publishers, regions, publish times or dwell, so the rows fill them in ways that
keep the warehouse's contracts: one publication for the whole set, a region from a stable
hash of the user id, an article's publish time = the first time anybody saw or read it, and
reads with no dwell (NULL). A click becomes a read one second after its impression, pointing
at it; history clicks become reads one day before the user's first impression, with no
impression (so they count as reads, never as the numerator of a click-through rate).

Articles that behaviors.tsv names but news.tsv lacks are kept as rows with unknown metadata
(``metadata_known`` false, category and subcategory ``unknown``, the unknown publication):
their events count in behaviour features, and they are never candidates for recommendation.
"""

from __future__ import annotations

import zlib
from datetime import timedelta

import pandas as pd

from pipelines.warehouse.simulator import EVENT_ID_STRIDE, REGIONS, day_number
from pipelines.warehouse.unknown_articles import UNKNOWN_CATEGORY, UNKNOWN_PUBLICATION_ID

MIND_PUBLICATION_ID = 900_000
ARTICLE_COLUMNS = ["article_id", "publication_id", "category", "subcategory", "title", "abstract", "url",
                   "language", "published_at", "external_id", "metadata_known"]  # fmt: skip
USER_COLUMNS = ["user_id", "region", "signup_date", "plan", "declared_interests", "external_id"]
EVENT_COLUMNS = ["event_id", "impression_id", "user_id", "article_id", "event_type", "event_ts",
                 "position", "surface", "dwell_seconds", "slate_id"]  # fmt: skip


def _region(external_id: str) -> str:
    return REGIONS[zlib.crc32(external_id.encode()) % len(REGIONS)]


def _events(imps: pd.DataFrame, hist: pd.DataFrame, first_seen: pd.Series) -> pd.DataFrame:
    clicked = imps["clicked"].to_numpy(bool)
    hist_ts = hist["user_id"].map(first_seen) - timedelta(days=1)
    slate = imps["mind_impression"].astype("int64").astype(str)
    events = pd.concat(
        [
            pd.DataFrame(
                {
                    "kind": "impression",
                    "user_id": imps["user_id"],
                    "article_id": imps["article_id"],
                    "event_ts": imps["event_ts"],
                    "position": imps["position"],
                    "key": range(len(imps)),
                    "slate_id": slate,
                }
            ),
            pd.DataFrame(
                {
                    "kind": "read",
                    "user_id": imps.loc[clicked, "user_id"],
                    "article_id": imps.loc[clicked, "article_id"],
                    "event_ts": imps.loc[clicked, "event_ts"] + timedelta(seconds=1),
                    "position": imps.loc[clicked, "position"],
                    "key": pd.Series(range(len(imps)))[clicked].to_numpy(),
                    "slate_id": slate[clicked],
                }
            ),
            pd.DataFrame(
                {
                    "kind": "history",
                    "user_id": hist["user_id"],
                    "article_id": hist["article_id"],
                    "event_ts": hist_ts,
                    "position": pd.NA,
                    "key": -1,
                    "slate_id": None,
                }
            ),
        ],
        ignore_index=True,
    )
    events["event_ts"] = pd.to_datetime(events["event_ts"], utc=True)
    events["day"] = events["event_ts"].dt.date
    events = events.sort_values(["day", "kind", "key", "user_id", "article_id"], kind="stable")
    events["event_id"] = events["day"].map(day_number).astype("int64") * EVENT_ID_STRIDE + (
        events.groupby("day").cumcount().astype("int64")
    )
    imp_event_ids = events.loc[events["kind"] == "impression"].set_index("key")["event_id"]
    is_read = events["kind"] == "read"
    events["impression_id"] = pd.array([pd.NA] * len(events), dtype="Int64")
    events.loc[is_read, "impression_id"] = events.loc[is_read, "key"].map(imp_event_ids).to_numpy()
    events["event_type"] = events["kind"].map({"impression": "impression", "read": "read", "history": "read"})
    events["surface"] = events["kind"].map({"impression": "mind", "read": "mind", "history": "mind-history"})
    events["dwell_seconds"] = float("nan")
    events["position"] = events["position"].astype("Int16")
    events["event_ts"] = events["event_ts"].astype("datetime64[us, UTC]")
    return events


def _articles(news: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    seen = events.groupby("article_id")["event_ts"].min()
    default_ts = events["event_ts"].min() if len(events) else pd.Timestamp("2019-11-01", tz="UTC")
    known = news.copy()
    known["publication_id"] = MIND_PUBLICATION_ID
    known["language"] = "en"
    known["metadata_known"] = True
    missing = seen.index.difference(pd.Index(news["article_id"]))
    unknown = pd.DataFrame(
        {
            "article_id": missing.to_numpy("int64"),
            "external_id": [f"N{a}" for a in missing],
            "category": UNKNOWN_CATEGORY,
            "subcategory": UNKNOWN_CATEGORY,
            "title": "",
            "abstract": "",
            "url": "",
            "publication_id": UNKNOWN_PUBLICATION_ID,
            "language": "und",
            "metadata_known": False,
        }
    )
    articles = pd.concat([known, unknown], ignore_index=True) if len(unknown) else known
    articles["published_at"] = articles["article_id"].map(seen).fillna(default_ts)
    articles["published_at"] = pd.to_datetime(articles["published_at"], utc=True).astype("datetime64[us, UTC]")
    return articles[ARTICLE_COLUMNS]


def build_tables(
    news: pd.DataFrame, imps: pd.DataFrame, hist: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Warehouse rows (articles, users, events with their ``day``) from parsed MIND frames."""
    first_seen = imps.groupby("user_id")["event_ts"].min()
    external = pd.concat([imps[["user_id", "external_id"]], hist[["user_id", "external_id"]]])
    external = external.drop_duplicates("user_id").set_index("user_id")["external_id"]
    # Users who only have history (no impressions) never appear: MIND always has impressions.
    hist = hist[hist["user_id"].isin(first_seen.index)].drop_duplicates(["user_id", "article_id"])
    events = _events(imps, hist, first_seen)
    articles = _articles(news, events)

    users = pd.DataFrame({"user_id": first_seen.index.astype("int64")})
    users["external_id"] = users["user_id"].map(external)
    users["region"] = users["external_id"].map(_region)
    users["signup_date"] = (first_seen - pd.Timedelta(days=1)).dt.date.to_numpy()
    users["plan"] = "paid"
    users["declared_interests"] = "{}"
    return articles, users[USER_COLUMNS], events[EVENT_COLUMNS + ["day"]]
