"""Writing the simulated world to the warehouse: a fresh world (``seed``), one more day
(``simulate_day``, for nightly runs) and what both share: replacing a day's rows, writing its
articles, new users and events with their latent truth in the ``sim`` schema."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from psycopg2 import sql

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.core.errors import NewsrecError
from pipelines.warehouse import migrations, profile, summary
from pipelines.warehouse.simulator import behaviour, closed_loop, impressions, world


def _users_sim_frames(users: world.Users) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    ids = users.frame["user_id"].to_numpy(np.int64)
    sim_users = pd.DataFrame({"user_id": ids, "activity": users.activity.round(4)})
    rows, cols = np.nonzero(users.taste >= 0.01)
    taste = pd.DataFrame(
        {
            "user_id": ids[rows],
            "category": np.array(world.CATEGORIES)[cols],
            "weight": users.taste[rows, cols].round(4),
        }
    )
    rows, cols = np.nonzero(users.fav_pub > 0)
    aff = pd.DataFrame(
        {
            "user_id": ids[rows],
            "publication_id": users.fav_pub[rows, cols],
            "affinity": users.fav_affinity[rows, cols].round(4),
        }
    ).drop_duplicates(["user_id", "publication_id"])
    return sim_users, taste, aff


def _write_users(cur: Any, users: world.Users) -> None:
    db.copy_frame(cur, "warehouse.users", users.frame)
    sim_users, taste, aff = _users_sim_frames(users)
    db.copy_frame(cur, "sim.users", sim_users)
    db.copy_frame(cur, "sim.user_taste", taste)
    db.copy_frame(cur, "sim.user_publication_affinity", aff)


def _write_articles(cur: Any, articles: pd.DataFrame, quality: np.ndarray) -> None:
    db.copy_frame(cur, "warehouse.articles", articles)
    db.copy_frame(
        cur,
        "sim.articles",
        pd.DataFrame({"article_id": articles["article_id"], "quality": quality.round(4)}),
    )


def _load_pool(cur: Any, conn: Any, day: date, window_hours: float) -> pd.DataFrame:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=window_hours)
    end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    return db.read_frame(conn, queries.load("sim_pool_articles"), {"window_start": start, "window_end": end})


def _replace_day(cur: Any, cfg: world.SimConfig, day: date) -> None:
    """Delete whatever the simulator wrote for ``day`` before writing it again."""
    lo = world.day_number(day) * world.ARTICLE_ID_STRIDE
    cur.execute(queries.load("warehouse_events_partition"), {"day": day})
    part = cur.fetchone()[0]
    # The partition's name comes from the database, so this statement is composed here (an
    # identifier cannot be a bound parameter) rather than kept as a named query.
    cur.execute(sql.SQL("TRUNCATE warehouse.{}").format(sql.Identifier(part)))
    cur.execute(
        queries.load("sim_delete_day"),
        {"day": day, "first_article": lo, "end_article": lo + world.ARTICLE_ID_STRIDE},
    )
    if cfg.new_users_each_day and day >= cfg.start:
        first = cfg.users + 1 + (day - cfg.start).days * cfg.new_users_each_day
        last = first + cfg.new_users_each_day
        cur.execute(queries.load("sim_delete_new_users"), {"first_user": first, "end_user": last})


@dataclass
class DayResult:
    day: date
    articles: int
    impressions: int
    reads: int
    new_users: int
    faults: tuple[str, ...]
    drifted: bool
    batch_id: int | None = None  # the published batch whose lists the day showed
    recommended: int = 0  # impressions that showed a published list


def _generate_day(
    cur: Any,
    conn: Any,
    cfg: world.SimConfig,
    day: date,
    pubs: world.Publications,
    users: world.Users,
    faults: frozenset[str],
    with_events: bool = True,
    live: closed_loop.LiveLists | None = None,
) -> DayResult:
    _replace_day(cur, cfg, day)
    articles, quality = world.make_articles(cfg, day, pubs, faults)
    _write_articles(cur, articles, quality)
    new_users = 0
    if cfg.new_users_each_day and day >= cfg.start and with_events:
        fresh = world.make_new_users(cfg, day, pubs)
        _write_users(cur, fresh)
        new_users = len(fresh.frame)
    n_impressions = reads = recommended = 0
    if with_events:
        pool = impressions.ShowableArticles.from_frame(_load_pool(cur, conn, day, cfg.article_window_hours))
        events, truth = behaviour.simulate_events(cfg, day, users, pool, pubs, faults, live)
        db.copy_frame(cur, "warehouse.events", events)
        db.copy_frame(cur, "sim.impression_truth", truth)
        n_impressions = int((events["event_type"] == "impression").sum())
        reads = len(events) - n_impressions
        if "batch_id" in events.columns:
            shown_lists = (events["event_type"] == "impression") & (events["surface"] == closed_loop.REC_SURFACE)
            recommended = int(shown_lists.sum())
    drifted = bool(cfg.drift_from and day >= cfg.drift_from)
    cur.execute(
        queries.load("sim_insert_day"),
        {
            "day": day,
            "drifted": drifted,
            "faults": sorted(faults),
            "n_articles": len(articles),
            "n_events": n_impressions + reads,
        },
    )
    return DayResult(
        day, len(articles), n_impressions, reads, new_users, tuple(sorted(faults)), drifted,
        live.batch_id if live is not None else None, recommended,
    )  # fmt: skip


def _check_faults(faults: list[str] | tuple[str, ...]) -> frozenset[str]:
    unknown = set(faults) - set(world.FAULTS)
    if unknown:
        raise NewsrecError(f"unknown fault {sorted(unknown)[0]!r}; choose from {', '.join(world.FAULTS)}")
    return frozenset(faults)


def _progress(total: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="day", disable=None)


def seed(
    cfg: world.SimConfig,
    days: int,
    faults: list[str] | tuple[str, ...] = (),
    fault_date: date | None = None,
) -> list[DayResult]:
    """Replace the warehouse with a fresh simulated world and ``days`` days of reading.

    Runs as one transaction: on any error the previous warehouse is left as it was.
    """
    cfg.validate()
    if days < 1:
        raise NewsrecError("--days must be at least 1")
    fault_set = _check_faults(faults)
    last = cfg.start + timedelta(days=days - 1)
    if fault_set and fault_date is None:
        fault_date = last
    if fault_date and not (cfg.start <= fault_date <= last):
        raise NewsrecError(f"--fault-date {fault_date} is outside the seeded days {cfg.start}..{last}")
    migrations.migrate()
    pubs = world.make_publications(cfg)
    results: list[DayResult] = []
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("sim_truncate_world"))
        cur.execute(queries.load("sim_insert_config"), {"params": cfg.to_json()})
        profile.save(conn, profile.full("simulator"), set_by="the simulator (newsrec warehouse seed)")
        db.copy_frame(cur, "warehouse.publications", pubs.frame)
        db.copy_frame(
            cur,
            "sim.publications",
            pd.DataFrame(
                {
                    "publication_id": pubs.frame["publication_id"],
                    "quality": pubs.quality.round(4),
                    "output_weight": pubs.output_weight.round(4),
                }
            ),
        )
        bias = world.region_category_bias(cfg)
        db.copy_frame(
            cur,
            "sim.region_category_bias",
            pd.DataFrame(
                [
                    (r, c, round(float(bias[i, j]), 4))
                    for i, r in enumerate(world.REGIONS)
                    for j, c in enumerate(world.CATEGORIES)
                ],
                columns=["region", "category", "bias"],
            ),
        )
        base = world.make_base_users(cfg, pubs)
        _write_users(cur, base)
        # A lead-in day of articles so the first simulated morning has something to show.
        lead_in = cfg.start - timedelta(days=1)
        _generate_day(cur, conn, cfg, lead_in, pubs, base, frozenset(), with_events=False)
        users = base
        with _progress(days, "seeding") as bar:
            for offset in range(days):
                day = cfg.start + timedelta(days=offset)
                if offset and cfg.new_users_each_day:
                    yesterday = day - timedelta(days=1)
                    users = world.concat_users([users, world.make_new_users(cfg, yesterday, pubs)])
                day_faults = fault_set if day == fault_date else frozenset()
                results.append(_generate_day(cur, conn, cfg, day, pubs, users, day_faults))
                bar.update(1)
        cur.execute(queries.load("warehouse_analyze_events"))
    return results


def load_config() -> world.SimConfig:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("sim_config_exists"))
        if cur.fetchone()[0] is None:
            raise NewsrecError("the warehouse is not migrated; run `newsrec db migrate` first")
        cur.execute(queries.load("sim_config"))
        row = cur.fetchone()
    if not row:
        raise NewsrecError(
            "no simulated world in this warehouse: `newsrec warehouse seed` makes one; "
            "for loaded data (an import, a team's warehouse) use --ingest warehouse"
        )
    return world.SimConfig.from_json(row[0])


def simulate_day(
    day: date,
    faults: list[str] | tuple[str, ...] = (),
    drift_from: date | None = None,
) -> DayResult:
    """Append (or replace) one day of the simulated world, for nightly runs."""
    fault_set = _check_faults(faults)
    cfg = load_config()
    if day < cfg.start:
        raise NewsrecError(f"--date {day} is before the simulation start {cfg.start}")
    with db.transaction() as conn, conn.cursor() as cur:
        if drift_from is not None:
            cfg.drift_from = drift_from
            cur.execute(queries.load("sim_update_config"), {"params": cfg.to_json()})
        pubs = world.make_publications(cfg)
        users = world.users_on(cfg, day, pubs)
        live = closed_loop.load_live_lists(conn, day)
        result = _generate_day(cur, conn, cfg, day, pubs, users, fault_set, live=live)
        summary.analyze_day(cur, day)
    return result
