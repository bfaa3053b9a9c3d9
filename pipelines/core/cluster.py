"""The one switch for scale-out: a ``dask.distributed`` scheduler address.

``NEWSREC_DASK_ADDRESS`` (``Settings.dask_address``; the CLI's ``--dask-address`` and the
DAG's ``dask_address`` param set the same variable) sends the heavy stages to that cluster:
the Beam ETL runs on Beam's DaskRunner, training uses LightGBM's ``DaskLGBMRanker`` and
batch scoring sends partitions of users to the workers (``pipelines.serving.scoring``).
Unset, everything runs in-process. Stages ask this module for a client and never decide
"local or cluster" on their own.

Before a stage touches any data it checks the cluster: the scheduler answers within a short
timeout, at least one worker is connected, and every worker imports what the stages need at
the versions this process has. Each failure is one line naming the address, the worker and
the package.

A local cluster for trying it lives apart, in :mod:`pipelines.local.dask_cluster`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.core.config import get_settings, reset_caches
from pipelines.core.db import redact
from pipelines.core.errors import ConfigError, NewsrecError, TransientError

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

# What the stages import on a worker: Beam DoFns (apache_beam, pyarrow, pipelines), LightGBM's
# Dask training, and the compiled-tree scorer. Versions must equal the client's: a pickled
# DoFn or booster from another version can fail in ways that are hard to trace back.
REQUIRED_PACKAGES: tuple[str, ...] = (
    "pipelines",
    "lightgbm",
    "apache_beam",
    "pyarrow",
    "lleaves",
    "pandas",
    "numpy",
    "dask",
    "distributed",
)
CONNECT_TIMEOUT_S = 5.0
WORKER_WAIT_S = 10.0


def dask_address() -> str | None:
    """The configured scheduler address (``NEWSREC_DASK_ADDRESS``), or None: run in-process."""
    value = get_settings().dask_address
    return value.strip() or None if value else None


def connect(address: str | None = None, timeout: float = CONNECT_TIMEOUT_S) -> Client | None:
    """A client of the scheduler at ``address`` (default: the setting); None when none is set.

    An unreachable scheduler is a one-line :class:`TransientError` naming the address, raised
    within ``timeout`` seconds.
    """
    address = address or dask_address()
    if not address:
        return None
    from distributed import Client

    try:
        return Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TransientError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({reason})") from None
    except ValueError as exc:  # a malformed address
        raise ConfigError(f"bad Dask scheduler address {address!r}: {exc}") from None


def _package_versions(packages: Sequence[str]) -> dict[str, str]:
    """Version of each package as this process sees it ('missing: ...' when it cannot import).

    Runs on the workers too, shipped by value (it imports only the standard library at
    module level), so it works on a worker that lacks ``pipelines`` itself. ``pipelines``
    has no release number: its version is a digest of its source files, so a worker that
    runs other code than the client is caught as well.
    """
    import hashlib
    import importlib
    import importlib.metadata
    from pathlib import Path as _Path

    out: dict[str, str] = {}
    for name in packages:
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any import failure means "cannot use it"
            out[name] = f"missing: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            continue
        version = getattr(module, "__version__", None)
        if version is None and name != "pipelines":
            try:
                version = importlib.metadata.version(name.replace("_", "-"))
            except importlib.metadata.PackageNotFoundError:
                version = "unknown"
        if name == "pipelines":
            digest = hashlib.sha1()
            root = _Path(module.__file__).parent
            for path in sorted(root.rglob("*.py")):
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
            version = f"source {digest.hexdigest()[:12]}"
        out[name] = str(version)
    return out


# Ship the probe by value (cloudpickle does so for functions of __main__), so that a worker
# without ``pipelines`` can still run it and say so instead of failing to unpickle it.
_package_versions.__module__ = "__main__"


@dataclass
class ClusterInfo:
    address: str
    workers: int
    threads: int
    memory_bytes: int
    dashboard: str | None
    worker_names: list[str] = field(default_factory=list)

    def render(self) -> str:
        memory = f"{self.memory_bytes / 2**30:.1f} GiB" if self.memory_bytes else "no limit"
        return (
            f"address: {self.address}\nworkers: {self.workers}\nthreads: {self.threads}\n"
            f"memory: {memory}\ndashboard: {self.dashboard or 'off (bokeh not installed)'}"
        )


def has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


has_bokeh.__module__ = "__main__"  # shipped by value to the scheduler, like the probe below


def cluster_info(client: Client) -> ClusterInfo:
    """Address, workers, threads, memory and dashboard link (None: the scheduler serves no
    dashboard, which needs bokeh on the scheduler)."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    dashboard = None
    if info.get("services", {}).get("dashboard") and client.run_on_scheduler(has_bokeh):
        dashboard = client.dashboard_link
    return ClusterInfo(
        address=client.scheduler.address,
        workers=len(workers),
        threads=sum(int(w.get("nthreads", 0)) for w in workers.values()),
        memory_bytes=sum(int(w.get("memory_limit", 0) or 0) for w in workers.values()),
        dashboard=dashboard,
        worker_names=sorted(workers),
    )


def check_workers(
    client: Client, packages: Sequence[str] = REQUIRED_PACKAGES, wait_s: float = WORKER_WAIT_S
) -> ClusterInfo:
    """Refuse a cluster the stages cannot run on: no worker within ``wait_s`` seconds, or a
    worker that cannot import one of ``packages`` or has another version than this process."""
    address = client.scheduler.address
    try:
        client.wait_for_workers(1, timeout=wait_s)
    except TimeoutError:
        raise TransientError(f"the Dask cluster at {address} has no workers (waited {wait_s:g} s)") from None
    local = _package_versions(packages)
    for name, version in local.items():
        if version.startswith("missing"):
            raise NewsrecError(f"this process cannot import {name} ({version}), which the Dask workers need")
    try:
        remote: dict[str, dict[str, str]] = client.run(_package_versions, list(packages))
    except Exception as exc:  # noqa: BLE001 - a worker that cannot even run the probe
        raise NewsrecError(f"cannot check the workers of {address}: {type(exc).__name__}: {exc}") from None
    for worker, versions in sorted(remote.items()):
        for name in packages:
            theirs, ours = versions.get(name, "missing"), local[name]
            if theirs.startswith("missing"):
                raise NewsrecError(f"Dask worker {worker} cannot import {name} ({theirs.removeprefix('missing: ')})")
            if theirs != ours:
                raise NewsrecError(f"Dask worker {worker} has {name} {theirs}, this process has {ours}")
    return cluster_info(client)


def _reach(dsn: str | None, marker: str | None) -> str:
    """'' when this worker reaches the database and sees ``marker``; else what fails."""
    from pathlib import Path as _Path

    if dsn:
        try:
            import psycopg2

            psycopg2.connect(dsn, connect_timeout=5).close()
        except Exception as exc:  # noqa: BLE001
            return f"cannot connect to the database ({str(exc).strip().splitlines()[0] if str(exc) else exc!r})"
    if marker and not _Path(marker).exists():
        return f"does not see {_Path(marker).parent} (the folder must be shared with this process)"
    return ""


_reach.__module__ = "__main__"


def check_reach(client: Client, dsn: str | None, folder: Path | None) -> None:
    """Every worker connects to the database at ``dsn`` and sees the files this process writes
    into ``folder``: the ETL's workers read Postgres and read/write feature files themselves."""
    import uuid

    marker = None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        marker = folder / f".cluster-check-{uuid.uuid4().hex[:12]}"
        marker.write_text("newsrec: can the Dask workers see this folder?\n")
    try:
        answers: dict[str, str] = client.run(_reach, dsn, str(marker) if marker else None)
    finally:
        if marker is not None:
            marker.unlink(missing_ok=True)
    for worker, problem in sorted(answers.items()):
        if problem:
            where = redact(dsn) if problem.startswith("cannot connect") and dsn else ""
            raise NewsrecError(f"Dask worker {worker} {problem}{' at ' + where if where else ''}")


@contextmanager
def client_for_stage(stage: str, address: str | None = None) -> Iterator[Client | None]:
    """The client a stage runs on, checked, or None (in-process) when no address is set.

    The only place a stage learns whether it runs on a cluster::

        with cluster.client_for_stage("train") as client:
            booster = ranker.fit(..., client=client)
    """
    client = connect(address)
    if client is None:
        yield None
        return
    try:
        info = check_workers(client)
        log.info("%s runs on the Dask cluster at %s (%d workers)", stage, info.address, info.workers)
        yield client
    finally:
        client.close()


@contextmanager
def using(address: str | None) -> Iterator[None]:
    """Within the block the stages run on the cluster at ``address``, exactly as if
    ``NEWSREC_DASK_ADDRESS`` were set (None or '': the setting stays as it is). For callers
    that take the address as an argument: the DAG's ``dask_address`` param, the benchmark."""
    if not address:
        yield
        return

    before = os.environ.get(_VAR)
    os.environ[_VAR] = address
    reset_caches()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(_VAR, None)
        else:
            os.environ[_VAR] = before
        reset_caches()


_VAR = "NEWSREC_DASK_ADDRESS"
