"""Reader load benchmark: the real reader (uvicorn, 1 worker, asyncpg) vs a bare FastAPI app.

One run measures, for each target and each concurrency, requests/s and latency
percentiles under a closed-loop load on 127.0.0.1:

- ``reader``: ``newsrec reader serve`` against the live batch, rotating over a few thousand
  real user ids (one id in ten unknown, for the fallback path) with a real API key;
- ``bare``: :data:`app` below, the same route and a constant body shaped like the reader's
  (10 items) returned as a dict, no database, no auth, no metrics: the "FastAPI ceiling" of
  the stack notes, which the reader's targets are measured against;
- ``bare-model``: :data:`model_app`, the same constant through the reader's response model.
  FastAPI then serialises with pydantic straight to JSON bytes (as for the reader) instead
  of ``jsonable_encoder``, which is ~2.5x cheaper: the real framework ceiling.

The servers run one at a time, each in its own process, and are stopped whatever happens.
The load generator is ``wrk`` (Debian package ``wrk``) when installed, else an asyncio +
httpx loop in this process (much slower than wrk: its numbers are a floor, not a ceiling).
Results go to ``reader.json`` and ``reader.md``, with the server's (and the reader's database
sessions') CPU time per request and how busy the machine was before each case; nothing is
asserted on timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from pipelines.reader.app import RecommendationsOut

ROUTE = "/v1/users/{user_id}/recommendations"
HOST = "127.0.0.1"
TARGETS = ("reader", "bare", "bare-model")
GENERATORS = ("auto", "wrk", "python")
WORLDS = ("auto", "seed")
# What the reader should reach (README, "Benchmarks"): throughput relative to the bare app,
# tail latency at low concurrency, and no errors at all.
TARGET_RATIO = 0.70
TARGET_P99_MS = 5.0
TARGET_P99_CONNECTIONS = 4
KNOWN_IDS = 3000
UNKNOWN_EVERY = 10  # one id in ten is unknown (fallback list)
SEED_DAYS = 3
REQUEST_TIMEOUT_S = 5  # a slower answer counts as a timeout error
BUSY_PCT = 10.0  # background CPU above this before a case: the report warns
WRK_THREADS = 2

# --------------------------------------------------------------------------------------
# The bare app (module level so that `uvicorn pipelines.bench.reader:app` can serve it)
# --------------------------------------------------------------------------------------

_CATEGORIES = ("sports", "politics", "health", "finance", "travel")
BARE_BODY: dict[str, Any] = {
    "user_id": 1,
    "batch_id": 1,
    "model_version": "bench-bare",
    "generated_at": "2026-01-01T03:00:00Z",
    "fallback": False,
    "region": "NA",
    "arm": None,
    "items": [
        {
            "rank": rank,
            "article_id": 1_000_000 + rank,
            "title": f"A constant headline, number {rank}, of a usual length",
            "url": f"https://news.example.com/{_CATEGORIES[rank % 5]}/{1_000_000 + rank}",
            "category": _CATEGORIES[rank % 5],
            "score": round(1.0 - rank / 20, 4),
            "reason": f"Because you read {_CATEGORIES[rank % 5].title()}",
        }
        for rank in range(1, 11)
    ],
}
_BARE_MODEL = RecommendationsOut.model_validate(BARE_BODY)

# ``bare``: the constant as a plain dict, which FastAPI encodes with jsonable_encoder and
# json.dumps (the "FastAPI ceiling" of the stack notes is this kind of endpoint).
app = FastAPI(title="newsrec bench: bare FastAPI", docs_url=None, redoc_url=None, openapi_url=None)


@app.get(ROUTE)
async def bare_recommendations(user_id: int):  # no return annotation: no response model
    """The reader's route and response shape, from a constant: no database, key or metrics."""
    return BARE_BODY


# ``bare-model``: the same constant through the reader's response model, so FastAPI
# serialises it with pydantic straight to JSON bytes, as it does the reader's lists: what
# the reader would cost if the database, the API key and the metrics were free.
model_app = FastAPI(title="newsrec bench: bare FastAPI, response model", docs_url=None, redoc_url=None,
                    openapi_url=None)  # fmt: skip


@model_app.get(ROUTE, response_model=RecommendationsOut)
async def bare_model_recommendations(user_id: int) -> RecommendationsOut:
    """The reader's route, response model and serialisation, from a constant."""
    return _BARE_MODEL


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    target: str
    connections: int
    generator: str
    seconds: float
    requests: int
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: dict[str, int]
    bytes_per_response: float
    # CPU per request of the server process, and of the reader's database sessions when
    # the database runs on this machine (None when they cannot be read).
    server_cpu_ms: float | None = None
    db_cpu_ms: float | None = None
    # Share of all cores busy just before the case, with the server idle: other work on
    # the machine (anything well above 0 makes the numbers of this case unreliable).
    background_cpu_pct: float | None = None

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


@dataclass
class World:
    batch_id: int
    model_version: str
    personal_users: int
    built: bool
    build_seconds: float | None
    known_ids: int
    unknown_ids: int


@dataclass
class ReaderBenchmark:
    generator: str
    seconds: int
    warmup_seconds: float
    world: World
    cases: list[LoadResult] = field(default_factory=list)

    def case(self, target: str, connections: int) -> LoadResult | None:
        return next((c for c in self.cases if c.target == target and c.connections == connections), None)

    def connections(self) -> list[int]:
        return sorted({c.connections for c in self.cases})

    def ratio(self, connections: int, against: str = "bare") -> float | None:
        reader, bare = self.case("reader", connections), self.case(against, connections)
        if reader is None or bare is None or not bare.requests_per_s:
            return None
        return reader.requests_per_s / bare.requests_per_s

    def checks(self) -> list[dict[str, Any]]:
        """Each target of the reader with the measured value and whether it is met."""
        out: list[dict[str, Any]] = []
        for n in self.connections():
            ratio = self.ratio(n)
            if ratio is not None:
                out.append(
                    {"target": f"reader >= {TARGET_RATIO:.0%} of bare req/s at {n} connections",
                     "value": round(ratio, 3), "met": ratio >= TARGET_RATIO}
                )  # fmt: skip
        low = self.case("reader", TARGET_P99_CONNECTIONS)
        if low is not None:
            out.append(
                {"target": f"reader p99 < {TARGET_P99_MS:g} ms at {TARGET_P99_CONNECTIONS} connections",
                 "value": round(low.p99_ms, 3), "met": low.p99_ms < TARGET_P99_MS}
            )  # fmt: skip
        errors = sum(c.errors for c in self.cases if c.target == "reader")
        out.append({"target": "reader: zero errors (non-2xx and socket)", "value": errors, "met": errors == 0})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator,
            "seconds_per_case": self.seconds,
            "warmup_seconds": self.warmup_seconds,
            "world": asdict(self.world),
            "cases": [{**asdict(c), "errors": c.errors} for c in self.cases],
            "ratios": {str(n): round(r, 3) for n in self.connections() if (r := self.ratio(n)) is not None},
            "ratios_to_bare_model": {
                str(n): round(r, 3) for n in self.connections() if (r := self.ratio(n, "bare-model")) is not None
            },
            "checks": self.checks(),
        }

    def render(self) -> str:
        w = self.world
        lines = [
            "# Reader load benchmark",
            "",
            f"Load: {self.generator}, {self.seconds} s per case after {self.warmup_seconds:g} s of warm-up, "
            f"127.0.0.1, 1 uvicorn worker per server, one server at a time.",
            f"Live batch {w.batch_id} ({w.model_version}, {w.personal_users:,} users with a personal list"
            f"{', built for this run' if w.built else ''}); requests rotate over {w.known_ids:,} of its users "
            f"and {w.unknown_ids:,} unknown ids (fallback lists).",
            "",
            "| target | connections | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | bytes/resp "
            "| server CPU ms/req | DB CPU ms/req | background CPU |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c in sorted(self.cases, key=lambda c: (TARGETS.index(c.target), c.connections)):
            lines.append(
                f"| {c.target} | {c.connections} | {c.requests_per_s:,.0f} | {c.p50_ms:.2f} | {c.p90_ms:.2f} | "
                f"{c.p99_ms:.2f} | {c.max_ms:.1f} | {c.errors} | {c.bytes_per_response:,.0f} | "
                f"{_num(c.server_cpu_ms)} | {_num(c.db_cpu_ms)} | {_pct(c.background_cpu_pct)} |"
            )
        lines += ["", "| connections | reader / bare req/s | reader / bare-model req/s |", "|---:|---:|---:|"]
        for n in self.connections():
            shown = [f"{r:.0%}" if (r := self.ratio(n, against)) is not None else "-" for against in TARGETS[1:]]
            lines.append(f"| {n} | {' | '.join(shown)} |")
        lines += ["", "| target | measured | met |", "|---|---:|:---:|"]
        for check in self.checks():
            value = check["value"]
            shown = f"{value:.0%}" if "of bare" in check["target"] else f"{value:g}"
            lines.append(f"| {check['target']} | {shown} | {'yes' if check['met'] else '**no**'} |")
        busy = [c.background_cpu_pct for c in self.cases if c.background_cpu_pct is not None]
        if busy and max(busy) > BUSY_PCT:
            lines += ["", f"**The machine was not quiet** (up to {max(busy):.0f}% of all cores busy before a case, "
                      "with the server idle): other work competed for the CPU; compare runs with care."]  # fmt: skip
        if self.generator == "python":
            lines += ["", "wrk was not installed: the Python load generator limits these numbers."]
        lines += ["", "bare: the reader's route returning the constant body as a dict (FastAPI's "
                  "jsonable_encoder + json.dumps); bare-model: the same constant through the reader's response "
                  "model (pydantic straight to JSON bytes, as the reader). The targets compare with bare."]  # fmt: skip
        lines += ["", "server CPU: user + system time of the server process per request (the load generator "
                  "and the database run on the same cores); DB CPU: the reader's database sessions."]  # fmt: skip
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# The world: a live batch to read
# --------------------------------------------------------------------------------------


def _query(sql: str, args: tuple = ()) -> list[tuple]:
    from pipelines.core import db

    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else []


def _live_batch() -> tuple[int, str] | None:
    rows = _query("SELECT l.batch_id, b.model_version FROM serving.live l JOIN serving.batches b USING (batch_id)")
    return (int(rows[0][0]), str(rows[0][1])) if rows else None


def build_world(users: int, days: int = SEED_DAYS) -> int:
    """Replace the warehouse with a simulated world of ``users`` and publish a batch without a
    model (candidates, a deterministic score, capped top-k, fallback lists), as the tests do.
    Returns the batch id."""
    import pandas as pd

    from pipelines.core.config import params
    from pipelines.features import build
    from pipelines.serving import candidates, publish, selection
    from pipelines.warehouse import simulator

    last = date.today() - timedelta(days=1)
    cfg = simulator.SimConfig.from_params(users=users, start=last - timedelta(days=days - 1))
    simulator.seed(cfg, days)
    build.build(last)
    sel = params("serving").get("selection", {})
    k, cap = int(sel.get("k", 10)), int(sel.get("max_per_category", 3))
    parts = []
    for chunk in candidates.iter_candidate_chunks(last):
        scored = chunk.assign(score=-((chunk["article_id"] * 2654435761) % 1000).astype(float))
        parts.append(selection.select_top(scored, k=k, max_per_category=cap))
    if not parts:
        from pipelines.core.errors import NewsrecError

        raise NewsrecError("the simulated world produced no candidates; nothing to publish")
    top = pd.concat(parts, ignore_index=True)
    return publish.publish_batch(last, "bench-no-model", top, selection.fallback_lists(last, k=k))


def ensure_world(users: int, world: str = "auto") -> World:
    """The live batch to read. ``auto``: the live batch if there is one, else (only when the
    warehouse is empty) a new world of ``users``; ``seed``: always a new world (this
    REPLACES the warehouse of the current database)."""
    from pipelines.core.errors import NewsrecError
    from pipelines.warehouse.migrations import migrate

    if world not in WORLDS:
        raise NewsrecError(f"--world must be one of {', '.join(WORLDS)}")
    migrate()
    live = _live_batch()
    built, took = False, None
    if world == "seed" or live is None:
        if world == "auto" and _query("SELECT EXISTS (SELECT 1 FROM warehouse.users)")[0][0]:
            raise NewsrecError(
                "no batch is live and the warehouse has data: publish a batch first "
                "(`newsrec run-day`), or pass --world seed to REPLACE the warehouse with a simulated one"
            )
        t0 = time.perf_counter()
        build_world(users)
        took = round(time.perf_counter() - t0, 1)
        built = True
        live = _live_batch()
        if live is None:
            raise NewsrecError("the benchmark's batch did not go live")
    batch_id, version = live
    (n_users,) = _query("SELECT n_users FROM serving.batches WHERE batch_id = %s", (batch_id,))[0]
    return World(batch_id, version, int(n_users or 0), built, took, 0, 0)


def request_paths(batch_id: int, known: int = KNOWN_IDS) -> tuple[list[str], int, int]:
    """Paths to rotate over: ``known`` users of the batch (a fixed pseudo-random sample) with
    one unknown id in ten, half of those asking for a regional fallback list."""
    ids = [
        int(u)
        for (u,) in _query(
            "SELECT user_id FROM serving.recommendations WHERE batch_id = %s AND rank = 1 "
            "ORDER BY md5(user_id::text) LIMIT %s",
            (batch_id, known),
        )
    ]
    (top,) = _query(
        "SELECT greatest((SELECT max(user_id) FROM warehouse.users), "
        "(SELECT max(user_id) FROM serving.recommendations WHERE batch_id = %s), 0)",
        (batch_id,),
    )[0]
    paths: list[str] = []
    unknown = 0
    for i, user in enumerate(ids):
        if i % (UNKNOWN_EVERY - 1) == 0:
            unknown += 1
            fresh = int(top) + 1000 + unknown
            suffix = "?region=NA" if unknown % 2 else ""
            paths.append(ROUTE.format(user_id=fresh) + suffix)
        paths.append(ROUTE.format(user_id=user))
    return paths, len(ids), unknown


# --------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------


def _repo_root() -> Path:
    import pipelines

    return Path(pipelines.__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _server_command(target: str, port: int) -> list[str]:
    if target == "reader":
        return [sys.executable, "-m", "pipelines.cli", "reader", "serve", "--host", HOST, "--port", str(port),
                "--log-level", "warning"]  # fmt: skip
    module = {"bare": "pipelines.bench.reader:app", "bare-model": "pipelines.bench.reader:model_app"}[target]
    return [sys.executable, "-m", "uvicorn", module, "--host", HOST, "--port", str(port),
            "--workers", "1", "--log-level", "warning", "--no-access-log"]  # fmt: skip


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM (uvicorn shuts down gracefully), SIGKILL after 20 s; always reaped."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=20)


@contextlib.contextmanager
def serving(target: str, ready_path: str, headers: dict[str, str], log_dir: Path) -> Iterator[tuple[str, int]]:
    """Start one server, wait until ``ready_path`` answers 200, yield its base URL and pid;
    stop it on the way out, whatever happened."""
    import httpx

    port = _free_port()
    log_path = log_dir / f"{target}-server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            _server_command(target, port), cwd=_repo_root(), env=dict(os.environ),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            base = f"http://{HOST}:{port}"
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the {target} server exited at start:\n{_tail(log_path)}")
                try:
                    r = httpx.get(base + ready_path, headers=headers, timeout=2)
                    if r.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the {target} server did not answer within 60 s:\n{_tail(log_path)}")
                time.sleep(0.2)
            yield base, proc.pid
        finally:
            _stop(proc)


def _cpu_seconds(pids: Sequence[int]) -> float | None:
    """User + system CPU seconds of ``pids`` so far (Linux /proc); None when unreadable."""
    total = 0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    except (OSError, IndexError, ValueError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


def _machine_busy_pct(seconds: float = 1.0) -> float | None:
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


def _reader_db_pids() -> list[int]:
    """Server pids of the reader's database sessions, when the database is on this machine."""
    try:
        pids = [int(p) for (p,) in _query("SELECT pid FROM pg_stat_activity WHERE application_name = 'newsrec-reader'")]
    except Exception:  # best effort: only an extra column of the results
        return []
    return [p for p in pids if Path(f"/proc/{p}/stat").exists()]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def preflight(base: str, paths: Sequence[str], key: str) -> None:
    """Before loading the reader: a personal list and a fallback list answer 200 with items."""
    import httpx

    from pipelines.core.errors import NewsrecError

    unknown = next(p for p in paths if p.endswith("?region=NA"))
    known = next(p for p in paths if "?" not in p)
    for path, fallback in ((known, False), (unknown, True)):
        r = httpx.get(base + path, headers={"X-API-Key": key}, timeout=5)
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        if r.status_code != 200 or not body.get("items") or body.get("fallback") is not fallback:
            raise NewsrecError(f"reader preflight failed on {path}: HTTP {r.status_code} {r.text[:300]}")


# --------------------------------------------------------------------------------------
# Load generators
# --------------------------------------------------------------------------------------

_WRK_SCRIPT = """\
-- Generated by pipelines/bench/reader.py: rotate over the paths, send the API key,
-- print the summary as one JSON line.
local paths = {%(paths)s}
local key = "%(key)s"
local requests_ = {}
local counter = 0
local n_threads = 0

function setup(thread)
  thread:set("offset", n_threads * 7919)
  n_threads = n_threads + 1
end

function init(args)
  for i, path in ipairs(paths) do
    requests_[i] = wrk.format("GET", path, {["X-API-Key"] = key})
  end
  counter = offset or 0
end

function request()
  counter = counter + 1
  return requests_[(counter %% #requests_) + 1]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d, "p50": %%d, "p90": %%d, "p99": %%d, "max": %%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def wrk_script(paths: Sequence[str], key: str) -> str:
    for text in (*paths, key):
        if any(c in text for c in '"\\\n'):
            raise ValueError("paths and keys must not need escaping in Lua")
    return _WRK_SCRIPT % {"paths": ", ".join(f'"{p}"' for p in paths), "key": key}


def run_wrk(target: str, base: str, script: Path, connections: int, seconds: int) -> LoadResult:
    """``wrk -t2 -cN -dS --latency -s script``; the numbers come from the script's done()."""
    threads = min(WRK_THREADS, connections)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", f"--timeout={REQUEST_TIMEOUT_S}s", "--latency",
           "-s", str(script), base + "/"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, stdin=subprocess.DEVNULL)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    s = json.loads(line.removeprefix("WRKJSON "))
    took = s["duration_us"] / 1e6
    n = int(s["requests"])
    return LoadResult(
        target=target,
        connections=connections,
        generator="wrk",
        seconds=round(took, 3),
        requests=n,
        requests_per_s=round(n / took, 1) if took else 0.0,
        p50_ms=s["p50"] / 1000,
        p90_ms=s["p90"] / 1000,
        p99_ms=s["p99"] / 1000,
        max_ms=s["max"] / 1000,
        non_2xx=int(s["status"]),
        socket_errors={k: int(s[k]) for k in ("connect", "read", "write", "timeout")},
        bytes_per_response=round(s["bytes"] / n, 1) if n else 0.0,
    )


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    at = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[at]


async def closed_loop(
    base: str, key: str, paths: Sequence[str], connections: int, seconds: float, on_response: Any
) -> tuple[dict[str, int], float]:
    """``connections`` clients over one httpx client, each sending its next request as soon as
    the last one answered, for ``seconds``. ``on_response(path index, start offset, seconds,
    response)`` records what the caller needs; transport failures are counted here by kind.
    Returns those counts and the seconds the load ran."""
    import httpx

    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-Key": key}, limits=limits, timeout=REQUEST_TIMEOUT_S
    ) as client:
        t0 = time.perf_counter()
        deadline = t0 + seconds

        async def worker(offset: int) -> None:
            i = offset
            while (start := time.perf_counter()) < deadline:
                i += 1
                at = i % len(paths)
                try:
                    r = await client.get(paths[at])
                except httpx.TimeoutException:
                    errors["timeout"] += 1
                    continue
                except httpx.ConnectError:
                    errors["connect"] += 1
                    continue
                except httpx.TransportError:
                    errors["read"] += 1
                    continue
                on_response(at, start - t0, time.perf_counter() - start, r)

        await asyncio.gather(*(worker(w * 7919) for w in range(connections)))
        return errors, time.perf_counter() - t0


async def _python_load(base: str, paths: Sequence[str], key: str, connections: int, seconds: float) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sizes = 0

    def record(at: int, started: float, took: float, r: Any) -> None:
        nonlocal sizes
        latencies.append(took)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        sizes += len(r.content)

    errors, took = await closed_loop(base, key, paths, connections, seconds, record)
    return {"latencies": latencies, "statuses": statuses, "errors": errors, "bytes": sizes, "seconds": took}


def run_python(target: str, base: str, paths: Sequence[str], key: str, connections: int, seconds: int) -> LoadResult:
    """The fallback generator: ``connections`` coroutines over one httpx client, closed loop."""
    raw = asyncio.run(_python_load(base, paths, key, connections, seconds))
    lat = sorted(x * 1000 for x in raw["latencies"])
    n = len(lat)
    return LoadResult(
        target=target,
        connections=connections,
        generator="python",
        seconds=round(raw["seconds"], 3),
        requests=n,
        requests_per_s=round(n / raw["seconds"], 1) if raw["seconds"] else 0.0,
        p50_ms=_percentile(lat, 50),
        p90_ms=_percentile(lat, 90),
        p99_ms=_percentile(lat, 99),
        max_ms=lat[-1] if lat else 0.0,
        non_2xx=sum(c for status, c in raw["statuses"].items() if not 200 <= status < 300),
        socket_errors=raw["errors"],
        bytes_per_response=round(raw["bytes"] / n, 1) if n else 0.0,
    )


def pick_generator(choice: str = "auto") -> str:
    from pipelines.core.errors import NewsrecError

    if choice not in GENERATORS:
        raise NewsrecError(f"--generator must be one of {', '.join(GENERATORS)}")
    has_wrk = shutil.which("wrk") is not None
    if choice == "wrk" and not has_wrk:
        raise NewsrecError("wrk is not installed (Debian: apt-get install wrk)")
    if choice == "auto":
        return "wrk" if has_wrk else "python"
    return choice


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


def run(
    results_dir: Path,
    seconds: int = 15,
    users: int = 20_000,
    connections: Sequence[int] = (4, 32),
    warmup: float = 2.0,
    generator: str = "auto",
    world: str = "auto",
    say: Any = print,
) -> ReaderBenchmark:
    """Measure the reader and the bare app at each concurrency; write reader.json and reader.md."""
    from pipelines.core.errors import NewsrecError
    from pipelines.reader.keys import create_key, revoke_key

    if not 1 <= seconds <= 600:
        raise NewsrecError("--seconds must be within 1..600")
    if not connections or any(not 1 <= n <= 1024 for n in connections):
        raise NewsrecError("--connections must be within 1..1024")
    gen = pick_generator(generator)
    say(f"load generator: {gen}" + ("" if gen == "wrk" else " (wrk not found; apt-get install wrk)"))
    w = ensure_world(users, world)
    if w.built:
        say(f"built a world of {users:,} users and published batch {w.batch_id} in {w.build_seconds} s")
    paths, w.known_ids, w.unknown_ids = request_paths(w.batch_id)
    if not w.known_ids:
        raise NewsrecError(f"the live batch {w.batch_id} has no personal lists to read")
    bench = ReaderBenchmark(gen, seconds, warmup, w)
    key_id, key = create_key(f"bench-reader {datetime.now(UTC):%Y-%m-%d %H:%M:%S}")
    scratch = Path(tempfile.mkdtemp(prefix="bench-reader-"))
    try:
        script = scratch / "rotate.lua"
        script.write_text(wrk_script(paths, key))
        script.chmod(0o600)

        def load(target: str, base: str, n: int, secs: float) -> LoadResult:
            if gen == "wrk":
                return run_wrk(target, base, script, n, max(1, round(secs)))
            return run_python(target, base, paths, key, n, max(1, round(secs)))

        for target in TARGETS:
            ready = "/v1/health" if target == "reader" else ROUTE.format(user_id=1)
            with serving(target, ready, {}, scratch) as (base, pid):
                if target == "reader":
                    preflight(base, paths, key)
                for n in connections:
                    background = _machine_busy_pct()
                    if warmup > 0:
                        load(target, base, n, warmup)
                    db_pids = _reader_db_pids() if target == "reader" else []
                    cpu0, db0 = _cpu_seconds([pid]), _cpu_seconds(db_pids)
                    result = load(target, base, n, seconds)
                    cpu1, db1 = _cpu_seconds([pid]), _cpu_seconds(db_pids)
                    result.background_cpu_pct = background
                    if result.requests and cpu0 is not None and cpu1 is not None:
                        result.server_cpu_ms = round(1000 * (cpu1 - cpu0) / result.requests, 3)
                    if result.requests and db_pids and db0 is not None and db1 is not None:
                        result.db_cpu_ms = round(1000 * (db1 - db0) / result.requests, 3)
                    say(
                        f"{target:>6} c={n:<3} {result.requests_per_s:>8,.0f} req/s  p50 {result.p50_ms:.2f} ms  "
                        f"p99 {result.p99_ms:.2f} ms  errors {result.errors}  "
                        f"server CPU {_ms(result.server_cpu_ms)}/req  background {_pct(background)}"
                    )
                    bench.cases.append(result)
    finally:
        with contextlib.suppress(Exception):
            revoke_key(key_id)
        shutil.rmtree(scratch, ignore_errors=True)

    results_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        **bench.to_dict(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "wrk": _wrk_version() if gen == "wrk" else None,
        },
    }
    (results_dir / "reader.json").write_text(json.dumps(payload, indent=2) + "\n")
    (results_dir / "reader.md").write_text(bench.render() + "\n")
    return bench


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} ms"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _wrk_version() -> str | None:
    try:
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.split(" [", 1)[0].removeprefix("wrk ").strip() or None
