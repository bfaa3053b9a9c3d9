"""A local Dask cluster for trying the scale-out path (``newsrec cluster up|down|status``): a
scheduler and N worker processes started detached, with this venv and this environment, and
a state file under ``$NEWSREC_HOME/dask``. Stages never import this; they reach any cluster,
local or not, through :mod:`pipelines.core.cluster`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pipelines.core import cluster
from pipelines.core.config import PROJECT_ROOT, get_settings
from pipelines.core.errors import ConfigError, NewsrecError


def state_dir() -> Path:
    return get_settings().home / "dask"


def _state_file() -> Path:
    return state_dir() / "cluster.json"


@dataclass
class LocalState:
    address: str
    scheduler_pid: int
    worker_pids: list[int]
    threads: int
    memory_limit: str
    dashboard: str | None
    log_dir: str


def read_state() -> LocalState | None:
    path = _state_file()
    if not path.exists():
        return None
    return LocalState(**json.loads(path.read_text()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited child not yet reaped) counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _worker_env() -> dict[str, str]:
    """This process's environment with the places the stages need made explicit, so the
    workers reach the same database (the embedded server's Unix socket) and features folder."""
    env = dict(os.environ)
    settings = get_settings()
    env["NEWSREC_HOME"] = str(settings.home)
    if settings.database_url:
        env["NEWSREC_DATABASE_URL"] = settings.database_url
    env.pop("NEWSREC_DASK_ADDRESS", None)  # a worker never sends work to another cluster
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


def up(
    workers: int = 2,
    threads: int = 1,
    memory_limit: str = "auto",
    port: int = 0,
    dashboard_port: int = 8787,
    timeout: float = 60.0,
) -> LocalState:
    """Start a scheduler and ``workers`` worker processes in the background and wait until
    every worker has joined. Refuses when a cluster of this home is running already."""
    if workers < 1:
        raise ConfigError("a cluster needs at least one worker")
    current = read_state()
    if current is not None and _alive(current.scheduler_pid):
        raise NewsrecError(f"a local Dask cluster is running already at {current.address} (newsrec cluster down)")
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    scheduler_file.unlink(missing_ok=True)
    env = _worker_env()
    dashboard = cluster.has_bokeh()
    scheduler_cmd = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file", str(scheduler_file),
                     "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    scheduler_cmd += ["--dashboard-address", f"127.0.0.1:{dashboard_port}"] if dashboard else ["--no-dashboard"]
    pids: list[int] = []
    try:
        scheduler = _spawn(scheduler_cmd, folder / "scheduler.log", env)
        pids.append(scheduler)
        address = _wait_for_scheduler_file(scheduler_file, scheduler, timeout)
        worker_pids = []
        for i in range(workers):
            cmd = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", str(threads),
                   "--nworkers", "1", "--memory-limit", memory_limit, "--name", f"newsrec-worker-{i}",
                   "--local-directory", str(folder / "workers"), "--no-dashboard"]  # fmt: skip
            worker_pids.append(_spawn(cmd, folder / f"worker-{i}.log", env))
            pids.append(worker_pids[-1])
        _wait_for_workers(address, workers, timeout)
    except BaseException:
        for pid in reversed(pids):
            _stop_pid(pid)
        raise
    state = LocalState(
        address=address,
        scheduler_pid=scheduler,
        worker_pids=worker_pids,
        threads=threads,
        memory_limit=memory_limit,
        dashboard=f"http://127.0.0.1:{dashboard_port}/status" if dashboard else None,
        log_dir=str(folder),
    )
    _state_file().write_text(json.dumps(asdict(state), indent=2))
    return state


def _spawn(cmd: list[str], log_path: Path, env: dict[str, str]) -> int:
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=str(PROJECT_ROOT), start_new_session=True,
        )  # fmt: skip
    return proc.pid


def _wait_for_scheduler_file(path: Path, pid: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            try:
                return json.loads(path.read_text())["address"]
            except (ValueError, KeyError):
                pass  # written but not complete yet
        if not _alive(pid):
            raise NewsrecError(f"the Dask scheduler exited at start; see {path.parent / 'scheduler.log'}")
        time.sleep(0.1)
    raise NewsrecError(f"the Dask scheduler did not start within {timeout:g} s; see {path.parent / 'scheduler.log'}")


def _wait_for_workers(address: str, n: int, timeout: float) -> None:
    client = cluster.connect(address)
    try:
        client.wait_for_workers(n, timeout=timeout)
    except TimeoutError:
        raise NewsrecError(f"{n} Dask worker(s) did not join {address} within {timeout:g} s") from None
    finally:
        client.close()


def _stop_pid(pid: int, grace: float = 10.0) -> None:
    """SIGTERM ``pid`` (a process this module started), SIGKILL it after ``grace`` seconds."""
    if not _alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        except ChildProcessError:
            pass  # not our child (started by an earlier command): poll instead
        if not _alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def status() -> tuple[LocalState | None, cluster.ClusterInfo | None]:
    """The state file of this home's local cluster and what its scheduler says (None: down)."""
    state = read_state()
    if state is None or not _alive(state.scheduler_pid):
        return state, None
    try:
        client = cluster.connect(state.address, timeout=3.0)
    except NewsrecError:
        return state, None
    try:
        return state, cluster.cluster_info(client)
    finally:
        client.close()


def down() -> LocalState | None:
    """Stop this home's local cluster (workers first); returns what was stopped."""
    state = read_state()
    if state is None:
        return None
    for pid in [*state.worker_pids, state.scheduler_pid]:
        _stop_pid(pid)
    _state_file().unlink(missing_ok=True)
    (state_dir() / "scheduler.json").unlink(missing_ok=True)
    return state
