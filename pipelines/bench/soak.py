"""Reader soak: the real reader under a bounded closed-loop load while batches go live.

``newsrec bench soak`` (``make soak``) runs ``newsrec reader serve`` on 127.0.0.1 and keeps
``connections`` clients asking for recommendation lists for ``seconds``, while publish
switches (``publish_batch``) and one rollback move the live pointer. Every response is
checked: HTTP 200, and the items are exactly the list that the batch named in the response
holds for that user (personal) or region (fallback), with k items: a list from one batch,
complete. Any other answer, any socket error or timeout counts as an error; the run passes
with zero errors and with every switched-to batch seen by the clients.

It works in its own database, ``<main>_soak`` on the same server by default, with a small
simulated warehouse and batches of deterministic random lists (no model: the soak is about
serving, not ranking), so it never touches the live batch of the project's database.
Results: ``soak.json`` and ``soak.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.bench.reader import ROUTE, _machine_busy_pct, closed_loop, serving

SEED = 20_261_125
ARTICLE_POOL = 120  # articles a batch draws each user's list from
SAMPLE_USERS = 2_000  # users with a personal list the clients rotate over
UNKNOWN_USERS = 200  # ids without one (fallback lists: half NA, half GLOBAL)
SEED_DAYS = 2


@dataclass
class Switch:
    kind: str  # publish | rollback
    batch_id: int | None = None  # the batch that went live
    at_s: float | None = None  # when the switch started, seconds into the load
    took_s: float | None = None
    error: str | None = None


@dataclass
class Soak:
    seconds: float
    connections: int
    users: int
    k: int
    batches: dict[int, str] = field(default_factory=dict)  # batch id -> model version
    switches: list[Switch] = field(default_factory=list)
    requests: int = 0
    ok: int = 0
    non_2xx: dict[str, int] = field(default_factory=dict)
    socket_errors: dict[str, int] = field(default_factory=dict)
    mismatches: int = 0
    mismatch_examples: list[str] = field(default_factory=list)
    responses_by_batch: dict[int, int] = field(default_factory=dict)
    requests_per_s: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    max_ms_during_switches: float = 0.0
    final_live_batch: int | None = None
    expected_live_batch: int | None = None
    # Share of all cores busy just before the load, with the reader idle: other work on the
    # machine competes with the reader, the database and the clients (2 cores here).
    background_cpu_pct: float | None = None
    timeline: list[dict[str, float]] = field(default_factory=list)  # per second: requests, max latency

    @property
    def errors(self) -> int:
        return sum(self.non_2xx.values()) + sum(self.socket_errors.values()) + self.mismatches

    def checks(self) -> list[dict[str, Any]]:
        switched_to = [s.batch_id for s in self.switches if s.batch_id is not None]
        unseen = [b for b in switched_to if not self.responses_by_batch.get(b)]
        failed = [s.kind for s in self.switches if s.error]
        return [
            {"check": "zero errors (non-2xx, socket errors, timeouts, wrong lists)", "value": self.errors,
             "met": self.errors == 0},
            {"check": f"every response a complete list of k={self.k} from the one batch it names",
             "value": f"{self.ok:,} of {self.requests:,}", "met": self.requests > 0 and self.ok == self.requests},
            {"check": "every switch succeeded", "value": len(self.switches) - len(failed),
             "met": bool(self.switches) and not failed},
            {"check": "clients read every batch switched to", "value": f"{len(switched_to) - len(unseen)} of "
             f"{len(switched_to)}", "met": bool(switched_to) and not unseen},
            {"check": "the live batch at the end is the last one switched to", "value": self.final_live_batch,
             "met": self.final_live_batch is not None and self.final_live_batch == self.expected_live_batch},
        ]  # fmt: skip

    @property
    def passed(self) -> bool:
        return all(c["met"] for c in self.checks())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["batches"] = {str(b): v for b, v in self.batches.items()}
        data["responses_by_batch"] = {str(b): n for b, n in self.responses_by_batch.items()}
        return {**data, "errors": self.errors, "passed": self.passed, "checks": self.checks()}

    def render(self) -> str:
        lines = [
            "# Reader soak: load during publish switches",
            "",
            f"{self.connections} connections for {self.seconds:g} s (closed loop, Python asyncio + httpx), "
            f"127.0.0.1, `newsrec reader serve` (1 uvicorn worker); {self.users:,} users, k = {self.k}; "
            f"every response checked against the list its batch holds.",
            "",
            f"**{'PASSED' if self.passed else 'FAILED'}**: {self.requests:,} requests, {self.errors} errors, "
            f"{self.requests_per_s:,.0f} req/s; latency p50 {self.p50_ms:.1f} ms, p90 {self.p90_ms:.1f} ms, "
            f"p99 {self.p99_ms:.1f} ms, max {self.max_ms:.1f} ms (max while a switch ran: "
            f"{self.max_ms_during_switches:.1f} ms).",
            "",
            "| switch | at s | took s | live batch after | responses from it | error |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for s in self.switches:
            at = "-" if s.at_s is None else f"{s.at_s:.1f}"
            took = "-" if s.took_s is None else f"{s.took_s:.2f}"
            seen = self.responses_by_batch.get(s.batch_id, 0) if s.batch_id is not None else 0
            lines.append(f"| {s.kind} | {at} | {took} | {s.batch_id or '-'} | {seen:,} | {s.error or ''} |")
        lines += ["", "| batch | model version | responses |", "|---:|---|---:|"]
        for batch_id, version in sorted(self.batches.items()):
            lines.append(f"| {batch_id} | {version} | {self.responses_by_batch.get(batch_id, 0):,} |")
        lines += ["", "| check | measured | met |", "|---|---:|:---:|"]
        for c in self.checks():
            lines.append(f"| {c['check']} | {c['value']} | {'yes' if c['met'] else '**no**'} |")
        if self.non_2xx or any(self.socket_errors.values()):
            lines += ["", f"non-2xx: {self.non_2xx}; socket errors: {self.socket_errors}"]
        if self.background_cpu_pct is not None:
            lines += ["", f"Background CPU before the load (reader idle): {self.background_cpu_pct:.0f}% of all cores"
                      + (": other work shared the machine; latencies and req/s are not this stack's own."
                         if self.background_cpu_pct > 10 else ".")]  # fmt: skip
        lines += ["", "Publishes and the rollback each run in their own process, as a nightly run would."]
        if self.mismatch_examples:
            lines += ["", "Wrong lists (first few):", *[f"- {m}" for m in self.mismatch_examples]]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# The soak's database and batches
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def own_database(name: str | None) -> Iterator[str]:
    """Point this process (and the reader it starts) at database ``name`` on the same server
    (``{main}`` is the project's database), created and migrated if needed. ``None``: the
    current database."""
    from pipelines.core import db
    from pipelines.core.config import reset_caches
    from pipelines.warehouse.migrations import migrate

    if name is None:
        migrate()
        yield db.database_url()
        return
    target = name.replace("{main}", db.main_database_name())
    if not target.replace("_", "").isalnum():
        from pipelines.core.errors import NewsrecError

        raise NewsrecError(f"--database must be letters, digits and underscores, got {name!r}")
    url = db.database_url(target)
    before = os.environ.get("NEWSREC_DATABASE_URL")
    os.environ["NEWSREC_DATABASE_URL"] = url
    reset_caches()
    try:
        migrate()
        yield url
    finally:
        if before is None:
            os.environ.pop("NEWSREC_DATABASE_URL", None)
        else:
            os.environ["NEWSREC_DATABASE_URL"] = before
        reset_caches()


def _query(sql: str, args: tuple = ()) -> list[tuple]:
    from pipelines.core import db

    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else []


class Batches:
    """Deterministic batches over the warehouse's users: batch ``salt`` gives each user k
    distinct unflagged articles drawn from a pool of recent ones, and every region (and
    GLOBAL) a fallback list; different salts give different lists."""

    def __init__(self, k: int) -> None:
        import numpy as np

        self.k = k
        self.users = np.array([u for (u,) in _query("SELECT user_id FROM warehouse.users ORDER BY 1")])
        self.articles = np.array(
            [
                a
                for (a,) in _query(
                    "SELECT a.article_id FROM warehouse.articles a JOIN warehouse.publications p USING "
                    "(publication_id) WHERE NOT p.misinformation_flag ORDER BY a.published_at DESC, 1 LIMIT %s",
                    (ARTICLE_POOL * 4,),
                )
            ]
        )
        if len(self.users) == 0 or len(self.articles) < 2 * k:
            from pipelines.core.errors import NewsrecError

            raise NewsrecError(f"the soak needs users and at least {2 * k} unflagged articles in the warehouse")

    def frames(self, salt: int) -> tuple[Any, Any]:
        import numpy as np
        import pandas as pd

        from pipelines.warehouse.simulator import REGIONS

        rng = np.random.default_rng([SEED, salt])
        pool = rng.permutation(self.articles)[: min(ARTICLE_POOL, len(self.articles))]
        picks = np.argsort(rng.random((len(self.users), len(pool))), axis=1)[:, : self.k]
        n = len(self.users)
        recs = pd.DataFrame(
            {
                "user_id": np.repeat(self.users, self.k),
                "rank": np.tile(np.arange(1, self.k + 1), n),
                "article_id": pool[picks].ravel(),
                "score": np.tile(np.linspace(1.0, 0.1, self.k), n),
                "reason": f"Soak batch {salt}",
            }
        )
        fallback = pd.DataFrame(
            [
                (region, rank + 1, int(article), 1.0 / (rank + 1), f"Popular in {region}")
                for region in (*REGIONS, "GLOBAL")
                for rank, article in enumerate(rng.choice(pool, self.k, replace=False))
            ],
            columns=["region", "rank", "article_id", "score", "reason"],
        )
        return recs, fallback

    @staticmethod
    def expected(recs: Any, fallback: Any, users: Sequence[int]) -> dict[str, tuple[int, ...]]:
        """What a client must get from this batch: per sampled user, and per fallback region."""
        mine = recs[recs["user_id"].isin(users)].sort_values(["user_id", "rank"])
        out = {f"u{u}": tuple(int(a) for a in g["article_id"]) for u, g in mine.groupby("user_id")}
        for region, g in fallback.sort_values(["region", "rank"]).groupby("region"):
            out[f"r{region}"] = tuple(int(a) for a in g["article_id"])
        return out


def ensure_warehouse(users: int, world: str) -> bool:
    """A simulated warehouse of ``users`` in the soak's database, unless one is there
    (``world='seed'``: always a new one). True when it was built now."""
    from pipelines.warehouse import simulator

    if world == "auto" and _query("SELECT EXISTS (SELECT 1 FROM warehouse.users)")[0][0]:
        return False
    start = date.today() - timedelta(days=SEED_DAYS)
    cfg = simulator.SimConfig.from_params(users=users, articles_per_day=max(200, ARTICLE_POOL * 2), start=start)
    simulator.seed(cfg, SEED_DAYS)
    return True


# --------------------------------------------------------------------------------------
# The load: closed loop, every body checked
# --------------------------------------------------------------------------------------


@dataclass
class Target:
    path: str
    expect: str  # key into Batches.expected: u<user> or r<region>
    fallback: bool


def targets(batches: Batches, k: int) -> list[Target]:
    import numpy as np

    rng = np.random.default_rng(SEED)
    sample = rng.choice(batches.users, min(SAMPLE_USERS, len(batches.users)), replace=False)
    top = int(batches.users.max())
    out = [Target(ROUTE.format(user_id=int(u)) + f"?limit={k}", f"u{int(u)}", False) for u in sample]
    for i in range(UNKNOWN_USERS):
        region = "NA" if i % 2 else "GLOBAL"
        suffix = "&region=NA" if region == "NA" else ""
        out.insert(i * len(out) // UNKNOWN_USERS, Target(
            ROUTE.format(user_id=top + 1000 + i) + f"?limit={k}{suffix}", f"r{region}", True))  # fmt: skip
    return out


async def _load(base: str, key: str, plan: Sequence[Target], connections: int, seconds: float, k: int) -> dict:
    outcomes: Counter = Counter()  # (target index, batch id, version, fallback, n items, ranks ok, items)
    statuses: Counter = Counter()
    latencies: list[tuple[float, float]] = []  # (start, seconds)

    def record(at: int, started: float, took: float, r: Any) -> None:
        latencies.append((started, took))
        if r.status_code != 200:
            statuses[str(r.status_code)] += 1
            return
        try:
            data = json.loads(r.content)
            items = data["items"]
            outcome = (at, data["batch_id"], data["model_version"], data["fallback"], len(items),
                       [it["rank"] for it in items] == list(range(1, len(items) + 1)),
                       tuple(it["article_id"] for it in items))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            outcome = (at, None, None, None, 0, False, ())
        outcomes[outcome] += 1

    errors, took = await closed_loop(base, key, [t.path for t in plan], connections, seconds, record)
    errors.setdefault("other", 0)
    return {"outcomes": outcomes, "statuses": statuses, "errors": errors, "latencies": latencies, "seconds": took}


def _verify(soak: Soak, raw: dict, plan: Sequence[Target], expected: dict[int, dict[str, tuple[int, ...]]]) -> None:
    """Every distinct answer against the list its batch holds for that user or region."""
    by_batch: Counter = Counter()
    for (at, batch_id, version, fallback, n, ranks_ok, items), count in raw["outcomes"].items():
        soak.requests += count
        target = plan[at]
        problem = None
        if batch_id not in expected:
            problem = f"batch {batch_id} was never published by this soak"
        elif version != soak.batches[batch_id]:
            problem = f"batch {batch_id} answered with model version {version!r}"
        elif fallback is not target.fallback:
            problem = f"fallback={fallback}"
        elif n != soak.k or not ranks_ok:
            problem = f"{n} items (expected {soak.k}), ranks in order: {ranks_ok}"
        elif items != expected[batch_id][target.expect]:
            problem = f"items {list(items)} are not batch {batch_id}'s list {list(expected[batch_id][target.expect])}"
        if problem is None:
            soak.ok += count
            by_batch[batch_id] += count
        else:
            soak.mismatches += count
            if len(soak.mismatch_examples) < 5:
                soak.mismatch_examples.append(f"{target.path} x{count}: {problem}")
    soak.requests += sum(raw["statuses"].values())
    soak.non_2xx = dict(raw["statuses"])
    soak.socket_errors = dict(raw["errors"])
    soak.responses_by_batch = dict(sorted(by_batch.items()))


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))]


def switch_in_child(kind: str, day: date, salt: int | None, keep: int) -> int:
    """Publish batch ``salt`` (or roll back) in a new process; the batch that went live."""
    cmd = [sys.executable, "-m", "pipelines.bench.soak", kind, day.isoformat(), str(salt or 0), str(keep)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("LIVE ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{kind} failed ({proc.returncode}): {(proc.stderr.strip() or proc.stdout)[-300:]}")
    return int(line.split()[1])


def _child(kind: str, day: str, salt: str, keep: str) -> None:
    from pipelines.core.config import params
    from pipelines.serving import publish

    if kind == "rollback":
        print(f"LIVE {publish.rollback()}")
        return
    k = int(params("serving").get("selection", {}).get("k", 10))
    batch = publish.publish_batch(
        date.fromisoformat(day), f"soak-{salt}", *Batches(k).frames(int(salt)), keep=int(keep)
    )
    print(f"LIVE {batch}")


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


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
) -> Soak:
    """Load the reader for ``seconds`` with ``connections`` clients while ``switches``
    publishes (then one rollback) move the live batch, spread evenly over the run; check
    every response; write soak.json and soak.md. Returns the result (``passed`` tells)."""
    from pipelines.core.config import params
    from pipelines.core.errors import NewsrecError
    from pipelines.reader.keys import create_key, revoke_key
    from pipelines.serving import publish

    if not 1 <= seconds <= 3600:
        raise NewsrecError("--seconds must be within 1..3600")
    if not 1 <= connections <= 1024:
        raise NewsrecError("--connections must be within 1..1024")
    if not 1 <= switches <= 50:
        raise NewsrecError("--switches must be within 1..50")
    if world not in ("auto", "seed"):
        raise NewsrecError("--world must be auto or seed")
    k = int(params("serving").get("selection", {}).get("k", 10))
    keep = max(3, int(params("serving").get("publish", {}).get("keep_batches", 3)))
    soak = Soak(seconds=seconds, connections=connections, users=users, k=k)

    with own_database(database):
        if ensure_warehouse(users, world):
            say(f"seeded a warehouse of {users:,} users in the soak's database")
        batches = Batches(k)
        soak.users = len(batches.users)
        plan = targets(batches, k)
        sampled = [int(t.expect[1:]) for t in plan if not t.fallback]
        expected: dict[int, dict[str, tuple[int, ...]]] = {}
        day = date.today() - timedelta(days=1)
        # Salts continue across runs on the same database: every batch differs from the last.
        base_salt = int(_query("SELECT count(*) FROM serving.batches")[0][0])
        salts = iter(range(base_salt + 1, base_salt + switches + 2))
        # What each batch will hold for the sampled users, computed before the load starts.
        want = {
            salt: Batches.expected(*batches.frames(salt), sampled)
            for salt in range(base_salt + 1, base_salt + switches + 2)
        }
        salt = next(salts)
        first = publish.publish_batch(day, f"soak-{salt}", *batches.frames(salt), keep=keep)
        expected[first], soak.batches[first] = want[salt], f"soak-{salt}"
        say(f"batch {first} live ({soak.users:,} users); {len(plan):,} request paths")
        events = ["publish"] * switches + (["rollback"] if rollback else [])
        key_id, key = create_key(f"bench-soak {datetime.now(UTC):%Y-%m-%d %H:%M:%S}")
        scratch = Path(tempfile.mkdtemp(prefix="bench-soak-"))
        try:
            with serving("reader", "/v1/health", {}, scratch) as (base, _pid):
                soak.background_cpu_pct = _machine_busy_pct()
                t0 = time.perf_counter()

                def switcher() -> None:
                    for n, kind in enumerate(events, start=1):
                        time.sleep(max(0.0, t0 + seconds * n / (len(events) + 1) - time.perf_counter()))
                        s = Switch(kind, at_s=round(time.perf_counter() - t0, 2))
                        salt = next(salts) if kind == "publish" else None
                        try:
                            s.batch_id = switch_in_child(kind, day, salt, keep)
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
                raw = asyncio.run(_load(base, key, plan, connections, seconds, k))
                thread.join(timeout=300)
                if thread.is_alive():
                    raise NewsrecError("a publish switch did not finish within 5 minutes of the load")
        finally:
            with contextlib.suppress(Exception):
                revoke_key(key_id)
            shutil.rmtree(scratch, ignore_errors=True)
        (live,) = _query("SELECT batch_id FROM serving.live")[0]
        soak.final_live_batch = live
        last = soak.switches[-1] if soak.switches else None
        soak.expected_live_batch = last.batch_id if last else first

    _verify(soak, raw, plan, expected)
    lat = sorted(s * 1000 for _, s in raw["latencies"])
    soak.requests_per_s = round(len(lat) / raw["seconds"], 1) if raw["seconds"] else 0.0
    soak.p50_ms, soak.p90_ms, soak.p99_ms = (round(_percentile(lat, q), 2) for q in (50, 90, 99))
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
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    (results_dir / "soak.json").write_text(json.dumps(payload, indent=2) + "\n")
    (results_dir / "soak.md").write_text(soak.render() + "\n")
    return soak


if __name__ == "__main__":  # one switch, run by switch_in_child
    _child(*sys.argv[1:5])
