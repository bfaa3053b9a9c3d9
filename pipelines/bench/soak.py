"""Reader soak: the real reader under a bounded closed-loop load while batches go live.

``newsrec bench soak`` (``make soak``) runs ``newsrec reader serve`` on 127.0.0.1 and keeps
``connections`` clients asking for recommendation lists for ``seconds``, while publish
switches (``publish_batch``) and one rollback move the live pointer. Every response is
checked: HTTP 200, and the items are exactly the list that the batch named in the response
holds for that user (personal) or region (fallback), with k items: a list from one batch,
complete. Any other answer, any socket error or timeout counts as an error; the run passes
with zero errors and with every switched-to batch seen by the clients.

It works in its own database, ``<main>_soak`` on the same server by default, with a small
simulated warehouse and batches of deterministic random lists (:mod:`pipelines.bench.soak_world`),
so it never touches the live batch of the project's database. The clients and the check of
every answer: :mod:`pipelines.bench.soak_load`. Results: ``soak.json`` and ``soak.md``
(:mod:`pipelines.bench.soak_report`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.bench import cpu_time, load_generators, servers, soak_load, soak_report, soak_world, stamp
from pipelines.core import config
from pipelines.core.errors import NewsrecError
from pipelines.reader import keys
from pipelines.reader.settings import ReaderParams
from pipelines.serving import publish


def run(
    results_dir: Path,
    seconds: float = 60,
    connections: int = 32,
    switches: int = 3,
    rollback: bool = True,
    users: int = 20_000,
    database: str | None = "{main}_soak",
    world: str = "auto",
    say: Any = print,
) -> soak_report.Soak:
    """Load the reader for ``seconds`` with ``connections`` clients while ``switches``
    publishes (then one rollback) move the live batch, spread evenly over the run; check
    every response; write soak.json and soak.md. Returns the result (``passed`` tells)."""
    if not 1 <= seconds <= 3600:
        raise NewsrecError("--seconds must be within 1..3600")
    if not 1 <= connections <= 1024:
        raise NewsrecError("--connections must be within 1..1024")
    if not 1 <= switches <= 50:
        raise NewsrecError("--switches must be within 1..50")
    if world not in ("auto", "seed"):
        raise NewsrecError("--world must be auto or seed")
    k = int(config.params("serving").get("selection", {}).get("k", 10))
    keep = max(3, int(config.params("serving").get("publish", {}).get("keep_batches", 3)))
    workers = ReaderParams.from_params().workers
    soak = soak_report.Soak(seconds=seconds, connections=connections, users=users, k=k, reader_workers=workers)

    with soak_world.own_database(database):
        if soak_world.ensure_warehouse(users, world):
            say(f"seeded a warehouse of {users:,} users in the soak's database")
        batches = soak_world.Batches(k)
        soak.users = len(batches.users)
        plan = soak_load.targets(batches, k)
        sampled = [int(t.expect[1:]) for t in plan if not t.fallback]
        expected: dict[int, dict[str, tuple[int, ...]]] = {}
        day = date.today() - timedelta(days=1)
        # Salts continue across runs on the same database: every batch differs from the last.
        base_salt = int(soak_world.query("SELECT count(*) FROM serving.batches")[0][0])
        salts = iter(range(base_salt + 1, base_salt + switches + 2))
        # What each batch will hold for the sampled users, computed before the load starts.
        want = {
            salt: soak_world.Batches.expected(*batches.frames(salt), sampled)
            for salt in range(base_salt + 1, base_salt + switches + 2)
        }
        salt = next(salts)
        first = publish.publish_batch(day, f"soak-{salt}", *batches.frames(salt), keep=keep)
        expected[first], soak.batches[first] = want[salt], f"soak-{salt}"
        say(f"batch {first} live ({soak.users:,} users); {len(plan):,} request paths")
        events = ["publish"] * switches + (["rollback"] if rollback else [])
        key_id, key = keys.create_key(f"bench-soak {datetime.now(UTC):%Y-%m-%d %H:%M:%S}")
        scratch = Path(tempfile.mkdtemp(prefix="bench-soak-"))
        try:
            with servers.serving("reader", "/v1/health", {}, scratch) as (base, _pid):
                soak.background_cpu_pct = cpu_time.machine_busy_pct()
                t0 = time.perf_counter()

                def switcher() -> None:
                    for n, kind in enumerate(events, start=1):
                        time.sleep(max(0.0, t0 + seconds * n / (len(events) + 1) - time.perf_counter()))
                        s = soak_report.Switch(kind, at_s=round(time.perf_counter() - t0, 2))
                        salt = next(salts) if kind == "publish" else None
                        try:
                            s.batch_id = soak_world.switch_in_child(kind, day, salt, keep)
                        except Exception as exc:  # reported as a failed check, never hidden
                            s.error = f"{type(exc).__name__}: {exc}"[:300]
                        s.took_s = round(time.perf_counter() - t0 - s.at_s, 2)
                        if salt is not None and s.batch_id is not None:
                            expected[s.batch_id], soak.batches[s.batch_id] = want[salt], f"soak-{salt}"
                        soak.switches.append(s)
                        say(f"{kind} -> batch {s.batch_id} at {s.at_s:.1f} s, took {s.took_s:.2f} s {s.error or ''}")

                # The switches run in their own processes (as a nightly run would), so that
                # publishing never holds this process's GIL while it times the responses.
                thread = threading.Thread(target=switcher, name="soak-switcher", daemon=True)
                thread.start()
                raw = asyncio.run(soak_load.load(base, key, plan, connections, seconds, k))
                thread.join(timeout=300)
                if thread.is_alive():
                    raise NewsrecError("a publish switch did not finish within 5 minutes of the load")
        finally:
            with contextlib.suppress(Exception):
                keys.revoke_key(key_id)
            shutil.rmtree(scratch, ignore_errors=True)
        (live,) = soak_world.query("SELECT batch_id FROM serving.live")[0]
        soak.final_live_batch = live
        last = soak.switches[-1] if soak.switches else None
        soak.expected_live_batch = last.batch_id if last else first

    soak_load.verify(soak, raw, plan, expected)
    lat = sorted(s * 1000 for _, s in raw["latencies"])
    soak.requests_per_s = round(len(lat) / raw["seconds"], 1) if raw["seconds"] else 0.0
    soak.p50_ms, soak.p90_ms, soak.p99_ms = (round(load_generators.percentile(lat, q), 2) for q in (50, 90, 99))
    soak.max_ms = round(lat[-1], 2) if lat else 0.0
    windows = [(s.at_s, s.at_s + s.took_s) for s in soak.switches if s.at_s is not None and s.took_s is not None]
    during = [d * 1000 for start, d in raw["latencies"] if any(a <= start <= b for a, b in windows)]
    soak.max_ms_during_switches = round(max(during), 2) if during else 0.0
    for second in range(int(raw["seconds"]) + 1):
        within = [d * 1000 for start, d in raw["latencies"] if second <= start < second + 1]
        if within:
            soak.timeline.append({"second": second, "requests": len(within), "max_ms": round(max(within), 1)})

    results_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        **soak.to_dict(),
        **stamp.measured(),
    }
    (results_dir / "soak.json").write_text(json.dumps(payload, indent=2) + "\n")
    (results_dir / "soak.md").write_text(soak.render() + "\n")
    return soak
