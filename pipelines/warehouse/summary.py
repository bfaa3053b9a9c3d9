"""What is in the warehouse, for people: table counts and per-day activity."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from psycopg2 import sql

from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.warehouse import profile as data_profile


@dataclass
class WarehouseSummary:
    counts: list[tuple[str, int]]
    days: list[tuple]  # (day, impressions, reads, ctr, mean dwell)
    profile: data_profile.DataProfile = field(default_factory=data_profile.DataProfile)

    def render(self) -> str:
        width = max(len(name) for name, _ in self.counts)
        lines = ["Warehouse summary", "-----------------"]
        lines += [f"{name:<{width}}  {n:>12,}" for name, n in self.counts]
        if self.days:
            lines += ["", f"{'day':<10}  {'impressions':>11}  {'reads':>9}  {'ctr':>6}  {'dwell s':>7}"]
            for day, imp, reads, ctr, dwell in self.days:
                # a source without dwell (its profile) has no dwell to average: n/a, not 0.0
                shown = f"{dwell or 0:>7.1f}" if self.profile.dwell else f"{'n/a':>7}"
                lines.append(f"{day!s:<10}  {imp:>11,}  {reads:>9,}  {ctr or 0:>6.3f}  {shown}")
        lines += ["", self.profile.render()]
        return "\n".join(lines)


def summarize() -> WarehouseSummary:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("warehouse_summary"))
        counts = [(name, int(n)) for name, n in cur.fetchall()]
        cur.execute(queries.load("events_by_day"))
        days = cur.fetchall()
        profile = data_profile.load(conn)
    return WarehouseSummary(counts, days, profile)


def events_in_day(day: date) -> int:
    """How many events the warehouse holds for UTC day ``day`` (the nightly ingest's check that
    an upstream load landed)."""
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(queries.load("warehouse_events_in_day"), {"start": day, "end": day + timedelta(days=1)})
        (events,) = cur.fetchone()
    return int(events)


def analyze_day(cur: Any, day: date) -> None:
    """Fresh planner statistics for the events partitions that day ``day``'s load wrote (its
    own, and the next day's, where the reads of its last sessions land after midnight), in the
    caller's transaction.

    A partition loaded a moment ago has none (autovacuum gets to it a minute later, if at all
    before the night queries it): the planner then takes it for a one-row table and joins it
    by nested loops, each impression of the day against each read. That turned the training
    read of a 3,000-user world's days from 0.3 s into 16 s. Sampling a day costs milliseconds."""
    for d in (day, day + timedelta(days=1)):
        cur.execute(queries.load("warehouse_events_partition_of"), {"day": d})
        row = cur.fetchone()
        if row:  # the partition's name comes from the database: composed as an identifier
            cur.execute(sql.SQL("ANALYZE warehouse.{}").format(sql.Identifier(row[0])))


def analyze_loaded_day(day: date) -> None:
    """:func:`analyze_day` in a transaction of its own (the ingest of an upstream-loaded day)."""
    with db.transaction() as conn, conn.cursor() as cur:
        analyze_day(cur, day)
