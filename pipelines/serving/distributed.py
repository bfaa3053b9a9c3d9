"""Batch scoring on a Dask cluster: partitions of users go to the workers, each scored by
:func:`pipelines.serving.scoring.score_partition` exactly as in-process."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from pipelines.core.cluster import check_workers, connect
from pipelines.core.config import params
from pipelines.core.errors import NewsrecError
from pipelines.serving.scoring import ArmScorer, PartitionResult, score_partition


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
