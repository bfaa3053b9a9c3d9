"""Small helpers for tests: run a query, run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def query(sql: str, params: tuple | None = None) -> list[tuple]:
    """Run one query on the database the environment points at."""
    from pipelines import db

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


def admin_sql(pg_server: str, sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(pg_server.format(db="postgres"))
    conn.autocommit = True
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


def use_database(monkeypatch: pytest.MonkeyPatch, url: str, home: Path) -> None:
    from pipelines.config import reset_caches

    monkeypatch.setenv("NEWSREC_DATABASE_URL", url)
    monkeypatch.setenv("NEWSREC_HOME", str(home))
    reset_caches()
