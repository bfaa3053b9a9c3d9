"""Local vs a Dask cluster, stage by stage: what scaling out costs on one machine.

:func:`compare` runs each stage of one date in-process, then on a Dask cluster (a
``LocalCluster`` of ``workers`` processes started here, or ``address``), and returns the wall
time of each. On one machine the cluster can only add overhead (task shipping, pickling,
network training); the ratio is what a team pays per stage to be able to grow past one
machine. Stages are plain callables of the Dask address (None: in-process), so more stages
(scoring) join by adding an entry to :data:`STAGES`.

What each stage does, the same on both sides:
- ``features``: ``build(day, refresh_window=True)`` -- the whole 28-day window recomputed and
  the day republished (same content: the run replaces the day as a re-run would);
- ``train``: one fit of the ranker with params.yaml's parameters on the day's splits (the
  plain objective on both sides, since the Dask path cannot train the debiased one), nothing
  registered; loading the splits is not timed;
- ``score``: batch scoring of every active user with the champion (:func:`pipelines.serving.batch.score`,
  nothing published): one partition in-process, ``partitions_per_worker`` x workers on the
  cluster. The details carry a digest of the lists, so the table also shows both sides
  ranked the same articles.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any


def _features(day: date, address: str | None, options: dict[str, Any]) -> dict[str, Any]:
    from pipelines.core import cluster
    from pipelines.features.build import build

    with cluster.using(address):
        result = build(day, refresh_window=True)
    return {"events_read": result.events_read, "rows": sum(result.rows.values())}


_SPLITS: dict[tuple[date, int | None], Any] = {}


def _train(day: date, address: str | None, options: dict[str, Any]) -> dict[str, Any]:
    from pipelines.core import cluster
    from pipelines.model import evaluate, ranker
    from pipelines.model.dataset import load_splits

    key = (day, options.get("train_days"))
    splits = _SPLITS.get(key) or _SPLITS.setdefault(key, load_splits(day, options.get("train_days")))
    t0 = time.perf_counter()
    with cluster.client_for_stage("bench train", address) as client:
        if address and client is None:  # pragma: no cover - connect() raises instead
            raise RuntimeError(address)
        # early stopping on the logged metric, as cluster.md was measured (this bench times the engines)
        booster = ranker.fit(splits.train, splits.valid, splits.spec, None, "plain", client=client, metric=None)
    seconds = time.perf_counter() - t0
    ndcg = evaluate.evaluate(splits.test, booster.predict(splits.test.X))["overall"]["model"]["ndcg@10"]
    return {"seconds": seconds, "train_rows": len(splits.train.y), "ndcg@10": ndcg, "trees": booster.best_iteration}


def _score(day: date, address: str | None, options: dict[str, Any]) -> dict[str, Any]:
    import hashlib

    import numpy as np

    from pipelines.serving import batch

    result = batch.score(day, dask_address=address)
    lists = result.recommendations.sort_values(["user_id", "rank"])
    digest = hashlib.sha1(lists[["user_id", "rank", "article_id"]].to_numpy(np.int64).tobytes()).hexdigest()[:12]
    return {
        "users": result.users,
        "candidates": result.candidates,
        "partitions": result.partitions,
        "predict_s": round(result.predict_seconds, 1),
        "lists_digest": digest,
    }


# name -> stage(day, dask_address or None, options) -> details (a "seconds" entry overrides the wall time)
Stage = Callable[[date, str | None, dict[str, Any]], dict[str, Any]]
STAGES: dict[str, Stage] = {"features": _features, "train": _train, "score": _score}


@dataclass
class StageTiming:
    stage: str
    local_s: float
    dask_s: float
    local: dict[str, Any] = field(default_factory=dict)
    dask: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.dask_s / self.local_s if self.local_s else float("nan")


@dataclass
class ClusterComparison:
    day: date
    workers: int
    threads: int
    address: str
    stages: list[StageTiming]

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "workers": self.workers,
            "threads_per_worker": self.threads,
            "address": self.address,
            "stages": {
                s.stage: {"local_s": round(s.local_s, 2), "dask_s": round(s.dask_s, 2), "ratio": round(s.ratio, 2),
                          "local": s.local, "dask": s.dask}
                for s in self.stages
            },
        }  # fmt: skip

    def render(self) -> str:
        lines = [
            f"# Local vs Dask ({self.workers} workers x {self.threads} thread(s)), {self.day}",
            "",
            "| stage | local s | Dask s | Dask / local |",
            "|---|---:|---:|---:|",
        ]
        lines += [f"| {s.stage} | {s.local_s:.1f} | {s.dask_s:.1f} | {s.ratio:.2f}x |" for s in self.stages]
        lines += ["", "Details (local | Dask):", ""]
        lines += [f"- {s.stage}: {_details(s.local)} | {_details(s.dask)}" for s in self.stages]
        return "\n".join(lines)

    def write(self, folder: Path) -> list[Path]:
        """cluster.json and cluster.md in ``folder``."""
        import json

        folder.mkdir(parents=True, exist_ok=True)
        out = [folder / "cluster.json", folder / "cluster.md"]
        out[0].write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        out[1].write_text(self.render() + "\n")
        return out


def _details(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in d.items())


def compare(
    day: date,
    workers: int = 2,
    threads: int = 1,
    address: str | None = None,
    stages: list[str] | None = None,
    train_days: int | None = None,
) -> ClusterComparison:
    """Run ``stages`` (default: all of :data:`STAGES`) for ``day`` in-process, then on the
    cluster at ``address`` (default: a LocalCluster of ``workers`` processes started and
    stopped here); returns the wall time of each side. ``train_days`` as in ``newsrec train``."""
    options = {"train_days": train_days}
    names = list(stages or STAGES)
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        from pipelines.core.errors import NewsrecError

        raise NewsrecError(f"unknown stage(s) {', '.join(unknown)} (one of {', '.join(STAGES)})")
    local = {name: _timed(STAGES[name], day, None, options) for name in names}
    cluster_cm = None
    if address is None:
        from distributed import LocalCluster

        cluster_cm = LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=":0")
        address = cluster_cm.scheduler_address
    try:
        on_dask = {name: _timed(STAGES[name], day, address, options) for name in names}
    finally:
        if cluster_cm is not None:
            cluster_cm.close()
    timings = [StageTiming(n, local[n][0], on_dask[n][0], local[n][1], on_dask[n][1]) for n in names]
    return ClusterComparison(day, workers, threads, address, timings)


def _timed(stage: Stage, day: date, address: str | None, options: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    details = stage(day, address, options)
    return float(details.pop("seconds", time.perf_counter() - t0)), details
