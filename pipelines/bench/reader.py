"""Reader load benchmark: the real reader (uvicorn, ``serving.reader.workers``, asyncpg) vs a bare
FastAPI app (1 worker).

One run measures, for each target and each concurrency, requests/s and latency
percentiles under a closed-loop load on 127.0.0.1:

- ``reader``: ``newsrec reader serve`` against the live batch, rotating over a few thousand
  real user ids (one id in ten unknown, for the fallback path) with a real API key
  (the world: :mod:`pipelines.bench.reader_world`);
- ``bare`` and ``bare-model``: the reader's route from a constant, without and with the
  reader's response model (:mod:`pipelines.bench.bare_app`), the ceilings the reader's
  targets are measured against.

The servers run one at a time, each in its own process, and are stopped whatever happens
(:mod:`pipelines.bench.servers`). The load generator is ``wrk`` when installed, else an
asyncio + httpx loop (:mod:`pipelines.bench.load_generators`). Results go to ``reader.json``
and ``reader.md`` (:mod:`pipelines.bench.reader_report`), with the server's (and the
reader's database sessions') CPU time per request and how busy the machine was before each
case; nothing is asserted on timings.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.bench import cpu_time, load_generators, reader_report, reader_world, servers, stamp
from pipelines.core.errors import NewsrecError
from pipelines.reader import keys
from pipelines.reader.settings import ReaderParams


def run(
    results_dir: Path,
    seconds: int = 15,
    users: int = 20_000,
    connections: Sequence[int] = (4, 32),
    warmup: float = 2.0,
    generator: str = "auto",
    world: str = "auto",
    say: Any = print,
) -> reader_report.ReaderBenchmark:
    """Measure the reader and the bare app at each concurrency; write reader.json and reader.md."""
    if not 1 <= seconds <= 600:
        raise NewsrecError("--seconds must be within 1..600")
    if not connections or any(not 1 <= n <= 1024 for n in connections):
        raise NewsrecError("--connections must be within 1..1024")
    gen = load_generators.pick_generator(generator)
    say(f"load generator: {gen}" + ("" if gen == "wrk" else " (wrk not found; apt-get install wrk)"))
    w = reader_world.ensure_world(users, world)
    if w.built:
        say(f"built a world of {users:,} users and published batch {w.batch_id} in {w.build_seconds} s")
    paths, w.known_ids, w.unknown_ids = reader_world.request_paths(w.batch_id)
    if not w.known_ids:
        raise NewsrecError(f"the live batch {w.batch_id} has no personal lists to read")
    bench = reader_report.ReaderBenchmark(gen, seconds, warmup, w, ReaderParams.from_params().workers)
    key_id, key = keys.create_key(f"bench-reader {datetime.now(UTC):%Y-%m-%d %H:%M:%S}")
    scratch = Path(tempfile.mkdtemp(prefix="bench-reader-"))
    try:
        script = scratch / "rotate.lua"
        script.write_text(load_generators.wrk_script(paths, key))
        script.chmod(0o600)

        def load(target: str, base: str, n: int, secs: float) -> load_generators.LoadResult:
            if gen == "wrk":
                return load_generators.run_wrk(target, base, script, n, max(1, round(secs)))
            return load_generators.run_python(target, base, paths, key, n, max(1, round(secs)))

        for target in servers.TARGETS:
            ready = "/v1/health" if target == "reader" else servers.ROUTE.format(user_id=1)
            with servers.serving(target, ready, {}, scratch) as (base, pid):
                if target == "reader":
                    servers.preflight(base, paths, key)
                for n in connections:
                    background = cpu_time.machine_busy_pct()
                    if warmup > 0:
                        load(target, base, n, warmup)
                    db_pids = cpu_time.reader_db_pids() if target == "reader" else []
                    server_pids = cpu_time.with_children(pid)  # the workers, when there are several
                    cpu0, db0 = cpu_time.cpu_seconds(server_pids), cpu_time.cpu_seconds(db_pids)
                    result = load(target, base, n, seconds)
                    cpu1, db1 = cpu_time.cpu_seconds(server_pids), cpu_time.cpu_seconds(db_pids)
                    result.background_cpu_pct = background
                    if result.requests and cpu0 is not None and cpu1 is not None:
                        result.server_cpu_ms = round(1000 * (cpu1 - cpu0) / result.requests, 3)
                    if result.requests and db_pids and db0 is not None and db1 is not None:
                        result.db_cpu_ms = round(1000 * (db1 - db0) / result.requests, 3)
                    say(
                        f"{target:>6} c={n:<3} {result.requests_per_s:>8,.0f} req/s  p50 {result.p50_ms:.2f} ms  "
                        f"p99 {result.p99_ms:.2f} ms  errors {result.errors}  "
                        f"server CPU {reader_report.ms(result.server_cpu_ms)}/req  "
                        f"background {reader_report.pct(background)}"
                    )
                    bench.cases.append(result)
    finally:
        with contextlib.suppress(Exception):
            keys.revoke_key(key_id)
        shutil.rmtree(scratch, ignore_errors=True)

    results_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        **bench.to_dict(),
        **stamp.measured(wrk=load_generators.wrk_version() if gen == "wrk" else None),
    }
    (results_dir / "reader.json").write_text(json.dumps(payload, indent=2) + "\n")
    (results_dir / "reader.md").write_text(bench.render() + "\n")
    return bench
