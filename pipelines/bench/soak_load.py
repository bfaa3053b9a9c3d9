"""The soak's load: the request paths (sampled users and unknown ids), the closed-loop
clients, and the check of every answer against the list its batch holds."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.bench import load_generators, servers, soak_report, soak_world

SAMPLE_USERS = 2_000  # users with a personal list the clients rotate over
UNKNOWN_USERS = 200  # ids without one (fallback lists: half NA, half GLOBAL)


@dataclass
class Target:
    path: str
    expect: str  # key into Batches.expected: u<user> or r<region>
    fallback: bool


def targets(batches: soak_world.Batches, k: int) -> list[Target]:
    import numpy as np

    rng = np.random.default_rng(soak_world.SEED)
    sample = rng.choice(batches.users, min(SAMPLE_USERS, len(batches.users)), replace=False)
    top = int(batches.users.max())
    out = [Target(servers.ROUTE.format(user_id=int(u)) + f"?limit={k}", f"u{int(u)}", False) for u in sample]
    for i in range(UNKNOWN_USERS):
        region = "NA" if i % 2 else "GLOBAL"
        suffix = "&region=NA" if region == "NA" else ""
        out.insert(i * len(out) // UNKNOWN_USERS, Target(
            servers.ROUTE.format(user_id=top + 1000 + i) + f"?limit={k}{suffix}", f"r{region}", True))  # fmt: skip
    return out


async def load(base: str, key: str, plan: Sequence[Target], connections: int, seconds: float, k: int) -> dict:
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

    errors, took = await load_generators.closed_loop(base, key, [t.path for t in plan], connections, seconds, record)
    errors.setdefault("other", 0)
    return {"outcomes": outcomes, "statuses": statuses, "errors": errors, "latencies": latencies, "seconds": took}


def verify(
    soak: soak_report.Soak, raw: dict, plan: Sequence[Target], expected: dict[int, dict[str, tuple[int, ...]]]
) -> None:
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
