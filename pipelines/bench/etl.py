"""ETL throughput: the Beam feature build vs the same transform in plain pyarrow/pandas.

Both paths run the same SQL and the same functions of :mod:`pipelines.features.transforms`
over the same days, so the ratio is what Beam's orchestration costs on this machine.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

from pipelines.bench import stamp
from pipelines.core import db
from pipelines.core import sql as queries
from pipelines.features import build, etl, partitions, transforms


@dataclass
class EtlBenchmark:
    day: str
    events: int
    users: int
    beam_seconds: float
    plain_seconds: float
    runner: str

    @property
    def beam_rows_per_s(self) -> float:
        return self.events / self.beam_seconds

    @property
    def plain_rows_per_s(self) -> float:
        return self.events / self.plain_seconds

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "beam_rows_per_s": round(self.beam_rows_per_s),
            "plain_rows_per_s": round(self.plain_rows_per_s),
            "beam_over_plain": round(self.beam_seconds / self.plain_seconds, 2),
        }

    def render(self) -> str:
        return "\n".join(
            [
                f"# ETL benchmark, {self.day}",
                "",
                f"{self.events:,} events, {self.users:,} users; runner {self.runner}.",
                "",
                "| path | wall s | events/s |",
                "|---|---:|---:|",
                f"| Beam feature build | {self.beam_seconds:.1f} | {self.beam_rows_per_s:,.0f} |",
                f"| plain pyarrow/pandas | {self.plain_seconds:.1f} | {self.plain_rows_per_s:,.0f} |",
                "",
                f"Beam / plain wall time: {self.beam_seconds / self.plain_seconds:.2f}x",
            ]
        )


def _plain_build(day: date, days: list[date], out: Path) -> None:
    """The whole feature computation of ``day`` without Beam: one COPY per table, no shards."""
    conn = db.connect()
    try:
        types = etl._pa_types
        partials = {}
        article_partial = None
        for d in days:
            bounds = {**etl._day_bounds(d), "lo": -(2**62), "hi": 2**62}
            events = db.read_frame(conn, etl._EVENTS_SQL, bounds, types(etl._EVENT_TYPES))
            uc, art = transforms.event_partials(events)
            partials[d] = uc
            if d == day:
                article_partial = art
        users = db.read_frame(
            conn, etl._USERS_SQL, {"lo": -(2**62), "hi": 2**62, "day": day.isoformat()}, types(etl._USER_TYPES)
        )
        articles = db.read_frame(conn, etl._ARTICLES_SQL, etl._day_bounds(day), types(etl._ARTICLE_TYPES))
    finally:
        conn.close()
    activity, category = transforms.user_features(day, partials, users)
    views = {
        "user_activity": activity,
        "user_category": category,
        "article_engagement": transforms.article_engagement(day, article_partial),
        "article_attributes": transforms.article_attributes(articles),
    }
    for view, frame in views.items():
        partitions.write_parquet_atomic(frame, out / f"{view}.parquet")


def run(day: date, results_dir: Path, runner: str | None = None) -> EtlBenchmark:
    conn = db.connect()
    try:
        have = build.days_with_events(conn)
        with conn.cursor() as cur:
            cur.execute(
                queries.load("bench_events_in_day"),
                (day - timedelta(days=transforms.WINDOW_DAYS - 1), day + timedelta(days=1)),
            )
            (events,) = cur.fetchone()
            cur.execute(queries.load("bench_users_signed_up_by"), (day,))
            (users,) = cur.fetchone()
    finally:
        conn.close()
    window = [day - timedelta(days=a) for a in range(transforms.WINDOW_DAYS)]
    days = [d for d in window if d in have or d == day]

    # Beam: recompute every partial of the window so both paths do the same work.
    t0 = time.perf_counter()
    result = build.build(day, runner=runner, refresh_window=True)
    beam_s = time.perf_counter() - t0

    scratch = Path(tempfile.mkdtemp(prefix="etl-bench-"))
    try:
        t0 = time.perf_counter()
        _plain_build(day, days, scratch)
        plain_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    bench = EtlBenchmark(day.isoformat(), int(events), int(users), beam_s, plain_s, runner or "FnApiRunner")
    results_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        **bench.to_dict(),
        "feature_rows": result.rows,
        **stamp.measured(),
    }
    (results_dir / "etl.json").write_text(json.dumps(payload, indent=2))
    (results_dir / "etl.md").write_text(bench.render() + "\n")
    return bench
