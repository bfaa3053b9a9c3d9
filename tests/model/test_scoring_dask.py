"""Batch scoring on a real 2-worker Dask cluster (LocalCluster, separate processes): the same
lists as in-process scoring, a worker killed mid-partition is survived (Dask runs the
partition again), and a run that cannot finish publishes nothing."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.core.errors import NewsrecError
from pipelines.serving import batch
from tests.helpers import query, use_database
from tests.model.conftest import DAY

KEYS = ["user_id", "rank"]


@pytest.fixture(scope="module")
def in_world(trained):
    """The environment points at the trained world for this module's fixtures (and the workers)."""
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, trained["url"], trained["home"])
        yield trained


@pytest.fixture(scope="module")
def cluster(in_world):
    """Two worker processes that inherit the trained world's environment."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        with Client(lc) as client:
            yield client


@pytest.fixture(scope="module")
def local_result(in_world):
    return batch.score(DAY)


def _lists(result: batch.ScoreResult) -> pd.DataFrame:
    return result.recommendations.sort_values(KEYS).reset_index(drop=True)


def _assert_same_lists(a: batch.ScoreResult, b: batch.ScoreResult) -> None:
    assert (a.users, a.candidates) == (b.users, b.candidates)
    x, y = _lists(a), _lists(b)
    assert x[KEYS + ["article_id", "reason"]].equals(y[KEYS + ["article_id", "reason"]])
    np.testing.assert_allclose(y["score"], x["score"], rtol=0, atol=1e-6)


def test_cluster_scoring_gives_the_local_lists(world, cluster, local_result):
    on_dask = batch.score(DAY, dask_address=cluster.scheduler.address)
    assert on_dask.partitions == 4 and on_dask.dask_address == cluster.scheduler.address
    assert local_result.partitions == 1 and local_result.users > 300
    _assert_same_lists(local_result, on_dask)
    assert set(on_dask.recommendations["model_version"]) == {on_dask.model_version}


def test_the_cluster_benchmark_times_scoring_on_both_sides(world, cluster, tmp_path):
    from pipelines.bench.cluster import compare

    result = compare(DAY, address=cluster.scheduler.address, stages=["score"])
    (timing,) = result.stages
    assert timing.local_s > 0 and timing.dask_s > 0
    assert (timing.local["partitions"], timing.dask["partitions"]) == (1, 4)
    assert timing.local["lists_digest"] == timing.dask["lists_digest"]  # the same lists on both sides
    assert timing.local["candidates"] == timing.dask["candidates"] > 10_000
    json_path, md_path = result.write(tmp_path)
    assert '"score"' in json_path.read_text() and "| score |" in md_path.read_text()


def _set_fault(client, value: str | None, fault_dir: Path | None = None) -> None:
    def apply(value=value, fault_dir=str(fault_dir)):
        if value is None:
            os.environ.pop("NEWSREC_FAULT", None)
        else:
            os.environ.update(NEWSREC_FAULT=value, NEWSREC_FAULT_DIR=fault_dir)

    client.run(apply)


def _run_killing(client, fault_dir: Path, kills: int, call) -> tuple[list[int], object]:
    """Run ``call`` in a thread while workers pause at the start of a scoring partition; kill
    the first ``kills`` paused workers (SIGKILL, like the OOM killer) and release the others."""
    _set_fault(client, "pause:score_partition", fault_dir)
    marker = fault_dir / "score_partition"
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    killed: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while thread.is_alive() and time.monotonic() < deadline:
            if marker.exists():
                text = marker.read_text().strip()
                if text and len(killed) < kills and int(text) not in killed:
                    killed.append(int(text))
                    os.kill(int(text), signal.SIGKILL)
                marker.unlink(missing_ok=True)
            time.sleep(0.05)
        thread.join(timeout=60)
    finally:
        _set_fault(client, None)
        marker.unlink(missing_ok=True)
    assert not thread.is_alive(), "scoring did not finish"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return killed, outcome.get("value")


def test_a_worker_killed_mid_partition_is_retried(world, cluster, local_result, tmp_path):
    before = set(cluster.scheduler_info()["workers"])
    killed, result = _run_killing(
        cluster, tmp_path, 1, lambda: batch.score(DAY, dask_address=cluster.scheduler.address)
    )
    assert len(killed) == 1
    cluster.wait_for_workers(2, timeout=60)
    assert set(cluster.scheduler_info()["workers"]) != before  # the nanny replaced the dead worker
    _assert_same_lists(local_result, result)


def test_a_partition_that_keeps_failing_publishes_nothing(world, cluster, tmp_path):
    batch.score_and_publish(DAY)  # a live batch to protect
    live_before = query("SELECT batch_id FROM serving.live")[0][0]
    rows_before = query(
        "SELECT count(*), sum(article_id) FROM serving.recommendations WHERE batch_id = %s", (live_before,)
    )
    batches_before = query("SELECT count(*) FROM serving.batches")[0][0]

    def allow(n: int):
        def apply(dask_scheduler, n=n):
            previous = dask_scheduler.allowed_failures
            dask_scheduler.allowed_failures = n
            return previous

        return cluster.run_on_scheduler(apply)

    previous = allow(0)  # the first lost worker fails its partition for good
    try:
        with pytest.raises(NewsrecError, match=r"scoring on the Dask cluster at .* failed, nothing published") as err:
            _run_killing(
                cluster,
                tmp_path,
                1,
                lambda: batch.score_and_publish(DAY, dask_address=cluster.scheduler.address),
            )
    finally:
        allow(previous)
    assert "\n" not in str(err.value)
    assert query("SELECT batch_id FROM serving.live")[0][0] == live_before
    assert (
        query("SELECT count(*), sum(article_id) FROM serving.recommendations WHERE batch_id = %s", (live_before,))
        == rows_before
    )
    assert query("SELECT count(*) FROM serving.batches")[0][0] == batches_before
    cluster.wait_for_workers(2, timeout=60)
