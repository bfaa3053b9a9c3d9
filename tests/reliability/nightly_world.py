"""A small simulated service for the fault, concurrency and bad-data tests, on a PostgreSQL
server of their own (so a test may restart it), built once and cloned per test.

The template holds seven days of history with their features, one nightly run of D0 (a live
batch; its champion then replaced by a bad one: :func:`_weaken_champion`), and day D
simulated. A clone copies the three databases (main,
MLflow, Optuna) with ``CREATE DATABASE ... TEMPLATE`` and the home folder (features,
artifacts, serving exports).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.helpers import ROOT, admin_sql, query, remove_later, use_database

START = date(2026, 7, 1)
HISTORY = 7
D0 = START + timedelta(days=HISTORY)  # run once in the template: live batch 1 (v1); champion v2 (bad)
D = D0 + timedelta(days=1)  # the date the tests run (simulated in the template, nothing else)
# Organic sessions only (no closed loop): day D's logs must not favour the template's champion,
# whose own lists a closed-loop day would show, so that the reference run's challenger can win.
SIM = {"users": 400, "articles_per_day": 160, "start": START, "seed": 8, "recommended_session_share": 0.0}
RUN = {"trials": 1, "minutes": 1}
RUN_ARGS = ["--trials", "1", "--minutes", "1"]
SIDE_DATABASES = ("", "_mlflow", "_optuna")


class Server:
    """A throwaway embedded PostgreSQL that tests may stop and start."""

    def __init__(self, copy_of: Path | None = None, folder: Path | None = None) -> None:
        """A new server in a new folder under /tmp, or in ``folder`` (kept when stopped); with
        ``copy_of``, on a copy of that stopped server's data (its databases included)."""
        import pgserver

        self.folder = folder or Path(tempfile.mkdtemp(prefix="nrrel", dir="/tmp"))
        if copy_of is not None:  # cp -a: the files stay the server user's, with their modes
            subprocess.run(["cp", "-a", str(copy_of), str(self.folder / "pg")], check=True, timeout=600)
            (self.folder / "pg" / ".handle_pids.json").unlink(missing_ok=True)
        self.owned = folder is None
        self.server = pgserver.get_server(self.folder / "pg", cleanup_mode="stop")
        self.server.psql("ALTER SYSTEM SET fsync = off; ALTER SYSTEM SET synchronous_commit = off;")
        self.server.psql("SELECT pg_reload_conf();")
        self.socket_dir = self.server.get_postmaster_info().socket_dir

    def url(self, database: str) -> str:
        return f"postgresql://postgres:@/{database}?host={self.socket_dir}"

    @property
    def base(self) -> str:
        return f"postgresql://postgres:@/{{db}}?host={self.socket_dir}"

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every open connection is cut, the data stays."""
        import pgserver

        pgserver.pg_ctl(
            ["-w", "-m", "fast", "restart"], pgdata=self.server.pgdata, user=self.server.system_user, timeout=60
        )

    def stop(self) -> None:
        """``pg_ctl stop -m fast``: a shutdown checkpoint, then the data folder may be copied."""
        import pgserver

        admin_sql(self.base, "CHECKPOINT")
        server = self.server
        pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=300)
        if (self.folder / "pg" / "postmaster.pid").exists():
            raise RuntimeError(f"the server of {self.folder} did not stop")

    def disconnect(self, database: str) -> None:
        """End every session on ``database`` (a template must have none)."""
        admin_sql(
            self.base,
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' "
            "AND pid <> pg_backend_pid()",
        )

    def databases(self) -> set[str]:
        import psycopg2

        conn = psycopg2.connect(self.url("postgres"))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT datname FROM pg_database")
                return {r[0] for r in cur.fetchall()}
        finally:
            conn.close()

    def cleanup(self) -> None:
        self.server.cleanup()
        if self.owned:
            remove_later(self.folder)


def build_template(server: Server, name: str, home: Path) -> None:
    """History, features, one nightly run of D0, and day D simulated."""
    from pipelines.features.build import backfill
    from pipelines.nightly import runner
    from pipelines.warehouse import simulator
    from pipelines.warehouse.migrations import migrate

    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, server.url(name), home)
        migrate()
        simulator.seed(simulator.SimConfig.from_params(**SIM), HISTORY)
        backfill(START, D0 - timedelta(days=1))
        runner.run_day(D0, **RUN)
        _weaken_champion()
        simulator.simulate_day(D)
    from pipelines.core.config import reset_caches

    reset_caches()
    for suffix in SIDE_DATABASES:
        server.disconnect(name + suffix)


def _weaken_champion() -> None:
    """Make D0's champion a model fitted on inverted labels (registered complete, promoted by
    a recorded override). The gate promotes a challenger only when the lower bound of its
    paired IPS difference over the test day's users clears the margin: a model about as good
    as the champion, on the ~80 users of this world's test day, never does (even the
    champion's own first tree is within the interval), and the reference run of D must promote
    (the tests compare a disturbed promotion with it)."""
    from pipelines.model import dataset, promotion, ranker, registry

    champion = registry.load(registry.CHAMPION)
    splits = dataset.load_splits(D0)
    train = splits.train
    inverted = type(train)(train.rows, train.X, train.y.max() - train.y, train.groups)
    worse = ranker.fit(inverted, splits.valid, splits.spec, {"learning_rate": 0.1}, objective="plain", rounds=20)
    lineage = {"logical_date": str(D0), "run_name": "weak-champion", "dvc_data_hash": champion.tags["dvc_data_hash"]}
    version = registry.register(worse, splits.spec, {"ndcg@10": 0.0}, {}, lineage, artifacts={"evaluation.json": {}})
    promotion.promote_by_hand(version, "reliability template: a weak champion for the reference run to beat")


def shared_template(shared: Path) -> dict:
    """The template built once for every pytest-xdist worker of this run (the first one
    builds it under a file lock, on a server that then stops): the stopped server's data, which
    each worker's server starts a copy of, and the template's home (read only; its MLflow
    artifacts stay where they were logged)."""
    from filelock import FileLock

    folder = shared / "rel_template"
    with FileLock(str(shared / "rel_template.lock")):
        if not (folder / "built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            server = Server(folder=folder)
            try:
                build_template(server, "reltpl", folder / "home")
                server.stop()  # a clean stop, checked: a copy of a running server loses its last writes
            finally:
                server.cleanup()
            (folder / "built").touch()
    return {"name": "reltpl", "pgdata": folder / "pg", "home": folder / "home"}


def clone(server: Server, template: str, template_home: Path, name: str, home: Path) -> str:
    """A copy of the template's databases and home; returns the main database URL."""
    existing = server.databases()
    for suffix in SIDE_DATABASES:
        if template + suffix in existing:
            server.disconnect(template + suffix)
            admin_sql(server.base, f"CREATE DATABASE {name}{suffix} TEMPLATE {template}{suffix}")
    shutil.copytree(template_home, home, symlinks=True)
    # The Feast registry names the template's feature folder: let the clone apply its own.
    (home / "feast" / "registry.db").unlink(missing_ok=True)
    return server.url(name)


@contextlib.contextmanager
def pointed_at(url: str, home: Path) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, url, home)
        yield
    from pipelines.core.config import reset_caches

    reset_caches()


# --------------------------------------------------------------------------------------
# What the tests compare
# --------------------------------------------------------------------------------------


def live_rows() -> list[tuple]:
    return query(
        "SELECT r.user_id, r.rank, r.article_id, round(r.score::numeric, 5), r.reason FROM serving.recommendations r "
        "JOIN serving.live l USING (batch_id) ORDER BY 1, 2"
    )


def live_batch() -> tuple | None:
    rows = query(
        "SELECT b.batch_id, b.data_date, b.model_version, b.status, b.n_users, b.n_rows FROM serving.live l "
        "JOIN serving.batches b USING (batch_id)"
    )
    return rows[0] if rows else None


def live_is_complete() -> bool:
    """The live batch is 'complete' and holds exactly the rows its bookkeeping says."""
    batch = live_batch()
    if batch is None:
        return False
    batch_id, _, _, status, n_users, n_rows = batch
    counted = query(
        "SELECT count(DISTINCT user_id), count(*) FROM serving.recommendations WHERE batch_id = %s", (batch_id,)
    )[0]
    fallback = query("SELECT count(*) FROM serving.fallback_recommendations WHERE batch_id = %s", (batch_id,))[0][0]
    return status == "complete" and counted == (n_users, n_rows) and n_rows > 0 and fallback > 0


def registry_state() -> dict:
    """Champion and every version with what identifies its training."""
    from pipelines.model import registry

    versions = {
        v["version"]: (v["tags"].get("logical_date"), v["tags"].get("dvc_data_hash"), v["tags"].get("complete"))
        for v in registry.list_versions()
    }
    return {"champion": registry.champion_version(), "versions": versions}


def snapshot() -> dict:
    from pipelines.features import partitions

    batch = live_batch()
    return {
        "live": live_rows(),
        "live_batch": batch[1:3] if batch else None,  # date and model version
        "registry": registry_state(),
        "manifests": sorted(p.stem for p in (partitions.root() / "_manifests").glob("*.json")),
        "decisions": query(
            "SELECT logical_date, challenger_version, champion_version, promoted FROM ops.model_decisions "
            "WHERE kind = 'promotion' ORDER BY decision_id"
        ),
    }


# --------------------------------------------------------------------------------------
# Running stages in a process of their own
# --------------------------------------------------------------------------------------


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A process with the test's environment plus ``env``; its output goes to ``log``."""
    with open(log, "w") as out:
        return subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)


def cli(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """The real ``newsrec`` entry point."""
    return spawn([sys.executable, "-m", "pipelines.cli", *args], env, log)


def stage(code: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """One stage function called in a fresh Python (``python -c``)."""
    return spawn([sys.executable, "-c", code], env, log)


def finish(proc: subprocess.Popen, timeout: float = 600) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        raise


class NightInThread:
    """``run_day(D, force_retrain=True)`` in a thread of the test's process: a crash or a restart
    elsewhere cuts its database sessions, without a fresh interpreter's imports."""

    def __init__(self) -> None:
        self.outcome: dict = {}
        self.thread = threading.Thread(target=self._run, name="run-day", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from pipelines.nightly import runner

        try:
            self.outcome["steps"] = runner.run_day(D, force_retrain=True, **RUN)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            self.outcome["error"] = exc

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def result(self, timeout: float = 900) -> dict:
        """The run's steps once it ended; its exception, re-raised, if it failed."""
        self.thread.join(timeout=timeout)
        assert not self.thread.is_alive(), "the nightly run did not finish"
        if "error" in self.outcome:
            raise self.outcome["error"]
        return self.outcome["steps"]


def wait_for(path: Path, proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    """Wait until a paused process has written its marker file."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            tail = log.read_text()[-3000:]
            raise AssertionError(f"the process ended ({proc.returncode}) before {path.name}:\n{tail}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the process never reached {path.name}")
        time.sleep(0.1)
