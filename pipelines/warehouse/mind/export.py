"""``export_mind``: write the warehouse (a simulated world) in the MIND format, truth beside it.

MIND's shape: ``behaviors.tsv`` has one line per impression (a slate shown to a user at one
time) with the user's history (clicks before the logged period) and the slate's articles
flagged clicked (-1) or not (-0), in display order; ``news.tsv`` has one line per article.
So the first ``history_days`` days of the world become history only (each user's distinct
reads then, oldest first, the same on every line of the user, as in MIND) and the later days
become impression lines. The simulator logs no slate id: its slates are recovered as the
impressions of one user at one time on one surface (a session shows its slate at once).
No dwell is written (MIND has none).

``drop_articles`` removes that share of the articles from ``news.tsv`` (a seeded choice), as
real exports are incomplete. ``truth.tsv`` keeps what the simulator knows per impression
line and position: the latent relevance (probability of finding the article worth reading,
no position effect) and the expected dwell.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.errors import NewsrecError
from pipelines.warehouse.mind.parse import TIME_FORMAT


@dataclass
class MindExport:
    directory: Path
    articles: int  # lines of news.tsv
    dropped_articles: int
    impression_lines: int  # lines of behaviors.tsv
    impressions: int
    clicks: int
    history_entries: int
    first_day: date | None = None
    last_day: date | None = None

    def render(self) -> str:
        return (
            f"exported MIND to {self.directory}: {self.articles:,} articles in news.tsv "
            f"({self.dropped_articles:,} dropped), {self.impression_lines:,} impression lines "
            f"({self.impressions:,} impressions, {self.clicks:,} clicks, {self.first_day} .. {self.last_day}), "
            f"{self.history_entries:,} history entries; truth in truth.tsv"
        )


_NEWS_TYPES = {
    "article_id": "int64",
    **dict.fromkeys(["category", "subcategory", "title", "abstract", "url"], "string"),
}
_IMP_TYPES = {"event_id": "int64", "user_id": "int64", "article_id": "int64", "event_ts": "timestamp",
              "position": "int64", "surface": "string", "slate_id": "string", "clicked": "int64",
              "relevance": "float64", "expected_dwell": "float64"}  # fmt: skip
_HIST_TYPES = {"user_id": "int64", "article_id": "int64", "first_read": "timestamp"}


def _types(spec: dict[str, str]) -> dict:
    import pyarrow as pa

    known = {
        "int64": pa.int64(),
        "float64": pa.float64(),
        "string": pa.string(),
        "timestamp": pa.timestamp("us", "UTC"),
    }
    return {column: known[kind] for column, kind in spec.items()}


def _clean(text: pd.Series) -> pd.Series:
    """MIND fields cannot hold tabs or line breaks."""
    return text.fillna("").astype(str).str.replace(r"[\t\r\n]+", " ", regex=True)


def _slates(imps: pd.DataFrame) -> pd.DataFrame:
    """Number the slates 1..n in time order and sort each slate's articles by position."""
    own = imps["slate_id"].notna()
    key = (
        imps["slate_id"]
        .astype(object)
        .where(
            own, imps["user_id"].astype(str) + "|" + imps["event_ts"].astype(str) + "|" + imps["surface"].astype(str)
        )
    )
    imps = imps.assign(slate_key=key)
    first = imps.groupby("slate_key")["event_ts"].transform("min")
    imps = imps.assign(slate_ts=first).sort_values(
        ["slate_ts", "user_id", "slate_key", "position", "event_id"], kind="stable"
    )
    imps["impression_id"] = (imps["slate_key"] != imps["slate_key"].shift()).cumsum().astype(np.int64)
    imps["rank"] = imps.groupby("impression_id").cumcount()
    return imps


def export_mind(directory: Path, drop_articles: float = 0.0, seed: int = 0, history_days: int = 1) -> MindExport:
    """Write news.tsv, behaviors.tsv and truth.tsv of the warehouse into ``directory``."""
    if not 0.0 <= drop_articles < 1.0:
        raise NewsrecError("--drop-articles must be in [0, 1)")
    if history_days < 0:
        raise NewsrecError("--history-days must be 0 or more")
    directory = Path(directory)
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(queries.load("mind_export_days"))
            first, last = cur.fetchone()
        if first is None:
            raise NewsrecError("the warehouse has no events to export (run `newsrec warehouse seed` first)")
        start_day = first + timedelta(days=history_days)
        if start_day > last:
            raise NewsrecError(f"no days left after {history_days} day(s) of history ({first} .. {last})")
        start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=UTC)
        news = db.read_frame(conn, queries.load("mind_export_news"), types=_types(_NEWS_TYPES))
        imps = db.read_frame(conn, queries.load("mind_export_impressions"), {"start": start}, _types(_IMP_TYPES))
        hist = db.read_frame(conn, queries.load("mind_export_history"), {"start": start}, _types(_HIST_TYPES))
    finally:
        conn.close()

    rng = np.random.default_rng(seed)
    n_drop = int(round(drop_articles * len(news)))
    dropped = rng.choice(news["article_id"].to_numpy(np.int64), size=n_drop, replace=False)
    kept = news[~news["article_id"].isin(dropped)]
    directory.mkdir(parents=True, exist_ok=True)
    lines = pd.DataFrame(
        {
            "id": "N" + kept["article_id"].astype(str),
            "category": _clean(kept["category"]),
            "subcategory": _clean(kept["subcategory"]),
            "title": _clean(kept["title"]),
            "abstract": _clean(kept["abstract"]),
            "url": _clean(kept["url"]),
            "title_entities": "[]",
            "abstract_entities": "[]",
        }
    )
    _write_tsv(lines, directory / "news.tsv")

    imps = _slates(imps)
    imps["token"] = "N" + imps["article_id"].astype(str) + np.where(imps["clicked"].astype(bool), "-1", "-0")
    slates = imps.groupby("impression_id", sort=True).agg(
        user_id=("user_id", "first"), event_ts=("slate_ts", "first"), tokens=("token", " ".join)
    )
    hist["token"] = "N" + hist["article_id"].astype(str)
    history = hist.groupby("user_id", sort=False)["token"].agg(" ".join)
    behaviors = pd.DataFrame(
        {
            "impression_id": slates.index.astype(str),
            "user": "U" + slates["user_id"].astype(str),
            "time": pd.to_datetime(slates["event_ts"], utc=True).dt.strftime(TIME_FORMAT),
            "history": slates["user_id"].map(history).fillna(""),
            "impressions": slates["tokens"],
        }
    )
    _write_tsv(behaviors, directory / "behaviors.tsv")
    truth = pd.DataFrame(
        {
            "impression_id": imps["impression_id"],
            "position": imps["rank"],
            "news_id": "N" + imps["article_id"].astype(str),
            "clicked": imps["clicked"].astype(int),
            "relevance": imps["relevance"].round(6),
            "expected_dwell": imps["expected_dwell"].round(3),
        }
    )
    truth.to_csv(directory / "truth.tsv", sep="\t", index=False)
    exported_users = set(slates["user_id"])
    return MindExport(
        directory=directory,
        articles=len(kept),
        dropped_articles=n_drop,
        impression_lines=len(slates),
        impressions=len(imps),
        clicks=int(imps["clicked"].astype(bool).sum()),
        history_entries=int(hist["user_id"].isin(exported_users).sum()),
        first_day=start_day,
        last_day=last,
    )


def _write_tsv(frame: pd.DataFrame, path: Path) -> None:
    """No header, no quoting: MIND's files are plain tab-separated lines."""
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in frame.itertuples(index=False):
            fh.write("\t".join(row) + "\n")
