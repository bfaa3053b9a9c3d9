"""Shared fixtures: one throwaway PostgreSQL server per test session, a fresh database per
test (cloned from a migrated template), and a small simulated world shared read-only."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from tests.helpers import admin_sql, use_database

ROOT = Path(__file__).resolve().parents[1]
_counter = itertools.count()

# A small world that read-only tests share; seeded once per session.
SMALL_WORLD = {"users": 600, "articles_per_day": 240, "days": 3, "start": date(2026, 1, 5), "seed": 11}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Base URL (ending in '/') of a throwaway embedded PostgreSQL for this session."""
    import pgserver

    folder = Path(tempfile.mkdtemp(prefix="nrpg", dir="/tmp"))
    server = pgserver.get_server(folder / "pg", cleanup_mode="delete")
    server.psql("ALTER SYSTEM SET fsync = off; ALTER SYSTEM SET synchronous_commit = off;")
    server.psql("SELECT pg_reload_conf();")
    socket_dir = server.get_postmaster_info().socket_dir
    yield f"postgresql://postgres:@/{{db}}?host={socket_dir}"
    server.cleanup()


@pytest.fixture(scope="session")
def migrated_template(pg_server: str) -> str:
    """A database with every migration applied, used as the template for per-test copies."""
    name = "newsrec_template"
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, pg_server.format(db=name), Path(tempfile.mkdtemp(prefix="nrhome")))
        from pipelines.warehouse.migrations import migrate

        migrate()
    from pipelines.core.config import reset_caches

    reset_caches()
    return name


@pytest.fixture
def fresh_db(pg_server: str, migrated_template: str, monkeypatch, tmp_path) -> str:
    """A new, migrated, empty database that the environment points at; returns its URL."""
    name = f"t{os.getpid()}_{next(_counter)}"
    admin_sql(pg_server, f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
    url = pg_server.format(db=name)
    use_database(monkeypatch, url, tmp_path / "home")
    return url


@pytest.fixture
def empty_db(pg_server: str, monkeypatch, tmp_path) -> str:
    """A new database with no migrations applied."""
    name = f"e{os.getpid()}_{next(_counter)}"
    admin_sql(pg_server, f"CREATE DATABASE {name}")
    url = pg_server.format(db=name)
    use_database(monkeypatch, url, tmp_path / "home")
    return url


@pytest.fixture(scope="session")
def small_world_db(pg_server: str, migrated_template: str) -> str:
    """Name of a database seeded once with SMALL_WORLD (tests must not modify it)."""
    name = "small_world"
    admin_sql(pg_server, f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
    with pytest.MonkeyPatch.context() as mp:
        use_database(mp, pg_server.format(db=name), Path(tempfile.mkdtemp(prefix="nrhome")))
        from pipelines.warehouse import simulator

        cfg = simulator.SimConfig.from_params(
            users=SMALL_WORLD["users"],
            articles_per_day=SMALL_WORLD["articles_per_day"],
            start=SMALL_WORLD["start"],
            seed=SMALL_WORLD["seed"],
        )
        simulator.seed(cfg, SMALL_WORLD["days"])
    from pipelines.core.config import reset_caches

    reset_caches()
    return name


@pytest.fixture
def small_world(pg_server: str, small_world_db: str, monkeypatch, tmp_path) -> str:
    """Point the environment at the shared small world; returns its URL."""
    url = pg_server.format(db=small_world_db)
    use_database(monkeypatch, url, tmp_path / "home")
    return url


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test` spreads tests over processes by node id: two tests with one id would run once."""
    seen: set[str] = set()
    twice = sorted({item.nodeid for item in items if item.nodeid in seen or seen.add(item.nodeid)})
    if twice:
        raise pytest.UsageError(f"tests share a node id (pytest-xdist would run only one of each): {twice[:5]}")
