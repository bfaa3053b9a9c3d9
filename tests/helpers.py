"""Small helpers for tests: run a query, run the CLI."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def query(sql: str, params: tuple | None = None) -> list[tuple]:
    """Run one query on the database the environment points at."""
    from pipelines.core import db

    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else []


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real ``newsrec`` entry point in a subprocess, with this test's environment."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )


def remove_later(folder: Path) -> None:
    """Delete ``folder`` in a detached process: a test server's data folder holds gigabytes of
    cloned databases by the end of a session, and deleting it took 25-40 s of the last worker's
    teardown, which the whole run waited for."""
    subprocess.Popen(
        ["rm", "-rf", str(folder)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def admin_sql(pg_server: str, sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(pg_server.format(db="postgres"))
    conn.autocommit = True
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


def use_database(monkeypatch: pytest.MonkeyPatch, url: str, home: Path) -> None:
    from pipelines.core.config import reset_caches

    monkeypatch.setenv("NEWSREC_DATABASE_URL", url)
    monkeypatch.setenv("NEWSREC_HOME", str(home))
    reset_caches()


@contextlib.contextmanager
def simulated_world(pg_server: str, template: str, home: Path, name: str, days: int, features_for=(), **sim):
    """A database cloned from the migrated template, seeded by the simulator, with features
    built for ``features_for``; the environment points at it inside the block."""
    from pipelines.features import build
    from pipelines.warehouse import simulator

    admin_sql(pg_server, f"CREATE DATABASE {name} TEMPLATE {template}")
    url = pg_server.format(db=name)
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, url, home)
        simulator.seed(simulator.SimConfig.from_params(**sim), days)
        built = [build.build(day) for day in features_for]
        yield {"url": url, "home": home, "built": built}
    from pipelines.core.config import reset_caches

    reset_caches()


def clone_database(pg_server: str, template: str, prefix: str) -> str:
    """A new database copied from ``template`` (nobody may be connected to it); returns its URL."""
    name = f"{prefix}{os.getpid()}_{time.monotonic_ns()}"
    admin_sql(pg_server, f"CREATE DATABASE {name} TEMPLATE {template}")
    return pg_server.format(db=name)
