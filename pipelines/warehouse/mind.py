"""Import the public MIND news-recommendation data set (news.tsv + behaviors.tsv).

MIND has no publishers, regions, publish times or dwell, so the import fills them in ways
that keep the warehouse's contracts: one publication for the whole set, a region from a
stable hash of the user id, an article's publish time = the first time anybody saw or read
it, and reads with no dwell (NULL). History clicks become reads one day before the user's
first impression. Impressions of articles missing from news.tsv are skipped and counted.

Everything loads in one transaction: a malformed line aborts the import with its file and
line number and leaves the warehouse untouched. Re-importing replaces the days covered.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
from psycopg2 import sql

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.errors import DataError
from pipelines.warehouse.migrations import migrate
from pipelines.warehouse.simulator import EVENT_ID_STRIDE, REGIONS, day_number

MIND_PUBLICATION_ID = 900_000
_NEWS_ID = re.compile(r"^N(\d+)$")
_USER_ID = re.compile(r"^U(\d+)$")
_IMPRESSION = re.compile(r"^N(\d+)-([01])$")
_TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"


@dataclass
class MindImport:
    articles: int = 0
    users: int = 0
    impressions: int = 0
    reads: int = 0
    history_reads: int = 0
    skipped_unknown_articles: int = 0
    days: list[date] = field(default_factory=list)

    def render(self) -> str:
        span = f"{self.days[0]} .. {self.days[-1]}" if self.days else "no days"
        return (
            f"imported MIND: {self.articles:,} articles, {self.users:,} users, "
            f"{self.impressions:,} impressions, {self.reads:,} clicks, "
            f"{self.history_reads:,} history reads ({span}); "
            f"skipped {self.skipped_unknown_articles:,} references to articles missing from news.tsv"
        )


def _lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    try:
        fh = path.open(encoding="utf-8", newline="")
    except FileNotFoundError:
        raise DataError(f"{path} not found") from None
    with fh:
        try:
            for lineno, line in enumerate(fh, start=1):
                line = line.rstrip("\r\n")
                if line.strip():
                    yield lineno, line.split("\t")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None


def parse_news(path: Path) -> pd.DataFrame:
    rows = []
    for lineno, parts in _lines(path):
        if len(parts) < 6:
            raise DataError(f"{path}:{lineno}: expected at least 6 tab-separated fields, got {len(parts)}")
        match = _NEWS_ID.match(parts[0])
        if not match:
            raise DataError(f"{path}:{lineno}: bad news id {parts[0][:40]!r} (expected N<digits>)")
        if not parts[1]:
            raise DataError(f"{path}:{lineno}: empty category")
        rows.append((int(match.group(1)), parts[0], parts[1], parts[2] or parts[1], parts[3], parts[4], parts[5]))
    frame = pd.DataFrame(
        rows, columns=["article_id", "external_id", "category", "subcategory", "title", "abstract", "url"]
    )
    dup = frame["article_id"].duplicated()
    if dup.any():
        raise DataError(f"{path}: news id {frame.loc[dup, 'external_id'].iloc[0]} appears twice")
    return frame


def parse_behaviors(path: Path, known_articles: set[int]) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(impressions, history, skipped) from behaviors.tsv; validates every line."""
    imps: list[tuple] = []
    history: list[tuple] = []
    skipped = 0
    for lineno, parts in _lines(path):
        if len(parts) != 5:
            raise DataError(f"{path}:{lineno}: expected 5 tab-separated fields, got {len(parts)}")
        imp_id, user, when, hist, shown = parts
        if not imp_id.isdigit():
            raise DataError(f"{path}:{lineno}: bad impression id {imp_id[:40]!r}")
        umatch = _USER_ID.match(user)
        if not umatch:
            raise DataError(f"{path}:{lineno}: bad user id {user[:40]!r} (expected U<digits>)")
        try:
            ts = datetime.strptime(when.strip(), _TIME_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise DataError(f"{path}:{lineno}: bad time {when[:40]!r} (expected {_TIME_FORMAT})") from None
        user_id = int(umatch.group(1))
        for token in hist.split():
            match = _NEWS_ID.match(token)
            if not match:
                raise DataError(f"{path}:{lineno}: bad history entry {token[:40]!r}")
            article = int(match.group(1))
            if article in known_articles:
                history.append((user_id, article, user))
            else:
                skipped += 1
        tokens = shown.split()
        if not tokens:
            raise DataError(f"{path}:{lineno}: no impressions")
        for position, token in enumerate(tokens):
            match = _IMPRESSION.match(token)
            if not match:
                raise DataError(f"{path}:{lineno}: bad impression {token[:40]!r} (expected N<digits>-0 or -1)")
            article = int(match.group(1))
            if article not in known_articles:
                skipped += 1
                continue
            imps.append((int(imp_id), user_id, user, article, ts, position, match.group(2) == "1"))
    imp_frame = pd.DataFrame(
        imps,
        columns=[
            "mind_impression",
            "user_id",
            "external_id",
            "article_id",
            "event_ts",
            "position",
            "clicked",
        ],
    )
    hist_frame = pd.DataFrame(history, columns=["user_id", "article_id", "external_id"])
    return imp_frame, hist_frame, skipped


def _region(external_id: str) -> str:
    return REGIONS[zlib.crc32(external_id.encode()) % len(REGIONS)]


def build_tables(
    news: pd.DataFrame, imps: pd.DataFrame, hist: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Warehouse rows (articles, users, events) from parsed MIND frames."""
    first_seen = imps.groupby("user_id")["event_ts"].min()
    external = pd.concat([imps[["user_id", "external_id"]], hist[["user_id", "external_id"]]])
    external = external.drop_duplicates("user_id").set_index("user_id")["external_id"]
    # Users who only have history (no impressions) never appear: MIND always has impressions.
    hist = hist[hist["user_id"].isin(first_seen.index)].drop_duplicates(["user_id", "article_id"])
    hist_ts = hist["user_id"].map(first_seen) - timedelta(days=1)

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
                }
            ),
            pd.DataFrame(
                {
                    "kind": "read",
                    "user_id": imps.loc[imps["clicked"], "user_id"],
                    "article_id": imps.loc[imps["clicked"], "article_id"],
                    "event_ts": imps.loc[imps["clicked"], "event_ts"] + timedelta(seconds=1),
                    "position": imps.loc[imps["clicked"], "position"],
                    "key": pd.Series(range(len(imps)))[imps["clicked"].to_numpy()].to_numpy(),
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

    seen = events.groupby("article_id")["event_ts"].min()
    default_ts = events["event_ts"].min() if len(events) else pd.Timestamp("2019-11-01", tz="UTC")
    articles = news.copy()
    articles["publication_id"] = MIND_PUBLICATION_ID
    articles["language"] = "en"
    articles["published_at"] = articles["article_id"].map(seen).fillna(default_ts)
    articles["published_at"] = pd.to_datetime(articles["published_at"], utc=True).astype("datetime64[us, UTC]")

    users = pd.DataFrame({"user_id": first_seen.index.astype("int64")})
    users["external_id"] = users["user_id"].map(external)
    users["region"] = users["external_id"].map(_region)
    users["signup_date"] = (first_seen - pd.Timedelta(days=1)).dt.date.to_numpy()
    users["plan"] = "paid"
    users["declared_interests"] = "{}"

    event_cols = ["event_id", "impression_id", "user_id", "article_id", "event_type", "event_ts",
                  "position", "surface", "dwell_seconds"]  # fmt: skip
    return articles, users, events[event_cols + ["day"]]


def import_mind(directory: Path) -> MindImport:
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory} is not a folder with news.tsv and behaviors.tsv")
    news = parse_news(directory / "news.tsv")
    imps, hist, skipped = parse_behaviors(directory / "behaviors.tsv", set(news["article_id"]))
    articles, users, events = build_tables(news, imps, hist)
    days = sorted(set(events["day"]))

    migrate()
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("mind_insert_publication"), (MIND_PUBLICATION_ID,))
        _upsert(cur, "warehouse.articles", "article_id", articles[
            ["article_id", "publication_id", "category", "subcategory", "title", "abstract", "url",
             "language", "published_at", "external_id"]
        ])  # fmt: skip
        _upsert(cur, "warehouse.users", "user_id", users[
            ["user_id", "region", "signup_date", "plan", "declared_interests", "external_id"]
        ])  # fmt: skip
        for day in days:
            cur.execute(queries.load("mind_ensure_events_partition"), (day,))
            # inline: the partition's name is known only at run time (composed as an identifier)
            cur.execute(sql.SQL("TRUNCATE warehouse.{}").format(sql.Identifier(cur.fetchone()[0])))
        db.copy_frame(cur, "warehouse.events", events.drop(columns=["day"]))
    n_reads = int((events["event_type"] == "read").sum())
    n_hist = int((events["surface"] == "mind-history").sum())
    return MindImport(
        articles=len(articles),
        users=len(users),
        impressions=int((events["event_type"] == "impression").sum()),
        reads=n_reads - n_hist,
        history_reads=n_hist,
        skipped_unknown_articles=skipped,
        days=days,
    )


def _upsert(cur, table: str, key: str, frame: pd.DataFrame) -> None:
    """COPY into a temporary copy of ``table`` and merge, replacing rows with the same key.

    Both statements stay inline: their table and column names come from the caller (composed
    as identifiers, never formatted into the text)."""
    stage = f"stage_{table.split('.')[1]}"
    target, staged = sql.Identifier(*table.split(".")), sql.Identifier(stage)
    cur.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(staged, target))
    db.copy_frame(cur, stage, frame)
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in frame.columns)
    updates = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in frame.columns if c != key
    )
    cur.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}").format(
            target, cols, cols, staged, sql.Identifier(key), updates
        )
    )
