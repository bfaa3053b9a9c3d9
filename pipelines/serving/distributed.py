"""Batch scoring on several processes of this machine or on a Dask cluster: partitions of users
go to the processes or the workers, each scored by
:func:`pipelines.serving.scoring.score_partition` exactly as in one process."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from pipelines.core.cluster import check_workers, connect
from pipelines.core.config import params
from pipelines.core.errors import NewsrecError
from pipelines.serving.scoring import ArmScorer, PartitionResult, score_partition


def local_processes(day: date) -> int:
    """Processes that score partitions of the users of ``day`` here when no Dask address is
    set: ``scoring.processes`` (0: one per core), or one below ``scoring.processes_min_users``
    users (a fresh process costs seconds of imports and loading, more than a small day's scoring)."""
    import os

    from pipelines.features import partitions

    cfg = params("scoring")
    n = int(cfg.get("processes", 0))
    if n < 0:
        raise NewsrecError(f"scoring.processes must be 0 (one per core) or more, not {n}")
    n = n or os.cpu_count() or 1
    if n > 1:
        users = int(partitions.require_day(day).get("rows", {}).get("user_activity", 0))
        if users < int(cfg.get("processes_min_users", 50_000)):
            return 1
    return n


def score_in_processes(
    day: date, arms: list[ArmScorer], plan: Any, chunk_users: int | None, engine: str | None, processes: int
) -> list[PartitionResult]:
    """Score ``processes`` partitions of the users in as many fresh processes (spawned: nothing
    of this process's threads or connections is inherited), each predicting on its share of
    the threads. A partition that fails stops the run with one line; nothing is published."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    from pipelines.serving import predictor

    results: list[PartitionResult] = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context, initializer=predictor.share_cores,
                             initargs=(processes,)) as pool:  # fmt: skip
        futures = [pool.submit(score_partition, day, arms, plan, i, processes, chunk_users, engine, False)
                   for i in range(processes)]  # fmt: skip
        with tqdm(total=processes, desc="scoring", unit="partition", disable=None) as bar:
            try:
                for future in as_completed(futures):
                    results.append(future.result())
                    bar.update(1)
            except Exception as exc:
                for f in futures:
                    f.cancel()
                raise NewsrecError(
                    f"scoring in {processes} processes failed, nothing published: {type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}"
                ) from exc
    return results


def score_on_dask(
    address: str, day: date, arms: list[ArmScorer], plan: Any, chunk_users: int | None, engine: str | None
) -> list[PartitionResult]:
    """Score the partitions on the cluster. A worker lost mid-partition makes Dask run that
    partition again elsewhere (up to ``distributed.scheduler.allowed-failures``); past that
    the run stops with one line and nothing is published."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    client = connect(address)
    try:
        check_workers(client)
        workers = len(client.scheduler_info().get("workers", {}))
        per_worker = int(params("scoring").get("dask", {}).get("partitions_per_worker", 2))
        parts = max(1, workers * per_worker)
        futures = [
            client.submit(
                score_partition,
                day,
                arms,
                plan,
                i,
                parts,
                chunk_users,
                engine,
                pure=False,
                key=f"score-{day}-{i}-{parts}-{time.time_ns()}",
            )
            for i in range(parts)
        ]
        results: list[PartitionResult] = []
        with tqdm(total=parts, desc=f"scoring on {address}", unit="partition", disable=None) as bar:
            try:
                for future in as_completed(futures):
                    results.append(future.result())
                    bar.update(1)
            except Exception as exc:
                for f in futures:
                    f.cancel()
                raise NewsrecError(
                    f"scoring on the Dask cluster at {address} failed, nothing published: "
                    f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                ) from exc
        return results
    finally:
        client.close()
