"""The benchmark's PostgreSQL memory sampler, on the tests' own local server."""

import psutil

from pipelines.bench import nightly_report, pg_memory
from pipelines.core import db


def _rss(process: psutil.Process) -> int:
    """A backend may end between listing and reading it (autovacuum workers come and go)."""
    try:
        return process.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def test_the_sampler_finds_the_local_server_and_counts_shared_pages_once(fresh_db):
    server = pg_memory.server_process()
    assert server is not None and "postgres" in server.name()
    conn = db.connect()  # a backend of our own, busy while sampled
    try:
        with pg_memory.PeakSampler(server, interval_s=0.05) as sampled, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM generate_series(1, 300000)")
            backends = server.children(recursive=True)
            rss = sum(_rss(p) for p in [server, *backends]) / 2**20
    finally:
        conn.close()
    assert sampled.peak_mb is not None and 0 < sampled.peak_mb <= rss * 1.05  # PSS splits what RSS repeats
    assert len(backends) >= 2  # the postmaster's helpers and our backend are all in the tree


def test_a_server_that_is_not_here_is_reported_as_not_measured():
    with pg_memory.PeakSampler(None, interval_s=0.01) as nothing:
        pass
    assert nothing.peak_mb is None
    line = nightly_report._pg_line({"pg_peak_mb": None, "peak_with_pg_mb": 1.0})
    assert "not measured" in line
    assert "1.5 GiB" in nightly_report._pg_line({"pg_peak_mb": 1536.0, "peak_with_pg_mb": 4096.0})
    assert psutil.Process().memory_full_info().pss > 0  # PSS is readable on this platform
