"""``import_mind``: parse, build and load a MIND folder into the warehouse in one transaction.

A malformed file aborts the import with its file and line and leaves the warehouse untouched.
Re-importing replaces the days covered. Events and users are bulk-loaded with COPY.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from psycopg2 import sql

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.errors import DataError
from pipelines.warehouse import profile
from pipelines.warehouse.migrations import migrate
from pipelines.warehouse.mind.parse import parse_behaviors, parse_news
from pipelines.warehouse.mind.tables import MIND_PUBLICATION_ID, build_tables
from pipelines.warehouse.profile import DataProfile
from pipelines.warehouse.unknown_articles import UNKNOWN_PUBLICATION_ID

# What a MIND export has: clicks without dwell, no publishers, regions or publish times (the
# import fills them in, so they carry no signal), one surface, and a list order that MIND does
# not document as display order. Stored as the warehouse's data profile in the import's own
# transaction, so the stages read it instead of params.yaml edits.
MIND_PROFILE = DataProfile(source="mind", dwell=False, regions=False, publications=False,
                           publish_times=False, positions_known=False, surfaces=False)  # fmt: skip


@dataclass
class MindImport:
    articles: int = 0  # rows of news.tsv
    users: int = 0
    impressions: int = 0
    reads: int = 0  # clicks on impressions
    history_reads: int = 0  # reads from the history column (no impression)
    unknown_articles: int = 0  # articles behaviors.tsv names and news.tsv lacks, kept with unknown metadata
    unknown_references: int = 0  # impression and history entries naming those articles
    days: list[date] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # parse, build, load

    def render(self) -> str:
        span = f"{self.days[0]} .. {self.days[-1]}" if self.days else "no days"
        return (
            f"imported MIND: {self.articles:,} articles, {self.users:,} users, "
            f"{self.impressions:,} impressions, {self.reads:,} clicks, "
            f"{self.history_reads:,} history reads ({span}); "
            f"kept {self.unknown_articles:,} articles missing from news.tsv with unknown metadata "
            f"({self.unknown_references:,} references), never recommended"
        )


def import_mind(directory: Path) -> MindImport:
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory} is not a folder with news.tsv and behaviors.tsv")
    t0 = time.perf_counter()
    news = parse_news(directory / "news.tsv")
    imps, hist, unknown_refs = parse_behaviors(directory / "behaviors.tsv", set(news["article_id"]))
    t1 = time.perf_counter()
    articles, users, events = build_tables(news, imps, hist)
    days = [pd.Timestamp(d).date() for d in np.unique(events["day"].to_numpy())]
    t2 = time.perf_counter()

    migrate()
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("mind_insert_publication"), (MIND_PUBLICATION_ID,))
        cur.execute(queries.load("mind_insert_unknown_publication"), (UNKNOWN_PUBLICATION_ID,))
        known = articles["metadata_known"].to_numpy(bool)
        _upsert(cur, "warehouse.articles", "article_id", articles[known])
        # an article another import (or the team's catalogue) knows keeps its metadata
        _upsert(cur, "warehouse.articles", "article_id", articles[~known], replace=False)
        _upsert(cur, "warehouse.users", "user_id", users)
        for day in days:
            cur.execute(queries.load("mind_ensure_events_partition"), (day,))
            # inline: the partition's name is known only at run time (composed as an identifier)
            cur.execute(sql.SQL("TRUNCATE warehouse.{}").format(sql.Identifier(cur.fetchone()[0])))
        db.copy_frame(cur, "warehouse.events", events.drop(columns=["day"]))
        cur.execute(queries.load("warehouse_analyze_events"))  # planner statistics for the loaded days
        profile.save(conn, MIND_PROFILE)
    seconds = {"parse": t1 - t0, "build": t2 - t1, "load": time.perf_counter() - t2}
    n_reads = int((events["event_type"] == "read").sum())
    n_hist = int((events["surface"] == "mind-history").sum())
    return MindImport(
        articles=len(news),
        users=len(users),
        impressions=int((events["event_type"] == "impression").sum()),
        reads=n_reads - n_hist,
        history_reads=n_hist,
        unknown_articles=int((~articles["metadata_known"]).sum()),
        unknown_references=unknown_refs,
        days=days,
        seconds=seconds,
    )


def _upsert(cur, table: str, key: str, frame: pd.DataFrame, replace: bool = True) -> None:
    """COPY into a temporary copy of ``table`` and merge: rows with the same key are replaced
    (or, with ``replace=False``, kept as they are).

    Both statements stay inline: their table and column names come from the caller (composed
    as identifiers, never formatted into the text)."""
    if frame.empty:
        return
    stage = f"stage_{table.split('.')[1]}"
    target, staged = sql.Identifier(*table.split(".")), sql.Identifier(stage)
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staged))
    cur.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(staged, target))
    db.copy_frame(cur, stage, frame)
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in frame.columns)
    updates = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in frame.columns if c != key
    )
    action = sql.SQL("DO UPDATE SET {}").format(updates) if replace else sql.SQL("DO NOTHING")
    cur.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) {}").format(
            target, cols, cols, staged, sql.Identifier(key), action
        )
    )
