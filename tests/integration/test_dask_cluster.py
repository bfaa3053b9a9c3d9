"""Scale-out on a real ``dask.distributed`` cluster (a LocalCluster of 2 worker processes,
shared by this module): the Beam ETL on Beam's DaskRunner writes exactly the in-process
rows, LightGBM's DaskLGBMRanker trains a model as good as the local one and registers it the
same way, a worker SIGKILLed in the middle of the ETL is survived or fails the run cleanly,
and a bad cluster is refused before any data is touched."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pipelines.core import cluster
from pipelines.core.config import reset_caches
from pipelines.core.errors import NewsrecError
from pipelines.features import build, partitions
from pipelines.features.catalog import ENTITY_KEYS, VIEWS
from pipelines.model import registry
from tests.helpers import query, simulated_world, use_database

START = date(2026, 6, 1)
DAY = START + timedelta(days=5)  # test day; valid = DAY-1; train = DAY-3..DAY-2
TRAIN_DAYS = 2


@pytest.fixture(scope="module")
def dask_cluster():
    """Two worker processes, one thread each. A task whose worker dies is retried once
    (``allowed-failures``: 1) and fails on the second death, so both outcomes are quick."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as lc:
            with Client(lc) as client:
                yield client


@pytest.fixture(scope="module")
def world(pg_server, migrated_template, tmp_path_factory):
    """A 7-day simulated warehouse with features built in-process for START+1 .. DAY, in one
    user range (the default for 2,000 users); the ETL tests on the cluster use 8
    (:func:`on_cluster`), so they compare 8 ranges on Dask with one in-process."""
    home = tmp_path_factory.mktemp("dask_home")
    sim = {"users": 2000, "articles_per_day": 300, "start": START, "seed": 5}
    with simulated_world(pg_server, migrated_template, home, "dask_world", 7, **sim) as w:
        for i in range(1, 6):
            build.build(START + timedelta(days=i))
        yield w


@pytest.fixture
def on_cluster(world, dask_cluster, monkeypatch):
    """The world, with NEWSREC_DASK_ADDRESS pointing at the module's cluster and the ETL in 8
    user ranges (a world this small gets one by default): the ranges spread over both workers."""
    use_database(monkeypatch, world["url"], world["home"])
    monkeypatch.setenv("NEWSREC_ETL_SHARDS", "8")
    # both workers, also after a test restarted them (a loaded machine takes a while to start one)
    dask_cluster.wait_for_workers(2, timeout=180)
    monkeypatch.setenv("NEWSREC_DASK_ADDRESS", dask_cluster.scheduler.address)
    reset_caches()
    yield world
    monkeypatch.delenv("NEWSREC_DASK_ADDRESS", raising=False)
    reset_caches()


def _view(view: str, day: date) -> pd.DataFrame:
    keys = [ENTITY_KEYS[e][0] for e in VIEWS[view].entities]
    frame = pd.read_parquet(partitions.view_path(view, day))
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _digests(day: date) -> dict[str, str]:
    out = {}
    for path in [*(partitions.view_path(v, day) for v in VIEWS), partitions.manifest_path(day)]:
        out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_etl_on_dask_writes_the_in_process_rows(on_cluster, monkeypatch, tmp_path):
    day = START + timedelta(days=2)  # three days of events in its window: the fresh home recomputes all three partials
    local = {view: _view(view, day) for view in VIEWS}
    local_manifest = partitions.read_manifest(day)
    # a fresh home: the cluster recomputes every daily partial of the window, not only the day
    use_database(monkeypatch, on_cluster["url"], tmp_path / "dask_home")
    result = build.build(day)
    assert partitions.root() == tmp_path / "dask_home" / "features"
    for view in VIEWS:
        dask_rows = _view(view, day)
        assert len(dask_rows) == len(local[view]) > 0, view
        pd.testing.assert_frame_equal(dask_rows, local[view], check_exact=True, obj=view)
    assert result.rows == local_manifest["rows"]
    # the fresh home read every day of the window (the in-process build reused earlier partials)
    (window_events,) = query(
        "SELECT count(*) FROM warehouse.events WHERE event_ts >= %s AND event_ts < %s",
        (day - timedelta(days=27), day + timedelta(days=1)),
    )[0]
    assert result.events_read == window_events > local_manifest["events_read"] > 0
    assert result.partial_days > 1
    (details,) = query(
        "SELECT details FROM ops.runs WHERE stage = 'features' AND details ? 'dask_address' "
        "ORDER BY run_id DESC LIMIT 1"
    )[0]
    assert details["dask_address"] == cluster.dask_address()
    assert not list((partitions.root() / ".staging").iterdir())


def _set_worker_env(client, **env: str | None) -> None:
    def apply(env=env):
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    client.run(apply)


def _worker_pids(client) -> set[int]:
    return set(client.run(os.getpid).values())


def test_a_worker_killed_in_the_etl_is_retried(on_cluster, dask_cluster):
    """Each worker SIGKILLs itself at its first user range; the nanny starts a fresh worker
    (without the fault) and Dask runs the lost tasks again: same rows as in-process."""
    day = DAY
    before = _digests(day)
    local = {view: _view(view, day) for view in VIEWS}
    pids = _worker_pids(dask_cluster)
    _set_worker_env(dask_cluster, NEWSREC_FAULT="kill:etl_user_views")
    try:
        build.build(day)
    finally:
        dask_cluster.wait_for_workers(2, timeout=60)
        _set_worker_env(dask_cluster, NEWSREC_FAULT=None)
    assert not pids & _worker_pids(dask_cluster), "the workers were not killed"
    for view in VIEWS:
        pd.testing.assert_frame_equal(_view(view, day), local[view], check_exact=True, obj=view)
    after = _digests(day)
    assert {k: v for k, v in after.items() if not k.endswith(".json")} == {
        k: v for k, v in before.items() if not k.endswith(".json")
    }
    assert partitions.read_manifest(day) is not None


def test_workers_that_keep_dying_fail_the_etl_and_change_nothing(on_cluster, monkeypatch):
    """Every worker (and every replacement, which inherits the nannies' environment) dies at
    the same point: the run fails with one line and the published day is byte for byte as it was.
    A cluster of its own: restarting the shared one after the deaths left it without workers. One
    worker is enough: it dies, its replacement gets the task again (allowed-failures 1) and dies
    too, with fewer worker processes started (each imports Beam and the stack) than with two."""
    import dask
    from distributed import Client, LocalCluster

    day = DAY - timedelta(days=2)
    before = _digests(day)
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as lc:
            with Client(lc) as doomed:
                monkeypatch.setenv("NEWSREC_DASK_ADDRESS", doomed.scheduler.address)
                monkeypatch.setenv("NEWSREC_FAULT", "kill:etl_user_views")  # the nannies run in this process
                reset_caches()
                _set_worker_env(doomed, NEWSREC_FAULT="kill:etl_user_views")
                try:
                    with pytest.raises(NewsrecError) as err:
                        build.build(day)
                finally:
                    monkeypatch.delenv("NEWSREC_FAULT")
    message = str(err.value)
    assert "\n" not in message and "Dask workers died" in message and "nothing was published" in message
    assert _digests(day) == before
    assert not list((partitions.root() / ".staging").iterdir())
    (status,) = query("SELECT status FROM ops.runs WHERE stage = 'features' ORDER BY run_id DESC LIMIT 1")[0]
    assert status == "failed"


SEEDS = (13, 1, 2)


def test_dask_training_matches_the_local_model(on_cluster, dask_cluster, monkeypatch, capsys):
    """Same splits, same parameters (params.yaml), three seeds each: the mean NDCG@10 on the
    held-out day of the Dask-trained models is within 0.01 of the local ones'. (One seed
    alone moves NDCG@10 by ~0.01 on a day of this size, on either engine: bagging, and on
    Dask the bins each worker finds from its share of the rows.)"""
    import numpy as np

    from pipelines.model import evaluate, ranker
    from pipelines.model.dataset import load_splits

    splits = load_splits(DAY, TRAIN_DAYS)

    def ndcg(client) -> list[float]:
        out = []
        for seed in SEEDS:
            booster = ranker.fit(splits.train, splits.valid, splits.spec, {"seed": seed}, "plain", client=client)
            assert 0 < booster.best_iteration <= booster.current_iteration()
            table = evaluate.evaluate(splits.test, booster.predict(splits.test.X))
            out.append(table["overall"]["model"]["ndcg@10"])
        return out

    t0 = time.perf_counter()
    local = ndcg(None)
    t1 = time.perf_counter()
    on_dask = ndcg(dask_cluster)
    t2 = time.perf_counter()
    with capsys.disabled():
        print(
            f"\nNDCG@10 on {DAY} ({len(splits.test.y):,} test rows), seeds {SEEDS}: "
            f"local {np.round(local, 4).tolist()} mean {np.mean(local):.4f} ({t1 - t0:.1f} s); "
            f"Dask {np.round(on_dask, 4).tolist()} mean {np.mean(on_dask):.4f} ({t2 - t1:.1f} s)"
        )
    assert abs(np.mean(on_dask) - np.mean(local)) <= 0.01
    assert min(on_dask) > 0.5  # a real ranker, not noise (the popularity baseline is ~0.45 here)


def test_a_dask_trained_model_is_registered_and_gated_like_a_local_one(on_cluster):
    from pipelines.model.train import train

    address = os.environ["NEWSREC_DASK_ADDRESS"]
    result = train(DAY, trials=1, minutes=2, train_days=TRAIN_DAYS, objective="debiased")
    assert result.engine == "dask" and result.objective == "plain" and "positions" in (result.note or "")
    assert "on the Dask cluster" in result.render()
    tags = registry.version_info(result.version)["tags"]
    assert tags["training_engine"] == "dask" and tags["dask_workers"] == "2"
    assert tags["objective"] == "plain" and tags["objective_requested"] == "debiased"
    loaded = registry.load(result.version)
    assert loaded.booster.feature_name() == list(loaded.spec.feature_names)
    # the registered trees are the evaluated ones: the early-stopped prefix, not every round
    from pipelines.features.matrix import to_matrix
    from pipelines.model import evaluate
    from pipelines.model.dataset import load_splits

    test = load_splits(DAY, TRAIN_DAYS).test
    table = evaluate.evaluate(test, loaded.predict(to_matrix(test.rows, loaded.spec)))
    assert table["overall"]["model"]["ndcg@10"] == pytest.approx(result.evaluation["overall"]["model"]["ndcg@10"])
    assert loaded.booster.current_iteration() < 300  # params.yaml: num_boost_round 300, patience 20
    decisions = query("SELECT challenger_version FROM ops.model_decisions WHERE kind = 'promotion'")
    assert (result.version,) in decisions  # through the same promotion gate
    (details,) = query("SELECT details FROM ops.runs WHERE stage = 'train' ORDER BY run_id DESC LIMIT 1")[0]
    assert details["engine"] == "dask" and details["objective_requested"] == "debiased"
    assert cluster.dask_address() == address
    # a re-run on the cluster reuses that version instead of registering a copy
    assert train(DAY, trials=1, minutes=2, train_days=TRAIN_DAYS, objective="debiased").version == result.version


def test_debiased_on_dask_trains_plain_and_says_so(on_cluster):
    from pipelines.model import ranker

    assert ranker.objective_on("debiased", on_dask=True)[0] == "plain"
    assert ranker.objective_on("debiased", on_dask=False) == ("debiased", None)


def test_an_unreachable_scheduler_is_one_line_before_any_data(world, monkeypatch, tmp_path):
    home = tmp_path / "untouched"
    use_database(monkeypatch, world["url"], home)
    monkeypatch.setenv("NEWSREC_DASK_ADDRESS", "tcp://127.0.0.1:9")
    reset_caches()
    (runs_before,) = query("SELECT count(*) FROM ops.runs")[0]
    t0 = time.perf_counter()
    with pytest.raises(NewsrecError) as err:
        build.build(DAY)
    assert time.perf_counter() - t0 < 30
    assert "tcp://127.0.0.1:9" in str(err.value) and "\n" not in str(err.value)
    assert not home.exists() or not any(home.rglob("*.parquet"))
    assert query("SELECT count(*) FROM ops.runs")[0][0] == runs_before
    monkeypatch.delenv("NEWSREC_DASK_ADDRESS", raising=False)
    reset_caches()


def test_a_worker_without_a_package_is_refused(dask_cluster, tmp_path):
    """A real worker process started with an import hook that hides lleaves joins the
    cluster: the check names that worker and the package."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'lleaves' or name.startswith('lleaves.'):\n"
        "            raise ModuleNotFoundError(\"No module named 'lleaves'\")\n"
        "        return None\n"
        "sys.meta_path.insert(0, _Hide())\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")])}
    address = dask_cluster.scheduler.address
    proc = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny",
         "--name", "no-lleaves", "--no-dashboard"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        dask_cluster.wait_for_workers(3, timeout=180)
        with pytest.raises(NewsrecError) as err:
            cluster.check_workers(dask_cluster)
        message = str(err.value)
        assert "\n" not in message and "lleaves" in message
        worker = next(a for a, w in dask_cluster.scheduler_info()["workers"].items() if w.get("name") == "no-lleaves")
        assert worker in message
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while len(dask_cluster.scheduler_info()["workers"]) > 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cluster.check_workers(dask_cluster).workers == 2  # the healthy workers pass


def test_a_cluster_without_workers_is_refused(tmp_path):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as lc, Client(lc) as client:
        with pytest.raises(NewsrecError, match="has no workers"):
            cluster.check_workers(client, wait_s=1)


def test_newsrec_cluster_up_status_down(tmp_path):
    env = {**os.environ, "NEWSREC_HOME": str(tmp_path / "home")}
    env.pop("NEWSREC_DASK_ADDRESS", None)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "cluster", *args],
            capture_output=True, text=True, env=env, timeout=180,
        )  # fmt: skip

    started = cli("up", "--workers", "2", "--threads", "1", "--memory-limit", "1GiB")
    assert started.returncode == 0, started.stderr
    try:
        assert "address: tcp://127.0.0.1:" in started.stdout
        assert "dashboard: off (bokeh not installed)" in started.stdout or "dashboard: http" in started.stdout
        state = json.loads((tmp_path / "home" / "dask" / "cluster.json").read_text())
        assert len(state["worker_pids"]) == 2
        again = cli("up")
        assert again.returncode == 1 and "running already" in again.stderr
        shown = cli("status")
        assert shown.returncode == 0, shown.stderr
        assert "workers: 2" in shown.stdout and "threads: 2" in shown.stdout and "memory: 2.0 GiB" in shown.stdout
        assert state["address"] in shown.stdout
    finally:
        stopped = cli("down")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    for pid in [state["scheduler_pid"], *state["worker_pids"]]:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[-1][:3]
    down = cli("status")
    assert down.returncode == 1 and "not running" in down.stdout


def test_benchmark_hook_times_each_stage_on_both_sides(on_cluster, dask_cluster, monkeypatch):
    from pipelines.bench.cluster import compare

    # the harness is under test, not the ETL's sharding (the tests above): both sides rebuild the
    # window in one user range (the default at this size), which costs ~40% of the Beam work of 8
    monkeypatch.delenv("NEWSREC_ETL_SHARDS")
    reset_caches()
    result = compare(DAY, address=dask_cluster.scheduler.address, stages=["features", "train"], train_days=TRAIN_DAYS)
    stages = result.to_dict()["stages"]
    assert set(stages) == {"features", "train"}
    for timing in stages.values():
        assert timing["local_s"] > 0 and timing["dask_s"] > 0
    assert stages["features"]["local"] == stages["features"]["dask"]  # same events read, same rows
    assert stages["train"]["local"]["ndcg@10"] > 0.5 and stages["train"]["dask"]["ndcg@10"] > 0.5
    assert "| features |" in result.render() and "| train |" in result.render()
