"""CPU time of the processes a benchmark starts, and how busy the machine was before a
case (Linux ``/proc``): extra columns of the results, never asserted on."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from pipelines.core import db
from pipelines.core import sql as queries


def cpu_seconds(pids: Sequence[int]) -> float | None:
    """User + system CPU seconds of ``pids`` so far (Linux /proc); None when unreadable."""
    total = 0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    except (OSError, IndexError, ValueError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


def with_children(pid: int) -> list[int]:
    """``pid`` and its descendants (a uvicorn supervisor and its workers)."""
    import psutil

    try:
        return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        return [pid]


def machine_busy_pct(seconds: float = 1.0) -> float | None:
    """Share of all cores busy over ``seconds`` (Linux /proc/stat), 0..100."""

    def sample() -> tuple[int, int]:
        values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        return sum(values[:8]), idle

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    spent = total1 - total0
    return round(100 * (1 - (idle1 - idle0) / spent), 1) if spent > 0 else None


def reader_db_pids() -> list[int]:
    """Server pids of the reader's database sessions, when the database is on this machine."""
    try:
        with db.transaction() as conn, conn.cursor() as cur:
            cur.execute(queries.load("bench_reader_pids"))
            pids = [int(p) for (p,) in cur.fetchall()]
    except Exception:  # best effort: only an extra column of the results
        return []
    return [p for p in pids if Path(f"/proc/{p}/stat").exists()]
