"""The embedded PostgreSQL (the ``pgserver`` wheel) for one machine: no Docker, no apt.

It runs from ``$NEWSREC_HOME/pg`` and is shared by every process of the project (CLI, Airflow
tasks, the reader); it keeps running until ``newsrec db stop``. Only settings are read here,
so :mod:`pipelines.core.db` can start it when ``NEWSREC_DATABASE_URL`` is unset.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.core.config import get_settings
from pipelines.core.errors import ConfigError, NewsrecError

log = logging.getLogger(__name__)

# Server settings applied once to a fresh embedded cluster (they need a restart).
_EMBEDDED_SERVER_SETTINGS = {
    "max_connections": "200",
    "shared_buffers": "512MB",
    "work_mem": "64MB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "4GB",
}


@dataclass(frozen=True)
class ServerStatus:
    embedded: bool
    running: bool
    location: str
    pid: int | None = None


def read_postmaster(pg_dir: Path) -> tuple[int, Path, str] | None:
    """(pid, socket dir, status) of a running embedded server, from postmaster.pid."""
    pid_file = pg_dir / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 8:
        return None
    pid = int(lines[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid, Path(lines[4].strip() or pg_dir), lines[7].strip()


def embedded_uri(socket_dir: Path, database: str) -> str:
    return f"postgresql://postgres:@/{database}?host={socket_dir}"


def start_embedded() -> Path:
    """Start (or attach to) the embedded server; return its socket directory."""
    settings = get_settings()
    pg_dir = settings.pg_dir
    info = read_postmaster(pg_dir)
    if info and info[2] == "ready":
        return info[1]
    pg_dir.parent.mkdir(parents=True, exist_ok=True)
    fresh = not (pg_dir / "PG_VERSION").exists()
    pgserver = _pgserver()
    log.info("starting embedded PostgreSQL in %s", pg_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(pg_dir, cleanup_mode=None)
    if fresh:
        _tune_fresh_cluster(server)
    info = read_postmaster(pg_dir)
    if not info:
        raise NewsrecError(f"embedded PostgreSQL did not start; see {pg_dir / 'log'}")
    return info[1]


def _pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, cron); the fallback is fine.
        warnings.simplefilter("ignore")
        import pgserver

    return pgserver


def _tune_fresh_cluster(server: Any) -> None:
    pgserver = _pgserver()

    for key, value in _EMBEDDED_SERVER_SETTINGS.items():
        server.psql(f"ALTER SYSTEM SET {key} = '{value}';")
    pgserver.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.pgdata, user=server.system_user, timeout=60)


def stop_embedded() -> bool:
    """Stop the embedded server if it runs; True when it was running."""
    settings = get_settings()
    if settings.database_url:
        raise ConfigError("NEWSREC_DATABASE_URL is set: the server is not managed by newsrec")
    if not read_postmaster(settings.pg_dir):
        return False
    pgserver = _pgserver()

    user = "pgserver" if _is_root() else None
    try:
        pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=settings.pg_dir, user=user, timeout=60)
    except subprocess.CalledProcessError:
        # as root pg_ctl runs as pgserver, which cannot enter a private folder above the home
        # (pytest's tmp): ask the postmaster for the same fast shutdown ourselves
        _fast_shutdown(settings.pg_dir)
    return True


def _fast_shutdown(pg_dir: Path, timeout: float = 60) -> None:
    """SIGINT (PostgreSQL's fast shutdown) to the postmaster of ``pg_dir``; wait until it is gone."""
    running = read_postmaster(pg_dir)
    if running is None:
        return
    os.kill(running[0], signal.SIGINT)
    deadline = time.monotonic() + timeout
    while read_postmaster(pg_dir) is not None:
        if time.monotonic() > deadline:
            raise NewsrecError(f"the embedded PostgreSQL (pid {running[0]}) did not stop within {timeout:.0f} s")
        time.sleep(0.2)


def _is_root() -> bool:
    return os.geteuid() == 0
